//! The rows the fold produces: the `request_summary` row of a request and the latest
//! supervision marks it carries (docs/metrics.md names each column).

use serde::{Deserialize, Serialize};

use super::Ts;

/// One `request_summary` row (see docs/metrics.md for each column).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Summary {
    pub request_id: String,
    pub stage: String,
    pub kind: String,
    pub channel: String,
    pub street: String,
    pub community: String,
    pub grid: String,
    /// The micro-grid (微网格), when intake named one.
    pub micro_grid: Option<String>,
    pub category: Option<String>,
    pub catalogue_item: Option<String>,
    pub request_type: Option<String>,
    pub urgency: Option<String>,
    pub lead_department: Option<String>,
    pub owner: Option<String>,
    /// The person assigned (指派 / 改派 / 认领); `owner` stays the first-contact worker.
    pub assignee: Option<String>,
    /// The unit the assignee acts for (lead department or community code).
    pub assignee_unit: Option<String>,
    pub anonymous: bool,
    pub received_at: Ts,
    pub received_day: String,
    pub received_week: String,
    pub received_month: String,
    pub accepted_at: Option<Ts>,
    pub declined_at: Option<Ts>,
    pub classified_at: Option<Ts>,
    pub referred_at: Option<Ts>,
    pub signed_at: Option<Ts>,
    pub first_contact_at: Option<Ts>,
    pub responded_at: Option<Ts>,
    pub replied_at: Option<Ts>,
    pub reply_outcome: Option<String>,
    pub rated_at: Option<Ts>,
    pub archived_at: Option<Ts>,
    pub response_due_at: Ts,
    pub completion_due_at: Option<Ts>,
    pub due_at: Ts,
    pub response_on_time: Option<bool>,
    pub completed_on_time: Option<bool>,
    pub handling_seconds: Option<i64>,
    pub overdue: bool,
    pub open: bool,
    pub dispatched: bool,
    pub satisfaction: Option<String>,
    pub resolution: Option<String>,
    pub rating_excluded: bool,
    pub satisfaction_excluded: bool,
    pub reopen_count: i64,
    pub referral_returns: i64,
    pub escalation_level: Option<String>,
    pub last_position: i64,
    pub paused_since: Option<Ts>,
    pub reminded_at: Option<Ts>,
    pub warned_at: Option<Ts>,
    pub marked_overdue_at: Option<Ts>,
    pub escalated_at: Option<Ts>,
    /// The point sent with the request, WGS-84 degrees (NULL when none was sent).
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// The catalogue item named at intake (before classification; `catalogue_item` is the
    /// classified one).
    pub requested_item: Option<String>,
    /// The intake answers to the requested item's typed questions, a JSON object as text.
    pub answers: Option<String>,
    /// Callback (回访) attempts since the reply in force.
    pub callback_attempts: i64,
    /// When a callback first reached the resident after the reply in force.
    pub callback_at: Option<Ts>,
    /// That callback was within the policy's `[callback]` limit after the reply.
    pub callback_on_time: Option<bool>,
    /// The original this request was merged into (并案); a merged duplicate is no separate
    /// request for the on-time, completion and satisfaction rates.
    pub merged_into: Option<String>,
    /// The routing rule that proposed the latest referral's units (docs/routing.md).
    pub routing_rule: Option<String>,
    /// The dispatcher chose other units than that rule proposed.
    pub routing_overridden: Option<bool>,
    /// Not a column: in a department's worklist or overdue list, that department's own part
    /// when it assists or is summoned there rather than leads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<UnitPart>,
}

/// A department's own part of a request as the lists show it (a `unit_parts` row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitPart {
    /// `assisting` (协办) or `whistle` (吹哨报到).
    pub kind: String,
    /// The referral number (assisting) or the whistle's ordinal.
    pub number: i64,
    /// `awaiting_sign_off`, `signed_for`, `summoned`, `reported`, `returned`, `released`,
    /// `absent` or `superseded`.
    pub status: String,
    /// The part's own deadline.
    pub due_at: Option<Ts>,
    /// Signed for.
    pub signed_at: Option<Ts>,
    /// Reported.
    pub reported_at: Option<Ts>,
    /// Still owed and its deadline passed at the list's `now`.
    pub overdue: bool,
}

/// When supervision last marked a request: the latest reminder (催办), pre-breach warning,
/// overdue mark and escalation (the level is `escalation_level`), as the events' instants.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SupervisionMarks {
    /// Latest `reminder_sent`.
    pub reminded_at: Option<Ts>,
    /// Latest `pre_breach_warned`.
    pub warned_at: Option<Ts>,
    /// Latest `deadline_missed` (any deadline, whistle reports included).
    pub marked_overdue_at: Option<Ts>,
    /// Latest `escalated`.
    pub escalated_at: Option<Ts>,
}
