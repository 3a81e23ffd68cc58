//! Parsers: bytes of a detected type to clean text, a title and source metadata.

use lore_core::error::{Code, Error, Result};
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use scraper::{ElementRef, Html, Node, Selector};
use serde_json::{Map, Value, json};

use crate::decode::decode;
use crate::detect::FileKind;
use crate::formats::{self, Builder, Location, Region};
use crate::ocr::OcrMode;

/// A box on a page (`[left, top, right, bottom]` from its top-left corner, in PDF points or
/// image pixels) with the page's size in the same units: a chunk's `regions`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PageBox {
    pub page: u32,
    pub bbox: [f64; 4],
    pub page_size: [f64; 2],
}

/// How a file is read, beyond its kind: the knowledge base's settings that reach the parser.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParseOptions {
    #[serde(default)]
    pub ocr: OcrMode,
}

/// Serializable, so that a parser in another process ([`crate::isolate`]) can send it back.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Parsed {
    pub title: Option<String>,
    /// The text as read from the file (decoded, otherwise untouched).
    pub raw: String,
    /// Clean text: markup removed, whitespace normalised, paragraphs separated by blank lines.
    pub text: String,
    pub metadata: Map<String, Value>,
    /// Pages, slides, sheets or chapters, by where they start in `text`.
    pub locations: Vec<Location>,
    /// Where stretches of `text` stand on their page (recognised lines), in text order.
    #[serde(default)]
    pub regions: Vec<Region>,
}

impl Parsed {
    /// The location (page, slide, ...) in force at a character offset of `text`.
    pub fn location_at(&self, char_offset: usize) -> Option<&Location> {
        let after = self.locations.partition_point(|l| l.char_start <= char_offset);
        after.checked_sub(1).map(|i| &self.locations[i])
    }

    /// The regions that overlap `[start, end)` of `text`.
    pub fn regions_in(&self, start: usize, end: usize) -> impl Iterator<Item = &Region> {
        let first = self.regions.partition_point(|r| r.char_end <= start);
        self.regions[first..].iter().take_while(move |r| r.char_start < end)
    }

    /// Where `[start, end)` of `text` stands: a box per page around its regions, and the
    /// words among them read with low confidence.
    pub fn boxes_in(&self, start: usize, end: usize) -> (Vec<PageBox>, Vec<&str>) {
        let mut boxes: Vec<(u32, [f32; 4], [f32; 2])> = Vec::new();
        let mut unsure = Vec::new();
        for region in self.regions_in(start, end) {
            match boxes.iter_mut().find(|(page, ..)| *page == region.page) {
                Some((_, bbox, _)) => *bbox = formats::union_box(*bbox, region.bbox),
                None => boxes.push((region.page, region.bbox, region.page_size)),
            }
            unsure.extend(region.low_confidence.iter().map(String::as_str));
        }
        // To a tenth of a unit: f32 widened to f64 brings digits that mean nothing.
        let tenth = |v: f32| (f64::from(v) * 10.0).round() / 10.0;
        let boxes = boxes
            .into_iter()
            .map(|(page, bbox, size)| PageBox { page, bbox: bbox.map(tenth), page_size: size.map(tenth) })
            .collect();
        (boxes, unsure)
    }
}

pub fn parse(kind: FileKind, bytes: &[u8]) -> Result<Parsed> {
    parse_with(kind, bytes, ParseOptions::default())
}

