//! `lore bench parse` and `lore bench fuzz`: the parsers alone, in this process or isolated, and
//! mutated sample files against them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lore_ingest::samples::Rng;
use serde_json::json;

use crate::common::*;
use crate::{FuzzArgs, ParseArgs};

pub(crate) fn fuzz(args: FuzzArgs) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "lore bench fuzz --seconds {} --seed {}: {threads} threads, mutated samples of every format",
        args.seconds, args.seed
    );
    let started = Instant::now();
    let reports: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let seed = args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(t as u64);
                scope.spawn(move || {
                    lore_ingest::fuzz::run(Duration::from_secs(args.seconds), u64::MAX, seed, Duration::from_secs(5))
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let executions: u64 = reports.iter().map(|r| r.executions).sum();
    let parsed: u64 = reports.iter().map(|r| r.parsed).sum();
    let rejected: u64 = reports.iter().map(|r| r.rejected).sum();
    let findings: Vec<_> = reports.into_iter().flat_map(|r| r.findings).collect();
    for (i, f) in findings.iter().enumerate() {
        std::fs::create_dir_all(&args.out)?;
        let path = args.out.join(format!("{i}-{}.bin", f.kind.name()));
        std::fs::write(&path, &f.input)?;
        println!("finding {i}: {:?} {} -> {}", f.kind, f.problem, path.display());
    }
    println!(
        "{executions} executions in {:.0} s ({:.0}/s): {parsed} parsed, {rejected} rejected with an error, {} findings",
        started.elapsed().as_secs_f64(),
        executions as f64 / started.elapsed().as_secs_f64(),
        findings.len()
    );
    anyhow::ensure!(
        findings.is_empty(),
        "the parsers broke on {} inputs (saved under {})",
        findings.len(),
        args.out.display()
    );
    Ok(())
}

/// Writes a mixed corpus of about `mb` MB into `dir`.
fn generate_corpus(dir: &std::path::Path, mb: u64) -> anyhow::Result<()> {
    use lore_ingest::samples;
    std::fs::create_dir_all(dir)?;
    let (en, zh) = (Vocabulary::english(VOCABULARY), Vocabulary::chinese(VOCABULARY));
    let mut rng = Rng(0xC0FFEE);
    let sentence = |rng: &mut Rng, chinese: bool, words: usize| -> String {
        let v = if chinese { &zh } else { &en };
        let w: Vec<&str> = (0..words).map(|_| v.sample(rng)).collect();
        if chinese { format!("{}。", w.join("")) } else { format!("{}.", w.join(" ")) }
    };
    let mut total = 0u64;
    let mut i = 0usize;
    while total < mb * 1_000_000 {
        let chinese = i.is_multiple_of(2);
        let paragraphs: Vec<String> = (0..40 + rng.next_u64() % 80).map(|_| sentence(&mut rng, chinese, 30)).collect();
        let (name, bytes): (String, Vec<u8>) = match i % 8 {
            0 => (format!("{i}.md"), format!("# Doc {i}\n\n{}", paragraphs.join("\n\n")).into_bytes()),
            1 => (
                format!("{i}.html"),
                format!(
                    "<html><head><title>Doc {i}</title></head><body><nav>menu</nav><main>{}</main><footer>f</footer></body></html>",
                    paragraphs.iter().map(|p| format!("<p>{p}</p>")).collect::<String>()
                )
                .into_bytes(),
            ),
            2 => (format!("{i}.txt"), paragraphs.join("\n\n").into_bytes()),
            3 => (
                format!("{i}.csv"),
                std::iter::once("id,title,body".to_string())
                    .chain(paragraphs.iter().enumerate().map(|(r, p)| format!("{r},row {r},\"{p}\"")))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes(),
            ),
            4 => (format!("{i}.json"), serde_json::to_vec(&json!({"id": i, "sections": paragraphs}))?),
            5 => {
                let blocks: Vec<(Option<usize>, String)> = paragraphs
                    .iter()
                    .enumerate()
                    .map(|(k, p)| if k % 10 == 0 { (Some(1), format!("Section {k}")) } else { (None, p.clone()) })
                    .collect();
                (format!("{i}.docx"), samples::docx_from(&blocks))
            }
            6 => {
                let rows: Vec<Vec<String>> = std::iter::once(vec!["id".to_string(), "text".to_string()])
                    .chain(paragraphs.iter().enumerate().map(|(r, p)| vec![r.to_string(), p.clone()]))
                    .collect();
                (format!("{i}.xlsx"), samples::xlsx_from(&rows))
            }
            _ => {
                // The standard PDF fonts are Latin only: English text.
                let lines: Vec<String> = (0..60).map(|_| sentence(&mut rng, false, 12)).collect();
                let pages: Vec<Vec<String>> = lines.chunks(30).map(|c| c.to_vec()).collect();
                (format!("{i}.pdf"), samples::pdf_lines(&pages))
            }
        };
        total += bytes.len() as u64;
        std::fs::write(dir.join(name), bytes)?;
        i += 1;
    }
    println!("generated {i} files, {:.1} MB, in {}", total as f64 / 1e6, dir.display());
    Ok(())
}

fn files_under(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files_under(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

pub(crate) fn parse_folder(args: ParseArgs) -> anyhow::Result<()> {
    use lore_core::chunking;
    if let Some(mb) = args.generate_mb {
        generate_corpus(&args.dir, mb)?;
    }
    let mut paths = Vec::new();
    files_under(&args.dir, &mut paths)?;
    paths.sort();
    // The default chunking, its sizes counted in estimated tokens (no model is loaded here).
    let (strategy, _) = chunking::resolve(None, None, &Default::default(), chunking::DEFAULT_WINDOW_TOKENS)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    lore_ingest::segment::warm_up();
    let pool = match args.isolated {
        true => Some(lore_ingest::isolate::ParserPool::new(std::env::current_exe()?, 1)),
        false => None,
    };
    // files, bytes, seconds in all, seconds parsing, chunks
    let mut per_kind: std::collections::BTreeMap<&'static str, (usize, u64, f64, f64, usize)> = Default::default();
    let mut failures = Vec::new();
    for path in &paths {
        let bytes = std::fs::read(path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let t = Instant::now();
        let kind = lore_ingest::detect::detect(&name, &bytes[..bytes.len().min(8192)]);
        let mut parse_secs = 0.0;
        let parsed = match &pool {
            Some(pool) => pool.parse(kind, &bytes),
            None => lore_ingest::parse::parse(kind, &bytes),
        };
        let outcome = parsed.map(|parsed| {
            parse_secs = t.elapsed().as_secs_f64();
            let chunks = lore_ingest::chunk::chunk_measured(
                &parsed.text,
                &strategy,
                lore_ingest::chunk::Measure::Tokens(&lore_core::tokens::estimate),
            );
            let terms: usize = chunks.iter().map(|c| lore_ingest::segment::terms(&c.content).len()).sum();
            (chunks.len(), terms)
        });
        let secs = t.elapsed().as_secs_f64();
        let entry = per_kind.entry(kind.name()).or_default();
        entry.0 += 1;
        entry.1 += bytes.len() as u64;
        entry.2 += secs;
        entry.3 += if parse_secs > 0.0 { parse_secs } else { secs };
        match outcome {
            Ok((chunks, _)) => entry.4 += chunks,
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    println!(
        "lore bench parse --dir {}{}: detect + parse{} + chunk (default) + segment, 1 thread, {} build",
        args.dir.display(),
        if args.isolated { " --isolated" } else { "" },
        if args.isolated { " (in one reused child process)" } else { "" },
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    let (mut files, mut bytes, mut secs, mut parse) = (0, 0u64, 0.0, 0.0);
    for (kind, (n, b, s, p, chunks)) in &per_kind {
        println!(
            "{kind:>10}: {n:>5} files, {:>8.1} MB, parse {:>7.1} MB/s; with chunk + segment {:>7.1} MB/s, {:>7.0} files/s, {chunks} chunks",
            *b as f64 / 1e6,
            *b as f64 / 1e6 / p,
            *b as f64 / 1e6 / s,
            *n as f64 / s
        );
        files += n;
        bytes += b;
        secs += s;
        parse += p;
    }
    println!(
        "     total: {files:>5} files, {:>8.1} MB, parse {:>7.1} MB/s; with chunk + segment {:>7.1} MB/s, {:>7.0} files/s; failures: {}; peak RSS {}",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / parse,
        bytes as f64 / 1e6 / secs,
        files as f64 / secs,
        failures.len(),
        peak_rss_kib(std::process::id()).map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_default()
    );
    for f in failures.iter().take(10) {
        println!("failed: {f}");
    }
    if args.ocr_pages > 0 {
        ocr_figures(args.ocr_pages, pool.as_ref())?;
    }
    if args.table_pdfs > 0 {
        table_figures(args.table_pdfs, &args.dir.join("tables"))?;
    }
    Ok(())
}

/// `--ocr-pages`: Lore's recognition (the image parser, isolated when the run is) against
/// Tesseract's CLI on the same PNG files, alternating clean 300 DPI pages and scan-like 150 DPI
/// ones (turned 2°, 1% speckle).
fn ocr_figures(pages: usize, pool: Option<&lore_ingest::isolate::ParserPool>) -> anyhow::Result<()> {
    use lore_ingest::detect::FileKind;
    use lore_ingest::scans::{self, ScanLike, character_accuracy};
    let engine = lore_ingest::ocr::engine().map_err(|e| anyhow::anyhow!("{e}"))?;
    let font =
        scans::font().ok_or_else(|| anyhow::anyhow!("no CJK font at {:?} (scripts/ocr-up)", scans::FONT_PATHS))?;
    let dir = tempfile::tempdir()?;
    // (lines, png, scan-like)
    let images: Vec<(&[&str], Vec<u8>, bool)> = (0..pages)
        .map(|i| {
            let lines = scans::TEXTS[i % scans::TEXTS.len()];
            let page = scans::render(&font, lines, 12.0, 300);
            let scan = i / scans::TEXTS.len() % 2 == 1;
            let image =
                if scan { page.scanned(150, ScanLike { degrees: 2.0, noise: 0.01, seed: i as u64 }) } else { page };
            (lines, image.png(), scan)
        })
        .collect();
    println!("text recognition: {pages} pages, {} with {}", engine.version, engine.languages);
    // (seconds, accuracy sum clean, n clean, accuracy sum scan, n scan)
    let mut lore = (0.0, 0.0, 0, 0.0, 0);
    let mut cli = (0.0, 0.0, 0, 0.0, 0);
    let tally = |t: &mut (f64, f64, usize, f64, usize), seconds: f64, accuracy: f64, scan: bool| {
        t.0 += seconds;
        if scan {
            t.3 += accuracy;
            t.4 += 1;
        } else {
            t.1 += accuracy;
            t.2 += 1;
        }
    };
    let mut per_page = Vec::new();
    for (i, (lines, png, scan)) in images.iter().enumerate() {
        let truth = lines.concat();
        let t = Instant::now();
        let parsed = match pool {
            Some(pool) => pool.parse(FileKind::Image("png"), png),
            None => lore_ingest::parse::parse(FileKind::Image("png"), png),
        }
        .map_err(|e| anyhow::anyhow!("page {i}: {e}"))?;
        let accuracy = character_accuracy(&truth, &parsed.text);
        tally(&mut lore, t.elapsed().as_secs_f64(), accuracy, *scan);
        per_page.push(format!("{}{i}:{accuracy:.3}", if *scan { "scan" } else { "clean" }));
        let path = dir.path().join(format!("{i}.png"));
        std::fs::write(&path, png)?;
        let t = Instant::now();
        let out = std::process::Command::new("tesseract")
            .arg(&path)
            .args(["stdout", "-l", &engine.languages])
            .env("OMP_THREAD_LIMIT", "1")
            .stderr(std::process::Stdio::null())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        tally(&mut cli, t.elapsed().as_secs_f64(), character_accuracy(&truth, &text), *scan);
    }
    println!("  lore per page: {}", per_page.join(" "));
    for (name, t) in [("lore (image parser)", lore), ("tesseract CLI", cli)] {
        println!(
            "  {name:<20} {:.2} pages/s, character accuracy {:.3} clean ({} pages), {:.3} scan-like ({} pages)",
            pages as f64 / t.0.max(1e-9),
            t.1 / t.2.max(1) as f64,
            t.2,
            t.3 / t.4.max(1) as f64,
            t.4
        );
    }
    Ok(())
}

/// pdfplumber on the same files: each PDF's first table, by its default (ruling lines) and its
/// text-alignment strategy, its rows counted from the header; prints `strategy right cells
/// seconds` lines.
const PDFPLUMBER: &str = r#"
import json, sys, time, pathlib
import pdfplumber
root = pathlib.Path(sys.argv[1])
for name, settings in [("lines", {}), ("text", {"vertical_strategy": "text", "horizontal_strategy": "text"})]:
    right = cells = 0
    started = time.time()
    for pdf_path in sorted(root.glob("*.pdf")):
        truth = json.loads(pdf_path.with_suffix(".json").read_text())
        with pdfplumber.open(pdf_path) as pdf:
            tables = pdf.pages[0].extract_tables(settings)
        found = [[(c or "").strip() for c in row] for row in tables[0]] if tables else []
        # Fair to it: blank rows dropped, rows counted from the header (the text strategy takes
        # the lines above and below a table into it).
        found = [row for row in found if any(found_cell for found_cell in row)]
        start = next((i for i, row in enumerate(found) if row and row[0] == truth[0][0]), 0)
        found = found[start:]
        for r, row in enumerate(truth):
            for c, cell in enumerate(row):
                cells += 1
                right += r < len(found) and c < len(found[r]) and found[r][c] == cell
    print(name, right, cells, time.time() - started)
"#;

/// `--table-pdfs`: Lore's table reading (geometry of the text layer) on generated PDFs whose
/// cells are known, and pdfplumber's on the same files.
fn table_figures(count: usize, dir: &std::path::Path) -> anyhow::Result<()> {
    use lore_ingest::samples;
    std::fs::create_dir_all(dir)?;
    let mut rng = Rng(0x7AB1E5);
    let (mut right, mut cells, mut seconds) = (0, 0, 0.0);
    for i in 0..count {
        let rows = 3 + rng.below(8);
        let table = samples::random_table(&mut rng, 2 + i % 5, rows);
        let pdf = samples::pdf_table("Inventory report for the quarter", &table, "Figures are in euros.");
        std::fs::write(dir.join(format!("{i:04}.pdf")), &pdf)?;
        std::fs::write(dir.join(format!("{i:04}.json")), serde_json::to_vec(&table)?)?;
        let t = Instant::now();
        let parsed =
            lore_ingest::parse::parse(lore_ingest::detect::FileKind::Pdf, &pdf).map_err(|e| anyhow::anyhow!("{e}"))?;
        seconds += t.elapsed().as_secs_f64();
        let (r, c) = samples::cell_accuracy(&table, &samples::markdown_cells(&parsed.text));
        right += r;
        cells += c;
    }
    println!("tables in PDFs: {count} generated tables, 2 to 6 columns, no ruling lines (in {})", dir.display());
    println!(
        "  {:<28} cell accuracy {:.3} ({right}/{cells}), {:.1} PDFs/s",
        "lore",
        right as f64 / cells as f64,
        count as f64 / seconds
    );
    let script = dir.join("pdfplumber_tables.py");
    std::fs::write(&script, PDFPLUMBER)?;
    match std::process::Command::new("python3").arg(&script).arg(dir).output() {
        Ok(out) if out.status.success() => {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if let [name, r, c, s] = f[..] {
                    let (r, c, s): (f64, f64, f64) = (r.parse()?, c.parse()?, s.parse()?);
                    println!(
                        "  {:<28} cell accuracy {:.3} ({r}/{c}), {:.1} PDFs/s",
                        format!("pdfplumber ({name})"),
                        r / c,
                        count as f64 / s
                    );
                }
            }
        }
        _ => println!("  pdfplumber: not available (python3 -m pip install pdfplumber)"),
    }
    Ok(())
}
