//! Events of supervision (督办): reminders, pre-breach warnings, missed deadlines and
//! escalations the supervisor records; whistle summons (吹哨报到) and the departments'
//! reports and releases; department ratings (以下评上) and their appeals; and the re-stamp of
//! provisional deadlines once a calendar covers them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::types::*;

/// A reminder (催办) was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReminderSent {
    /// Deadline concerned.
    pub deadline: DeadlineKind,
    /// Its due instant.
    pub due_at: Timestamp,
}

/// A pre-breach warning was raised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreBreachWarned {
    /// Deadline concerned.
    pub deadline: DeadlineKind,
    /// Its due instant.
    pub due_at: Timestamp,
}

/// A deadline was missed (超期).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadlineMissed {
    /// Deadline concerned.
    pub deadline: DeadlineKind,
    /// Its due instant.
    pub due_at: Timestamp,
}

/// Supervision escalated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Escalated {
    /// New level.
    pub level: SupervisionLevel,
    /// Unit escalated to.
    pub to: String,
    /// Why.
    pub reason: String,
}

/// The community blew the whistle (吹哨).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WhistleBlown {
    /// Departments summoned.
    pub departments: Vec<String>,
    /// What for.
    pub summary: String,
    /// Each must report (报到) by then.
    pub report_due_at: Timestamp,
}

/// A summoned department reported (报到).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentReported {
    /// The department.
    pub department: String,
    /// What it did.
    pub note: String,
    /// Reported at or before the due instant.
    pub on_time: bool,
}

/// A summoned department was released without a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentReleased {
    /// The department.
    pub department: String,
    /// Why.
    pub reason: String,
}

/// Bottom-up rating (以下评上) of a department by the community.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentRated {
    /// The department.
    pub department: String,
    /// Score 1..=5.
    pub score: u8,
    /// Comment.
    pub comment: Option<String>,
}

/// A department appealed the resident's rating (申诉).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingAppealed {
    /// The appealing department.
    pub department: String,
    /// Why.
    pub reason: String,
    /// Evidence.
    pub evidence: Vec<AttachmentRef>,
}

/// The appeal was decided; an upheld appeal excludes the rating from the rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppealDecided {
    /// Upheld.
    pub upheld: bool,
    /// Why.
    pub reason: String,
}

/// Provisional deadlines were re-stamped under a calendar that covers them: the stamped
/// deadlines in force become `deadlines`; `previous` keeps what they were.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadlinesRestamped {
    /// The provisional deadlines replaced.
    pub previous: Deadlines,
    /// The deadlines in force from now on (not provisional).
    pub deadlines: Deadlines,
    /// Why (the calendar now in force).
    pub reason: String,
}