/// [`parse`] with a knowledge base's options (text recognition).
pub fn parse_with(kind: FileKind, bytes: &[u8], options: ParseOptions) -> Result<Parsed> {
    let text_of = |bytes: &[u8]| decode(bytes);
    let from_builder = |b: Builder, metadata: Map<String, Value>| Parsed {
        title: b.title.clone(),
        raw: b.text.clone(),
        text: b.text,
        locations: b.locations,
        regions: b.regions,
        metadata,
    };
    let parsed = match kind {
        FileKind::Text | FileKind::Code(_) => {
            let decoded = text_of(bytes)?;
            let text = clean(&decoded.text);
            let title = if matches!(kind, FileKind::Text) { first_line_title(&text) } else { None };
            let mut metadata = meta(decoded.encoding);
            if let FileKind::Code(language) = kind {
                metadata.insert("language".into(), json!(language));
            }
            Parsed { title, text, raw: decoded.text, metadata, ..Parsed::default() }
        }
        FileKind::Markdown | FileKind::Html => {
            let decoded = text_of(bytes)?;
            let to_text = if kind == FileKind::Markdown { markdown_to_text } else { html_to_text };
            let (title, text) = to_text(&decoded.text);
            Parsed {
                title,
                text: clean(&text),
                raw: decoded.text,
                metadata: meta(decoded.encoding),
                ..Parsed::default()
            }
        }
        FileKind::Csv | FileKind::Tsv => {
            let decoded = text_of(bytes)?;
            let b = formats::delimited(&decoded.text, if kind == FileKind::Csv { b',' } else { b'\t' })?;
            Parsed { raw: decoded.text, ..from_builder(b, meta(decoded.encoding)) }
        }
        FileKind::Json | FileKind::Jsonl => {
            let decoded = text_of(bytes)?;
            let values: Vec<Value> = if kind == FileKind::Json {
                vec![
                    serde_json::from_str(&decoded.text)
                        .map_err(|e| Error::new(Code::CorruptFile, format!("the JSON file is not valid JSON: {e}")))?,
                ]
            } else {
                decoded
                    .text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                    .map(|(i, l)| {
                        serde_json::from_str(l).map_err(|e| {
                            Error::new(
                                Code::CorruptFile,
                                format!("line {} of the JSON Lines file is not valid JSON: {e}", i + 1),
                            )
                        })
                    })
                    .collect::<Result<_>>()?
            };
            let text = values.iter().map(formats::json_text).collect::<Vec<_>>().join("\n\n");
            Parsed {
                title: None,
                text: clean(&text),
                raw: decoded.text,
                metadata: meta(decoded.encoding),
                ..Parsed::default()
            }
        }
        FileKind::Rtf => {
            let text = formats::rtf(bytes)?;
            Parsed {
                title: first_line_title(&clean(&text)),
                text: clean(&text),
                raw: text,
                metadata: Map::new(),
                ..Parsed::default()
            }
        }
        FileKind::Docx => {
            let (b, ocr) = formats::docx(bytes, options.ocr)?;
            from_builder(b, ocr.map(|o| Map::from_iter([("ocr".to_string(), o)])).unwrap_or_default())
        }
        FileKind::Pptx => {
            let (b, ocr) = formats::pptx(bytes, options.ocr)?;
            from_builder(b, ocr.map(|o| Map::from_iter([("ocr".to_string(), o)])).unwrap_or_default())
        }
        FileKind::Xlsx => from_builder(formats::workbook(bytes, "Excel")?, Map::new()),
        FileKind::Xls => from_builder(formats::workbook(bytes, "Excel 97-2003")?, Map::new()),
        FileKind::Ods => from_builder(formats::workbook(bytes, "OpenDocument spreadsheet")?, Map::new()),
        FileKind::Epub => from_builder(formats::epub(bytes, html_to_text)?, Map::new()),
        FileKind::Email => {
            let (b, m) = formats::email(bytes, html_to_text)?;
            let metadata = m.as_object().cloned().unwrap_or_default();
            Parsed { raw: String::from_utf8_lossy(bytes).into_owned(), ..from_builder(b, metadata) }
        }
        FileKind::Pdf if !bytes.starts_with(b"%PDF-") => {
            return Err(Error::new(
                Code::CorruptFile,
                "the file is named as a PDF but is not one (it has no PDF header); it may be damaged or mislabelled",
            ));
        }
        FileKind::Pdf => {
            let (b, ocr) = formats::pdf(bytes, options.ocr)?;
            let pages = b.locations.iter().filter(|l| l.key == "page").count();
            let mut metadata = Map::new();
            metadata.insert("pages".into(), json!(pages));
            if let Some(ocr) = ocr {
                metadata.insert("ocr".into(), ocr);
            }
            from_builder(b, metadata)
        }
        FileKind::Image(_) => {
            let (b, ocr) = formats::image(bytes, options.ocr)?;
            let mut metadata = Map::new();
            metadata.insert("ocr".into(), ocr);
            from_builder(b, metadata)
        }
        FileKind::Binary(name) => {
            return Err(Error::new(Code::UnsupportedFileType, format!("{name} files are not supported")));
        }
    };
    if parsed.text.trim().is_empty() {
        return Err(Error::new(Code::NoTextContent, "the document contains no text to index"));
    }
    Ok(parsed)
}

