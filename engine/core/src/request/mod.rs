//! The request aggregate: the state of one resident request (诉求) and its getters.
//!
//! The state is a fold of the request's events ([`Request::apply`], in `apply.rs`, no rules);
//! every business rule lives in [`Request::decide`] (`decide.rs`), with role checks in
//! `authorize.rs`. The stages and transitions are documented in `docs/state-machine.md`.

mod access;
mod apply;
mod authorize;
mod correction;
mod deadlines;
mod decide;
mod links;
mod media;
mod moderation;
mod participants;
mod stage;

use std::collections::{BTreeMap, BTreeSet};

use schemas::event::RoutingProposal;
use schemas::{
    Channel, ContactRef, DeadlineKind, Deadlines, Disposition, EventEnvelope, EventKind, GridPath,
    HandlingMode, PriorityLane, RequestId, RequestKind, RequestType, Resolution, Satisfaction,
    SupervisionLevel, Timestamp, UpwardLevel, Urgency,
};
use uuid::Uuid;

pub use access::{Parties, ReadScope, read_scope};
pub use authorize::roles_for;
pub use decide::MAX_CONTACT_CORRECTION_REASON_CHARS;
pub(crate) use decide::next_level;
pub use links::{Link, Links};
pub use media::{Attachment, is_sha256_hex};
pub use moderation::{
    MAX_MODERATION_REASON_CHARS, MAX_REDACTED_TEXT_CHARS, Moderation, PublicText,
};
pub use participants::{Assignment, AssistingPart, Participants};
pub use stage::Stage;

/// What the resident submitted, as received.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Intake {
    /// Intake channel.
    pub channel: Channel,
    /// Upstream ticket id.
    pub external_id: String,
    /// Contact record reference.
    pub contact_ref: Option<ContactRef>,
    /// Never contacted by handling units.
    pub anonymous: bool,
    /// Contact masked from the unit complained about.
    pub confidential: bool,
    /// No reply / callback wanted.
    pub no_reply_requested: bool,
    /// Location in the grid tree.
    pub location: GridPath,
    /// Priority lanes.
    pub priority_lanes: Vec<PriorityLane>,
    /// Service flow or dispute.
    pub kind: RequestKind,
    /// When the engine received it.
    pub received_at: Timestamp,
    /// Accept-and-respond deadline.
    pub accept_due_at: Timestamp,
}

/// The classification in force.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassificationState {
    /// Catalogue item id.
    pub catalogue_item: String,
    /// Category.
    pub category: String,
    /// Request type.
    pub request_type: RequestType,
    /// Urgency.
    pub urgency: Urgency,
    /// The catalogue's suggested handling mode.
    pub handling_mode: HandlingMode,
    /// Responsible departments from the catalogue.
    pub departments: Vec<String>,
    /// Escalation chain.
    pub escalation_chain: Vec<String>,
    /// When the request was first classified (the completion clock's start).
    pub first_classified_at: Timestamp,
    /// The units routing proposed at this classification (none in events before routing).
    pub routing: Option<RoutingProposal>,
}

/// How the request is being handled.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Handling {
    /// The station handles it (直接办理).
    Direct,
    /// The station proxy-handles it with a department (代办).
    Proxy {
        /// The department.
        department: String,
    },
    /// Referred (转办).
    Referral(Referral),
}

/// The referral in force.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Referral {
    /// Lead department (主办).
    pub lead: String,
    /// Assisting departments (协办).
    pub assisting: Vec<String>,
    /// 1-based referral number.
    pub number: u32,
    /// Sign-off due.
    pub sign_off_due_at: Timestamp,
    /// End of the return window.
    pub return_window_ends_at: Timestamp,
    /// The lead signed for it.
    pub signed: bool,
    /// The department that returned it, while a return is pending.
    pub returned_by: Option<String>,
    /// A return was rejected: the lead keeps it (首办).
    pub locked: bool,
    /// Assisting departments that reported their part.
    pub assistance_reported: BTreeSet<String>,
}

/// Extension bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Extensions {
    /// Working days of the pending request, if any.
    pub pending: Option<u32>,
    /// Extensions granted.
    pub granted: u32,
    /// Working days granted in total.
    pub granted_working_days: u32,
}

/// One upward report (上报).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UpwardReport {
    /// Its id.
    pub report_id: Uuid,
    /// Target level.
    pub level: UpwardLevel,
    /// Still awaiting a decision, referral back or closure approval.
    pub open: bool,
    /// The higher level's system acknowledged receipt.
    pub acknowledged: bool,
}

/// The reply in force.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReplyState {
    /// Outcome.
    pub outcome: schemas::ReplyOutcome,
    /// Replied on time.
    pub on_time: bool,
    /// When.
    pub replied_at: Timestamp,
}

/// State of an appeal against the rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppealState {
    /// Appealed, awaiting a decision.
    Pending,
    /// Decided.
    Decided {
        /// Upheld: the rating is excluded.
        upheld: bool,
    },
}

