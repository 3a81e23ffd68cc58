//! File type detection from content (magic bytes) and name. The result names an entry of the
//! `file_types` registry.

/// A file type Lore knows by name (the `file_types` registry's `name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Text,
    Markdown,
    Html,
    Pdf,
    Docx,
    Pptx,
    Xlsx,
    Xls,
    Ods,
    Csv,
    Tsv,
    Json,
    Jsonl,
    Epub,
    Rtf,
    Email,
    /// Source code; the language is kept in the document's metadata.
    Code(&'static str),
    /// A raster image (one of [`IMAGE_FORMATS`]), read by text recognition (OCR).
    Image(&'static str),
    /// Recognised by its magic bytes as a format Lore cannot read (archive, image, ...).
    Binary(&'static str),
}

/// Every readable kind with its registry name, MIME type and extensions: the seed of the
/// `file_types` registry and the inverse of [`FileKind::name`].
pub const KINDS: &[(FileKind, &str, &str, &[&str])] = &[
    (FileKind::Text, "text", "text/plain", &["txt", "text", "log"]),
    (FileKind::Markdown, "markdown", "text/markdown", &["md", "markdown", "mdown", "mkd"]),
    (FileKind::Html, "html", "text/html", &["html", "htm", "xhtml"]),
    (FileKind::Pdf, "pdf", "application/pdf", &["pdf"]),
    (FileKind::Docx, "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", &["docx"]),
    (FileKind::Pptx, "pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation", &["pptx"]),
    (FileKind::Xlsx, "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", &["xlsx", "xlsm"]),
    (FileKind::Xls, "xls", "application/vnd.ms-excel", &["xls"]),
    (FileKind::Ods, "ods", "application/vnd.oasis.opendocument.spreadsheet", &["ods"]),
    (FileKind::Csv, "csv", "text/csv", &["csv"]),
    (FileKind::Tsv, "tsv", "text/tab-separated-values", &["tsv", "tab"]),
    (FileKind::Json, "json", "application/json", &["json"]),
    (FileKind::Jsonl, "jsonl", "application/x-ndjson", &["jsonl", "ndjson"]),
    (FileKind::Epub, "epub", "application/epub+zip", &["epub"]),
    (FileKind::Rtf, "rtf", "application/rtf", &["rtf"]),
    (FileKind::Email, "email", "message/rfc822", &["eml"]),
];

/// Images read by text recognition: (format, MIME type, extensions). Tesseract (leptonica)
/// reads each; a GIF's first frame is read, a TIFF's every page.
pub const IMAGE_FORMATS: &[(&str, &str, &[&str])] = &[
    ("png", "image/png", &["png"]),
    ("jpeg", "image/jpeg", &["jpg", "jpeg", "jpe"]),
    ("tiff", "image/tiff", &["tif", "tiff"]),
    ("webp", "image/webp", &["webp"]),
    ("bmp", "image/bmp", &["bmp"]),
    ("gif", "image/gif", &["gif"]),
];

/// Source code by extension: (extension, language).
const CODE: &[(&str, &str)] = &[
    ("rs", "rust"),
    ("py", "python"),
    ("js", "javascript"),
    ("mjs", "javascript"),
    ("ts", "typescript"),
    ("tsx", "typescript"),
    ("jsx", "javascript"),
    ("go", "go"),
    ("java", "java"),
    ("kt", "kotlin"),
    ("scala", "scala"),
    ("c", "c"),
    ("h", "c"),
    ("cc", "cpp"),
    ("cpp", "cpp"),
    ("hpp", "cpp"),
    ("cs", "csharp"),
    ("rb", "ruby"),
    ("php", "php"),
    ("swift", "swift"),
    ("sh", "shell"),
    ("bash", "shell"),
    ("sql", "sql"),
    ("lua", "lua"),
    ("r", "r"),
    ("m", "objective-c"),
    ("dart", "dart"),
    ("vue", "vue"),
    ("yaml", "yaml"),
    ("yml", "yaml"),
    ("toml", "toml"),
    ("ini", "ini"),
    ("xml", "xml"),
    ("css", "css"),
    ("scss", "scss"),
    ("proto", "protobuf"),
    ("tf", "terraform"),
    ("ex", "elixir"),
    ("erl", "erlang"),
    ("hs", "haskell"),
    ("clj", "clojure"),
    ("pl", "perl"),
    ("ps1", "powershell"),
    ("zig", "zig"),
];

impl FileKind {
    /// The registry name stored as the document's `file_type`.
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Code(_) => "code",
            FileKind::Image(_) => "image",
            FileKind::Binary(name) => name,
            kind => KINDS.iter().find(|(k, ..)| *k == kind).map(|(_, n, ..)| *n).unwrap_or("binary"),
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            FileKind::Code(_) => "text/plain",
            FileKind::Image(format) => {
                IMAGE_FORMATS.iter().find(|(f, ..)| *f == format).map_or("application/octet-stream", |(_, m, _)| *m)
            }
            FileKind::Binary("zip") => "application/zip",
            FileKind::Binary("gzip") => "application/gzip",
            FileKind::Binary(_) => "application/octet-stream",
            kind => {
                KINDS.iter().find(|(k, ..)| *k == kind).map(|(_, _, m, _)| *m).unwrap_or("application/octet-stream")
            }
        }
    }

    /// The kind stored under a registry name, with the file name for what the name leaves open
    /// (the language of source code).
    pub fn from_name(name: &str, filename: &str) -> Option<FileKind> {
        if name == "code" {
            return Some(FileKind::Code(code_language(&extension(filename)).unwrap_or("text")));
        }
        if name == "image" {
            // The format only names the MIME type: the recogniser reads the content's own.
            return Some(FileKind::Image(image_format(&extension(filename)).unwrap_or("png")));
        }
        KINDS.iter().find(|(_, n, ..)| *n == name).map(|(k, ..)| *k)
    }
}

