//! Readers for the container and structured formats: Office (DOCX, PPTX), spreadsheets
//! (XLSX/XLS/ODS via calamine, CSV/TSV), PDF, EPUB, RTF, email, JSON. Each produces text with
//! paragraphs separated by blank lines, a title when the file has one, and locations (page,
//! slide, sheet) that chunks inherit. Archives are read with a cap on decompressed size.

use std::io::{Cursor, Read};

use lore_core::budget::{budgets, exceeded};
use lore_core::error::{Code, Error, Result};
use quick_xml::events::Event;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Where a stretch of the text came from: from `char_start` on, `key` (page, slide, sheet) is `value`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Location {
    pub char_start: usize,
    pub key: &'static str,
    pub value: Value,
}

/// The keys a location may have (what [`Builder::mark`] is called with).
pub const LOCATION_KEYS: &[&str] = &["page", "slide", "sheet", "chapter"];

/// A [`Location`] as read back (from an isolated parser), its key one of [`LOCATION_KEYS`].
#[derive(Deserialize)]
struct LocationOnWire {
    char_start: usize,
    key: String,
    value: Value,
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Location, D::Error> {
        let l = LocationOnWire::deserialize(d)?;
        let key = LOCATION_KEYS
            .iter()
            .find(|k| **k == l.key)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown location key {:?}", l.key)))?;
        Ok(Location { char_start: l.char_start, key, value: l.value })
    }
}

/// Text under construction, keeping locations in step with the character count.
#[derive(Default)]
pub struct Builder {
    pub text: String,
    chars: usize,
    pub locations: Vec<Location>,
    pub title: Option<String>,
}

impl Builder {
    pub fn mark(&mut self, key: &'static str, value: Value) {
        self.locations.push(Location { char_start: self.chars, key, value });
    }

    /// Appends a paragraph (blank-line separated); empty ones are skipped.
    pub fn paragraph(&mut self, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        if !self.text.is_empty() {
            self.text.push_str("\n\n");
            self.chars += 2;
        }
        self.text.push_str(text);
        self.chars += text.chars().count();
    }
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::new(Code::CorruptFile, format!("the {what} file could not be read; it may be damaged ({detail})"))
}

// ------------------------------------------------------------------------------------ zip containers

/// The refusal of a file that expands past `max_expanded_bytes`.
fn expanded_too_far(what: &str) -> Error {
    let max = budgets().max_expanded_bytes;
    exceeded(
        Code::ExpandedSizeExceeded,
        format!("this {what} file expands to more than {} MiB; it looks like a zip bomb", max >> 20),
        "max-expanded-mb",
    )
}

pub struct Archive {
    zip: zip::ZipArchive<Cursor<Vec<u8>>>,
    budget: u64,
    what: &'static str,
}

impl Archive {
    pub fn open(bytes: &[u8], what: &'static str) -> Result<Archive> {
        if bytes.starts_with(b"\xd0\xcf\x11\xe0") {
            return Err(Error::new(
                Code::CorruptFile,
                format!("this {what} file is password-protected (encrypted); remove the password and upload it again"),
            ));
        }
        let zip = zip::ZipArchive::new(Cursor::new(bytes.to_vec())).map_err(|e| corrupt(what, e))?;
        // Zip bombs stop at the budget (`max_expanded_bytes`), over all the entries read.
        Ok(Archive { zip, budget: budgets().max_expanded_bytes, what })
    }

    pub fn names(&self) -> Vec<String> {
        self.zip.file_names().filter_map(|n| n.ok().map(|n| n.into_owned())).collect()
    }

    /// An entry's bytes, or `None` if there is no such entry.
    pub fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>> {
        let what = self.what;
        let entry = match self.zip.by_name(name) {
            Ok(e) => e,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(corrupt(what, e)),
        };
        let mut out = Vec::new();
        entry.take(self.budget + 1).read_to_end(&mut out).map_err(|e| corrupt(what, e))?;
        if out.len() as u64 > self.budget {
            return Err(expanded_too_far(what));
        }
        self.budget -= out.len() as u64;
        Ok(Some(out))
    }

