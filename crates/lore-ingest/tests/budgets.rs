//! The parsers' budgets (`lore_core::budget`), set small for this process: what expands past
//! `max_expanded_bytes` or spans more than `max_sheet_cells` is refused with the limit's code.

use lore_core::budget::{Budgets, install};
use lore_core::error::Code;
use lore_ingest::detect::FileKind;
use lore_ingest::parse::parse;
use lore_ingest::samples;

/// Every test of this file runs under the same small budgets (the first install wins).
fn small_budgets() {
    install(Budgets { max_expanded_bytes: 1 << 20, max_sheet_cells: 100, ..Budgets::default() });
}

#[test]
fn a_pdf_whose_streams_expand_past_the_budget_is_refused() {
    small_budgets();
    let mut doc = lopdf::Document::load_mem(&samples::pdf(&["Hello budgets"])).expect("sample pdf");
    let contents = doc.get_page_contents(*doc.get_pages().values().next().expect("a page"));
    let lopdf::Object::Stream(stream) = doc.get_object_mut(contents[0]).expect("contents") else {
        panic!("not a stream")
    };
    let mut content = b"BT /F1 12 Tf 72 720 Td (Hello budgets) Tj ET\n".to_vec();
    content.extend(std::iter::repeat_n(b' ', 2 << 20));
    stream.set_plain_content(content);
    stream.compress().expect("compress");
    let mut bomb = Vec::new();
    doc.save_to(&mut bomb).expect("save");
    assert!(bomb.len() < 64 * 1024, "the file itself is small: {}", bomb.len());
    let err = parse(FileKind::Pdf, &bomb).expect_err("expands too far");
    assert_eq!(err.code, Code::ExpandedSizeExceeded, "{err}");
    assert!(err.message.contains("--max-expanded-mb"), "{}", err.message);
    // A small PDF reads as ever.
    assert!(parse(FileKind::Pdf, &samples::pdf(&["Hello budgets"])).expect("pdf").text.contains("Hello budgets"));
}

#[test]
fn a_workbook_that_expands_past_the_budget_is_refused_before_calamine_reads_it() {
    small_budgets();
    // A valid workbook with one more part of 2 MiB of zeros (a few KB compressed).
    let mut bomb = std::io::Cursor::new(Vec::new());
    {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(&mut bomb);
        let source = zip::ZipArchive::new(std::io::Cursor::new(samples::xlsx())).expect("sample");
        let mut source = source;
        for i in 0..source.len() {
            let entry = source.by_index(i).expect("entry");
            w.raw_copy_file(entry).expect("copy");
        }
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        w.start_file("xl/media/padding.bin", options).expect("entry");
        w.write_all(&vec![0u8; 2 << 20]).expect("write");
        w.finish().expect("finish");
    }
    let err = parse(FileKind::Xlsx, &bomb.into_inner()).expect_err("expands too far");
    assert_eq!(err.code, Code::ExpandedSizeExceeded, "{err}");
    assert!(parse(FileKind::Xlsx, &samples::xlsx()).is_ok());
}

#[test]
fn a_sheet_spanning_more_cells_than_the_budget_is_refused() {
    small_budgets();
    let row = |r: usize| (0..10).map(|c| format!("r{r}c{c}")).collect::<Vec<_>>();
    let wide: Vec<Vec<String>> = (0..11).map(row).collect();
    let err = parse(FileKind::Xlsx, &samples::xlsx_from(&wide)).expect_err("110 cells");
    assert_eq!(err.code, Code::TooManyCells, "{err}");
    assert!(err.message.contains("11 rows by 10 columns (110 cells)"), "{}", err.message);
    let fits: Vec<Vec<String>> = (0..10).map(row).collect();
    assert!(parse(FileKind::Xlsx, &samples::xlsx_from(&fits)).expect("100 cells").text.contains("r9c9"));
}