fn meta(encoding: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("encoding".into(), json!(encoding));
    m
}

/// Normalises line endings and whitespace: no trailing spaces, at most one blank line in a row,
/// no zero-width or BOM characters.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.replace("\r\n", "\n").replace('\r', "\n").split('\n') {
        let line: String =
            line.chars().filter(|c| !matches!(c, '\u{200B}' | '\u{FEFF}' | '\u{200C}' | '\u{200D}')).collect();
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        blank_run = 0;
        out.push_str(line);
    }
    out
}

fn first_line_title(text: &str) -> Option<String> {
    let line = text.lines().find(|l| !l.trim().is_empty())?.trim();
    (line.chars().count() <= 120).then(|| line.to_string())
}

/// Markdown to text, keeping headings as `#`-prefixed lines so the structure stays visible.
fn markdown_to_text(source: &str) -> (Option<String>, String) {
    let mut out = String::new();
    let mut first_h1: Option<String> = None;
    let mut first_heading: Option<String> = None;
    let mut heading: Option<(HeadingLevel, String)> = None;
    // A table's rows while one is read; written out as a Markdown table when it ends.
    let mut table: Option<Vec<Vec<String>>> = None;
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    for event in Parser::new_ext(source, options) {
        if let Some(rows) = &mut table {
            match event {
                Event::Start(Tag::TableHead | Tag::TableRow) => rows.push(Vec::new()),
                Event::Start(Tag::TableCell) => {
                    if let Some(row) = rows.last_mut() {
                        row.push(String::new());
                    }
                }
                Event::Text(t) | Event::Code(t) | Event::InlineHtml(t) => {
                    if let Some(cell) = rows.last_mut().and_then(|r| r.last_mut()) {
                        cell.push_str(&t);
                    }
                }
                Event::End(TagEnd::Table) => {
                    block_break(&mut out);
                    out.push_str(&crate::chunk::markdown_table(&table.take().unwrap_or_default()));
                    out.push_str("\n\n");
                }
                _ => {}
            }
            continue;
        }
        match event {
            Event::Start(Tag::Table(_)) => table = Some(Vec::new()),
            Event::Start(Tag::Heading { level, .. }) => {
                block_break(&mut out);
                heading = Some((level, String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, text)) = heading.take() {
                    let text = text.trim().to_string();
                    if !text.is_empty() {
                        if level == HeadingLevel::H1 && first_h1.is_none() {
                            first_h1 = Some(text.clone());
                        }
                        first_heading.get_or_insert_with(|| text.clone());
                    }
                    out.push_str(&"#".repeat(level as usize));
                    out.push(' ');
                    out.push_str(&text);
                    out.push_str("\n\n");
                }
            }
            Event::Text(t) | Event::Code(t) => match &mut heading {
                Some((_, h)) => h.push_str(&t),
                None => out.push_str(&t),
            },
            Event::SoftBreak | Event::HardBreak => match &mut heading {
                Some((_, h)) => h.push(' '),
                None => out.push('\n'),
            },
            Event::End(TagEnd::Paragraph | TagEnd::CodeBlock | TagEnd::BlockQuote(_)) => out.push_str("\n\n"),
            Event::End(TagEnd::Item) => out.push('\n'),
            Event::Start(Tag::Item) => out.push_str("- "),
            Event::Html(h) | Event::InlineHtml(h) => {
                let (_, text) = html_to_text(&h);
                out.push_str(&text);
            }
            _ => {}
        }
    }
    (first_h1.or(first_heading), out)
}

