//! Text recognition (OCR) with Tesseract's command-line tool, for images and for PDF pages
//! without a text layer. It runs inside the isolated parser process, and the `tesseract` and
//! `pdftoppm` it starts inherit that process's memory and CPU limits; each is also killed at the
//! file's deadline (`parser_cpu_seconds` of wall-clock time for all of a file's recognition).
//!
//! Tesseract's TSV output gives every word with its box and confidence: words are joined into
//! lines (no space between two CJK characters, which Tesseract separates), lines into its
//! paragraphs, and each line keeps its box as a [`Region`] of the text, so that a chunk knows
//! where on the page it stands. Words below [`LOW_CONFIDENCE`] are kept, and listed.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lore_core::budget::{budgets, exceeded};
use lore_core::error::{Code, Error, Result};

use crate::formats::{Builder, EMPTY_BOX, Region, union_box};

pub use lore_core::model::OcrMode;

/// A word recognised with less confidence than this (Tesseract's 0 to 100) is marked.
pub const LOW_CONFIDENCE: f32 = 60.0;
/// A PDF page with an image and fewer visible characters than this in its text layer is
/// treated as a scan (as is one with no text at all).
pub const SCANNED_PAGE_CHARS: usize = 32;
/// Pages are rendered at this resolution, or less where the page is so large that its longer
/// side would pass [`MAX_RENDER_PIXELS`].
pub const RENDER_DPI: f64 = 300.0;
pub const MAX_RENDER_PIXELS: f64 = 4200.0;
/// Languages used when `LORE_OCR_LANGUAGES` names none. Chinese first: with English first,
/// Tesseract reads some lines of a speckled Chinese scan as English nonsense (measured on
/// rendered scans: 0.90 mean character accuracy against 0.93, and 0.34 against 0.58 at worst).
const DEFAULT_LANGUAGES: &[&str] = &["chi_sim", "eng"];
/// A page read with less mean confidence than this is read again with each language alone,
/// and the most confident reading kept (0.95 mean accuracy on the same scans, 0.85 at worst).
const RETRY_CONFIDENCE: f32 = 80.0;
/// What one recogniser run may print (its TSV for a page is a few hundred KiB).
const MAX_OUTPUT: u64 = 64 << 20;

/// The installed recogniser: its version and the languages it reads with.
#[derive(Debug, Clone)]
pub struct Engine {
    pub version: String,
    pub languages: String,
}

/// Tesseract as found on this machine (`tesseract` on the PATH, with the languages of
/// `LORE_OCR_LANGUAGES`, `chi_sim+eng` by default); an `ocr_unavailable` error saying what to
/// install when it is missing. Looked up once per process.
pub fn engine() -> Result<&'static Engine> {
    static ENGINE: OnceLock<std::result::Result<Engine, String>> = OnceLock::new();
    ENGINE.get_or_init(find_engine).as_ref().map_err(|why| Error::new(Code::OcrUnavailable, why.clone()))
}