/// The rating in force.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RatingState {
    /// Satisfaction.
    pub satisfaction: Satisfaction,
    /// Resolution.
    pub resolution: Resolution,
    /// When rated.
    pub rated_at: Timestamp,
    /// The `rated` event.
    pub event_id: Uuid,
    /// Neutralised by a correction.
    pub corrected: bool,
    /// Appeal, if any.
    pub appeal: Option<AppealState>,
}

impl RatingState {
    /// Whether the rating counts for rates (not corrected, no upheld appeal).
    pub fn counts(&self) -> bool {
        !self.corrected && self.appeal != Some(AppealState::Decided { upheld: true })
    }
}

/// A summoned department's status on a whistle.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summoned {
    /// Reported (报到), with on-time flag.
    pub reported: Option<bool>,
    /// Released without a report.
    pub released: bool,
    /// The `department_rated` event, while it stands.
    pub rating_event: Option<Uuid>,
}

impl Summoned {
    /// Neither reported nor released.
    pub fn awaited(&self) -> bool {
        self.reported.is_none() && !self.released
    }
}

/// One whistle (吹哨).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Whistle {
    /// Report due.
    pub report_due_at: Timestamp,
    /// The summoned departments.
    pub departments: BTreeMap<String, Summoned>,
}

impl Whistle {
    /// Departments neither reported nor released.
    pub fn awaited(&self) -> Vec<String> {
        self.departments
            .iter()
            .filter(|(_, s)| s.awaited())
            .map(|(d, _)| d.clone())
            .collect()
    }
}

/// A supervision action that fires once per deadline instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Firing {
    /// Reminder (催办).
    Remind,
    /// Pre-breach warning.
    Warn,
    /// Overdue mark (超期).
    Overdue,
}

/// Supervision bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Supervision {
    /// What already fired, per deadline instant.
    pub fired: BTreeSet<(Firing, DeadlineKind, Timestamp)>,
    /// Current 督办 level.
    pub level: Option<SupervisionLevel>,
    /// When it was last escalated.
    pub escalated_at: Option<Timestamp>,
}

/// One applied event, remembered for corrections.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Applied {
    /// The event id.
    pub event_id: Uuid,
    /// Its kind.
    pub kind: EventKind,
    /// Neutralised by a correction.
    pub corrected: bool,
    /// Applying it changed the stage (what a stage-changing correction must be the last of).
    pub moved_stage: bool,
}

/// The state of one request, folded from its events.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Request {
    id: RequestId,
    version: u64,
    stage: Stage,
    intake: Option<Intake>,
    owner: Option<String>,
    disposition: Option<Disposition>,
    classification: Option<ClassificationState>,
    deadlines: Option<Deadlines>,
    /// An extension or a resumed clock moved the deadlines since the last classification.
    deadlines_moved: bool,
    handling: Option<Handling>,
    contacted: bool,
    extensions: Extensions,
    paused_since: Option<Timestamp>,
    upward: Vec<UpwardReport>,
    reply: Option<ReplyState>,
    callback_attempts: u32,
    resident_reached: bool,
    /// A callback since the last reply reached a resident who refused it.
    callback_refused: bool,
    rating: Option<RatingState>,
    reopen_count: u32,
    supervision: Supervision,
    whistles: Vec<Whistle>,
    progress_notes: u32,
    history: Vec<Applied>,
    /// The assignee and the assisting parts (`participants.rs`).
    participants: Participants,
    /// The public-text moderation in force (`moderation.rs`).
    moderation: Option<Moderation>,
    /// The attached files (`media.rs`).
    attachments: Vec<Attachment>,
    /// The links to other requests, both ways (`links.rs`).
    links: Links,
    /// Who may see the request (`access.rs`); not part of the published state.
    #[serde(skip)]
    parties: Parties,
    /// Every applied envelope, kept so that a correction can fold the history again without
    /// the events it neutralises (`correction.rs`); not part of the published state. Shared,
    /// so that cloning a state (the command cache, audit steps) copies pointers only.
    #[serde(skip)]
    envelopes: Vec<std::sync::Arc<EventEnvelope>>,
}

impl Request {
    /// The state before any event: the request does not exist yet.
    pub fn new(id: RequestId) -> Request {
        Request {
            id,
            version: 0,
            stage: Stage::New,
            intake: None,
            owner: None,
            disposition: None,
            classification: None,
            deadlines: None,
            deadlines_moved: false,
            handling: None,
            contacted: false,
            extensions: Extensions::default(),
            paused_since: None,
            upward: Vec::new(),
            reply: None,
            callback_attempts: 0,
            resident_reached: false,
            callback_refused: false,
            rating: None,
            reopen_count: 0,
            supervision: Supervision::default(),
            whistles: Vec::new(),
            progress_notes: 0,
            history: Vec::new(),
            participants: Participants::default(),
            moderation: None,
            attachments: Vec::new(),
            links: Links::default(),
            parties: Parties::default(),
            envelopes: Vec::new(),
        }
    }

