//! Given/when/then tests for every refusal reason and the main happy paths. Each refusal is
//! asserted by code, and `Harness::refuse` checks that nothing was recorded.

mod harness;

use chrono::Duration;
use engine_core::Stage;
use harness::*;
use schemas::command::*;
use schemas::{
    Command, DeadlineKind, Disposition, Event, EventKind, FeedbackKind, ReplyOutcome, Resolution,
    Satisfaction, SupervisionLevel, UpwardLevel,
};

fn contact() -> Command {
    Command::ContactResident(ContactResident {
        method: "phone".into(),
        note: None,
    })
}

#[test]
fn rating_before_reply_or_review_is_refused() {
    let mut h = at_stage(Stage::InProgress);
    h.refuse(
        &station(),
        rate_cmd(Satisfaction::Satisfied, Resolution::Resolved),
        "wrong_stage",
    );
    let mut h = at_stage(Stage::Replied);
    h.refuse(
        &station(),
        rate_cmd(Satisfaction::Satisfied, Resolution::Resolved),
        "wrong_stage",
    );
}

#[test]
fn an_archived_request_takes_nothing_but_corrections() {
    let mut h = at_stage(Stage::Archived);
    h.refuse(&supervisor(), refer_cmd(LEAD, &[]), "wrong_stage");
    h.refuse(
        &station(),
        Command::NoteProgress(NoteProgress {
            note: "late".into(),
        }),
        "wrong_stage",
    );
    let rated = h.last_event_id(EventKind::Rated).unwrap();
    h.run(
        &supervisor(),
        Command::Correct(Correct {
            event_id: rated,
            reason: "wrong resident".into(),
        }),
    );
    assert!(!h.request.rating().unwrap().counts());
    assert_eq!(h.stage(), Stage::Archived);
    h.refuse(
        &supervisor(),
        Command::Correct(Correct {
            event_id: rated,
            reason: "again".into(),
        }),
        "already_recorded",
    );
}

#[test]
fn a_department_cannot_act_on_a_referral_not_addressed_to_it() {
    let mut h = at_stage(Stage::Dispatched);
    h.refuse(
        &dept(OTHER),
        Command::SignFor(SignFor::default()),
        "not_addressed_to_you",
    );
    h.refuse(
        &dept(OTHER),
        Command::NoteProgress(NoteProgress { note: "x".into() }),
        "not_addressed_to_you",
    );
    h.refuse(
        &station(),
        Command::SignFor(SignFor::default()),
        "not_permitted",
    );
    h.run(&dept(LEAD), Command::SignFor(SignFor::default()));
    h.refuse(&dept(ASSISTING), contact(), "not_addressed_to_you");
    h.refuse(
        &dept(OTHER),
        Command::ReportAssistance(ReportAssistance { note: "x".into() }),
        "not_addressed_to_you",
    );
    h.run(
        &dept(ASSISTING),
        Command::ReportAssistance(ReportAssistance {
            note: "swept".into(),
        }),
    );
    h.run(
        &dept(ASSISTING),
        Command::NoteProgress(NoteProgress {
            note: "swept again".into(),
        }),
    );
}

#[test]
fn returns_only_inside_the_window_and_never_after_a_rejected_return() {
    let mut h = at_stage(Stage::Dispatched);
    let end = h.request.referral().unwrap().return_window_ends_at;
    let mut late = h.clone();
    late.now = end + Duration::seconds(1);
    late.refuse(
        &dept(LEAD),
        Command::ReturnReferral(ReturnReferral {
            reason: "not ours".into(),
            legal_basis: None,
        }),
        "window_closed",
    );
    h.refuse(
        &dept(LEAD),
        Command::ReturnReferral(ReturnReferral {
            reason: " ".into(),
            legal_basis: None,
        }),
        "missing_field",
    );
    h.run(
        &dept(LEAD),
        Command::ReturnReferral(ReturnReferral {
            reason: "not ours".into(),
            legal_basis: None,
        }),
    );
    // Re-routing to the department that returned it is refused.
    h.refuse(&station(), refer_cmd(LEAD, &[]), "invalid_field");
    h.run(
        &supervisor(),
        Command::RejectReturn(RejectReturn {
            reason: "on the duty list".into(),
        }),
    );
    assert_eq!(h.stage(), Stage::SignedFor);
    h.refuse(
        &dept(LEAD),
        Command::ReturnReferral(ReturnReferral {
            reason: "still not ours".into(),
            legal_basis: None,
        }),
        "referral_locked",
    );
}

