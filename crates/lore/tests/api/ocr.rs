//! Scanned documents and images over HTTP, on either store: an image and an image-only PDF
//! (rendered here from known English and Chinese text, one page scan-like) are read by text
//! recognition, found by words that exist only in their pixels, by full text and by meaning,
//! and cited down to the page and the box on it.

use lore_ingest::scans::{self, ScanLike};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::spawn_app;

const ENGLISH: &[&str] = scans::TEXTS[0];
const CHINESE: &[&str] = scans::TEXTS[1];

fn regions_of(hit: &Value) -> Vec<Value> {
    hit["metadata"]["regions"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn scans_and_images_are_found_by_the_words_in_their_pixels_and_cited_to_the_page() {
    if !scans::ocr_ready() {
        return;
    }
    let font = scans::font().expect("font");
    let app = spawn_app().await;
    let token = app.register("scans").await;
    let kb = app.create_kb(&token, "scans").await;

    let png = scans::render(&font, ENGLISH, 12.0, 300).png();
    let image = app.ingest(&token, &kb, "inspection.png", png).await;
    assert_eq!((image["status"].as_str(), image["file_type"].as_str()), (Some("completed"), Some("image")), "{image}");
    let chinese = scans::render(&font, CHINESE, 12.0, 300);
    let scanned = chinese.scanned(150, ScanLike { degrees: 2.0, noise: 0.01, seed: 11 });
    let cover = scans::render(&font, &["Supply contract", "供货合同"], 16.0, 200);
    let pdf = app.ingest(&token, &kb, "contract-scan.pdf", scans::image_pdf(&[cover, scanned])).await;
    assert_eq!(pdf["status"], "completed", "{pdf}");
    let pdf_id = pdf["id"].as_str().expect("id");
    let (_, detail) = app.get(&token, &format!("/v1/documents/{pdf_id}")).await;
    let ocr = &detail["source_metadata"]["ocr"];
    assert_eq!(ocr["pages"], json!([1, 2]), "{detail}");
    assert!(ocr["engine"].as_str().is_some_and(|e| e.starts_with("tesseract")), "{detail}");

    // Full text, English and Chinese: words only the pixels hold.
    let (status, v) = app.search(&token, &kb, "corrosion intake valves").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let hit = &v["results"][0];
    assert_eq!(hit["document_id"], image["id"], "{v}");
    assert_eq!(hit["metadata"]["page"], 1, "{v}");
    let boxes = regions_of(hit);
    assert!(!boxes.is_empty(), "{v}");
    let bbox: Vec<f64> = boxes[0]["bbox"].as_array().expect("bbox").iter().filter_map(Value::as_f64).collect();
    assert!(bbox.len() == 4 && bbox[0] > 100.0 && bbox[2] > bbox[0] && bbox[3] > bbox[1] && bbox[2] < 2481.0, "{v}");

    let (_, v) = app.search(&token, &kb, "违约责任").await;
    let hit = &v["results"][0];
    assert_eq!(hit["document_id"], pdf["id"], "{v}");
    // The passage is on the second page (a chunk may begin on the cover and run on).
    let meta = &hit["metadata"];
    assert!(meta["page"] == 2 || meta["page_end"] == 2, "{v}");
    let boxes = regions_of(hit);
    assert!(boxes.iter().any(|r| r["page"] == 2), "{v}");
    assert!(boxes.iter().all(|r| r["bbox"][2].as_f64().is_some_and(|x| x <= 596.0)), "in points: {v}");

    // A box comes with its page's size, and the page can be fetched to draw it on.
    let size =
        boxes[0]["page_size"].as_array().expect("page_size").iter().filter_map(Value::as_f64).collect::<Vec<_>>();
    assert!(size.len() == 2 && size[0] > 500.0 && size[0] < 600.0, "an A4 page in points: {v}");
    let page = app
        .http
        .get(app.url(&format!("/v1/documents/{pdf_id}/pages/2")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["content-type"], "image/png");
    let png = page.bytes().await.expect("png");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let (status, v) = app.get(&token, &format!("/v1/documents/{pdf_id}/pages/9")).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{v}");
    let image_id = image["id"].as_str().expect("id");
    let (status, v) = app.get(&token, &format!("/v1/documents/{image_id}/pages/1")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an image is its own page: {v}");
    let stranger = app.register("stranger").await;
    let (status, _) = app.get(&stranger, &format!("/v1/documents/{pdf_id}/pages/1")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another owner's page is not found");

    // By meaning, with the built-in model.
    let (_, v) = app
        .post(
            &token,
            &format!("/v1/knowledge-bases/{kb}/search"),
            json!({"query": "who checks the water temperature of the cooling towers", "mode": "vector", "top_k": 1}),
        )
        .await;
    assert_eq!(v["results"][0]["document_id"], image["id"], "{v}");

    // An agent's citations carry the page and the boxes, as answered and as read back.
    let (status, agent) = app
        .post(&token, "/v1/agents", json!({"name": "contracts", "knowledge_base_ids": [kb], "max_documents": 2}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    let chat = format!("/v1/agents/{}/chat", agent["id"].as_str().expect("id"));
    let (status, v) = app.post(&token, &chat, json!({"message": "不履行合同义务要承担什么违约责任？"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let cited = v["message"]["citations"]
        .as_array()
        .expect("citations")
        .iter()
        .find(|c| c["document_id"] == pdf["id"])
        .cloned();
    let cited = cited.expect("the scan is cited");
    let pages = |l: &Value| [l["page"].clone(), l["page_end"].clone()];
    assert!(pages(&cited["location"]).contains(&json!(2)), "{v}");
    assert!(cited["location"]["regions"].as_array().is_some_and(|r| r.iter().any(|r| r["page"] == 2)), "{v}");
    let conversation = v["conversation_id"].as_str().expect("conversation");
    let (_, messages) = app.get(&token, &format!("/v1/conversations/{conversation}/messages")).await;
    let answer = &messages["data"][1];
    let stored = answer["citations"].as_array().expect("citations").iter().find(|c| c["document_id"] == pdf["id"]);
    assert_eq!(stored.map(|c| c["location"].clone()), Some(cited["location"].clone()), "{messages}");

    // `ocr: never` leaves an image without text: it fails on its own, with a clear code.
    let (status, never) =
        app.post(&token, "/v1/knowledge-bases", json!({"name": "no ocr", "settings": {"ocr": "never"}})).await;
    assert_eq!(status, StatusCode::CREATED, "{never}");
    let png = scans::render(&font, ENGLISH, 12.0, 200).png();
    let failed = app.ingest(&token, never["id"].as_str().expect("id"), "photo.png", png).await;
    assert_eq!((failed["status"].as_str(), failed["error_code"].as_str()), (Some("failed"), Some("no_text_content")));
    let (status, v) =
        app.post(&token, "/v1/knowledge-bases", json!({"name": "bad", "settings": {"ocr": "sometimes"}})).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
        "{v}"
    );
    app.shutdown().await;
}

/// Without Tesseract (the real server, started with a PATH that has none), an image or a scan
/// fails on its own with `ocr_unavailable` and says what to install; text files are unaffected.
#[tokio::test]
async fn without_tesseract_images_fail_with_ocr_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty_path = tempfile::tempdir().expect("empty PATH");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_lore"))
            .args(["serve", "--data-dir"])
            .arg(dir.path())
            .args(["--listen", &format!("127.0.0.1:{port}"), "--registration", "open", "--registrations-per-hour", "0"])
            .args(["--embedding-model", "none"])
            .env("PATH", empty_path.path())
            .env("LORE_LOG", "warn")
            .spawn()
            .expect("start lore"),
    );
    let http = super::http_client();
    super::wait_healthy(&http, &base).await;
    let app = super::TestApp { base, http, server: None, _dir: tempfile::tempdir().expect("t") };
    let token = app.register("no-ocr").await;
    let kb = app.create_kb(&token, "scans").await;
    let image = app.ingest(&token, &kb, "photo.png", scans::Gray::bars(96, 32).png()).await;
    assert_eq!(
        (image["status"].as_str(), image["error_code"].as_str()),
        (Some("failed"), Some("ocr_unavailable")),
        "{image}"
    );
    assert!(image["error_message"].as_str().is_some_and(|m| m.contains("tesseract-ocr")), "{image}");
    let scan = app.ingest(&token, &kb, "scan.pdf", scans::image_pdf(&[scans::Gray::bars(200, 280)])).await;
    assert_eq!(scan["error_code"], "ocr_unavailable", "{scan}");
    let text = app.ingest(&token, &kb, "notes.txt", "纯文本照常处理。Plain text is processed as ever.").await;
    assert_eq!(text["status"], "completed", "{text}");
}

/// A server process that goes when the test does, failed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
