//! The JetStream event log on private servers: a 3-node cluster with 3 replicas, ambiguous
//! appends resolved by reading (after the server's duplicate window has lapsed), and a
//! server that goes away and comes back.

use std::time::{Duration, Instant};

use engine_log::{Appended, EventLog, JetStreamConfig, LogError};
use serde_json::json;
use tests::app::{Store, actors, external_id, intake_document, spawn_app_with};
use tests::nats::{NatsCluster, NatsServer, unique_log_config};

use crate::log_conformance::{commit, fresh_id};

/// The shortest duplicate window the server accepts: a re-append after it is no longer caught
/// by the server's own deduplication, so the log must resolve it by reading.
const SHORT_WINDOW: Duration = Duration::from_millis(100);
/// How long to let [`SHORT_WINDOW`] lapse (with the server's purge timer's slack).
const WINDOW_LAPSE: Duration = Duration::from_millis(350);

fn config(replicas: usize) -> JetStreamConfig {
    JetStreamConfig {
        replicas,
        duplicate_window: SHORT_WINDOW,
        request_timeout: Duration::from_millis(1_500),
        ..unique_log_config()
    }
}

/// Appends, advances, then re-appends the first commit with its original expected
/// position: a duplicate at the original position, never a conflict or a second record;
/// a genuinely different commit with the same stale position is a conflict.
async fn ambiguous_append_resolves_to_duplicate(log: &EventLog) {
    let request_id = fresh_id();
    let first = commit(request_id, 1, 1);
    let p1 = log.append(&first, 0).await.expect("first").position;
    let p2 = log
        .append(&commit(request_id, 2, 1), p1)
        .await
        .expect("second")
        .position;
    // Not synchronisation: the point is to retry after the server forgot the commit id.
    tokio::time::sleep(WINDOW_LAPSE).await;

    let retried = log.append(&first, 0).await.expect("ambiguous re-append");
    let rival = log.append(&commit(request_id, 2, 1), p1).await;

    assert_eq!(
        retried,
        Appended {
            position: p1,
            duplicate: true
        }
    );
    match rival {
        Err(LogError::Conflict {
            expected, actual, ..
        }) => {
            assert_eq!((expected, actual), (p1, Some(p2)));
        }
        other => panic!("a different commit on a stale position must conflict, got {other:?}"),
    }
    assert_eq!(log.load(request_id).await.expect("load").len(), 2);
    assert_eq!(log.last_position().await.expect("last"), p2);
}

#[tokio::test]
async fn cluster_of_three_appends_and_resolves_ambiguous_appends() {
    let cluster = NatsCluster::start(3).await;
    let log = connect_with_deadline(cluster.client().await, config(3)).await;
    assert!(log.describe().contains("3 replica"), "{}", log.describe());

    let request_id = fresh_id();
    let mut expected = 0;
    for version in 1..=5 {
        expected = log
            .append(&commit(request_id, version, 1), expected)
            .await
            .expect("append")
            .position;
    }
    let loaded = log.load(request_id).await.expect("load");
    assert_eq!(
        loaded
            .iter()
            .map(|c| c.commit.last_version())
            .collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );

    ambiguous_append_resolves_to_duplicate(&log).await;
}

/// Every read of an R3 log answers, under concurrent reads and appends: a read consumer
/// created on one node may not answer its first pulls yet (`503`), which once failed about one
/// history read in thirty.
#[tokio::test]
async fn every_read_of_a_three_replica_log_succeeds() {
    const REQUESTS: usize = 200;
    const READERS: usize = 16;
    // Today's servers answer a new consumer's first pulls with 503 more often than 2.9 did.
    let cluster = NatsCluster::start_current(3).await;
    let log = connect_with_deadline(cluster.client().await, config(3)).await;
    let mut ids = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let request_id = fresh_id();
        log.append(&commit(request_id, 1, 1), 0)
            .await
            .expect("append");
        ids.push(request_id);
    }
    let writer = {
        let log = log.clone();
        let ids = ids.clone();
        tokio::spawn(async move {
            for request_id in ids {
                let last = log.load(request_id).await.expect("history read").len();
                let position = log.load(request_id).await.expect("history read")[last - 1].position;
                log.append(&commit(request_id, 2, 1), position)
                    .await
                    .expect("append");
            }
        })
    };
    let readers: Vec<_> = (0..READERS)
        .map(|reader| {
            let log = log.clone();
            let ids = ids.clone();
            tokio::spawn(async move {
                for request_id in ids.iter().skip(reader).step_by(READERS / 4) {
                    let history = log.load(*request_id).await;
                    let history =
                        history.unwrap_or_else(|e| panic!("history of {request_id}: {e}"));
                    assert!(!history.is_empty(), "request {request_id}");
                }
                log.read_from(1, usize::MAX)
                    .await
                    .expect("a full read answers")
                    .len()
            })
        })
        .collect();
    for reader in readers {
        assert!(reader.await.expect("reader") >= REQUESTS);
    }
    writer.await.expect("writer");
    let all = log
        .read_from(1, usize::MAX)
        .await
        .expect("a full read answers");
    assert_eq!(all.len(), 2 * REQUESTS);
}

