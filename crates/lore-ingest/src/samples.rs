//! Small, valid sample files of each container format, built as their specifications lay them
//! out. The tests use them, and the parser fuzzer mutates them.

use std::io::Write;

/// A small deterministic generator (xorshift): generated corpora and fuzzing runs repeat exactly
/// for the same seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A zip archive of text entries (a `mimetype` entry is stored uncompressed, as EPUB wants).
pub fn zip(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, body) in entries {
            // EPUB wants its `mimetype` first and uncompressed, so readers can sniff it.
            let options =
                if *name == "mimetype" { options.compression_method(zip::CompressionMethod::Stored) } else { options };
            w.start_file(*name, options).expect("entry");
            w.write_all(body.as_bytes()).expect("write");
        }
        w.finish().expect("finish");
    }
    out.into_inner()
}

/// A Word document with headings, a paragraph and a table, in Chinese and English.
pub fn docx() -> Vec<u8> {
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>
<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>知识库手册</w:t></w:r></w:p>
<w:p><w:r><w:t xml:space="preserve">中文分词是检索的基础，</w:t></w:r><w:r><w:t>Lore &amp; friends.</w:t></w:r></w:p>
<w:p><w:pPr><w:pStyle w:val="Heading2"/></w:pPr><w:r><w:t>Prices</w:t></w:r></w:p>
<w:tbl><w:tr><w:tc><w:p><w:r><w:t>产品</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>价格</w:t></w:r></w:p></w:tc></w:tr>
<w:tr><w:tc><w:p><w:r><w:t>专业版</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>99</w:t></w:r></w:p></w:tc></w:tr></w:tbl>
</w:body></w:document>"#;
    zip(&[("[Content_Types].xml", "<Types/>"), ("word/document.xml", body)])
}

/// A workbook with one sheet (`销售`) of headers and rows.
pub fn xlsx() -> Vec<u8> {
    let workbook = r#"<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="销售" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
    let rels = r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;
    let sheet = r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>
<row r="1"><c r="A1" t="inlineStr"><is><t>城市</t></is></c><c r="B1" t="inlineStr"><is><t>Revenue</t></is></c></row>
<row r="2"><c r="A2" t="inlineStr"><is><t>上海</t></is></c><c r="B2"><v>1200</v></c></row>
<row r="3"><c r="A3" t="inlineStr"><is><t>Berlin</t></is></c><c r="B3"><v>3.5</v></c></row>
</sheetData></worksheet>"#;
    let types = r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#;
    let root_rels = r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
    zip(&[
        ("[Content_Types].xml", types),
        ("_rels/.rels", root_rels),
        ("xl/workbook.xml", workbook),
        ("xl/_rels/workbook.xml.rels", rels),
        ("xl/worksheets/sheet1.xml", sheet),
    ])
}

pub fn pdf(pages: &[&str]) -> Vec<u8> {
    let escaped: Vec<String> = pages.iter().map(|t| format!("({t}) Tj")).collect();
    let refs: Vec<&str> = escaped.iter().map(String::as_str).collect();
    pdf_raw(&refs, "BT /F1 12 Tf 72 720 Td {} ET")
}

/// Pages whose content streams are `template` with `{}` replaced by each page's operators.
fn pdf_raw(pages: &[&str], template: &str) -> Vec<u8> {
    let n = pages.len();
    let mut objects: Vec<String> = Vec::new();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")));
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".into());
    for (i, text) in pages.iter().enumerate() {
        let content = template.replace("{}", text);
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        objects.push(format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()));
    }
    let objects: Vec<Vec<u8>> = objects.into_iter().map(String::into_bytes).collect();
    pdf_from_objects(&objects)
}

/// A PDF file of these objects, numbered from 1 (the first the catalogue), with its cross-reference table.
pub fn pdf_from_objects(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).into_bytes());
        out.extend(o);
        out.extend(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).into_bytes());
    for off in offsets {
        out.extend(format!("{off:010} 00000 n \n").into_bytes());
    }
    out.extend(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).into_bytes(),
    );
    out
}

