//! Events: past-tense facts the engine records about a request.
//!
//! Events record decisions, not just inputs: `RequestClassified` carries the computed
//! deadlines, `ExtensionGranted` the new due time. Projections and replay compare
//! timestamps and never re-run policy, so a policy or calendar change cannot rewrite history.
//! On the wire an event is `{"type": "referred_to_department", "data": {...}}` inside its
//! [`crate::EventEnvelope`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::types::*;

mod engine_streams;
mod routing;
mod supervision;
pub use engine_streams::*;
pub use routing::*;
pub use supervision::*;

pub use crate::links::{DuplicateRecorded, LinkedToOriginal};
pub use crate::media::MediaAttached;
pub use crate::moderation::PublicTextModerated;
pub use crate::participants::{
    AssistanceAbsenceRecorded, AssistanceReturned, AssistanceSignedFor, RequestAssigned,
};
pub use crate::upward::{ReportedUpward, UpwardAcknowledged, UpwardFeedbackReceived};

/// A request came in from a channel (schema version 2; see [`crate::upcast`] for v1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestReceived {
    /// Intake channel.
    pub channel: Channel,
    /// Upstream ticket id.
    pub external_id: String,
    /// Reference to the encrypted contact record; `None` when anonymous.
    pub contact_ref: Option<ContactRef>,
    /// Never contacted by handling units.
    pub anonymous: bool,
    /// Contact masked from the unit complained about.
    pub confidential: bool,
    /// The resident asked for no reply / callback.
    pub no_reply_requested: bool,
    /// Location in the grid tree.
    pub location: GridPath,
    /// The point and address line sent with the request, when any (absent in logs that
    /// predate places).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<crate::Place>,
    /// The resident's words.
    pub text: String,
    /// Attachments by reference.
    pub attachments: Vec<AttachmentRef>,
    /// Priority lanes.
    pub priority_lanes: Vec<PriorityLane>,
    /// Service flow or dispute mediation.
    pub kind: RequestKind,
    /// When the resident raised it.
    pub raised_at: Timestamp,
    /// Accept-and-respond deadline from the policy (e.g. 24 h after receipt).
    pub accept_due_at: Timestamp,
    /// The catalogue item the resident reported under, when intake named one (Open311's
    /// `service_code`, the native document's `service_code`); classification still decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_code: Option<String>,
    /// The answers to that item's typed questions, as validated (`answers` of the intake).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub answers: BTreeMap<String, serde_json::Value>,
}

/// The first-contact worker accepted the request and owns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestAccepted {
    /// The owner (首问责任人): the accepting actor's id.
    pub owner: String,
    /// Accepted before `accept_due_at`.
    pub within_limit: bool,
    /// Note.
    pub note: Option<String>,
}

/// The request was not accepted (不予受理 / transferred / linked as duplicate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestDeclined {
    /// Disposition code.
    pub disposition: Disposition,
    /// Explanation sent to the resident.
    pub explanation: String,
    /// Emergency line, for transfers.
    pub emergency_line: Option<EmergencyLine>,
    /// Channel named, for legal-route matters.
    pub legal_channel: Option<String>,
    /// Original request, for duplicates.
    pub duplicate_of: Option<RequestId>,
}

/// Registered and classified; deadlines stamped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestClassified {
    /// Catalogue item id.
    pub catalogue_item: String,
    /// The item's category (e.g. `social_security`).
    pub category: String,
    /// Statutory request type.
    pub request_type: RequestType,
    /// Urgency tier applied.
    pub urgency: Urgency,
    /// The item's handling mode.
    pub handling_mode: HandlingMode,
    /// Responsible departments from the catalogue.
    pub departments: Vec<String>,
    /// Escalation chain from the catalogue (units, in order).
    pub escalation_chain: Vec<String>,
    /// The stamped deadlines.
    pub deadlines: Deadlines,
    /// The catalogue item (in the catalogue version of `deadlines.catalogue_version`) keeps
    /// ratings out of the satisfaction rate. Absent (false) in events written before the flag.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub excluded_from_satisfaction: bool,
    /// True when this replaces an earlier classification.
    pub reclassified: bool,
    /// Why (present when reclassified).
    pub reason: Option<String>,
    /// The units routing proposes for a referral. Absent in events written before routing
    /// rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<RoutingProposal>,
}

/// The station started handling the request itself (for a dispute: mediation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectHandlingStarted {
    /// Note.
    pub note: Option<String>,
}

/// The station started proxy-handling (代办) with a department.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyHandlingStarted {
    /// The department.
    pub department: String,
    /// Note.
    pub note: Option<String>,
}