fn find_engine() -> std::result::Result<Engine, String> {
    const INSTALL: &str = "install Tesseract with Chinese and English (Debian: apt-get install tesseract-ocr \
                           tesseract-ocr-eng tesseract-ocr-chi-sim poppler-utils)";
    let run = |arg: &str| {
        Command::new("tesseract")
            .arg(arg)
            .stdin(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    };
    let version = run("--version").and_then(|v| v.lines().next().map(|l| l.trim().to_string())).ok_or_else(|| {
        format!("this file needs text recognition (OCR), and this server has no Tesseract: {INSTALL}")
    })?;
    let installed: Vec<String> =
        run("--list-langs").unwrap_or_default().lines().skip(1).map(|l| l.trim().to_string()).collect();
    let wanted: Vec<String> = match std::env::var("LORE_OCR_LANGUAGES") {
        Ok(list) if !list.trim().is_empty() => list.split(['+', ',']).map(|l| l.trim().to_string()).collect(),
        _ => DEFAULT_LANGUAGES.iter().map(|l| l.to_string()).collect(),
    };
    let missing: Vec<&String> = wanted.iter().filter(|l| !installed.contains(l)).collect();
    if !missing.is_empty() {
        return Err(format!(
            "Tesseract is installed without the language data {missing:?} needed for text recognition (OCR): {INSTALL}"
        ));
    }
    Ok(Engine { version, languages: wanted.join("+") })
}

/// What the recogniser found on one image (a TIFF may hold several pages).
#[derive(Debug, Default)]
pub struct Recognised {
    pub lines: Vec<Line>,
    /// Each page's width and height in pixels, by Tesseract's page number.
    pub page_sizes: Vec<(u32, [f32; 2])>,
}

impl Recognised {
    /// Characters read, white space aside.
    pub fn visible_chars(&self) -> usize {
        self.lines.iter().flat_map(|l| &l.words).map(|w| w.text.chars().filter(|c| !c.is_whitespace()).count()).sum()
    }

    /// Word confidence weighted by characters (0 with no words).
    pub fn mean_confidence(&self) -> f32 {
        let (mut sum, mut chars) = (0.0f32, 0usize);
        for word in self.lines.iter().flat_map(|l| &l.words) {
            let n = word.text.chars().count();
            sum += word.confidence * n as f32;
            chars += n;
        }
        if chars == 0 { 0.0 } else { sum / chars as f32 }
    }
}

#[derive(Debug, Default)]
pub struct Line {
    /// Tesseract's page (from 1), block and paragraph: lines of one paragraph go together.
    pub page: u32,
    pub paragraph: (u32, u32),
    pub words: Vec<Word>,
}

#[derive(Debug)]
pub struct Word {
    pub text: String,
    pub confidence: f32,
    /// Left, top, right, bottom, in the image's pixels.
    pub bbox: [f32; 4],
}

impl Line {
    fn bbox(&self) -> [f32; 4] {
        self.words.iter().map(|w| w.bbox).fold(EMPTY_BOX, union_box)
    }
}

/// Work for one file: the deadline all its recognition shares, and what it found.
pub struct Session {
    deadline: Instant,
    pub engine: &'static Engine,
    pub pages: Vec<u32>,
    confidence_sum: f64,
    words: usize,
}

impl Session {
    pub fn start() -> Result<Session> {
        let seconds = budgets().parser_cpu_seconds.max(1);
        Ok(Session {
            deadline: Instant::now() + Duration::from_secs(seconds),
            engine: engine()?,
            pages: Vec::new(),
            confidence_sum: 0.0,
            words: 0,
        })
    }

    /// Recognises an image (any format leptonica reads), at `dpi` when it is known: with all the
    /// languages, then, when that reading is unsure, with each alone.
    pub fn recognise(&mut self, image: &[u8], dpi: Option<u32>) -> Result<Recognised> {
        let mut recognised = self.read(image, dpi, &self.engine.languages)?;
        let languages: Vec<&str> = self.engine.languages.split('+').collect();
        // A blank page (nothing read) is not unsure: it is read once.
        if languages.len() > 1 && recognised.visible_chars() > 0 && recognised.mean_confidence() < RETRY_CONFIDENCE {
            for language in languages {
                let alone = self.read(image, dpi, language)?;
                if alone.mean_confidence() > recognised.mean_confidence() {
                    recognised = alone;
                }
            }
        }
        for word in recognised.lines.iter().flat_map(|l| &l.words) {
            self.confidence_sum += f64::from(word.confidence);
            self.words += 1;
        }
        Ok(recognised)
    }

    fn read(&self, image: &[u8], dpi: Option<u32>, languages: &str) -> Result<Recognised> {
        let dpi = dpi.map(|d| d.to_string());
        let mut args = vec!["stdin", "stdout", "-l", languages, "--psm", "3"];
        if let Some(dpi) = &dpi {
            args.extend(["--dpi", dpi]);
        }
        args.push("tsv");
        let tsv = run("tesseract", &args, Some(image), self.deadline)?;
        Ok(parse_tsv(&String::from_utf8_lossy(&tsv)))
    }

    /// One PDF page rendered to a grey image at `dpi` (poppler's `pdftoppm`).
    pub fn render_pdf_page(&self, pdf: &std::path::Path, page: u32, dpi: f64) -> Result<Vec<u8>> {
        let (page, dpi) = (page.to_string(), format!("{dpi:.0}"));
        let path = pdf.to_string_lossy();
        run("pdftoppm", &["-f", &page, "-l", &page, "-r", &dpi, "-gray", &path], None, self.deadline)
    }

    /// The document's `ocr` metadata: engine, languages, pages read, mean word confidence.
    pub fn metadata(&self) -> serde_json::Value {
        let mean = if self.words == 0 { 0.0 } else { self.confidence_sum / self.words as f64 };
        serde_json::json!({
            "engine": self.engine.version,
            "languages": self.engine.languages,
            "pages": self.pages,
            "mean_confidence": (mean * 10.0).round() / 10.0,
        })
    }
}

/// A PDF page as a PNG whose longer side is `max_side` pixels, for showing (the console draws a
/// cited region over it). Rendered by `pdftoppm` under `prlimit` (the parser's memory and CPU
/// limits) when the machine has it, and killed after `parser_cpu_seconds`.
pub fn render_page_png(pdf: &std::path::Path, page: u32, max_side: u32) -> Result<Vec<u8>> {
    let b = budgets();
    let deadline = Instant::now() + Duration::from_secs(b.parser_cpu_seconds.max(1));
    let (page, side, path) = (page.to_string(), max_side.to_string(), pdf.to_string_lossy());
    let pdftoppm = ["pdftoppm", "-f", &page, "-l", &page, "-scale-to", &side, "-png", &path];
    let limits = [format!("--as={}", b.parser_memory_bytes), format!("--cpu={}", b.parser_cpu_seconds.max(1))];
    let limited: Vec<&str> = limits.iter().map(String::as_str).chain(["--"]).chain(pdftoppm).collect();
    match run("prlimit", &limited, None, deadline) {
        Err(e) if e.code == Code::OcrUnavailable && e.message.starts_with("prlimit") => {
            run(pdftoppm[0], &pdftoppm[1..], None, deadline)
        }
        other => other,
    }
}

/// Runs a tool with `input` on its stdin, returning its stdout; killed at `deadline`. It sees
/// none of the server's environment (which holds secrets) but where tools and their data are.
fn run(program: &str, args: &[&str], input: Option<&[u8]>, deadline: Instant) -> Result<Vec<u8>> {
    let mut command = Command::new(program);
    command.env_clear();
    for name in ["PATH", "TESSDATA_PREFIX"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    let mut child = command
        .args(args)
        // One thread each: parser processes already run side by side, and CPU is their budget.
        .env("OMP_THREAD_LIMIT", "1")
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::new(Code::OcrUnavailable, format!("{program} could not be started: {e}")))?;
    let writer = match (child.stdin.take(), input) {
        (Some(mut stdin), Some(bytes)) => {
            let bytes = bytes.to_vec();
            // A tool that stops reading (a bad image) closes the pipe: that error is its to report.
            Some(std::thread::spawn(move || drop(stdin.write_all(&bytes))))
        }
        _ => None,
    };
    let reader = |pipe: Option<Box<dyn Read + Send>>, max: u64| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(max).read_to_end(&mut out);
            }
            out
        })
    };
    let stdout = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>), MAX_OUTPUT);
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>), 64 << 10);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(exceeded(
                    Code::ResourceLimitExceeded,
                    format!("text recognition took longer than {} s", budgets().parser_cpu_seconds),
                    "parser-cpu-seconds",
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(Error::internal(format!("{program}: {e}"))),
        }
    };
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let out = stdout.join().unwrap_or_default();
    let err = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
    if status.success() {
        return Ok(out);
    }
    use std::os::unix::process::ExitStatusExt;
    Err(match status.signal() {
        // The limits the parser process passed on: its address space (an allocation fails and
        // the tool aborts) or its CPU time.
        Some(6 | 9 | 11) => Error::new(
            Code::ResourceLimitExceeded,
            format!("{program} ran out of memory or crashed reading this file (parser limit)"),
        ),
        Some(24) => Error::new(Code::ResourceLimitExceeded, format!("{program} ran past the parser's CPU limit")),
        // The loader's code: a library missing, or no address space left to map one.
        _ if status.code() == Some(127) => {
            let detail = err.lines().next().unwrap_or("it could not start").trim().to_string();
            Error::new(Code::OcrUnavailable, format!("{program} could not start in the parser process ({detail})"))
        }
        _ => {
            let detail = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_string();
            Error::new(Code::CorruptFile, format!("the image could not be read for text recognition ({detail})"))
        }
    })
}

