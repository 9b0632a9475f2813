//! The durable supervisor with a manual clock: each deadline's reminder, warning, overdue mark
//! and escalation is recorded exactly once across repeated ticks, a restart (a fresh
//! `SupervisorState`), and two supervisors ticking at once; after downtime the missed firings
//! are caught up in due-time order. Runs on the embedded SQLite log and on JetStream.

use std::collections::HashSet;
use std::time::Duration;

use engine_core::Clock;
use engine_service::commands::CommandRequest;
use engine_service::nats::CancellationToken;
use engine_service::supervisor::{self, SupervisorConfig, SupervisorState};
use schemas::{Actor, Command, Deadlines, Event, EventEnvelope, RequestId, Role, Timestamp};
use serde_json::json;
use uuid::Uuid;

use crate::nats_intake::{DEPARTMENT, Engine, ITEM, Store, eventually, intake_document};

fn actor(id: &str, role: Role, unit: Option<&str>) -> Actor {
    Actor {
        id: id.into(),
        role,
        unit: unit.map(str::to_string),
    }
}

async fn execute(engine: &Engine, request_id: RequestId, who: Actor, command: serde_json::Value) {
    let command: Command = serde_json::from_value(command).expect("a valid command");
    engine
        .service
        .execute(CommandRequest {
            request_id,
            command_id: Uuid::now_v7(),
            correlation_id: None,
            actor: who,
            command,
        })
        .await
        .expect("the command is accepted");
}

/// A request received, accepted and classified at the clock's current time; returns its id
/// and the stamped deadlines.
async fn classified_request(engine: &Engine, external_id: &str) -> (RequestId, Deadlines) {
    let document = serde_json::from_value(intake_document("hotline", external_id)).expect("doc");
    let outcome = engine
        .service
        .intake(document, actor("hotline-gateway", Role::IntakeSystem, None))
        .await
        .expect("intake");
    let id = outcome.request_id;
    let worker = actor("worker-1", Role::StationWorker, Some("sq-0101"));
    execute(engine, id, worker.clone(), json!({"action": "accept"})).await;
    execute(
        engine,
        id,
        worker,
        json!({"action": "classify", "catalogue_item": ITEM, "request_type": "help"}),
    )
    .await;
    let deadlines = history(engine, id)
        .await
        .iter()
        .find_map(|e| match &e.event {
            Event::RequestClassified(c) => Some(c.deadlines.clone()),
            _ => None,
        })
        .expect("classified");
    (id, deadlines)
}

async fn history(engine: &Engine, id: RequestId) -> Vec<EventEnvelope> {
    engine.service.history(id).await.expect("history")
}

/// The supervision facts of a request, as (type, deadline-or-level, due instant) keys in
/// log order.
async fn supervision_facts(
    engine: &Engine,
    id: RequestId,
) -> Vec<(String, String, Option<Timestamp>)> {
    history(engine, id)
        .await
        .iter()
        .filter_map(|e| match &e.event {
            Event::ReminderSent(r) => Some((
                "reminder".into(),
                format!("{:?}", r.deadline),
                Some(r.due_at),
            )),
            Event::PreBreachWarned(w) => Some((
                "warning".into(),
                format!("{:?}", w.deadline),
                Some(w.due_at),
            )),
            Event::DeadlineMissed(m) => Some((
                "overdue".into(),
                format!("{:?}", m.deadline),
                Some(m.due_at),
            )),
            Event::Escalated(x) => Some(("escalated".into(), format!("{:?}", x.level), None)),
            _ => None,
        })
        .collect()
}

fn assert_no_duplicates(facts: &[(String, String, Option<Timestamp>)]) {
    let unique: HashSet<_> = facts.iter().collect();
    assert_eq!(
        unique.len(),
        facts.len(),
        "a firing was recorded twice: {facts:?}"
    );
}

async fn tick_at(
    engine: &Engine,
    state: &mut SupervisorState,
    at: Timestamp,
) -> supervisor::TickReport {
    engine.clock.set(at);
    supervisor::tick(&engine.service, state, at)
        .await
        .expect("tick")
}

