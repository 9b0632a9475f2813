//! Supervision (督办): the timers' firings `remind`, `warn` and `mark_overdue` on a deadline
//! in force, each recorded once, and `escalate` to the next levels.

use schemas::command::Escalate;
use schemas::{DeadlineKind, SupervisionLevel, Timestamp};

use super::*;

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
    /// `remind`, `warn` and `mark_overdue` (`firing`) on the deadline `deadline` due at
    /// `due_at`: it must be the one in force and not fired yet; an overdue mark waits for it.
    /// `_kind` names the command; its stages are the table's.
    pub(super) fn supervise(
        &self,
        _kind: CommandKind,
        firing: Firing,
        deadline: DeadlineKind,
        due_at: Timestamp,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
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

    /// `escalate`: supervision rises one or more levels (督办: daily, listed, interview), to
    /// a named body, with a reason; never back down.
    pub(super) fn escalate(&self, c: &Escalate) -> Result<Vec<Event>, Refusal> {
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
}