    /// Inflates every entry without keeping it: whether the whole archive stays within the
    /// budget, for readers (calamine) that decompress on their own without a cap.
    pub fn check_expanded_size(&mut self) -> Result<()> {
        let what = self.what;
        for i in 0..self.zip.len() {
            let entry = self.zip.by_index(i).map_err(|e| corrupt(what, e))?;
            let read = std::io::copy(&mut entry.take(self.budget + 1), &mut std::io::sink());
            // A damaged entry is the reader's to report, with its own words.
            let Ok(read) = read else { continue };
            if read > self.budget {
                return Err(expanded_too_far(what));
            }
            self.budget -= read;
        }
        Ok(())
    }

    pub fn read_required(&mut self, name: &str) -> Result<Vec<u8>> {
        let what = self.what;
        self.read(name)?.ok_or_else(|| corrupt(what, format!("{name} is missing")))
    }
}

fn local_name(name: &str) -> &str {
    name.rsplit_once(':').map(|(_, n)| n).unwrap_or(name)
}

fn attr(e: &quick_xml::events::BytesStart<'_>, key: &str) -> Option<String> {
    e.attributes().flatten().find(|a| local_name(a.key.as_ref()) == key).map(|a| a.value.to_string())
}

fn unescape(t: &quick_xml::events::BytesText<'_>) -> String {
    t.xml10_content().into_owned()
}

// ------------------------------------------------------------------------------------ DOCX

/// DOCX: paragraphs with headings as `#` lines, tables row by row with cells separated by tabs.
pub fn docx(bytes: &[u8]) -> Result<Builder> {
    let mut archive = Archive::open(bytes, "Word")?;
    let xml = archive.read_required("word/document.xml")?;
    let mut b = Builder::default();
    let mut reader = quick_xml::Reader::from_reader(xml.as_slice());
    let mut buf = Vec::new();
    let mut paragraph = String::new();
    let mut heading: Option<usize> = None;
    let mut in_text = false;
    let mut table_depth = 0usize;
    let mut row: Vec<String> = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => match local_name(e.name().as_ref()) {
                "p" => {
                    paragraph.clear();
                    heading = None;
                }
                "t" => in_text = true,
                "tbl" => table_depth += 1,
                "tr" => row.clear(),
                "tc" => row.push(String::new()),
                _ => {}
            },
            Ok(Event::Empty(e)) => match local_name(e.name().as_ref()) {
                "pStyle" => {
                    let style = attr(&e, "val").unwrap_or_default().to_ascii_lowercase();
                    heading = if style == "title" {
                        Some(1)
                    } else {
                        style.strip_prefix("heading").and_then(|n| n.trim().parse().ok())
                    };
                }
                "tab" => paragraph.push('\t'),
                "br" | "cr" => paragraph.push('\n'),
                _ => {}
            },
            Ok(Event::Text(t)) if in_text => paragraph.push_str(&unescape(&t)),
            Ok(Event::GeneralRef(r)) if in_text => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    paragraph.push(c);
                } else {
                    match r.as_ref() {
                        "amp" => paragraph.push('&'),
                        "lt" => paragraph.push('<'),
                        "gt" => paragraph.push('>'),
                        "quot" => paragraph.push('"'),
                        "apos" => paragraph.push('\''),
                        _ => {}
                    }
                }
            }
            Ok(Event::End(e)) => match local_name(e.name().as_ref()) {
                "t" => in_text = false,
                "p" if table_depth > 0 => {
                    if let Some(cell) = row.last_mut() {
                        if !cell.is_empty() {
                            cell.push(' ');
                        }
                        cell.push_str(paragraph.trim());
                    }
                    paragraph.clear();
                }
                "p" => {
                    let text = paragraph.trim().to_string();
                    if let (Some(level), false) = (heading, text.is_empty()) {
                        if b.title.is_none() && level == 1 {
                            b.title = Some(text.clone());
                        }
                        b.paragraph(&format!("{} {text}", "#".repeat(level.clamp(1, 6))));
                    } else {
                        b.paragraph(&text);
                    }
                    paragraph.clear();
                }
                "tr" => {
                    let line = row.iter().map(|c| c.trim()).collect::<Vec<_>>().join("\t");
                    b.paragraph(&line);
                    row.clear();
                }
                "tbl" => table_depth = table_depth.saturating_sub(1),
                _ => {}
            },
            Ok(Event::Eof) => break,
            Err(e) => return Err(corrupt("Word", e)),
            _ => {}
        }
        buf.clear();
    }
    if let Some(core) = archive.read("docProps/core.xml")?
        && let Some(title) = xml_first_text(&core, "title")
    {
        b.title = Some(title);
    }
    Ok(b)
}

