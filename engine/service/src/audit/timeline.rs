//! A request's history as an auditor reads it: every event in order with who, when and why,
//! the state after each step, corrections shown beside what they corrected, and the request
//! as it stood at a past time or version, always rebuilt from the events.
//!
//! The terminal renderer prints no contact data: events never hold any (the intake holds only
//! an opaque reference to the encrypted contact store), and the renderer does not print that
//! reference nor the resident's free text either.

use std::collections::HashMap;
use std::fmt::Write as _;

use engine_core::Request;
use schemas::{Event, EventEnvelope, RequestId, Timestamp};
use serde::Serialize;
use uuid::Uuid;

/// One step of a history: the event as recorded and the request's state after it.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The event with its envelope (who, when, hash chain).
    pub envelope: EventEnvelope,
    /// The request after this event was applied.
    pub state_after: Request,
    /// The later `event_corrected` event that neutralised this one, if any.
    pub corrected_by: Option<Uuid>,
}

/// Every event of a request with the state after each, in version order.
pub fn history_with_states(events: &[EventEnvelope]) -> Vec<Step> {
    let Some(first) = events.first() else {
        return Vec::new();
    };
    let corrections: HashMap<Uuid, Uuid> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::EventCorrected(c) => Some((c.event_id, e.event_id)),
            _ => None,
        })
        .collect();
    let mut state = Request::new(first.request_id);
    events
        .iter()
        .map(|envelope| {
            state.apply(envelope);
            Step {
                envelope: envelope.clone(),
                state_after: state.clone(),
                corrected_by: corrections.get(&envelope.event_id).copied(),
            }
        })
        .collect()
}

/// Which past state to rebuild.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AsOf {
    /// Only events the engine had recorded at or before this instant (`recorded_at`).
    #[serde(default)]
    pub as_of: Option<Timestamp>,
    /// Only events up to this version.
    #[serde(default)]
    pub version: Option<u64>,
}

impl AsOf {
    /// Whether anything narrows the history.
    pub fn is_present(&self) -> bool {
        self.as_of.is_some() || self.version.is_some()
    }

    /// Whether `envelope` was part of the request at this point.
    pub fn includes(&self, envelope: &EventEnvelope) -> bool {
        self.as_of.is_none_or(|at| envelope.recorded_at <= at)
            && self.version.is_none_or(|v| envelope.version <= v)
    }
}

/// The request exactly as it stood at `as_of` (events recorded up to that instant) and/or
/// `version` (events up to that version), rebuilt from the events. Events are taken as a prefix:
/// the first event outside the bounds ends it.
pub fn state_as_of(
    request_id: RequestId,
    events: &[EventEnvelope],
    as_of: Option<Timestamp>,
    version: Option<u64>,
) -> Request {
    let bounds = AsOf { as_of, version };
    Request::from_history(request_id, events.iter().take_while(|e| bounds.includes(e)))
}

/// The fields of an event's data that say why (printed by the timeline).
const WHY_FIELDS: &[&str] = &[
    "reason",
    "explanation",
    "note",
    "comment",
    "summary",
    "content",
    "plan",
    "legal_basis",
];

/// Formats an instant in Asia/Shanghai for people.
fn local(at: Timestamp) -> String {
    at.with_timezone(&schemas::local_time::offset())
        .format("%Y-%m-%d %H:%M:%S%.3f %:z")
        .to_string()
}

/// Renders a history as a terminal timeline: one block per event.
pub fn render(steps: &[Step]) -> String {
    let mut out = String::new();
    let Some(first) = steps.first() else {
        return "no events recorded for this request\n".to_string();
    };
    let _ = writeln!(out, "request {}", first.envelope.request_id);
    for step in steps {
        let e = &step.envelope;
        let stage = step.state_after.stage().as_str();
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "#{:<3} {:<28} -> {stage}",
            e.version,
            e.event.kind().as_str()
        );
        let _ = writeln!(
            out,
            "     occurred {}   recorded {}",
            local(e.occurred_at),
            local(e.recorded_at)
        );
        let unit = e
            .actor
            .unit
            .as_deref()
            .map(|u| format!(", unit {u}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "     by {} ({}{unit})",
            e.actor.id,
            e.actor.role.as_str()
        );
        for line in why_lines(&e.event) {
            let _ = writeln!(out, "     {line}");
        }
        if let Event::EventCorrected(c) = &e.event {
            let _ = writeln!(
                out,
                "     corrects {} ({})",
                c.event_id,
                c.corrected_type.as_str()
            );
        }
        if let Some(by) = step.corrected_by {
            let _ = writeln!(out, "     CORRECTED by event {by}");
        }
    }
    out
}

/// `field: value` lines for the data fields that say why.
fn why_lines(event: &Event) -> Vec<String> {
    let value = serde_json::to_value(event).unwrap_or_default();
    let Some(data) = value.get("data").and_then(|d| d.as_object()) else {
        return Vec::new();
    };
    WHY_FIELDS
        .iter()
        .filter_map(|field| match data.get(*field) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => {
                Some(format!("{}: {}", field.replace('_', " "), one_line(s)))
            }
            _ => None,
        })
        .collect()
}

/// Collapses whitespace so a value stays on one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
