//! PDF: text by page, streams measured before they are inflated, scanned pages recognised.

use std::collections::HashMap;
use std::io::{Read, Write};

use lore_core::budget::{budgets, exceeded};
use lore_core::error::{Code, Error, Result};
use serde_json::{Value, json};

use lopdf::xobject::PdfImage;

use super::*;
use crate::ocr::{self, OcrMode};

/// PDF: the text layer page by page, a page number for every stretch of text and a region (its
/// box on the page) for every line. Pages without
/// a text layer (scans, text drawn as outlines), or every page with `OcrMode::Always`, are
/// rendered and read by text recognition, their lines kept as regions in PDF points from the
/// page's top-left corner; the second value is the `ocr` metadata when any page was.
pub fn pdf(bytes: &[u8], mode: OcrMode) -> Result<(Builder, Option<Value>)> {
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
    let page_ids: Vec<lopdf::ObjectId> = doc.get_pages().into_values().collect();
    // Each page's images (looked up, not decoded), where recognition may read them.
    let images: Vec<Vec<PdfImage<'_>>> = match mode {
        OcrMode::Never => Vec::new(),
        _ => page_ids.iter().map(|id| doc.get_page_images(*id).unwrap_or_default()).collect(),
    };
    let images_of = |i: usize| images.get(i).map_or(&[][..], Vec::as_slice);
    let visible: Vec<usize> = pages.iter().map(crate::pdf_layout::PageText::visible_chars).collect();
    // A scan: no text at all (text drawn as outlines, too), or a little text beside an image
    // (a scanner's stamp, a cover's title over a photo).
    let scanned: Vec<usize> = (0..pages.len())
        .filter(|&i| match mode {
            OcrMode::Never => false,
            OcrMode::Always => true,
            OcrMode::Auto => visible[i] == 0 || visible[i] < ocr::SCANNED_PAGE_CHARS && !images_of(i).is_empty(),
        })
        .collect();
    let has_text_layer = visible.iter().any(|v| *v > 0);
    let (recognised, metadata) = match recognise_pages(bytes, &pages, &images, &scanned) {
        Ok((recognised, metadata)) => (recognised, metadata),
        // Text pages are worth keeping when the recogniser is missing; the scans are named.
        Err(e) if e.code == Code::OcrUnavailable && has_text_layer && mode == OcrMode::Auto => {
            let unread: Vec<usize> = scanned.iter().map(|i| i + 1).collect();
            (HashMap::new(), Some(json!({"unavailable": e.message, "pages_not_read": unread})))
        }
        Err(e) => return Err(e),
    };
    let mut b = Builder::default();
    let mut embedded = EmbeddedImages::new(mode);
    for (i, page) in pages.iter().enumerate() {
        b.mark("page", json!(i + 1));
        // What recognition read replaces the text layer, unless (automatically) it read less.
        if let Some((lines, scale)) = recognised.get(&i)
            && (mode == OcrMode::Always || lines.visible_chars() > visible[i])
        {
            ocr::append(&mut b, lines, i as u32 + 1, *scale, false);
            continue;
        }
        // The text layer, each line's box a region (in points from the top-left corner).
        for paragraph in &page.paragraphs {
            let offset = b.next_paragraph_start();
            b.paragraph(&paragraph.text);
            for &(start, len, bbox) in &paragraph.lines {
                b.regions.push(Region {
                    char_start: offset + start,
                    char_end: offset + start + len,
                    page: i as u32 + 1,
                    bbox,
                    page_size: page.size,
                    low_confidence: Vec::new(),
                });
            }
        }
        // Images beside the text (a screenshot, a scanned insert): their text after the page's.
        // An image is decoded only while something will read it.
        for image in images_of(i) {
            if !embedded.wants_more() {
                break;
            }
            if let Some(text) = image_file(image).and_then(|(file, _)| embedded.text_of(&file)) {
                b.paragraph(&text);
            }
        }
    }
    let metadata = match (metadata, embedded.metadata()) {
        (Some(Value::Object(mut pages)), Some(Value::Object(images))) => {
            for key in ["images_read", "images_with_text", "images_skipped", "images_limit_reached"] {
                if let Some(v) = images.get(key) {
                    pages.insert(key.to_string(), v.clone());
                }
            }
            Some(Value::Object(pages))
        }
        (pages, images) => pages.or(images),
    };
    if b.text.trim().is_empty() && !pages.is_empty() {
        let why = if mode == OcrMode::Never {
            "text recognition (OCR) is turned off for this knowledge base (settings.ocr is \"never\")"
        } else {
            "text recognition (OCR) found none on its pages either"
        };
        return Err(Error::new(
            Code::NoTextContent,
            format!("this PDF has {} page(s) but no text layer (a scan?); {why}", pages.len()),
        ));
    }
    Ok((b, metadata))
}

