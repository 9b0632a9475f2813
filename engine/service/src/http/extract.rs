//! Path and query extractors whose every rejection is `{code, message, field}` naming the
//! parameter (axum's own answer in plain text without naming it). Query structs should carry
//! `#[serde(deny_unknown_fields)]`: an unknown or repeated parameter is then refused too.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::edge::backticked;
use super::error::ApiError;

/// The query string decoded into `T` (absent = empty).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        decode_query(parts.uri.query().unwrap_or_default()).map(ApiQuery)
    }
}

/// Decodes `raw` (`a=1&b=2`) into `T`; the error names the parameter at fault.
pub fn decode_query<T: DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let inner = error.inner().to_string();
        let path = error.path().to_string();
        let field = if path == "." {
            backticked(&inner)
        } else {
            Some(path)
        };
        let message = match &field {
            Some(name) => format!("invalid query parameter `{name}`: {inner}"),
            None => format!("invalid query: {inner}"),
        };
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            message,
            field.as_deref(),
        )
    })
}

/// The path parameters decoded into `T`.
#[derive(Debug, Clone, Copy)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(path_error(&rejection)),
        }
    }
}

fn path_error(rejection: &PathRejection) -> ApiError {
    use axum::extract::path::ErrorKind;
    let (status, field) = match rejection {
        PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
            ErrorKind::ParseErrorAtKey { key, .. }
            | ErrorKind::InvalidUtf8InPathParam { key }
            | ErrorKind::DeserializeError { key, .. } => {
                (StatusCode::BAD_REQUEST, Some(key.clone()))
            }
            _ => (StatusCode::BAD_REQUEST, None),
        },
        _ => (StatusCode::INTERNAL_SERVER_ERROR, None),
    };
    let message = if status.is_server_error() {
        "internal error".to_owned()
    } else {
        format!("invalid path: {}", rejection.body_text())
    };
    let code = if status.is_server_error() {
        "internal"
    } else {
        "malformed"
    };
    ApiError::new(status, code, message, field.as_deref().or(Some("path")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Q {
        purpose: Option<String>,
        version: Option<u64>,
        flag: Option<bool>,
    }

    fn field(raw: &str) -> Option<String> {
        decode_query::<Q>(raw).unwrap_err().body.field
    }

    #[test]
    fn every_rejection_names_its_parameter() {
        assert_eq!(field("version=null").as_deref(), Some("version"));
        assert_eq!(field("flag=yes").as_deref(), Some("flag"));
        assert_eq!(field("other=1").as_deref(), Some("other"));
        assert_eq!(field("purpose=a&purpose=b").as_deref(), Some("purpose"));
        assert!(decode_query::<Q>("purpose=a&version=3&flag=true").is_ok());
        assert!(decode_query::<Q>("").is_ok());
    }
}
