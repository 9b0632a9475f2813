//! The wire types of public-text moderation: a supervisor or the request's station hides or
//! redacts what public answers (Open311) show of a request's text and attachments, with a
//! reason. The resident's original words stay in the log for auditors; only what is
//! published changes.
//!
//! Kept apart from `command.rs` and `event/mod.rs`; the command is re-exported from
//! [`crate::command`], the event from [`crate::event`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What moderation does to the public text.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ModerationAction {
    /// Publish no text and no attachment.
    Hide,
    /// Publish `redacted_text` instead of the resident's text, and no attachment.
    Redact,
}

/// Hide or redact the request's public text and attachments (`moderate_public_text`).
/// The latest moderation is the one in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModeratePublicText {
    /// Hide or redact (not `action`: that is the command's tag).
    pub moderation: ModerationAction,
    /// The text published instead (required for `redact`, 1..=4000 characters, not blank;
    /// refused for `hide`).
    #[serde(default)]
    pub redacted_text: Option<String>,
    /// Why (required, at most 500 characters; no personal data: the log keeps it for good).
    pub reason: String,
}

/// The request's public text was hidden or redacted; the original stays in
/// `request_received`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicTextModerated {
    /// Hide or redact.
    pub moderation: ModerationAction,
    /// The text published instead, for `redact`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted_text: Option<String>,
    /// Why.
    pub reason: String,
}
