//! Conformance suite of the event log: the same test functions run against JetStream (the
//! shared nats-server, one fresh stream per test) and SQLite (a fresh file per test).

use std::time::Duration;

use chrono::{DateTime, Utc};
use engine_log::{Appended, EventLog, LogError};
use futures::StreamExt;
use schemas::event::ProgressNoted;
use schemas::{Actor, CommandKind, Commit, Event, EventEnvelope, RequestId, Role};
use tests::nats::{delete_stream, shared_nats, unique_log_config};
use uuid::Uuid;

/// Bound on any single wait for followed commits.
const FOLLOW_DEADLINE: Duration = Duration::from_secs(10);

/// A fresh id. Tests need ids unique across runs against the shared server.
#[allow(clippy::disallowed_methods)]
pub(crate) fn fresh_id() -> Uuid {
    Uuid::new_v4()
}

fn at() -> DateTime<Utc> {
    "2025-03-03T08:00:00Z".parse().expect("valid timestamp")
}

/// A sealed commit of `n_events` progress notes for `request_id`, versions from
/// `first_version` on.
pub(crate) fn commit(request_id: RequestId, first_version: u64, n_events: usize) -> Commit {
    let commit_id = fresh_id();
    let events = (0..n_events as u64)
        .map(|i| {
            EventEnvelope {
                event_id: fresh_id(),
                request_id,
                version: first_version + i,
                schema_version: 0,
                occurred_at: at(),
                recorded_at: at(),
                actor: Actor {
                    id: "w-1".to_string(),
                    role: Role::StationWorker,
                    unit: Some("c-01".to_string()),
                },
                causation_id: commit_id,
                correlation_id: commit_id,
                prev_hash: schemas::envelope::GENESIS_HASH.to_string(),
                hash: String::new(),
                event: Event::ProgressNoted(ProgressNoted {
                    note: format!("note {}", first_version + i),
                }),
            }
            .seal()
        })
        .collect();
    Commit {
        commit_id,
        request_id,
        command: CommandKind::NoteProgress,
        events,
        signature: None,
    }
}

/// What a test needs torn down after it.
enum Guard {
    Stream(async_nats::Client, String),
    File(#[allow(dead_code)] tempfile::TempDir),
}

/// A JetStream log on the shared server, on a stream of its own.
async fn jetstream_log() -> (EventLog, Guard) {
    let client = shared_nats().await;
    let cfg = unique_log_config();
    let stream = cfg.names.events_stream().to_string();
    let log = EventLog::connect_jetstream(client.clone(), cfg)
        .await
        .expect("connect jetstream log");
    (log, Guard::Stream(client, stream))
}

/// An SQLite log in a fresh temporary file.
async fn sqlite_log() -> (EventLog, Guard) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = EventLog::open_sqlite(&dir.path().join("events.db"))
        .await
        .expect("open sqlite log");
    (log, Guard::File(dir))
}

async fn teardown(guard: Guard) {
    if let Guard::Stream(client, stream) = guard {
        delete_stream(&client, &stream).await;
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod jetstream {
            $(
                #[tokio::test]
                async fn $name() {
                    let (log, guard) = super::jetstream_log().await;
                    super::$name(&log).await;
                    super::teardown(guard).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (log, guard) = super::sqlite_log().await;
                    super::$name(&log).await;
                    super::teardown(guard).await;
                }
            )*
        }
    };
}

conformance!(
    append_then_load_round_trips,
    positions_increase_across_requests,
    stale_expected_position_loses_with_conflict,
    concurrent_appends_lose_no_update,
    re_append_is_duplicate_with_original_position,
    read_from_and_follow_deliver_every_commit_in_order,
    multi_event_commit_is_one_record,
    load_raw_returns_the_stored_bytes,
    unknown_request_loads_empty,
    empty_commit_is_refused,
    ping_answers_and_describe_names_the_store,
);

async fn append_then_load_round_trips(log: &EventLog) {
    let request_id = fresh_id();
    let first = commit(request_id, 1, 1);

    let appended = log.append(&first, 0).await.expect("append");

    assert!(appended.position > 0);
    assert!(!appended.duplicate);
    let loaded = log.load(request_id).await.expect("load");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].position, appended.position);
    assert_eq!(loaded[0].commit, first);
    assert_eq!(
        log.last_position().await.expect("last position"),
        appended.position
    );
}

