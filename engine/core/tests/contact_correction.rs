//! `correct_contact`: who may correct a resident's contact data, on which requests, and what
//! the recorded fact holds (a reason, never the data).

mod harness;

use engine_core::Stage;
use engine_core::request::MAX_CONTACT_CORRECTION_REASON_CHARS;
use harness::*;
use schemas::command::CorrectContact;
use schemas::event::ContactCorrected;
use schemas::{Command, Event, EventKind};

fn correct(reason: &str) -> Command {
    Command::CorrectContact(CorrectContact {
        reason: reason.into(),
    })
}

#[test]
fn station_staff_correct_a_contact_and_only_the_reason_is_recorded() {
    let mut h = at_stage(Stage::InProgress);
    let before = h.request.clone();
    let events = h.run(&station(), correct("the resident gave a new phone number"));
    assert_eq!(
        events,
        vec![Event::ContactCorrected(ContactCorrected {
            reason: "the resident gave a new phone number".into(),
        })]
    );
    assert_eq!(h.stage(), Stage::InProgress, "no stage change");
    assert_eq!(h.request.version(), before.version() + 1);
    assert_eq!(h.request.contact_ref(), before.contact_ref());
    assert_eq!(
        h.last_event_id(EventKind::ContactCorrected),
        h.events.last().map(|e| e.event_id)
    );
    h.run(&supervisor(), correct("a second correction"));
    assert_eq!(h.stage(), Stage::InProgress);
}

#[test]
fn an_archived_or_declined_request_can_still_be_corrected() {
    for stage in [Stage::Archived, Stage::NotAccepted, Stage::Received] {
        let mut h = at_stage(stage);
        h.run(&station(), correct("wrong digit in the phone number"));
        assert_eq!(h.stage(), stage);
    }
}

#[test]
fn only_station_staff_of_the_community_and_supervisors_may_correct() {
    let mut h = at_stage(Stage::SignedFor);
    // The lead department handles the request but may not change who the resident is.
    h.refuse(&dept(LEAD), correct("x"), "not_permitted");
    h.refuse(&intake(), correct("x"), "not_permitted");
    h.refuse(&auditor(), correct("x"), "not_permitted");
    h.refuse(&system(), correct("x"), "not_permitted");
    let mut elsewhere = station();
    elsewhere.unit = Some("sq-0999".into());
    h.refuse(&elsewhere, correct("x"), "not_addressed_to_you");
}

#[test]
fn rights_come_before_existence() {
    let mut h = at_stage(Stage::New);
    h.refuse(&dept(LEAD), correct("x"), "not_permitted");
    h.refuse(&station(), correct("x"), "not_addressed_to_you");
    h.refuse(&supervisor(), correct("x"), "does_not_exist");
}

#[test]
fn an_anonymous_request_has_no_contact_to_correct() {
    let mut h = Harness::new();
    h.run(&intake(), receive_cmd(true));
    h.refuse(
        &station(),
        correct("a phone number after all"),
        "no_contact",
    );
    h.refuse(
        &supervisor(),
        correct("a phone number after all"),
        "no_contact",
    );
}

#[test]
fn a_reason_is_required_and_bounded() {
    let mut h = at_stage(Stage::Accepted);
    let refusal = h.refuse(&station(), correct("  "), "missing_field");
    assert_eq!(refusal.field(), Some("reason"));
    let long = "长".repeat(MAX_CONTACT_CORRECTION_REASON_CHARS + 1);
    let refusal = h.refuse(&station(), correct(&long), "invalid_field");
    assert_eq!(refusal.field(), Some("reason"));
    h.run(
        &station(),
        correct(&"长".repeat(MAX_CONTACT_CORRECTION_REASON_CHARS)),
    );
}
