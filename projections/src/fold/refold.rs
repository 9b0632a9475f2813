//! Corrections in the read models, folded the way the engine folds them: the state is the
//! fold of the request's events without the ones corrections neutralised.
//!
//! A corrected `rated` or `request_classified` is undone in place ([`RequestState::correct`]):
//! the rating is removed (the previous one, if any, counts again), the classification reverts
//! to the previous one. Every other corrected event is folded away by [`RequestState::refold`],
//! from the envelopes the state keeps: a corrected referral leaves no referral row, lead
//! department or stage behind; a corrected extension grant no longer moves the deadline.

use std::collections::BTreeSet;

use schemas::{Event, EventEnvelope, EventKind};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::RequestState;

/// One folded event and the log position of its commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logged {
    /// Log position.
    pub position: u64,
    /// The event.
    pub envelope: EventEnvelope,
}

impl Logged {
    /// The record of `envelope` at `position`.
    pub fn new(envelope: &EventEnvelope, position: u64) -> Logged {
        Logged {
            position,
            envelope: envelope.clone(),
        }
    }
}

/// Whether a correction of `kind` folds the history again (else it is undone in place).
pub(super) fn refolds(kind: EventKind) -> bool {
    !matches!(kind, EventKind::Rated | EventKind::RequestClassified)
}

impl RequestState {
    /// Neutralises an earlier event in place: a corrected rating is removed, a corrected
    /// classification reverts to the previous one, a corrected deadline move is undone (the
    /// last, for states stored without their log).
    pub(super) fn correct(&mut self, event_id: Uuid, kind: EventKind) {
        match kind {
            EventKind::Rated => self.ratings.retain(|r| r.event_id != event_id),
            EventKind::RequestClassified => self.classifications.retain(|c| c.event_id != event_id),
            EventKind::ExtensionGranted | EventKind::ClockResumed => {
                self.due_moves.retain(|m| m.event_id != event_id)
            }
            _ => {}
        }
    }

    /// Folds the kept log again from its `request_received`, skipping every event that a
    /// correction of a [`refolds`] kind neutralised.
    pub(super) fn refold(&mut self) {
        let log = std::mem::take(&mut self.log);
        let skipped: BTreeSet<Uuid> = log
            .iter()
            .filter_map(|l| match &l.envelope.event {
                Event::EventCorrected(c) if refolds(c.corrected_type) => Some(c.event_id),
                _ => None,
            })
            .collect();
        let Some(mut fresh) = log
            .first()
            .and_then(|l| RequestState::start(&l.envelope, l.position))
        else {
            self.log = log;
            return;
        };
        for logged in log.iter().skip(1) {
            if skipped.contains(&logged.envelope.event_id) {
                fresh.last_position = logged.position;
            } else {
                fresh.fold(&logged.envelope, logged.position);
            }
        }
        fresh.log = log;
        fresh.refolded = true;
        *self = fresh;
    }
}
