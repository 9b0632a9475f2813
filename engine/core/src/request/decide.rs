//! `Request::decide`: every business rule of the request workflow.
//!
//! Checks run in a fixed order so that refusals are predictable: role (`not_permitted`),
//! existence, stage (`wrong_stage`), unit (`not_addressed_to_you`), fields, then the rule
//! itself. Rule numbers refer to HOTLINE_PRACTICE §9.

use schemas::command::{
    Accept, Archive, BlowWhistle, Classify, Decline, Receive, Refer, Reply, RequestExtension,
    ReturnReferral,
};
use schemas::event::*;
use schemas::{
    Command, CommandKind, DeadlineKind, Disposition, Event, FeedbackKind, ReplyOutcome, Resolution,
    Role, Satisfaction, SupervisionLevel, Timestamp,
};
use uuid::Uuid;

use super::authorize::not_addressed;
use super::{AppealState, Firing, Request, Stage};
use crate::context::Context;
use crate::refusal::Refusal;

use Stage::*;

/// Namespace for ids derived from command ids (upward report ids).
const REPORT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6d1f_3c0e_5b7a_4e21_9a44_0c5e_b1a2_7f10);

/// Stages where the handling unit works on the request.
const WORKING: &[Stage] = &[
    DirectHandling,
    ProxyHandling,
    SignedFor,
    Contacted,
    InProgress,
];
/// Accepted and not yet replied.
const BEFORE_REPLY: &[Stage] = &[
    Accepted,
    Classified,
    DirectHandling,
    ProxyHandling,
    Dispatched,
    ReturnRequested,
    SignedFor,
    Contacted,
    InProgress,
    TerminationPending,
];
/// Accepted and not archived (nor declined).
const OPEN: &[Stage] = &[
    Accepted,
    Classified,
    DirectHandling,
    ProxyHandling,
    Dispatched,
    ReturnRequested,
    SignedFor,
    Contacted,
    InProgress,
    TerminationPending,
    Replied,
    AwaitingCallback,
    Rated,
];
/// Classified and not yet replied: a whistle may be blown and answered.
const WHISTLE: &[Stage] = &[
    Classified,
    DirectHandling,
    ProxyHandling,
    Dispatched,
    ReturnRequested,
    SignedFor,
    Contacted,
    InProgress,
    TerminationPending,
];
/// Where a department that reported on a whistle may be rated.
const RATE_DEPARTMENT: &[Stage] = &[
    Classified,
    DirectHandling,
    ProxyHandling,
    Dispatched,
    ReturnRequested,
    SignedFor,
    Contacted,
    InProgress,
    TerminationPending,
    Replied,
    AwaitingCallback,
    Rated,
];
/// Where supervision commands apply.
const SUPERVISED: &[Stage] = &[
    Received,
    Accepted,
    Classified,
    DirectHandling,
    ProxyHandling,
    Dispatched,
    ReturnRequested,
    SignedFor,
    Contacted,
    InProgress,
    TerminationPending,
    Replied,
    AwaitingCallback,
    Rated,
];

/// Whether an upward feedback of this kind answers the report for good.
pub(super) fn feedback_closes(kind: FeedbackKind) -> bool {
    matches!(
        kind,
        FeedbackKind::Decision | FeedbackKind::ReferralBack | FeedbackKind::ClosureApproval
    )
}

fn required(value: &str, field: &'static str) -> Result<(), Refusal> {
    if value.trim().is_empty() {
        Err(Refusal::MissingField { field })
    } else {
        Ok(())
    }
}

fn required_opt(value: &Option<String>, field: &'static str) -> Result<(), Refusal> {
    required(value.as_deref().unwrap_or(""), field)
}

/// The level above `level` (`None` above interview).
pub(crate) fn next_level(level: Option<SupervisionLevel>) -> Option<SupervisionLevel> {
    match level {
        None => Some(SupervisionLevel::Daily),
        Some(SupervisionLevel::Daily) => Some(SupervisionLevel::Listed),
        Some(SupervisionLevel::Listed) => Some(SupervisionLevel::Interview),
        Some(SupervisionLevel::Interview) => None,
    }
}