/// The text of the first element with this local name.
fn xml_first_text(xml: &[u8], name: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut inside = false;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) if local_name(e.name().as_ref()) == name => inside = true,
            Ok(Event::Text(t)) if inside => {
                let text = unescape(&t).trim().to_string();
                return (!text.is_empty()).then_some(text);
            }
            Ok(Event::End(_)) if inside => return None,
            Ok(Event::Eof) | Err(_) => return None,
            _ => {}
        }
        buf.clear();
    }
}

/// Paragraphs of DrawingML text (`a:p` / `a:t`), as PPTX slides and notes hold them.
fn drawing_paragraphs(xml: &[u8]) -> Result<Vec<String>> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_text = false;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) if local_name(e.name().as_ref()) == "t" => in_text = true,
            Ok(Event::Text(t)) if in_text => current.push_str(&unescape(&t)),
            Ok(Event::End(e)) => match local_name(e.name().as_ref()) {
                "t" => in_text = false,
                "p" => {
                    if !current.trim().is_empty() {
                        out.push(current.trim().to_string());
                    }
                    current.clear();
                }
                _ => {}
            },
            Ok(Event::Empty(e)) if local_name(e.name().as_ref()) == "br" => current.push('\n'),
            Ok(Event::Eof) => break,
            Err(e) => return Err(corrupt("PowerPoint", e)),
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------ PPTX

/// PPTX: slide by slide (`## Slide N`), speaker notes after each slide's text.
pub fn pptx(bytes: &[u8]) -> Result<Builder> {
    let mut archive = Archive::open(bytes, "PowerPoint")?;
    let mut slides: Vec<(u32, String)> = archive
        .names()
        .into_iter()
        .filter_map(|n| {
            let num = n.strip_prefix("ppt/slides/slide")?.strip_suffix(".xml")?.parse().ok()?;
            Some((num, n))
        })
        .collect();
    if slides.is_empty() {
        return Err(corrupt("PowerPoint", "it has no slides"));
    }
    slides.sort();
    let mut b = Builder::default();
    for (num, name) in slides {
        let xml = archive.read_required(&name)?;
        let paragraphs = drawing_paragraphs(&xml)?;
        b.mark("slide", json!(num));
        b.paragraph(&format!("## Slide {num}"));
        if b.title.is_none() {
            b.title = paragraphs.first().cloned();
        }
        for p in &paragraphs {
            b.paragraph(p);
        }
        let rels = format!("ppt/slides/_rels/slide{num}.xml.rels");
        if let Some(rels) = archive.read(&rels)?
            && let Some(target) = notes_target(&rels)
            && let Some(notes) = archive.read(&target)?
        {
            let notes: Vec<String> =
                drawing_paragraphs(&notes)?.into_iter().filter(|p| p.parse::<u32>().is_err()).collect();
            if !notes.is_empty() {
                b.paragraph(&format!("Notes: {}", notes.join("\n")));
            }
        }
    }
    if let Some(core) = archive.read("docProps/core.xml")?
        && let Some(title) = xml_first_text(&core, "title")
    {
        b.title = Some(title);
    }
    Ok(b)
}

