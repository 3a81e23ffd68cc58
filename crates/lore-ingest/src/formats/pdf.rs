//! PDF: text by page, streams measured before they are inflated.

use std::io::Read;

use lore_core::budget::{budgets, exceeded};
use lore_core::error::{Code, Error, Result};
use serde_json::json;

use super::*;

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
