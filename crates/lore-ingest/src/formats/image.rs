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
pub(crate) fn check_image_size(bytes: &[u8]) -> Result<()> {
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
    Ok(())
}