fn notes_target(rels: &[u8]) -> Option<String> {
    let mut reader = quick_xml::Reader::from_reader(rels);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Empty(e)) | Ok(Event::Start(e))
                if local_name(e.name().as_ref()) == "Relationship"
                    && attr(&e, "Type").is_some_and(|t| t.ends_with("/notesSlide")) =>
            {
                let target = attr(&e, "Target")?;
                return Some(format!("ppt/{}", target.trim_start_matches("../")));
            }
            Ok(Event::Eof) | Err(_) => return None,
            _ => {}
        }
        buf.clear();
    }
}

// ------------------------------------------------------------------------------------ spreadsheets

fn cell_text(value: &calamine::Data) -> String {
    match value {
        calamine::Data::Empty => String::new(),
        calamine::Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        other => other.to_string(),
    }
}

/// Rows under their headers: each data row becomes `header: value; header: value`.
fn rows_with_headers(b: &mut Builder, rows: impl Iterator<Item = Vec<String>>) {
    let mut headers: Option<Vec<String>> = None;
    for row in rows {
        if row.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        match &headers {
            None => headers = Some(row.iter().map(|h| h.trim().to_string()).collect()),
            Some(h) => {
                let line = row
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| !v.trim().is_empty())
                    .map(|(i, v)| match h.get(i).filter(|h| !h.is_empty()) {
                        Some(name) => format!("{name}: {}", v.trim()),
                        None => v.trim().to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                b.paragraph(&line);
            }
        }
    }
}

/// XLSX, XLS and ODS, sheet by sheet.
///
/// A sheet is read as a dense grid of its used range, so one cell at A1 and one at XFD1048576
/// would ask for 17 billion cells: XLSX and XLSB sheets are streamed cell by cell and refused
/// (`too_many_cells`) as soon as their range spans more than `max_sheet_cells`, before the grid
/// is built; XLS and ODS (which calamine reads whole, within the format's own bounds) are
/// checked once read. Zip-based workbooks must also stay within `max_expanded_bytes`.
pub fn workbook(bytes: &[u8], what: &'static str) -> Result<Builder> {
    let mut b = Builder::default();
    for (name, rows) in workbook_sheets(bytes, what)? {
        b.mark("sheet", json!(name));
        b.paragraph(&format!("## Sheet: {name}"));
        rows_with_headers(&mut b, rows.into_iter());
    }
    Ok(b)
}

/// Each readable sheet of a workbook, by name, as rows of cell texts (its first row usually
/// its headers), within the same budgets as [`workbook`].
pub fn workbook_sheets(bytes: &[u8], what: &'static str) -> Result<Vec<(String, Vec<Vec<String>>)>> {
    if what != "Excel 97-2003" && bytes.starts_with(b"\xd0\xcf\x11\xe0") {
        Archive::open(bytes, what)?; // reports the password protection
    }
    if bytes.starts_with(b"PK") {
        // calamine inflates the parts itself, without a cap: measure them first.
        Archive::open(bytes, what)?.check_expanded_size()?;
    }
    let mut sheets = calamine::open_workbook_auto_from_rs(Cursor::new(bytes.to_vec())).map_err(|e| {
        let text = e.to_string();
        if text.to_lowercase().contains("password") || text.to_lowercase().contains("encrypt") {
            Error::new(
                Code::CorruptFile,
                format!("this {what} file is password-protected; remove the password and upload it again"),
            )
        } else {
            corrupt(what, text)
        }
    })?;
    use calamine::Reader;
    let max_cells = budgets().max_sheet_cells;
    let mut out = Vec::new();
    for name in sheets.sheet_names() {
        // A sheet that cannot be read (a chart sheet, a broken part) is skipped, as calamine's
        // `worksheets()` does.
        let range = match &mut sheets {
            calamine::Sheets::Xlsx(x) => match x.worksheet_cells_reader(&name) {
                Ok(mut cells) => sparse_range(&name, max_cells, || cells.next_cell().map_err(drop))?,
                Err(_) => None,
            },
            calamine::Sheets::Xlsb(x) => match x.worksheet_cells_reader(&name) {
                Ok(mut cells) => sparse_range(&name, max_cells, || cells.next_cell().map_err(drop))?,
                Err(_) => None,
            },
            other => other.worksheet_range(&name).ok(),
        };
        let Some(range) = range else { continue };
        let (rows, cols) = range.get_size();
        check_sheet_span(&name, rows as u64, cols as u64, max_cells)?;
        let rows = range.rows().map(|r| r.iter().map(cell_text).collect()).collect();
        out.push((name, rows));
    }
    Ok(out)
}

fn check_sheet_span(name: &str, rows: u64, cols: u64, max_cells: u64) -> Result<()> {
    let cells = rows.saturating_mul(cols);
    if cells > max_cells {
        return Err(exceeded(
            Code::TooManyCells,
            format!(
                "the sheet '{name}' spans {rows} rows by {cols} columns ({cells} cells), more than the {max_cells} \
                 cells a sheet may span"
            ),
            "max-sheet-cells",
        ));
    }
    Ok(())
}

/// The non-empty cells of a sheet, streamed, into a range; refused as soon as their bounding
/// box (or their number) passes `max_cells`. `None` when the sheet cannot be read.
fn sparse_range<'a>(
    name: &str,
    max_cells: u64,
    mut next: impl FnMut() -> std::result::Result<Option<calamine::Cell<calamine::DataRef<'a>>>, ()>,
) -> Result<Option<calamine::Range<calamine::Data>>> {
    let mut cells = Vec::new();
    let (mut top, mut bottom, mut left, mut right) = (u32::MAX, 0u32, u32::MAX, 0u32);
    loop {
        let cell = match next() {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(_) => return Ok(None),
        };
        if matches!(cell.get_value(), calamine::DataRef::Empty) {
            continue;
        }
        let (row, col) = cell.get_position();
        (top, bottom, left, right) = (top.min(row), bottom.max(row), left.min(col), right.max(col));
        let rows = u64::from(bottom - top) + 1;
        let cols = u64::from(right - left) + 1;
        check_sheet_span(name, rows, cols, max_cells)?;
        if cells.len() as u64 >= max_cells {
            // The same cells over and over.
            return Err(exceeded(
                Code::TooManyCells,
                format!("the sheet '{name}' holds more than the {max_cells} cells a sheet may span"),
                "max-sheet-cells",
            ));
        }
        let value: calamine::Data = cell.get_value().clone().into();
        cells.push(calamine::Cell::new((row, col), value));
    }
    Ok(Some(calamine::Range::from_sparse(cells)))
}