#[tokio::test]
async fn single_node_resolves_ambiguous_appends() {
    let server = NatsServer::start().await;
    let log = connect_with_deadline(server.client().await, config(1)).await;

    ambiguous_append_resolves_to_duplicate(&log).await;
}

#[tokio::test]
async fn append_while_server_is_down_is_unavailable_then_idempotent_after_restart() {
    let mut server = NatsServer::start().await;
    let log = connect_with_deadline(server.client().await, config(1)).await;
    let request_id = fresh_id();
    let first = commit(request_id, 1, 1);
    let p1 = log.append(&first, 0).await.expect("first").position;
    let second = commit(request_id, 2, 1);

    server.stop();
    let started = Instant::now();
    let down = log.append(&second, p1).await;
    let waited = started.elapsed();
    server.restart().await;
    let retried = retry_until_available(&log, &second, p1).await;
    let again = log
        .append(&first, 0)
        .await
        .expect("re-append first after restart");

    assert!(
        matches!(down, Err(LogError::Unavailable(_))),
        "got {down:?}"
    );
    assert!(waited < Duration::from_secs(15), "gave up after {waited:?}");
    assert!(!retried.duplicate || retried.position > p1);
    assert_eq!(
        again,
        Appended {
            position: p1,
            duplicate: true
        }
    );
    let loaded = log.load(request_id).await.expect("load after restart");
    assert_eq!(loaded.len(), 2, "the second commit landed exactly once");
    assert_eq!(loaded[1].position, retried.position);
}

/// Connects the log, retrying while a fresh server or cluster settles.
async fn connect_with_deadline(client: async_nats::Client, cfg: JetStreamConfig) -> EventLog {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match EventLog::connect_jetstream(client.clone(), cfg.clone()).await {
            Ok(log) => return log,
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(error = %e, "log not ready yet");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("event log did not connect: {e}"),
        }
    }
}

/// Appends until the restarted server answers (bounded).
async fn retry_until_available(log: &EventLog, c: &schemas::Commit, expected: u64) -> Appended {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match log.append(c, expected).await {
            Ok(appended) => return appended,
            Err(LogError::Unavailable(e)) if Instant::now() < deadline => {
                tracing::debug!(error = %e, "server not back yet");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("append after restart failed: {e}"),
        }
    }
}

/// With `nats.replicas = 3`, every stream the engine creates has three replicas: the log, the
/// inbox and its rejects, the upward and report links, and the notification stream (made at
/// the first notification).
#[tokio::test]
async fn every_stream_an_engine_creates_follows_the_configured_replicas() {
    let cluster = NatsCluster::start(3).await;
    let urls = cluster.urls().join(",");
    let app = spawn_app_with(Store::Nats, |config| {
        config.nats.url = Some(urls);
        config.nats.replicas = 3;
        config.notify.poll_interval_ms = 50;
    })
    .await;
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("request id");
    let (status, answer) = app.command(id, "accept", actors::STATION, &json!({})).await;
    assert_eq!(status, 200, "{answer}");

    let expected = app.names().all_streams();
    let js = async_nats::jetstream::new(cluster.client().await);
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in &expected {
        let replicas = loop {
            match js.get_stream(name).await {
                Ok(mut stream) => {
                    break stream
                        .info()
                        .await
                        .expect("stream info")
                        .config
                        .num_replicas;
                }
                Err(error) if Instant::now() < deadline => {
                    tracing::debug!(%error, stream = %name, "not created yet");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("stream {name} was never created: {error}"),
            }
        };
        assert_eq!(replicas, 3, "stream {name}");
    }
}
