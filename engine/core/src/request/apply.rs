//! `Request::apply`: folds one recorded event into the state. No rules: events are facts.

use std::collections::BTreeMap;

use schemas::{Disposition, Event, EventEnvelope};

use super::{
    AppealState, Applied, ClassificationState, Firing, Handling, Intake, RatingState, Referral,
    ReplyState, Request, Stage, Summoned, UpwardReport, Whistle,
};

impl Request {
    /// Folds one recorded fact into the state. Never fails; events are trusted facts of this
    /// request, applied in version order.
    pub fn apply(&mut self, envelope: &EventEnvelope) {
        if !envelope.event.kind().is_request_event() {
            // Reference-data and digest events live on their own streams, never a request's.
            return;
        }
        self.envelopes.push(std::sync::Arc::new(envelope.clone()));
        if matches!(envelope.event, Event::EventCorrected(_)) {
            // The state becomes the fold of the history without the neutralised events.
            self.refold();
        } else {
            self.fold(envelope);
        }
    }

    /// Folds one event's effect and records it in the history.
    pub(super) fn fold(&mut self, envelope: &EventEnvelope) {
        let stage_before = self.stage;
        self.parties.apply(envelope);
        self.participants.apply(envelope);
        self.apply_links(envelope);
        match &envelope.event {
            Event::RequestReceived(_)
            | Event::RequestAccepted(_)
            | Event::RequestDeclined(_)
            | Event::RequestClassified(_) => self.fold_registration(envelope),
            Event::DirectHandlingStarted(_)
            | Event::ProxyHandlingStarted(_)
            | Event::ReferredToDepartment(_)
            | Event::ReferralSignedFor(_)
            | Event::ReferralReturned(_)
            | Event::ReturnRejected(_)
            | Event::ResidentContacted(_)
            | Event::HandlingStarted(_)
            | Event::ProgressNoted(_)
            | Event::AssistanceReported(_) => self.fold_handling(envelope),
            Event::ExtensionRequested(_)
            | Event::ExtensionGranted(_)
            | Event::ExtensionDenied(_)
            | Event::ClockPaused(_)
            | Event::ClockResumed(_)
            | Event::TerminationRequested(_)
            | Event::TerminationApproved(_)
            | Event::TerminationDenied(_)
            | Event::DeadlinesRestamped(_) => self.fold_clock(envelope),
            Event::ResultReplied(_)
            | Event::ReplyReviewed(_)
            | Event::CallbackAttempted(_)
            | Event::Rated(_)
            | Event::Reopened(_)
            | Event::Archived(_)
            | Event::RatingAppealed(_)
            | Event::AppealDecided(_) => self.fold_closing(envelope),
            Event::ReportedUpward(_)
            | Event::UpwardFeedbackReceived(_)
            | Event::UpwardAcknowledged(_)
            | Event::ReminderSent(_)
            | Event::PreBreachWarned(_)
            | Event::DeadlineMissed(_)
            | Event::Escalated(_)
            | Event::WhistleBlown(_)
            | Event::DepartmentReported(_)
            | Event::DepartmentReleased(_)
            | Event::DepartmentRated(_) => self.fold_oversight(envelope),
            // Its effect is the refold of `correction.rs`, which records it through `record`.
            Event::EventCorrected(_) => {}
            // The correction lives in the contact store; the history below records it.
            Event::ContactCorrected(_) => {}
            Event::PublicTextModerated(e) => {
                self.moderation = Some(super::Moderation {
                    action: e.moderation,
                    redacted_text: e.redacted_text.clone(),
                });
            }
            Event::MediaAttached(e) => self.attachments.push(e.into()),
            Event::ReferenceDataRecorded(_)
            | Event::DailyDigestRecorded(_)
            | Event::RateReportPublished(_)
            | Event::RateReportFeedbackRecorded(_) => {}
            // Folded by `Participants::apply` above; no stage change.
            Event::RequestAssigned(_)
            | Event::AssistanceSignedFor(_)
            | Event::AssistanceReturned(_)
            | Event::AssistanceAbsenceRecorded(_) => {}
            // Folded by `apply_links` above (a merge sets the stage there).
            Event::LinkedToOriginal(_) | Event::DuplicateRecorded(_) => {}
        }
        let moved_stage = self.stage != stage_before;
        self.record(envelope, moved_stage);
    }

