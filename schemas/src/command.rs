//! Commands: what upstream systems, staff and the engine's own timers ask a request to do.
//!
//! One struct per action; [`Command`] is the closed set, tagged by `action` on the wire
//! (`{"action": "refer", "lead_department": "urban-management", ...}`). Over HTTP the action
//! is the last path segment and the body holds the struct's fields. Unknown fields are refused.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::types::*;

pub use crate::links::{LinkDuplicate, LinkRelation, MergeInto, RecordDuplicate};
pub use crate::media::{AttachMedia, AttachmentPurpose};
pub use crate::moderation::{ModeratePublicText, ModerationAction};
pub use crate::participants::{Assign, Claim, Reassign, ReturnAssistance, SignAssistance};
pub use crate::supervision::{
    AppealRating, BlowWhistle, DecideAppeal, Escalate, MarkOverdue, RateDepartment,
    ReleaseFromWhistle, Remind, ReportToWhistle, RestampDeadlines, Warn,
};
pub use crate::upward::{AcknowledgeUpward, RecordUpwardFeedback, ReportUpward};

/// Record a new request from an intake channel (the engine turns an [`crate::IntakeDocument`]
/// into this after storing the contact data separately).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Receive {
    /// Intake channel.
    pub channel: Channel,
    /// The upstream system's ticket id; with the channel, the idempotency key.
    pub external_id: String,
    /// Reference to the contact record; `None` for anonymous requests.
    #[serde(default)]
    pub contact_ref: Option<ContactRef>,
    /// The resident asked not to be identified to handlers: never contacted by units.
    #[serde(default)]
    pub anonymous: bool,
    /// The resident asked for confidential handling: contact masked from the unit complained about.
    #[serde(default)]
    pub confidential: bool,
    /// The resident asked for no reply / callback.
    #[serde(default)]
    pub no_reply_requested: bool,
    /// Where the matter is located.
    pub location: GridPath,
    /// The point (WGS-84) and address line, when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<Box<crate::Place>>,
    /// The resident's words (free text; no contact data belongs here).
    pub text: String,
    /// Attachments by reference.
    #[serde(default)]
    pub attachments: Vec<AttachmentRef>,
    /// Priority lanes that apply.
    #[serde(default)]
    pub priority_lanes: Vec<PriorityLane>,
    /// Service flow or dispute mediation.
    #[serde(default)]
    pub kind: RequestKind,
    /// When the resident raised it (may precede receipt by the engine).
    pub raised_at: Timestamp,
    /// The catalogue item the resident reports under, when intake knows it; required when
    /// `answers` are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_code: Option<String>,
    /// Answers to the item's typed questions (checked against the catalogue). Boxed to keep
    /// `Command` small: most intakes carry none.
    #[serde(default, skip_serializing_if = "no_answers")]
    pub answers: Box<BTreeMap<String, serde_json::Value>>,
}

fn no_answers(answers: &BTreeMap<String, serde_json::Value>) -> bool {
    answers.is_empty()
}

/// The first-contact worker accepts the request and becomes its owner (首问负责).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Accept {
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
}

/// Do not accept (不予受理), with a disposition code and an explanation to the resident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Decline {
    /// Why.
    pub disposition: Disposition,
    /// The explanation sent to the resident (required, non-empty).
    pub explanation: String,
    /// For `EMERGENCY_TRANSFER`: which line (required there).
    #[serde(default)]
    pub emergency_line: Option<EmergencyLine>,
    /// For `LEGAL_CHANNEL`: the channel the resident should use (required there).
    #[serde(default)]
    pub legal_channel: Option<String>,
    /// For `DUPLICATE_NO_NEW_FACTS`: the original request (required there).
    #[serde(default)]
    pub duplicate_of: Option<RequestId>,
}

/// Register and classify (登记分类): stamps the deadlines from the policy and the catalogue.
/// Also used to reclassify before a reply, which recomputes the deadlines (a reason is required).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Classify {
    /// Catalogue item id (服务事项).
    pub catalogue_item: String,
    /// Statutory request type.
    pub request_type: RequestType,
    /// Urgency tier; defaults to the item's tier.
    #[serde(default)]
    pub urgency: Option<Urgency>,
    /// Why (required when reclassifying).
    #[serde(default)]
    pub reason: Option<String>,
}

/// The station handles the request itself (直接办理; for a dispute: mediates).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct HandleDirectly {
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
}

