//! The wire types of reports upward (上报): a request reported to a higher level, that
//! level's feedback on it, and its system's acknowledgement of receipt (delivery tracking).
//! The deadline keeps running while a matter is reported. Kept apart from `command.rs` and
//! `event/mod.rs`; the commands are re-exported from [`crate::command`], the events from
//! [`crate::event`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::types::*;

/// Report the matter upward (上报) to a higher level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportUpward {
    /// Target level.
    pub level: UpwardLevel,
    /// Summary (required).
    pub summary: String,
    /// Attachments by reference.
    #[serde(default)]
    pub attachments: Vec<AttachmentRef>,
}

/// Record the higher level's feedback on an upward report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordUpwardFeedback {
    /// The upward report answered.
    pub report_id: Uuid,
    /// What kind of feedback.
    pub kind: FeedbackKind,
    /// Its content.
    pub content: String,
    /// For `referral_back`: the department named.
    #[serde(default)]
    pub department: Option<String>,
}

/// The higher level's system acknowledged receipt of an upward report (delivery tracking).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeUpward {
    /// The upward report acknowledged.
    pub report_id: Uuid,
}

/// Reported upward (上报). The deadline keeps running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportedUpward {
    /// Stable id of this report (also the outbound message id).
    pub report_id: Uuid,
    /// Target level.
    pub level: UpwardLevel,
    /// Summary.
    pub summary: String,
    /// Attachments.
    pub attachments: Vec<AttachmentRef>,
}

/// The higher level's feedback was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpwardFeedbackReceived {
    /// The report answered.
    pub report_id: Uuid,
    /// Its level.
    pub level: UpwardLevel,
    /// Kind.
    pub kind: FeedbackKind,
    /// Content.
    pub content: String,
    /// Department named, for referral back.
    pub department: Option<String>,
}

/// The higher level's system acknowledged an upward report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpwardAcknowledged {
    /// The report.
    pub report_id: Uuid,
}
