//! Text recognition on images and image-only PDFs rendered here from known text, clean and
//! scan-like, in English and Chinese: character accuracy against the text that was drawn.

use lore_ingest::detect::{FileKind, detect};
use lore_ingest::ocr::OcrMode;
use lore_ingest::parse::{ParseOptions, parse_with};
use lore_ingest::scans::{self, Gray, ScanLike, character_accuracy};

const ENGLISH: &[&str] = scans::TEXTS[0];
const CHINESE: &[&str] = scans::TEXTS[1];
const SCAN: ScanLike = ScanLike { degrees: 2.5, noise: 0.02, seed: 20261207 };

fn page(lines: &[&str]) -> Gray {
    let font = scans::font().expect("font");
    scans::render(&font, lines, 12.0, 300)
}

fn read(kind: FileKind, bytes: &[u8]) -> lore_ingest::parse::Parsed {
    parse_with(kind, bytes, ParseOptions::default()).expect("recognised")
}

fn accuracy(lines: &[&str], parsed: &lore_ingest::parse::Parsed) -> f64 {
    let accuracy = character_accuracy(&lines.concat(), &parsed.text);
    eprintln!("accuracy {accuracy:.4}: {:?}", parsed.text);
    accuracy
}

#[test]
fn clean_images_are_read_at_95_per_cent_or_better() {
    if !scans::ocr_ready() {
        return;
    }
    for lines in [ENGLISH, CHINESE] {
        let png = page(lines).png();
        assert_eq!(detect("scan.png", &png), FileKind::Image("png"));
        let parsed = read(FileKind::Image("png"), &png);
        assert!(accuracy(lines, &parsed) >= 0.95);
        let ocr = &parsed.metadata["ocr"];
        assert!(ocr["engine"].as_str().is_some_and(|e| e.starts_with("tesseract")), "{ocr}");
        assert_eq!(ocr["pages"], serde_json::json!([1]));
        // Every line has its box on the page, inside the image.
        assert!(parsed.regions.len() >= lines.len(), "{:?}", parsed.regions);
        let first = &parsed.regions[0];
        assert_eq!(first.page, 1);
        assert!(first.bbox[0] > 100.0 && first.bbox[2] > first.bbox[0] && first.bbox[3] > first.bbox[1]);
        assert!(first.bbox[2] < 2481.0, "{:?}", first.bbox);
    }
}

#[test]
fn scan_like_images_and_image_only_pdfs_are_read_at_90_per_cent_or_better() {
    if !scans::ocr_ready() {
        return;
    }
    for lines in [ENGLISH, CHINESE] {
        let scan = page(lines).scanned(150, SCAN);
        let bmp = scan.bmp();
        assert_eq!(detect("scan.bmp", &bmp), FileKind::Image("bmp"));
        assert!(accuracy(lines, &read(FileKind::Image("bmp"), &bmp)) >= 0.90);
        // An image-only PDF: a clean page and a scanned one, read page by page.
        let pdf = scans::image_pdf(&[page(lines), scan]);
        let parsed = read(FileKind::Pdf, &pdf);
        assert_eq!(parsed.metadata["ocr"]["pages"], serde_json::json!([1, 2]));
        let second = parsed.locations.iter().find(|l| l.value == 2).expect("page 2").char_start;
        let (one, two): (String, String) =
            (parsed.text.chars().take(second).collect(), parsed.text.chars().skip(second).collect());
        assert!(character_accuracy(&lines.concat(), &one) >= 0.95, "{one}");
        assert!(character_accuracy(&lines.concat(), &two) >= 0.90, "{two}");
        // Regions are in PDF points: within an A4 page's width.
        assert!(
            parsed.regions.iter().all(|r| r.bbox[2] <= 596.0 && r.page >= 1 && r.page <= 2),
            "{:?}",
            parsed.regions
        );
    }
}

#[test]
fn ocr_never_leaves_images_and_scans_without_text() {
    if !scans::ocr_ready() {
        return;
    }
    let never = ParseOptions { ocr: OcrMode::Never };
    let png = page(ENGLISH).png();
    let e = parse_with(FileKind::Image("png"), &png, never).expect_err("no text");
    assert_eq!(e.code.as_str(), "no_text_content");
    assert!(e.message.contains("never"), "{}", e.message);
    let pdf = scans::image_pdf(&[page(ENGLISH)]);
    let e = parse_with(FileKind::Pdf, &pdf, never).expect_err("no text");
    assert_eq!(e.code.as_str(), "no_text_content");
}

