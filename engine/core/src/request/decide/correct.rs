//! `correct`: an auditor's correction of a recorded event, which neutralises it in the
//! request's state and in every projection while the log keeps both facts.

use schemas::command::Correct;
use schemas::event::EventCorrected;
use schemas::{Event, EventKind};

use super::required;
use crate::refusal::Refusal;
use crate::request::Request;

/// The kinds of event a correction may neutralise.
const CORRECTABLE: &[EventKind] = &[
    EventKind::RequestClassified,
    EventKind::Rated,
    EventKind::DepartmentRated,
    EventKind::ProgressNoted,
];

impl Request {
    /// `correct`: the event must be this request's, of a correctable kind and not corrected
    /// already; the reason is required.
    pub(super) fn correct(&self, c: &Correct) -> Result<Vec<Event>, Refusal> {
        let Some(applied) = self.history.iter().find(|a| a.event_id == c.event_id) else {
            return Err(Refusal::UnknownReference {
                field: "event_id",
                value: c.event_id.to_string(),
            });
        };
        if !CORRECTABLE.contains(&applied.kind) {
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
