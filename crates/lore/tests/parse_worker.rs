//! The parser processes (`lore parse-worker`, lore_ingest::isolate): every way a parser can die
//! (abort, allocation failure, endless loop, hang, stack overflow) fails that one job with
//! `resource_limit_exceeded` and says which limit; the pool replaces the child and goes on. Files
//! come back exactly as parsing them in-process gives them.

use std::time::Duration;

use lore_core::budget::Budgets;
use lore_core::error::Code;
use lore_ingest::detect::FileKind;
use lore_ingest::isolate::ParserPool;
use lore_ingest::{parse, samples};

const MIB: u64 = 1024 * 1024;

fn pool(cpu_seconds: u64, wall: Duration) -> ParserPool {
    let budgets = Budgets { parser_memory_bytes: 1024 * MIB, parser_cpu_seconds: cpu_seconds, ..Budgets::default() };
    ParserPool::new(env!("CARGO_BIN_EXE_lore"), 2).with_budgets(budgets).with_wall_clock(wall).with_test_commands()
}

/// A normal file after a death: a fresh child reads it.
fn still_parses(pool: &ParserPool) {
    let parsed = pool.parse(FileKind::Text, "死后重生：解析器进程照常工作。".as_bytes()).expect("parses");
    assert_eq!(parsed.text, "死后重生：解析器进程照常工作。");
}

#[test]
fn files_come_back_as_in_process_parsing_gives_them_from_a_reused_child() {
    let pool = pool(60, Duration::from_secs(120));
    let text = "知识库手册\n\n中文分词是检索的基础。Lore 支持中文与 English 混排。\n\n第二段：表格、页码与幻灯片。";
    let files: Vec<(FileKind, Vec<u8>)> = vec![
        (FileKind::Text, text.as_bytes().to_vec()),
        (FileKind::Markdown, "# 标题\n\n正文**加粗**。".as_bytes().to_vec()),
        (FileKind::Code("rust"), "fn main() { println!(\"你好\"); }\n".as_bytes().to_vec()),
        (FileKind::Xlsx, samples::xlsx()),
        (FileKind::Docx, samples::docx()),
        (FileKind::Pptx, samples::pptx()),
        (FileKind::Pdf, samples::pdf(&["Page one", "Page two"])),
        (FileKind::Epub, samples::epub()),
    ];
    let mut pids = Vec::new();
    for (kind, bytes) in &files {
        let isolated = pool.parse(*kind, bytes).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let in_process = parse::parse(*kind, bytes).expect("in process");
        assert_eq!(isolated, in_process, "{kind:?}");
        pids.push(pool.idle_pids());
    }
    assert_eq!(pool.parse(FileKind::Text, text.as_bytes()).expect("text").text, text);
    // One child did all of it.
    assert!(pids.iter().all(|p| p.len() == 1 && p == &pids[0]), "{pids:?}");
    // A document's own errors come back with their codes, and the child stays.
    let err = pool.parse(FileKind::Docx, b"PK\x03\x04 truncated").expect_err("corrupt");
    assert_eq!(err.code, Code::CorruptFile, "{err}");
    let err = pool.parse(FileKind::Xlsx, &samples::xlsx_sparse()).expect_err("sparse");
    assert_eq!(err.code, Code::TooManyCells, "{err}");
    let err = pool.parse(FileKind::Binary("zip"), b"PK\x03\x04").expect_err("zip");
    assert_eq!(err.code, Code::UnsupportedFileType, "{err}");
    assert_eq!(pool.idle_pids(), pids[0]);
}