/// The registry's defaults: one entry per readable kind, each read by the parser of its name.
pub fn default_file_types() -> Vec<lore_core::model::NewFileType> {
    let category = |name: &str| match name {
        "text" | "markdown" => "text",
        "html" => "web",
        "pdf" | "docx" | "rtf" => "document",
        "pptx" => "presentation",
        "xlsx" | "xls" | "ods" | "csv" | "tsv" => "spreadsheet",
        "json" | "jsonl" => "data",
        "epub" => "ebook",
        "email" => "email",
        "image" => "image",
        _ => "other",
    };
    let mut types: Vec<_> = KINDS
        .iter()
        .map(|(_, name, mime, exts)| lore_core::model::NewFileType {
            name: name.to_string(),
            category: category(name).to_string(),
            mime_types: vec![mime.to_string()],
            extensions: exts.iter().map(|e| e.to_string()).collect(),
            parsers: vec![name.to_string()],
            embedding_models: Vec::new(),
            is_active: true,
        })
        .collect();
    types.push(lore_core::model::NewFileType {
        name: "code".into(),
        category: "code".into(),
        mime_types: vec!["text/plain".into()],
        extensions: CODE.iter().map(|(e, _)| e.to_string()).collect(),
        parsers: vec!["code".into()],
        embedding_models: Vec::new(),
        is_active: true,
    });
    types.push(lore_core::model::NewFileType {
        name: "image".into(),
        category: "image".into(),
        mime_types: IMAGE_FORMATS.iter().map(|(_, m, _)| m.to_string()).collect(),
        extensions: IMAGE_FORMATS.iter().flat_map(|(_, _, e)| e.iter().map(|e| e.to_string())).collect(),
        parsers: vec!["image".into()],
        embedding_models: Vec::new(),
        is_active: true,
    });
    types
}

/// Whether a parser of this name exists.
pub fn is_parser(name: &str) -> bool {
    name == "code" || name == "image" || KINDS.iter().any(|(_, n, ..)| *n == name)
}

pub fn extension(filename: &str) -> String {
    filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default()
}

fn code_language(ext: &str) -> Option<&'static str> {
    CODE.iter().find(|(e, _)| *e == ext).map(|(_, l)| *l)
}

fn image_format(ext: &str) -> Option<&'static str> {
    IMAGE_FORMATS.iter().find(|(_, _, exts)| exts.contains(&ext)).map(|(f, ..)| *f)
}

/// A format name as [`FileKind::Image`] holds it.
pub(crate) fn image_named(name: &str) -> Option<&'static str> {
    IMAGE_FORMATS.iter().map(|(f, ..)| *f).find(|f| *f == name)
}

/// A language name as [`FileKind::Code`] holds it (`text` for source code of no known language).
pub(crate) fn language_named(name: &str) -> Option<&'static str> {
    CODE.iter().map(|(_, l)| *l).chain(["text"]).find(|l| *l == name)
}

const MAGIC: &[(&[u8], FileKind)] = &[
    (b"%PDF-", FileKind::Pdf),
    (b"{\\rtf", FileKind::Rtf),
    (b"\x89PNG\r\n\x1a\n", FileKind::Image("png")),
    (b"\xff\xd8\xff", FileKind::Image("jpeg")),
    (b"GIF8", FileKind::Image("gif")),
    (b"II*\0", FileKind::Image("tiff")),
    (b"MM\0*", FileKind::Image("tiff")),
    (b"\x1f\x8b", FileKind::Binary("gzip")),
    (b"\x7fELF", FileKind::Binary("executable")),
    (b"MZ", FileKind::Binary("executable")),
    (b"Rar!", FileKind::Binary("rar")),
    (b"7z\xbc\xaf\x27\x1c", FileKind::Binary("7z")),
];