/// The station proxy-handles a government item for the resident (代办).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartProxy {
    /// The department the station proxy-handles with.
    pub department: String,
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
}

/// Refer (转办) to a lead department with any number of assisting departments.
/// Also re-routes a returned referral, or redispatches one (centre only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Refer {
    /// Lead department (主办).
    pub lead_department: String,
    /// Assisting departments (协办).
    #[serde(default)]
    pub assisting_departments: Vec<String>,
    /// Instructions for the department.
    #[serde(default)]
    pub note: Option<String>,
    /// Why the units differ from the routing rule's proposal (required then).
    #[serde(default)]
    pub override_reason: Option<String>,
}

/// The lead department signs for the referral (签收).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SignFor {
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
}

/// The lead department returns a wrongly routed referral (退单), inside the return window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnReferral {
    /// Why (required).
    pub reason: String,
    /// Legal basis or duty list reference.
    #[serde(default)]
    pub legal_basis: Option<String>,
}

/// The centre rejects a return: the original department keeps the request (首办, locked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectReturn {
    /// Why (required).
    pub reason: String,
}

/// The handling unit contacted the resident (响应).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactResident {
    /// How (phone, sms, visit...).
    pub method: String,
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
}

/// The handling unit starts handling (办理中).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct StartHandling {
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
}

/// A progress note; changes no state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteProgress {
    /// The note (required).
    pub note: String,
}

/// An assisting department reports its part to the lead (协办反馈).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportAssistance {
    /// What was done.
    pub note: String,
}

/// Ask to extend the completion deadline (延期), before it passes, with a reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestExtension {
    /// Why (required).
    pub reason: String,
    /// Requested length in working days.
    pub working_days: u32,
}

/// A supervisor grants the pending extension; the deadline moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct GrantExtension {
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
}

/// A supervisor denies the pending extension; the old deadline stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DenyExtension {
    /// Why (required).
    pub reason: String,
}

/// Pause the completion clock (e.g. waiting on the resident for materials).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseClock {
    /// Why (required).
    pub reason: String,
}

/// Resume a paused clock; the completion deadline moves by the paused time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ResumeClock {
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
}

/// Ask to terminate handling (终止办理) with a written reason; needs approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestTermination {
    /// Why (required).
    pub reason: String,
}

/// A supervisor approves or denies a pending termination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideTermination {
    /// Approved: the request is replied with outcome `terminated`.
    pub approved: bool,
    /// Why (required).
    pub reason: String,
}

/// Reply to the resident with the result (反馈办理结果).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// Outcome code (`terminated` is reserved for approved terminations).
    pub outcome: ReplyOutcome,
    /// What the resident is told (required).
    pub content: String,
    /// For "cannot solve now": the plan and expected date.
    #[serde(default)]
    pub plan: Option<String>,
}

/// The centre reviews a reply before the callback (审核).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewReply {
    /// Passed: go to callback. Failed: reopened to the handling unit.
    pub approved: bool,
    /// Why (required when failed).
    #[serde(default)]
    pub reason: Option<String>,
}

/// One callback attempt (回访). Give `outcome`; `reached` alone (the older form) reads as
/// `reached` or `unreachable`, and when both are given they must agree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordCallback {
    /// What came of the attempt.
    #[serde(default)]
    pub outcome: Option<crate::CallbackOutcome>,
    /// Whether the resident was reached (older form of `outcome`).
    #[serde(default)]
    pub reached: Option<bool>,
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
}

/// The resident's rating (群众评议).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Satisfaction.
    pub satisfaction: Satisfaction,
    /// Resolution as the resident sees it.
    pub resolution: Resolution,
    /// The resident's comment.
    #[serde(default)]
    pub comment: Option<String>,
}

/// Reopen after dissatisfaction (重办); bounded number of times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reopen {
    /// Why (required).
    pub reason: String,
}

/// Archive (归档).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Archive {
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
}

/// Neutralise a wrongly recorded event (corrections, never deletions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Correct {
    /// The event corrected (must belong to this request and be correctable).
    pub event_id: Uuid,
    /// Why (required).
    pub reason: String,
}