#[test]
fn an_abort_a_stack_overflow_and_an_allocation_failure_each_fail_one_job() {
    let pool = pool(60, Duration::from_secs(120));
    still_parses(&pool);
    let first = pool.idle_pids();

    let err = pool.run_test_command("abort", b"").expect_err("abort");
    assert_eq!(err.code, Code::ResourceLimitExceeded, "{err}");
    assert!(err.message.contains("crashed"), "{}", err.message);
    assert!(pool.idle_pids().is_empty(), "the dead child is not kept");
    still_parses(&pool);
    assert_ne!(pool.idle_pids(), first, "a fresh child");

    let err = pool.run_test_command("overflow", b"").expect_err("overflow");
    assert_eq!(err.code, Code::ResourceLimitExceeded, "{err}");
    assert!(err.message.contains("crashed"), "{}", err.message);
    still_parses(&pool);

    // Within the limit an allocation is fine, and the child stays.
    let err = pool.run_test_command("allocate", (64 * MIB).to_string().as_bytes()).expect_err("answers");
    assert_eq!(err.code, Code::CorruptFile, "the test command's own answer: {err}");
    // Past it (1 GiB of address space), the child aborts: memory.
    let err = pool.run_test_command("allocate", (8192 * MIB).to_string().as_bytes()).expect_err("too much");
    assert_eq!(err.code, Code::ResourceLimitExceeded, "{err}");
    assert!(err.message.contains("1024 MiB of memory"), "{}", err.message);
    assert!(err.message.contains("--parser-memory-mb"), "{}", err.message);
    still_parses(&pool);
}

#[test]
fn an_endless_loop_is_stopped_by_the_cpu_limit() {
    let pool = pool(1, Duration::from_secs(120));
    still_parses(&pool);
    let err = pool.run_test_command("spin", b"").expect_err("spin");
    assert_eq!(err.code, Code::ResourceLimitExceeded, "{err}");
    assert!(err.message.contains("1 s of CPU time"), "{}", err.message);
    still_parses(&pool);
}

#[test]
fn a_hang_is_stopped_by_the_wall_clock() {
    let pool = pool(60, Duration::from_secs(2));
    still_parses(&pool);
    let started = std::time::Instant::now();
    let err = pool.run_test_command("sleep", b"").expect_err("sleep");
    assert_eq!(err.code, Code::ResourceLimitExceeded, "{err}");
    assert!(err.message.contains("longer than 2 s"), "{}", err.message);
    assert!(started.elapsed() < Duration::from_secs(30));
    still_parses(&pool);
}

#[test]
fn test_commands_need_the_test_environment() {
    let pool = ParserPool::new(env!("CARGO_BIN_EXE_lore"), 1);
    let err = pool.run_test_command("abort", b"").expect_err("refused");
    assert_eq!(err.code, Code::Internal, "an unknown kind, not an abort: {err}");
    still_parses(&pool);
}

#[test]
fn images_and_scans_are_recognised_in_the_child_as_in_process() {
    use lore_ingest::ocr::OcrMode;
    use lore_ingest::parse::ParseOptions;
    use lore_ingest::scans;
    if !scans::ocr_ready() {
        return;
    }
    let font = scans::font().expect("font");
    let page = scans::render(&font, &["Recognised inside the parser process", "在解析进程中识别文字"], 12.0, 200);
    let pool = pool(60, Duration::from_secs(120));
    let png = page.png();
    let isolated = pool.parse(FileKind::Image("png"), &png).expect("recognised");
    assert_eq!(isolated, parse::parse(FileKind::Image("png"), &png).expect("in process"));
    assert!(isolated.text.contains("parser process") && !isolated.regions.is_empty(), "{isolated:?}");
    // The knowledge base's options travel with the file.
    let pdf = scans::image_pdf(&[page]);
    let never = ParseOptions { ocr: OcrMode::Never };
    let err = pool.parse_with(FileKind::Pdf, &pdf, never).expect_err("not read");
    assert_eq!(err.code, Code::NoTextContent, "{err}");
    let read = pool.parse_with(FileKind::Pdf, &pdf, ParseOptions::default()).expect("read");
    assert_eq!(read.metadata["ocr"]["pages"], serde_json::json!([1]));
}
