//! What-if re-stamping (`engine_core::whatif`): under the profile that recorded a history the
//! re-stamp changes nothing; under another profile the deadlines are those `classify` stamps
//! under it, an extension keeps its length on the new deadline, the accept and sign-off
//! deadlines follow the profile's limits, and the judgements made against them follow.

mod harness;

use chrono::Duration;
use engine_core::Stage;
use engine_core::policy::{BUILTIN_COMMUNITY_STATION, Policy, Profile};
use engine_core::whatif::Restamper;
use harness::*;
use schemas::command::{GrantExtension, RequestExtension};
use schemas::{Command, Event, EventEnvelope};

/// The built-in policy under the community-station profile edited by `edit`.
fn proposed(edit: impl Fn(String) -> String) -> Policy {
    let text = edit(BUILTIN_COMMUNITY_STATION.to_string());
    let profile = Profile::parse("proposed.toml", &text).expect("a valid proposed profile");
    Policy::for_tests().with_profile(profile)
}

fn restamped(policy: &Policy, events: &[EventEnvelope]) -> (Vec<EventEnvelope>, u64) {
    let mut copy = events.to_vec();
    let mut restamper = Restamper::new(policy);
    // In two slices, as commits arrive: the request's track carries over.
    let (a, b) = copy.split_at_mut(3);
    restamper.rewrite(a);
    restamper.rewrite(b);
    let changed = restamper.changed();
    (copy, changed)
}

fn extended() -> Harness {
    let mut h = at_stage_from(Stage::InProgress, start());
    h.run(
        &dept(LEAD),
        Command::RequestExtension(RequestExtension {
            reason: "permits".into(),
            working_days: 2,
        }),
    );
    h.run(
        &supervisor(),
        Command::GrantExtension(GrantExtension::default()),
    );
    h
}

fn find<T>(events: &[EventEnvelope], pick: impl Fn(&Event) -> Option<&T>) -> &T {
    events
        .iter()
        .find_map(|e| pick(&e.event))
        .expect("the event is in the history")
}

#[test]
fn under_the_recorded_profile_nothing_changes() {
    let h = extended();
    let (copy, changed) = restamped(&Policy::for_tests(), &h.events);
    assert_eq!(changed, 0);
    assert_eq!(copy, h.events);
}

#[test]
fn a_later_clock_start_moves_the_classification_and_the_extension_with_it() {
    let h = extended();
    let policy = proposed(|t| {
        t.replace(
            "clock_start = \"on_receipt\"",
            "clock_start = \"next_working_day\"",
        )
    });
    let (copy, changed) = restamped(&policy, &h.events);
    assert!(changed >= 2, "classification and extension re-stamped");
    let recorded = find(&h.events, |e| match e {
        Event::RequestClassified(c) => Some(c),
        _ => None,
    });
    let whatif = find(&copy, |e| match e {
        Event::RequestClassified(c) => Some(c),
        _ => None,
    });
    let expected = policy
        .classify(ITEM, Some(recorded.urgency), &[], start())
        .expect("item known")
        .deadlines;
    assert_eq!(whatif.deadlines, expected);
    assert!(whatif.deadlines.completion_due_at > recorded.deadlines.completion_due_at);
    assert_eq!(whatif.deadlines.policy, "community-station@2026.1");
    let shift = whatif.deadlines.completion_due_at - recorded.deadlines.completion_due_at;

    let pick = |e: &Event| match e {
        Event::ExtensionGranted(g) => Some(g.clone()),
        _ => None,
    };
    let recorded_ext = h
        .events
        .iter()
        .find_map(|e| pick(&e.event))
        .expect("granted");
    let whatif_ext = copy.iter().find_map(|e| pick(&e.event)).expect("granted");
    assert_eq!(
        whatif_ext.previous_due_at,
        whatif.deadlines.completion_due_at
    );
    assert_eq!(whatif_ext.new_due_at, recorded_ext.new_due_at + shift);
    assert_eq!(
        whatif_ext.new_due_at - whatif_ext.previous_due_at,
        recorded_ext.new_due_at - recorded_ext.previous_due_at,
        "the extension keeps its length"
    );
    // Who did what, and when, stays.
    for (a, b) in h.events.iter().zip(&copy) {
        assert_eq!(
            (a.event_id, a.occurred_at, &a.actor),
            (b.event_id, b.occurred_at, &b.actor)
        );
    }
}

#[test]
fn a_shorter_accept_limit_rejudges_a_late_acceptance_and_sign_off_follows_its_limit() {
    let mut h = Harness::new();
    h.run(&intake(), receive_cmd(false));
    h.advance(Duration::hours(3));
    h.run(&station(), Command::Accept(Default::default()));
    h.run(&station(), classify_cmd(None));
    h.run(&station(), refer_cmd(LEAD, &[]));
    let policy = proposed(|t| {
        t.replace(
            "accept = { amount = 24, unit = \"natural_hours\" }",
            "accept = { amount = 2, unit = \"natural_hours\" }",
        )
        .replace(
            "sign_off = { amount = 4, unit = \"working_hours\" }",
            "sign_off = { amount = 1, unit = \"working_hours\" }",
        )
    });
    let (copy, _) = restamped(&policy, &h.events);
    let received = find(&copy, |e| match e {
        Event::RequestReceived(r) => Some(r),
        _ => None,
    });
    assert_eq!(
        received.accept_due_at,
        h.events[0].occurred_at + Duration::hours(2)
    );
    let accepted = |events: &[EventEnvelope]| {
        find(events, |e| match e {
            Event::RequestAccepted(a) => Some(a),
            _ => None,
        })
        .within_limit
    };
    assert!(accepted(&h.events), "recorded: within 24 hours");
    assert!(!accepted(&copy), "proposed: 3 hours is past 2");
    let referred = |events: &[EventEnvelope]| {
        find(events, |e| match e {
            Event::ReferredToDepartment(r) => Some(r),
            _ => None,
        })
        .sign_off_due_at
    };
    let referred_at = h.events.last().expect("referred").occurred_at;
    assert_eq!(referred(&copy), policy.sign_off_due(referred_at));
    assert!(referred(&copy) < referred(&h.events));
}