#[test]
fn a_return_re_routes_to_another_department_with_a_new_referral_number() {
    let mut h = at_stage(Stage::ReturnRequested);
    h.run(&station(), refer_cmd(OTHER, &[]));
    assert_eq!(h.request.lead_department(), Some(OTHER));
    assert_eq!(h.request.referral().unwrap().number, 2);
    // A redispatch of a live referral is the centre's only.
    h.refuse(&station(), refer_cmd(LEAD, &[]), "not_permitted");
    h.run(&supervisor(), refer_cmd(LEAD, &[]));
    assert_eq!(h.request.referral().unwrap().number, 3);
}

#[test]
fn referral_fields_are_checked() {
    let mut h = at_stage(Stage::Classified);
    h.refuse(
        &station(),
        refer_cmd("no-such-dept", &[]),
        "unknown_reference",
    );
    h.refuse(&station(), refer_cmd(LEAD, &[LEAD]), "invalid_field");
    h.refuse(
        &station(),
        refer_cmd(LEAD, &[ASSISTING, ASSISTING]),
        "invalid_field",
    );
    h.refuse(
        &station(),
        refer_cmd(LEAD, &["no-such-dept"]),
        "unknown_reference",
    );
}

fn extension(days: u32) -> Command {
    Command::RequestExtension(RequestExtension {
        reason: "permits".into(),
        working_days: days,
    })
}

#[test]
fn extensions_are_capped_by_count_length_and_total() {
    let mut h = at_stage(Stage::InProgress);
    let lead = dept(LEAD);
    h.refuse(&lead, extension(4), "limit_reached");
    h.refuse(&lead, extension(0), "invalid_field");
    h.refuse(
        &supervisor(),
        Command::GrantExtension(GrantExtension::default()),
        "nothing_pending",
    );
    let before = h.request.deadlines().unwrap().completion_due_at;
    h.run(&lead, extension(3));
    h.refuse(&lead, extension(1), "already_pending");
    h.refuse(
        &lead,
        Command::GrantExtension(GrantExtension::default()),
        "not_permitted",
    );
    let events = h.run(
        &supervisor(),
        Command::GrantExtension(GrantExtension::default()),
    );
    let Event::ExtensionGranted(g) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(g.previous_due_at, before);
    assert!(g.new_due_at > before);
    assert_eq!(
        h.request.deadlines().unwrap().completion_due_at,
        g.new_due_at
    );
    h.run(&lead, extension(3));
    h.run(
        &supervisor(),
        Command::GrantExtension(GrantExtension::default()),
    );
    h.run(&lead, extension(3));
    h.run(
        &supervisor(),
        Command::DenyExtension(DenyExtension {
            reason: "enough".into(),
        }),
    );
    // Two granted (six working days); the denied request does not count.
    h.run(&lead, extension(3));
    h.run(
        &supervisor(),
        Command::GrantExtension(GrantExtension::default()),
    );
    // Three granted: the count cap.
    h.refuse(&lead, extension(1), "limit_reached");
}

#[test]
fn extensions_end_when_the_completion_deadline_passes() {
    let mut h = at_stage(Stage::InProgress);
    let lead = dept(LEAD);
    for _ in 0..3 {
        h.run(&lead, extension(3));
        h.run(
            &supervisor(),
            Command::GrantExtension(GrantExtension::default()),
        );
    }
    assert_eq!(h.request.extensions().granted_working_days, 9);
    let mut late = h.clone();
    late.now = h.request.deadlines().unwrap().completion_due_at;
    late.refuse(&lead, extension(1), "window_closed");
}

#[test]
fn pausing_moves_the_completion_deadline_by_the_paused_time() {
    let mut h = at_stage(Stage::InProgress);
    let lead = dept(LEAD);
    h.refuse(
        &lead,
        Command::ResumeClock(ResumeClock::default()),
        "nothing_pending",
    );
    let due = h.request.deadlines().unwrap().completion_due_at;
    h.run(
        &lead,
        Command::PauseClock(PauseClock {
            reason: "awaiting documents".into(),
        }),
    );
    assert_eq!(h.request.deadline_in_force(DeadlineKind::Completion), None);
    h.refuse(
        &lead,
        Command::PauseClock(PauseClock {
            reason: "again".into(),
        }),
        "already_pending",
    );
    h.advance(Duration::hours(5));
    let events = h.run(&lead, Command::ResumeClock(ResumeClock::default()));
    let Event::ClockResumed(r) = &events[0] else {
        panic!()
    };
    assert_eq!(r.paused_seconds, 5 * 3600 + 60);
    assert_eq!(r.new_due_at, due + Duration::seconds(r.paused_seconds));
    assert_eq!(
        h.request.deadline_in_force(DeadlineKind::Completion),
        Some(r.new_due_at)
    );
}

