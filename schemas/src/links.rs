//! The wire types of linked and merged requests (关联 / 并案): a live request marked as a
//! duplicate of, or related to, another live one (`link_duplicate`), or merged into it
//! (`merge_into`: it stops being worked and follows the original).
//!
//! A link touches two requests, so it is recorded as two commits, in order: first the
//! command on the request being linked (`linked_to_original`), then the engine's
//! back-reference on the original (`record_duplicate` → `duplicate_recorded`), whose command
//! id is derived from the first command's id. `record_duplicate` is issued by the engine
//! only, never accepted over the generic command routes. Kept apart from `command.rs` and
//! `event/mod.rs`; the commands are re-exported from [`crate::command`], the events from
//! [`crate::event`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::types::RequestId;

/// How a request is tied to its original.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LinkRelation {
    /// About the same matter, or a duplicate, but both stay live and are worked on.
    Related,
    /// Merged (并案): the linked request stops being worked and follows the original.
    Merged,
}

impl LinkRelation {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkRelation::Related => "related",
            LinkRelation::Merged => "merged",
        }
    }
}

/// Mark this request as a duplicate of, or related to, another live request
/// (`link_duplicate`); both stay live. The original records the back-reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkDuplicate {
    /// The original request (live: neither closed, merged nor archived).
    pub original: RequestId,
    /// Why (required, at most 500 characters; no personal data: the log keeps it for good).
    pub reason: String,
}

/// Merge this request into a live original (`merge_into`, 并案): it stops being worked, its
/// resident is told the original's ticket, and every later command on it but archiving and
/// corrections is refused (`merged_into`, naming the original).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeInto {
    /// The original request (live: neither closed, merged nor archived).
    pub original: RequestId,
    /// Why (required, at most 500 characters; no personal data).
    pub reason: String,
}

/// The engine records on the original that a request was linked or merged into it
/// (`record_duplicate`): the second commit of a `link_duplicate` or `merge_into`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordDuplicate {
    /// The request linked or merged.
    pub duplicate: RequestId,
    /// Linked or merged.
    pub relation: LinkRelation,
}

/// This request was linked to (or merged into) its original.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkedToOriginal {
    /// The original request.
    pub original: RequestId,
    /// The original's ticket, as its resident knows it (told to this request's resident).
    pub original_ticket: String,
    /// Linked or merged.
    pub relation: LinkRelation,
    /// Why.
    pub reason: String,
}

/// A request was linked to (or merged into) this one: the back-reference on the original.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DuplicateRecorded {
    /// The request linked or merged.
    pub duplicate: RequestId,
    /// Linked or merged.
    pub relation: LinkRelation,
}
