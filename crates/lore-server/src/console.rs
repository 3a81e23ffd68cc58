//! The web console: a small client-side app (plain JavaScript, no build step) embedded in the
//! binary and served at `/`, talking to the same `/v1` API as every other client.
//!
//! It signs in through the endpoints below, which put the session token in an HttpOnly,
//! SameSite=Strict cookie instead of handing it to script; the cookie then authenticates `/v1`
//! requests, and those that change data must also carry the session's CSRF token (see
//! `auth::request_token`). Every response here forbids inline script and foreign origins.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::api::{PeerIp, client};
use crate::auth::{self, Principal, SESSION_COOKIE};
use crate::error::{ApiResult, Json};
use crate::service::{self, AuthResponse};
use crate::state::AppState;

const INDEX_HTML: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const APP_CSS: &str = include_str!("console/app.css");
const ICON_SVG: &str = include_str!("console/icon.svg");

/// Only the console's own files: no inline script or style, no other origin, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/console/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/console/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
        .route("/console/icon.svg", get(|| async { asset("image/svg+xml", ICON_SVG) }))
        .route("/console/session", get(current_session).post(sign_in).delete(sign_out))
        .route("/console/register", post(sign_up))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The binary is the version: revalidate instead of serving a stale console after an upgrade.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure_headers(headers);
    response
}

fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}

/// What the console learns about its session: who, and the CSRF token to send with writes.
fn session_view(user: &lore_core::model::User, token: &str) -> Value {
    json!({ "user": user, "csrf_token": auth::csrf_token(token) })
}

/// The cookie that carries a session; `Secure` when a proxy in front says the client used HTTPS.
fn session_cookie(request: &HeaderMap, token: &str, max_age: i64) -> HeaderValue {
    let https = request.get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let secure = if https { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("lore_session=; Path=/; Max-Age=0"))
}

fn signed_in(request: &HeaderMap, status: StatusCode, auth: AuthResponse) -> Response {
    let max_age = (auth.expires_at - lore_core::now()).num_seconds().max(0);
    let mut response = (status, Json(session_view(&auth.user, &auth.token))).into_response();
    let cookie = session_cookie(request, &auth.token, max_age);
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    secure_headers(response.headers_mut());
    response
}

async fn sign_in(
    State(state): State<AppState>, PeerIp(ip): PeerIp, headers: HeaderMap, Json(req): Json<service::LoginRequest>,
) -> ApiResult<Response> {
    let auth = service::login(&state, req, client(&headers, ip)).await?;
    Ok(signed_in(&headers, StatusCode::OK, auth))
}

async fn sign_up(
    State(state): State<AppState>, PeerIp(ip): PeerIp, headers: HeaderMap, Json(req): Json<service::RegisterRequest>,
) -> ApiResult<Response> {
    let auth = service::register(&state, req, client(&headers, ip)).await?;
    Ok(signed_in(&headers, StatusCode::CREATED, auth))
}

/// The console's session, read from its cookie (a page reload asks here).
async fn current_session(headers: HeaderMap, principal: Principal) -> ApiResult<Json<Value>> {
    principal.require_session()?;
    let token = auth::session_cookie(&headers)
        .ok_or_else(|| crate::error::error(lore_core::error::Code::MissingToken, "not signed in"))?;
    Ok(Json(session_view(&principal.user, token)))
}

/// Ends the session (the extractor has checked its CSRF token) and clears the cookie.
async fn sign_out(State(state): State<AppState>, headers: HeaderMap, principal: Principal) -> ApiResult<Response> {
    service::logout(&state, &principal).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(&headers, "", 0));
    Ok(response)
}