/// CSV or TSV text (already decoded), rows with their headers.
pub fn delimited(text: &str, delimiter: u8) -> Result<Builder> {
    let mut b = Builder::default();
    rows_with_headers(&mut b, delimited_rows(text, delimiter)?.into_iter());
    Ok(b)
}

/// The records of CSV or TSV text (already decoded), as cell texts.
pub fn delimited_rows(text: &str, delimiter: u8) -> Result<Vec<Vec<String>>> {
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| corrupt(if delimiter == b'\t' { "TSV" } else { "CSV" }, e))?;
        rows.push(record.iter().map(str::to_string).collect::<Vec<_>>());
    }
    Ok(rows)
}

// ------------------------------------------------------------------------------------ PDF

/// PDF: the text layer page by page; a page number for every stretch of text.
pub fn pdf(bytes: &[u8]) -> Result<Builder> {
    let doc = lopdf::Document::load_mem(bytes).map_err(|e| corrupt("PDF", e))?;
    if doc.is_encrypted() {
        return Err(Error::new(
            Code::CorruptFile,
            "this PDF is password-protected (encrypted); remove the password and upload it again",
        ));
    }
    check_pdf_streams(&doc)?;
    // pdf-extract panics on some malformed files; that must fail this document, not the worker.
    let pages = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut collector = crate::pdf_layout::Collector::default();
        pdf_extract::output_doc(&doc, &mut collector).map(|_| crate::pdf_layout::pages_in_reading_order(collector))
    }))
    .map_err(|_| corrupt("PDF", "its content streams are malformed"))?
    .map_err(|e| corrupt("PDF", e))?;
    let mut b = Builder::default();
    for (i, page) in pages.iter().enumerate() {
        b.mark("page", json!(i + 1));
        for paragraph in page.split("\n\n") {
            let joined = paragraph.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n");
            b.paragraph(&joined);
        }
    }
    if b.text.trim().is_empty() && !pages.is_empty() {
        return Err(Error::new(
            Code::NoTextContent,
            format!(
                "this PDF has {} page(s) but no text layer (a scan?); text recognition (OCR) is not available",
                pages.len()
            ),
        ));
    }
    Ok(b)
}

