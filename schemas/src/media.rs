//! The wire types of stored media: photos and documents attached to a request, held in the
//! engine's media store (the NATS object store, or files under the data dir) and recorded in
//! the log by their SHA-256 content hash, never by their bytes.
//!
//! `attach_media` is issued by the engine itself for `POST /api/v1/requests/{id}/attachments`
//! (after the bytes are checked and stored), never accepted over the generic command route:
//! its hash must name bytes the engine has seen. Kept apart from `command.rs` and
//! `event/mod.rs`; the command is re-exported from [`crate::command`], the event from
//! [`crate::event`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a file is attached: at which step of the workflow it came in.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
    Default,
)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentPurpose {
    /// Sent with the intake (the resident's photo, an Open311 `media_url`).
    #[default]
    Intake,
    /// With a progress note of the handling unit.
    Progress,
    /// With the reply: the situation before handling.
    ReplyBefore,
    /// With the reply: the situation after handling.
    ReplyAfter,
}

impl AttachmentPurpose {
    /// Every purpose, in declaration order.
    pub const ALL: [AttachmentPurpose; 4] = [
        AttachmentPurpose::Intake,
        AttachmentPurpose::Progress,
        AttachmentPurpose::ReplyBefore,
        AttachmentPurpose::ReplyAfter,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentPurpose::Intake => "intake",
            AttachmentPurpose::Progress => "progress",
            AttachmentPurpose::ReplyBefore => "reply_before",
            AttachmentPurpose::ReplyAfter => "reply_after",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<AttachmentPurpose> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// Whether a file of this purpose is the resident's personal data unless said otherwise:
    /// what the resident sends is (it may show faces, doors, documents); what units add is not.
    pub fn personal_by_default(self) -> bool {
        self == AttachmentPurpose::Intake
    }
}

/// Record a stored file as an attachment of the request (`attach_media`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachMedia {
    /// SHA-256 of the bytes, 64 lowercase hex digits (the key the media store holds it under).
    pub sha256: String,
    /// The media type the bytes were found to be (by their magic bytes), e.g. `image/jpeg`.
    pub content_type: String,
    /// Length of the file in bytes.
    pub size_bytes: u64,
    /// At which step it came in.
    pub purpose: AttachmentPurpose,
    /// Personal data of the resident (deleted when the request's personal data is erased);
    /// absent: [`AttachmentPurpose::personal_by_default`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<bool>,
}

/// A stored file was attached to the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaAttached {
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// Its media type, found from its magic bytes.
    pub content_type: String,
    /// Length in bytes.
    pub size_bytes: u64,
    /// At which step it came in.
    pub purpose: AttachmentPurpose,
    /// Personal data of the resident: deleted from the media store on erasure.
    pub personal: bool,
}