impl Request {
    /// Every business rule lives here. Returns the facts to record, or why not. Never panics.
    pub fn decide(&self, command: &Command, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        let kind = command.kind();
        // Rights before facts: role and visibility (a station worker's community, a
        // department's referrals, an intake system's submissions) before existence or stage.
        self.admit(ctx.actor, kind)?;
        match command {
            Command::Receive(c) => return self.receive(c, ctx),
            _ if !self.exists() => return Err(Refusal::DoesNotExist),
            _ => {}
        }
        if self.stage == Archived && kind != CommandKind::Correct {
            return Err(self.wrong_stage(kind));
        }
        match command {
            Command::Receive(_) => unreachable_receive(),
            Command::Accept(c) => self.accept(c, ctx),
            Command::Decline(c) => self.decline(c),
            Command::Classify(c) => self.classify(c, ctx),
            Command::HandleDirectly(c) => {
                self.stage_in(kind, &[Classified])?;
                Ok(vec![Event::DirectHandlingStarted(DirectHandlingStarted {
                    note: c.note.clone(),
                })])
            }
            Command::StartProxy(c) => {
                self.stage_in(kind, &[Classified])?;
                required(&c.department, "department")?;
                if !ctx.policy.knows_department(&c.department) {
                    return Err(Refusal::UnknownReference {
                        field: "department",
                        value: c.department.clone(),
                    });
                }
                Ok(vec![Event::ProxyHandlingStarted(ProxyHandlingStarted {
                    department: c.department.clone(),
                    note: c.note.clone(),
                })])
            }
            Command::Refer(c) => self.refer(c, ctx),
            Command::SignFor(c) => {
                self.stage_in(kind, &[Dispatched])?;
                self.check_lead(ctx.actor, kind)?;
                Ok(vec![Event::ReferralSignedFor(ReferralSignedFor {
                    department: self.lead_department().unwrap_or_default().to_string(),
                    note: c.note.clone(),
                })])
            }
            Command::ReturnReferral(c) => self.return_referral(c, ctx),
            Command::RejectReturn(c) => {
                self.stage_in(kind, &[ReturnRequested])?;
                required(&c.reason, "reason")?;
                let department = self
                    .referral()
                    .and_then(|r| r.returned_by.clone())
                    .unwrap_or_default();
                Ok(vec![Event::ReturnRejected(ReturnRejected {
                    department,
                    reason: c.reason.clone(),
                })])
            }
            Command::ContactResident(c) => {
                self.stage_in(kind, &[DirectHandling, ProxyHandling, SignedFor])?;
                self.check_handling_unit(ctx.actor, kind)?;
                if self.anonymous() {
                    return Err(Refusal::AnonymousRequest);
                }
                required(&c.method, "method")?;
                let within_limit = self
                    .deadlines
                    .as_ref()
                    .is_none_or(|d| ctx.now <= d.response_due_at);
                Ok(vec![Event::ResidentContacted(ResidentContacted {
                    method: c.method.clone(),
                    note: c.note.clone(),
                    within_limit,
                })])
            }
            Command::StartHandling(c) => {
                self.stage_in(kind, &[DirectHandling, ProxyHandling, SignedFor, Contacted])?;
                self.check_handling_unit(ctx.actor, kind)?;
                if self.stage != Contacted && !self.anonymous() {
                    return Err(Refusal::ContactRequired);
                }
                Ok(vec![Event::HandlingStarted(HandlingStarted {
                    note: c.note.clone(),
                })])
            }
            Command::NoteProgress(c) => {
                self.stage_in(kind, OPEN)?;
                self.check_involved(ctx.actor, kind)?;
                required(&c.note, "note")?;
                Ok(vec![Event::ProgressNoted(ProgressNoted {
                    note: c.note.clone(),
                })])
            }
            Command::ReportAssistance(c) => {
                self.stage_in(
                    kind,
                    &[SignedFor, Contacted, InProgress, TerminationPending],
                )?;
                let unit = ctx.actor.unit.as_deref().unwrap_or_default();
                if !self.assisting_departments().iter().any(|a| a == unit) {
                    return Err(not_addressed(ctx.actor, kind));
                }
                required(&c.note, "note")?;
                Ok(vec![Event::AssistanceReported(AssistanceReported {
                    department: unit.to_string(),
                    note: c.note.clone(),
                })])
            }
            Command::RequestExtension(c) => self.request_extension(c, ctx),
            Command::GrantExtension(c) => {
                self.stage_in(kind, WORKING)?;
                let Some(days) = self.extensions.pending else {
                    return Err(Refusal::NothingPending { what: "extension" });
                };
                let (Some(d), Some(cl)) = (&self.deadlines, &self.classification) else {
                    return Err(Refusal::NothingPending { what: "extension" });
                };
                let new_due_at = ctx.policy.add_working_days(d.completion_due_at, days);
                let schedule =
                    ctx.policy
                        .reschedule(&cl.catalogue_item, cl.first_classified_at, new_due_at);
                Ok(vec![Event::ExtensionGranted(ExtensionGranted {
                    previous_due_at: d.completion_due_at,
                    new_due_at,
                    remind_at: schedule.remind_at,
                    warn_at: schedule.warn_at,
                    note: c.note.clone(),
                })])
            }
            Command::DenyExtension(c) => {
                self.stage_in(kind, WORKING)?;
                if self.extensions.pending.is_none() {
                    return Err(Refusal::NothingPending { what: "extension" });
                }
                required(&c.reason, "reason")?;
                Ok(vec![Event::ExtensionDenied(ExtensionDenied {
                    reason: c.reason.clone(),
                })])
            }
            Command::PauseClock(c) => {
                self.stage_in(kind, WORKING)?;
                self.check_handling_unit(ctx.actor, kind)?;
                if self.paused_since.is_some() {
                    return Err(Refusal::AlreadyPending {
                        what: "clock_pause",
                    });
                }
                required(&c.reason, "reason")?;
                Ok(vec![Event::ClockPaused(ClockPaused {
                    reason: c.reason.clone(),
                })])
            }
            Command::ResumeClock(_) => self.resume_clock(ctx),
            Command::RequestTermination(c) => {
                self.stage_in(kind, WORKING)?;
                self.check_handling_unit(ctx.actor, kind)?;
                required(&c.reason, "reason")?;
                Ok(vec![Event::TerminationRequested(TerminationRequested {
                    reason: c.reason.clone(),
                })])
            }
            Command::DecideTermination(c) => {
                self.stage_in(kind, &[TerminationPending])?;
                required(&c.reason, "reason")?;
                if c.approved {
                    Ok(vec![
                        Event::TerminationApproved(TerminationApproved {
                            reason: c.reason.clone(),
                        }),
                        Event::ResultReplied(ResultReplied {
                            outcome: ReplyOutcome::Terminated,
                            content: c.reason.clone(),
                            plan: None,
                            on_time: self.on_time(ctx.now),
                        }),
                    ])
                } else {
                    Ok(vec![Event::TerminationDenied(TerminationDenied {
                        reason: c.reason.clone(),
                    })])
                }
            }
            Command::ReportUpward(c) => {
                self.stage_in(kind, BEFORE_REPLY)?;
                self.check_involved(ctx.actor, kind)?;
                required(&c.summary, "summary")?;
                let report_id = Uuid::new_v5(&REPORT_ID_NAMESPACE, ctx.command_id.as_bytes());
                if self.upward.iter().any(|r| r.report_id == report_id) {
                    return Err(Refusal::AlreadyRecorded {
                        what: "upward_report",
                    });
                }
                Ok(vec![Event::ReportedUpward(ReportedUpward {
                    report_id,
                    level: c.level,
                    summary: c.summary.clone(),
                    attachments: c.attachments.clone(),
                })])
            }
            Command::RecordUpwardFeedback(c) => {
                self.stage_in(kind, OPEN)?;
                let Some(report) = self.upward.iter().find(|r| r.report_id == c.report_id) else {
                    return Err(Refusal::UnknownReference {
                        field: "report_id",
                        value: c.report_id.to_string(),
                    });
                };
                if !report.open {
                    return Err(Refusal::AlreadyRecorded {
                        what: "final_upward_feedback",
                    });
                }
                required(&c.content, "content")?;
                if c.kind == FeedbackKind::ReferralBack {
                    required_opt(&c.department, "department")?;
                }
                if let Some(d) = &c.department
                    && !ctx.policy.knows_department(d)
                {
                    return Err(Refusal::UnknownReference {
                        field: "department",
                        value: d.clone(),
                    });
                }
                Ok(vec![Event::UpwardFeedbackReceived(
                    UpwardFeedbackReceived {
                        report_id: c.report_id,
                        level: report.level,
                        kind: c.kind,
                        content: c.content.clone(),
                        department: c.department.clone(),
                    },
                )])
            }
            Command::AcknowledgeUpward(c) => {
                self.stage_in(kind, OPEN)?;
                let Some(report) = self.upward.iter().find(|r| r.report_id == c.report_id) else {
                    return Err(Refusal::UnknownReference {
                        field: "report_id",
                        value: c.report_id.to_string(),
                    });
                };
                if report.acknowledged {
                    return Err(Refusal::AlreadyRecorded {
                        what: "upward_acknowledgement",
                    });
                }
                Ok(vec![Event::UpwardAcknowledged(UpwardAcknowledged {
                    report_id: c.report_id,
                })])
            }
            Command::Reply(c) => self.decide_reply(c, ctx),
            Command::ReviewReply(c) => {
                self.stage_in(kind, &[Replied])?;
                if c.approved {
                    return Ok(vec![Event::ReplyReviewed(ReplyReviewed {
                        approved: true,
                        reason: c.reason.clone(),
                    })]);
                }
                required_opt(&c.reason, "reason")?;
                let reason = c.reason.clone().unwrap_or_default();
                Ok(vec![
                    Event::ReplyReviewed(ReplyReviewed {
                        approved: false,
                        reason: Some(reason.clone()),
                    }),
                    Event::Reopened(Reopened {
                        reason,
                        reopen_count: self.reopen_count + 1,
                    }),
                ])
            }
            Command::RecordCallback(c) => {
                self.stage_in(kind, &[AwaitingCallback])?;
                Ok(vec![Event::CallbackAttempted(CallbackAttempted {
                    reached: c.reached,
                    attempt: self.callback_attempts + 1,
                    note: c.note.clone(),
                })])
            }
            Command::Rate(c) => {
                let re_rating =
                    self.stage == Rated && self.rating.as_ref().is_some_and(|r| r.corrected);
                if !re_rating {
                    self.stage_in(kind, &[AwaitingCallback])?;
                }
                Ok(vec![Event::Rated(schemas::event::Rated {
                    satisfaction: c.satisfaction,
                    resolution: c.resolution,
                    comment: c.comment.clone(),
                })])
            }
            Command::Reopen(c) => {
                self.stage_in(kind, &[Rated])?;
                let allows = self.rating.as_ref().is_some_and(|r| {
                    r.counts()
                        && (r.satisfaction == Satisfaction::Dissatisfied
                            || r.resolution == Resolution::Unresolved)
                });
                if !allows {
                    return Err(Refusal::RatingDoesNotAllowReopen);
                }
                required(&c.reason, "reason")?;
                let max = ctx.policy.limits().max_reopens;
                if self.reopen_count >= max {
                    return Err(Refusal::LimitReached {
                        limit: "max_reopens",
                        max,
                    });
                }
                Ok(vec![Event::Reopened(Reopened {
                    reason: c.reason.clone(),
                    reopen_count: self.reopen_count + 1,
                })])
            }
            Command::Archive(c) => self.archive(c, ctx),
            Command::Remind(c) => self.supervise(kind, Firing::Remind, c.deadline, c.due_at, ctx),
            Command::Warn(c) => self.supervise(kind, Firing::Warn, c.deadline, c.due_at, ctx),
            Command::MarkOverdue(c) => {
                self.supervise(kind, Firing::Overdue, c.deadline, c.due_at, ctx)
            }
            Command::Escalate(c) => {
                self.stage_in(kind, SUPERVISED)?;
                if self.supervision.level.is_some_and(|l| c.level <= l) {
                    return Err(Refusal::NotAnEscalation {
                        current: self.supervision.level,
                        requested: c.level,
                    });
                }
                required(&c.to, "to")?;
                required(&c.reason, "reason")?;
                Ok(vec![Event::Escalated(Escalated {
                    level: c.level,
                    to: c.to.clone(),
                    reason: c.reason.clone(),
                })])
            }
            Command::BlowWhistle(c) => self.blow_whistle(c, ctx),
            Command::ReportToWhistle(c) => {
                self.stage_in(kind, WHISTLE)?;
                if ctx.actor.unit.as_deref() != Some(c.department.as_str()) {
                    return Err(not_addressed(ctx.actor, kind));
                }
                let whistle = self
                    .whistle()
                    .ok_or(Refusal::NothingPending { what: "whistle" })?;
                let summoned = whistle
                    .departments
                    .get(&c.department)
                    .ok_or_else(|| not_addressed(ctx.actor, kind))?;
                if !summoned.awaited() {
                    return Err(Refusal::AlreadyRecorded {
                        what: "whistle_report",
                    });
                }
                required(&c.note, "note")?;
                Ok(vec![Event::DepartmentReported(DepartmentReported {
                    department: c.department.clone(),
                    note: c.note.clone(),
                    on_time: ctx.now <= whistle.report_due_at,
                })])
            }
            Command::ReleaseFromWhistle(c) => {
                self.stage_in(kind, WHISTLE)?;
                let whistle = self
                    .whistle()
                    .ok_or(Refusal::NothingPending { what: "whistle" })?;
                let summoned = whistle.departments.get(&c.department).ok_or_else(|| {
                    Refusal::UnknownReference {
                        field: "department",
                        value: c.department.clone(),
                    }
                })?;
                if !summoned.awaited() {
                    return Err(Refusal::AlreadyRecorded {
                        what: "whistle_report",
                    });
                }
                required(&c.reason, "reason")?;
                Ok(vec![Event::DepartmentReleased(DepartmentReleased {
                    department: c.department.clone(),
                    reason: c.reason.clone(),
                })])
            }
            Command::RateDepartment(c) => {
                self.stage_in(kind, RATE_DEPARTMENT)?;
                self.check_community(ctx.actor, kind)?;
                let whistle = self
                    .whistle()
                    .ok_or(Refusal::NothingPending { what: "whistle" })?;
                let summoned = whistle.departments.get(&c.department).ok_or_else(|| {
                    Refusal::UnknownReference {
                        field: "department",
                        value: c.department.clone(),
                    }
                })?;
                if summoned.reported.is_none() {
                    return Err(Refusal::InvalidField {
                        field: "department",
                        reason: "has not reported",
                    });
                }
                if !(1..=5).contains(&c.score) {
                    return Err(Refusal::InvalidField {
                        field: "score",
                        reason: "must be 1 to 5",
                    });
                }
                if summoned.rating_event.is_some() {
                    return Err(Refusal::AlreadyRecorded {
                        what: "department_rating",
                    });
                }
                Ok(vec![Event::DepartmentRated(DepartmentRated {
                    department: c.department.clone(),
                    score: c.score,
                    comment: c.comment.clone(),
                })])
            }
            Command::AppealRating(c) => {
                self.stage_in(kind, &[Rated])?;
                self.check_lead(ctx.actor, kind)?;
                let Some(rating) = self.rating.as_ref().filter(|r| !r.corrected) else {
                    return Err(Refusal::NothingPending { what: "rating" });
                };
                if rating.appeal.is_some() {
                    return Err(Refusal::AlreadyRecorded { what: "appeal" });
                }
                let closes = rating.rated_at
                    + chrono::Duration::hours(i64::from(ctx.policy.limits().appeal_window_hours));
                if ctx.now > closes {
                    return Err(Refusal::WindowClosed {
                        window: "appeal_window",
                        closed_at: closes,
                    });
                }
                required(&c.reason, "reason")?;
                Ok(vec![Event::RatingAppealed(RatingAppealed {
                    department: self.lead_department().unwrap_or_default().to_string(),
                    reason: c.reason.clone(),
                    evidence: c.evidence.clone(),
                })])
            }
            Command::DecideAppeal(c) => {
                self.stage_in(kind, &[Rated])?;
                if self.rating.as_ref().and_then(|r| r.appeal) != Some(AppealState::Pending) {
                    return Err(Refusal::NothingPending { what: "appeal" });
                }
                required(&c.reason, "reason")?;
                Ok(vec![Event::AppealDecided(AppealDecided {
                    upheld: c.upheld,
                    reason: c.reason.clone(),
                })])
            }
            Command::Correct(c) => {
                let Some(applied) = self.history.iter().find(|a| a.event_id == c.event_id) else {
                    return Err(Refusal::UnknownReference {
                        field: "event_id",
                        value: c.event_id.to_string(),
                    });
                };
                use schemas::EventKind as E;
                if !matches!(
                    applied.kind,
                    E::RequestClassified | E::Rated | E::DepartmentRated | E::ProgressNoted
                ) {
                    return Err(Refusal::NotCorrectable { kind: applied.kind });
                }
                if applied.corrected {
                    return Err(Refusal::AlreadyRecorded { what: "correction" });
                }
                required(&c.reason, "reason")?;
                Ok(vec![Event::EventCorrected(EventCorrected {
                    event_id: c.event_id,
                    corrected_type: applied.kind,
                    reason: c.reason.clone(),
                })])
            }
        }
    }