async fn positions_increase_across_requests(log: &EventLog) {
    let (a, b) = (fresh_id(), fresh_id());
    let mut last = [0u64, 0u64];
    let mut positions = Vec::new();

    for round in 0..3u64 {
        for (i, request_id) in [a, b].into_iter().enumerate() {
            let appended = log
                .append(&commit(request_id, round + 1, 1), last[i])
                .await
                .expect("append");
            last[i] = appended.position;
            positions.push(appended.position);
        }
    }

    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "positions {positions:?}"
    );
    for (i, request_id) in [a, b].into_iter().enumerate() {
        let loaded = log.load(request_id).await.expect("load");
        let loaded_positions: Vec<u64> = loaded.iter().map(|c| c.position).collect();
        let expected: Vec<u64> = positions.iter().copied().skip(i).step_by(2).collect();
        assert_eq!(loaded_positions, expected);
        let versions: Vec<u64> = loaded.iter().map(|c| c.commit.last_version()).collect();
        assert_eq!(versions, vec![1, 2, 3]);
    }
    assert_eq!(
        log.last_position().await.expect("last"),
        *positions.last().expect("some")
    );
}

async fn stale_expected_position_loses_with_conflict(log: &EventLog) {
    let request_id = fresh_id();
    let p1 = log
        .append(&commit(request_id, 1, 1), 0)
        .await
        .expect("first")
        .position;
    let winner = log
        .append(&commit(request_id, 2, 1), p1)
        .await
        .expect("winner")
        .position;

    let loser = log.append(&commit(request_id, 2, 1), p1).await;
    let recreate = log.append(&commit(request_id, 1, 1), 0).await;
    let unknown = fresh_id();
    let phantom = log.append(&commit(unknown, 2, 1), p1).await;

    match loser {
        Err(LogError::Conflict {
            request_id: r,
            expected,
            actual,
        }) => {
            assert_eq!((r, expected, actual), (request_id, p1, Some(winner)));
        }
        other => panic!("stale writer must conflict, got {other:?}"),
    }
    match recreate {
        Err(LogError::Conflict {
            expected: 0,
            actual,
            ..
        }) => assert_eq!(actual, Some(winner)),
        other => panic!("expected 0 on an existing request must conflict, got {other:?}"),
    }
    match phantom {
        Err(LogError::Conflict { actual: None, .. }) => {}
        other => panic!("a position on a missing request must conflict, got {other:?}"),
    }
    assert_eq!(log.load(request_id).await.expect("load").len(), 2);
    assert!(log.load(unknown).await.expect("load").is_empty());
}

async fn concurrent_appends_lose_no_update(log: &EventLog) {
    const WRITERS: usize = 50;
    const ATTEMPTS_MAX: usize = 1_000;
    let request_id = fresh_id();

    let writers = (0..WRITERS).map(|_| {
        let log = log.clone();
        tokio::spawn(async move {
            for _ in 0..ATTEMPTS_MAX {
                let history = log.load(request_id).await.expect("load");
                let expected = history.last().map_or(0, |c| c.position);
                let version = history.last().map_or(0, |c| c.commit.last_version()) + 1;
                match log.append(&commit(request_id, version, 1), expected).await {
                    Ok(appended) => return appended,
                    Err(LogError::Conflict { .. }) => continue,
                    Err(other) => panic!("append failed: {other}"),
                }
            }
            panic!("writer did not land within {ATTEMPTS_MAX} attempts");
        })
    });
    let results = futures::future::join_all(writers).await;

    let appended: Vec<Appended> = results.into_iter().map(|r| r.expect("writer")).collect();
    assert!(appended.iter().all(|a| !a.duplicate));
    let loaded = log.load(request_id).await.expect("load");
    assert_eq!(loaded.len(), WRITERS);
    let versions: Vec<u64> = loaded.iter().map(|c| c.commit.last_version()).collect();
    assert_eq!(
        versions,
        (1..=WRITERS as u64).collect::<Vec<_>>(),
        "dense, no lost update"
    );
    assert!(loaded.windows(2).all(|w| w[0].position < w[1].position));
    let mut landed: Vec<u64> = appended.iter().map(|a| a.position).collect();
    landed.sort_unstable();
    assert_eq!(
        landed,
        loaded.iter().map(|c| c.position).collect::<Vec<_>>()
    );
}

async fn re_append_is_duplicate_with_original_position(log: &EventLog) {
    let request_id = fresh_id();
    let first = commit(request_id, 1, 1);
    let second = commit(request_id, 2, 1);
    let p1 = log.append(&first, 0).await.expect("first").position;

    let again = log.append(&first, 0).await.expect("re-append");
    let p2 = log.append(&second, p1).await.expect("second").position;
    let after_advance = log
        .append(&first, 0)
        .await
        .expect("re-append after advance");
    let second_again = log.append(&second, p1).await.expect("re-append second");

    assert_eq!(
        again,
        Appended {
            position: p1,
            duplicate: true
        }
    );
    assert_eq!(
        after_advance,
        Appended {
            position: p1,
            duplicate: true
        }
    );
    assert_eq!(
        second_again,
        Appended {
            position: p2,
            duplicate: true
        }
    );
    assert_eq!(log.last_position().await.expect("last"), p2);
    let loaded = log.load(request_id).await.expect("load");
    assert_eq!(
        loaded.iter().map(|c| c.position).collect::<Vec<_>>(),
        vec![p1, p2]
    );
}

