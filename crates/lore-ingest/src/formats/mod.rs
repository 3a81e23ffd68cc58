//! Readers for the container and structured formats: Office (DOCX, PPTX), spreadsheets
//! (XLSX/XLS/ODS via calamine, CSV/TSV), PDF, EPUB, RTF, email, JSON. Each produces text with
//! paragraphs separated by blank lines, a title when the file has one, and locations (page,
//! slide, sheet) that chunks inherit. Images, and scanned PDF pages, are read by text
//! recognition ([`crate::ocr`]). Archives are read with a cap on decompressed size.

use lore_core::error::{Code, Error};
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod containers;
mod docx;
mod email;
mod epub;
mod image;
mod json;
mod pdf;
mod pptx;
mod rtf;
mod spreadsheets;

pub use containers::*;
pub use docx::*;
pub use email::*;
pub use epub::*;
pub use image::*;
pub use json::*;
pub use pdf::*;
pub use pptx::*;
pub use rtf::*;
pub use spreadsheets::*;

/// Where a stretch of the text came from: from `char_start` on, `key` (page, slide, sheet) is `value`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Location {
    pub char_start: usize,
    pub key: &'static str,
    pub value: Value,
}

/// The keys a location may have (what [`Builder::mark`] is called with).
pub const LOCATION_KEYS: &[&str] = &["page", "slide", "sheet", "chapter"];

/// A [`Location`] as read back (from an isolated parser), its key one of [`LOCATION_KEYS`].
#[derive(Deserialize)]
pub(crate) struct LocationOnWire {
    char_start: usize,
    key: String,
    value: Value,
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Location, D::Error> {
        let l = LocationOnWire::deserialize(d)?;
        let key = LOCATION_KEYS
            .iter()
            .find(|k| **k == l.key)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown location key {:?}", l.key)))?;
        Ok(Location { char_start: l.char_start, key, value: l.value })
    }
}

/// A stretch of the text (`[char_start, char_end)`, one recognised line) and where it stands on
/// its page: `bbox` is left, top, right, bottom from the page's top-left corner, in PDF points
/// for a PDF page and in pixels for an image (`page_size` is the page's in the same units).
/// Words recognised with low confidence are listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Region {
    pub char_start: usize,
    pub char_end: usize,
    pub page: u32,
    pub bbox: [f32; 4],
    /// The page's width and height in the same units, to draw the box at any scale.
    #[serde(default)]
    pub page_size: [f32; 2],
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub low_confidence: Vec<String>,
}

/// The smallest box around two (`[left, top, right, bottom]`).
pub fn union_box(a: [f32; 4], b: [f32; 4]) -> [f32; 4] {
    [a[0].min(b[0]), a[1].min(b[1]), a[2].max(b[2]), a[3].max(b[3])]
}

/// What `union_box` folds from: contains nothing.
pub const EMPTY_BOX: [f32; 4] = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];

/// Text under construction, keeping locations in step with the character count.
#[derive(Default)]
pub struct Builder {
    pub text: String,
    chars: usize,
    pub locations: Vec<Location>,
    pub regions: Vec<Region>,
    pub title: Option<String>,
}

impl Builder {
    pub fn mark(&mut self, key: &'static str, value: Value) {
        self.locations.push(Location { char_start: self.chars, key, value });
    }

    /// Appends a table as a Markdown table (its first row the header), a paragraph of its own.
    pub fn table(&mut self, rows: Vec<Vec<String>>) {
        self.paragraph(&crate::chunk::markdown_table(&rows));
    }

    /// Where the next paragraph's first character will stand (in characters).
    pub fn next_paragraph_start(&self) -> usize {
        if self.text.is_empty() { self.chars } else { self.chars + 2 }
    }

    /// Appends a paragraph (blank-line separated); empty ones are skipped.
    pub fn paragraph(&mut self, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        if !self.text.is_empty() {
            self.text.push_str("\n\n");
            self.chars += 2;
        }
        self.text.push_str(text);
        self.chars += text.chars().count();
    }
}

pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::new(Code::CorruptFile, format!("the {what} file could not be read; it may be damaged ({detail})"))
}