async fn each_deadline_fires_once_across_ticks_restarts_and_two_supervisors(store: Store) {
    let engine = Engine::build(store).await;
    let (id, deadlines) = classified_request(&engine, "SUP-1").await;
    let mut state = SupervisorState::new();

    // Before anything is due: nothing fires, and the request is indexed.
    let report = tick_at(&engine, &mut state, engine.clock.now()).await;
    assert!(report.fired.is_empty(), "{report:?}");
    assert!(
        state.wakeup_of(id).is_some(),
        "an open classified request has a wakeup"
    );

    // The reminder: once, however often the supervisor ticks.
    let at = deadlines.remind_at;
    let report = tick_at(&engine, &mut state, at).await;
    assert!(
        !report.fired.is_empty(),
        "something is due at the reminder instant: {report:?}"
    );
    let after_first = supervision_facts(&engine, id).await;
    assert!(
        after_first
            .iter()
            .any(|f| f.0 == "reminder" && f.2 == Some(deadlines.completion_due_at)),
        "{after_first:?}"
    );
    for _ in 0..3 {
        let report = tick_at(&engine, &mut state, at).await;
        assert!(
            report.fired.is_empty(),
            "a repeated tick fires nothing: {report:?}"
        );
    }
    assert_eq!(supervision_facts(&engine, id).await, after_first);

    // A restart: a fresh state rebuilt from the log fires nothing already fired.
    let mut restarted = SupervisorState::new();
    let report = tick_at(&engine, &mut restarted, at).await;
    assert!(
        report.fired.is_empty(),
        "a restart fires nothing new: {report:?}"
    );
    assert_eq!(supervision_facts(&engine, id).await, after_first);

    // Two supervisors at once, past the completion deadline and the escalation grace.
    let late = deadlines.completion_due_at + chrono::Duration::days(2);
    engine.clock.set(late);
    let mut other = SupervisorState::new();
    let other_engine = engine.second_service().await;
    let (a, b) = tokio::join!(
        supervisor::tick(&engine.service, &mut state, late),
        supervisor::tick(&other_engine, &mut other, late),
    );
    let (a, b) = (a.expect("tick a"), b.expect("tick b"));
    let facts = supervision_facts(&engine, id).await;
    assert_no_duplicates(&facts);
    assert_eq!(
        a.fired.len() + b.fired.len() + after_first.len(),
        facts.len(),
        "{a:?} {b:?}"
    );
    assert!(
        facts
            .iter()
            .any(|f| f.0 == "warning" && f.2 == Some(deadlines.completion_due_at)),
        "{facts:?}"
    );
    assert!(
        facts
            .iter()
            .any(|f| f.0 == "overdue" && f.1 == "Completion"),
        "{facts:?}"
    );
    assert!(facts.iter().any(|f| f.0 == "escalated"), "{facts:?}");

    // And again with both, and with a third fresh one: nothing new.
    let mut third = SupervisorState::new();
    for state in [&mut state, &mut other, &mut third] {
        let report = supervisor::tick(&engine.service, state, late)
            .await
            .expect("tick");
        assert!(report.fired.is_empty(), "{report:?}");
    }
    assert_eq!(supervision_facts(&engine, id).await, facts);
    engine.cleanup().await;
}

#[tokio::test]
async fn each_deadline_fires_once_across_ticks_restarts_and_two_supervisors_on_sqlite() {
    each_deadline_fires_once_across_ticks_restarts_and_two_supervisors(Store::Sqlite).await;
}

#[tokio::test]
async fn each_deadline_fires_once_across_ticks_restarts_and_two_supervisors_on_jetstream() {
    each_deadline_fires_once_across_ticks_restarts_and_two_supervisors(Store::JetStream).await;
}

