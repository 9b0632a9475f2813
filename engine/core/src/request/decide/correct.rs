//! `correct`: an auditor's correction of a recorded event, which neutralises it in the
//! request's state and in every projection while the log keeps both facts. What the
//! neutralisation undoes is `request/correction.rs`; this file says which events may be
//! corrected, and when.

use schemas::command::Correct;
use schemas::event::EventCorrected;
use schemas::{Event, EventKind};

use super::required;
use crate::refusal::Refusal;
use crate::request::{Applied, Request};

/// When an event of a correctable kind may be corrected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum While {
    /// At any time, archived too: a fact beside the stages.
    Always,
    /// While no reply is in force: a reply's on-time judgement was made against it.
    Handling,
    /// While nothing was built on it: it is the last event that changed the stage, and the
    /// request is still in the stage it put it in.
    InItsStage,
}

/// The kinds of event a correction may neutralise, with when.
const CORRECTABLE: &[(EventKind, While)] = &[
    (EventKind::RequestClassified, While::Always),
    (EventKind::Rated, While::Always),
    (EventKind::DepartmentRated, While::Always),
    (EventKind::ProgressNoted, While::Always),
    (EventKind::AssistanceReported, While::Always),
    (EventKind::CallbackAttempted, While::Always),
    (EventKind::ExtensionGranted, While::Handling),
    (EventKind::ExtensionDenied, While::Handling),
    (EventKind::ClockPaused, While::Handling),
    (EventKind::RequestDeclined, While::InItsStage),
    (EventKind::DirectHandlingStarted, While::InItsStage),
    (EventKind::ProxyHandlingStarted, While::InItsStage),
    (EventKind::ReferredToDepartment, While::InItsStage),
    (EventKind::ReferralSignedFor, While::InItsStage),
];

impl Request {
    /// `correct`: the event must be this request's, of a correctable kind, correctable now
    /// (see [`While`]) and not corrected already; the reason is required.
    pub(super) fn correct(&self, c: &Correct) -> Result<Vec<Event>, Refusal> {
        let Some(applied) = self.history.iter().find(|a| a.event_id == c.event_id) else {
            return Err(Refusal::UnknownReference {
                field: "event_id",
                value: c.event_id.to_string(),
            });
        };
        if applied.corrected {
            return Err(Refusal::AlreadyRecorded { what: "correction" });
        }
        self.correctable_now(applied)?;
        required(&c.reason, "reason")?;
        Ok(vec![Event::EventCorrected(EventCorrected {
            event_id: c.event_id,
            corrected_type: applied.kind,
            reason: c.reason.clone(),
        })])
    }

    /// Whether `applied` may be corrected in the request's present state, and why not.
    fn correctable_now(&self, applied: &Applied) -> Result<(), Refusal> {
        let refuse = |why| {
            Err(Refusal::NotCorrectable {
                kind: applied.kind,
                why,
            })
        };
        let Some(&(_, when)) = CORRECTABLE.iter().find(|(k, _)| *k == applied.kind) else {
            return refuse(never_why(applied.kind));
        };
        match when {
            While::Always => Ok(()),
            While::Handling if self.reply.is_some() || self.stage.is_replied() => {
                refuse("the request was replied to since; the reply was judged against it")
            }
            While::Handling => Ok(()),
            While::InItsStage => {
                let last_move = self
                    .history
                    .iter()
                    .rev()
                    .find(|a| a.moved_stage && !a.corrected);
                if last_move.map(|a| a.event_id) == Some(applied.event_id) {
                    Ok(())
                } else {
                    refuse("the request has left the stage it put it in")
                }
            }
        }
    }
}

/// Why an event of a kind outside [`CORRECTABLE`] is never corrected.
fn never_why(kind: EventKind) -> &'static str {
    use EventKind as K;
    match kind {
        K::EventCorrected => "a correction is itself never corrected",
        K::ContactCorrected | K::PublicTextModerated => "it has its own command",
        K::ReminderSent
        | K::PreBreachWarned
        | K::DeadlineMissed
        | K::Escalated
        | K::DeadlinesRestamped => "supervision records are the engine's own",
        _ => "the request's record is built on it",
    }
}
