//! Hostile files over HTTP. Documents are parsed in child processes of the binary (the harness
//! sets `parser_exe`, as `lore serve` does): a file built to exhaust the parser fails alone, with
//! the code of the limit it ran into, and the server goes on serving.

use reqwest::StatusCode;

use super::spawn_app;

/// A 5 KB workbook with one cell at A1 and one at XFD1048576: read as a dense grid, it asks for
/// 512 GiB (`memory allocation of 549755813888 bytes failed`) and used to abort the server.
#[tokio::test]
async fn a_sparse_spreadsheet_fails_alone_and_the_server_goes_on() {
    let app = spawn_app().await;
    let token = app.register("hostile").await;
    let kb = app.create_kb(&token, "表格").await;
    let doc = app.ingest(&token, &kb, "sparse.xlsx", lore_ingest::samples::xlsx_sparse()).await;
    assert_eq!((doc["status"].as_str(), doc["error_code"].as_str()), (Some("failed"), Some("too_many_cells")), "{doc}");
    let message = doc["error_message"].as_str().expect("message");
    assert!(message.contains("--max-sheet-cells"), "{doc}");

    // The server still answers, and the next document (Chinese text, through the same kind of
    // child process) is read intact.
    let (status, _) = app.get("", "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    let text = "知识库说明\n\n中文分词让全文检索更准确。\n\n第二段：混合检索结合向量与关键词。";
    let ok = app.ingest(&token, &kb, "说明.txt", text.as_bytes().to_vec()).await;
    assert_eq!(ok["status"], "completed", "{ok}");
    assert_eq!(ok["title"], "知识库说明", "{ok}");
    let (_, chunks) = app.get(&token, &format!("/v1/documents/{}/chunks", ok["id"].as_str().expect("id"))).await;
    let content: String =
        chunks["data"].as_array().expect("chunks").iter().filter_map(|c| c["content"].as_str()).collect();
    assert!(content.contains("中文分词让全文检索更准确。") && content.contains("混合检索结合向量与关键词"), "{chunks}");
    let (_, hits) = app.search(&token, &kb, "混合检索").await;
    assert_eq!(hits["results"][0]["document_id"], ok["id"], "{hits}");

    // Failed once, for good: the document is not retried.
    let (_, again) = app.get(&token, &format!("/v1/documents/{}", doc["id"].as_str().expect("id"))).await;
    assert_eq!(again["status"], "failed", "{again}");
    app.shutdown().await;
}
