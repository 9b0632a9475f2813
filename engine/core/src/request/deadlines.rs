//! Which deadlines are in force in a request's present state, and which supervision
//! firings it has recorded: what the supervisor schedules and the read models list.

use schemas::{DeadlineKind, Timestamp};

use super::{Firing, Handling, Request, Stage, Summoned};

impl Request {
    /// The instant a deadline of `kind` falls due, if that deadline is in force now.
    ///
    /// - `response`: `accept_due_at` while received; after classification the stamped
    ///   response deadline until the resident is contacted or the request is replied
    ///   (never for anonymous requests).
    /// - `sign_off`: while dispatched.
    /// - `completion`: from classification until the reply, except while the clock is paused.
    /// - `whistle_report`: while a summoned department has neither reported nor been released.
    /// - `assistance`: while an assisting part is neither reported nor returned, referred and
    ///   not yet replied.
    pub fn deadline_in_force(&self, kind: DeadlineKind) -> Option<Timestamp> {
        use Stage::*;
        match kind {
            DeadlineKind::Response => {
                if self.stage == Received {
                    return self.intake.as_ref().map(|i| i.accept_due_at);
                }
                let waiting = matches!(
                    self.stage,
                    Classified
                        | DirectHandling
                        | ProxyHandling
                        | Dispatched
                        | ReturnRequested
                        | SignedFor
                );
                if waiting && !self.contacted && !self.anonymous() {
                    self.deadlines.as_ref().map(|d| d.response_due_at)
                } else {
                    None
                }
            }
            DeadlineKind::SignOff => match (&self.handling, self.stage) {
                (Some(Handling::Referral(r)), Dispatched) => Some(r.sign_off_due_at),
                _ => None,
            },
            DeadlineKind::Completion => {
                let open = matches!(
                    self.stage,
                    Classified
                        | DirectHandling
                        | ProxyHandling
                        | Dispatched
                        | ReturnRequested
                        | SignedFor
                        | Contacted
                        | InProgress
                        | TerminationPending
                );
                if open && self.paused_since.is_none() {
                    self.deadlines.as_ref().map(|d| d.completion_due_at)
                } else {
                    None
                }
            }
            DeadlineKind::WhistleReport => {
                if self.stage == Archived {
                    return None;
                }
                self.whistle()
                    .filter(|w| w.departments.values().any(Summoned::awaited))
                    .map(|w| w.report_due_at)
            }
            DeadlineKind::Assistance => self.assistance_deadline(),
        }
    }

    /// Every deadline in force now, with its due instant.
    pub fn deadlines_in_force(&self) -> Vec<(DeadlineKind, Timestamp)> {
        [
            DeadlineKind::Response,
            DeadlineKind::SignOff,
            DeadlineKind::Completion,
            DeadlineKind::WhistleReport,
            DeadlineKind::Assistance,
        ]
        .into_iter()
        .filter_map(|k| self.deadline_in_force(k).map(|at| (k, at)))
        .collect()
    }

    /// Whether a supervision action already fired for a deadline instant.
    pub fn has_fired(&self, firing: Firing, deadline: DeadlineKind, due_at: Timestamp) -> bool {
        self.supervision.fired.contains(&(firing, deadline, due_at))
    }
}
