//! The callback (回访) after the reply in force: how many attempts, when the resident was first
//! reached, and whether that attempt was within the policy's `[callback]` limit after the
//! reply (stamped by the engine on `callback_attempted.within_limit`). A new reply (after a
//! reopening) starts the callback afresh.

use schemas::{Event, EventEnvelope};
use serde::{Deserialize, Serialize};

use super::Ts;

/// The callback of the reply in force.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Callback {
    /// Attempts since the reply in force.
    pub attempts: i64,
    /// First attempt that reached the resident (a refusal reaches them too).
    pub reached_at: Option<Ts>,
    /// That attempt was within the `[callback]` limit; `None` when the event predates the
    /// stamp (or nobody was reached yet).
    pub on_time: Option<bool>,
}

impl Callback {
    /// Folds a reply (which starts afresh) or a callback attempt; other events are ignored.
    pub(super) fn apply(&mut self, env: &EventEnvelope) {
        match &env.event {
            Event::ResultReplied(_) => *self = Callback::default(),
            Event::CallbackAttempted(e) => {
                self.attempts += 1;
                let reached = e.outcome.map_or(e.reached, |o| o.reached());
                if reached && self.reached_at.is_none() {
                    self.reached_at = Some(env.occurred_at);
                    self.on_time = e.within_limit;
                }
            }
            _ => {}
        }
    }
}