#[test]
fn a_pdf_with_a_text_layer_is_not_recognised_unless_asked() {
    if !scans::ocr_ready() {
        return;
    }
    let pdf = lore_ingest::samples::pdf(&["Knowledge bases hold documents and their chunks for search."]);
    let auto = read(FileKind::Pdf, &pdf);
    assert!(auto.metadata.get("ocr").is_none(), "{:?}", auto.metadata);
    // The text layer's lines have their boxes too: 12 pt text set at (72, 720) on a Letter page,
    // from the top-left corner.
    let line = &auto.regions[0];
    assert_eq!((line.page, line.page_size, line.char_start), (1, [612.0, 792.0], 0), "{line:?}");
    assert!((line.bbox[0] - 72.0).abs() < 0.5 && (line.bbox[1] - 62.4).abs() < 0.5, "{line:?}");
    assert!(line.bbox[2] > 300.0 && line.low_confidence.is_empty(), "{line:?}");
    let always = parse_with(FileKind::Pdf, &pdf, ParseOptions { ocr: OcrMode::Always }).expect("recognised");
    assert_eq!(always.metadata["ocr"]["pages"], serde_json::json!([1]));
    assert!(always.text.contains("Knowledge"), "{}", always.text);
}

#[test]
fn an_image_claiming_more_pixels_than_the_budget_is_refused_unread() {
    // A PNG header promising 100,000 × 100,000 pixels, and no pixels.
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend(100_000u32.to_be_bytes());
    png.extend(100_000u32.to_be_bytes());
    png.extend([8, 0, 0, 0, 0, 0, 0, 0, 0]);
    let e = parse_with(FileKind::Image("png"), &png, ParseOptions::default()).expect_err("refused");
    assert_eq!(e.code.as_str(), "expanded_size_exceeded", "{}", e.message);
    let e =
        parse_with(FileKind::Image("png"), b"\x89PNG\r\n\x1a\nshort", ParseOptions::default()).expect_err("refused");
    assert_eq!(e.code.as_str(), "corrupt_file", "{}", e.message);
}

fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut out);
    for (name, body) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default()).expect("entry");
        w.write_all(body).expect("write");
    }
    w.finish().expect("zip");
    out.into_inner()
}

#[test]
fn images_inside_documents_and_slides_are_read_where_they_stand() {
    if !scans::ocr_ready() {
        return;
    }
    let figure = page(&["Figure 3: pump pressure by month", "图三：各月泵压变化"]).png();
    let icon = scans::Gray::bars(16, 16).png();
    let blip = |id: &str| {
        format!(
            r#"<w:r><w:drawing><a:graphic><a:graphicData><a:blip r:embed="{id}"/></a:graphicData></a:graphic></w:drawing></w:r>"#
        )
    };
    let document = format!(
        r#"<w:document xmlns:w="w" xmlns:a="a" xmlns:r="r"><w:body><w:p><w:r><w:t>Before the figure.</w:t></w:r></w:p><w:p>{}{}</w:p><w:p><w:r><w:t>After the figure.</w:t></w:r></w:p></w:body></w:document>"#,
        blip("rId7"),
        blip("rId8")
    );
    let rels = r#"<Relationships><Relationship Id="rId7" Type="image" Target="media/image1.png"/><Relationship Id="rId8" Type="image" Target="media/icon.png"/></Relationships>"#;
    let docx = zip(&[
        ("word/document.xml", document.as_bytes()),
        ("word/_rels/document.xml.rels", rels.as_bytes()),
        ("word/media/image1.png", &figure),
        ("word/media/icon.png", &icon),
    ]);
    let parsed = read(FileKind::Docx, &docx);
    let (before, figure_at, after) = (
        parsed.text.find("Before").expect("before"),
        parsed.text.find("pump pressure").expect("figure"),
        parsed.text.find("After").expect("after"),
    );
    assert!(before < figure_at && figure_at < after, "{}", parsed.text);
    assert!(parsed.text.contains("各月"), "{}", parsed.text);
    // The icon is too small to hold text: looked past, not read.
    assert_eq!(parsed.metadata["ocr"]["images_read"], 1, "{:?}", parsed.metadata);
    assert_eq!(parsed.metadata["ocr"]["images_with_text"], 1);
    let never = parse_with(FileKind::Docx, &docx, ParseOptions { ocr: OcrMode::Never }).expect("docx");
    assert_eq!(never.text, "Before the figure.\n\nAfter the figure.");

    let slide = r#"<p:sld xmlns:p="p" xmlns:a="a" xmlns:r="r"><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>Monthly review</a:t></a:r></a:p></p:txBody></p:sp><p:pic><p:blipFill><a:blip r:embed="rId2"/></p:blipFill></p:pic></p:spTree></p:cSld></p:sld>"#;
    let slide_rels =
        r#"<Relationships><Relationship Id="rId2" Type="image" Target="../media/image9.png"/></Relationships>"#;
    let pptx = zip(&[
        ("ppt/slides/slide1.xml", slide.as_bytes()),
        ("ppt/slides/_rels/slide1.xml.rels", slide_rels.as_bytes()),
        ("ppt/media/image9.png", &figure),
    ]);
    let parsed = read(FileKind::Pptx, &pptx);
    assert!(parsed.text.starts_with("## Slide 1\n\nMonthly review\n\nFigure 3"), "{}", parsed.text);
}