#[test]
fn reopen_is_capped_and_needs_a_dissatisfied_rating() {
    let mut h = at_stage(Stage::Rated);
    h.refuse(
        &station(),
        Command::Reopen(Reopen { reason: "x".into() }),
        "not_permitted",
    );
    let max = h.policy.limits().max_reopens;
    for n in 1..=max {
        let events = h.run(
            &supervisor(),
            Command::Reopen(Reopen {
                reason: "unresolved".into(),
            }),
        );
        assert!(matches!(&events[0], Event::Reopened(r) if r.reopen_count == n));
        assert_eq!(h.stage(), Stage::InProgress);
        h.run(&dept(LEAD), reply_cmd(ReplyOutcome::Resolved));
        h.run(
            &supervisor(),
            Command::ReviewReply(ReviewReply {
                approved: true,
                reason: None,
            }),
        );
        h.run(
            &station(),
            rate_cmd(Satisfaction::Dissatisfied, Resolution::Unresolved),
        );
    }
    h.refuse(
        &supervisor(),
        Command::Reopen(Reopen {
            reason: "again".into(),
        }),
        "limit_reached",
    );
    let mut happy = at_stage(Stage::AwaitingCallback);
    happy.run(
        &station(),
        rate_cmd(Satisfaction::Satisfied, Resolution::Resolved),
    );
    happy.refuse(
        &supervisor(),
        Command::Reopen(Reopen { reason: "x".into() }),
        "rating_does_not_allow_reopen",
    );
}

#[test]
fn a_failed_review_reopens_to_the_handling_unit() {
    let mut h = at_stage(Stage::Replied);
    h.refuse(
        &supervisor(),
        Command::ReviewReply(ReviewReply {
            approved: false,
            reason: None,
        }),
        "missing_field",
    );
    let events = h.run(
        &supervisor(),
        Command::ReviewReply(ReviewReply {
            approved: false,
            reason: Some("应办未办".into()),
        }),
    );
    assert_eq!(events.len(), 2);
    assert_eq!(h.stage(), Stage::InProgress);
    assert_eq!(h.request.reopen_count(), 1);
    h.run(&dept(LEAD), reply_cmd(ReplyOutcome::PartiallyResolved));
}

#[test]
fn an_outstanding_whistle_blocks_the_reply() {
    let mut h = at_stage(Stage::InProgress);
    let blow = Command::BlowWhistle(BlowWhistle {
        departments: vec![OTHER.into(), ASSISTING.into()],
        summary: "joint".into(),
    });
    let mut foreign = station();
    foreign.unit = Some("sq-0102".into());
    h.refuse(&foreign, blow.clone(), "not_addressed_to_you");
    h.refuse(
        &station(),
        Command::BlowWhistle(BlowWhistle {
            departments: vec![],
            summary: "x".into(),
        }),
        "missing_field",
    );
    h.run(&station(), blow.clone());
    h.refuse(&station(), blow, "already_pending");
    h.refuse(
        &dept(LEAD),
        reply_cmd(ReplyOutcome::Resolved),
        "whistle_outstanding",
    );
    let report = |d: &str| {
        Command::ReportToWhistle(ReportToWhistle {
            department: d.into(),
            note: "here".into(),
        })
    };
    h.refuse(&dept(LEAD), report(OTHER), "not_addressed_to_you");
    h.refuse(&dept(LEAD), report(LEAD), "not_addressed_to_you");
    h.run(&dept(OTHER), report(OTHER));
    h.refuse(&dept(OTHER), report(OTHER), "already_recorded");
    h.refuse(
        &dept(LEAD),
        reply_cmd(ReplyOutcome::Resolved),
        "whistle_outstanding",
    );
    let rate = |d: &str, score| {
        Command::RateDepartment(RateDepartment {
            department: d.into(),
            score,
            comment: None,
        })
    };
    h.refuse(&station(), rate(ASSISTING, 4), "invalid_field");
    h.refuse(&station(), rate(OTHER, 6), "invalid_field");
    h.run(&station(), rate(OTHER, 5));
    h.refuse(&station(), rate(OTHER, 4), "already_recorded");
    h.run(
        &station(),
        Command::ReleaseFromWhistle(ReleaseFromWhistle {
            department: ASSISTING.into(),
            reason: "not needed".into(),
        }),
    );
    h.run(&dept(LEAD), reply_cmd(ReplyOutcome::Resolved));
}