/// lopdf inflates a stream whole when it is read, with no cap: the Flate streams the text is
/// read from (everything but images, which are never decoded here) are measured first, by
/// inflating them into nothing, and together may not pass `max_expanded_bytes`. Other filters
/// (LZW) and the object streams lopdf unpacks while loading are bounded only by the parser
/// process's memory limit (`parser_memory_bytes`, when parsing is isolated).
fn check_pdf_streams(doc: &lopdf::Document) -> Result<()> {
    let max = budgets().max_expanded_bytes;
    let mut total = 0u64;
    for object in doc.objects.values() {
        let lopdf::Object::Stream(stream) = object else { continue };
        if stream.dict.get(b"Subtype").and_then(lopdf::Object::as_name).is_ok_and(|n| n == b"Image") {
            continue;
        }
        let first_filter = stream.filters().ok().and_then(|f| f.first().map(|f| f.to_vec()));
        let size = match first_filter.as_deref() {
            Some(b"FlateDecode") => {
                let decoder = flate2::read::ZlibDecoder::new(stream.content.as_slice());
                let mut counted = CountingSink(0);
                // A damaged stream counts as far as it inflates.
                let _ = std::io::copy(&mut decoder.take(max - total + 1), &mut counted);
                counted.0
            }
            // Raw streams are as large as the file; other filters are left to the memory limit.
            _ => 0,
        };
        total += size;
        if total > max {
            return Err(exceeded(
                Code::ExpandedSizeExceeded,
                format!("this PDF's content expands to more than {} MiB", max >> 20),
                "max-expanded-mb",
            ));
        }
    }
    Ok(())
}

/// Counts what is written to it, keeping nothing.
struct CountingSink(u64);

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ------------------------------------------------------------------------------------ EPUB

/// EPUB: the chapters in reading (spine) order, each read as HTML.
pub fn epub(bytes: &[u8], html_to_text: impl Fn(&str) -> (Option<String>, String)) -> Result<Builder> {
    let mut archive = Archive::open(bytes, "EPUB")?;
    let container = archive.read_required("META-INF/container.xml")?;
    let opf_path = {
        let mut reader = quick_xml::Reader::from_reader(container.as_slice());
        let mut buf = Vec::new();
        let mut found = None;
        loop {
            match reader.read_event_into(&mut buf) {
                Ok(Event::Empty(e)) | Ok(Event::Start(e)) if local_name(e.name().as_ref()) == "rootfile" => {
                    found = attr(&e, "full-path");
                    break;
                }
                Ok(Event::Eof) | Err(_) => break,
                _ => {}
            }
            buf.clear();
        }
        found.ok_or_else(|| corrupt("EPUB", "no package document"))?
    };
    let opf = archive.read_required(&opf_path)?;
    let base = opf_path.rsplit_once('/').map(|(d, _)| format!("{d}/")).unwrap_or_default();
    let mut manifest = std::collections::HashMap::new();
    let mut spine = Vec::new();
    let mut reader = quick_xml::Reader::from_reader(opf.as_slice());
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Empty(e)) | Ok(Event::Start(e)) => match local_name(e.name().as_ref()) {
                "item" => {
                    if let (Some(id), Some(href)) = (attr(&e, "id"), attr(&e, "href")) {
                        manifest.insert(id, href);
                    }
                }
                "itemref" => spine.extend(attr(&e, "idref")),
                _ => {}
            },
            Ok(Event::Eof) => break,
            Err(e) => return Err(corrupt("EPUB", e)),
            _ => {}
        }
        buf.clear();
    }
    let mut b = Builder { title: xml_first_text(&opf, "title"), ..Default::default() };
    for (i, id) in spine.iter().enumerate() {
        let Some(href) = manifest.get(id) else { continue };
        let Some(chapter) = archive.read(&format!("{base}{href}"))? else { continue };
        let (_, text) = html_to_text(&String::from_utf8_lossy(&chapter));
        b.mark("chapter", json!(i + 1));
        for p in text.split("\n\n") {
            b.paragraph(p);
        }
    }
    Ok(b)
}

