//! Assignment to a person (assign / reassign / claim), the assisting departments' parts
//! (sign, report, return, their stamped deadline, overdue marks, the reply's record of their
//! absence or its wait for them), and the callback's outcome codes and timing.

mod harness;

use chrono::Duration;
use engine_core::Stage;
use engine_core::policy::BUILTIN_COMMUNITY_STATION;
use engine_core::supervision::due;
use harness::*;
use schemas::command::*;
use schemas::event::*;
use schemas::{AssignmentKind, CallbackOutcome, Command, DeadlineKind, Event, ReplyOutcome};

fn assign(to: &str) -> Command {
    Command::Assign(Assign {
        assignee: to.into(),
        reason: None,
    })
}

fn reassign(to: &str, reason: &str) -> Command {
    Command::Reassign(Reassign {
        assignee: to.into(),
        reason: reason.into(),
    })
}

#[test]
fn a_station_assigns_and_the_first_contact_owner_stays() {
    let mut h = at_stage(Stage::Classified);
    let owner = h.request.owner().map(str::to_owned);
    let events = h.run(&station(), assign("worker-2"));
    assert!(
        matches!(&events[..], [Event::RequestAssigned(RequestAssigned {
        assignee, unit, how: AssignmentKind::Assign, previous_assignee: None, reason: None,
    })] if assignee == "worker-2" && unit == COMMUNITY)
    );
    assert_eq!(h.request.assignee(), Some("worker-2"));
    assert_eq!(h.request.owner().map(str::to_owned), owner);
    h.refuse(&station(), assign("worker-3"), "already_recorded");
    h.refuse(&station(), reassign("worker-3", " "), "missing_field");
    h.refuse(&station(), reassign("worker-2", "same"), "invalid_field");
    let events = h.run(&station(), reassign("worker-3", "worker-2 on leave"));
    assert!(matches!(&events[..], [Event::RequestAssigned(e)]
        if e.how == AssignmentKind::Reassign && e.previous_assignee.as_deref() == Some("worker-2")
            && e.reason.as_deref() == Some("worker-2 on leave")));
    assert_eq!(h.request.assignee(), Some("worker-3"));
    // A handler of a department that does not hold the request cannot assign.
    h.refuse(&dept(LEAD), reassign("x", "y"), "not_addressed_to_you");
}

#[test]
fn a_referral_moves_assignment_to_the_lead_department() {
    let mut h = at_stage(Stage::Classified);
    h.run(&station(), assign("worker-2"));
    h.run(&station(), refer_cmd(LEAD, &[ASSISTING]));
    assert_eq!(h.request.assignee(), None, "a new unit starts unassigned");
    h.refuse(&station(), assign("worker-2"), "not_addressed_to_you");
    h.refuse(
        &dept(ASSISTING),
        Command::Claim(Claim::default()),
        "not_addressed_to_you",
    );
    h.refuse(&supervisor(), assign("someone"), "not_addressed_to_you");
    let events = h.run(&dept(LEAD), Command::Claim(Claim::default()));
    assert!(matches!(&events[..], [Event::RequestAssigned(e)]
        if e.how == AssignmentKind::Claim && e.assignee == dept(LEAD).id && e.unit == LEAD));
    h.refuse(
        &dept(LEAD),
        Command::Claim(Claim::default()),
        "already_recorded",
    );
    h.run(&dept(LEAD), reassign("handler-2", "specialist"));
    assert_eq!(h.request.assignee(), Some("handler-2"));
    assert_eq!(h.request.owner(), Some(station().id.as_str()));
}

#[test]
fn an_assisting_part_has_its_own_stamped_deadline_sign_off_and_return() {
    let mut h = at_stage(Stage::Classified);
    let events = h.run(&station(), refer_cmd(LEAD, &[ASSISTING, OTHER]));
    let Event::ReferredToDepartment(r) = &events[0] else {
        panic!("{events:?}")
    };
    let due_at = r
        .assistance_due_at
        .expect("stamped with assisting departments");
    assert_eq!(due_at, h.policy.assistance_due(h.now));
    assert_eq!(
        h.request.deadline_in_force(DeadlineKind::Assistance),
        Some(due_at)
    );
    let sign = || Command::SignAssistance(SignAssistance::default());
    h.refuse(&dept(LEAD), sign(), "not_addressed_to_you");
    h.run(&dept(ASSISTING), sign());
    h.refuse(&dept(ASSISTING), sign(), "already_recorded");
    let give_back = |reason: &str| {
        Command::ReturnAssistance(ReturnAssistance {
            reason: reason.into(),
        })
    };
    h.refuse(&dept(OTHER), give_back(""), "missing_field");
    h.run(&dept(OTHER), give_back("not our remit"));
    h.refuse(&dept(OTHER), give_back("again"), "already_recorded");
    h.run(&dept(LEAD), Command::SignFor(SignFor::default()));
    let report = Command::ReportAssistance(ReportAssistance {
        note: "done".into(),
    });
    h.refuse(&dept(OTHER), report.clone(), "already_recorded");
    assert_eq!(
        h.request.participants().awaited(),
        vec![ASSISTING.to_string()]
    );
    h.run(&dept(ASSISTING), report);
    assert!(h.request.participants().awaited().is_empty());
    assert_eq!(h.request.deadline_in_force(DeadlineKind::Assistance), None);
}

