//! Hostile files: sparse and bomb spreadsheets, PDFs, DOCX, EPUB and email.

use std::io::Write;
use std::sync::Arc;

use lore_ingest::samples::Rng;

use super::*;

/// One zip entry, its data already compressed (`method` 8) or stored (0).
#[derive(Clone)]
pub(crate) struct ZipEntry {
    pub(crate) name: String,
    pub(crate) data: Arc<Vec<u8>>,
    pub(crate) method: u16,
    pub(crate) crc: u32,
    pub(crate) size: u64,
}

impl ZipEntry {
    pub(crate) fn stored(name: &str, bytes: &[u8]) -> Self {
        let mut crc = flate2::Crc::new();
        crc.update(bytes);
        ZipEntry {
            name: name.into(),
            data: Arc::new(bytes.to_vec()),
            method: 0,
            crc: crc.sum(),
            size: bytes.len() as u64,
        }
    }

    /// A deflated entry of `parts`, each repeated the given number of times.
    pub(crate) fn deflated(name: &str, parts: &[(&[u8], usize)]) -> Self {
        let mut crc = flate2::Crc::new();
        let mut size = 0u64;
        let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        for (bytes, times) in parts {
            for _ in 0..*times {
                crc.update(bytes);
                encoder.write_all(bytes).expect("deflate");
                size += bytes.len() as u64;
            }
        }
        let data = encoder.finish().expect("deflate");
        ZipEntry { name: name.into(), data: Arc::new(data), method: 8, crc: crc.sum(), size }
    }

    pub(crate) fn text(name: &str, text: &str) -> Self {
        Self::deflated(name, &[(text.as_bytes(), 1)])
    }
}

/// A zip archive of the entries; `lie` writes a small uncompressed size into the headers in
/// place of each large entry's real one.
pub(crate) fn zip_of(entries: &[ZipEntry], lie: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let u16le = |v: &mut Vec<u8>, n: u16| v.extend_from_slice(&n.to_le_bytes());
    let u32le = |v: &mut Vec<u8>, n: u32| v.extend_from_slice(&n.to_le_bytes());
    for e in entries {
        let offset = out.len() as u32;
        let size = if lie && e.size > 1 << 20 { 4096 } else { e.size as u32 };
        let header = |v: &mut Vec<u8>, central: bool| {
            u32le(v, if central { 0x0201_4b50 } else { 0x0403_4b50 });
            if central {
                u16le(v, 20);
            }
            u16le(v, 20);
            u16le(v, 0);
            u16le(v, e.method);
            u16le(v, 0);
            u16le(v, 0x21);
            u32le(v, e.crc);
            u32le(v, e.data.len() as u32);
            u32le(v, size);
            u16le(v, e.name.len() as u16);
            u16le(v, 0);
            if central {
                u16le(v, 0);
                u16le(v, 0);
                u16le(v, 0);
                u32le(v, 0);
                u32le(v, offset);
            }
            v.extend_from_slice(e.name.as_bytes());
        };
        header(&mut out, false);
        out.extend_from_slice(&e.data);
        header(&mut central, true);
    }
    let central_offset = out.len() as u32;
    out.extend_from_slice(&central);
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, entries.len() as u16);
    u16le(&mut out, entries.len() as u16);
    u32le(&mut out, central.len() as u32);
    u32le(&mut out, central_offset);
    u16le(&mut out, 0);
    out
}

pub(crate) const DOCX_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
pub(crate) const DOCX_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;
pub(crate) const XLSX_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#;
pub(crate) const XLSX_ROOT_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
pub(crate) const XLSX_WORKBOOK: &str = r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
pub(crate) const XLSX_WORKBOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;

/// The big parts of the bombs, compressed once (the slow part) and reused every round.
pub(crate) struct Bombs {
    pub(crate) docx_body: ZipEntry,
    pub(crate) epub_chapter: ZipEntry,
    pub(crate) pdf_stream: Arc<Vec<u8>>,
    pub(crate) xlsx_strings: ZipEntry,
    /// ~48 M characters of text, base64 (64 MB): past the chunk budget once decoded.
    pub(crate) eml_body: Arc<String>,
}