#[test]
fn every_image_format_is_detected_and_sized_from_its_header() {
    for (name, kind) in [("bars.jpg", "jpeg"), ("bars.gif", "gif"), ("bars.webp", "webp")] {
        let seed = lore_ingest::fuzz::seeds().into_iter().find(|(k, _)| *k == FileKind::Image(kind)).expect("a seed").1;
        assert_eq!(detect(name, &seed), FileKind::Image(kind), "{name}");
        // A recogniser reads each (bars hold no text: no_text_content, not a crash or corrupt_file).
        if scans::ocr_ready() {
            let e = parse_with(FileKind::Image(kind), &seed, ParseOptions::default()).expect_err("no text");
            assert_eq!(e.code.as_str(), "no_text_content", "{name}: {}", e.message);
        }
    }
    let tiff = scans::Gray::bars(64, 24).tiff();
    assert_eq!(detect("x.tif", &tiff), FileKind::Image("tiff"));
    assert_eq!(detect("notes.txt", b"BMW and Audi sell cars."), FileKind::Text, "BM alone is not a bitmap");
}

/// Tables on scanned pages are found from the recognised words' boxes, as on a text layer.
#[test]
fn tables_on_scans_come_back_as_markdown_tables() {
    if !scans::ocr_ready() {
        return;
    }
    let font = scans::font().expect("font");
    let rows: Vec<Vec<String>> = [
        ["Warehouse", "Item", "Stock"],
        ["上海仓库", "Steel bolts", "1200"],
        ["北京仓库", "Copper wire", "350"],
        ["Berlin depot", "Pump seals", "75"],
        ["广州仓库", "Valves", "40"],
    ]
    .iter()
    .map(|r| r.iter().map(|c| c.to_string()).collect())
    .collect();
    let image = scans::render_table(&font, "Inventory on 1 March 库存盘点", &rows, 12.0, 300);
    let (mut right, mut cells) = (0, 0);
    for (kind, bytes) in
        [(FileKind::Image("png"), image.png()), (FileKind::Pdf, scans::image_pdf(std::slice::from_ref(&image)))]
    {
        let parsed = read(kind, &bytes);
        let found = lore_ingest::samples::markdown_cells(&parsed.text);
        let (r, c) = lore_ingest::samples::cell_accuracy(&rows, &found);
        eprintln!("{kind:?}: {r}/{c} cells\n{}", parsed.text);
        right += r;
        cells += c;
        assert!(parsed.text.starts_with("Inventory on 1 March"), "{}", parsed.text);
        // The table is one region, around all its rows.
        let table_at = parsed.text.find("| Warehouse").expect("a table");
        let start = parsed.text[..table_at].chars().count();
        assert!(parsed.regions.iter().any(|r| r.char_start == start), "{:?}", parsed.regions);
    }
    let accuracy = right as f64 / cells as f64;
    eprintln!("scanned table cell accuracy: {right}/{cells} = {accuracy:.3}");
    assert!(accuracy >= 0.9, "{accuracy}");
}

/// A document's images are read only for recognition, each within its own cap and outside the
/// document's budget: a DOCX whose "image" inflates to just under the whole budget (a zip
/// bomb) keeps its text and its title (read after it), whether recognition would look at the
/// image or is turned off.
#[test]
fn an_oversized_image_inside_a_document_costs_its_text_nothing() {
    use std::io::Write;
    let document = r#"<w:document xmlns:w="w" xmlns:a="a" xmlns:r="r"><w:body><w:p><w:r><w:t>Text beside a bomb.</w:t></w:r></w:p><w:p><w:r><w:drawing><a:graphic><a:graphicData><a:blip r:embed="rId1"/></a:graphicData></a:graphic></w:drawing></w:r></w:p></w:body></w:document>"#;
    let rels = r#"<Relationships><Relationship Id="rId1" Type="image" Target="media/bomb.png"/></Relationships>"#;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default();
    w.start_file("word/document.xml", options).expect("entry");
    w.write_all(document.as_bytes()).expect("write");
    w.start_file("word/_rels/document.xml.rels", options).expect("entry");
    w.write_all(rels.as_bytes()).expect("write");
    w.start_file("word/media/bomb.png", options).expect("entry");
    let zeros = vec![0u8; 1 << 20];
    // 4 KiB short of the budget: read into it, it would leave too little for the title's part.
    let budget = lore_core::budget::budgets().max_expanded_bytes as usize;
    let image = budget - 4096;
    for _ in 0..image >> 20 {
        w.write_all(&zeros).expect("write");
    }
    w.write_all(&zeros[..image % (1 << 20)]).expect("write");
    w.start_file("docProps/core.xml", options).expect("entry");
    let padding = " ".repeat(8192);
    w.write_all(format!("<cp:coreProperties><dc:title>Bomb report</dc:title>{padding}</cp:coreProperties>").as_bytes())
        .expect("write");
    w.finish().expect("zip");
    let docx = out.into_inner();
    assert!(docx.len() < 2 << 20, "a small file: {}", docx.len());
    for ocr in [OcrMode::Auto, OcrMode::Never] {
        let parsed = parse_with(FileKind::Docx, &docx, ParseOptions { ocr }).expect("the text is kept");
        assert_eq!(parsed.text, "Text beside a bomb.", "{ocr:?}");
        assert_eq!(parsed.title.as_deref(), Some("Bomb report"), "{ocr:?}");
    }
}
