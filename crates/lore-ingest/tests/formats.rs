//! Every format from real bytes: the fixtures are built here, as their specifications lay them
//! out (Office Open XML, EPUB, PDF, RTF, MIME), with Chinese and English text.

use std::io::Write;

use lore_core::error::Code;
use lore_ingest::detect::{FileKind, detect};
use lore_ingest::parse::parse;
use lore_ingest::samples::{docx, pdf, xlsx, zip};

#[test]
fn docx_keeps_headings_paragraphs_and_tables() {
    let bytes = docx();
    assert_eq!(detect("手册.docx", &bytes), FileKind::Docx);
    let p = parse(FileKind::Docx, &bytes).expect("docx");
    assert_eq!(p.title.as_deref(), Some("知识库手册"));
    assert_eq!(
        p.text,
        "# 知识库手册\n\n中文分词是检索的基础，Lore & friends.\n\n## Prices\n\n| 产品 | 价格 |\n| --- | --- |\n| 专业版 | 99 |"
    );
}

#[test]
fn pptx_reads_slides_in_order_with_notes() {
    let slide = |text: &str| {
        format!(
            r#"<p:sld xmlns:p="p" xmlns:a="a"><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>"#
        )
    };
    let rels = r#"<Relationships><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/notesSlide" Target="../notesSlides/notesSlide7.xml"/></Relationships>"#;
    let notes = r#"<p:notes xmlns:p="p" xmlns:a="a"><a:p><a:r><a:t>记得提到向量检索</a:t></a:r></a:p><a:p><a:r><a:t>2</a:t></a:r></a:p></p:notes>"#;
    let (s1, s2, s10) = (slide("开场：知识库"), slide("Second slide"), slide("第十页"));
    let bytes = zip(&[
        ("ppt/slides/slide10.xml", &s10),
        ("ppt/slides/slide2.xml", &s2),
        ("ppt/slides/slide1.xml", &s1),
        ("ppt/slides/_rels/slide2.xml.rels", rels),
        ("ppt/notesSlides/notesSlide7.xml", notes),
    ]);
    let p = parse(FileKind::Pptx, &bytes).expect("pptx");
    assert_eq!(
        p.text,
        "## Slide 1\n\n开场：知识库\n\n## Slide 2\n\nSecond slide\n\nNotes: 记得提到向量检索\n\n## Slide 10\n\n第十页"
    );
    let second = p.text.find("Second").map(|b| p.text[..b].chars().count()).expect("offset");
    assert_eq!(p.location_at(second).map(|l| (l.key, l.value.clone())), Some(("slide", serde_json::json!(2))));
}

#[test]
fn spreadsheets_keep_rows_with_their_headers() {
    // Every sheet is a Markdown table under its header (chunking repeats the header).
    let p = parse(FileKind::Xlsx, &xlsx()).expect("xlsx");
    assert_eq!(p.text, "## Sheet: 销售\n\n| 城市 | Revenue |\n| --- | --- |\n| 上海 | 1200 |\n| Berlin | 3.5 |");
    assert_eq!(p.location_at(10).map(|l| l.value.clone()), Some(serde_json::json!("销售")));
    let csv = "名称,描述\n知识库,\"存放文档, 支持检索\"\nLore,fast\n";
    let p = parse(FileKind::Csv, csv.as_bytes()).expect("csv");
    assert_eq!(p.text, "| 名称 | 描述 |\n| --- | --- |\n| 知识库 | 存放文档, 支持检索 |\n| Lore | fast |");
    let (gbk, _, _) = encoding_rs::GBK.encode("名称\t描述\n分词\t中文处理\n");
    let p = parse(FileKind::Tsv, &gbk).expect("tsv in GBK");
    assert_eq!(p.text, "| 名称 | 描述 |\n| --- | --- |\n| 分词 | 中文处理 |");
}

#[test]
fn pdf_text_comes_with_page_numbers() {
    let p = parse(FileKind::Pdf, &pdf(&["Knowledge bases hold documents.", "Vectors find meaning."])).expect("pdf");
    assert!(p.text.contains("Knowledge bases hold documents."), "{:?}", p.text);
    let second = p.text.find("Vectors").map(|b| p.text[..b].chars().count()).expect("page 2 text");
    assert_eq!(p.location_at(second).map(|l| (l.key, l.value.clone())), Some(("page", serde_json::json!(2))));
    assert_eq!(p.metadata["pages"], 2);
}

