//! Re-stamping provisional deadlines: under a calendar that covers them the core recomputes the
//! classification's deadlines and records them with the provisional ones; without such a
//! calendar, when they are not provisional, or when an extension moved them, it refuses.

mod harness;

use chrono::{DateTime, Utc};
use engine_core::Stage;
use engine_core::calendar::BUILTIN_CN_2025_2026;
use engine_core::policy::{BUILTIN_COMMUNITY_STATION, Policy};
use harness::*;
use schemas::Command;
use schemas::Event;
use schemas::command::{GrantExtension, RequestExtension, RestampDeadlines};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("an RFC 3339 instant")
}

/// A 2027 file as a deployment would add it (dates for the tests only).
const Y2027: &str = include_str!("fixtures/cn-2027-test.toml");

fn with_2027() -> Policy {
    Policy::from_files(
        ("profile.toml", BUILTIN_COMMUNITY_STATION),
        ("catalogue.toml", engine_core::catalogue::BUILTIN_CATALOGUE),
        &[
            ("cn-2025-2026.toml", BUILTIN_CN_2025_2026),
            ("cn-2027.toml", Y2027),
        ],
        ("directory.toml", engine_core::directory::BUILTIN_DIRECTORY),
    )
    .expect("policy")
}

fn restamp() -> Command {
    Command::RestampDeadlines(RestampDeadlines {
        reason: "calendar 2025,2026,2027".into(),
    })
}

#[test]
fn provisional_deadlines_are_restamped_once_under_a_covering_calendar() {
    let mut h = at_stage_from(Stage::Classified, at("2026-12-29T02:00:00Z"));
    // Without 2027 data the re-stamp has nothing to cover it.
    h.refuse(&system(), restamp(), "nothing_pending");
    h.policy = with_2027();
    let events = h.run(&system(), restamp());
    let [Event::DeadlinesRestamped(e)] = events.as_slice() else {
        panic!("one deadlines_restamped: {events:?}");
    };
    assert!(e.previous.provisional);
    assert_eq!(e.previous.completion_due_at, at("2027-01-01T09:30:00Z"));
    assert!(!e.deadlines.provisional);
    assert_eq!(e.deadlines.completion_due_at, at("2027-01-04T09:30:00Z"));
    assert_eq!(e.deadlines.response_due_at, e.previous.response_due_at);
    // In force now, and not provisional any more: a second re-stamp has nothing to do.
    h.refuse(&system(), restamp(), "nothing_pending");
    // Only the engine and the supervisor re-stamp.
    h.refuse(&station(), restamp(), "not_permitted");
}

#[test]
fn deadlines_not_provisional_or_moved_since_are_not_restamped() {
    let mut h = at_stage_from(Stage::Classified, at("2026-12-01T02:00:00Z"));
    h.policy = with_2027();
    h.refuse(&system(), restamp(), "nothing_pending");

    let mut moved = at_stage_from(Stage::InProgress, at("2026-12-29T02:00:00Z"));
    moved.run(
        &dept(LEAD),
        Command::RequestExtension(RequestExtension {
            reason: "permits".into(),
            working_days: 1,
        }),
    );
    moved.run(
        &supervisor(),
        Command::GrantExtension(GrantExtension::default()),
    );
    moved.policy = with_2027();
    moved.refuse(&system(), restamp(), "nothing_pending");
}
