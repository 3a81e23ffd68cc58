//! Images: their size checked against the budget from the header alone, then read by text
//! recognition.

use lore_core::budget::{budgets, exceeded};
use lore_core::error::{Code, Error, Result};
use serde_json::Value;

use super::*;
use crate::ocr::{self, OcrMode};

/// An image's text, a region per recognised line (in the image's pixels), and the `ocr`
/// metadata. A multi-page TIFF gives a page each.
pub fn image(bytes: &[u8], mode: OcrMode) -> Result<(Builder, Value)> {
    check_image_size(bytes)?;
    if mode == OcrMode::Never {
        return Err(Error::new(
            Code::NoTextContent,
            "images are read by text recognition (OCR), which this knowledge base turns off (settings.ocr is \"never\")",
        ));
    }
    let mut session = ocr::Session::start()?;
    let recognised = session.recognise(bytes, None)?;
    let mut b = Builder::default();
    ocr::append(&mut b, &recognised, 1, 1.0, true);
    session.pages = b.locations.iter().filter_map(|l| l.value.as_u64()).map(|p| p as u32).collect();
    if b.text.trim().is_empty() {
        return Err(Error::new(Code::NoTextContent, "text recognition (OCR) found no text in this image"));
    }
    Ok((b, session.metadata()))
}

/// An image decodes to about four bytes a pixel: one whose header promises more than
/// `max_expanded_bytes` is refused before anything decodes it (a 5 KB PNG can claim
/// 100,000 × 100,000 pixels).
pub(crate) fn check_image_size(bytes: &[u8]) -> Result<imagesize::ImageSize> {
    let size = imagesize::blob_size(bytes).map_err(|e| corrupt("image", e))?;
    let decoded = (size.width as u64).saturating_mul(size.height as u64).saturating_mul(4);
    let max = budgets().max_expanded_bytes;
    if decoded > max {
        return Err(exceeded(
            Code::ExpandedSizeExceeded,
            format!(
                "this image is {} × {} pixels, which decode to more than {} MiB",
                size.width,
                size.height,
                max >> 20
            ),
            "max-expanded-mb",
        ));
    }
    if size.width == 0 || size.height == 0 {
        return Err(corrupt("image", "it has no pixels"));
    }
    Ok(size)
}

/// Images inside a document (a DOCX or PPTX figure, an image on a PDF page with text), read
/// for the text they carry: a screenshot, a scanned insert, a chart's labels. At most
/// [`EmbeddedImages::MAX`] a document; an image too small to hold text, one read with low
/// confidence, or any image when recognition is off or missing, adds nothing; the document
/// never fails for them.
pub struct EmbeddedImages {
    mode: OcrMode,
    session: Option<ocr::Session>,
    unavailable: bool,
    read: usize,
    with_text: usize,
    skipped: usize,
    out_of_time: bool,
}

impl EmbeddedImages {
    pub const MAX: usize = 32;
    /// Smaller than this (either side, in pixels) is an icon or a rule, not text.
    const MIN_SIDE: usize = 24;

    pub fn new(mode: OcrMode) -> EmbeddedImages {
        EmbeddedImages {
            mode,
            session: None,
            unavailable: false,
            read: 0,
            with_text: 0,
            skipped: 0,
            out_of_time: false,
        }
    }

    /// Whether another image would be read: callers neither extract nor decode one otherwise
    /// (a document's images count against its expansion budget as they are read).
    pub fn wants_more(&self) -> bool {
        self.mode != OcrMode::Never && !self.unavailable && !self.out_of_time && self.read < Self::MAX
    }

    /// The text an image carries (paragraphs separated by blank lines), when it carries any.
    pub fn text_of(&mut self, image: &[u8]) -> Option<String> {
        if !self.wants_more() {
            return None;
        }
        let size = check_image_size(image).ok()?;
        if size.width < Self::MIN_SIDE || size.height < Self::MIN_SIDE {
            return None;
        }
        if self.session.is_none() {
            match ocr::Session::start() {
                Ok(session) => self.session = Some(session),
                Err(_) => {
                    self.unavailable = true;
                    return None;
                }
            }
        }
        let session = self.session.as_mut()?;
        self.read += 1;
        // Past the file's deadline (or a damaged image) the rest are skipped, the text kept.
        let recognised = match session.recognise(image, None) {
            Ok(r) => r,
            Err(e) => {
                self.skipped += 1;
                // Out of time (or of the parser's limits): no other image is started.
                self.out_of_time |= e.code == Code::ResourceLimitExceeded;
                return None;
            }
        };
        if recognised.visible_chars() < 3 || recognised.mean_confidence() < ocr::LOW_CONFIDENCE {
            return None;
        }
        self.with_text += 1;
        let mut b = Builder::default();
        ocr::append(&mut b, &recognised, 1, 1.0, false);
        Some(b.text)
    }

    /// The document's `ocr` metadata for its images, when any was looked at.
    pub fn metadata(&self) -> Option<Value> {
        if self.read == 0 && !self.unavailable {
            return None;
        }
        let mut m = self.session.as_ref().map(ocr::Session::metadata).unwrap_or_else(|| serde_json::json!({}));
        m["images_read"] = self.read.into();
        m["images_with_text"] = self.with_text.into();
        // Images whose reading failed (past the file's deadline, or damaged).
        if self.skipped > 0 {
            m["images_skipped"] = self.skipped.into();
        }
        if self.read >= Self::MAX {
            m["images_limit_reached"] = true.into();
        }
        if self.unavailable {
            m["unavailable"] = "images were not read: this server has no text recognition (Tesseract)".into();
        }
        Some(m)
    }
}
