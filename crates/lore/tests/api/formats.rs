//! Formats over HTTP: the file-type registry decides what is accepted; office files are parsed
//! and searchable with their locations in chunk metadata.

use std::io::Write;

use reqwest::StatusCode;
use serde_json::json;

use super::{code, spawn_app};

fn zip(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut out);
        for (name, body) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default()).expect("entry");
            w.write_all(body.as_bytes()).expect("write");
        }
        w.finish().expect("finish");
    }
    out.into_inner()
}

fn pptx() -> Vec<u8> {
    let slide = |text: &str| {
        format!(
            r#"<p:sld xmlns:p="p" xmlns:a="a"><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>"#
        )
    };
    let (one, two) = (slide("产品路线图"), slide("第二季度上线向量检索与混合检索"));
    zip(&[("ppt/slides/slide1.xml", &one), ("ppt/slides/slide2.xml", &two)])
}

#[tokio::test]
async fn office_files_are_searchable_with_their_slides() {
    let app = spawn_app().await;
    let token = app.register("office").await;
    let kb = app.create_kb(&token, "decks").await;
    let doc = app.ingest(&token, &kb, "路线图.pptx", pptx()).await;
    assert_eq!(doc["status"], "completed", "{doc}");
    assert_eq!(doc["file_type"], "pptx");
    assert_eq!(doc["title"], "产品路线图");
    let (_, v) = app.search(&token, &kb, "混合检索").await;
    let hit = &v["results"][0];
    assert_eq!(hit["document_id"], doc["id"], "{v}");
    let (_, chunks) = app.get(&token, &format!("/v1/documents/{}/chunks", doc["id"].as_str().expect("id"))).await;
    let slides: Vec<_> =
        chunks["data"].as_array().expect("chunks").iter().map(|c| c["metadata"]["slide"].clone()).collect();
    assert_eq!(slides.first(), Some(&json!(1)), "{chunks}");

    let (status, v) = app.upload(&token, &kb, "fake.docx", b"plain text, not a zip".to_vec()).await;
    assert_eq!((status, code(&v)), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_file_type"));
    assert!(v["error"]["message"].as_str().expect("message").contains(".docx"), "{v}");
    let broken = app.ingest(&token, &kb, "broken.pptx", b"PK\x03\x04 truncated archive".to_vec()).await;
    assert_eq!((broken["status"].as_str(), broken["error_code"].as_str()), (Some("failed"), Some("corrupt_file")));
    app.shutdown().await;
}

#[tokio::test]
async fn the_registry_is_listed_and_administered() {
    let app = spawn_app().await;
    let admin = app.register("admin").await;
    let user = app.register("someone").await;
    let kb = app.create_kb(&user, "kb").await;
    let (status, v) = app.get(&user, "/v1/file-types").await;
    assert_eq!(status, StatusCode::OK);
    let types = v["data"].as_array().expect("types");
    for name in [
        "text", "markdown", "html", "pdf", "docx", "pptx", "xlsx", "xls", "ods", "csv", "tsv", "json", "jsonl", "epub",
        "rtf", "email", "code",
    ] {
        assert!(types.iter().any(|t| t["name"] == name), "{name} missing");
    }
    let csv_id = types.iter().find(|t| t["name"] == "csv").expect("csv")["id"].as_i64().expect("id");

    // Only administrators change it.
    let (status, v) = app.patch(&user, &format!("/v1/file-types/{csv_id}"), json!({"is_active": false})).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "superuser_required"));
    let (status, v) = app.patch(&admin, &format!("/v1/file-types/{csv_id}"), json!({"is_active": false})).await;
    assert_eq!((status, v["is_active"].as_bool()), (StatusCode::OK, Some(false)), "{v}");
    let (status, v) = app.upload(&user, &kb, "table.csv", "a,b\n1,2\n").await;
    assert_eq!((status, code(&v)), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_file_type"));
    app.patch(&admin, &format!("/v1/file-types/{csv_id}"), json!({"is_active": true})).await;
    let csv = app.ingest(&user, &kb, "table.csv", "城市,人口\n上海,2487万\n").await;
    assert_eq!(csv["status"], "completed", "{csv}");

    // A new type: Org-mode notes read as Markdown-like text.
    let (status, v) = app
        .post(
            &admin,
            "/v1/file-types",
            json!({"name": "org", "category": "text", "extensions": [".ORG"], "parsers": ["markdown"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let org = app.ingest(&user, &kb, "notes.org", "* 会议记录\n讨论了知识图谱。\n").await;
    assert_eq!((org["file_type"].as_str(), org["status"].as_str()), (Some("org"), Some("completed")), "{org}");
    let (_, v) = app.search(&user, &kb, "知识图谱").await;
    assert_eq!(v["results"][0]["document_id"], org["id"]);
    let (status, v) = app.post(&admin, "/v1/file-types", json!({"name": "org", "parsers": ["text"]})).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "file_type_exists"));
    let (status, v) = app.post(&admin, "/v1/file-types", json!({"name": "weird", "parsers": ["ocr"]})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
    app.shutdown().await;
}

/// A sheet larger than a chunk is cut between rows, every piece a Markdown table under the
/// sheet's header, and a row is found with its header beside it.
#[tokio::test]
async fn a_long_table_is_chunked_under_its_header_repeated() {
    let app = spawn_app().await;
    let token = app.register("tables").await;
    let (status, kb) = app
        .post(&token, "/v1/knowledge-bases", json!({"name": "价目表", "settings": {"chunking_config": {"strategy_type": "paragraph", "config": {"max_chunk_size": 300}}}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{kb}");
    let kb = kb["id"].as_str().expect("id").to_string();
    let mut csv = String::from("产品,型号,Price\n");
    for i in 0..80 {
        csv.push_str(&format!("配件{i},M{i:03},{}.50\n", 10 + i));
    }
    let doc = app.ingest(&token, &kb, "价目表.csv", csv).await;
    assert_eq!(doc["status"], "completed", "{doc}");
    let (_, chunks) =
        app.get(&token, &format!("/v1/documents/{}/chunks?limit=100", doc["id"].as_str().expect("id"))).await;
    let chunks = chunks["data"].as_array().expect("chunks");
    assert!(chunks.len() > 3, "{chunks:?}");
    for c in chunks {
        let content = c["content"].as_str().expect("content");
        assert!(content.starts_with("| 产品 | 型号 | Price |\n| --- | --- | --- |\n| 配件"), "{content}");
    }
    let rows: usize = chunks.iter().map(|c| c["content"].as_str().unwrap_or("").lines().count() - 2).sum();
    assert_eq!(rows, 80, "every row once");
    let (_, v) = app.search(&token, &kb, "M042").await;
    let hit = v["results"][0]["content"].as_str().expect("a hit");
    assert!(hit.contains("| 配件42 | M042 | 52.50 |") && hit.starts_with("| 产品 |"), "{hit}");
    app.shutdown().await;
}
