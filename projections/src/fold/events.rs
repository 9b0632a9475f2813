//! How each event changes a request's read-model state (no rules: events are facts): the
//! intake and handling events in [`RequestState::fold_handling`], the outcome, supervision and
//! record events in [`RequestState::fold_outcome`]. A correction's refold (`refold.rs`) calls
//! the same fold.

use schemas::{Event, EventEnvelope, Resolution, Satisfaction};

use super::{Classification, DueMove, Rating, Referral, RequestState, wire};

/// Sets the request's stage (wire name).
fn stage(s: &mut RequestState, name: &str) {
    s.stage = name.to_owned();
}

impl RequestState {
    /// Folds one event's effect.
    pub(super) fn fold(&mut self, env: &EventEnvelope, position: u64) {
        self.last_position = position;
        self.apply_participants(env, position);
        self.callback.apply(env);
        self.fold_handling(env, position);
        self.fold_outcome(env);
    }

    /// From acceptance to work in progress, with the completion clock's moves.
    fn fold_handling(&mut self, env: &EventEnvelope, position: u64) {
        let at = env.occurred_at;
        match &env.event {
            Event::RequestReceived(_) => {}
            Event::RequestAccepted(e) => {
                self.accepted_at.get_or_insert(at);
                self.owner = Some(e.owner.clone());
                stage(self, "accepted");
            }
            Event::RequestDeclined(_) => {
                self.declined_at = Some(at);
                self.open = false;
                stage(self, "declined");
            }
            Event::RequestClassified(e) => {
                self.classifications.push(Classification {
                    event_id: env.event_id,
                    version: env.version,
                    at,
                    catalogue_item: e.catalogue_item.clone(),
                    category: e.category.clone(),
                    request_type: wire(&e.request_type),
                    urgency: wire(&e.urgency),
                    response_due_at: e.deadlines.response_due_at,
                    completion_due_at: e.deadlines.completion_due_at,
                    excluded_from_satisfaction: e.excluded_from_satisfaction,
                });
                stage(self, "classified");
            }
            Event::DirectHandlingStarted(_) => {
                self.engaged_at.get_or_insert(at);
                stage(self, "direct_handling");
            }
            Event::ProxyHandlingStarted(_) => {
                self.engaged_at.get_or_insert(at);
                stage(self, "proxy_handling");
            }
            Event::ReferredToDepartment(e) => {
                self.referred_at.get_or_insert(at);
                self.lead_department = Some(e.lead_department.clone());
                self.routing = e.routing.as_ref().map(|r| (r.rule.clone(), r.overridden));
                self.referrals.retain(|r| r.number != e.referral_number);
                self.referrals.push(Referral {
                    number: e.referral_number,
                    department: e.lead_department.clone(),
                    referred_at: at,
                    sign_off_due_at: e.sign_off_due_at,
                    signed_at: None,
                    returned_at: None,
                    last_position: position,
                });
                stage(self, "referred");
            }
            Event::ReferralSignedFor(e) => {
                if let Some(r) = self
                    .referrals
                    .last_mut()
                    .filter(|r| r.department == e.department)
                {
                    r.signed_at.get_or_insert(at);
                    r.last_position = position;
                }
                self.signed_at.get_or_insert(at);
                self.engaged_at.get_or_insert(at);
                stage(self, "signed_for");
            }
            Event::ReferralReturned(e) => {
                if let Some(r) = self
                    .referrals
                    .last_mut()
                    .filter(|r| r.department == e.department)
                {
                    r.returned_at = Some(at);
                    r.last_position = position;
                }
                self.referral_returns += 1;
                stage(self, "return_requested");
            }
            Event::ReturnRejected(_) => stage(self, "signed_for"),
            Event::ResidentContacted(_) => {
                self.first_contact_at.get_or_insert(at);
                stage(self, "contacted");
            }
            Event::HandlingStarted(_) => stage(self, "in_progress"),
            Event::ExtensionRequested(_) => stage(self, "extension_pending"),
            Event::ExtensionGranted(e) => {
                self.due_moves.push(DueMove {
                    event_id: env.event_id,
                    version: env.version,
                    new_due_at: e.new_due_at,
                });
                stage(self, "in_progress");
            }
            Event::ClockPaused(_) => self.paused_since = Some(at),
            Event::ClockResumed(e) => {
                self.paused_since = None;
                self.due_moves.push(DueMove {
                    event_id: env.event_id,
                    version: env.version,
                    new_due_at: e.new_due_at,
                });
            }
            Event::ExtensionDenied(_) | Event::TerminationDenied(_) => stage(self, "in_progress"),
            Event::TerminationRequested(_) => stage(self, "termination_pending"),
            _ => {}
        }
    }

    /// The reply, its review and rating, reopening and archiving, supervision marks, appeals,
    /// corrections, merges and re-stamped deadlines.
    fn fold_outcome(&mut self, env: &EventEnvelope) {
        let at = env.occurred_at;
        match &env.event {
            Event::ResultReplied(e) => {
                self.replied_at.get_or_insert(at);
                self.reply_outcome = Some(wire(&e.outcome));
                self.open = false;
                stage(self, "replied");
            }
            Event::ReplyReviewed(e) if e.approved => stage(self, "awaiting_callback"),
            Event::Rated(e) => {
                self.ratings.push(Rating {
                    event_id: env.event_id,
                    at,
                    satisfaction: wire::<Satisfaction>(&e.satisfaction),
                    resolution: wire::<Resolution>(&e.resolution),
                    excluded: false,
                });
                stage(self, "rated");
            }
            Event::Reopened(e) => {
                self.reopen_count = self.reopen_count.max(i64::from(e.reopen_count));
                self.open = true;
                stage(self, "reopened");
            }
            Event::Archived(_) => {
                self.archived_at = Some(at);
                self.open = false;
                stage(self, "archived");
            }
            Event::ReminderSent(_) => self.marks.reminded_at = Some(at),
            Event::PreBreachWarned(_) => self.marks.warned_at = Some(at),
            Event::DeadlineMissed(e) => {
                self.marks.marked_overdue_at = Some(at);
                if e.deadline != schemas::DeadlineKind::WhistleReport {
                    self.overdue = true;
                }
            }
            Event::Escalated(e) => {
                self.escalation_level = Some(wire(&e.level));
                self.marks.escalated_at = Some(at);
            }
            Event::AppealDecided(e) if e.upheld => {
                if let Some(r) = self.ratings.last_mut() {
                    r.excluded = true;
                }
            }
            Event::EventCorrected(e) => self.correct(e.event_id, e.corrected_type),
            Event::LinkedToOriginal(e) if e.relation == schemas::LinkRelation::Merged => {
                self.merged_into = Some(e.original);
                self.open = false;
                stage(self, "merged");
            }
            // A re-stamp replaces the stamped deadlines of the classification in force.
            Event::DeadlinesRestamped(e) => {
                if let Some(class) = self.classifications.last_mut() {
                    class.response_due_at = e.deadlines.response_due_at;
                    class.completion_due_at = e.deadlines.completion_due_at;
                }
            }
            _ => {}
        }
    }
}