#[test]
fn reply_fields_are_checked() {
    let mut h = at_stage(Stage::InProgress);
    h.refuse(
        &dept(LEAD),
        reply_cmd(ReplyOutcome::Terminated),
        "invalid_field",
    );
    h.refuse(
        &dept(LEAD),
        Command::Reply(Reply {
            outcome: ReplyOutcome::Resolved,
            content: "".into(),
            plan: None,
        }),
        "missing_field",
    );
    h.refuse(
        &dept(LEAD),
        Command::Reply(Reply {
            outcome: ReplyOutcome::ExplainedCannotSolveNow,
            content: "later".into(),
            plan: None,
        }),
        "missing_field",
    );
    h.refuse(
        &station(),
        reply_cmd(ReplyOutcome::Resolved),
        "not_addressed_to_you",
    );
    let mut late = h.clone();
    late.now = h.request.deadlines().unwrap().completion_due_at + Duration::seconds(1);
    let events = late
        .try_run(&dept(LEAD), reply_cmd(ReplyOutcome::Resolved))
        .unwrap();
    assert!(matches!(events.last(), Some(Event::ResultReplied(r)) if !r.on_time));
    let events = h.run(&dept(LEAD), reply_cmd(ReplyOutcome::Resolved));
    assert!(matches!(events.last(), Some(Event::ResultReplied(r)) if r.on_time));
}

#[test]
fn termination_needs_the_centre() {
    let mut h = at_stage(Stage::TerminationPending);
    h.refuse(
        &dept(LEAD),
        Command::DecideTermination(DecideTermination {
            approved: true,
            reason: "x".into(),
        }),
        "not_permitted",
    );
    let mut denied = h.clone();
    denied.run(
        &supervisor(),
        Command::DecideTermination(DecideTermination {
            approved: false,
            reason: "keep going".into(),
        }),
    );
    assert_eq!(denied.stage(), Stage::InProgress);
    let events = h.run(
        &supervisor(),
        Command::DecideTermination(DecideTermination {
            approved: true,
            reason: "legal route".into(),
        }),
    );
    assert!(matches!(&events[1], Event::ResultReplied(r) if r.outcome == ReplyOutcome::Terminated));
    assert_eq!(h.stage(), Stage::Replied);
}

#[test]
fn anonymous_requests_skip_contact_and_are_never_contacted() {
    let mut h = Harness::new();
    h.run(&intake(), receive_cmd(true));
    h.run(&station(), Command::Accept(Accept::default()));
    h.run(&station(), classify_cmd(None));
    h.run(&station(), refer_cmd(LEAD, &[]));
    h.run(&dept(LEAD), Command::SignFor(SignFor::default()));
    h.refuse(&dept(LEAD), contact(), "anonymous_request");
    h.run(
        &dept(LEAD),
        Command::StartHandling(StartHandling::default()),
    );
    assert_eq!(h.stage(), Stage::InProgress);
    let mut named = at_stage(Stage::SignedFor);
    named.refuse(
        &dept(LEAD),
        Command::StartHandling(StartHandling::default()),
        "contact_required",
    );
}