fn block_break(out: &mut String) {
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
    }
}

const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "nav", "header", "footer", "aside",
    "form", "button", "select", "head",
];
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "table",
    "tr",
    "blockquote",
    "pre",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "hr",
    "address",
];

/// HTML to text: the main content (`<main>`/`<article>` when present), navigation and
/// boilerplate elements dropped, blocks separated by blank lines, link texts kept.
fn html_to_text(source: &str) -> (Option<String>, String) {
    let doc = Html::parse_document(source);
    let pick = |css: &str| Selector::parse(css).ok().and_then(|s| doc.select(&s).next());
    let title = pick("title")
        .map(|t| collapse(&t.text().collect::<String>()))
        .filter(|t| !t.is_empty())
        .or_else(|| pick("h1").map(|h| collapse(&h.text().collect::<String>())).filter(|t| !t.is_empty()));
    let root = pick("main").or_else(|| pick("article")).or_else(|| pick("body"));
    let mut out = String::new();
    match root {
        Some(root) => walk(root, &mut out, false),
        None => walk(doc.root_element(), &mut out, false),
    }
    (title, out)
}

fn walk(element: ElementRef<'_>, out: &mut String, in_pre: bool) {
    for child in element.children() {
        match child.value() {
            Node::Text(text) => {
                if in_pre {
                    out.push_str(text);
                } else {
                    let collapsed = collapse(text);
                    if !collapsed.is_empty() {
                        let starts_ws = text.starts_with(char::is_whitespace);
                        if starts_ws && !out.is_empty() && !out.ends_with(char::is_whitespace) {
                            out.push(' ');
                        }
                        out.push_str(&collapsed);
                        if text.ends_with(char::is_whitespace) {
                            out.push(' ');
                        }
                    }
                }
            }
            Node::Element(el) => {
                let name = el.name();
                if SKIPPED.contains(&name) {
                    continue;
                }
                let Some(child_ref) = ElementRef::wrap(child) else { continue };
                match name {
                    "br" => out.push('\n'),
                    "table" if !in_pre && let Some(rows) = data_table(child_ref) => {
                        paragraph_break(out);
                        out.push_str(&crate::chunk::markdown_table(&rows));
                        paragraph_break(out);
                    }
                    "td" | "th" => {
                        walk(child_ref, out, in_pre);
                        out.push('\t');
                    }
                    _ if BLOCKS.contains(&name) => {
                        paragraph_break(out);
                        walk(child_ref, out, in_pre || name == "pre");
                        paragraph_break(out);
                    }
                    _ => walk(child_ref, out, in_pre),
                }
            }
            _ => {}
        }
    }
}

/// A table's rows (cells of its own `tr`s, nested tables' text inside their cells), when it
/// holds data: at least two rows of at least two cells. A layout table is read as blocks.
fn data_table(table: ElementRef<'_>) -> Option<Vec<Vec<String>>> {
    let cell_names = ["td", "th"];
    let rows: Vec<Vec<String>> = table
        .descendants()
        .filter_map(ElementRef::wrap)
        .filter(|tr| tr.value().name() == "tr")
        .filter(|tr| {
            let owner = tr.ancestors().filter_map(ElementRef::wrap).find(|a| a.value().name() == "table");
            owner.is_some_and(|o| o.id() == table.id())
        })
        .map(|tr| {
            tr.children()
                .filter_map(ElementRef::wrap)
                .filter(|c| cell_names.contains(&c.value().name()))
                .map(|c| collapse(&c.text().collect::<String>()))
                .collect()
        })
        .collect();
    (rows.len() >= 2 && rows.iter().filter(|r| r.len() >= 2).count() >= 2).then_some(rows)
}

