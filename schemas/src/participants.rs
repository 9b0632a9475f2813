//! The wire types of the people and units that act on a request besides the lead: the named
//! person a request is assigned to (指派), the assisting units (协办) with their own sign-off,
//! report and return, and the outcome codes of a callback (回访).
//!
//! Kept apart from `command.rs` and `event/mod.rs` so that each file stays readable; the
//! commands are re-exported from [`crate::command`], the events from [`crate::event`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a person became the request's assignee.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentKind {
    /// Assigned by a colleague of the holding unit while nobody was assigned.
    Assign,
    /// Moved from one assignee to another, with a reason.
    Reassign,
    /// The person took it for themselves.
    Claim,
}

/// What came of one callback attempt (回访).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CallbackOutcome {
    /// The resident was reached and answered.
    Reached,
    /// Nobody answered (no answer, switched off, out of service area).
    Unreachable,
    /// The line was busy.
    Busy,
    /// The number does not belong to the resident (or does not exist).
    WrongNumber,
    /// The resident was reached but declined the callback: no further attempts are owed.
    Refused,
}

impl CallbackOutcome {
    /// Whether the resident was reached (answered), whatever they said.
    pub fn reached(self) -> bool {
        matches!(self, CallbackOutcome::Reached | CallbackOutcome::Refused)
    }

    /// Whether this attempt ends the callback: reached, or the resident refused.
    pub fn closes(self) -> bool {
        self.reached()
    }
}

/// Assign the request to a named person of the unit that holds it (指派): the station while
/// it handles the request itself, the lead department once referred. Only while nobody is
/// assigned; a change of assignee is a [`Reassign`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// The person's actor id (the `sub` of their token).
    pub assignee: String,
    /// Why (optional).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Move the request from its assignee to another person of the holding unit (改派).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reassign {
    /// The new assignee's actor id.
    pub assignee: String,
    /// Why (required).
    pub reason: String,
}

/// The acting person takes the request for themselves (认领), while nobody is assigned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
}

/// An assisting department signs for its part of a referral (协办签收).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SignAssistance {
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
}

/// An assisting department returns its part (协办退回): it is not responsible for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnAssistance {
    /// Why (required).
    pub reason: String,
}

/// The request was assigned to a named person (指派 / 改派 / 认领).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestAssigned {
    /// The person now assigned (actor id).
    pub assignee: String,
    /// The unit that holds the request and the assignee acts for: the lead department's
    /// code, or the community (station) code.
    pub unit: String,
    /// Assign, reassign or claim.
    pub how: AssignmentKind,
    /// The assignee before (present for a reassignment).
    pub previous_assignee: Option<String>,
    /// Why (required for a reassignment).
    pub reason: Option<String>,
}

/// An assisting department signed for its part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssistanceSignedFor {
    /// The assisting department.
    pub department: String,
    /// Note.
    pub note: Option<String>,
}

/// An assisting department returned its part; it is no longer awaited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssistanceReturned {
    /// The assisting department.
    pub department: String,
    /// Why.
    pub reason: String,
}

/// The lead replied while assisting departments had not reported: their absence is recorded
/// (the policy's `assistance.at_reply = "record_absence"`), in the same commit as the reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssistanceAbsenceRecorded {
    /// The assisting departments that had neither reported nor returned their part.
    pub departments: Vec<String>,
}