    /// Rebuilds a request from its recorded events, in order.
    pub fn from_history<'a>(
        id: RequestId,
        events: impl IntoIterator<Item = &'a EventEnvelope>,
    ) -> Request {
        let mut request = Request::new(id);
        for envelope in events {
            request.apply(envelope);
        }
        request
    }

    /// The request's id.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// Number of events applied (0: the request does not exist).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The current stage.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Whether anything was recorded.
    pub fn exists(&self) -> bool {
        self.stage != Stage::New
    }

    /// The intake facts (None before `receive`).
    pub fn intake(&self) -> Option<&Intake> {
        self.intake.as_ref()
    }

    /// Intake channel.
    pub fn channel(&self) -> Option<Channel> {
        self.intake.as_ref().map(|i| i.channel)
    }

    /// Service flow or dispute mediation (service before `receive`).
    pub fn kind(&self) -> RequestKind {
        self.intake.as_ref().map(|i| i.kind).unwrap_or_default()
    }

    /// Where the matter is located.
    pub fn location(&self) -> Option<&GridPath> {
        self.intake.as_ref().map(|i| &i.location)
    }

    /// Anonymous: never contacted by handling units.
    pub fn anonymous(&self) -> bool {
        self.intake.as_ref().is_some_and(|i| i.anonymous)
    }

    /// The reference of the resident's record in the contact store (`None`: anonymous, or
    /// received without contact data).
    pub fn contact_ref(&self) -> Option<&ContactRef> {
        self.intake.as_ref().and_then(|i| i.contact_ref.as_ref())
    }

    /// Confidential handling.
    pub fn confidential(&self) -> bool {
        self.intake.as_ref().is_some_and(|i| i.confidential)
    }

    /// The resident asked for no reply or callback.
    pub fn no_reply_requested(&self) -> bool {
        self.intake.as_ref().is_some_and(|i| i.no_reply_requested)
    }

    /// The owner (首问责任人): the accepting actor's id.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// The disposition, when the request was declined.
    pub fn disposition(&self) -> Option<Disposition> {
        self.disposition
    }

    /// The classification in force.
    pub fn classification(&self) -> Option<&ClassificationState> {
        self.classification.as_ref()
    }

    /// The stamped deadlines in force (after extensions and pauses).
    pub fn deadlines(&self) -> Option<&Deadlines> {
        self.deadlines.as_ref()
    }

    /// How the request is handled.
    pub fn handling(&self) -> Option<&Handling> {
        self.handling.as_ref()
    }

    /// The referral in force, if referred.
    pub fn referral(&self) -> Option<&Referral> {
        match &self.handling {
            Some(Handling::Referral(r)) => Some(r),
            _ => None,
        }
    }

    /// The lead department of the referral in force.
    pub fn lead_department(&self) -> Option<&str> {
        self.referral().map(|r| r.lead.as_str())
    }

    /// The assisting departments of the referral in force.
    pub fn assisting_departments(&self) -> &[String] {
        self.referral()
            .map(|r| r.assisting.as_slice())
            .unwrap_or(&[])
    }

    /// Whether the handling unit contacted the resident.
    pub fn contacted(&self) -> bool {
        self.contacted
    }

    /// Extension bookkeeping.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Since when the completion clock is paused, if it is.
    pub fn paused_since(&self) -> Option<Timestamp> {
        self.paused_since
    }

    /// Upward reports.
    pub fn upward_reports(&self) -> &[UpwardReport] {
        &self.upward
    }

    /// The reply in force.
    pub fn reply(&self) -> Option<&ReplyState> {
        self.reply.as_ref()
    }

    /// Callback attempts since the last reply.
    pub fn callback_attempts(&self) -> u32 {
        self.callback_attempts
    }

    /// Whether a callback since the last reply reached the resident.
    pub fn resident_reached(&self) -> bool {
        self.resident_reached
    }

    /// The rating in force.
    pub fn rating(&self) -> Option<&RatingState> {
        self.rating.as_ref()
    }

    /// Times reopened.
    pub fn reopen_count(&self) -> u32 {
        self.reopen_count
    }

    /// Supervision bookkeeping.
    pub fn supervision(&self) -> &Supervision {
        &self.supervision
    }

    /// The current 督办 level.
    pub fn supervision_level(&self) -> Option<SupervisionLevel> {
        self.supervision.level
    }

    /// The latest whistle, if any.
    pub fn whistle(&self) -> Option<&Whistle> {
        self.whistles.last()
    }

    /// Progress notes standing (corrected ones excluded).
    pub fn progress_notes(&self) -> u32 {
        self.progress_notes
    }

    /// Every applied event, in order.
    pub fn history(&self) -> &[Applied] {
        &self.history
    }
}