#[test]
fn a_referral_without_assisting_departments_stamps_no_assisting_deadline() {
    let mut h = at_stage(Stage::Classified);
    let events = h.run(&station(), refer_cmd(LEAD, &[]));
    assert!(matches!(&events[0], Event::ReferredToDepartment(r) if r.assistance_due_at.is_none()));
}

#[test]
fn a_missed_assisting_deadline_is_marked_overdue_once_and_does_not_escalate() {
    let mut h = at_stage(Stage::InProgress);
    let due_at = h
        .request
        .deadline_in_force(DeadlineKind::Assistance)
        .unwrap();
    h.now = due_at + Duration::minutes(1);
    let mark = Command::MarkOverdue(MarkOverdue {
        deadline: DeadlineKind::Assistance,
        due_at,
    });
    assert!(due(&h.request, h.now, &h.policy).contains(&mark));
    h.run(&system(), mark.clone());
    h.refuse(&system(), mark.clone(), "already_recorded");
    h.now = due_at + h.policy.escalation_grace() * 3;
    let later = due(&h.request, h.now, &h.policy);
    assert!(!later.contains(&mark));
    assert!(
        !later
            .iter()
            .any(|c| matches!(c, Command::Escalate(e) if e.reason.contains("Assistance"))),
        "{later:?}"
    );
}

#[test]
fn the_reply_records_absent_assisting_parts_by_default() {
    let mut h = at_stage(Stage::InProgress);
    let events = h.run(&dept(LEAD), reply_cmd(ReplyOutcome::Resolved));
    assert!(matches!(&events[..], [
        Event::AssistanceAbsenceRecorded(AssistanceAbsenceRecorded { departments }),
        Event::ResultReplied(_),
    ] if departments == &vec![ASSISTING.to_string()]));
}

#[test]
fn a_profile_can_make_the_reply_wait_for_assisting_parts() {
    let mut h = at_stage(Stage::InProgress);
    let profile =
        BUILTIN_COMMUNITY_STATION.replace("at_reply = \"record_absence\"", "at_reply = \"wait\"");
    assert_ne!(profile, BUILTIN_COMMUNITY_STATION);
    h.policy = engine_core::Policy::builtin(&profile).unwrap();
    let refusal = h.refuse(
        &dept(LEAD),
        reply_cmd(ReplyOutcome::Resolved),
        "assistance_outstanding",
    );
    assert!(refusal.to_string().contains(ASSISTING));
    h.run(
        &dept(ASSISTING),
        Command::ReportAssistance(ReportAssistance {
            note: "done".into(),
        }),
    );
    let events = h.run(&dept(LEAD), reply_cmd(ReplyOutcome::Resolved));
    assert!(matches!(&events[..], [Event::ResultReplied(_)]));
}

fn callback(outcome: Option<CallbackOutcome>, reached: Option<bool>) -> Command {
    Command::RecordCallback(RecordCallback {
        outcome,
        reached,
        note: None,
    })
}

#[test]
fn a_callback_records_its_outcome_and_timing_from_the_reply() {
    let mut h = at_stage(Stage::AwaitingCallback);
    let replied_at = h.request.reply().unwrap().replied_at;
    h.refuse(&station(), callback(None, None), "missing_field");
    h.refuse(
        &station(),
        callback(Some(CallbackOutcome::Busy), Some(true)),
        "invalid_field",
    );
    let events = h.run(
        &station(),
        callback(Some(CallbackOutcome::WrongNumber), None),
    );
    let Event::CallbackAttempted(a) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(a.outcome, Some(CallbackOutcome::WrongNumber));
    assert!(!a.reached);
    assert_eq!(
        a.since_reply_seconds,
        Some((h.now - replied_at).num_seconds())
    );
    assert_eq!(a.within_limit, Some(true));
    h.now = h.policy.callback_due(replied_at) + Duration::seconds(1);
    let events = h.try_run(&station(), callback(None, Some(false))).unwrap();
    assert!(matches!(&events[0], Event::CallbackAttempted(a)
        if a.outcome == Some(CallbackOutcome::Unreachable) && a.within_limit == Some(false)));
}

#[test]
fn a_resident_who_refuses_the_callback_lets_the_request_be_archived() {
    let mut h = at_stage(Stage::AwaitingCallback);
    h.refuse(
        &station(),
        Command::Archive(Archive::default()),
        "callback_pending",
    );
    h.run(&station(), callback(Some(CallbackOutcome::Refused), None));
    assert!(h.request.resident_reached());
    h.run(&station(), Command::Archive(Archive::default()));
    assert_eq!(h.stage(), Stage::Archived);
}
