//! What a correction undoes: the request's state is the fold of its history without the
//! events corrections neutralised, so a correction can never leave the state half-undone.
//!
//! Two kinds stay in force, marked: a corrected classification (its deadlines were stamped
//! and supervised; it stands until the request is reclassified) and a corrected rating (it no
//! longer counts, and may be re-recorded). Every other corrected event is folded away, as if
//! it had never been recorded. The history keeps every event, with its `corrected` flag.
//!
//! Cost: every applied envelope is kept once behind an `Arc` (cloning a state copies pointers),
//! and a correction folds the request's history once more.

use std::collections::BTreeSet;

use schemas::{Event, EventKind};
use uuid::Uuid;

use super::Request;

/// Corrected kinds that stay in force, marked, instead of being folded away.
const KEPT_IN_FORCE: &[EventKind] = &[EventKind::RequestClassified, EventKind::Rated];

impl Request {
    /// Folds the kept envelopes again from the start, skipping the corrected events.
    pub(super) fn refold(&mut self) {
        let envelopes = std::mem::take(&mut self.envelopes);
        let corrected: BTreeSet<Uuid> = envelopes
            .iter()
            .filter_map(|e| match &e.event {
                Event::EventCorrected(c) => Some(c.event_id),
                _ => None,
            })
            .collect();
        let mut fresh = Request::new(self.id);
        for envelope in envelopes.iter().map(AsRef::as_ref) {
            let kind = envelope.event.kind();
            if !corrected.contains(&envelope.event_id) {
                fresh.fold(envelope);
            } else if KEPT_IN_FORCE.contains(&kind) {
                fresh.fold(envelope);
                fresh.mark_kept(envelope.event_id, kind);
            } else {
                fresh.record(envelope, false);
            }
        }
        for applied in &mut fresh.history {
            applied.corrected = corrected.contains(&applied.event_id);
        }
        fresh.envelopes = envelopes;
        *self = fresh;
    }

    /// Marks a corrected event that stays in force: a rating stops counting.
    fn mark_kept(&mut self, event_id: Uuid, kind: EventKind) {
        if kind == EventKind::Rated
            && let Some(r) = self.rating.as_mut().filter(|r| r.event_id == event_id)
        {
            r.corrected = true;
        }
    }
}
