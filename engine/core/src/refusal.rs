//! Why a command was refused: one typed reason per rule, each with a stable snake_case code.
//!
//! Refusals are answers, not failures: a refused command records nothing. The codes are part
//! of the wire contract (they reach callers in `ErrorBody.code`) and are listed with their
//! rules in `docs/state-machine.md`.

use schemas::{CommandKind, DeadlineKind, EventKind, Role, SupervisionLevel, Timestamp};

use crate::questions::AnswerError;
use crate::request::Stage;

/// Why `Request::decide` refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `receive` on a request that already exists.
    #[error("the request already exists")]
    AlreadyExists,
    /// Any command but `receive` on a request that does not exist yet.
    #[error("the request does not exist")]
    DoesNotExist,
    /// The command is not allowed in the request's current stage.
    #[error("`{}` is not allowed while the request is {}", command.as_str(), stage.as_str())]
    WrongStage {
        /// The stage the request is in.
        stage: Stage,
        /// The command refused.
        command: CommandKind,
    },
    /// The actor's role may never issue this command.
    #[error("role `{}` may not `{}`", role.as_str(), command.as_str())]
    NotPermitted {
        /// The actor's role.
        role: Role,
        /// The command refused.
        command: CommandKind,
    },
    /// The role may issue the command, but this request is not this actor's unit's to act on.
    #[error("this request is not addressed to unit {unit:?} for `{}`", command.as_str())]
    NotAddressedToYou {
        /// The actor's unit, if it named one.
        unit: Option<String>,
        /// The command refused.
        command: CommandKind,
    },
    /// A required field is absent or blank.
    #[error("`{field}` is required")]
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// A field is present but not acceptable.
    #[error("`{field}` is invalid: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A field names something the reference data or the request does not know.
    #[error("`{field}` names unknown `{value}`")]
    UnknownReference {
        /// The field.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// A time window for this action has closed.
    #[error("the {window} window closed at {closed_at}")]
    WindowClosed {
        /// Which window (`return_window`, `completion`, `appeal_window`).
        window: &'static str,
        /// When it closed.
        closed_at: Timestamp,
    },
    /// A count or length limit of the policy would be exceeded.
    #[error("limit `{limit}` ({max}) reached")]
    LimitReached {
        /// The policy limit's name (a field of `Limits`).
        limit: &'static str,
        /// Its value.
        max: u32,
    },
    /// Anonymous requests are never contacted by handling units (rule 27).
    #[error("the request is anonymous: handling units do not contact the resident")]
    AnonymousRequest,
    /// The request holds no contact data to correct (received anonymously or without one).
    #[error("the request was received without contact data: there is none to correct")]
    NoContact,
    /// Handling must not start before the resident was contacted (rule 13).
    #[error("contact the resident before starting handling")]
    ContactRequired,
    /// The centre rejected a return: the department keeps the request (首办, rule 9).
    #[error("the referral is locked to `{department}`: returns are refused")]
    ReferralLocked {
        /// The department that keeps the request.
        department: String,
    },
    /// Something of this kind is already pending and must be decided first.
    #[error("a {what} is already pending")]
    AlreadyPending {
        /// What is pending (`extension`, `clock_pause`, `appeal`, `whistle`).
        what: &'static str,
    },
    /// The command decides something that is not pending.
    #[error("no {what} is pending")]
    NothingPending {
        /// What is not pending.
        what: &'static str,
    },
    /// This fact was already recorded and is recorded only once.
    #[error("{what} already recorded")]
    AlreadyRecorded {
        /// What (`reminder`, `warning`, `overdue_mark`, `whistle_report`, ...).
        what: &'static str,
    },
    /// A supervision command names a deadline instant that is not the one in force.
    #[error("deadline {deadline:?} due at {due_at} is not in force")]
    DeadlineNotInForce {
        /// The deadline.
        deadline: DeadlineKind,
        /// The instant named.
        due_at: Timestamp,
    },
    /// A deadline cannot be marked missed before it passes.
    #[error("deadline {deadline:?} is not due before {due_at}")]
    NotYetDue {
        /// The deadline.
        deadline: DeadlineKind,
        /// When it falls due.
        due_at: Timestamp,
    },
    /// Supervision only escalates upward.
    #[error("escalation must go above {current:?}, asked for {requested:?}")]
    NotAnEscalation {
        /// The current level.
        current: Option<SupervisionLevel>,
        /// The level asked for.
        requested: SupervisionLevel,
    },
    /// Summoned departments have neither reported nor been released (rule 12).
    #[error("summoned departments have not reported: {departments:?}")]
    WhistleOutstanding {
        /// The departments still awaited.
        departments: Vec<String>,
    },
    /// The policy makes the reply wait for assisting parts (`assistance.at_reply = "wait"`)
    /// and some are neither reported nor returned.
    #[error("assisting departments have not reported: {departments:?}")]
    AssistanceOutstanding {
        /// The assisting departments still awaited.
        departments: Vec<String>,
    },
    /// Archive from callback needs the resident reached, unreachable, or a no-reply request.
    #[error("callback not finished: {attempts} of {required} unanswered attempts")]
    CallbackPending {
        /// Unanswered attempts so far.
        attempts: u32,
        /// Attempts after which the resident counts as unreachable.
        required: u32,
    },
    /// Reopening needs a counted rating that is dissatisfied or unresolved (rule 21).
    #[error("the rating does not allow reopening")]
    RatingDoesNotAllowReopen,
    /// The event cannot be corrected: never for its kind, or no longer (`why` says which).
    #[error("this `{}` event cannot be corrected: {why}", kind.as_str())]
    NotCorrectable {
        /// The event's kind.
        kind: EventKind,
        /// Why not, as a sentence fragment.
        why: &'static str,
    },
    /// The request was merged into another (并案): it follows the original, which is where
    /// the work goes on.
    #[error("the request was merged into {original}: act on the original")]
    MergedInto {
        /// The original request.
        original: schemas::RequestId,
    },
    /// The referral's units differ from a routing rule's proposal and no `override_reason`
    /// says why.
    #[error("routing rule `{rule}` proposes other units: give an override_reason")]
    OverrideReasonRequired {
        /// The proposing rule's id.
        rule: String,
    },
    /// An intake answer does not fit the catalogue item's questions (its code is the
    /// answer error's: `answer_required`, `answer_invalid` or `unknown_question`).
    #[error(transparent)]
    Answer(#[from] AnswerError),
}

impl Refusal {
    /// The stable code (`ErrorBody.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::AlreadyExists => "already_exists",
            Refusal::DoesNotExist => "does_not_exist",
            Refusal::WrongStage { .. } => "wrong_stage",
            Refusal::NotPermitted { .. } => "not_permitted",
            Refusal::NotAddressedToYou { .. } => "not_addressed_to_you",
            Refusal::MissingField { .. } => "missing_field",
            Refusal::InvalidField { .. } => "invalid_field",
            Refusal::UnknownReference { .. } => "unknown_reference",
            Refusal::WindowClosed { .. } => "window_closed",
            Refusal::LimitReached { .. } => "limit_reached",
            Refusal::AnonymousRequest => "anonymous_request",
            Refusal::NoContact => "no_contact",
            Refusal::ContactRequired => "contact_required",
            Refusal::ReferralLocked { .. } => "referral_locked",
            Refusal::AlreadyPending { .. } => "already_pending",
            Refusal::NothingPending { .. } => "nothing_pending",
            Refusal::AlreadyRecorded { .. } => "already_recorded",
            Refusal::DeadlineNotInForce { .. } => "deadline_not_in_force",
            Refusal::NotYetDue { .. } => "not_yet_due",
            Refusal::NotAnEscalation { .. } => "not_an_escalation",
            Refusal::WhistleOutstanding { .. } => "whistle_outstanding",
            Refusal::AssistanceOutstanding { .. } => "assistance_outstanding",
            Refusal::CallbackPending { .. } => "callback_pending",
            Refusal::RatingDoesNotAllowReopen => "rating_does_not_allow_reopen",
            Refusal::NotCorrectable { .. } => "not_correctable",
            Refusal::MergedInto { .. } => "merged_into",
            Refusal::OverrideReasonRequired { .. } => "override_reason_required",
            Refusal::Answer(e) => e.code,
        }
    }

    /// The command field the refusal is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Refusal::MissingField { field }
            | Refusal::InvalidField { field, .. }
            | Refusal::UnknownReference { field, .. } => Some(field),
            Refusal::Answer(e) => Some(&e.field),
            Refusal::OverrideReasonRequired { .. } => Some("override_reason"),
            _ => None,
        }
    }
}
