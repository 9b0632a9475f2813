//! The completion clock: extensions (`request_extension`, `grant_extension`,
//! `deny_extension`), the paused clock (`pause_clock`, `resume_clock`) and termination
//! (`request_termination`, `decide_termination`), with the deadline in force they move.

use schemas::command::{
    DecideTermination, DenyExtension, GrantExtension, PauseClock, RequestExtension,
    RequestTermination,
};
use schemas::{ReplyOutcome, Timestamp};

use super::*;

impl Request {
    /// `request_extension`: the handling unit asks for working days more before the completion
    /// deadline passes, once at a time and within the policy's limits.
    pub(super) fn request_extension(
        &self,
        c: &RequestExtension,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::RequestExtension;
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

    /// `grant_extension`: the centre grants the pending extension; the completion deadline
    /// moves by its working days and the reminders are rescheduled from it.
    pub(super) fn grant_extension(
        &self,
        c: &GrantExtension,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
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

    /// `deny_extension`: the centre refuses the pending extension, with a reason.
    pub(super) fn deny_extension(&self, c: &DenyExtension) -> Result<Vec<Event>, Refusal> {
        if self.extensions.pending.is_none() {
            return Err(Refusal::NothingPending { what: "extension" });
        }
        required(&c.reason, "reason")?;
        Ok(vec![Event::ExtensionDenied(ExtensionDenied {
            reason: c.reason.clone(),
        })])
    }

    /// `pause_clock`: the handling unit stops the completion clock (a resident away, an
    /// appraisal running), with a reason; one pause at a time.
    pub(super) fn pause_clock(&self, c: &PauseClock, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::PauseClock;
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

    /// `resume_clock`: the paused clock runs again; the deadlines move by the time it stood.
    pub(super) fn resume_clock(&self, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::ResumeClock;
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

    /// `request_termination`: the handling unit asks the centre to end the handling, with a
    /// reason (终止办理).
    pub(super) fn request_termination(
        &self,
        c: &RequestTermination,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::RequestTermination;
        self.check_handling_unit(ctx.actor, kind)?;
        required(&c.reason, "reason")?;
        Ok(vec![Event::TerminationRequested(TerminationRequested {
            reason: c.reason.clone(),
        })])
    }

    /// `decide_termination`: the centre approves (recording the reply `terminated`) or denies.
    pub(super) fn decide_termination(
        &self,
        c: &DecideTermination,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
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

    /// The completion deadline in force at `now`, counting a running pause as stood-still time.
    fn effective_completion_due(&self, now: Timestamp) -> Option<Timestamp> {
        let due = self.deadlines.as_ref()?.completion_due_at;
        Some(match self.paused_since {
            Some(since) if now > since => due + (now - since),
            _ => due,
        })
    }

    /// Whether a reply at `now` meets the completion deadline in force (none stamped counts as
    /// on time).
    pub(super) fn on_time(&self, now: Timestamp) -> bool {
        self.effective_completion_due(now)
            .is_none_or(|due| now <= due)
    }
}