/// Referred (转办) to a lead department with assisting departments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferredToDepartment {
    /// Lead department (主办).
    pub lead_department: String,
    /// Assisting departments (协办).
    pub assisting_departments: Vec<String>,
    /// Instructions.
    pub note: Option<String>,
    /// Sign-off due.
    pub sign_off_due_at: Timestamp,
    /// Returns (退单) are accepted only before this instant.
    pub return_window_ends_at: Timestamp,
    /// 1 for the first referral, 2+ for re-routes and redispatches.
    pub referral_number: u32,
    /// The sign-off or return-window instant was counted through days the loaded calendar
    /// does not cover (informational: these windows are not re-stamped). Absent (false) in
    /// events written before the mark.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provisional: bool,
    /// Each assisting department's part (sign-off and report) is due by then, from the
    /// policy's `assistance.report` limit. Absent when there are no assisting departments
    /// and in events written before assisting deadlines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistance_due_at: Option<Timestamp>,
    /// The proposal the units follow or override. Absent in events written before routing
    /// rules and when the request's classification proposed nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<RoutingDecision>,
}

/// The lead department signed for the referral.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralSignedFor {
    /// The department.
    pub department: String,
    /// Note.
    pub note: Option<String>,
}

/// The lead department returned the referral (退单).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralReturned {
    /// The department.
    pub department: String,
    /// Why.
    pub reason: String,
    /// Legal basis.
    pub legal_basis: Option<String>,
}

/// The centre rejected a return; the department keeps the request and cannot return it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnRejected {
    /// The department that keeps it.
    pub department: String,
    /// Why.
    pub reason: String,
}

/// The handling unit contacted the resident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResidentContacted {
    /// How.
    pub method: String,
    /// Note.
    pub note: Option<String>,
    /// Within the response deadline.
    pub within_limit: bool,
}

/// Handling started (办理中) at the handling unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandlingStarted {
    /// Note.
    pub note: Option<String>,
}

/// A progress note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgressNoted {
    /// The note.
    pub note: String,
}

/// An assisting department reported its part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssistanceReported {
    /// The department.
    pub department: String,
    /// What it did.
    pub note: String,
}

/// An extension was requested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionRequested {
    /// Why.
    pub reason: String,
    /// Requested working days.
    pub working_days: u32,
}

/// An extension was granted; the completion deadline moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionGranted {
    /// Deadline before.
    pub previous_due_at: Timestamp,
    /// Deadline now.
    pub new_due_at: Timestamp,
    /// New reminder instant.
    pub remind_at: Timestamp,
    /// New warning instant.
    pub warn_at: Timestamp,
    /// Note.
    pub note: Option<String>,
}

/// An extension was denied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionDenied {
    /// Why.
    pub reason: String,
}

/// The completion clock was paused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockPaused {
    /// Why.
    pub reason: String,
}

/// The completion clock resumed; the deadline moved by the paused time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockResumed {
    /// Seconds the clock stood still.
    pub paused_seconds: i64,
    /// New completion deadline.
    pub new_due_at: Timestamp,
    /// New reminder instant.
    pub remind_at: Timestamp,
    /// New warning instant.
    pub warn_at: Timestamp,
}

/// Termination was requested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminationRequested {
    /// Why.
    pub reason: String,
}

/// Termination was approved (followed by a `result_replied` with outcome `terminated`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminationApproved {
    /// Why.
    pub reason: String,
}

/// Termination was denied; handling continues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminationDenied {
    /// Why.
    pub reason: String,
}

/// The result was replied to the resident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultReplied {
    /// Outcome code.
    pub outcome: ReplyOutcome,
    /// What the resident was told.
    pub content: String,
    /// Plan, for "cannot solve now".
    pub plan: Option<String>,
    /// Replied at or before the completion deadline in force.
    pub on_time: bool,
}

/// The centre reviewed the reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyReviewed {
    /// Passed.
    pub approved: bool,
    /// Why.
    pub reason: Option<String>,
}

/// A callback attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackAttempted {
    /// Reached the resident.
    pub reached: bool,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Note.
    pub note: Option<String>,
    /// What came of the attempt. Absent in events written before outcome codes (read
    /// `reached` then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<crate::CallbackOutcome>,
    /// Seconds from the reply in force to this attempt. Absent in older events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_reply_seconds: Option<i64>,
    /// The attempt was made within the policy's callback limit after the reply (stamped at
    /// decision time). Absent in older events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_limit: Option<bool>,
}

/// The resident rated the handling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rated {
    /// Satisfaction.
    pub satisfaction: Satisfaction,
    /// Resolution.
    pub resolution: Resolution,
    /// Comment.
    pub comment: Option<String>,
}

/// Reopened for re-handling (重办).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reopened {
    /// Why.
    pub reason: String,
    /// How many times this request has now been reopened.
    pub reopen_count: u32,
}

/// Archived (归档).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Archived {
    /// Note.
    pub note: Option<String>,
}