#[tokio::test]
async fn after_downtime_missed_firings_are_caught_up_in_due_order() {
    let engine = Engine::build(Store::Sqlite).await;
    let (first, deadlines) = classified_request(&engine, "SUP-A").await;
    engine.clock.advance(chrono::Duration::hours(1));
    let (second, _) = classified_request(&engine, "SUP-B").await;

    // The supervisor was down the whole time; it comes back long after every deadline.
    let back = deadlines.completion_due_at + chrono::Duration::days(3);
    let mut state = SupervisorState::new();
    let report = tick_at(&engine, &mut state, back).await;

    for id in [first, second] {
        let facts = supervision_facts(&engine, id).await;
        assert_no_duplicates(&facts);
        let position = |kind: &str| {
            facts
                .iter()
                .position(|f| f.0 == kind && f.1 == "Completion")
        };
        let (remind, warn, overdue) = (
            position("reminder"),
            position("warning"),
            position("overdue"),
        );
        assert!(
            remind.is_some() && warn.is_some() && overdue.is_some(),
            "{facts:?}"
        );
        let (early, late) = if deadlines.remind_at <= deadlines.warn_at {
            (remind, warn)
        } else {
            (warn, remind)
        };
        assert!(
            early < late && late < overdue,
            "fired in due-time order: {facts:?}"
        );
        // Escalation counts from the earliest deadline missed (first response), so it
        // comes after that overdue mark, not necessarily after the completion's.
        let first_overdue = facts.iter().position(|f| f.0 == "overdue");
        let escalated = facts.iter().position(|f| f.0 == "escalated");
        assert!(
            escalated.is_some_and(|e| Some(e) > first_overdue),
            "escalation after the overdue mark: {facts:?}"
        );
    }
    // The earlier request's firings come first in the report.
    let first_of = |id: RequestId| report.fired.iter().position(|(r, _)| *r == id);
    assert!(first_of(first) < first_of(second), "{report:?}");
    engine.cleanup().await;
}

#[tokio::test]
async fn the_running_supervisor_fires_when_the_clock_reaches_a_deadline() {
    let engine = Engine::build(Store::JetStream).await;
    let (id, deadlines) = classified_request(&engine, "SUP-RUN").await;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let service = engine.service.clone();
        let shutdown = shutdown.clone();
        async move {
            supervisor::run(
                service,
                SupervisorConfig {
                    max_sleep_ms: 50,
                    retry_delay_ms: 50,
                },
                shutdown,
            )
            .await
            .expect("supervisor ends cleanly")
        }
    });

    engine.clock.set(deadlines.remind_at);
    eventually(Duration::from_secs(10), "the reminder", || async {
        supervision_facts(&engine, id)
            .await
            .iter()
            .any(|f| f.0 == "reminder")
    })
    .await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops on shutdown")
        .expect("task");
    let facts = supervision_facts(&engine, id).await;
    assert_no_duplicates(&facts);
    engine.cleanup().await;
}

#[tokio::test]
async fn the_index_learns_new_requests_and_changes_to_indexed_ones() {
    let engine = Engine::build(Store::Sqlite).await;
    let mut state = SupervisorState::new();
    let report = tick_at(&engine, &mut state, engine.clock.now()).await;
    assert_eq!(report.pending, 0, "an empty log indexes nothing");

    // Created after the supervisor started: learned from the log.
    let (replied, deadlines) = classified_request(&engine, "SUP-NEW-1").await;
    let (open, _) = classified_request(&engine, "SUP-NEW-2").await;
    tick_at(&engine, &mut state, engine.clock.now()).await;
    assert!(state.wakeup_of(replied).is_some() && state.wakeup_of(open).is_some());

    // One of them is handled and replied before its deadline.
    let handler = actor("handler-1", Role::DepartmentHandler, Some(DEPARTMENT));
    let worker = actor("worker-1", Role::StationWorker, Some("sq-0101"));
    execute(
        &engine,
        replied,
        worker,
        json!({"action": "refer", "lead_department": DEPARTMENT}),
    )
    .await;
    execute(
        &engine,
        replied,
        handler.clone(),
        json!({"action": "sign_for"}),
    )
    .await;
    execute(
        &engine,
        replied,
        handler.clone(),
        json!({"action": "contact_resident", "method": "phone"}),
    )
    .await;
    execute(
        &engine,
        replied,
        handler.clone(),
        json!({"action": "start_handling"}),
    )
    .await;
    execute(
        &engine,
        replied,
        handler,
        json!({"action": "reply", "outcome": "resolved", "content": "已修复"}),
    )
    .await;

    // Long past the completion deadline: only the open request is marked overdue.
    let late = deadlines.completion_due_at + chrono::Duration::days(2);
    tick_at(&engine, &mut state, late).await;
    let open_facts = supervision_facts(&engine, open).await;
    assert!(
        open_facts
            .iter()
            .any(|f| f.0 == "overdue" && f.1 == "Completion"),
        "{open_facts:?}"
    );
    let replied_facts = supervision_facts(&engine, replied).await;
    assert!(
        !replied_facts
            .iter()
            .any(|f| f.0 == "overdue" && f.1 == "Completion"),
        "a replied request is not marked overdue: {replied_facts:?}"
    );
    engine.cleanup().await;
}

