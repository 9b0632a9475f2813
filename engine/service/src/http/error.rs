//! The HTTP error type and the JSON body extractor that turns every rejection into the
//! structured `{code, message, field}` body.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemas::{DecodeError, ErrorBody};
use serde::de::DeserializeOwned;

use crate::auth::AuthError;
use crate::commands::CommandError;

/// An error answered over HTTP: a status and the structured body.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
}

impl ApiError {
    /// An error with the given status, code, message and field.
    pub fn new(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        field: Option<&str>,
    ) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                code: code.into(),
                message: message.into(),
                field: field.map(str::to_string),
            },
        }
    }

    /// 404 for a path that names nothing.
    pub fn route_not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource", None)
    }

    /// 403 for an actor that may not see what it asked for.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message, None)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        let status =
            StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError {
            status,
            body: error.body(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            error.code(),
            error.to_string(),
            None,
        )
    }
}

impl From<&DecodeError> for ApiError {
    fn from(error: &DecodeError) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: ErrorBody::from(error),
        }
    }
}

/// A JSON body decoded with serde, whose every failure (too large, not JSON, a key twice in one
/// object, unknown field, wrong type) is answered with our structured error rather than axum's plain-text one.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(request, state).await?;
        refuse_duplicate_keys(&bytes)?;
        let value = if bytes.iter().all(u8::is_ascii_whitespace) {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::from(&DecodeError::from_serde(e)))?
        };
        serde_json::from_value(value)
            .map(ApiJson)
            .map_err(|e| ApiError::from(&DecodeError::from_serde(e)))
    }
}

/// 400 `duplicate_key` for a JSON body that names a key twice in one object: every JSON
/// body is checked before it is decoded (serde would keep the last of them).
pub fn refuse_duplicate_keys(bytes: &[u8]) -> Result<(), ApiError> {
    match crate::json_keys::duplicate_key(bytes) {
        Some(key) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            crate::json_keys::DUPLICATE_KEY,
            key.message(),
            Some(&key.0),
        )),
        None => Ok(()),
    }
}

/// Reads the whole body under the configured limit (413 beyond it).
pub async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    status,
                    "payload_too_large",
                    "the body exceeds the size limit",
                    None,
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed",
                    rejection.body_text(),
                    None,
                )
            }
        })
}
