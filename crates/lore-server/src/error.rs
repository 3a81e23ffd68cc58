//! Errors as HTTP responses, and extractors whose rejections follow the same contract:
//! `{"error": {"code", "message", "type"}}` with the status from the one error table.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lore_core::error::{Code, Error};
use serde::de::DeserializeOwned;
use serde_json::json;

/// An error on its way to becoming a response, with a `Retry-After` for the rate-limited kind.
#[derive(Debug)]
pub struct ApiError {
    pub error: Error,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

/// The error of a response, for the usage log (set on every error response).
#[derive(Debug, Clone)]
pub struct ResponseError(pub String);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        ApiError { error: err, retry_after: None }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = self.error;
        let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = json!({
            "code": err.code.as_str(),
            "message": err.message,
            "type": err.kind().as_str(),
        });
        if status.is_server_error() {
            // The cause goes to the log under an id the client can quote; never into the body.
            let incident = uuid::Uuid::new_v4().to_string();
            if err.is_transient() {
                // The machine's condition (disk full, database down): readiness reports it too.
                tracing::warn!(incident = %incident, code = err.code.as_str(), error = %err, "request failed");
            } else {
                tracing::error!(incident = %incident, code = err.code.as_str(), error = %err, "request failed");
            }
            body["request_id"] = json!(incident);
        }
        let mut response = (status, axum::Json(json!({ "error": body }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(ResponseError(format!("{}: {}", err.code.as_str(), err.message)));
        response
    }
}

pub fn error(code: Code, message: impl Into<String>) -> ApiError {
    ApiError::from(Error::new(code, message))
}

/// JSON body extractor with contract-shaped rejections.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonDataError(e) => {
                    error(Code::InvalidBody, format!("invalid request body: {}", e.body_text()))
                }
                JsonRejection::JsonSyntaxError(e) => {
                    error(Code::MalformedJson, format!("malformed JSON: {}", e.body_text()))
                }
                JsonRejection::MissingJsonContentType(_) => {
                    error(Code::UnsupportedMediaType, "expected a JSON body with Content-Type: application/json")
                }
                JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    error(Code::PayloadTooLarge, "the request body is too large")
                }
                other => error(Code::InvalidBody, other.body_text()),
            }),
        }
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters; an id that cannot exist is simply not found.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|e: PathRejection| error(Code::NotFound, format!("not found: {}", e.body_text())))
    }
}

/// Query-string parameters with contract-shaped rejections.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|e: QueryRejection| {
                error(Code::ValidationFailed, format!("invalid query string: {}", e.body_text()))
            })
    }
}

/// The answer when a handler panicked: a plain internal error; the panic itself is logged.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    ApiError::from(Error::internal(format!("handler panicked: {detail}"))).into_response()
}
