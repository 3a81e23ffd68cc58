//! File type detection from content (magic bytes) and name.

/// A file type Lore knows by name (the `file_types` registry's `name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Text,
    Markdown,
    Html,
    Pdf,
    /// Recognised by its magic bytes as a format Lore cannot read (archive, image, ...).
    Binary(&'static str),
}

impl FileKind {
    /// The registry name stored as the document's `file_type`.
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Text => "text",
            FileKind::Markdown => "markdown",
            FileKind::Html => "html",
            FileKind::Pdf => "pdf",
            FileKind::Binary(name) => name,
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            FileKind::Text => "text/plain",
            FileKind::Markdown => "text/markdown",
            FileKind::Html => "text/html",
            FileKind::Pdf => "application/pdf",
            FileKind::Binary("zip") => "application/zip",
            FileKind::Binary("png") => "image/png",
            FileKind::Binary("jpeg") => "image/jpeg",
            FileKind::Binary("gif") => "image/gif",
            FileKind::Binary("gzip") => "application/gzip",
            FileKind::Binary(_) => "application/octet-stream",
        }
    }

    pub fn from_name(name: &str) -> Option<FileKind> {
        match name {
            "text" => Some(FileKind::Text),
            "markdown" => Some(FileKind::Markdown),
            "html" => Some(FileKind::Html),
            "pdf" => Some(FileKind::Pdf),
            _ => None,
        }
    }
}

const MAGIC: &[(&[u8], FileKind)] = &[
    (b"%PDF-", FileKind::Pdf),
    (b"PK\x03\x04", FileKind::Binary("zip")),
    (b"\x89PNG\r\n\x1a\n", FileKind::Binary("png")),
    (b"\xff\xd8\xff", FileKind::Binary("jpeg")),
    (b"GIF8", FileKind::Binary("gif")),
    (b"\x1f\x8b", FileKind::Binary("gzip")),
    (b"\x7fELF", FileKind::Binary("executable")),
];

/// Detects the type from the first bytes, then from the file name's extension. Content wins
/// over the name when the content has a recognisable signature.
pub fn detect(filename: &str, head: &[u8]) -> FileKind {
    if let Some((_, kind)) = MAGIC.iter().find(|(magic, _)| head.starts_with(magic)) {
        return *kind;
    }
    let ext = filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "md" | "markdown" | "mdown" | "mkd" => FileKind::Markdown,
        "html" | "htm" | "xhtml" => FileKind::Html,
        "pdf" => FileKind::Pdf,
        _ if looks_like_html(head) => FileKind::Html,
        _ => FileKind::Text,
    }
}

fn looks_like_html(head: &[u8]) -> bool {
    let start = head.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(head.len());
    let prefix: Vec<u8> = head[start..].iter().take(15).map(|b| b.to_ascii_lowercase()).collect();
    prefix.starts_with(b"<!doctype html") || prefix.starts_with(b"<html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_beats_name() {
        assert_eq!(detect("notes.txt", b"%PDF-1.7 ..."), FileKind::Pdf);
        assert_eq!(detect("report.pdf", b"hello"), FileKind::Pdf);
        assert_eq!(detect("page", b"  <!DOCTYPE html><html>"), FileKind::Html);
        assert_eq!(detect("说明.MD", "# 标题".as_bytes()), FileKind::Markdown);
        assert_eq!(detect("a.txt", b"PK\x03\x04rest"), FileKind::Binary("zip"));
        assert_eq!(detect("readme", b"plain"), FileKind::Text);
    }
}