// ------------------------------------------------------------------------------------ RTF

/// RTF: the text, with `\par` as paragraph breaks, `\'hh` decoded in the document's code page
/// (`\ansicpg936` is GBK) and `\uN` as Unicode; font tables, styles and pictures skipped.
pub fn rtf(bytes: &[u8]) -> Result<String> {
    let mut out = String::new();
    let mut pending: Vec<u8> = Vec::new(); // \'hh bytes awaiting decoding
    let mut codepage = encoding_rs::WINDOWS_1252;
    let mut skip_depth: Option<usize> = None;
    let mut depth = 0usize;
    let mut uc_skip = 1usize;
    let mut to_skip = 0usize;
    let mut i = 0;
    let flush = |pending: &mut Vec<u8>, out: &mut String, cp: &'static encoding_rs::Encoding| {
        if !pending.is_empty() {
            out.push_str(&cp.decode_without_bom_handling(pending).0);
            pending.clear();
        }
    };
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'{' => {
                flush(&mut pending, &mut out, codepage);
                depth += 1;
                i += 1;
            }
            b'}' => {
                flush(&mut pending, &mut out, codepage);
                if skip_depth == Some(depth) {
                    skip_depth = None;
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'\\' => {
                i += 1;
                let Some(&next) = bytes.get(i) else { break };
                if next == b'\'' {
                    let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                    if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
                        && skip_depth.is_none()
                    {
                        if to_skip > 0 {
                            to_skip -= 1;
                        } else {
                            pending.push(v);
                        }
                    }
                    i += 3;
                    continue;
                }
                flush(&mut pending, &mut out, codepage);
                if !next.is_ascii_alphabetic() {
                    if skip_depth.is_none() {
                        match next {
                            b'\\' | b'{' | b'}' => out.push(next as char),
                            b'~' => out.push('\u{a0}'),
                            b'*' => skip_depth = Some(depth),
                            _ => {}
                        }
                    }
                    i += 1;
                    continue;
                }
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                    i += 1;
                }
                let word = String::from_utf8_lossy(&bytes[start..i]).into_owned();
                let num_start = i;
                if i < bytes.len() && (bytes[i] == b'-' || bytes[i].is_ascii_digit()) {
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                let param: Option<i64> = std::str::from_utf8(&bytes[num_start..i]).ok().and_then(|s| s.parse().ok());
                if bytes.get(i) == Some(&b' ') {
                    i += 1;
                }
                if skip_depth.is_some() {
                    continue;
                }
                match word.as_str() {
                    "par" | "line" | "sect" | "page" => out.push('\n'),
                    "tab" | "cell" => out.push('\t'),
                    "row" => out.push('\n'),
                    "ansicpg" => {
                        if let Some(cp) = param.and_then(|p| codepage_encoding(p as u16)) {
                            codepage = cp;
                        }
                    }
                    "uc" => uc_skip = param.unwrap_or(1).max(0) as usize,
                    "u" => {
                        if let Some(p) = param {
                            let code = if p < 0 { p + 65536 } else { p } as u32;
                            out.extend(char::from_u32(code));
                            to_skip = uc_skip;
                        }
                    }
                    "fonttbl" | "colortbl" | "stylesheet" | "info" | "pict" | "object" | "header" | "footer"
                    | "listtable" | "listoverridetable" | "themedata" | "datastore" | "latentstyles" => {
                        skip_depth = Some(depth)
                    }
                    _ => {}
                }
            }
            b'\r' | b'\n' => i += 1,
            _ => {
                if skip_depth.is_none() {
                    if to_skip > 0 {
                        to_skip -= 1;
                    } else {
                        flush(&mut pending, &mut out, codepage);
                        out.push(c as char);
                    }
                }
                i += 1;
            }
        }
    }
    flush(&mut pending, &mut out, codepage);
    Ok(out)
}