impl Bombs {
    pub(crate) fn build() -> Self {
        let mib = vec![b'0'; 1 << 20];
        let reps = BOMB_BYTES >> 20;
        let docx_body = ZipEntry::deflated(
            "word/document.xml",
            &[
                (br#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>"#, 1),
                (&mib, reps),
                (b"</w:t></w:r></w:p></w:body></w:document>", 1),
            ],
        );
        let epub_chapter = ZipEntry::deflated(
            "OEBPS/one.xhtml",
            &[
                (b"<html><body><h1>\xe7\xac\xac\xe4\xb8\x80\xe5\x9b\x9e</h1><p>", 1),
                (&mib, reps),
                (b"</p></body></html>", 1),
            ],
        );
        let xlsx_strings = ZipEntry::deflated(
            "xl/sharedStrings.xml",
            &[(br#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>"#, 1), (&mib, reps), (b"</t></si></sst>", 1)],
        );
        let pdf_stream = {
            let spaces = vec![b' '; 1 << 20];
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(b"BT /F1 12 Tf 72 720 Td (Hostile stream) Tj ET\n").expect("zlib");
            for _ in 0..reps {
                z.write_all(&spaces).expect("zlib");
            }
            Arc::new(z.finish().expect("zlib"))
        };
        let eml_body = {
            use base64::Engine as _;
            // Dense in words, so past the budget with the default chunks in the built-in model's
            // tokens (24 M words in chunks of 447: 53,700 > 50,000) as with 800 characters.
            let sentence = b"1 2 3 4 5 6 7 8 9 0 ";
            let text: Vec<u8> = sentence.iter().copied().cycle().take(48_000_000).collect();
            let encoded = base64::engine::general_purpose::STANDARD.encode(&text);
            let lines: Vec<&str> =
                encoded.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).expect("ascii")).collect();
            Arc::new(lines.join("\r\n"))
        };
        Bombs { docx_body, epub_chapter, pdf_stream, xlsx_strings, eml_body }
    }

    /// The hostile file of `kind` (name and bytes), made unique by `tag`.
    pub(crate) fn file(&self, kind: &str, tag: &str, rng: &mut Rng) -> (String, Vec<u8>) {
        let lie = rng.below(2) == 0;
        let marker = ZipEntry::text("docProps/custom.xml", &format!("<x>{tag}</x>"));
        match kind {
            "sparse-xlsx" => {
                let sheet = format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:XFD1048576"/><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>起点 {tag}</t></is></c></row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData></worksheet>"#
                );
                let entries = [
                    ZipEntry::text("[Content_Types].xml", XLSX_TYPES),
                    ZipEntry::text("_rels/.rels", XLSX_ROOT_RELS),
                    ZipEntry::text("xl/workbook.xml", XLSX_WORKBOOK),
                    ZipEntry::text("xl/_rels/workbook.xml.rels", XLSX_WORKBOOK_RELS),
                    ZipEntry::text("xl/worksheets/sheet1.xml", &sheet),
                ];
                (format!("sparse-{tag}.xlsx"), zip_of(&entries, false))
            }
            "xlsx-strings-bomb" => {
                let sheet = r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row></sheetData></worksheet>"#;
                let entries = [
                    ZipEntry::text("[Content_Types].xml", XLSX_TYPES),
                    ZipEntry::text("_rels/.rels", XLSX_ROOT_RELS),
                    ZipEntry::text("xl/workbook.xml", XLSX_WORKBOOK),
                    ZipEntry::text("xl/_rels/workbook.xml.rels", XLSX_WORKBOOK_RELS),
                    ZipEntry::text("xl/worksheets/sheet1.xml", sheet),
                    self.xlsx_strings.clone(),
                    marker,
                ];
                (format!("strings-{tag}.xlsx"), zip_of(&entries, lie))
            }
            "docx-bomb" => {
                let entries = [
                    ZipEntry::text("[Content_Types].xml", DOCX_TYPES),
                    ZipEntry::text("_rels/.rels", DOCX_RELS),
                    self.docx_body.clone(),
                    marker,
                ];
                (format!("bomb-{tag}.docx"), zip_of(&entries, lie))
            }
            "epub-bomb" => {
                let container =
                    r#"<container><rootfiles><rootfile full-path="OEBPS/book.opf"/></rootfiles></container>"#;
                let opf = r#"<package xmlns:dc="http://purl.org/dc/elements/1.1/"><metadata><dc:title>炸弹</dc:title></metadata><manifest><item id="c1" href="one.xhtml"/></manifest><spine><itemref idref="c1"/></spine></package>"#;
                let entries = [
                    ZipEntry::stored("mimetype", b"application/epub+zip"),
                    ZipEntry::text("META-INF/container.xml", container),
                    ZipEntry::text("OEBPS/book.opf", opf),
                    self.epub_chapter.clone(),
                    marker,
                ];
                (format!("bomb-{tag}.epub"), zip_of(&entries, lie))
            }
            "pdf-flate-bomb" => (format!("bomb-{tag}.pdf"), pdf_with_stream(&self.pdf_stream, tag)),
            "eml-base64-bomb" => {
                let mut eml = format!(
                    "From: mallory@example.com\r\nTo: victim@example.com\r\nSubject: {tag}\r\nMessage-ID: <{tag}@example.com>\r\n\
                     MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                );
                eml.push_str(&self.eml_body);
                eml.push_str("\r\n");
                (format!("bomb-{tag}.eml"), eml.into_bytes())
            }
            "eml-nested" => {
                let depth = 20_000;
                let mut eml = format!(
                    "From: m@example.com\r\nSubject: nested {tag}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n"
                );
                for i in 0..depth {
                    eml.push_str(&format!("--b{i}\r\nContent-Type: multipart/mixed; boundary=\"b{}\"\r\n\r\n", i + 1));
                }
                eml.push_str(&format!("--b{depth}\r\nContent-Type: text/plain\r\n\r\n深处 deep\r\n"));
                (format!("nested-{tag}.eml"), eml.into_bytes())
            }
            "json-nested" => {
                let mut s = "[".repeat(1_000_000);
                s.push_str(&format!("\"{tag}\""));
                (format!("nested-{tag}.json"), s.into_bytes())
            }
            "html-nested" => {
                let mut s = format!("<html><head><title>{tag}</title></head><body>");
                s.push_str(&"<div><span>".repeat(30_000));
                s.push_str("深 deep");
                (format!("nested-{tag}.html"), s.into_bytes())
            }
            "markdown-nested" => {
                // Deep nesting of every kind Markdown has, with little text (so that what is
                // measured is the parser, not the embedding of a long text).
                let mut s = format!("# {tag}\n\n");
                s.push_str(&"> ".repeat(200_000));
                s.push_str("深 deep\n\n");
                s.push_str(&"*".repeat(20_000));
                s.push('a');
                s.push_str(&"*".repeat(20_000));
                s.push_str("\n\n");
                s.push_str(&"[".repeat(2_000));
                s.push('x');
                s.push_str(&"](".repeat(1_000));
                s.push_str("\n\n");
                for i in 0..500 {
                    s.push_str(&"  ".repeat(i));
                    s.push_str("- a\n");
                }
                (format!("nested-{tag}.md"), s.into_bytes())
            }
            "truncated-docx" => {
                let whole = lore_ingest::samples::docx();
                let cut = 20 + rng.below(whole.len() - 20);
                let mut bytes = whole[..cut].to_vec();
                bytes.extend_from_slice(tag.as_bytes());
                (format!("truncated-{tag}.docx"), bytes)
            }
            _ => {
                // Random bytes under a name that promises a format.
                let ext = ["pdf", "docx", "xlsx", "epub", "pptx", "eml", "html", "csv"][rng.below(8)];
                let mut bytes: Vec<u8> = (0..4096 + rng.below(60_000)).map(|_| rng.next_u64() as u8).collect();
                bytes.extend_from_slice(tag.as_bytes());
                (format!("noise-{tag}.{ext}"), bytes)
            }
        }
    }
}

pub(crate) const FILE_KINDS: &[&str] = &[
    "sparse-xlsx",
    "xlsx-strings-bomb",
    "docx-bomb",
    "epub-bomb",
    "pdf-flate-bomb",
    "eml-base64-bomb",
    "eml-nested",
    "json-nested",
    "html-nested",
    "markdown-nested",
    "truncated-docx",
    "noise",
];

/// A one-page PDF whose content stream is `stream` (zlib, FlateDecode).
pub(crate) fn pdf_with_stream(stream: &[u8], tag: &str) -> Vec<u8> {
    let objects: Vec<Vec<u8>> = vec![
        format!("<< /Type /Catalog /Pages 2 0 R /Lang ({tag}) >>").into_bytes(),
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>"
            .to_vec(),
        {
            let mut o = format!("<< /Length {} /Filter /FlateDecode >>\nstream\n", stream.len()).into_bytes();
            o.extend_from_slice(stream);
            o.extend_from_slice(b"\nendstream");
            o
        },
    ];
    lore_ingest::samples::pdf_from_objects(&objects)
}