#[test]
fn intake_and_decline_fields_are_checked() {
    let mut h = Harness::new();
    h.refuse(&station(), receive_cmd(false), "not_permitted");
    // Rights before facts: a station worker learns nothing of a request outside its
    // community, not even whether it exists; a supervisor, who reads every request, does.
    h.refuse(
        &station(),
        Command::Accept(Accept::default()),
        "not_addressed_to_you",
    );
    h.refuse(
        &supervisor(),
        Command::Accept(Accept::default()),
        "does_not_exist",
    );
    let Command::Receive(mut r) = receive_cmd(false) else {
        unreachable!()
    };
    r.location.community = "no-such-community".into();
    h.refuse(&intake(), Command::Receive(r.clone()), "unknown_reference");
    r.location.community = COMMUNITY.into();
    r.text = "  ".into();
    h.refuse(&intake(), Command::Receive(r.clone()), "missing_field");
    r.text = "pothole".into();
    r.contact_ref = None;
    h.refuse(&intake(), Command::Receive(r.clone()), "missing_field");
    h.run(&intake(), receive_cmd(false));
    h.refuse(&intake(), receive_cmd(false), "already_exists");
    h.refuse(
        &auditor(),
        Command::Accept(Accept::default()),
        "not_permitted",
    );
    let decline = |d, line: bool| {
        Command::Decline(Decline {
            disposition: d,
            explanation: "explained".into(),
            emergency_line: line.then_some(schemas::EmergencyLine::Fire119),
            legal_channel: None,
            duplicate_of: None,
        })
    };
    h.refuse(
        &station(),
        decline(Disposition::EmergencyTransfer, false),
        "missing_field",
    );
    h.refuse(
        &station(),
        decline(Disposition::LegalChannel, false),
        "missing_field",
    );
    h.refuse(
        &station(),
        decline(Disposition::DuplicateNoNewFacts, false),
        "missing_field",
    );
    let mut blank = decline(Disposition::OutOfJurisdiction, false);
    if let Command::Decline(d) = &mut blank {
        d.explanation = "".into();
    }
    h.refuse(&station(), blank, "missing_field");
    h.run(&station(), decline(Disposition::EmergencyTransfer, true));
    assert_eq!(h.stage(), Stage::TransferredEmergency);
    h.refuse(&station(), classify_cmd(None), "wrong_stage");
    h.run(&station(), Command::Archive(Archive::default()));
}

#[test]
fn classification_checks_items_and_reclassification_needs_a_reason() {
    let mut h = at_stage(Stage::Accepted);
    h.refuse(
        &station(),
        Command::Classify(Classify {
            catalogue_item: "no-such-item".into(),
            request_type: schemas::RequestType::Help,
            urgency: None,
            reason: None,
        }),
        "unknown_reference",
    );
    let events = h.run(&station(), classify_cmd(None));
    assert!(matches!(&events[0], Event::RequestClassified(c) if !c.reclassified));
    h.refuse(&station(), classify_cmd(None), "missing_field");
    let events = h.run(&station(), classify_cmd(Some("urgency changed")));
    assert!(matches!(&events[0], Event::RequestClassified(c) if c.reclassified));
}

#[test]
fn upward_reports_feedback_and_acknowledgement() {
    let mut h = at_stage(Stage::InProgress);
    let id = h.request.upward_reports()[0].report_id;
    let feedback = |kind, department: Option<&str>| {
        Command::RecordUpwardFeedback(RecordUpwardFeedback {
            report_id: id,
            kind,
            content: "do it".into(),
            department: department.map(Into::into),
        })
    };
    h.refuse(
        &supervisor(),
        feedback(FeedbackKind::Instruction, None),
        "not_permitted",
    );
    h.refuse(
        &higher(),
        feedback(FeedbackKind::ReferralBack, None),
        "missing_field",
    );
    h.refuse(
        &higher(),
        Command::AcknowledgeUpward(AcknowledgeUpward {
            report_id: uuid::Uuid::from_u128(9),
        }),
        "unknown_reference",
    );
    h.run(
        &system(),
        Command::AcknowledgeUpward(AcknowledgeUpward { report_id: id }),
    );
    h.refuse(
        &higher(),
        Command::AcknowledgeUpward(AcknowledgeUpward { report_id: id }),
        "already_recorded",
    );
    h.run(&higher(), feedback(FeedbackKind::Instruction, None));
    h.run(&higher(), feedback(FeedbackKind::Decision, None));
    h.refuse(
        &higher(),
        feedback(FeedbackKind::Instruction, None),
        "already_recorded",
    );
    // Report ids derive from the command id: the same request twice yields different ids.
    h.run(
        &dept(LEAD),
        Command::ReportUpward(ReportUpward {
            level: UpwardLevel::City,
            summary: "s".into(),
            attachments: vec![],
        }),
    );
    assert_eq!(h.request.upward_reports().len(), 2);
    assert_ne!(h.request.upward_reports()[1].report_id, id);
}

