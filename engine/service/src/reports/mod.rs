//! Periodic rate reports upward (定期上报): a street reports its figures to its district, a
//! district to its city — response, on-time, resolution and satisfaction rates, the ranking of
//! its sub-units, backlog, hot categories and overdue cases — for a month, an ISO week or a
//! range of days.
//!
//! - [`compute`]: the one function computing the figures from the log up to a position, used
//!   by publishing and by replay alike; canonical bytes and their SHA-256.
//! - [`store`]: the report streams in the log — publish a revision (or nothing when the figures
//!   did not change), record feedback, load and list reports, replay one.
//! - [`link`]: NATS — the outbound JetStream stream, the live publisher, feedback intake by
//!   request-reply, and resend with original ids.
//! - [`schedule`]: the `[reports]` configuration and the schedules `serve` fires.
//! - [`http`]: `GET /api/v1/reports`, `GET /api/v1/reports/{id}`, `POST /api/v1/reports/{id}/feedback`.
//! - [`cli`]: `bianmin report publish|replay|resend|list|show`.
//!
//! Formulas, layout and guarantees: docs/reports.md.

pub mod cli;
pub mod compute;
pub mod http;
pub mod link;
pub mod schedule;
pub mod store;

use schemas::ErrorBody;

use crate::audit::AuditError;
use engine_log::LogError;

/// Why a report operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The scratch projection failed.
    #[error("projections: {0}")]
    Projections(String),
    /// NATS or JetStream failed.
    #[error("nats: {0}")]
    Nats(String),
    /// Bad input (a period, a unit, a feedback document).
    #[error("{message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No such report or revision.
    #[error("{0}")]
    NotFound(String),
    /// Another writer kept appending to the same report stream.
    #[error("report stream busy: {0}")]
    Conflict(String),
}

impl ReportError {
    /// Bad input in `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> ReportError {
        ReportError::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ReportError::Log(e) if e.is_retryable() => "unavailable",
            ReportError::Log(_) | ReportError::Projections(_) | ReportError::Nats(_) => "internal",
            ReportError::Invalid { .. } => "invalid",
            ReportError::NotFound(_) => "not_found",
            ReportError::Conflict(_) => "conflict",
        }
    }

    /// The structured error `{code, message, field}`.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code().into(),
            message: self.to_string(),
            field: match self {
                ReportError::Invalid { field, .. } => Some(field.clone()),
                _ => None,
            },
        }
    }
}

impl From<AuditError> for ReportError {
    fn from(e: AuditError) -> ReportError {
        match e {
            AuditError::Log(e) => ReportError::Log(e),
            other => ReportError::Projections(other.to_string()),
        }
    }
}

impl From<projections::ProjectionError> for ReportError {
    fn from(e: projections::ProjectionError) -> ReportError {
        ReportError::Projections(e.to_string())
    }
}

pub(crate) fn nats_err(e: impl std::fmt::Display) -> ReportError {
    ReportError::Nats(e.to_string())
}
