//! Turning uploaded bytes into clean text and well-cut chunks, and text into index terms.
//! Everything here is pure: bytes in, values out.

pub mod chunk;
pub mod decode;
pub mod describe;
pub mod detect;
pub mod formats;
pub mod fuzz;
pub mod highlight;
pub mod isolate;
pub mod parse;
mod pdf_layout;
pub mod samples;
pub mod segment;
pub mod summary;

use sha2::{Digest, Sha256};

/// SHA-256 of some bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