/// Tesseract's TSV: `level page_num block_num par_num line_num word_num left top width height
/// conf text`; level 5 rows are words, in reading order.
fn parse_tsv(tsv: &str) -> Recognised {
    let mut recognised = Recognised::default();
    let mut current: Option<(u32, u32, u32, u32)> = None;
    for row in tsv.lines().skip(1) {
        let cols: Vec<&str> = row.splitn(12, '\t').collect();
        let n = |i: usize| cols.get(i).and_then(|c| c.trim().parse::<u32>().ok()).unwrap_or(0);
        if cols.len() >= 10 && cols[0] == "1" {
            recognised.page_sizes.push((n(1).max(1), [n(8) as f32, n(9) as f32]));
        }
        if cols.len() < 12 || cols[0] != "5" {
            continue;
        }
        let text = cols[11].trim();
        if text.is_empty() {
            continue;
        }
        let key = (n(1), n(2), n(3), n(4));
        if current != Some(key) {
            recognised.lines.push(Line { page: key.0.max(1), paragraph: (key.1, key.2), words: Vec::new() });
            current = Some(key);
        }
        let (left, top, width, height) = (n(6) as f32, n(7) as f32, n(8) as f32, n(9) as f32);
        if let Some(line) = recognised.lines.last_mut() {
            line.words.push(Word {
                text: text.to_string(),
                confidence: cols[10].trim().parse().unwrap_or(0.0),
                bbox: [left, top, left + width, top + height],
            });
        }
    }
    recognised
}

pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x2E80..=0x9FFF | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFFEF | 0x20000..=0x2FA1F)
}

/// What goes between two pieces of text: nothing at the start or between two CJK characters
/// (Tesseract separates them, Chinese writes nothing between them), `sep` otherwise.
fn separator(out: &str, next: &str, sep: char) -> Option<char> {
    let cjk_boundary = out.chars().last().is_some_and(is_cjk) && next.chars().next().is_some_and(is_cjk);
    (!out.is_empty() && !cjk_boundary).then_some(sep)
}

fn join_onto(out: &mut String, next: &str, sep: char) {
    if let Some(c) = separator(out, next, sep) {
        out.push(c);
    }
    out.push_str(next);
}

/// Appends what was recognised on `page` (or, for a multi-page image, on each of its pages
/// from `page` on) to the text: a paragraph per recognised paragraph, a region per line, its
/// box multiplied by `scale` (pixels to the page's units). Tables, found from the words' boxes
/// as on a PDF's text layer, come out as Markdown tables where they stand, one region each.
pub fn append(b: &mut Builder, recognised: &Recognised, page: u32, scale: f32, mark_pages: bool) {
    let mut pages: Vec<u32> = recognised.lines.iter().map(|l| l.page).collect();
    pages.dedup();
    for tesseract_page in pages {
        let this_page = page + tesseract_page - 1;
        if mark_pages {
            b.mark("page", serde_json::json!(this_page));
        }
        let lines: Vec<&Line> = recognised.lines.iter().filter(|l| l.page == tesseract_page).collect();
        let size =
            recognised.page_sizes.iter().find(|(p, _)| *p == tesseract_page).map(|(_, s)| *s).unwrap_or_default();
        let page = Page { number: this_page, scale, size: size.map(|v| round(v * scale)) };
        let mut tables = page_tables(&lines);
        let in_table: Vec<bool> = (0..lines.len()).map(|i| tables.iter().any(|t| t.lines.contains(&i))).collect();
        let mut i = 0;
        while i < lines.len() {
            if in_table[i] {
                i += 1;
                continue;
            }
            // Tables above this paragraph come first.
            let top = lines[i].bbox()[1];
            while let Some(k) = tables.iter().position(|t| t.top <= top) {
                let table = tables.remove(k);
                page.add_table(b, &lines, &table);
            }
            let first = lines[i];
            let mut paragraph = Vec::new();
            while let Some(line) = lines.get(i).filter(|l| l.paragraph == first.paragraph && !in_table[i]) {
                paragraph.push(*line);
                i += 1;
            }
            page.add_paragraph(b, &paragraph);
        }
        for table in tables {
            page.add_table(b, &lines, &table);
        }
    }
}

