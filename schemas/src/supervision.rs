//! The commands of supervision: reminders, warnings, overdue marks and escalations the
//! supervisor issues, whistle-and-report (吹哨报到), the bottom-up rating of departments and its
//! appeal, and the re-stamp of provisional deadlines. Part of [`crate::Command`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::types::*;

/// Send a reminder (催办) for a deadline. Issued by the supervisor or a supervisor role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Remind {
    /// The deadline concerned.
    pub deadline: DeadlineKind,
    /// The due instant being reminded about (makes the command idempotent per deadline).
    pub due_at: Timestamp,
}

/// Pre-breach warning at a fraction of the limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Warn {
    /// The deadline concerned.
    pub deadline: DeadlineKind,
    /// The due instant.
    pub due_at: Timestamp,
}

/// Mark a deadline missed (超期).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkOverdue {
    /// The deadline concerned.
    pub deadline: DeadlineKind,
    /// The due instant that passed.
    pub due_at: Timestamp,
}

/// Escalate supervision one level (日常 → 挂牌 → 约谈).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Escalate {
    /// The new level; must be above the current one.
    pub level: SupervisionLevel,
    /// Who it escalates to (unit in the escalation chain).
    pub to: String,
    /// Why.
    pub reason: String,
}

/// The community blows the whistle (吹哨), summoning departments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlowWhistle {
    /// Departments summoned (non-empty).
    pub departments: Vec<String>,
    /// What they are summoned for.
    pub summary: String,
}

/// A summoned department reports (报到).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportToWhistle {
    /// The department reporting (must match the actor's unit for department handlers).
    pub department: String,
    /// What it did.
    pub note: String,
}

/// Release a summoned department without a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseFromWhistle {
    /// The department released.
    pub department: String,
    /// Why (required).
    pub reason: String,
}

/// Bottom-up rating (以下评上): the community rates a department that reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateDepartment {
    /// The department rated.
    pub department: String,
    /// Score 1..=5.
    pub score: u8,
    /// Comment.
    #[serde(default)]
    pub comment: Option<String>,
}

/// A department appeals the resident's rating (申诉) with evidence, inside the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppealRating {
    /// Why the rating is mistaken or false (required).
    pub reason: String,
    /// Evidence by reference.
    #[serde(default)]
    pub evidence: Vec<AttachmentRef>,
}

/// A supervisor upholds (rating excluded from rates) or rejects an appeal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideAppeal {
    /// Upheld: the rating no longer counts.
    pub upheld: bool,
    /// Why (required).
    pub reason: String,
}

/// Re-stamp provisional deadlines (counted through days the calendar did not cover) under the
/// calendar now in force, which covers them. Issued by the engine after a calendar load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestampDeadlines {
    /// Why, e.g. the calendar now in force (required).
    pub reason: String,
}
