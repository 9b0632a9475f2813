//! The layers every route of the server sits behind, so that no request — whichever router
//! serves it, whatever extractor it uses — is answered with anything but the documented error
//! shape:
//!
//! - a request id (`x-request-id`, taken from the client or minted) on every request and
//!   response, and a tracing span carrying it;
//! - one body limit (`http.body_limit_bytes`) for every route, also for bodies a handler reads
//!   without axum's extractors — but the attachment upload, whose limit is `media.max_bytes`
//!   and the multipart framing ([`crate::media::http::body_limit`]);
//! - path and query text that is not UTF-8 or holds control characters (NUL among them, which
//!   PostgreSQL cannot store) refused with 400 before any handler sees it;
//! - a panic in a handler caught, logged with the request id and answered 500;
//! - any error response that is not already structured (axum's plain-text rejections, the
//!   timeout's empty 408, the body limit's 413) rewritten to `{code, message, field}` with its
//!   status kept. Under `/open311/` errors take the GeoReport v2 shape
//!   `[{code, description}]` instead.

use std::any::Any;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tracing::Instrument;

use super::HttpLimits;
use super::error::ApiError;

/// Largest error body from an inner layer that is read to be rewritten; longer ones are cut.
const MAX_REWRITTEN_BODY: usize = 4 * 1024;

/// Marks the 500 answered for a panic, so the outer layer adds the request id to it.
#[derive(Debug, Clone, Copy)]
struct Panicked;

/// Wraps the complete router (every route, every fallback) in the edge layers.
pub fn wrap(router: Router, limits: HttpLimits) -> Router {
    router
        .layer(DefaultBodyLimit::max(limits.body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(limits, body_limit))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(edge))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The body limit of the route a request goes to: the media upload's own, else
/// `http.body_limit_bytes`.
async fn body_limit(
    axum::extract::State(limits): axum::extract::State<HttpLimits>,
    request: Request,
    next: Next,
) -> Response {
    use tower::ServiceExt;
    let limit = match crate::media::http::is_upload_path(request.uri().path()) {
        true => limits.media_body_limit_bytes,
        false => limits.body_limit_bytes,
    };
    // The limited body is boxed back into axum's body for the rest of the stack.
    let inner = tower::ServiceBuilder::new()
        .layer(RequestBodyLimitLayer::new(limit))
        .map_request(|r: axum::http::Request<_>| r.map(Body::new))
        .service(next);
    match inner.oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    }
}

/// The span, the path and query guard and the rewrite of unstructured errors.
async fn edge(request: Request, next: Next) -> Response {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let path = request.uri().path();
    let open311 = if !path.starts_with("/open311/") {
        Shape::Api
    } else if path.ends_with(".xml") {
        Shape::Open311Xml
    } else {
        Shape::Open311
    };
    let span = tracing::info_span!(
        "http",
        request_id = %request_id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    if let Err(error) = check_uri(request.uri()) {
        return shaped(error, open311);
    }
    let response = next.run(request).instrument(span).await;
    if response.extensions().get::<Panicked>().is_some() {
        let error = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error (request id {request_id})"),
            None,
        );
        return shaped(error, open311);
    }
    if !needs_rewrite(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_REWRITTEN_BODY).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let mut answer = shaped(rewritten(parts.status, &text), open311);
    // Keep what the inner layer said besides the body (`Allow` on a 405, `Retry-After`).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().append(name.clone(), value.clone());
        }
    }
    answer
}

/// A 4xx/5xx whose body is not JSON or XML (plain text, or no body at all).
fn needs_rewrite(response: &Response) -> bool {
    if !(response.status().is_client_error() || response.status().is_server_error()) {
        return false;
    }
    match response.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(value) => value
            .to_str()
            .map(|v| v.starts_with("text/plain"))
            .unwrap_or(true),
    }
}

