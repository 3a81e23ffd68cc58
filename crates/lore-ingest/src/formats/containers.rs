//! Zip containers (Office, EPUB, ODS), read entry by entry under the expansion budget.

use std::io::{Cursor, Read};

use lore_core::budget::{budgets, exceeded};
use lore_core::error::{Code, Error, Result};

use super::*;

/// The refusal of a file that expands past `max_expanded_bytes`.
pub(crate) fn expanded_too_far(what: &str) -> Error {
    let max = budgets().max_expanded_bytes;
    exceeded(
        Code::ExpandedSizeExceeded,
        format!("this {what} file expands to more than {} MiB; it looks like a zip bomb", max >> 20),
        "max-expanded-mb",
    )
}

/// The largest embedded image read for its text (a scanned page at 300 DPI is a few MiB).
pub const MAX_IMAGE_ENTRY: u64 = 32 << 20;

pub struct Archive {
    zip: zip::ZipArchive<Cursor<Vec<u8>>>,
    budget: u64,
    what: &'static str,
}

impl Archive {
    pub fn open(bytes: &[u8], what: &'static str) -> Result<Archive> {
        if bytes.starts_with(b"\xd0\xcf\x11\xe0") {
            return Err(Error::new(
                Code::CorruptFile,
                format!("this {what} file is password-protected (encrypted); remove the password and upload it again"),
            ));
        }
        let zip = zip::ZipArchive::new(Cursor::new(bytes.to_vec())).map_err(|e| corrupt(what, e))?;
        // Zip bombs stop at the budget (`max_expanded_bytes`), over all the entries read.
        Ok(Archive { zip, budget: budgets().max_expanded_bytes, what })
    }

    pub fn names(&self) -> Vec<String> {
        self.zip.file_names().filter_map(|n| n.ok().map(|n| n.into_owned())).collect()
    }

    /// An entry's bytes, or `None` if there is no such entry.
    pub fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>> {
        let what = self.what;
        let entry = match self.zip.by_name(name) {
            Ok(e) => e,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(corrupt(what, e)),
        };
        let mut out = Vec::new();
        entry.take(self.budget + 1).read_to_end(&mut out).map_err(|e| corrupt(what, e))?;
        if out.len() as u64 > self.budget {
            return Err(expanded_too_far(what));
        }
        self.budget -= out.len() as u64;
        Ok(Some(out))
    }

    /// Inflates every entry without keeping it: whether the whole archive stays within the
    /// budget, for readers (calamine) that decompress on their own without a cap.
    pub fn check_expanded_size(&mut self) -> Result<()> {
        let what = self.what;
        for i in 0..self.zip.len() {
            let entry = self.zip.by_index(i).map_err(|e| corrupt(what, e))?;
            let read = std::io::copy(&mut entry.take(self.budget + 1), &mut std::io::sink());
            // A damaged entry is the reader's to report, with its own words.
            let Ok(read) = read else { continue };
            if read > self.budget {
                return Err(expanded_too_far(what));
            }
            self.budget -= read;
        }
        Ok(())
    }

    /// An embedded image's bytes, when the entry exists and inflates to at most
    /// [`MAX_IMAGE_ENTRY`]. Read for recognition one at a time and dropped, so outside the
    /// document's budget: a large photo must not use up what the text is read with.
    pub fn read_image(&mut self, name: &str) -> Option<Vec<u8>> {
        let entry = self.zip.by_name(name).ok()?;
        let mut out = Vec::new();
        entry.take(MAX_IMAGE_ENTRY + 1).read_to_end(&mut out).ok()?;
        (out.len() as u64 <= MAX_IMAGE_ENTRY).then_some(out)
    }

    pub fn read_required(&mut self, name: &str) -> Result<Vec<u8>> {
        let what = self.what;
        self.read(name)?.ok_or_else(|| corrupt(what, format!("{name} is missing")))
    }
}

pub(crate) fn local_name(name: &str) -> &str {
    name.rsplit_once(':').map(|(_, n)| n).unwrap_or(name)
}

pub(crate) fn attr(e: &quick_xml::events::BytesStart<'_>, key: &str) -> Option<String> {
    e.attributes().flatten().find(|a| local_name(a.key.as_ref()) == key).map(|a| a.value.to_string())
}

pub(crate) fn unescape(t: &quick_xml::events::BytesText<'_>) -> String {
    t.xml10_content().into_owned()
}

/// A part's relationships (`_rels/*.rels`): id to the target's path in the archive, resolved
/// against `folder` (the part's own folder, as `word` or `ppt/slides`).
pub(crate) fn relationships(rels: &[u8], folder: &str) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    let mut reader = quick_xml::Reader::from_reader(rels);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(quick_xml::events::Event::Empty(e)) | Ok(quick_xml::events::Event::Start(e))
                if local_name(e.name().as_ref()) == "Relationship" =>
            {
                if let (Some(id), Some(target)) = (attr(&e, "Id"), attr(&e, "Target")) {
                    out.insert(id, resolve(folder, &target));
                }
            }
            Ok(quick_xml::events::Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    out
}

/// `target` relative to `folder`, `..` taken back (an absolute target starts at the root).
fn resolve(folder: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') { Vec::new() } else { folder.split('/').collect() };
    for piece in target.split('/') {
        match piece {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}
