//! DOCX: paragraphs, headings, tables.

use lore_core::error::Result;
use quick_xml::events::Event;

use super::*;

/// DOCX: paragraphs with headings as `#` lines, tables as Markdown tables (a table inside a
/// cell is that cell's text).
///
/// Images in the text are read for the text they carry ([`EmbeddedImages`]), which follows
/// the paragraph they stand in; the second value is their `ocr` metadata.
pub fn docx(bytes: &[u8], mode: crate::ocr::OcrMode) -> Result<(Builder, Option<serde_json::Value>)> {
    let mut archive = Archive::open(bytes, "Word")?;
    let xml = archive.read_required("word/document.xml")?;
    let rels = archive.read("word/_rels/document.xml.rels")?.map(|r| relationships(&r, "word")).unwrap_or_default();
    let mut images = EmbeddedImages::new(mode);
    let mut image_texts: Vec<String> = Vec::new();
    let mut b = Builder::default();
    let mut reader = quick_xml::Reader::from_reader(xml.as_slice());
    let mut buf = Vec::new();
    let mut paragraph = String::new();
    let mut heading: Option<usize> = None;
    let mut in_text = false;
    let mut table_depth = 0usize;
    let mut row: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            // An image (DrawingML's `a:blip`, naming its part by relationship).
            Ok(Event::Start(e) | Event::Empty(e)) if local_name(e.name().as_ref()) == "blip" => {
                // Read out of the archive only when it will be recognised.
                let target = attr(&e, "embed").filter(|_| images.wants_more()).and_then(|id| rels.get(&id).cloned());
                if let Some(image) = target.and_then(|t| archive.read_image(&t))
                    && let Some(text) = images.text_of(&image)
                {
                    image_texts.push(text);
                }
            }
            Ok(Event::Start(e)) => match local_name(e.name().as_ref()) {
                "p" => {
                    paragraph.clear();
                    heading = None;
                }
                "t" => in_text = true,
                "tbl" => table_depth += 1,
                "tr" if table_depth == 1 => row.clear(),
                "tc" if table_depth == 1 => row.push(String::new()),
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
                "p" if table_depth > 0 => add_to_cell(&mut row, &std::mem::take(&mut paragraph)),
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
                    if table_depth == 0 {
                        for text in image_texts.drain(..) {
                            b.paragraph(&text);
                        }
                    }
                }
                "tr" if table_depth == 1 => rows.push(std::mem::take(&mut row)),
                "tbl" => {
                    table_depth = table_depth.saturating_sub(1);
                    if table_depth == 0 {
                        b.table(std::mem::take(&mut rows));
                        for text in image_texts.drain(..) {
                            b.paragraph(&text);
                        }
                    }
                }
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
    Ok((b, images.metadata()))
}

/// A paragraph inside a table cell joins the row's last cell's text.
fn add_to_cell(row: &mut [String], paragraph: &str) {
    if let Some(cell) = row.last_mut() {
        if !cell.is_empty() {
            cell.push(' ');
        }
        cell.push_str(paragraph.trim());
    }
}

/// The text of the first element with this local name.
pub(crate) fn xml_first_text(xml: &[u8], name: &str) -> Option<String> {
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

/// Paragraphs of DrawingML text (`a:p` / `a:t`), as PPTX slides and notes hold them; a table
/// (`a:tbl`) is one entry, a Markdown table.
pub(crate) fn drawing_paragraphs(xml: &[u8]) -> Result<Vec<String>> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_text = false;
    let mut table_depth = 0usize;
    let (mut row, mut rows): (Vec<String>, Vec<Vec<String>>) = (Vec::new(), Vec::new());
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => match local_name(e.name().as_ref()) {
                "t" => in_text = true,
                "tbl" => table_depth += 1,
                "tr" if table_depth == 1 => row.clear(),
                "tc" if table_depth == 1 => row.push(String::new()),
                _ => {}
            },
            Ok(Event::Text(t)) if in_text => current.push_str(&unescape(&t)),
            Ok(Event::End(e)) => match local_name(e.name().as_ref()) {
                "t" => in_text = false,
                "p" if table_depth > 0 => add_to_cell(&mut row, &std::mem::take(&mut current)),
                "p" => {
                    if !current.trim().is_empty() {
                        out.push(current.trim().to_string());
                    }
                    current.clear();
                }
                "tr" if table_depth == 1 => rows.push(std::mem::take(&mut row)),
                "tbl" => {
                    table_depth = table_depth.saturating_sub(1);
                    if table_depth == 0 && !rows.is_empty() {
                        out.push(crate::chunk::markdown_table(&std::mem::take(&mut rows)));
                    }
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