/// Correct the resident's contact data (name, phone, …) of a request received with one.
///
/// The new data travels beside the command, never in it: the contact route
/// (`PUT /api/v1/requests/{id}/contact`) hands it to the encrypted contact store, and the
/// recorded [`ContactCorrected`](crate::event::ContactCorrected) event names only the reason
/// and, in its envelope, who corrected. Sent on its own (the generic command routes) it is
/// refused, because there would be nothing to correct with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectContact {
    /// Why (required; no personal data: the log keeps it for good).
    pub reason: String,
}

macro_rules! commands {
    (
        $( $(#[$doc:meta])* $variant:ident($ty:ident) => $name:literal ),* $(,)?
        ;
        $( $(#[$idoc:meta])* $ivariant:ident => $iname:literal ),* $(,)?
    ) => {
        /// Every command of the request workflow, tagged by `action`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(tag = "action", rename_all = "snake_case")]
        pub enum Command {
            $( $(#[$doc])* $variant($ty), )*
        }

        /// The kind of a command, without its data (for tables, metrics and refusals).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum CommandKind {
            $( $(#[$doc])* $variant, )*
            $( $(#[$idoc])* $ivariant, )*
        }

        impl CommandKind {
            /// Every workflow command kind (the ones a [`Command`] can carry), in declaration order.
            pub const ALL: &'static [CommandKind] = &[$(CommandKind::$variant),*];

            /// The engine's internal writers, which record on the engine's own streams
            /// (reference data, digests) and never reach a request's state machine.
            pub const INTERNAL: &'static [CommandKind] = &[$(CommandKind::$ivariant),*];

            /// The wire name (`action` tag, HTTP path segment, NATS subject token).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(CommandKind::$variant => $name,)*
                    $(CommandKind::$ivariant => $iname,)*
                }
            }

            /// Parses a wire name of a workflow command (internal kinds are not accepted
            /// from outside).
            pub fn parse(s: &str) -> Option<CommandKind> {
                match s { $($name => Some(CommandKind::$variant),)* _ => None }
            }

            /// Whether this kind is one of the engine's internal writers.
            pub fn is_internal(self) -> bool {
                Self::INTERNAL.contains(&self)
            }
        }

        impl Command {
            /// This command's kind.
            pub fn kind(&self) -> CommandKind {
                match self { $(Command::$variant(_) => CommandKind::$variant,)* }
            }
        }
    };
}

commands! {
    /// See [`Receive`].
    Receive(Receive) => "receive",
    /// See [`Accept`].
    Accept(Accept) => "accept",
    /// See [`Decline`].
    Decline(Decline) => "decline",
    /// See [`Classify`].
    Classify(Classify) => "classify",
    /// See [`HandleDirectly`].
    HandleDirectly(HandleDirectly) => "handle_directly",
    /// See [`StartProxy`].
    StartProxy(StartProxy) => "start_proxy",
    /// See [`Refer`].
    Refer(Refer) => "refer",
    /// See [`SignFor`].
    SignFor(SignFor) => "sign_for",
    /// See [`ReturnReferral`].
    ReturnReferral(ReturnReferral) => "return_referral",
    /// See [`RejectReturn`].
    RejectReturn(RejectReturn) => "reject_return",
    /// See [`ContactResident`].
    ContactResident(ContactResident) => "contact_resident",
    /// See [`StartHandling`].
    StartHandling(StartHandling) => "start_handling",
    /// See [`NoteProgress`].
    NoteProgress(NoteProgress) => "note_progress",
    /// See [`ReportAssistance`].
    ReportAssistance(ReportAssistance) => "report_assistance",
    /// See [`RequestExtension`].
    RequestExtension(RequestExtension) => "request_extension",
    /// See [`GrantExtension`].
    GrantExtension(GrantExtension) => "grant_extension",
    /// See [`DenyExtension`].
    DenyExtension(DenyExtension) => "deny_extension",
    /// See [`PauseClock`].
    PauseClock(PauseClock) => "pause_clock",
    /// See [`ResumeClock`].
    ResumeClock(ResumeClock) => "resume_clock",
    /// See [`RequestTermination`].
    RequestTermination(RequestTermination) => "request_termination",
    /// See [`DecideTermination`].
    DecideTermination(DecideTermination) => "decide_termination",
    /// See [`ReportUpward`].
    ReportUpward(ReportUpward) => "report_upward",
    /// See [`RecordUpwardFeedback`].
    RecordUpwardFeedback(RecordUpwardFeedback) => "record_upward_feedback",
    /// See [`AcknowledgeUpward`].
    AcknowledgeUpward(AcknowledgeUpward) => "acknowledge_upward",
    /// See [`Reply`].
    Reply(Reply) => "reply",
    /// See [`ReviewReply`].
    ReviewReply(ReviewReply) => "review_reply",
    /// See [`RecordCallback`].
    RecordCallback(RecordCallback) => "record_callback",
    /// See [`Rate`].
    Rate(Rate) => "rate",
    /// See [`Reopen`].
    Reopen(Reopen) => "reopen",
    /// See [`Archive`].
    Archive(Archive) => "archive",
    /// See [`Remind`].
    Remind(Remind) => "remind",
    /// See [`Warn`].
    Warn(Warn) => "warn",
    /// See [`MarkOverdue`].
    MarkOverdue(MarkOverdue) => "mark_overdue",
    /// See [`Escalate`].
    Escalate(Escalate) => "escalate",
    /// See [`BlowWhistle`].
    BlowWhistle(BlowWhistle) => "blow_whistle",
    /// See [`ReportToWhistle`].
    ReportToWhistle(ReportToWhistle) => "report_to_whistle",
    /// See [`ReleaseFromWhistle`].
    ReleaseFromWhistle(ReleaseFromWhistle) => "release_from_whistle",
    /// See [`RateDepartment`].
    RateDepartment(RateDepartment) => "rate_department",
    /// See [`AppealRating`].
    AppealRating(AppealRating) => "appeal_rating",
    /// See [`DecideAppeal`].
    DecideAppeal(DecideAppeal) => "decide_appeal",
    /// See [`Correct`].
    Correct(Correct) => "correct",
    /// See [`CorrectContact`].
    CorrectContact(CorrectContact) => "correct_contact",
    /// See [`RestampDeadlines`].
    RestampDeadlines(RestampDeadlines) => "restamp_deadlines",
    /// See [`Assign`].
    Assign(Assign) => "assign",
    /// See [`Reassign`].
    Reassign(Reassign) => "reassign",
    /// See [`Claim`].
    Claim(Claim) => "claim",
    /// See [`SignAssistance`].
    SignAssistance(SignAssistance) => "sign_assistance",
    /// See [`ReturnAssistance`].
    ReturnAssistance(ReturnAssistance) => "return_assistance",
    /// See [`ModeratePublicText`].
    ModeratePublicText(ModeratePublicText) => "moderate_public_text",
    /// See [`AttachMedia`].
    AttachMedia(AttachMedia) => "attach_media",
    /// See [`LinkDuplicate`].
    LinkDuplicate(LinkDuplicate) => "link_duplicate",
    /// See [`MergeInto`].
    MergeInto(MergeInto) => "merge_into",
    /// See [`RecordDuplicate`].
    RecordDuplicate(RecordDuplicate) => "record_duplicate",
    ;
    /// The engine recorded the reference data in force (catalogue, profile, calendar,
    /// directory, role grants) on the reference-data stream.
    RecordReferenceData => "record_reference_data",
    /// The engine recorded a day's digest on the digest stream.
    RecordDigest => "record_digest",
    /// A rate report (or a revision of it) was published on its report stream.
    PublishRateReport => "publish_rate_report",
    /// The higher level's feedback on a rate report was recorded on its report stream.
    RecordRateReportFeedback => "record_rate_report_feedback",
}

impl Command {
    /// Decodes an HTTP body for `action` (the body holds the command's fields, no tag).
    pub fn from_action_body(
        action: &str,
        body: serde_json::Value,
    ) -> Result<Command, crate::DecodeError> {
        let kind = CommandKind::parse(action).ok_or_else(|| crate::DecodeError::UnknownType {
            type_name: action.to_string(),
        })?;
        let mut object = match body {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null => serde_json::Map::new(),
            _ => {
                return Err(crate::DecodeError::Malformed {
                    field: None,
                    message: "body must be a JSON object".into(),
                });
            }
        };
        if object.contains_key("action") {
            return Err(crate::DecodeError::Malformed {
                field: Some("action".into()),
                message: "the action is given by the path, not the body".into(),
            });
        }
        object.insert(
            "action".into(),
            serde_json::Value::String(kind.as_str().into()),
        );
        serde_json::from_value(serde_json::Value::Object(object))
            .map_err(crate::DecodeError::from_serde)
    }
}
