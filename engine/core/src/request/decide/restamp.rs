//! Re-stamping provisional deadlines (`restamp_deadlines` → `deadlines_restamped`).
//!
//! A classification counted through days the calendar did not cover carries
//! `deadlines.provisional`. Once the calendar in force covers them, the engine asks for a
//! re-stamp: the core recomputes the classification's deadlines exactly as `classify` did
//! (same item, urgency, lanes and clock start) under the policy in force, and records them
//! with the provisional ones they replace. Deadlines moved since the classification (an
//! extension granted, a paused clock resumed) are not recomputed: the moves were decided on
//! the old instants, so the request stays listed for a person to decide.

use schemas::Timestamp;
use schemas::command::RestampDeadlines;

use super::*;

impl Request {
    /// The instant the classification's limits run from: receipt under `on_receipt`, else the
    /// first classification (a reclassification keeps the clock's original start), else now.
    pub(super) fn clock_start(&self, ctx: &Context) -> Timestamp {
        match (ctx.policy.clock_start(), self.intake.as_ref()) {
            (crate::policy::ClockStart::OnReceipt, Some(intake)) => intake.received_at,
            _ => self
                .classification
                .as_ref()
                .map(|cl| cl.first_classified_at)
                .unwrap_or(ctx.now),
        }
    }

    pub(super) fn restamp(
        &self,
        c: &RestampDeadlines,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        required(&c.reason, "reason")?;
        let (Some(cl), Some(previous)) = (&self.classification, &self.deadlines) else {
            return Err(Refusal::NothingPending {
                what: "provisional_deadlines",
            });
        };
        if !previous.provisional || self.deadlines_moved {
            return Err(Refusal::NothingPending {
                what: "provisional_deadlines",
            });
        }
        let lanes = self
            .intake
            .as_ref()
            .map(|i| i.priority_lanes.as_slice())
            .unwrap_or(&[]);
        let stamped = ctx
            .policy
            .classify(
                &cl.catalogue_item,
                Some(cl.urgency),
                lanes,
                self.clock_start(ctx),
            )
            .map_err(|_| Refusal::UnknownReference {
                field: "catalogue_item",
                value: cl.catalogue_item.clone(),
            })?;
        if stamped.deadlines.provisional {
            return Err(Refusal::NothingPending {
                what: "covering_calendar",
            });
        }
        Ok(vec![Event::DeadlinesRestamped(DeadlinesRestamped {
            previous: previous.clone(),
            deadlines: stamped.deadlines,
            reason: c.reason.clone(),
        })])
    }
}
