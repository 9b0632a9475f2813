//! `supervision::due` and `next_wakeup`: reminders, warnings, overdue marks and escalations
//! fire exactly once per deadline instant, and stop once the request is replied or archived.

mod harness;

use chrono::Duration;
use engine_core::Stage;
use engine_core::supervision::{due, due_firings, next_wakeup};
use harness::*;
use schemas::command::*;
use schemas::{Command, CommandKind, DeadlineKind, ReplyOutcome, SupervisionLevel, Timestamp};

/// Runs supervision at `at` like the shell would: every due command as `system`.
fn tick(h: &mut Harness, at: Timestamp) -> Vec<CommandKind> {
    h.now = at;
    let commands = due(&h.request, at, &h.policy);
    let kinds = commands.iter().map(Command::kind).collect();
    for c in commands {
        h.try_run(&system(), c)
            .expect("supervision only issues commands decide accepts");
    }
    assert!(
        due(&h.request, at, &h.policy).is_empty(),
        "nothing fires twice"
    );
    kinds
}

/// A request at `stage` whose assisting department has already reported its part, so that
/// only the lead's deadlines are supervised (the assisting part's own deadline is tested in
/// participants.rs).
fn lead_only(stage: Stage) -> Harness {
    let mut h = at_stage(stage);
    h.run(
        &dept(ASSISTING),
        Command::ReportAssistance(ReportAssistance {
            note: "swept the lane".into(),
        }),
    );
    h
}

#[test]
fn completion_supervision_fires_once_per_instant_and_escalates_upward() {
    let mut h = lead_only(Stage::InProgress);
    let d = h.request.deadlines().unwrap().clone();
    let grace = h.policy.escalation_grace();
    assert!(d.warn_at < d.remind_at || d.remind_at <= d.warn_at);
    assert_eq!(
        next_wakeup(&h.request, &h.policy),
        Some(d.warn_at.min(d.remind_at))
    );
    assert!(
        due(
            &h.request,
            d.warn_at.min(d.remind_at) - Duration::seconds(1),
            &h.policy
        )
        .is_empty()
    );

    let mut fired = Vec::new();
    fired.extend(tick(&mut h, d.warn_at.min(d.remind_at)));
    fired.extend(tick(&mut h, d.warn_at.max(d.remind_at)));
    assert!(
        fired.contains(&CommandKind::Remind) && fired.contains(&CommandKind::Warn),
        "{fired:?}"
    );
    assert_eq!(
        next_wakeup(&h.request, &h.policy),
        Some(d.completion_due_at)
    );
    assert!(tick(&mut h, d.completion_due_at - Duration::seconds(1)).is_empty());
    assert_eq!(
        tick(&mut h, d.completion_due_at),
        vec![CommandKind::MarkOverdue]
    );
    assert_eq!(h.request.supervision_level(), None);

    assert_eq!(
        next_wakeup(&h.request, &h.policy),
        Some(d.completion_due_at + grace)
    );
    assert_eq!(
        tick(&mut h, d.completion_due_at + grace),
        vec![CommandKind::Escalate]
    );
    assert_eq!(h.request.supervision_level(), Some(SupervisionLevel::Daily));
    let after_daily = h.now;
    assert_eq!(
        tick(&mut h, after_daily + grace),
        vec![CommandKind::Escalate]
    );
    assert_eq!(
        h.request.supervision_level(),
        Some(SupervisionLevel::Listed)
    );
    let after_listed = h.now;
    assert_eq!(
        tick(&mut h, after_listed + grace),
        vec![CommandKind::Escalate]
    );
    assert_eq!(
        h.request.supervision_level(),
        Some(SupervisionLevel::Interview)
    );
    // The top level: nothing further.
    assert_eq!(next_wakeup(&h.request, &h.policy), None);
    assert!(tick(&mut h, after_listed + grace * 10).is_empty());

    // Replying stops supervision.
    h.run(&dept(LEAD), reply_cmd(ReplyOutcome::Resolved));
    assert_eq!(next_wakeup(&h.request, &h.policy), None);
}

#[test]
fn a_late_supervision_run_catches_up_once_and_reply_stops_it() {
    let mut h = lead_only(Stage::InProgress);
    let d = h.request.deadlines().unwrap().clone();
    let mut kinds = tick(&mut h, d.completion_due_at + Duration::hours(1));
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            CommandKind::Remind,
            CommandKind::Warn,
            CommandKind::MarkOverdue
        ]
    );
    h.run(&dept(LEAD), reply_cmd(ReplyOutcome::Resolved));
    assert!(
        due(
            &h.request,
            d.completion_due_at + Duration::days(30),
            &h.policy
        )
        .is_empty()
    );
    assert_eq!(next_wakeup(&h.request, &h.policy), None);
}