    /// Intake, acceptance, decline and classification.
    fn fold_registration(&mut self, envelope: &EventEnvelope) {
        let at = envelope.occurred_at;
        match &envelope.event {
            Event::RequestReceived(e) => {
                self.intake = Some(Intake {
                    channel: e.channel,
                    external_id: e.external_id.clone(),
                    contact_ref: e.contact_ref.clone(),
                    anonymous: e.anonymous,
                    confidential: e.confidential,
                    no_reply_requested: e.no_reply_requested,
                    location: e.location.clone(),
                    priority_lanes: e.priority_lanes.clone(),
                    kind: e.kind,
                    received_at: at,
                    accept_due_at: e.accept_due_at,
                });
                self.stage = Stage::Received;
            }
            Event::RequestAccepted(e) => {
                self.owner = Some(e.owner.clone());
                self.stage = Stage::Accepted;
            }
            Event::RequestDeclined(e) => {
                self.disposition = Some(e.disposition);
                self.stage = match e.disposition {
                    Disposition::EmergencyTransfer => Stage::TransferredEmergency,
                    Disposition::DuplicateNoNewFacts => Stage::LinkedDuplicate,
                    _ => Stage::NotAccepted,
                };
            }
            Event::RequestClassified(e) => {
                let first = self
                    .classification
                    .as_ref()
                    .map(|c| c.first_classified_at)
                    .unwrap_or(at);
                self.classification = Some(ClassificationState {
                    catalogue_item: e.catalogue_item.clone(),
                    category: e.category.clone(),
                    request_type: e.request_type,
                    urgency: e.urgency,
                    handling_mode: e.handling_mode,
                    departments: e.departments.clone(),
                    escalation_chain: e.escalation_chain.clone(),
                    first_classified_at: first,
                    routing: e.routing.clone(),
                });
                self.deadlines = Some(e.deadlines.clone());
                self.deadlines_moved = false;
                if self.stage == Stage::Accepted {
                    self.stage = Stage::Classified;
                }
            }
            _ => {}
        }
    }

    /// Direct, proxy and referral handling up to work in progress.
    fn fold_handling(&mut self, envelope: &EventEnvelope) {
        match &envelope.event {
            Event::DirectHandlingStarted(_) => {
                self.handling = Some(Handling::Direct);
                self.stage = Stage::DirectHandling;
            }
            Event::ProxyHandlingStarted(e) => {
                self.handling = Some(Handling::Proxy {
                    department: e.department.clone(),
                });
                self.stage = Stage::ProxyHandling;
            }
            Event::ReferredToDepartment(e) => {
                self.handling = Some(Handling::Referral(Referral {
                    lead: e.lead_department.clone(),
                    assisting: e.assisting_departments.clone(),
                    number: e.referral_number,
                    sign_off_due_at: e.sign_off_due_at,
                    return_window_ends_at: e.return_window_ends_at,
                    signed: false,
                    returned_by: None,
                    locked: false,
                    assistance_reported: Default::default(),
                }));
                self.stage = Stage::Dispatched;
            }
            Event::ReferralSignedFor(_) => {
                if let Some(Handling::Referral(r)) = &mut self.handling {
                    r.signed = true;
                }
                self.stage = Stage::SignedFor;
            }
            Event::ReferralReturned(e) => {
                if let Some(Handling::Referral(r)) = &mut self.handling {
                    r.returned_by = Some(e.department.clone());
                }
                self.stage = Stage::ReturnRequested;
            }
            Event::ReturnRejected(_) => {
                if let Some(Handling::Referral(r)) = &mut self.handling {
                    r.returned_by = None;
                    r.locked = true;
                    r.signed = true;
                }
                self.stage = Stage::SignedFor;
            }
            Event::ResidentContacted(_) => {
                self.contacted = true;
                self.stage = Stage::Contacted;
            }
            Event::HandlingStarted(_) => self.stage = Stage::InProgress,
            Event::ProgressNoted(_) => self.progress_notes += 1,
            Event::AssistanceReported(e) => {
                if let Some(Handling::Referral(r)) = &mut self.handling {
                    r.assistance_reported.insert(e.department.clone());
                }
            }
            _ => {}
        }
    }

    /// The completion clock: extensions, pauses, termination, re-stamped deadlines.
    fn fold_clock(&mut self, envelope: &EventEnvelope) {
        let at = envelope.occurred_at;
        match &envelope.event {
            Event::ExtensionRequested(e) => self.extensions.pending = Some(e.working_days),
            Event::ExtensionGranted(e) => {
                let days = self.extensions.pending.take().unwrap_or(0);
                self.extensions.granted += 1;
                self.extensions.granted_working_days += days;
                self.deadlines_moved = true;
                if let Some(d) = &mut self.deadlines {
                    d.completion_due_at = e.new_due_at;
                    d.remind_at = e.remind_at;
                    d.warn_at = e.warn_at;
                }
            }
            Event::ExtensionDenied(_) => self.extensions.pending = None,
            Event::ClockPaused(_) => self.paused_since = Some(at),
            Event::ClockResumed(e) => {
                self.paused_since = None;
                self.deadlines_moved = true;
                if let Some(d) = &mut self.deadlines {
                    d.completion_due_at = e.new_due_at;
                    d.remind_at = e.remind_at;
                    d.warn_at = e.warn_at;
                }
            }
            Event::TerminationRequested(_) => self.stage = Stage::TerminationPending,
            Event::TerminationApproved(_) => {}
            Event::TerminationDenied(_) => self.stage = Stage::InProgress,
            Event::DeadlinesRestamped(e) => self.deadlines = Some(e.deadlines.clone()),
            _ => {}
        }
    }

