//! Why a command or query failed, and how each edge answers it.

use engine_core::Refusal;
use schemas::{ErrorBody, RequestId};
use uuid::Uuid;

use crate::contacts::ContactError;
use engine_log::LogError;

/// The field a reused idempotency key is reported on: the HTTP header (over NATS the
/// envelope's `command_id`, which the header is documented as).
pub const IDEMPOTENCY_KEY_FIELD: &str = "Idempotency-Key";

/// The field a stale expected version is reported on: the HTTP header (over NATS the
/// envelope's `expected_version`, which the header is documented as).
pub const EXPECTED_VERSION_FIELD: &str = "If-Match";

/// Why a command or query failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The input is not acceptable as given (checked at the edge, before the core).
    #[error("{message}")]
    Invalid {
        /// Stable code.
        code: String,
        /// Explanation.
        message: String,
        /// The offending field.
        field: Option<String>,
    },
    /// The core refused the command; nothing was recorded.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// No such request.
    #[error("request {0} not found")]
    NotFound(RequestId),
    /// Other writers kept winning the race for the request; nothing was recorded.
    #[error("request {request_id} kept changing; try again")]
    Conflict {
        /// The request.
        request_id: RequestId,
    },
    /// The caller expected another version of the request (`If-Match`, `expected_version`):
    /// someone else changed it first. Nothing was recorded.
    #[error(
        "the request is at version {current}, not the expected {expected}: reload it and decide \
         again"
    )]
    VersionMismatch {
        /// The version the caller named.
        expected: u64,
        /// The request's version in the log.
        current: u64,
    },
    /// The command id (idempotency key) was first used for another command or on another
    /// request; it stays bound to that one and nothing was recorded.
    #[error(
        "idempotency key {command_id} was already used for a different command or request; \
         send a new key"
    )]
    KeyReused {
        /// The command id.
        command_id: Uuid,
    },
    /// The request's contact data was erased (crypto-shredded): erasure is final, so there
    /// is nothing to correct and nothing is stored.
    #[error("the contact data of request {0} was erased and cannot be corrected")]
    ContactErased(RequestId),
    /// The event log (or contact store) cannot be reached; nothing was recorded.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A fault in the engine or its data.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CommandError {
    pub(super) fn invalid(code: &str, field: &str, message: impl Into<String>) -> CommandError {
        CommandError::Invalid {
            code: code.into(),
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// The stable error code.
    pub fn code(&self) -> String {
        match self {
            CommandError::Invalid { code, .. } => code.clone(),
            CommandError::Refused(refusal) => refusal.code().to_string(),
            CommandError::NotFound(_) => "not_found".into(),
            CommandError::Conflict { .. } => "conflict".into(),
            CommandError::KeyReused { .. } => "idempotency_key_reused".into(),
            CommandError::VersionMismatch { .. } => "version_mismatch".into(),
            CommandError::ContactErased(_) => "contact_erased".into(),
            CommandError::Unavailable(_) => "unavailable".into(),
            CommandError::Internal(_) => "internal".into(),
        }
    }

    /// The structured body every edge returns.
    pub fn body(&self) -> ErrorBody {
        let field = match self {
            CommandError::Invalid { field, .. } => field.clone(),
            CommandError::Refused(refusal) => refusal.field().map(str::to_string),
            CommandError::KeyReused { .. } => Some(IDEMPOTENCY_KEY_FIELD.to_string()),
            CommandError::VersionMismatch { .. } => Some(EXPECTED_VERSION_FIELD.to_string()),
            CommandError::ContactErased(_) => Some("contact".to_string()),
            _ => None,
        };
        let message = match self {
            // Internal details go to the log, not to callers.
            CommandError::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        ErrorBody {
            code: self.code(),
            message,
            field,
        }
    }

    /// The HTTP status: 400 invalid input; 403 refused because of who asks (`not_permitted`,
    /// `not_addressed_to_you`); 422 every other refusal by the rules (for example
    /// `wrong_stage`: a transition the request's stage does not allow; `contact_erased`: a
    /// correction of crypto-shredded contact data); 404 unknown request; 409 lost races,
    /// reused idempotency keys and stale expected versions; 503 store unavailable; 500 internal.
    pub fn http_status(&self) -> u16 {
        match self {
            // An answer that does not fit the item's questions is bad input, like a bad field.
            CommandError::Invalid { .. } | CommandError::Refused(Refusal::Answer(_)) => 400,
            CommandError::Refused(
                Refusal::NotPermitted { .. } | Refusal::NotAddressedToYou { .. },
            ) => 403,
            CommandError::Refused(_) | CommandError::ContactErased(_) => 422,
            CommandError::NotFound(_) => 404,
            CommandError::Conflict { .. }
            | CommandError::KeyReused { .. }
            | CommandError::VersionMismatch { .. } => 409,
            CommandError::Unavailable(_) => 503,
            CommandError::Internal(_) => 500,
        }
    }

    /// The metric outcome label.
    pub(super) fn outcome(&self) -> &'static str {
        match self {
            CommandError::Invalid { .. } => "invalid",
            CommandError::Refused(_) => "refused",
            CommandError::NotFound(_) => "not_found",
            CommandError::Conflict { .. } => "conflict",
            CommandError::KeyReused { .. } => "key_reused",
            CommandError::VersionMismatch { .. } => "version_mismatch",
            CommandError::ContactErased(_) => "refused",
            CommandError::Unavailable(_) => "unavailable",
            CommandError::Internal(_) => "internal",
        }
    }
}

impl From<LogError> for CommandError {
    fn from(error: LogError) -> Self {
        match error {
            LogError::Unavailable(message) => CommandError::Unavailable(message),
            LogError::Conflict { request_id, .. } => CommandError::Conflict { request_id },
            LogError::IdBound { command_id, .. } => CommandError::KeyReused { command_id },
            other => CommandError::Internal(other.to_string()),
        }
    }
}

impl From<ContactError> for CommandError {
    fn from(error: ContactError) -> Self {
        match error {
            ContactError::Unavailable(message) => CommandError::Unavailable(message),
            other => CommandError::Internal(other.to_string()),
        }
    }
}