fn codepage_encoding(cp: u16) -> Option<&'static encoding_rs::Encoding> {
    Some(match cp {
        936 => encoding_rs::GBK,
        950 => encoding_rs::BIG5,
        932 => encoding_rs::SHIFT_JIS,
        949 => encoding_rs::EUC_KR,
        1250 => encoding_rs::WINDOWS_1250,
        1251 => encoding_rs::WINDOWS_1251,
        1252 => encoding_rs::WINDOWS_1252,
        65001 => encoding_rs::UTF_8,
        _ => return None,
    })
}

// ------------------------------------------------------------------------------------ email

/// An email: subject as title, the headers people care about, the text body (or the HTML body
/// as text), and attachment names.
pub fn email(bytes: &[u8], html_to_text: impl Fn(&str) -> (Option<String>, String)) -> Result<(Builder, Value)> {
    let message =
        mail_parser::MessageParser::default().parse(bytes).ok_or_else(|| corrupt("email", "no message found"))?;
    let mut b = Builder { title: message.subject().map(str::to_string), ..Default::default() };
    let addresses = |a: Option<&mail_parser::Address<'_>>| {
        a.map(|a| {
            a.iter()
                .map(|x| match (x.name(), x.address()) {
                    (Some(n), Some(e)) => format!("{n} <{e}>"),
                    (None, Some(e)) => e.to_string(),
                    (Some(n), None) => n.to_string(),
                    (None, None) => String::new(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    let from = addresses(message.from());
    let to = addresses(message.to());
    let date = message.date().map(|d| d.to_rfc3339());
    let mut header = Vec::new();
    if let Some(s) = message.subject() {
        header.push(format!("Subject: {s}"));
    }
    if let Some(f) = &from {
        header.push(format!("From: {f}"));
    }
    if let Some(t) = &to {
        header.push(format!("To: {t}"));
    }
    if let Some(d) = &date {
        header.push(format!("Date: {d}"));
    }
    b.paragraph(&header.join("\n"));
    let body = if message.text_body_count() > 0 {
        (0..message.text_body_count())
            .filter_map(|i| message.body_text(i))
            .map(|t| t.into_owned())
            .collect::<Vec<_>>()
            .join("\n\n")
    } else {
        (0..message.html_body_count())
            .filter_map(|i| message.body_html(i))
            .map(|h| html_to_text(&h).1)
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    for p in body.replace("\r\n", "\n").split("\n\n") {
        b.paragraph(p);
    }
    use mail_parser::MimeHeaders;
    let attachments: Vec<String> =
        message.attachments().filter_map(|a| a.attachment_name().map(str::to_string)).collect();
    if !attachments.is_empty() {
        b.paragraph(&format!("Attachments: {}", attachments.join(", ")));
    }
    let meta = json!({"from": from, "to": to, "date": date, "attachments": attachments});
    Ok((b, meta))
}

// ------------------------------------------------------------------------------------ JSON

/// JSON as `path: value` lines; each element of a top-level array is its own paragraph.
pub fn json_text(value: &Value) -> String {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&p, v, out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), v, out);
                }
            }
            Value::Null => {}
            Value::String(s) => out.push(if prefix.is_empty() { s.clone() } else { format!("{prefix}: {s}") }),
            other => out.push(if prefix.is_empty() { other.to_string() } else { format!("{prefix}: {other}") }),
        }
    }
    let render = |v: &Value| {
        let mut lines = Vec::new();
        walk("", v, &mut lines);
        lines.join("\n")
    };
    match value {
        Value::Array(items) => items.iter().map(render).filter(|s| !s.is_empty()).collect::<Vec<_>>().join("\n\n"),
        other => render(other),
    }
}