type RecognisedPages = HashMap<usize, (ocr::Recognised, f32)>;

/// Renders and recognises the pages at these indexes: each page's lines, with the scale from
/// the rendering's pixels to PDF points.
fn recognise_pages(
    bytes: &[u8], pages: &[crate::pdf_layout::PageText], images: &[Vec<PdfImage<'_>>], indexes: &[usize],
) -> Result<(RecognisedPages, Option<Value>)> {
    if indexes.is_empty() {
        return Ok((HashMap::new(), None));
    }
    let mut session = ocr::Session::start()?;
    // poppler reads the PDF from a file of the parser process's own (removed when dropped).
    let mut file = tempfile::NamedTempFile::new().map_err(Error::internal)?;
    file.write_all(bytes).map_err(Error::internal)?;
    let mut recognised = HashMap::new();
    for &i in indexes {
        let [width, height] = pages.get(i).map_or([612.0, 792.0], |p| p.size.map(f64::from));
        let page_images = images.get(i).map_or(&[][..], Vec::as_slice);
        // A scanner's page is one image covering the page: read at its own pixels (rendering
        // resamples them, and smooths the strokes with the speckle). Other pages are rendered,
        // no finer than their widest image.
        let (image, dpi) = match whole_page_image(page_images, width, height) {
            Some((image, pixels_wide)) => (image, pixels_wide as f64 * 72.0 / width.max(1.0)),
            None => {
                let image_dpi =
                    page_images.iter().map(|image| image.width.max(0) as f64 * 72.0 / width.max(1.0)).reduce(f64::max);
                let dpi = ocr::dpi_for(width, height, image_dpi);
                (session.render_pdf_page(file.path(), i as u32 + 1, dpi)?, dpi)
            }
        };
        let lines = session.recognise(&image, Some(dpi.round().max(1.0) as u32))?;
        session.pages.push(i as u32 + 1);
        recognised.insert(i, (lines, (72.0 / dpi) as f32));
    }
    Ok((recognised, Some(session.metadata())))
}

/// The page's image as a file the recogniser reads, and its width in pixels, when the page is
/// one upright image with the page's proportions, stored as JPEG or as 8-bit grey or RGB
/// pixels (Flate, no predictor). Other pages are rendered.
fn whole_page_image(images: &[PdfImage<'_>], width: f64, height: f64) -> Option<(Vec<u8>, i64)> {
    let [image] = images else { return None };
    let (w, h) = (image.width, image.height);
    if w <= 0 || h <= 0 || ((w as f64 / h as f64) - (width / height.max(1.0))).abs() > 0.02 {
        return None;
    }
    image_file(image)
}

/// A PDF image as a file the recogniser reads, and its width in pixels: JPEG as it is, 8-bit
/// grey or RGB pixels (Flate, no predictor) as a PNM; `None` for other encodings.
fn image_file(image: &PdfImage<'_>) -> Option<(Vec<u8>, i64)> {
    let (w, h) = (image.width, image.height);
    if w <= 0 || h <= 0 {
        return None;
    }
    let filters = image.filters.clone().unwrap_or_default();
    let names: Vec<&str> = filters.iter().map(String::as_str).collect();
    if names == ["DCTDecode"] {
        return Some((image.content.to_vec(), w));
    }
    let channels: u64 = match image.color_space.as_deref() {
        Some("DeviceGray") => 1,
        Some("DeviceRGB") => 3,
        _ => return None,
    };
    if names != ["FlateDecode"] || image.bits_per_component != Some(8) || image.origin_dict.has(b"DecodeParms") {
        return None;
    }
    // Pixels are inflated only as far as the image needs, and within the budget.
    let size = (w as u64) * (h as u64) * channels;
    if size > budgets().max_expanded_bytes {
        return None;
    }
    let mut pixels = Vec::new();
    flate2::read::ZlibDecoder::new(image.content).take(size).read_to_end(&mut pixels).ok()?;
    if pixels.len() as u64 != size {
        return None;
    }
    // A binary PNM (P5 grey, P6 colour), which leptonica reads.
    let mut pnm = format!("P{}\n{w} {h}\n255\n", if channels == 1 { 5 } else { 6 }).into_bytes();
    pnm.extend(pixels);
    Some((pnm, w))
}

/// lopdf inflates a stream whole when it is read, with no cap: the Flate streams the text is
/// read from (everything but images, which are decoded only for recognition, one at a time,
/// each within the budget, see `image_file`) are measured first, by
/// inflating them into nothing, and together may not pass `max_expanded_bytes`. Other filters
/// (LZW) and the object streams lopdf unpacks while loading are bounded only by the parser
/// process's memory limit (`parser_memory_bytes`, when parsing is isolated).
pub(crate) fn check_pdf_streams(doc: &lopdf::Document) -> Result<()> {
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
pub(crate) struct CountingSink(u64);

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