    fn wrong_stage(&self, command: CommandKind) -> Refusal {
        Refusal::WrongStage {
            stage: self.stage,
            command,
        }
    }

    fn stage_in(&self, command: CommandKind, allowed: &[Stage]) -> Result<(), Refusal> {
        if allowed.contains(&self.stage) {
            Ok(())
        } else {
            Err(self.wrong_stage(command))
        }
    }

    /// The completion deadline in force at `now`, counting a running pause as stood-still time.
    fn effective_completion_due(&self, now: Timestamp) -> Option<Timestamp> {
        let due = self.deadlines.as_ref()?.completion_due_at;
        Some(match self.paused_since {
            Some(since) if now > since => due + (now - since),
            _ => due,
        })
    }

    fn on_time(&self, now: Timestamp) -> bool {
        self.effective_completion_due(now)
            .is_none_or(|due| now <= due)
    }

    fn receive(&self, c: &Receive, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        if self.exists() {
            return Err(Refusal::AlreadyExists);
        }
        required(&c.external_id, "external_id")?;
        required(&c.text, "text")?;
        if !c.anonymous && c.contact_ref.is_none() {
            return Err(Refusal::MissingField {
                field: "contact_ref",
            });
        }
        if !ctx.policy.knows_grid(&c.location) {
            let l = &c.location;
            return Err(Refusal::UnknownReference {
                field: "location",
                value: format!("{}/{}/{}", l.street, l.community, l.grid),
            });
        }
        Ok(vec![Event::RequestReceived(RequestReceived {
            channel: c.channel,
            external_id: c.external_id.clone(),
            contact_ref: c.contact_ref.clone(),
            anonymous: c.anonymous,
            confidential: c.confidential,
            no_reply_requested: c.no_reply_requested,
            location: c.location.clone(),
            text: c.text.clone(),
            attachments: c.attachments.clone(),
            priority_lanes: c.priority_lanes.clone(),
            kind: c.kind,
            raised_at: c.raised_at,
            accept_due_at: ctx.policy.accept_due(ctx.now, &c.priority_lanes),
        })])
    }