/// An earlier event was neutralised (corrections, never deletions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventCorrected {
    /// The event neutralised.
    pub event_id: Uuid,
    /// Its type.
    pub corrected_type: EventKind,
    /// Why.
    pub reason: String,
}

/// The resident's contact data was corrected in the contact store. Carries no personal data
/// (the log is never erased): only the reason; who corrected is the envelope's actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactCorrected {
    /// Why.
    pub reason: String,
}

macro_rules! events {
    ($( $variant:ident => $name:literal ),* $(,)?) => {
        /// Every event type, tagged by `type` with its fields under `data`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(tag = "type", content = "data", rename_all = "snake_case")]
        pub enum Event {
            $( #[doc = concat!("See [`", stringify!($variant), "`].")] $variant($variant), )*
        }

        /// The type of an event, without its data.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum EventKind {
            $( #[doc = concat!("See [`", stringify!($variant), "`].")] $variant, )*
        }

        impl EventKind {
            /// Every event kind, in declaration order.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant),*];

            /// The wire name (`type` tag).
            pub fn as_str(self) -> &'static str {
                match self { $(EventKind::$variant => $name,)* }
            }

            /// Parses a wire name.
            pub fn parse(s: &str) -> Option<EventKind> {
                match s { $($name => Some(EventKind::$variant),)* _ => None }
            }
        }

        impl Event {
            /// This event's kind.
            pub fn kind(&self) -> EventKind {
                match self { $(Event::$variant(_) => EventKind::$variant,)* }
            }
        }
    };
}

events! {
    RequestReceived => "request_received",
    RequestAccepted => "request_accepted",
    RequestDeclined => "request_declined",
    RequestClassified => "request_classified",
    DirectHandlingStarted => "direct_handling_started",
    ProxyHandlingStarted => "proxy_handling_started",
    ReferredToDepartment => "referred_to_department",
    ReferralSignedFor => "referral_signed_for",
    ReferralReturned => "referral_returned",
    ReturnRejected => "return_rejected",
    ResidentContacted => "resident_contacted",
    HandlingStarted => "handling_started",
    ProgressNoted => "progress_noted",
    AssistanceReported => "assistance_reported",
    ExtensionRequested => "extension_requested",
    ExtensionGranted => "extension_granted",
    ExtensionDenied => "extension_denied",
    ClockPaused => "clock_paused",
    ClockResumed => "clock_resumed",
    TerminationRequested => "termination_requested",
    TerminationApproved => "termination_approved",
    TerminationDenied => "termination_denied",
    ReportedUpward => "reported_upward",
    UpwardFeedbackReceived => "upward_feedback_received",
    UpwardAcknowledged => "upward_acknowledged",
    ResultReplied => "result_replied",
    ReplyReviewed => "reply_reviewed",
    CallbackAttempted => "callback_attempted",
    Rated => "rated",
    Reopened => "reopened",
    Archived => "archived",
    ReminderSent => "reminder_sent",
    PreBreachWarned => "pre_breach_warned",
    DeadlineMissed => "deadline_missed",
    Escalated => "escalated",
    WhistleBlown => "whistle_blown",
    DepartmentReported => "department_reported",
    DepartmentReleased => "department_released",
    DepartmentRated => "department_rated",
    RatingAppealed => "rating_appealed",
    AppealDecided => "appeal_decided",
    EventCorrected => "event_corrected",
    ContactCorrected => "contact_corrected",
    DeadlinesRestamped => "deadlines_restamped",
    ReferenceDataRecorded => "reference_data_recorded",
    DailyDigestRecorded => "daily_digest_recorded",
    RateReportPublished => "rate_report_published",
    RateReportFeedbackRecorded => "rate_report_feedback_recorded",
    RequestAssigned => "request_assigned",
    AssistanceSignedFor => "assistance_signed_for",
    AssistanceReturned => "assistance_returned",
    AssistanceAbsenceRecorded => "assistance_absence_recorded",
    PublicTextModerated => "public_text_moderated",
    MediaAttached => "media_attached",
    LinkedToOriginal => "linked_to_original",
    DuplicateRecorded => "duplicate_recorded",
}

impl EventKind {
    /// Whether events of this kind belong to a resident request (as opposed to the engine's
    /// own reference-data, digest and rate-report streams, which projections of requests skip).
    pub fn is_request_event(self) -> bool {
        !matches!(
            self,
            EventKind::ReferenceDataRecorded
                | EventKind::DailyDigestRecorded
                | EventKind::RateReportPublished
                | EventKind::RateReportFeedbackRecorded
        )
    }

    /// The schema version this code writes for the event type. Older versions are upcast
    /// on read ([`crate::upcast`]); a published version is never edited.
    pub fn current_version(self) -> u32 {
        match self {
            EventKind::RequestReceived => 2,
            _ => 1,
        }
    }
}
