//! What-if re-stamping: the recorded events of a request as they would read had another
//! policy profile been in force (`bianmin policy whatif`, docs/whatif.md).
//!
//! The log records decisions, and deadlines are decisions stamped once. A what-if therefore
//! rewrites, in a copy of the events and never in the log, exactly the figures a profile
//! decides, and takes everything else as recorded:
//!
//! - `request_received.accept_due_at` ← [`Policy::accept_due`] at receipt;
//!   `request_accepted.within_limit` is judged against it;
//! - `request_classified.deadlines` and `deadlines_restamped.deadlines` ←
//!   [`Policy::classify`] of the recorded item and urgency, with the clock start the profile
//!   names (receipt, or the first classification, as `decide` does);
//! - `extension_granted` and `clock_resumed` keep the length of their move (recorded new
//!   deadline minus the deadline it replaced) and apply it to the re-stamped deadline;
//! - `referred_to_department.sign_off_due_at` / `return_window_ends_at` ← the profile's
//!   sign-off limit and return window from the referral instant;
//! - `whistle_blown.report_due_at` ← the profile's report limit; each
//!   `department_reported.on_time` is judged against it.
//!
//! Who did what and when (receipts, replies, ratings, reopenings) and what the supervisor
//! recorded (reminders, warnings, `deadline_missed`, escalations) stay as recorded: the
//! what-if re-judges time limits, it does not re-run people or the supervisor.

use std::collections::HashMap;

use chrono::Duration;
use schemas::{Deadlines, Event, EventEnvelope, PriorityLane, RequestId, Timestamp};

use crate::policy::{ClockStart, Policy};

/// Rewrites events under a proposed policy, request by request, in log order.
#[derive(Debug)]
pub struct Restamper<'a> {
    policy: &'a Policy,
    requests: HashMap<RequestId, Track>,
    changed: u64,
}

/// What a request's later events are re-judged against.
#[derive(Debug, Default)]
struct Track {
    received_at: Option<Timestamp>,
    lanes: Vec<PriorityLane>,
    accept_due_at: Option<Timestamp>,
    first_classified_at: Option<Timestamp>,
    /// The completion deadline in force as recorded, and as re-derived.
    recorded_due: Option<Timestamp>,
    whatif_due: Option<Timestamp>,
    report_due_at: Option<Timestamp>,
    /// The recorded item and urgency of the classification, and its re-derived deadlines.
    classified: Option<(String, schemas::Urgency)>,
    whatif_deadlines: Option<Deadlines>,
}

impl<'a> Restamper<'a> {
    /// A re-stamper judging by `policy` (the proposed profile over the deployment's
    /// catalogue, calendar and directory).
    pub fn new(policy: &'a Policy) -> Restamper<'a> {
        Restamper {
            policy,
            requests: HashMap::new(),
            changed: 0,
        }
    }

    /// Events whose figures the proposed profile changed so far.
    pub fn changed(&self) -> u64 {
        self.changed
    }

    /// Rewrites `events` (the next events of their requests, in log order) in place.
    pub fn rewrite(&mut self, events: &mut [EventEnvelope]) {
        for envelope in events {
            let track = self.requests.entry(envelope.request_id).or_default();
            let before = envelope.event.clone();
            restamp_event(
                self.policy,
                track,
                envelope.occurred_at,
                &mut envelope.event,
            );
            if envelope.event != before {
                self.changed += 1;
            }
        }
    }
}

/// Re-derives one event's profile-decided figures, updating the request's track.
fn restamp_event(policy: &Policy, track: &mut Track, at: Timestamp, event: &mut Event) {
    match event {
        Event::RequestReceived(e) => {
            track.received_at = Some(at);
            track.lanes = e.priority_lanes.clone();
            e.accept_due_at = policy.accept_due(at, &e.priority_lanes);
            track.accept_due_at = Some(e.accept_due_at);
        }
        Event::RequestAccepted(e) => {
            if let Some(due) = track.accept_due_at {
                e.within_limit = at <= due;
            }
        }
        Event::RequestClassified(e) => {
            let first = *track.first_classified_at.get_or_insert(at);
            let start = clock_start(policy, track, first);
            track.recorded_due = Some(e.deadlines.completion_due_at);
            if let Some(d) = stamp(policy, &e.catalogue_item, e.urgency, &track.lanes, start) {
                e.deadlines = d;
            }
            track.classified = Some((e.catalogue_item.clone(), e.urgency));
            track.whatif_deadlines = Some(e.deadlines.clone());
            track.whatif_due = Some(e.deadlines.completion_due_at);
        }
        Event::DeadlinesRestamped(e) => {
            let first = track.first_classified_at.unwrap_or(at);
            let start = clock_start(policy, track, first);
            track.recorded_due = Some(e.deadlines.completion_due_at);
            if let Some(previous) = track.whatif_deadlines.clone() {
                e.previous = previous;
            }
            let restamped = track
                .classified
                .as_ref()
                .and_then(|(item, urgency)| stamp(policy, item, *urgency, &track.lanes, start));
            if let Some(d) = restamped {
                e.deadlines = d;
            }
            track.whatif_deadlines = Some(e.deadlines.clone());
            track.whatif_due = Some(e.deadlines.completion_due_at);
        }
        Event::ExtensionGranted(e) => {
            let shift = move_shift(track);
            track.recorded_due = Some(e.new_due_at);
            e.previous_due_at += shift;
            e.new_due_at += shift;
            e.remind_at += shift;
            e.warn_at += shift;
            track.whatif_due = Some(e.new_due_at);
        }
        Event::ClockResumed(e) => {
            let shift = move_shift(track);
            track.recorded_due = Some(e.new_due_at);
            e.new_due_at += shift;
            e.remind_at += shift;
            e.warn_at += shift;
            track.whatif_due = Some(e.new_due_at);
        }
        Event::ReferredToDepartment(e) => {
            e.sign_off_due_at = policy.sign_off_due(at);
            e.return_window_ends_at = policy.return_window_end(at);
        }
        Event::WhistleBlown(e) => {
            e.report_due_at = policy.whistle_report_due(at);
            track.report_due_at = Some(e.report_due_at);
        }
        Event::DepartmentReported(e) => {
            if let Some(due) = track.report_due_at {
                e.on_time = at <= due;
            }
        }
        _ => {}
    }
}

/// The instant limits run from under the proposed profile: receipt under `on_receipt`, else
/// the first classification (as `Request::clock_start` decides it).
fn clock_start(policy: &Policy, track: &Track, first_classified_at: Timestamp) -> Timestamp {
    match (policy.clock_start(), track.received_at) {
        (ClockStart::OnReceipt, Some(received)) => received,
        _ => first_classified_at,
    }
}

/// The deadlines `classify` stamps for a recorded item and urgency; `None` for an item the
/// catalogue in force no longer knows (the recorded deadlines then stand).
fn stamp(
    policy: &Policy,
    item: &str,
    urgency: schemas::Urgency,
    lanes: &[PriorityLane],
    start: Timestamp,
) -> Option<Deadlines> {
    policy
        .classify(item, Some(urgency), lanes, start)
        .ok()
        .map(|cl| cl.deadlines)
}

/// How far the re-derived completion deadline in force stands from the recorded one.
fn move_shift(track: &Track) -> Duration {
    match (track.whatif_due, track.recorded_due) {
        (Some(whatif), Some(recorded)) => whatif - recorded,
        _ => Duration::zero(),
    }
}