#[test]
fn damaged_pdfs_fail_with_a_reason() {
    let good = pdf(&["Hello"]);
    for bad in [good[..good.len() / 2].to_vec(), b"%PDF-1.7\n1 0 obj << /Type /Catalog".to_vec()] {
        let err = parse(FileKind::Pdf, &bad).expect_err("damaged");
        assert_eq!(err.code, Code::CorruptFile, "{err}");
    }
}

#[test]
fn epub_chapters_in_spine_order() {
    let container = r#"<container><rootfiles><rootfile full-path="OEBPS/book.opf"/></rootfiles></container>"#;
    let opf = r#"<package xmlns:dc="http://purl.org/dc/elements/1.1/"><metadata><dc:title>红楼梦</dc:title></metadata>
<manifest><item id="c2" href="two.xhtml"/><item id="c1" href="one.xhtml"/></manifest>
<spine><itemref idref="c1"/><itemref idref="c2"/></spine></package>"#;
    let bytes = zip(&[
        ("mimetype", "application/epub+zip"),
        ("META-INF/container.xml", container),
        ("OEBPS/book.opf", opf),
        ("OEBPS/one.xhtml", "<html><body><h1>第一回</h1><p>甄士隐梦幻识通灵。</p></body></html>"),
        ("OEBPS/two.xhtml", "<html><body><h1>第二回</h1><p>贾夫人仙逝扬州城。</p></body></html>"),
    ]);
    assert_eq!(detect("book", &bytes), FileKind::Epub);
    let p = parse(FileKind::Epub, &bytes).expect("epub");
    assert_eq!(p.title.as_deref(), Some("红楼梦"));
    assert_eq!(p.text, "第一回\n\n甄士隐梦幻识通灵。\n\n第二回\n\n贾夫人仙逝扬州城。");
}

#[test]
fn rtf_with_code_page_and_unicode() {
    let mut rtf = br"{\rtf1\ansi\ansicpg936{\fonttbl{\f0 SimSun;}}{\*\generator Word;}\f0 ".to_vec();
    let (gbk, _, _) = encoding_rs::GBK.encode("中文");
    for b in gbk.iter() {
        rtf.extend(format!("\\'{b:02x}").into_bytes());
    }
    rtf.extend(br"\par Unicode: \u30693?\u24211?\par Plain \{braces\}}".to_vec());
    let p = parse(FileKind::Rtf, &rtf).expect("rtf");
    assert_eq!(p.text, "中文\nUnicode: 知库\nPlain {braces}");
}

#[test]
fn email_headers_body_and_attachments() {
    let mail = "From: 张三 <zhang@example.com>\r\nTo: team@example.com\r\nSubject: =?UTF-8?B?5Lya6K6u57qq6KaB?=\r\nDate: Tue, 24 Nov 2026 10:00:00 +0800\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=gbk\r\nContent-Transfer-Encoding: base64\r\n\r\n";
    let (gbk, _, _) = encoding_rs::GBK.encode("会议讨论了知识库的检索质量。");
    let body = base64_encode(&gbk);
    let mail = format!(
        "{mail}{body}\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"slides.pdf\"\r\n\r\nJVBERi0=\r\n--b--\r\n"
    );
    assert_eq!(detect("message", mail.as_bytes()), FileKind::Email);
    let p = parse(FileKind::Email, mail.as_bytes()).expect("email");
    assert_eq!(p.title.as_deref(), Some("会议纪要"));
    assert!(p.text.contains("From: 张三 <zhang@example.com>"), "{}", p.text);
    assert!(p.text.contains("会议讨论了知识库的检索质量。"), "{}", p.text);
    assert!(p.text.contains("Attachments: slides.pdf"), "{}", p.text);
}

fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn json_and_jsonl_become_path_value_lines() {
    let p = parse(FileKind::Json, r#"{"产品": {"名称": "Lore", "标签": ["检索", "RAG"]}, "version": 2}"#.as_bytes())
        .expect("json");
    assert_eq!(p.text, "产品.名称: Lore\n产品.标签[0]: 检索\n产品.标签[1]: RAG\nversion: 2");
    let p = parse(FileKind::Jsonl, "{\"q\": \"什么是分词\"}\n\n{\"q\": \"what is BM25\"}\n".as_bytes()).expect("jsonl");
    assert_eq!(p.text, "q: 什么是分词\n\nq: what is BM25");
    let err = parse(FileKind::Jsonl, b"{\"a\": 1}\n{broken\n").expect_err("bad line");
    assert!(err.message.contains("line 2"), "{}", err.message);
}

#[test]
fn code_keeps_its_language() {
    let src = "fn main() {\n    // 打印问候\n    println!(\"你好\");\n}\n";
    let kind = detect("main.rs", src.as_bytes());
    let p = parse(kind, src.as_bytes()).expect("code");
    assert_eq!(p.metadata["language"], "rust");
    assert_eq!(p.text, src.trim_end());
}

#[test]
fn hostile_containers_fail_alone() {
    // A zip bomb: one entry that inflates far past the limit.
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        w.start_file("word/document.xml", options).expect("entry");
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..300 {
            w.write_all(&zeros).expect("write");
        }
        w.finish().expect("finish");
    }
    let bomb = out.into_inner();
    assert!(bomb.len() < 2 << 20, "the bomb itself is small: {}", bomb.len());
    let err = parse(FileKind::Docx, &bomb).expect_err("bomb");
    assert_eq!(err.code, Code::ExpandedSizeExceeded, "{err}");
    assert!(err.message.contains("zip bomb") && err.message.contains("--max-expanded-mb"), "{}", err.message);

    let encrypted = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 encrypted package".to_vec();
    let err = parse(FileKind::Docx, &encrypted).expect_err("encrypted");
    assert!(err.message.contains("password"), "{}", err.message);
    for kind in [FileKind::Docx, FileKind::Pptx, FileKind::Xlsx, FileKind::Epub, FileKind::Ods] {
        let err = parse(kind, b"PK\x03\x04 truncated").expect_err("truncated");
        assert_eq!(err.code, Code::CorruptFile, "{kind:?}: {err}");
    }
    assert_eq!(parse(FileKind::Json, b"{not json").expect_err("json").code, Code::CorruptFile);
}

/// One cell at A1 and one at XFD1048576: calamine would build a dense grid of 17 billion cells
/// (`memory allocation of 549755813888 bytes failed`, and the process aborts). The sheet is
/// refused while it is streamed, before any grid exists.
#[test]
fn a_sparse_sheet_spanning_the_whole_grid_is_refused_before_it_is_built() {
    let sparse = lore_ingest::samples::xlsx_sparse();
    assert!(sparse.len() < 8 * 1024, "a small file: {}", sparse.len());
    let err = parse(FileKind::Xlsx, &sparse).expect_err("too many cells");
    assert_eq!(err.code, Code::TooManyCells, "{err}");
    assert!(err.message.contains("1048576 rows by 16384 columns"), "{}", err.message);
    assert!(err.message.contains("--max-sheet-cells"), "{}", err.message);
    // Within the budget the same reader gives the same text as before.
    let p = parse(FileKind::Xlsx, &xlsx()).expect("xlsx");
    assert!(p.text.contains("| 上海 | 1200 |"), "{}", p.text);
}

/// A bounded fuzzing run on every build: mutated files of every format never panic or hang a
/// parser. (`lore bench fuzz --seconds N` runs longer campaigns.)
#[test]
fn mutated_files_never_panic_or_hang() {
    let report =
        lore_ingest::fuzz::run(std::time::Duration::from_secs(20), 20_000, 0x5eed, std::time::Duration::from_secs(5));
    let findings: Vec<String> = report.findings.iter().map(|f| format!("{:?}: {}", f.kind, f.problem)).collect();
    assert!(findings.is_empty(), "{} findings in {} executions: {findings:?}", findings.len(), report.executions);
    assert!(report.rejected > 0 && report.parsed > 0, "{report:?}");
    eprintln!("{} executions: {} parsed, {} rejected", report.executions, report.parsed, report.rejected);
}