/// The engine is stopped after the overdue mark and comes back ten grace periods later: the
/// restarted supervisor records every escalation level the request would have reached, each
/// at the instant it was due (one grace period after the one before), exactly once; a second
/// restart records nothing new.
#[tokio::test]
async fn after_downtime_every_escalation_level_is_recorded_at_its_due_instant() {
    let engine = Engine::build(Store::JetStream).await;
    let (id, deadlines) = classified_request(&engine, "SUP-ESC").await;
    let grace = engine.service.policy().escalation_grace();
    // The earliest deadline in force (first response) is the one escalation counts from.
    let missed = deadlines.response_due_at;
    assert!(missed < deadlines.completion_due_at);
    let run = |service: engine_service::commands::CommandService| {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                supervisor::run(
                    service,
                    SupervisorConfig {
                        max_sleep_ms: 50,
                        retry_delay_ms: 50,
                    },
                    shutdown,
                )
                .await
                .expect("supervisor ends cleanly")
            }
        });
        (shutdown, task)
    };
    let stop = |(shutdown, task): (CancellationToken, tokio::task::JoinHandle<()>)| async move {
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stops on shutdown")
            .expect("task");
    };
    let escalations = || async {
        history(&engine, id)
            .await
            .into_iter()
            .filter_map(|e| match e.event {
                Event::Escalated(x) => Some((x.level, e.occurred_at, e.recorded_at)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };

    // Running when the deadline passes: the overdue mark, no escalation yet.
    engine.clock.set(missed);
    let running = run(engine.service.clone());
    eventually(Duration::from_secs(10), "the overdue mark", || async {
        supervision_facts(&engine, id)
            .await
            .iter()
            .any(|f| f.0 == "overdue" && f.1 == "Response")
    })
    .await;
    stop(running).await;
    assert!(escalations().await.is_empty());

    // Down across every escalation step; back ten grace periods later.
    let back = missed + grace * 10;
    engine.clock.set(back);
    let running = run(engine.service.clone());
    eventually(
        Duration::from_secs(10),
        "three escalation levels",
        || async { escalations().await.len() >= 3 },
    )
    .await;
    stop(running).await;
    let recorded = escalations().await;
    use schemas::SupervisionLevel::{Daily, Interview, Listed};
    let at: Vec<_> = recorded
        .iter()
        .map(|(level, at, _)| (*level, *at))
        .collect();
    assert_eq!(
        at,
        vec![
            (Daily, missed + grace),
            (Listed, missed + grace * 2),
            (Interview, missed + grace * 3),
        ],
        "each level at the instant it was due"
    );
    assert!(
        recorded
            .iter()
            .all(|(_, _, recorded_at)| *recorded_at == back),
        "recorded when the engine came back: {recorded:?}"
    );

    // Restarted again (a fresh index): nothing new.
    let mut again = SupervisorState::new();
    let report = tick_at(&engine, &mut again, back + grace).await;
    assert!(report.fired.is_empty(), "{report:?}");
    assert_eq!(escalations().await, recorded);
    let facts = supervision_facts(&engine, id).await;
    assert_no_duplicates(&facts);
    engine.cleanup().await;
}
