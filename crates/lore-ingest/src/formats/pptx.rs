//! PPTX: slides in order, each a location.

use lore_core::error::Result;
use quick_xml::events::Event;
use serde_json::json;

use super::*;

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
            b.title = paragraphs.first().filter(|p| !p.starts_with('|')).cloned();
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