/// After downtime, recording each firing as of the instant it was due (as the shell does)
/// reaches every escalation level at the instant it would have been reached, once.
#[test]
fn a_catch_up_records_every_escalation_level_at_its_due_instant() {
    let mut h = at_stage(Stage::InProgress);
    let d = h.request.deadlines().unwrap().clone();
    let grace = h.policy.escalation_grace();
    let back = d.completion_due_at + grace * 10;
    let mut recorded = Vec::new();
    // The shell's loop: fire what is due at `back`, each as of its own instant, until quiet.
    for _ in 0..16 {
        let firings = due_firings(&h.request, back, &h.policy);
        if firings.is_empty() {
            break;
        }
        let at: Vec<Timestamp> = firings.iter().map(|(at, _)| *at).collect();
        assert!(
            at.windows(2).all(|w| w[0] <= w[1]),
            "earliest first: {at:?}"
        );
        for (at, command) in firings {
            assert!(at <= back);
            h.now = at;
            let kind = command.kind();
            h.try_run(&system(), command)
                .expect("decide accepts a due firing");
            recorded.push((kind, at, h.request.supervision_level()));
        }
    }
    let escalations: Vec<(Timestamp, Option<SupervisionLevel>)> = recorded
        .iter()
        .filter(|(k, _, _)| *k == CommandKind::Escalate)
        .map(|(_, at, level)| (*at, *level))
        .collect();
    assert_eq!(
        escalations,
        vec![
            (d.completion_due_at + grace, Some(SupervisionLevel::Daily)),
            (
                d.completion_due_at + grace * 2,
                Some(SupervisionLevel::Listed)
            ),
            (
                d.completion_due_at + grace * 3,
                Some(SupervisionLevel::Interview)
            ),
        ],
        "{recorded:?}"
    );
    assert!(due(&h.request, back, &h.policy).is_empty(), "nothing left");
    assert_eq!(
        next_wakeup(&h.request, &h.policy),
        None,
        "the top level is final"
    );
}

#[test]
fn a_granted_extension_is_a_new_instant_supervised_afresh() {
    let mut h = lead_only(Stage::InProgress);
    let d = h.request.deadlines().unwrap().clone();
    tick(&mut h, d.remind_at.max(d.warn_at));
    h.now = d.remind_at.max(d.warn_at);
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
    let moved = h.request.deadlines().unwrap().clone();
    assert!(moved.completion_due_at > d.completion_due_at);
    assert!(
        due(&h.request, d.completion_due_at, &h.policy)
            .iter()
            .all(|c| c.kind() != CommandKind::MarkOverdue)
    );
    let kinds = tick(&mut h, moved.completion_due_at);
    assert!(
        kinds.contains(&CommandKind::MarkOverdue) && kinds.contains(&CommandKind::Remind),
        "{kinds:?}"
    );
}

#[test]
fn a_paused_clock_is_not_supervised() {
    let mut h = lead_only(Stage::InProgress);
    let d = h.request.deadlines().unwrap().clone();
    h.run(
        &dept(LEAD),
        Command::PauseClock(PauseClock {
            reason: "documents".into(),
        }),
    );
    assert!(
        due(
            &h.request,
            d.completion_due_at + Duration::days(1),
            &h.policy
        )
        .is_empty()
    );
    assert_eq!(next_wakeup(&h.request, &h.policy), None);
}

#[test]
fn acceptance_sign_off_and_whistle_deadlines_are_marked_once() {
    let mut h = Harness::new();
    h.run(&intake(), receive_cmd(false));
    let accept_due = h.request.deadline_in_force(DeadlineKind::Response).unwrap();
    assert_eq!(next_wakeup(&h.request, &h.policy), Some(accept_due));
    assert_eq!(tick(&mut h, accept_due), vec![CommandKind::MarkOverdue]);
    h.run(&station(), Command::Accept(Accept::default()));
    h.run(&station(), classify_cmd(None));
    h.run(&station(), refer_cmd(LEAD, &[]));
    let sign_off = h.request.deadline_in_force(DeadlineKind::SignOff).unwrap();
    let kinds = tick(&mut h, sign_off);
    assert!(kinds.contains(&CommandKind::MarkOverdue), "{kinds:?}");
    assert!(h.request.has_fired(
        engine_core::request::Firing::Overdue,
        DeadlineKind::SignOff,
        sign_off
    ));
    h.run(&dept(LEAD), Command::SignFor(SignFor::default()));
    assert_eq!(h.request.deadline_in_force(DeadlineKind::SignOff), None);
    h.run(
        &station(),
        Command::BlowWhistle(BlowWhistle {
            departments: vec![OTHER.into()],
            summary: "joint".into(),
        }),
    );
    let report_due = h
        .request
        .deadline_in_force(DeadlineKind::WhistleReport)
        .unwrap();
    let kinds = tick(&mut h, report_due);
    assert!(kinds.contains(&CommandKind::MarkOverdue), "{kinds:?}");
    h.run(
        &dept(OTHER),
        Command::ReportToWhistle(ReportToWhistle {
            department: OTHER.into(),
            note: "late".into(),
        }),
    );
    assert_eq!(
        h.request.deadline_in_force(DeadlineKind::WhistleReport),
        None
    );
}

#[test]
fn nothing_is_supervised_after_archive() {
    let h = at_stage(Stage::Archived);
    assert!(due(&h.request, h.now + Duration::days(365), &h.policy).is_empty());
    assert_eq!(next_wakeup(&h.request, &h.policy), None);
}