    fn accept(&self, c: &Accept, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        self.stage_in(CommandKind::Accept, &[Received])?;
        let within_limit = self
            .intake
            .as_ref()
            .is_none_or(|i| ctx.now <= i.accept_due_at);
        Ok(vec![Event::RequestAccepted(RequestAccepted {
            owner: ctx.actor.id.clone(),
            within_limit,
            note: c.note.clone(),
        })])
    }

    fn decline(&self, c: &Decline) -> Result<Vec<Event>, Refusal> {
        self.stage_in(CommandKind::Decline, &[Received])?;
        required(&c.explanation, "explanation")?;
        match c.disposition {
            Disposition::EmergencyTransfer if c.emergency_line.is_none() => {
                return Err(Refusal::MissingField {
                    field: "emergency_line",
                });
            }
            Disposition::LegalChannel => required_opt(&c.legal_channel, "legal_channel")?,
            Disposition::DuplicateNoNewFacts => match c.duplicate_of {
                None => {
                    return Err(Refusal::MissingField {
                        field: "duplicate_of",
                    });
                }
                Some(original) if original == self.id => {
                    return Err(Refusal::InvalidField {
                        field: "duplicate_of",
                        reason: "names this request",
                    });
                }
                Some(_) => {}
            },
            _ => {}
        }
        Ok(vec![Event::RequestDeclined(RequestDeclined {
            disposition: c.disposition,
            explanation: c.explanation.clone(),
            emergency_line: c.emergency_line,
            legal_channel: c.legal_channel.clone(),
            duplicate_of: c.duplicate_of,
        })])
    }