#[test]
fn two_column_pdfs_are_read_column_by_column() {
    let mut items = vec![(72.0, 750.0, "A Study of Retrieval: The Title Spans Both Columns of the Page")];
    let left = ["Left column begins here and", "continues on its second line", "ending the left column."];
    let right = ["Right column starts here and", "goes on in a second line", "before it ends as well."];
    for (i, (l, r)) in left.iter().zip(right.iter()).enumerate() {
        let y = 700.0 - 14.0 * i as f64;
        // Row by row in the content stream: the order a naive reader would follow.
        items.push((72.0, y, l));
        items.push((320.0, y, r));
    }
    let p = parse(FileKind::Pdf, &lore_ingest::samples::pdf_positioned(&[items])).expect("pdf");
    let at = |s: &str| p.text.find(s).unwrap_or_else(|| panic!("{s:?} missing from {:?}", p.text));
    assert!(at("A Study of Retrieval") < at("Left column begins"), "{:?}", p.text);
    assert!(at("ending the left column.") < at("Right column starts"), "{:?}", p.text);
    assert!(at("continues on its second line") < at("ending the left column."));
    assert!(at("goes on in a second line") < at("before it ends as well."));

    // One column stays in line order.
    let single: Vec<(f64, f64, &str)> =
        (0..6).map(|i| (72.0, 700.0 - 14.0 * i as f64, ["one", "two", "three", "four", "five", "six"][i])).collect();
    let p = parse(FileKind::Pdf, &lore_ingest::samples::pdf_positioned(&[single])).expect("pdf");
    assert_eq!(p.text, "one\ntwo\nthree\nfour\nfive\nsix");
}

/// Tables in PDFs found from the text's geometry alone (aligned columns, no ruling lines), on
/// generated tables whose every cell is known: the share of cells read back exactly.
#[test]
fn pdf_tables_come_back_as_markdown_tables_cell_by_cell() {
    use lore_ingest::samples::{self, Rng};
    let mut rng = Rng(20261207);
    let (mut cells, mut right) = (0usize, 0usize);
    for t in 0..12 {
        let rows = 3 + rng.below(6);
        let table = samples::random_table(&mut rng, 2 + t % 4, rows);
        let pdf = samples::pdf_table("Inventory report for the quarter", &table, "Figures are in euros.");
        let p = parse(FileKind::Pdf, &pdf).expect("pdf");
        let (r, c) = samples::cell_accuracy(&table, &samples::markdown_cells(&p.text));
        right += r;
        cells += c;
        assert!(p.text.starts_with("Inventory report for the quarter\n\n| Col0 |"), "{}", p.text);
        assert!(p.text.ends_with("|\n\nFigures are in euros."), "{}", p.text);
    }
    let accuracy = right as f64 / cells as f64;
    eprintln!("PDF table cell accuracy: {right}/{cells} = {accuracy:.3}");
    assert!(accuracy >= 0.95, "{accuracy}");
}

#[test]
fn tables_in_html_markdown_and_slides_are_markdown_tables() {
    let html = "<html><body><p>价格表</p><table><tr><th>产品</th><th>价格</th></tr><tr><td>专业版</td><td>99</td></tr>\
                <tr><td>Team | plan</td><td>199</td></tr></table></body></html>";
    let p = parse(FileKind::Html, html.as_bytes()).expect("html");
    assert_eq!(p.text, "价格表\n\n| 产品 | 价格 |\n| --- | --- |\n| 专业版 | 99 |\n| Team \\| plan | 199 |");
    // A one-column layout table is read as text.
    let layout =
        "<html><body><table><tr><td>Only a layout cell</td></tr><tr><td>Another</td></tr></table></body></html>";
    assert_eq!(parse(FileKind::Html, layout.as_bytes()).expect("html").text, "Only a layout cell\n\nAnother");
    let md = "# 报价\n\n| 产品 | Price |\n|:--|--:|\n| 专业版 | `99` |\n\nAfter.";
    let p = parse(FileKind::Markdown, md.as_bytes()).expect("markdown");
    assert_eq!(p.text, "# 报价\n\n| 产品 | Price |\n| --- | --- |\n| 专业版 | 99 |\n\nAfter.");
    let cell = |t: &str| format!("<a:tc><a:txBody><a:p><a:r><a:t>{t}</a:t></a:r></a:p></a:txBody></a:tc>");
    let row = |a: &str, b: &str| format!("<a:tr>{}{}</a:tr>", cell(a), cell(b));
    let slide = format!(
        r#"<p:sld xmlns:p="p" xmlns:a="a"><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>季度收入</a:t></a:r></a:p></p:txBody></p:sp><p:graphicFrame><a:graphic><a:graphicData><a:tbl>{}{}</a:tbl></a:graphicData></a:graphic></p:graphicFrame></p:spTree></p:cSld></p:sld>"#,
        row("季度", "Revenue"),
        row("Q1", "120")
    );
    let pptx = lore_ingest::samples::zip(&[("ppt/slides/slide1.xml", &slide)]);
    let p = parse(FileKind::Pptx, &pptx).expect("pptx");
    assert_eq!(p.text, "## Slide 1\n\n季度收入\n\n| 季度 | Revenue |\n| --- | --- |\n| Q1 | 120 |");
}
