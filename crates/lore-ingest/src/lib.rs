//! Turning uploaded bytes into clean text and well-cut chunks, and text into index terms.
//! Everything here is pure, bytes in and values out, but for the isolated parser processes and
//! the text recogniser they start.

pub mod chunk;
pub mod decode;
pub mod describe;
pub mod detect;
pub mod formats;
/// Mutated sample files against the parsers (`lore bench fuzz`); test tooling.
#[cfg(any(test, feature = "testing"))]
pub mod fuzz;
pub mod highlight;
pub mod isolate;
/// Text recognition (Tesseract) for images and scanned PDF pages.
pub mod ocr;
pub mod parse;
mod pdf_layout;
/// Small valid files of every format, and the hostile ones, built in memory; test tooling.
#[cfg(any(test, feature = "testing"))]
pub mod samples;
/// Images and image-only PDFs of known text, clean and scan-like, rendered here; test tooling.
#[cfg(any(test, feature = "testing"))]
pub mod scans;
pub mod segment;
pub mod summary;

use sha2::{Digest, Sha256};

/// SHA-256 of some bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
