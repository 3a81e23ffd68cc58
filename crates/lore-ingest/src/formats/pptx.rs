//! PPTX: slides in order, each a location.

use lore_core::error::Result;
use quick_xml::events::Event;
use serde_json::json;

use super::*;

/// PPTX: slide by slide (`## Slide N`), the text its images carry after its own text
/// ([`EmbeddedImages`]), then its speaker notes; the second value is the images' `ocr` metadata.
pub fn pptx(bytes: &[u8], mode: crate::ocr::OcrMode) -> Result<(Builder, Option<serde_json::Value>)> {
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
    let mut images = EmbeddedImages::new(mode);
    for (num, name) in slides {
        let xml = archive.read_required(&name)?;
        let paragraphs = drawing_paragraphs(&xml)?;
        b.mark("slide", json!(num));
        b.paragraph(&format!("## Slide {num}"));
        if b.title.is_none() {
            b.title = paragraphs.first().filter(|p| !p.starts_with('|')).cloned();
        }
        for p in &paragraphs {
            b.paragraph(p);
        }
        let rels = archive.read(&format!("ppt/slides/_rels/slide{num}.xml.rels"))?;
        let parts = rels.as_deref().map(|r| relationships(r, "ppt/slides")).unwrap_or_default();
        for id in image_ids(&xml) {
            if !images.wants_more() {
                break;
            }
            if let Some(image) = parts.get(&id).and_then(|t| archive.read_image(t))
                && let Some(text) = images.text_of(&image)
            {
                b.paragraph(&text);
            }
        }
        if let Some(rels) = rels
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
    Ok((b, images.metadata()))
}

/// The relationship ids of a part's images (`a:blip r:embed`), in document order.
fn image_ids(xml: &[u8]) -> Vec<String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Empty(e)) | Ok(Event::Start(e)) if local_name(e.name().as_ref()) == "blip" => {
                out.extend(attr(&e, "embed"));
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    out
}

pub(crate) fn notes_target(rels: &[u8]) -> Option<String> {
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