fn round(v: f32) -> f32 {
    (v * 10.0).round() / 10.0
}

/// A table among a page's lines: its cells, the lines it took, and its top (in pixels).
struct PageTable {
    rows: Vec<Vec<String>>,
    lines: Vec<usize>,
    top: f32,
}

fn page_tables(lines: &[&Line]) -> Vec<PageTable> {
    let mut words: Vec<([f64; 4], &str)> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let [_, top, _, bottom] = line.bbox();
        for w in &line.words {
            words
                .push(([f64::from(w.bbox[0]), f64::from(w.bbox[2]), f64::from(top), f64::from(bottom - top)], &w.text));
            owner.push(i);
        }
    }
    crate::pdf_layout::tables_in_words(&words)
        .into_iter()
        .map(|(rows, taken)| {
            let mut taken_lines: Vec<usize> = taken.iter().filter_map(|w| owner.get(*w).copied()).collect();
            taken_lines.sort_unstable();
            taken_lines.dedup();
            let top = taken_lines.iter().map(|&l| lines[l].bbox()[1]).fold(f32::MAX, f32::min);
            PageTable { rows, lines: taken_lines, top }
        })
        .collect()
}

/// Where recognised text is being placed: the page's number, scale and size in its units.
struct Page {
    number: u32,
    scale: f32,
    size: [f32; 2],
}

impl Page {
    fn region(&self, char_start: usize, len: usize, bbox: [f32; 4], low_confidence: Vec<String>) -> Region {
        Region {
            char_start,
            char_end: char_start + len,
            page: self.number,
            bbox: bbox.map(|v| round(v * self.scale)),
            page_size: self.size,
            low_confidence,
        }
    }

    /// A paragraph of lines, a region per line.
    fn add_paragraph(&self, b: &mut Builder, lines: &[&Line]) {
        let mut text = String::new();
        let mut spans = Vec::new();
        for line in lines {
            let mut line_text = String::new();
            for word in &line.words {
                join_onto(&mut line_text, &word.text, ' ');
            }
            if let Some(c) = separator(&text, &line_text, '\n') {
                text.push(c);
            }
            spans.push((text.chars().count(), line_text.chars().count(), *line));
            text.push_str(&line_text);
        }
        let offset = b.next_paragraph_start();
        b.paragraph(&text);
        for (start, len, line) in spans {
            b.regions.push(self.region(offset + start, len, line.bbox(), unsure(&[line])));
        }
    }

    /// A table as a Markdown table, one region around all its lines.
    fn add_table(&self, b: &mut Builder, lines: &[&Line], table: &PageTable) {
        let taken: Vec<&Line> = table.lines.iter().map(|&i| lines[i]).collect();
        let bbox = taken.iter().map(|l| l.bbox()).fold(EMPTY_BOX, union_box);
        let text = crate::chunk::markdown_table(&table.rows);
        let offset = b.next_paragraph_start();
        b.paragraph(&text);
        b.regions.push(self.region(offset, text.chars().count(), bbox, unsure(&taken)));
    }
}

/// The words of these lines read with low confidence.
fn unsure(lines: &[&Line]) -> Vec<String> {
    lines.iter().flat_map(|l| &l.words).filter(|w| w.confidence < LOW_CONFIDENCE).map(|w| w.text.clone()).collect()
}

