//! Closing a request: the `reply` to the resident, the centre's `review_reply`, the
//! `record_callback` attempts (回访) with their outcome and timing, the resident's `rate`,
//! `reopen` after a dissatisfied rating, and `archive` (归档).

use schemas::command::{Archive, Rate, RecordCallback, Reopen, Reply, ReviewReply};
use schemas::{CallbackOutcome, ReplyOutcome, Resolution, Satisfaction};

use super::super::AppealState;
use super::*;

impl Request {
    /// `reply`: the handling unit replies the result to the resident once no whistle report is
    /// outstanding; assisting parts still awaited are waited for or recorded absent, as the
    /// policy says. Records whether the reply is on time.
    pub(super) fn decide_reply(&self, c: &Reply, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::Reply;
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
        let absence = self.assistance_at_reply(ctx)?;
        let reply = Event::ResultReplied(ResultReplied {
            outcome: c.outcome,
            content: c.content.clone(),
            plan: c.plan.clone(),
            on_time: self.on_time(ctx.now),
        });
        Ok(absence.into_iter().chain([reply]).collect())
    }

    /// `review_reply`: the centre reviews the reply (审核); a rejection, with its reason,
    /// reopens the request.
    pub(super) fn review_reply(&self, c: &ReviewReply) -> Result<Vec<Event>, Refusal> {
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

    /// `record_callback`: one callback attempt (回访) with its outcome code (or the older
    /// `reached` flag, which must agree), timed from the reply.
    pub(super) fn record_callback(
        &self,
        c: &RecordCallback,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let outcome = match (c.outcome, c.reached) {
            (Some(o), Some(r)) if o.reached() != r => {
                return Err(Refusal::InvalidField {
                    field: "reached",
                    reason: "disagrees with outcome",
                });
            }
            (Some(o), _) => o,
            (None, Some(true)) => CallbackOutcome::Reached,
            (None, Some(false)) => CallbackOutcome::Unreachable,
            (None, None) => return Err(Refusal::MissingField { field: "outcome" }),
        };
        let replied_at = self.reply.as_ref().map(|r| r.replied_at);
        Ok(vec![Event::CallbackAttempted(CallbackAttempted {
            reached: outcome.reached(),
            attempt: self.callback_attempts + 1,
            note: c.note.clone(),
            outcome: Some(outcome),
            since_reply_seconds: replied_at.map(|at| (ctx.now - at).num_seconds().max(0)),
            within_limit: replied_at.map(|at| ctx.now <= ctx.policy.callback_due(at)),
        })])
    }

    /// `rate`: the resident's rating after the callback, or a new one once the rating was
    /// corrected.
    pub(super) fn rate(&self, c: &Rate) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::Rate;
        let re_rating = self.stage == Rated && self.rating.as_ref().is_some_and(|r| r.corrected);
        if !re_rating {
            self.stage_in(kind, &[AwaitingCallback])?;
        }
        Ok(vec![Event::Rated(schemas::event::Rated {
            satisfaction: c.satisfaction,
            resolution: c.resolution,
            comment: c.comment.clone(),
        })])
    }

    /// `reopen`: a rating that counts and is dissatisfied or unresolved reopens the request,
    /// with a reason, up to `max_reopens` times.
    pub(super) fn reopen(&self, c: &Reopen, ctx: &Context) -> Result<Vec<Event>, Refusal> {
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

    /// `archive`: after the rating, after the callback attempts the policy asks for (or a
    /// refusal), or from a closing stage; never while an appeal is pending.
    pub(super) fn archive(&self, c: &Archive, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        if self.stage == AwaitingCallback && !self.no_reply_requested() {
            let required = ctx.policy.limits().callback_attempts;
            let unreachable = !self.resident_reached && self.callback_attempts >= required;
            if !unreachable && !self.callback_refused {
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
}