fn paragraph_break(out: &mut String) {
    let trimmed = out.trim_end_matches([' ', '\t']).len();
    out.truncate(trimmed);
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
    }
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The tables of a spreadsheet or delimited file: each sheet's rows of cell texts (a CSV or TSV
/// file is one sheet). Other kinds hold no table: `unsupported_file_type`.
pub fn tables(kind: FileKind, bytes: &[u8]) -> Result<Vec<Vec<Vec<String>>>> {
    let sheets = |found: Vec<(String, Vec<Vec<String>>)>| found.into_iter().map(|(_, rows)| rows).collect();
    match kind {
        FileKind::Csv | FileKind::Tsv => {
            let decoded = decode(bytes)?;
            Ok(vec![formats::delimited_rows(&decoded.text, if kind == FileKind::Csv { b',' } else { b'\t' })?])
        }
        FileKind::Xlsx => Ok(sheets(formats::workbook_sheets(bytes, "Excel")?)),
        FileKind::Xls => Ok(sheets(formats::workbook_sheets(bytes, "Excel 97-2003")?)),
        FileKind::Ods => Ok(sheets(formats::workbook_sheets(bytes, "OpenDocument spreadsheet")?)),
        other => Err(Error::new(
            Code::UnsupportedFileType,
            format!("a {} file holds no table; use CSV, TSV, XLSX, XLS or ODS", other.name()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_keeps_headings_and_finds_the_title() {
        let md = "# 知识库指南\n\nLore 支持**中文分词**。\n\n## Setup\n\n- one\n- two\n";
        let p = parse(FileKind::Markdown, md.as_bytes()).expect("markdown");
        assert_eq!(p.title.as_deref(), Some("知识库指南"));
        assert!(p.text.starts_with("# 知识库指南\n\nLore 支持中文分词。"), "{}", p.text);
        assert!(p.text.contains("## Setup"));
        assert!(p.text.contains("- one\n- two"));
    }

    #[test]
    fn html_drops_boilerplate_and_keeps_links_as_text() {
        let html = r#"<!doctype html><html><head><title>搜索 Guide</title><style>p{}</style></head>
            <body><nav><a href="/">Home</a> | <a href="/x">Menu</a></nav>
            <main><h1>Full-text search</h1><p>Lore segments <a href="/zh">中文分词</a> with jieba.</p>
            <script>alert(1)</script><p>Second   paragraph.</p></main><footer>© 2026</footer></body></html>"#;
        let p = parse(FileKind::Html, html.as_bytes()).expect("html");
        assert_eq!(p.title.as_deref(), Some("搜索 Guide"));
        assert_eq!(p.text, "Full-text search\n\nLore segments 中文分词 with jieba.\n\nSecond paragraph.");
    }

    #[test]
    fn text_is_cleaned_and_titled() {
        let p = parse(FileKind::Text, "  标题\r\n\r\n\r\n\r\n正文第一段。  \r\n第二行\n".as_bytes()).expect("text");
        assert_eq!(p.title.as_deref(), Some("标题"));
        assert_eq!(p.text, "  标题\n\n正文第一段。\n第二行");
    }

    #[test]
    fn bad_files_fail_with_codes() {
        assert_eq!(parse(FileKind::Pdf, b"not a pdf at all").expect_err("fake pdf").code, Code::CorruptFile);
        assert_eq!(parse(FileKind::Pdf, b"%PDF-1.4\n...").expect_err("truncated pdf").code, Code::CorruptFile);
        assert_eq!(parse(FileKind::Text, b"   \n\n ").expect_err("empty").code, Code::NoTextContent);
        assert_eq!(parse(FileKind::Binary("zip"), b"PK\x03\x04").expect_err("zip").code, Code::UnsupportedFileType);
    }
}