/// The resolution a page of `width` × `height` points is rendered at for recognition: 300 DPI,
/// less for a huge page, and no more than a scanned page's own image has (at least 150):
/// enlarging a scan enlarges its speckle, which costs accuracy.
pub fn dpi_for(width: f64, height: f64, image_dpi: Option<f64>) -> f64 {
    let longest_inches = width.max(height).max(1.0) / 72.0;
    let dpi = RENDER_DPI.min(MAX_RENDER_PIXELS / longest_inches);
    image_dpi.map_or(dpi, |native| dpi.min(native.max(150.0))).max(10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_words_join_into_lines_and_paragraphs_with_boxes() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
                   1\t1\t0\t0\t0\t0\t0\t0\t800\t600\t-1\t\n\
                   5\t1\t1\t1\t1\t1\t10\t20\t50\t30\t96.5\tHello\n\
                   5\t1\t1\t1\t1\t2\t70\t20\t60\t30\t41.0\twrold\n\
                   5\t1\t1\t1\t2\t1\t10\t60\t30\t30\t95\t知\n\
                   5\t1\t1\t1\t2\t2\t40\t60\t30\t30\t95\t识\n\
                   5\t1\t1\t1\t2\t3\t70\t60\t30\t30\t95\t库\n\
                   5\t1\t2\t1\t1\t1\t10\t200\t80\t30\t90\tSecond\n";
        let recognised = parse_tsv(tsv);
        assert_eq!(recognised.lines.len(), 3);
        let mut b = Builder::default();
        b.paragraph("Before");
        append(&mut b, &recognised, 3, 0.5, true);
        assert_eq!(b.text, "Before\n\nHello wrold\n知识库\n\nSecond");
        assert_eq!(b.regions.len(), 3);
        let chars: Vec<char> = b.text.chars().collect();
        let region_text = |r: &Region| chars[r.char_start..r.char_end].iter().collect::<String>();
        assert_eq!(region_text(&b.regions[0]), "Hello wrold");
        assert_eq!(region_text(&b.regions[1]), "知识库");
        assert_eq!(region_text(&b.regions[2]), "Second");
        assert_eq!(b.regions[0].bbox, [5.0, 10.0, 65.0, 25.0]);
        assert_eq!(b.regions[0].page_size, [400.0, 300.0], "the page's size, scaled as the boxes are");
        assert_eq!(b.regions[0].low_confidence, vec!["wrold".to_string()]);
        assert!(b.regions[1].low_confidence.is_empty());
        assert_eq!(b.regions[2].page, 3);
        assert_eq!(b.locations.len(), 1);
    }

    #[test]
    fn a_tool_that_dies_fails_the_file_with_the_reason() {
        let soon = Instant::now() + Duration::from_secs(10);
        assert_eq!(run("sh", &["-c", "cat"], Some(b"pixels"), soon).expect("ran"), b"pixels");
        let code = |args: &[&str], deadline| run("sh", args, None, deadline).expect_err("failed").code;
        assert_eq!(code(&["-c", "kill -ABRT $$"], soon), Code::ResourceLimitExceeded);
        assert_eq!(code(&["-c", "kill -XCPU $$"], soon), Code::ResourceLimitExceeded);
        assert_eq!(code(&["-c", "echo 'Error in pixReadMem: Unknown format' >&2; exit 1"], soon), Code::CorruptFile);
        assert_eq!(code(&["-c", "exit 127"], soon), Code::OcrUnavailable);
        let started = Instant::now();
        assert_eq!(code(&["-c", "sleep 30"], Instant::now() + Duration::from_millis(200)), Code::ResourceLimitExceeded);
        assert!(started.elapsed() < Duration::from_secs(5), "killed at the deadline");
        let missing = run("no-such-recogniser", &[], None, soon).expect_err("missing");
        assert_eq!(missing.code, Code::OcrUnavailable);
    }

    #[test]
    fn chinese_lines_join_without_a_break_english_lines_keep_one() {
        let mut out = String::from("知识");
        join_onto(&mut out, "库", '\n');
        assert_eq!(out, "知识库");
        let mut out = String::from("knowledge");
        join_onto(&mut out, "base", '\n');
        assert_eq!(out, "knowledge\nbase");
    }

    #[test]
    fn pages_render_at_300_dpi_unless_they_are_huge() {
        assert_eq!(dpi_for(595.0, 842.0, None), 300.0);
        assert_eq!(dpi_for(595.0, 842.0, Some(200.0)), 200.0);
        assert_eq!(dpi_for(595.0, 842.0, Some(72.0)), 150.0);
        let dpi = dpi_for(72.0 * 100.0, 72.0 * 50.0, None);
        assert!((dpi - 42.0).abs() < 0.1, "{dpi}");
    }
}
