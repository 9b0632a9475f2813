//! Corrections per kind of event: what each undoes (the state is the fold of the history
//! without the neutralised event) and when it is refused because something was built on it.

mod harness;

use engine_core::{Request, Stage};
use harness::*;
use schemas::command::*;
use schemas::{Command, DeadlineKind, Disposition, EventKind, ReplyOutcome};
use uuid::Uuid;

fn correct(event_id: Uuid) -> Command {
    Command::Correct(Correct {
        event_id,
        reason: "entered in error".into(),
    })
}

/// Corrects the last event of `kind`, which must be accepted.
fn correct_last(h: &mut Harness, kind: EventKind) -> Uuid {
    let id = h.last_event_id(kind).expect("event recorded");
    h.run(&supervisor(), correct(id));
    id
}

/// Asserts that correcting the last event of `kind` is refused, naming `why`.
fn refuse_last(h: &mut Harness, kind: EventKind, why: &str) {
    let id = h.last_event_id(kind).expect("event recorded");
    let refusal = h.refuse(&supervisor(), correct(id), "not_correctable");
    assert!(refusal.to_string().contains(why), "{refusal}");
}

/// The state folded from the recorded envelopes without `skipped`: what a correction must
/// leave (apart from the history, which keeps everything).
fn without(h: &Harness, skipped: Uuid) -> Request {
    let kept = h
        .events
        .iter()
        .filter(|e| e.event_id != skipped && e.event.kind() != EventKind::EventCorrected);
    Request::from_history(h.request.id(), kept)
}

fn assert_as_if_never_recorded(h: &Harness, corrected: Uuid) {
    let expected = without(h, corrected);
    assert_eq!(h.stage(), expected.stage());
    assert_eq!(h.request.handling(), expected.handling());
    assert_eq!(h.request.deadlines(), expected.deadlines());
    assert_eq!(h.request.participants(), expected.participants());
    assert_eq!(h.request.extensions(), expected.extensions());
    assert_eq!(h.request.paused_since(), expected.paused_since());
    let applied = h.request.history().iter().find(|a| a.event_id == corrected);
    assert!(applied.expect("history keeps it").corrected);
    assert_eq!(h.request.version(), h.events.len() as u64);
}

#[test]
fn a_mistaken_referral_corrected_while_dispatched_goes_back_to_classified() {
    let mut h = at_stage(Stage::Dispatched);
    let referral = correct_last(&mut h, EventKind::ReferredToDepartment);
    assert_eq!(h.stage(), Stage::Classified);
    assert_eq!(h.request.referral(), None);
    assert_eq!(h.request.lead_department(), None);
    assert_as_if_never_recorded(&h, referral);
    // The lead of the corrected referral can no longer act on it; the right one is referred.
    h.refuse(
        &dept(LEAD),
        Command::SignFor(SignFor::default()),
        "not_addressed_to_you",
    );
    h.run(&station(), refer_cmd(OTHER, &[]));
    assert_eq!(h.request.lead_department(), Some(OTHER));
    assert_eq!(h.request.referral().map(|r| r.number), Some(1));
    h.run(&dept(OTHER), Command::SignFor(SignFor::default()));
    assert_eq!(h.stage(), Stage::SignedFor);
}

#[test]
fn a_referral_signed_for_is_no_longer_correctable_but_the_sign_off_is() {
    let mut h = at_stage(Stage::SignedFor);
    refuse_last(&mut h, EventKind::ReferredToDepartment, "left the stage");
    let signed = correct_last(&mut h, EventKind::ReferralSignedFor);
    assert_eq!(h.stage(), Stage::Dispatched);
    assert_eq!(h.request.referral().map(|r| r.signed), Some(false));
    assert_as_if_never_recorded(&h, signed);
    // With the sign-off gone, the referral is the last stage change again.
    correct_last(&mut h, EventKind::ReferredToDepartment);
    assert_eq!(h.stage(), Stage::Classified);
}

#[test]
fn a_redispatch_corrected_goes_back_to_the_pending_return() {
    let mut h = at_stage(Stage::ReturnRequested);
    h.run(&supervisor(), refer_cmd(OTHER, &[]));
    assert_eq!(h.request.referral().map(|r| r.number), Some(2));
    let redispatch = correct_last(&mut h, EventKind::ReferredToDepartment);
    assert_eq!(h.stage(), Stage::ReturnRequested);
    assert_eq!(h.request.lead_department(), Some(LEAD));
    assert_as_if_never_recorded(&h, redispatch);
}

#[test]
fn a_decline_corrected_while_declined_reopens_intake_and_not_once_archived() {
    let mut h = at_stage(Stage::NotAccepted);
    let decline = correct_last(&mut h, EventKind::RequestDeclined);
    assert_eq!(h.stage(), Stage::Received);
    assert_eq!(h.request.disposition(), None);
    assert_as_if_never_recorded(&h, decline);
    h.run(&station(), Command::Accept(Accept::default()));

    let mut h = at_stage(Stage::TransferredEmergency);
    h.run(&station(), Command::Archive(Archive::default()));
    refuse_last(&mut h, EventKind::RequestDeclined, "left the stage");
    assert_eq!(
        h.request.disposition(),
        Some(Disposition::EmergencyTransfer)
    );
}