/// A presentation with two slides.
pub fn pptx() -> Vec<u8> {
    let slide = |text: &str| {
        format!(
            r#"<p:sld xmlns:p="p" xmlns:a="a"><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>"#
        )
    };
    let (one, two) = (slide("产品路线图"), slide("Hybrid search ships in Q2"));
    zip(&[("ppt/slides/slide1.xml", &one), ("ppt/slides/slide2.xml", &two)])
}

/// A two-chapter book.
pub fn epub() -> Vec<u8> {
    let container = r#"<container><rootfiles><rootfile full-path="OEBPS/book.opf"/></rootfiles></container>"#;
    let opf = r#"<package xmlns:dc="http://purl.org/dc/elements/1.1/"><metadata><dc:title>红楼梦</dc:title></metadata>
<manifest><item id="c2" href="two.xhtml"/><item id="c1" href="one.xhtml"/></manifest>
<spine><itemref idref="c1"/><itemref idref="c2"/></spine></package>"#;
    zip(&[
        ("mimetype", "application/epub+zip"),
        ("META-INF/container.xml", container),
        ("OEBPS/book.opf", opf),
        ("OEBPS/one.xhtml", "<html><body><h1>第一回</h1><p>甄士隐梦幻识通灵。</p></body></html>"),
        ("OEBPS/two.xhtml", "<html><body><h1>第二回</h1><p>贾夫人仙逝扬州城。</p></body></html>"),
    ])
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A complete Word package (content types and relationships included, as other readers
/// require) of headings (`Some(level)`) and paragraphs.
pub fn docx_from(blocks: &[(Option<usize>, String)]) -> Vec<u8> {
    let mut body = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>"#,
    );
    for (heading, text) in blocks {
        body.push_str("<w:p>");
        if let Some(level) = heading {
            body.push_str(&format!(r#"<w:pPr><w:pStyle w:val="Heading{level}"/></w:pPr>"#));
        }
        body.push_str(&format!(r#"<w:r><w:t xml:space="preserve">{}</w:t></w:r></w:p>"#, xml_escape(text)));
    }
    body.push_str("</w:body></w:document>");
    let types = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
    let rels = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;
    zip(&[("[Content_Types].xml", types), ("_rels/.rels", rels), ("word/document.xml", &body)])
}

/// A complete one-sheet workbook of string rows.
pub fn xlsx_from(rows: &[Vec<String>]) -> Vec<u8> {
    let mut sheet = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    for (r, row) in rows.iter().enumerate() {
        sheet.push_str(&format!(r#"<row r="{}">"#, r + 1));
        for (c, cell) in row.iter().enumerate() {
            let col = (b'A' + (c % 26) as u8) as char;
            sheet.push_str(&format!(r#"<c r="{col}{}" t="inlineStr"><is><t>{}</t></is></c>"#, r + 1, xml_escape(cell)));
        }
        sheet.push_str("</row>");
    }
    sheet.push_str("</sheetData></worksheet>");
    xlsx_of_sheet(&sheet)
}

/// A 5 KB workbook whose one sheet has a cell at A1 and one at XFD1048576, the last cell a sheet
/// can have (and says so in its `<dimension>`): read as a dense grid, 17 billion cells.
pub fn xlsx_sparse() -> Vec<u8> {
    let sheet = r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:XFD1048576"/><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>起点</t></is></c></row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData></worksheet>"#;
    xlsx_of_sheet(sheet)
}

/// A workbook of one sheet, `Sheet1`, whose XML is `sheet`.
fn xlsx_of_sheet(sheet: &str) -> Vec<u8> {
    let workbook = r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
    let wb_rels = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;
    let types = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#;
    let root = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
    zip(&[
        ("[Content_Types].xml", types),
        ("_rels/.rels", root),
        ("xl/workbook.xml", workbook),
        ("xl/_rels/workbook.xml.rels", wb_rels),
        ("xl/worksheets/sheet1.xml", sheet),
    ])
}

/// A PDF whose pages hold several lines of (ASCII) text each.
pub fn pdf_lines(pages: &[Vec<String>]) -> Vec<u8> {
    let texts: Vec<String> = pages
        .iter()
        .map(|lines| {
            lines
                .iter()
                .map(|l| format!("({}) Tj T*", l.replace('\\', "\\\\").replace('(', "\\(").replace(')', "\\)")))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    pdf_raw(&refs, "BT /F1 10 Tf 12 TL 72 740 Td {} ET")
}

/// A PDF of text placed at given positions (x, y from the bottom-left, in points), in the
/// order given: how a two-column layout can interleave its columns in the content stream.
/// A table of `columns` columns and `rows` rows (the first the header `Col0`, `Col1`, ...):
/// two words in the first column, figures in the others.
pub fn random_table(rng: &mut Rng, columns: usize, rows: usize) -> Vec<Vec<String>> {
    const WORDS: &[&str] =
        &["steel", "bolt", "copper", "wire", "valve", "pump", "filter", "north", "depot", "spare", "cable", "seal"];
    let mut table: Vec<Vec<String>> = vec![(0..columns).map(|c| format!("Col{c}")).collect()];
    for _ in 1..rows {
        table.push(
            (0..columns)
                .map(|c| match c {
                    0 => format!("{} {}", WORDS[rng.below(WORDS.len())], WORDS[rng.below(WORDS.len())]),
                    _ => format!("{}.{}", rng.below(5000), rng.below(100)),
                })
                .collect(),
        );
    }
    table
}

/// The cells of the Markdown tables in a text, row by row (separator lines left out).
pub fn markdown_cells(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("| ---"))
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect())
        .collect()
}

/// The share of `truth`'s cells that `found` holds at the same row and column.
pub fn cell_accuracy(truth: &[Vec<String>], found: &[Vec<String>]) -> (usize, usize) {
    let mut right = 0;
    let mut cells = 0;
    for (r, row) in truth.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            cells += 1;
            right += usize::from(found.get(r).and_then(|f| f.get(c)) == Some(cell));
        }
    }
    (right, cells)
}

/// A page with a line of text, a table set in aligned columns (10 pt Helvetica, no ruling
/// lines: only the text's geometry says it is a table) and a line after it.
pub fn pdf_table(before: &str, table: &[Vec<String>], after: &str) -> Vec<u8> {
    let columns = table.iter().map(Vec::len).max().unwrap_or(0);
    // Each column as wide as its longest cell (Helvetica averages about 5.6 pt a character at
    // 10 pt) and two ems of white space.
    let mut x = vec![72.0];
    for c in 0..columns {
        let widest = table.iter().filter_map(|r| r.get(c)).map(|t| t.chars().count()).max().unwrap_or(0);
        let last = x[x.len() - 1];
        x.push(last + widest as f64 * 6.0 + 20.0);
    }
    let mut items: Vec<(f64, f64, String)> = vec![(72.0, 720.0, before.to_string())];
    for (r, row) in table.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            items.push((x[c], 690.0 - 14.0 * r as f64, cell.clone()));
        }
    }
    items.push((72.0, 690.0 - 14.0 * table.len() as f64 - 30.0, after.to_string()));
    let refs: Vec<(f64, f64, &str)> = items.iter().map(|(x, y, t)| (*x, *y, t.as_str())).collect();
    pdf_positioned(&[refs])
}

pub fn pdf_positioned(pages: &[Vec<(f64, f64, &str)>]) -> Vec<u8> {
    let texts: Vec<String> = pages
        .iter()
        .map(|items| {
            items.iter().map(|(x, y, t)| format!("BT /F1 10 Tf {x} {y} Td ({t}) Tj ET")).collect::<Vec<_>>().join(" ")
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    pdf_raw(&refs, "{}")
}