    fn classify(&self, c: &Classify, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        self.stage_in(CommandKind::Classify, BEFORE_REPLY)?;
        let reclassified = self.classification.is_some();
        if reclassified {
            required_opt(&c.reason, "reason")?;
        }
        required(&c.catalogue_item, "catalogue_item")?;
        // The profile says when limits run from: receipt, or the classification that
        // dispatches the request (the next working day is the policy's own anchor). A
        // reclassification keeps the clock's original start: it changes the limits, it
        // does not restart the count.
        let start = match (ctx.policy.clock_start(), self.intake.as_ref()) {
            (crate::policy::ClockStart::OnReceipt, Some(intake)) => intake.received_at,
            _ => self
                .classification
                .as_ref()
                .map(|cl| cl.first_classified_at)
                .unwrap_or(ctx.now),
        };
        let lanes = self
            .intake
            .as_ref()
            .map(|i| i.priority_lanes.as_slice())
            .unwrap_or(&[]);
        let cl = ctx
            .policy
            .classify(&c.catalogue_item, c.urgency, lanes, start)
            .map_err(|_| Refusal::UnknownReference {
                field: "catalogue_item",
                value: c.catalogue_item.clone(),
            })?;
        Ok(vec![Event::RequestClassified(RequestClassified {
            catalogue_item: c.catalogue_item.clone(),
            category: cl.category,
            request_type: c.request_type,
            urgency: cl.urgency,
            handling_mode: cl.handling_mode,
            departments: cl.departments,
            escalation_chain: cl.escalation_chain,
            deadlines: cl.deadlines,
            reclassified,
            reason: c.reason.clone(),
        })])
    }

