//! A mutation fuzzer for the parsers: real sample files of every format, mutated (bit flips,
//! overwrites, insertions, deletions, duplications, truncations, splices), fed to `parse`. A
//! panic or a parse slower than the limit is a finding. Errors are the expected outcome.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crate::detect::FileKind;
use crate::ocr::OcrMode;
use crate::parse::{ParseOptions, parse_with};
use crate::samples::{self, Rng};

/// One input that broke a parser.
#[derive(Debug, Clone)]
pub struct Finding {
    pub kind: FileKind,
    pub input: Vec<u8>,
    pub problem: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub executions: u64,
    pub parsed: u64,
    pub rejected: u64,
    pub findings: Vec<Finding>,
}

/// The starting corpus: one valid file per format.
pub fn seeds() -> Vec<(FileKind, Vec<u8>)> {
    vec![
        (FileKind::Docx, samples::docx()),
        (FileKind::Pptx, samples::pptx()),
        (FileKind::Xlsx, samples::xlsx()),
        (FileKind::Epub, samples::epub()),
        (FileKind::Pdf, samples::pdf(&["Knowledge bases hold documents.", "Second page."])),
        (FileKind::Html, "<html><head><title>标题</title></head><body><nav>x</nav><p>正文 <a href='/'>链接</a></p></body></html>".into()),
        (FileKind::Markdown, "# 标题\n\n段落 **粗体**\n\n- 列表\n\n```rust\nfn main() {}\n```\n".into()),
        (FileKind::Rtf, br"{\rtf1\ansi\ansicpg936{\fonttbl{\f0 SimSun;}}\f0 \'d6\'d0\'ce\'c4\par \u30693?}".to_vec()),
        (FileKind::Csv, "名称,描述\n知识库,\"存放, 文档\"\n".into()),
        (FileKind::Json, r#"{"a": [1, {"b": "中文"}], "c": null}"#.into()),
        (FileKind::Email, "From: a@b.c\r\nTo: d@e.f\r\nSubject: =?UTF-8?B?5Lit5paH?=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n正文\r\n".into()),
        (FileKind::Text, "纯文本 plain text\n\n第二段".into()),
        // Images go to the recogniser (Tesseract, when installed) after the header is checked.
        (FileKind::Image("png"), crate::scans::Gray::bars(96, 32).png()),
        (FileKind::Image("bmp"), crate::scans::Gray::bars(64, 24).bmp()),
        (FileKind::Image("tiff"), crate::scans::Gray::bars(64, 24).tiff()),
        // Formats without an encoder here: small files made once (bars, 48 × 32, by Pillow).
        (FileKind::Image("jpeg"), include_bytes!("fixtures/bars.jpg").to_vec()),
        (FileKind::Image("gif"), include_bytes!("fixtures/bars.gif").to_vec()),
        (FileKind::Image("webp"), include_bytes!("fixtures/bars.webp").to_vec()),
    ]
}

fn mutate(input: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = [0u8, 0xff, b'<', b'{', b'\\', b'(', 0x80, b'0'][rng.below(8)];
            }
            2 => {
                let i = rng.below(len + 1);
                let bytes: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next_u64() as u8).collect();
                out.splice(i..i, bytes);
            }
            3 if len > 1 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                out.drain(a..b);
            }
            4 if len > 1 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(256)).min(len);
                let copy = out[a..b].to_vec();
                let at = rng.below(out.len() + 1);
                out.splice(at..at, copy);
            }
            5 if len > 1 => out.truncate(rng.below(len)),
            _ if !other.is_empty() => {
                let a = rng.below(other.len());
                let b = (a + 1 + rng.below(128)).min(other.len());
                let at = rng.below(out.len() + 1);
                out.splice(at..at, other[a..b].iter().copied());
            }
            _ => {}
        }
    }
    out
}

/// Runs until `budget` is spent or `max_executions` inputs were tried.
pub fn run(budget: Duration, max_executions: u64, seed: u64, slow: Duration) -> Report {
    let corpus = seeds();
    let mut rng = Rng(seed | 1);
    let mut report = Report::default();
    let started = Instant::now();
    while started.elapsed() < budget && report.executions < max_executions {
        let (kind, base) = &corpus[rng.below(corpus.len())];
        // An image costs a recogniser process (a tenth of a second or more) where other files
        // cost microseconds: one pick in twenty keeps the other formats' share of the run.
        if matches!(kind, FileKind::Image(_)) && rng.below(20) != 0 {
            continue;
        }
        // A PDF goes to the recogniser (its pages rendered and read) one time in twenty, too;
        // recognition takes seconds by nature, so those runs are slow only past six times the limit.
        let recognise = matches!(kind, FileKind::Image(_)) || *kind == FileKind::Pdf && rng.below(20) == 0;
        let options = ParseOptions { ocr: if recognise { OcrMode::Auto } else { OcrMode::Never } };
        let slow = if recognise { slow * 6 } else { slow };
        let other = &corpus[rng.below(corpus.len())].1;
        let input = mutate(base, other, &mut rng);
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| parse_with(*kind, &input, options)));
        report.executions += 1;
        match outcome {
            Ok(Ok(_)) => report.parsed += 1,
            Ok(Err(_)) => report.rejected += 1,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                report.findings.push(Finding { kind: *kind, input, problem: format!("panic: {message}") });
                continue;
            }
        }
        if t.elapsed() > slow {
            report.findings.push(Finding { kind: *kind, input, problem: format!("slow: {:?}", t.elapsed()) });
        }
    }
    report
}
