//! The answer of every request-reply subject the engine serves: intake, commands, upward
//! feedback and acknowledgements, rate-report feedback.
//!
//! A success is the subject's reply document; a failure is the [`ErrorDocument`]
//! `{"error": {code, message, field}}` with the header [`ERROR_HEADER`] holding the code, the
//! same on every subject (`docs/nats-api.md`).

use async_nats::HeaderMap;
use bytes::Bytes;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Header set on every error reply, holding the error code (so clients can branch without
/// parsing the body).
pub const ERROR_HEADER: &str = "Bianmin-Error";

/// The error reply: `{"error": {"code", "message", "field"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ErrorReply")]
pub struct ErrorDocument {
    /// The structured error.
    pub error: schemas::ErrorBody,
}

/// One answer to a request: a JSON body, or the error document.
#[derive(Debug)]
pub(crate) enum Reply {
    Ok(Vec<u8>),
    Error(schemas::ErrorBody),
}

impl From<schemas::ErrorBody> for Reply {
    fn from(body: schemas::ErrorBody) -> Reply {
        Reply::Error(body)
    }
}

impl Reply {
    /// An error reply.
    pub(crate) fn error(code: &str, message: impl Into<String>, field: Option<&str>) -> Reply {
        Reply::Error(schemas::ErrorBody {
            code: code.to_string(),
            message: message.into(),
            field: field.map(str::to_string),
        })
    }

    /// Decodes an inbound JSON document: `duplicate_key` for a key given twice in one object
    /// (checked first, before serde keeps the last of them), else `malformed` where serde
    /// cannot decode it. Every request-reply subject decodes through this.
    pub(crate) fn decode<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, Reply> {
        if let Some(key) = crate::json_keys::duplicate_key(payload) {
            return Err(Reply::error(
                crate::json_keys::DUPLICATE_KEY,
                key.message(),
                Some(&key.0),
            ));
        }
        serde_json::from_slice(payload).map_err(Reply::malformed)
    }

    /// `malformed` for a payload serde could not decode (the field named where serde names
    /// one).
    pub(crate) fn malformed(error: serde_json::Error) -> Reply {
        Reply::Error((&schemas::DecodeError::from_serde(error)).into())
    }

    /// A success reply: `value` as JSON.
    pub(crate) fn json<T: Serialize>(value: &T) -> Reply {
        match serde_json::to_vec(value) {
            Ok(bytes) => Reply::Ok(bytes),
            Err(error) => Reply::error("internal", error.to_string(), None),
        }
    }

    /// The headers and payload of the NATS message.
    pub(crate) fn into_parts(self) -> (HeaderMap, Bytes) {
        let mut headers = HeaderMap::new();
        match self {
            Reply::Ok(bytes) => (headers, Bytes::from(bytes)),
            Reply::Error(body) => {
                headers.insert(ERROR_HEADER, body.code.as_str());
                let document = ErrorDocument { error: body };
                let bytes = serde_json::to_vec(&document).unwrap_or_else(|_| {
                    br#"{"error":{"code":"internal","message":"unserialisable error"}}"#.to_vec()
                });
                (headers, Bytes::from(bytes))
            }
        }
    }

    /// Publishes the answer to `reply_to`; a failure to publish is logged (the requester
    /// times out and retries).
    pub(crate) async fn send(self, client: &async_nats::Client, reply_to: async_nats::Subject) {
        let (headers, payload) = self.into_parts();
        if let Err(error) = client
            .publish_with_headers(reply_to, headers, payload)
            .await
        {
            tracing::warn!(%error, "could not publish a NATS reply");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_wrapped_and_named_in_the_header() {
        let (headers, payload) =
            Reply::error("not_found", "no such report", Some("report_id")).into_parts();
        assert_eq!(
            headers.get(ERROR_HEADER).map(|v| v.as_str()),
            Some("not_found")
        );
        let document: ErrorDocument = serde_json::from_slice(&payload).unwrap();
        assert_eq!(document.error.code, "not_found");
        assert_eq!(document.error.field.as_deref(), Some("report_id"));
    }

    #[test]
    fn a_success_is_the_document_itself_without_the_error_header() {
        let (headers, payload) = Reply::json(&serde_json::json!({"duplicate": false})).into_parts();
        assert!(headers.get(ERROR_HEADER).is_none());
        assert_eq!(&payload[..], br#"{"duplicate":false}"#);
    }
}