    fn refer(&self, c: &Refer, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::Refer;
        self.stage_in(kind, &[Classified, Dispatched, ReturnRequested])?;
        if self.stage == Dispatched && ctx.actor.role != Role::Supervisor {
            // Redispatch of a live referral is the centre's decision only.
            return Err(Refusal::NotPermitted {
                role: ctx.actor.role,
                command: kind,
            });
        }
        required(&c.lead_department, "lead_department")?;
        if !ctx.policy.knows_department(&c.lead_department) {
            return Err(Refusal::UnknownReference {
                field: "lead_department",
                value: c.lead_department.clone(),
            });
        }
        for (i, a) in c.assisting_departments.iter().enumerate() {
            if !ctx.policy.knows_department(a) {
                return Err(Refusal::UnknownReference {
                    field: "assisting_departments",
                    value: a.clone(),
                });
            }
            if *a == c.lead_department {
                return Err(Refusal::InvalidField {
                    field: "assisting_departments",
                    reason: "names the lead department",
                });
            }
            if c.assisting_departments[..i].contains(a) {
                return Err(Refusal::InvalidField {
                    field: "assisting_departments",
                    reason: "names a department twice",
                });
            }
        }
        if let Some(r) = self.referral()
            && r.returned_by.as_deref() == Some(c.lead_department.as_str())
            && self.stage == ReturnRequested
        {
            return Err(Refusal::InvalidField {
                field: "lead_department",
                reason: "is the department that returned the referral",
            });
        }
        let number = self.referral().map(|r| r.number).unwrap_or(0) + 1;
        Ok(vec![Event::ReferredToDepartment(ReferredToDepartment {
            lead_department: c.lead_department.clone(),
            assisting_departments: c.assisting_departments.clone(),
            note: c.note.clone(),
            sign_off_due_at: ctx.policy.sign_off_due(ctx.now),
            return_window_ends_at: ctx.policy.return_window_end(ctx.now),
            referral_number: number,
        })])
    }

