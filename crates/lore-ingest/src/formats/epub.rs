//! EPUB: chapters in reading order.

use lore_core::error::Result;
use quick_xml::events::Event;
use serde_json::json;

use super::*;

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
