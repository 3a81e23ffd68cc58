//! `GET /v1/documents/{id}/file`: the uploaded bytes as they were stored, streamed from the blob
//! store piece by piece (never held whole), with single-range requests for resuming and seeking.
//! Served as an attachment that browsers neither render nor sniff: a tenant's HTML or SVG must
//! not run as Lore's page. `GET /v1/documents/{id}/pages/{page}`: a PDF page rendered as a PNG.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use lore_core::error::{Code, Error};
use lore_core::model::{Id, Scope};

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::state::AppState;

/// How much one read from the blob store takes.
const PIECE: usize = 256 * 1024;

pub async fn download(state: &AppState, principal: &Principal, id: Id, headers: &HeaderMap) -> ApiResult<Response> {
    principal.require(Scope::Read)?;
    let doc = crate::service::readable_document(state, principal, id).await?;
    let size = state.blobs.size(&doc.file_path).await?.ok_or_else(|| {
        Error::new(Code::FileUnavailable, format!("the uploaded file is not in {}", state.blobs.describe()))
    })?;
    let etag = format!("\"{}\"", doc.file_hash);
    // A range is honoured only for the same bytes (If-Range names them); otherwise the whole.
    let range_applies = match headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        Some(tag) => tag == etag,
        None => true,
    };
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(spec) if range_applies => match parse_range(spec, size) {
            Ok(range) => range,
            Err(()) => {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                response.headers_mut().insert(header::CONTENT_RANGE, value(&format!("bytes */{size}")));
                return Ok(response);
            }
        },
        _ => None,
    };
    let (start, end) = range.unwrap_or((0, size));
    let blobs = state.blobs.clone();
    let key = doc.file_path.clone();
    let body = futures_util::stream::unfold(start, move |at| {
        let (blobs, key) = (blobs.clone(), key.clone());
        async move {
            if at >= end {
                return None;
            }
            let want = ((end - at) as usize).min(PIECE);
            match blobs.read_range(&key, at, want).await {
                Ok(bytes) if bytes.is_empty() => None,
                Ok(bytes) => {
                    let next = at + bytes.len() as u64;
                    Some((Ok::<_, std::io::Error>(Bytes::from(bytes)), next))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a download broke off: the blob store failed");
                    Some((Err(std::io::Error::other(e.message)), end))
                }
            }
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    let h = response.headers_mut();
    let mime = HeaderValue::from_str(&doc.mime_type)
        .ok()
        .filter(|_| doc.mime_type.contains('/'))
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, mime);
    h.insert(header::CONTENT_DISPOSITION, value(&content_disposition(&doc.filename)));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, value(&etag));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    h.insert(header::CONTENT_LENGTH, value(&(end - start).to_string()));
    if range.is_some() {
        h.insert(header::CONTENT_RANGE, value(&format!("bytes {start}-{}/{size}", end.saturating_sub(1))));
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(response)
}

/// The longer side of a rendered page, in pixels.
const PAGE_PIXELS: u32 = 1400;
/// Pages this node renders at once. Each render may spend the parser's CPU limit, and a
/// tenant can ask for pages as fast as it likes: past this, a request is refused (503) at once
/// rather than queued.
static RENDERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// `GET /v1/documents/{id}/pages/{page}`: one page of a PDF as a PNG (at most 1,400 pixels on
/// its longer side), to show where a cited passage stands: a chunk's `regions` give boxes with
/// their page's size, so they scale onto it. Rendered by `pdftoppm` under the parser's memory
/// and CPU limits (`prlimit`), with none of the server's environment. An image is its own page
/// (`/file`).
pub async fn page_image(state: &AppState, principal: &Principal, id: Id, page: u32) -> ApiResult<Response> {
    principal.require(Scope::Read)?;
    let doc = crate::service::readable_document(state, principal, id).await?;
    if doc.file_type != "pdf" {
        return Err(crate::error::error(
            Code::ValidationFailed,
            format!("only a PDF's pages are rendered; this is a {} file (GET /v1/documents/{id}/file)", doc.file_type),
        ));
    }
    if page == 0 {
        return Err(crate::service::not_found("page"));
    }
    let Ok(_rendering) = RENDERS.try_acquire() else {
        return Err(crate::error::error(
            Code::Unavailable,
            "pages are being rendered for others; try again in a moment",
        ));
    };
    let bytes = state.blobs.get(&doc.file_path).await?;
    let rendered = tokio::task::spawn_blocking(move || {
        let mut file = tempfile::NamedTempFile::new().map_err(Error::from)?;
        std::io::Write::write_all(&mut file, &bytes).map_err(Error::from)?;
        lore_ingest::ocr::render_page_png(file.path(), page, PAGE_PIXELS)
    })
    .await
    .map_err(|e| Error::internal(format!("rendering panicked: {e}")))?;
    let png = match rendered {
        Ok(png) if png.starts_with(b"\x89PNG") => png,
        // pdftoppm says a page past the end is a "wrong page range" (and prints nothing).
        Ok(_) => return Err(crate::service::not_found("page")),
        Err(e) if e.message.contains("page range") => return Err(crate::service::not_found("page")),
        Err(e) if e.code == Code::CorruptFile => {
            return Err(crate::error::error(
                Code::CorruptFile,
                format!("page {page} of this PDF could not be rendered"),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let mut response = Response::new(Body::from(png));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300"));
    Ok(response)
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static(""))
}

/// One range of `bytes=`, as `[start, end)`; `Ok(None)` for what is not a single byte range (the
/// whole file is sent, as RFC 9110 allows), `Err` for a range past the end.
fn parse_range(spec: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(ranges) = spec.trim().strip_prefix("bytes=") else { return Ok(None) };
    if ranges.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = ranges.trim().split_once('-') else { return Ok(None) };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().map_err(|_| ());
    let (start, end) = match (first.is_empty(), last.is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => {
            let n = parse(last)?;
            if n == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size)
        }
        (false, true) => (parse(first)?, size),
        (false, false) => {
            let (a, b) = (parse(first)?, parse(last)?);
            if b < a {
                return Ok(None);
            }
            (a, b.saturating_add(1).min(size))
        }
        (true, true) => return Ok(None),
    };
    if start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// `attachment` with the name as plain ASCII (for old clients) and as UTF-8 (RFC 6266 / 8187):
/// `报告.pdf` arrives as `报告.pdf`.
fn content_disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let mut encoded = String::new();
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 10))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 100))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 100))));
        assert_eq!(parse_range("bytes=-1000", 100), Ok(Some((0, 100))));
        assert_eq!(parse_range("bytes=50-1000", 100), Ok(Some((50, 100))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=-0", 100), Err(()));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None), "several ranges: the whole file");
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=9-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=a-1", 100), Err(()));
    }

    #[test]
    fn file_names_survive_in_both_forms() {
        assert_eq!(
            content_disposition("报告 v2.pdf"),
            "attachment; filename=\"__ v2.pdf\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A%20v2.pdf"
        );
        assert_eq!(
            content_disposition("a\"b\\c.txt"),
            "attachment; filename=\"a_b_c.txt\"; filename*=UTF-8''a%22b%5Cc.txt"
        );
    }
}