    fn return_referral(&self, c: &ReturnReferral, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::ReturnReferral;
        self.stage_in(kind, &[Dispatched, SignedFor])?;
        self.check_lead(ctx.actor, kind)?;
        let Some(r) = self.referral() else {
            return Err(not_addressed(ctx.actor, kind));
        };
        if r.locked {
            return Err(Refusal::ReferralLocked {
                department: r.lead.clone(),
            });
        }
        if ctx.now > r.return_window_ends_at {
            return Err(Refusal::WindowClosed {
                window: "return_window",
                closed_at: r.return_window_ends_at,
            });
        }
        required(&c.reason, "reason")?;
        Ok(vec![Event::ReferralReturned(ReferralReturned {
            department: r.lead.clone(),
            reason: c.reason.clone(),
            legal_basis: c.legal_basis.clone(),
        })])
    }

    fn request_extension(
        &self,
        c: &RequestExtension,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::RequestExtension;
        self.stage_in(kind, WORKING)?;
        self.check_handling_unit(ctx.actor, kind)?;
        if self.extensions.pending.is_some() {
            return Err(Refusal::AlreadyPending { what: "extension" });
        }
        required(&c.reason, "reason")?;
        if let Some(due) = self.effective_completion_due(ctx.now)
            && ctx.now >= due
        {
            return Err(Refusal::WindowClosed {
                window: "completion",
                closed_at: due,
            });
        }
        let limits = ctx.policy.limits();
        if c.working_days == 0 {
            return Err(Refusal::InvalidField {
                field: "working_days",
                reason: "must be at least 1",
            });
        }
        if self.extensions.granted >= limits.max_extensions {
            return Err(Refusal::LimitReached {
                limit: "max_extensions",
                max: limits.max_extensions,
            });
        }
        if c.working_days > limits.max_extension_working_days {
            return Err(Refusal::LimitReached {
                limit: "max_extension_working_days",
                max: limits.max_extension_working_days,
            });
        }
        if self
            .extensions
            .granted_working_days
            .saturating_add(c.working_days)
            > limits.max_extension_total_working_days
        {
            return Err(Refusal::LimitReached {
                limit: "max_extension_total_working_days",
                max: limits.max_extension_total_working_days,
            });
        }
        Ok(vec![Event::ExtensionRequested(ExtensionRequested {
            reason: c.reason.clone(),
            working_days: c.working_days,
        })])
    }

    fn resume_clock(&self, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::ResumeClock;
        self.stage_in(kind, WORKING)?;
        self.check_handling_unit(ctx.actor, kind)?;
        let Some(since) = self.paused_since else {
            return Err(Refusal::NothingPending {
                what: "clock_pause",
            });
        };
        let Some(d) = &self.deadlines else {
            return Err(Refusal::NothingPending {
                what: "clock_pause",
            });
        };
        let paused = if ctx.now > since {
            ctx.now - since
        } else {
            chrono::Duration::zero()
        };
        Ok(vec![Event::ClockResumed(ClockResumed {
            paused_seconds: paused.num_seconds(),
            new_due_at: d.completion_due_at + paused,
            remind_at: d.remind_at + paused,
            warn_at: d.warn_at + paused,
        })])
    }