#[test]
fn direct_handling_corrected_before_anything_else_goes_back_to_classified() {
    let mut h = at_stage(Stage::DirectHandling);
    let started = correct_last(&mut h, EventKind::DirectHandlingStarted);
    assert_eq!(h.stage(), Stage::Classified);
    assert_eq!(h.request.handling(), None);
    assert_as_if_never_recorded(&h, started);
}

#[test]
fn a_granted_extension_corrected_no_longer_extends_the_completion_deadline() {
    let mut h = at_stage(Stage::InProgress);
    let due = h.request.deadline_in_force(DeadlineKind::Completion);
    h.run(
        &dept(LEAD),
        Command::RequestExtension(RequestExtension {
            reason: "waiting on permits".into(),
            working_days: 2,
        }),
    );
    h.run(
        &supervisor(),
        Command::GrantExtension(GrantExtension::default()),
    );
    assert_ne!(h.request.deadline_in_force(DeadlineKind::Completion), due);
    let grant = correct_last(&mut h, EventKind::ExtensionGranted);
    assert_eq!(h.request.deadline_in_force(DeadlineKind::Completion), due);
    assert_eq!(h.request.extensions().granted, 0);
    // The request awaits the decision again, which is now denied.
    assert_eq!(h.request.extensions().pending, Some(2));
    assert_as_if_never_recorded(&h, grant);
    h.run(
        &supervisor(),
        Command::DenyExtension(DenyExtension {
            reason: "not needed".into(),
        }),
    );
    assert_eq!(h.request.extensions().pending, None);
    h.run(&dept(LEAD), reply_cmd(ReplyOutcome::Resolved));
    refuse_last(&mut h, EventKind::ExtensionDenied, "replied");
}

#[test]
fn a_pause_corrected_lets_the_clock_run_as_if_never_paused() {
    let mut h = at_stage(Stage::InProgress);
    h.run(
        &dept(LEAD),
        Command::PauseClock(PauseClock {
            reason: "waiting on resident".into(),
        }),
    );
    assert!(h.request.paused_since().is_some());
    let pause = correct_last(&mut h, EventKind::ClockPaused);
    assert_eq!(h.request.paused_since(), None);
    assert_as_if_never_recorded(&h, pause);
    h.refuse(
        &dept(LEAD),
        Command::ResumeClock(ResumeClock::default()),
        "nothing_pending",
    );
}

#[test]
fn a_corrected_callback_no_longer_counts_as_reaching_the_resident() {
    let mut h = at_stage(Stage::AwaitingCallback);
    h.run(
        &station(),
        Command::RecordCallback(RecordCallback {
            outcome: Some(schemas::CallbackOutcome::Reached),
            reached: None,
            note: None,
        }),
    );
    assert!(h.request.resident_reached());
    correct_last(&mut h, EventKind::CallbackAttempted);
    assert!(!h.request.resident_reached());
    assert_eq!(h.request.callback_attempts(), 0);
}

#[test]
fn a_corrected_assistance_report_leaves_the_part_awaited() {
    let mut h = at_stage(Stage::InProgress);
    h.run(
        &dept(ASSISTING),
        Command::ReportAssistance(ReportAssistance {
            note: "cleaned".into(),
        }),
    );
    let reported = |h: &Harness| {
        h.request
            .referral()
            .is_some_and(|r| r.assistance_reported.contains(ASSISTING))
    };
    assert!(reported(&h));
    let report = correct_last(&mut h, EventKind::AssistanceReported);
    assert!(!reported(&h));
    assert_as_if_never_recorded(&h, report);
}

#[test]
fn receipts_acceptances_archives_supervision_and_corrections_are_never_corrected() {
    let mut h = at_stage(Stage::Archived);
    refuse_last(&mut h, EventKind::RequestReceived, "built on it");
    refuse_last(&mut h, EventKind::RequestAccepted, "built on it");
    refuse_last(&mut h, EventKind::Archived, "built on it");
    let note = correct_last(&mut h, EventKind::Rated);
    refuse_last(&mut h, EventKind::EventCorrected, "itself never corrected");
    assert!(
        h.request
            .history()
            .iter()
            .any(|a| a.event_id == note && a.corrected)
    );

    let mut h = at_stage(Stage::Dispatched);
    let due = h
        .request
        .deadline_in_force(DeadlineKind::SignOff)
        .expect("sign-off due");
    h.run(
        &system(),
        Command::Remind(Remind {
            deadline: DeadlineKind::SignOff,
            due_at: due,
        }),
    );
    refuse_last(&mut h, EventKind::ReminderSent, "engine's own");
}