#[test]
fn callbacks_archive_and_appeals() {
    let mut h = at_stage(Stage::AwaitingCallback);
    let limit = h.policy.limits().callback_attempts;
    for _ in 0..limit {
        h.refuse(
            &station(),
            Command::Archive(Archive::default()),
            "callback_pending",
        );
        h.run(
            &station(),
            Command::RecordCallback(RecordCallback {
                outcome: Some(schemas::CallbackOutcome::Unreachable),
                reached: None,
                note: None,
            }),
        );
    }
    let mut unreachable = h.clone();
    unreachable.run(&station(), Command::Archive(Archive::default()));
    assert_eq!(unreachable.stage(), Stage::Archived);

    let mut h = at_stage(Stage::Rated);
    h.refuse(
        &supervisor(),
        Command::DecideAppeal(DecideAppeal {
            upheld: true,
            reason: "x".into(),
        }),
        "nothing_pending",
    );
    h.refuse(
        &dept(ASSISTING),
        Command::AppealRating(AppealRating {
            reason: "x".into(),
            evidence: vec![],
        }),
        "not_addressed_to_you",
    );
    let mut late = h.clone();
    late.now += Duration::hours(i64::from(h.policy.limits().appeal_window_hours) + 1);
    late.refuse(
        &dept(LEAD),
        Command::AppealRating(AppealRating {
            reason: "x".into(),
            evidence: vec![],
        }),
        "window_closed",
    );
    h.run(
        &dept(LEAD),
        Command::AppealRating(AppealRating {
            reason: "false".into(),
            evidence: vec![],
        }),
    );
    h.refuse(
        &dept(LEAD),
        Command::AppealRating(AppealRating {
            reason: "again".into(),
            evidence: vec![],
        }),
        "already_recorded",
    );
    h.refuse(
        &station(),
        Command::Archive(Archive::default()),
        "already_pending",
    );
    h.run(
        &supervisor(),
        Command::DecideAppeal(DecideAppeal {
            upheld: true,
            reason: "evidence".into(),
        }),
    );
    assert!(!h.request.rating().unwrap().counts());
    h.refuse(
        &supervisor(),
        Command::Reopen(Reopen { reason: "x".into() }),
        "rating_does_not_allow_reopen",
    );
    h.run(&station(), Command::Archive(Archive::default()));
}

#[test]
fn corrections_only_for_correctable_events_of_this_request() {
    let mut h = at_stage(Stage::InProgress);
    let received = h.events[0].event_id;
    h.refuse(
        &supervisor(),
        Command::Correct(Correct {
            event_id: received,
            reason: "x".into(),
        }),
        "not_correctable",
    );
    h.refuse(
        &supervisor(),
        Command::Correct(Correct {
            event_id: uuid::Uuid::from_u128(0xFFFF),
            reason: "x".into(),
        }),
        "unknown_reference",
    );
    h.run(
        &station(),
        Command::NoteProgress(NoteProgress {
            note: "wrong ticket".into(),
        }),
    );
    assert_eq!(h.request.progress_notes(), 1);
    let note = h.last_event_id(EventKind::ProgressNoted).unwrap();
    h.refuse(
        &station(),
        Command::Correct(Correct {
            event_id: note,
            reason: "x".into(),
        }),
        "not_permitted",
    );
    h.run(
        &supervisor(),
        Command::Correct(Correct {
            event_id: note,
            reason: "wrong ticket".into(),
        }),
    );
    assert_eq!(h.request.progress_notes(), 0);
}

#[test]
fn supervision_commands_are_idempotent_per_deadline_instant() {
    let mut h = at_stage(Stage::InProgress);
    let due = h
        .request
        .deadline_in_force(DeadlineKind::Completion)
        .unwrap();
    let remind = Command::Remind(Remind {
        deadline: DeadlineKind::Completion,
        due_at: due,
    });
    h.refuse(&station(), remind.clone(), "not_permitted");
    h.refuse(
        &system(),
        Command::Remind(Remind {
            deadline: DeadlineKind::Completion,
            due_at: due + Duration::seconds(1),
        }),
        "deadline_not_in_force",
    );
    h.refuse(
        &system(),
        Command::Remind(Remind {
            deadline: DeadlineKind::SignOff,
            due_at: due,
        }),
        "deadline_not_in_force",
    );
    h.run(&system(), remind.clone());
    h.refuse(&system(), remind, "already_recorded");
    let overdue = Command::MarkOverdue(MarkOverdue {
        deadline: DeadlineKind::Completion,
        due_at: due,
    });
    h.refuse(&system(), overdue.clone(), "not_yet_due");
    h.now = due;
    h.try_run(&system(), overdue.clone()).unwrap();
    h.refuse(&system(), overdue, "already_recorded");
    let escalate = |level| {
        Command::Escalate(Escalate {
            level,
            to: "street".into(),
            reason: "overdue".into(),
        })
    };
    h.run(&system(), escalate(SupervisionLevel::Listed));
    h.refuse(
        &system(),
        escalate(SupervisionLevel::Daily),
        "not_an_escalation",
    );
    h.refuse(
        &system(),
        escalate(SupervisionLevel::Listed),
        "not_an_escalation",
    );
    h.run(&supervisor(), escalate(SupervisionLevel::Interview));
}