    fn decide_reply(&self, c: &Reply, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::Reply;
        self.stage_in(kind, &[DirectHandling, ProxyHandling, InProgress])?;
        self.check_handling_unit(ctx.actor, kind)?;
        if c.outcome == ReplyOutcome::Terminated {
            return Err(Refusal::InvalidField {
                field: "outcome",
                reason: "terminated is recorded only by an approved termination",
            });
        }
        required(&c.content, "content")?;
        if c.outcome == ReplyOutcome::ExplainedCannotSolveNow {
            required_opt(&c.plan, "plan")?;
        }
        if let Some(w) = self.whistle() {
            let awaited = w.awaited();
            if !awaited.is_empty() {
                return Err(Refusal::WhistleOutstanding {
                    departments: awaited,
                });
            }
        }
        Ok(vec![Event::ResultReplied(ResultReplied {
            outcome: c.outcome,
            content: c.content.clone(),
            plan: c.plan.clone(),
            on_time: self.on_time(ctx.now),
        })])
    }

    fn archive(&self, c: &Archive, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        self.stage_in(
            CommandKind::Archive,
            &[
                Rated,
                AwaitingCallback,
                NotAccepted,
                TransferredEmergency,
                LinkedDuplicate,
            ],
        )?;
        if self.stage == AwaitingCallback && !self.no_reply_requested() {
            let required = ctx.policy.limits().callback_attempts;
            let unreachable = !self.resident_reached && self.callback_attempts >= required;
            if !unreachable {
                return Err(Refusal::CallbackPending {
                    attempts: self.callback_attempts,
                    required,
                });
            }
        }
        if self.rating.as_ref().and_then(|r| r.appeal) == Some(AppealState::Pending) {
            return Err(Refusal::AlreadyPending { what: "appeal" });
        }
        Ok(vec![Event::Archived(schemas::event::Archived {
            note: c.note.clone(),
        })])
    }

    fn supervise(
        &self,
        kind: CommandKind,
        firing: Firing,
        deadline: DeadlineKind,
        due_at: Timestamp,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        self.stage_in(kind, SUPERVISED)?;
        if self.deadline_in_force(deadline) != Some(due_at) {
            return Err(Refusal::DeadlineNotInForce { deadline, due_at });
        }
        if self.has_fired(firing, deadline, due_at) {
            return Err(Refusal::AlreadyRecorded {
                what: match firing {
                    Firing::Remind => "reminder",
                    Firing::Warn => "warning",
                    Firing::Overdue => "overdue_mark",
                },
            });
        }
        Ok(vec![match firing {
            Firing::Remind => Event::ReminderSent(ReminderSent { deadline, due_at }),
            Firing::Warn => Event::PreBreachWarned(PreBreachWarned { deadline, due_at }),
            Firing::Overdue => {
                if ctx.now < due_at {
                    return Err(Refusal::NotYetDue { deadline, due_at });
                }
                Event::DeadlineMissed(DeadlineMissed { deadline, due_at })
            }
        }])
    }

    fn blow_whistle(&self, c: &BlowWhistle, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::BlowWhistle;
        self.stage_in(kind, WHISTLE)?;
        self.check_community(ctx.actor, kind)?;
        if self.whistle().is_some_and(|w| !w.awaited().is_empty()) {
            return Err(Refusal::AlreadyPending { what: "whistle" });
        }
        if c.departments.is_empty() {
            return Err(Refusal::MissingField {
                field: "departments",
            });
        }
        for (i, d) in c.departments.iter().enumerate() {
            if !ctx.policy.knows_department(d) {
                return Err(Refusal::UnknownReference {
                    field: "departments",
                    value: d.clone(),
                });
            }
            if c.departments[..i].contains(d) {
                return Err(Refusal::InvalidField {
                    field: "departments",
                    reason: "names a department twice",
                });
            }
        }
        required(&c.summary, "summary")?;
        Ok(vec![Event::WhistleBlown(WhistleBlown {
            departments: c.departments.clone(),
            summary: c.summary.clone(),
            report_due_at: ctx.policy.whistle_report_due(ctx.now),
        })])
    }
}

fn unreachable_receive() -> Result<Vec<Event>, Refusal> {
    // `receive` is answered before this match; kept total without panicking.
    Err(Refusal::AlreadyExists)
}