/// The structured error for an inner layer's unstructured `status` and `text`.
fn rewritten(status: StatusCode, text: &str) -> ApiError {
    let (code, default) = match status {
        StatusCode::BAD_REQUEST => ("malformed", "malformed request"),
        StatusCode::NOT_FOUND => ("not_found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed"),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the body exceeds the size limit"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "the body must be application/json",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => ("malformed", "the body does not match its schema"),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests"),
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "service unavailable"),
        s if s.is_server_error() => ("internal", "internal error"),
        _ => ("malformed", "request refused"),
    };
    // A server error's text is never shown: it may describe internals.
    let message = if text.is_empty() || status.is_server_error() {
        default.to_owned()
    } else {
        text.to_owned()
    };
    let field = backticked(&message);
    ApiError::new(status, code, message, field.as_deref())
}

/// The first name quoted in backticks in serde's and axum's messages (`unknown field `x``).
pub(crate) fn backticked(message: &str) -> Option<String> {
    let (_, rest) = message.split_once('`')?;
    let (name, _) = rest.split_once('`')?;
    (!name.is_empty() && name.len() <= 64).then(|| name.to_owned())
}

/// How a path's errors are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `{code, message, field}`.
    Api,
    /// The GeoReport v2 error array.
    Open311,
    /// The GeoReport v2 `<errors>` document (the `.xml` paths).
    Open311Xml,
}

/// `error` as this edge answers it: `{code, message, field}`, or under `/open311/` the
/// GeoReport v2 error array (as XML on the `.xml` paths).
fn shaped(error: ApiError, shape: Shape) -> Response {
    if shape == Shape::Api {
        return error.into_response();
    }
    let description = match &error.body.field {
        Some(field) => format!("{} ({}: {field})", error.body.message, error.body.code),
        None => format!("{} ({})", error.body.message, error.body.code),
    };
    let body = serde_json::json!([{ "code": error.status.as_u16(), "description": description }]);
    if shape == Shape::Open311Xml {
        let text = super::open311::xml::document("errors", &body);
        return (
            error.status,
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            text,
        )
            .into_response();
    }
    (error.status, axum::Json(body)).into_response()
}

/// The answer to a panic; the outer layer fills in the request id.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("non-string panic payload");
    tracing::error!(panic = %detail, "handler panicked");
    let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    response.extensions_mut().insert(Panicked);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Refuses a path segment or query name or value that is not UTF-8 once decoded or that
/// holds a control character.
fn check_uri(uri: &axum::http::Uri) -> Result<(), ApiError> {
    for segment in uri.path().split('/') {
        check_text(segment, false)
            .map_err(|why| invalid("path", &format!("a path segment {why}")))?;
    }
    let Some(query) = uri.query() else {
        return Ok(());
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = check_text(name, true)
            .map_err(|why| invalid("query", &format!("a query parameter name {why}")))?;
        check_text(value, true)
            .map_err(|why| invalid(&name, &format!("query parameter `{name}` {why}")))?;
    }
    Ok(())
}

/// Decodes one percent-encoded component (`+` is a space in a query) and checks its text.
fn check_text(raw: &str, plus_is_space: bool) -> Result<String, &'static str> {
    let raw = if plus_is_space {
        raw.replace('+', " ")
    } else {
        raw.to_owned()
    };
    let text = percent_decode_str(&raw)
        .decode_utf8()
        .map_err(|_| "is not UTF-8")?;
    if text.chars().any(char::is_control) {
        return Err("holds a control character");
    }
    Ok(text.into_owned())
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "malformed", message, Some(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_bad_utf8_are_refused() {
        assert!(check_text("water%00", false).is_err());
        assert!(check_text("%FF%FE", false).is_err());
        assert!(check_text("%0A", true).is_err());
        assert_eq!(check_text("a+b%20c", true).as_deref(), Ok("a b c"));
        assert_eq!(check_text("%E6%B0%B4", false).as_deref(), Ok("水"));
    }

    #[test]
    fn the_field_is_the_first_backticked_name() {
        assert_eq!(
            backticked("unknown field `foo`, expected `as_of`").as_deref(),
            Some("foo")
        );
        assert_eq!(backticked("no name here"), None);
    }
}