    /// The reply, its review, the callback, the rating and its appeal, reopening, archiving.
    fn fold_closing(&mut self, envelope: &EventEnvelope) {
        let at = envelope.occurred_at;
        match &envelope.event {
            Event::ResultReplied(e) => {
                self.reply = Some(ReplyState {
                    outcome: e.outcome,
                    on_time: e.on_time,
                    replied_at: at,
                });
                self.callback_attempts = 0;
                self.resident_reached = false;
                self.callback_refused = false;
                self.stage = Stage::Replied;
            }
            Event::ReplyReviewed(e) if e.approved => self.stage = Stage::AwaitingCallback,
            Event::CallbackAttempted(e) => {
                self.callback_attempts = e.attempt;
                self.resident_reached |= e.reached;
                self.callback_refused |= e.outcome == Some(schemas::CallbackOutcome::Refused);
            }
            Event::Rated(e) => {
                self.rating = Some(RatingState {
                    satisfaction: e.satisfaction,
                    resolution: e.resolution,
                    rated_at: at,
                    event_id: envelope.event_id,
                    corrected: false,
                    appeal: None,
                });
                self.stage = Stage::Rated;
            }
            Event::Reopened(e) => {
                self.reopen_count = e.reopen_count;
                self.reply = None;
                self.rating = None;
                self.callback_attempts = 0;
                self.resident_reached = false;
                self.callback_refused = false;
                self.stage = Stage::InProgress;
            }
            Event::Archived(_) => self.stage = Stage::Archived,
            Event::RatingAppealed(_) => {
                if let Some(r) = &mut self.rating {
                    r.appeal = Some(AppealState::Pending);
                }
            }
            Event::AppealDecided(e) => {
                if let Some(r) = &mut self.rating {
                    r.appeal = Some(AppealState::Decided { upheld: e.upheld });
                }
            }
            _ => {}
        }
    }

    /// Upward reports, supervision firings and escalation, whistles (吹哨).
    fn fold_oversight(&mut self, envelope: &EventEnvelope) {
        let at = envelope.occurred_at;
        match &envelope.event {
            Event::ReportedUpward(e) => self.upward.push(UpwardReport {
                report_id: e.report_id,
                level: e.level,
                open: true,
                acknowledged: false,
            }),
            Event::UpwardFeedbackReceived(e) => {
                if let Some(r) = self.upward.iter_mut().find(|r| r.report_id == e.report_id)
                    && super::decide::feedback_closes(e.kind)
                {
                    r.open = false;
                }
            }
            Event::UpwardAcknowledged(e) => {
                if let Some(r) = self.upward.iter_mut().find(|r| r.report_id == e.report_id) {
                    r.acknowledged = true;
                }
            }
            Event::ReminderSent(e) => {
                self.supervision
                    .fired
                    .insert((Firing::Remind, e.deadline, e.due_at));
            }
            Event::PreBreachWarned(e) => {
                self.supervision
                    .fired
                    .insert((Firing::Warn, e.deadline, e.due_at));
            }
            Event::DeadlineMissed(e) => {
                self.supervision
                    .fired
                    .insert((Firing::Overdue, e.deadline, e.due_at));
            }
            Event::Escalated(e) => {
                self.supervision.level = Some(e.level);
                self.supervision.escalated_at = Some(at);
            }
            Event::WhistleBlown(e) => self.whistles.push(Whistle {
                report_due_at: e.report_due_at,
                departments: e
                    .departments
                    .iter()
                    .map(|d| (d.clone(), Summoned::default()))
                    .collect::<BTreeMap<_, _>>(),
            }),
            Event::DepartmentReported(e) => {
                if let Some(s) = self.summoned_mut(&e.department) {
                    s.reported = Some(e.on_time);
                }
            }
            Event::DepartmentReleased(e) => {
                if let Some(s) = self.summoned_mut(&e.department) {
                    s.released = true;
                }
            }
            Event::DepartmentRated(e) => {
                let id = envelope.event_id;
                if let Some(s) = self.summoned_mut(&e.department) {
                    s.rating_event = Some(id);
                }
            }
            _ => {}
        }
    }

    /// Records an event in the history (and the version) without further effect.
    pub(super) fn record(&mut self, envelope: &EventEnvelope, moved_stage: bool) {
        self.history.push(Applied {
            event_id: envelope.event_id,
            kind: envelope.event.kind(),
            corrected: false,
            moved_stage,
        });
        self.version += 1;
    }

    pub(super) fn summoned_mut(&mut self, department: &str) -> Option<&mut Summoned> {
        self.whistles
            .last_mut()
            .and_then(|w| w.departments.get_mut(department))
    }
}
