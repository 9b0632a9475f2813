//! Decoding errors and the structured error body every edge (HTTP, NATS) returns.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a wire document could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The `type` / `action` is not one this version knows.
    #[error("unknown type `{type_name}`")]
    UnknownType {
        /// The name received.
        type_name: String,
    },
    /// The schema version is newer than this code (or was never published).
    #[error("unsupported schema version {version} of `{type_name}`")]
    UnsupportedVersion {
        /// The type.
        type_name: String,
        /// The version received.
        version: u64,
    },
    /// Not valid JSON, a missing or unknown field, or a value of the wrong type.
    #[error("{message}")]
    Malformed {
        /// The offending field, where known.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
}

impl DecodeError {
    /// Converts a serde_json error, extracting the field name serde reports in backticks.
    pub fn from_serde(error: serde_json::Error) -> DecodeError {
        let message = error.to_string();
        let field = message
            .split('`')
            .nth(1)
            .filter(|_| message.contains("field"))
            .map(str::to_string);
        DecodeError::Malformed { field, message }
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::UnknownType { .. } => "unknown_type",
            DecodeError::UnsupportedVersion { .. } => "unsupported_version",
            DecodeError::Malformed { .. } => "malformed",
        }
    }

    /// The offending field, where known.
    pub fn field(&self) -> Option<&str> {
        match self {
            DecodeError::Malformed { field, .. } => field.as_deref(),
            DecodeError::UnknownType { .. } => Some("action"),
            DecodeError::UnsupportedVersion { .. } => Some("schema_version"),
        }
    }
}

/// The structured error every edge returns: `{"code", "message", "field"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code (e.g. `wrong_status`, `malformed`, `conflict`).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// The offending field, where one is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl From<&DecodeError> for ErrorBody {
    fn from(error: &DecodeError) -> ErrorBody {
        ErrorBody {
            code: error.code().to_string(),
            message: error.to_string(),
            field: error.field().map(str::to_string),
        }
    }
}
