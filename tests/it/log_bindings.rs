//! Command bindings at the log: on both stores, an id appended with `append_bound` stays
//! bound to its request and command, as seen from another handle on the same store (another
//! process), and a bound append that conflicts with the binding writes nothing.

use engine_log::{Binding, EventLog, LogError};
use schemas::RequestId;
use tests::nats::{delete_stream, shared_nats, unique_log_config};

use crate::log_conformance::{commit, fresh_id};

/// Two handles on one store, as two processes have them: a check cannot be answered from
/// one handle's memory. The guard deletes what the test created.
enum Handles {
    JetStream(EventLog, EventLog, async_nats::Client, Vec<String>),
    Sqlite(EventLog, EventLog, #[allow(dead_code)] tempfile::TempDir),
}

impl Handles {
    async fn jetstream() -> Handles {
        let client = shared_nats().await;
        let cfg = unique_log_config();
        let streams = vec![
            cfg.names.events_stream().to_string(),
            cfg.names.commands_bucket_stream(),
        ];
        let first = EventLog::connect_jetstream(client.clone(), cfg.clone())
            .await
            .expect("connect");
        let second = EventLog::connect_jetstream(client.clone(), cfg)
            .await
            .expect("connect");
        Handles::JetStream(first, second, client, streams)
    }

    async fn sqlite() -> Handles {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("events.db");
        let first = EventLog::open_sqlite(&path).await.expect("open");
        let second = EventLog::open_sqlite(&path).await.expect("open");
        Handles::Sqlite(first, second, dir)
    }

    fn logs(&self) -> (&EventLog, &EventLog) {
        match self {
            Handles::JetStream(a, b, ..) | Handles::Sqlite(a, b, _) => (a, b),
        }
    }

    async fn teardown(self) {
        if let Handles::JetStream(_, _, client, streams) = self {
            for stream in streams {
                delete_stream(&client, &stream).await;
            }
        }
    }
}

fn binding(request_id: RequestId, digest: char) -> Binding {
    Binding {
        request_id,
        digest: digest.to_string().repeat(64),
    }
}

#[tokio::test]
async fn a_bound_id_is_refused_for_another_request_or_command_on_jetstream() {
    bound_id(Handles::jetstream().await).await;
}

#[tokio::test]
async fn a_bound_id_is_refused_for_another_request_or_command_on_sqlite() {
    bound_id(Handles::sqlite().await).await;
}

async fn bound_id(handles: Handles) {
    let (first, second) = handles.logs();
    let (a, b) = (fresh_id(), fresh_id());
    let original = commit(a, 1, 1);
    let bound = binding(a, 'a');
    let appended = first
        .append_bound(&original, 0, &bound)
        .await
        .expect("a bound append");
    assert!(!appended.duplicate);

    // The id for another command on the request, or on another request: refused by the
    // store (the second handle has read nothing yet) and by the first handle's memory.
    let mut other_body = commit(a, 2, 1);
    other_body.commit_id = original.commit_id;
    let mut elsewhere = commit(b, 1, 1);
    elsewhere.commit_id = original.commit_id;
    for (log, attempt, expected, binding) in [
        (second, &other_body, appended.position, binding(a, 'b')),
        (second, &elsewhere, 0, binding(b, 'a')),
        (first, &elsewhere, 0, binding(b, 'a')),
    ] {
        let refused = log.append_bound(attempt, expected, &binding).await;
        assert!(
            matches!(refused, Err(LogError::IdBound { bound_to, .. }) if bound_to == a),
            "{refused:?}"
        );
    }

    // Another process sees the binding and takes the same command as a retry.
    assert_eq!(
        second.binding(original.commit_id).await.expect("reads"),
        Some(bound.clone())
    );
    let retried = second
        .append_bound(&original, 0, &bound)
        .await
        .expect("a retry");
    assert_eq!(
        (retried.position, retried.duplicate),
        (appended.position, true)
    );
    for log in [first, second] {
        assert_eq!(log.load(a).await.expect("load").len(), 1);
        assert!(log.load(b).await.expect("load").is_empty());
        assert_eq!(log.last_position().await.expect("last"), appended.position);
    }
    handles.teardown().await;
}

#[tokio::test]
async fn an_unbound_commit_holding_the_id_refuses_a_bound_append_elsewhere_on_sqlite() {
    let handles = Handles::sqlite().await;
    let (log, _) = handles.logs();
    let (a, b) = (fresh_id(), fresh_id());
    let unbound = commit(a, 1, 1);
    log.append(&unbound, 0).await.expect("an unbound append");
    assert_eq!(log.binding(unbound.commit_id).await.expect("reads"), None);

    let mut elsewhere = commit(b, 1, 1);
    elsewhere.commit_id = unbound.commit_id;
    let refused = log.append_bound(&elsewhere, 0, &binding(b, 'a')).await;
    assert!(
        matches!(refused, Err(LogError::IdBound { bound_to, .. }) if bound_to == a),
        "{refused:?}"
    );
    assert!(log.load(b).await.expect("load").is_empty());
    handles.teardown().await;
}