/// Detects the type from the first bytes, then from the file name's extension. Content wins
/// over the name when the content has a recognisable signature; containers (zip, OLE) are told
/// apart by name and checked when parsed.
pub fn detect(filename: &str, head: &[u8]) -> FileKind {
    let ext = extension(filename);
    if head.starts_with(b"PK\x03\x04") {
        return match ext.as_str() {
            "docx" => FileKind::Docx,
            "pptx" => FileKind::Pptx,
            "xlsx" | "xlsm" => FileKind::Xlsx,
            "ods" => FileKind::Ods,
            "epub" => FileKind::Epub,
            _ if head.get(30..58) == Some(b"mimetypeapplication/epub+zip".as_slice()) => FileKind::Epub,
            _ => FileKind::Binary("zip"),
        };
    }
    if head.starts_with(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") {
        // Encrypted OOXML files are OLE containers too; their reader says they are protected.
        return match ext.as_str() {
            "xls" => FileKind::Xls,
            "docx" => FileKind::Docx,
            "pptx" => FileKind::Pptx,
            "xlsx" | "xlsm" => FileKind::Xlsx,
            _ => FileKind::Binary("ole"),
        };
    }
    if let Some((_, kind)) = MAGIC.iter().find(|(magic, _)| head.starts_with(magic)) {
        return *kind;
    }
    if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        return FileKind::Image("webp");
    }
    // "BM" alone begins too many texts: the size of a known BMP info header must follow.
    if head.starts_with(b"BM")
        && head
            .get(14..18)
            .is_some_and(|h| [12, 40, 52, 56, 64, 108, 124].contains(&u32::from_le_bytes([h[0], h[1], h[2], h[3]])))
    {
        return FileKind::Image("bmp");
    }
    if let Some((kind, ..)) = KINDS.iter().find(|(_, _, _, exts)| exts.contains(&ext.as_str())) {
        // Binary container formats need their signature; a name alone is not enough.
        if !matches!(
            kind,
            FileKind::Docx | FileKind::Pptx | FileKind::Xlsx | FileKind::Ods | FileKind::Epub | FileKind::Xls
        ) {
            return *kind;
        }
        return FileKind::Binary("mislabelled");
    }
    if let Some(language) = code_language(&ext) {
        return FileKind::Code(language);
    }
    if looks_like_html(head) {
        return FileKind::Html;
    }
    if looks_like_email(head) {
        return FileKind::Email;
    }
    FileKind::Text
}

fn looks_like_html(head: &[u8]) -> bool {
    let start = head.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(head.len());
    let prefix: Vec<u8> = head[start..].iter().take(15).map(|b| b.to_ascii_lowercase()).collect();
    prefix.starts_with(b"<!doctype html") || prefix.starts_with(b"<html")
}

fn looks_like_email(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&head[..head.len().min(2048)]);
    let headers = ["from:", "to:", "subject:", "date:", "message-id:", "mime-version:", "received:", "return-path:"];
    let found = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| headers.iter().any(|h| l.to_ascii_lowercase().starts_with(h)))
        .count();
    found >= 3
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
        assert_eq!(detect("a.docx", b"PK\x03\x04rest"), FileKind::Docx);
        assert_eq!(detect("a.docx", b"not a zip"), FileKind::Binary("mislabelled"));
        assert_eq!(detect("readme", b"plain"), FileKind::Text);
        assert_eq!(detect("main.rs", b"fn main() {}"), FileKind::Code("rust"));
        assert_eq!(detect("x.doc", b"{\\rtf1\\ansi"), FileKind::Rtf);
        assert_eq!(detect("data.CSV", b"a,b\n1,2"), FileKind::Csv);
        assert_eq!(detect("mail", b"From: a@b.c\nTo: d@e.f\nSubject: hi\n\nbody"), FileKind::Email);
        assert_eq!(detect("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), FileKind::Xls);
    }

    #[test]
    fn names_round_trip() {
        for (kind, name, ..) in KINDS {
            assert_eq!(kind.name(), *name);
            assert_eq!(FileKind::from_name(name, "x"), Some(*kind));
        }
        assert_eq!(FileKind::from_name("code", "lib.py"), Some(FileKind::Code("python")));
    }
}