#[test]
fn direct_and_proxy_handling_are_worked_by_the_station() {
    let mut h = at_stage(Stage::DirectHandling);
    h.refuse(
        &dept(LEAD),
        reply_cmd(ReplyOutcome::Resolved),
        "not_addressed_to_you",
    );
    h.run(&station(), reply_cmd(ReplyOutcome::Resolved));
    let mut p = at_stage(Stage::ProxyHandling);
    p.refuse(
        &station(),
        Command::StartProxy(StartProxy {
            department: PROXY.into(),
            note: None,
        }),
        "wrong_stage",
    );
    p.run(&station(), contact());
    p.run(&station(), Command::StartHandling(StartHandling::default()));
    p.run(&supervisor(), reply_cmd(ReplyOutcome::NotOursExplained));
    let mut c = at_stage(Stage::Classified);
    c.refuse(
        &station(),
        Command::StartProxy(StartProxy {
            department: "nope".into(),
            note: None,
        }),
        "unknown_reference",
    );
}

#[test]
fn no_reply_requests_archive_without_callbacks() {
    let mut h = Harness::new();
    let Command::Receive(mut r) = receive_cmd(false) else {
        unreachable!()
    };
    r.no_reply_requested = true;
    h.run(&intake(), Command::Receive(r));
    h.run(&station(), Command::Accept(Accept::default()));
    h.run(&station(), classify_cmd(None));
    h.run(
        &station(),
        Command::HandleDirectly(HandleDirectly::default()),
    );
    h.run(&station(), reply_cmd(ReplyOutcome::Resolved));
    h.run(
        &supervisor(),
        Command::ReviewReply(ReviewReply {
            approved: true,
            reason: None,
        }),
    );
    h.run(&station(), Command::Archive(Archive::default()));
    assert_eq!(h.stage(), Stage::Archived);
}

#[test]
fn a_station_worker_acts_only_on_requests_in_their_own_community() {
    let other = schemas::Actor {
        id: "worker-9".into(),
        role: schemas::Role::StationWorker,
        unit: Some("sq-0202".into()),
    };
    let mut h = at_stage(Stage::Received);
    h.refuse(
        &other,
        Command::Accept(Accept::default()),
        "not_addressed_to_you",
    );
    let mut h = at_stage(Stage::Classified);
    h.refuse(
        &other,
        Command::NoteProgress(NoteProgress {
            note: "from elsewhere".into(),
        }),
        "not_addressed_to_you",
    );
    // The request's own station still can.
    h.run(
        &station(),
        Command::NoteProgress(NoteProgress {
            note: "ours".into(),
        }),
    );
}

#[test]
fn an_intake_system_rates_only_the_requests_it_submitted() {
    let other = schemas::Actor {
        id: "window-gateway".into(),
        role: schemas::Role::IntakeSystem,
        unit: None,
    };
    let mut h = at_stage(Stage::AwaitingCallback);
    h.refuse(
        &other,
        rate_cmd(Satisfaction::Satisfied, Resolution::Resolved),
        "not_addressed_to_you",
    );
    h.run(
        &intake(),
        rate_cmd(Satisfaction::Satisfied, Resolution::Resolved),
    );
}

#[test]
fn a_department_never_addressed_is_refused_before_the_stage_is_checked() {
    // Signed for by the lead: `sign_for` again would be `wrong_stage` for the lead, but a
    // department the request never addressed learns nothing about the stage.
    let mut h = at_stage(Stage::SignedFor);
    h.refuse(
        &dept(OTHER),
        Command::SignFor(SignFor::default()),
        "not_addressed_to_you",
    );
    h.refuse(
        &dept(LEAD),
        Command::SignFor(SignFor::default()),
        "wrong_stage",
    );
}