async fn read_from_and_follow_deliver_every_commit_in_order(log: &EventLog) {
    let requests = [fresh_id(), fresh_id(), fresh_id()];
    let mut last = [0u64; 3];
    let mut written = Vec::new();
    for round in 0..2u64 {
        for (i, request_id) in requests.iter().enumerate() {
            let c = commit(*request_id, round + 1, 1);
            last[i] = log.append(&c, last[i]).await.expect("append").position;
            written.push((last[i], c));
        }
    }
    let first = written[0].0;
    let end = written.last().expect("some").0;

    let all = log.read_from(first, 100).await.expect("read all");
    let page = log.read_from(written[2].0, 2).await.expect("read page");
    let past_end = log.read_from(end + 1, 10).await.expect("read past end");
    let from_zero = log.read_from(0, 100).await.expect("read from 0");

    let as_pairs = |v: Vec<schemas::LoggedCommit>| -> Vec<(u64, Commit)> {
        v.into_iter().map(|l| (l.position, l.commit)).collect()
    };
    assert_eq!(as_pairs(all), written);
    assert_eq!(as_pairs(page), written[2..4].to_vec());
    assert!(past_end.is_empty());
    assert_eq!(as_pairs(from_zero), written);

    let mut follow = log.follow(first);
    for (position, c) in &written {
        let next = tokio::time::timeout(FOLLOW_DEADLINE, follow.next())
            .await
            .expect("follow delivers stored commits in time")
            .expect("follow never ends")
            .expect("follow item");
        assert_eq!((next.position, &next.commit), (*position, c));
    }
    let late = commit(requests[0], 3, 1);
    let late_position = log
        .append(&late, last[0])
        .await
        .expect("late append")
        .position;
    let next = tokio::time::timeout(FOLLOW_DEADLINE, follow.next())
        .await
        .expect("follow delivers a new append in time")
        .expect("follow never ends")
        .expect("follow item");
    assert_eq!((next.position, next.commit), (late_position, late));
}

async fn multi_event_commit_is_one_record(log: &EventLog) {
    let request_id = fresh_id();
    let before = log.last_position().await.expect("last");
    let three = commit(request_id, 1, 3);

    let position = log.append(&three, 0).await.expect("append").position;

    let records = log.read_from(before + 1, 100).await.expect("read");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].position, position);
    assert_eq!(records[0].commit.events.len(), 3);
    assert_eq!(log.load_raw(request_id).await.expect("raw").len(), 1);
    assert_eq!(log.last_position().await.expect("last"), position);
}

async fn load_raw_returns_the_stored_bytes(log: &EventLog) {
    let request_id = fresh_id();
    let first = commit(request_id, 1, 2);
    let second = commit(request_id, 3, 1);
    let p1 = log.append(&first, 0).await.expect("first").position;
    let p2 = log.append(&second, p1).await.expect("second").position;

    let raw = log.load_raw(request_id).await.expect("load raw");

    assert_eq!(raw, vec![(p1, first.to_bytes()), (p2, second.to_bytes())]);
    let decoded = Commit::from_bytes(&raw[0].1).expect("decodes");
    assert_eq!(decoded, first);
}

async fn unknown_request_loads_empty(log: &EventLog) {
    assert!(log.load(fresh_id()).await.expect("load").is_empty());
    assert!(log.load_raw(fresh_id()).await.expect("load raw").is_empty());
}

async fn empty_commit_is_refused(log: &EventLog) {
    let mut empty = commit(fresh_id(), 1, 1);
    empty.events.clear();

    let result = log.append(&empty, 0).await;

    assert!(
        matches!(result, Err(LogError::InvalidCommit(_))),
        "got {result:?}"
    );
    assert_eq!(log.last_position().await.expect("last"), 0);
}

async fn ping_answers_and_describe_names_the_store(log: &EventLog) {
    log.ping().await.expect("ping");
    let description = log.describe();
    match log.store() {
        engine_log::Store::JetStream(_) => {
            assert!(description.contains("nats-server"), "{description}")
        }
        engine_log::Store::Sqlite(_) => {
            assert!(description.contains("synchronous=FULL"), "{description}")
        }
    }
}
