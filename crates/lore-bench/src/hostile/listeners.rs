//! Local listeners that record what the server sends out: a recorder, a redirector.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

/// Everything that reached a listener: one entry per request or connection.
#[derive(Clone, Default)]
pub(crate) struct Records(Arc<Mutex<Vec<String>>>);

impl Records {
    pub(crate) fn push(&self, entry: String) {
        self.0.lock().expect("records").push(entry);
    }
    pub(crate) fn all(&self) -> Vec<String> {
        self.0.lock().expect("records").clone()
    }
}

/// The recorder on 127.0.0.2, an address the policy refuses: every TCP connection is recorded
/// with whatever it sent (HTTP, TLS, anything), then answered `200 ok`.
pub(crate) async fn recorder() -> anyhow::Result<(u16, Records)> {
    let socket = tokio::net::TcpListener::bind("127.0.0.2:0")
        .await
        .context("bind 127.0.0.2 (Linux routes 127/8 to loopback)")?;
    let port = socket.local_addr()?.port();
    let records = Records::default();
    let seen = records.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, peer)) = socket.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or(0);
                seen.push(format!("connection from {peer}: {}", String::from_utf8_lossy(&buf[..n])));
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
            });
        }
    });
    Ok((port, records))
}

/// An OpenAI-compatible provider on 127.0.0.1 (allowed: the operator's own model server) that
/// answers chats and embeddings at once, redirects `/redirect/...` to the recorder, serves a
/// page for anything else, and records every request with its headers.
pub(crate) async fn provider(recorder_port: u16) -> anyhow::Result<(u16, Records)> {
    use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
    use axum::response::IntoResponse;
    let records = Records::default();
    let seen = records.clone();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
        let seen = seen.clone();
        async move {
            let text = String::from_utf8_lossy(&body[..body.len().min(1 << 20)]).to_string();
            seen.push(format!("{method} {uri}\n{headers:?}\n{text}"));
            let path = uri.path();
            if let Some(rest) = path.strip_prefix("/redirect") {
                let to = format!("http://127.0.0.2:{recorder_port}{rest}");
                return (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to)]).into_response();
            }
            if path.ends_with("/chat/completions") {
                let answer = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"OK\"},\"finish_reason\":null}]}\n\n\
                              data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
                              data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
                return ([(header::CONTENT_TYPE, "text/event-stream")], answer).into_response();
            }
            if path.ends_with("/embeddings") {
                let request: Value = serde_json::from_str(&text).unwrap_or_default();
                let dims = request["dimensions"].as_u64().unwrap_or(8).clamp(1, 4096) as usize;
                let inputs: Vec<String> = match &request["input"] {
                    Value::Array(items) => items.iter().map(|i| i.as_str().unwrap_or_default().to_string()).collect(),
                    Value::String(s) => vec![s.clone()],
                    _ => Vec::new(),
                };
                let data: Vec<Value> = inputs
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let mut v = vec![0.1f32; dims];
                        for (j, c) in t.chars().enumerate() {
                            v[(c as usize + j) % dims] += 1.0;
                        }
                        json!({"index": i, "embedding": v})
                    })
                    .collect();
                return axum::Json(json!({"data": data, "usage": {"prompt_tokens": 1, "total_tokens": 1}})).into_response();
            }
            ([(header::CONTENT_TYPE, "text/html")], "<html><head><title>provider</title></head><body><p>A page of the provider.</p></body></html>")
                .into_response()
        }
    });
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = socket.local_addr()?.port();
    tokio::spawn(async move { axum::serve(socket, app).await });
    Ok((port, records))
}
