//! Idempotency keys are permanent: a command id is bound to the request and the command it
//! was first used for, on both logs, across restarts and past JetStream's duplicate window.
//! A retry answers the original outcome; any other reuse is refused with 409
//! `idempotency_key_reused` and records nothing.

use std::time::{Duration, Instant};

use engine_log::EventLog;
use engine_service::commands::CommandRequest;
use schemas::{Actor, Command, RequestId, Role};
use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, intake_document, spawn_app};
use uuid::Uuid;

use crate::e2e_supervision::NatsApi;
use crate::log_conformance::commit;

/// A fresh idempotency key.
fn key() -> Uuid {
    Uuid::now_v7()
}

/// A new request, accepted by the station (so staff may note progress on it).
async fn accepted(app: &TestApp) -> String {
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("an id").to_string();
    let (status, answer) = app
        .command(&id, "accept", actors::STATION, &json!({}))
        .await;
    assert_eq!(status, 200, "{answer}");
    id
}

/// `note_progress` on `id` with idempotency key `key`, as `actor`; (status, body).
async fn note_as(app: &TestApp, actor: &str, id: &str, key: Uuid, note: &str) -> (u16, Value) {
    let response = app
        .client
        .post(format!(
            "{}/api/v1/requests/{id}/note_progress",
            app.address
        ))
        .header("X-Bianmin-Actor", actor)
        .header("Idempotency-Key", key.to_string())
        .json(&json!({ "note": note }))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

async fn note(app: &TestApp, id: &str, key: Uuid, note: &str) -> (u16, Value) {
    note_as(app, actors::STATION, id, key, note).await
}

/// Asserts `answer` is the structured 409 of a reused key.
fn assert_reused(status: u16, answer: &Value) {
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["code"], "idempotency_key_reused", "{answer}");
    assert_eq!(answer["field"], "Idempotency-Key", "{answer}");
    assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
}

/// The requests holding a commit with id `key`, in log order (the whole log scanned).
async fn commits_with_id(log: &EventLog, key: Uuid) -> Vec<RequestId> {
    let mut found = Vec::new();
    log.scan(1, |logged| {
        if logged.commit.commit_id == key {
            found.push(logged.commit.request_id);
        }
    })
    .await
    .expect("the log reads");
    found
}

/// Whether any stored record of the log contains `text`.
async fn log_mentions(log: &EventLog, text: &str) -> bool {
    let mut from = 1;
    loop {
        let batch = log.read_raw_from(from, 500).await.expect("the log reads");
        let Some((last, _)) = batch.last() else {
            return false;
        };
        from = last + 1;
        if batch
            .iter()
            .any(|(_, bytes)| String::from_utf8_lossy(bytes).contains(text))
        {
            return true;
        }
    }
}

tests::on_both_stores!(another_body);

async fn another_body(store: Store) {
    let app = spawn_app(store).await;
    let id = accepted(&app).await;
    let key = key();
    let (status, first) = note(&app, &id, key, "first body").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["duplicate"], false);
    let length = app.log_length().await;

    // Another body under the same key: refused, and nothing of it is stored.
    let (status, answer) = note(&app, &id, key, "second body").await;
    assert_reused(status, &answer);
    // The same body from another caller is another command, too.
    let other_station = "worker-zhou;station_worker;sq-0101";
    let (status, answer) = note_as(&app, other_station, &id, key, "first body").await;
    assert_reused(status, &answer);
    // And so is another action under the key.
    let response = app
        .client
        .post(format!("{}/api/v1/requests/{id}/reply", app.address))
        .header("X-Bianmin-Actor", actors::STATION)
        .header("Idempotency-Key", key.to_string())
        .json(&json!({ "outcome": "resolved", "content": "Done." }))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let answer: Value = response.json().await.expect("a JSON body");
    assert_reused(status, &answer);

    // The same command again is a retry: the original outcome.
    let (status, again) = note(&app, &id, key, "first body").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["version"], first["version"]);
    assert_eq!(again["events"], first["events"]);

    if store == Store::Nats {
        // The NATS `cmd` path answers the same error document.
        let api = NatsApi::start(&app).await;
        let command = json!({"action": "note_progress", "note": "over nats"});
        let (error, body) = api
            .command_with_id(actors::STATION, &id, key, command)
            .await;
        assert_eq!(error.as_deref(), Some("idempotency_key_reused"), "{body}");
        assert_eq!(body["error"]["code"], "idempotency_key_reused", "{body}");
        assert_eq!(body["error"]["field"], "Idempotency-Key", "{body}");
        let command = json!({"action": "note_progress", "note": "first body"});
        let (error, body) = api
            .command_with_id(actors::STATION, &id, key, command)
            .await;
        assert_eq!(error, None, "{body}");
        assert_eq!(body["duplicate"], true, "{body}");
        api.stop().await;
    }

    let log = app.command_service.log();
    assert_eq!(app.log_length().await, length, "nothing was appended");
    let id: RequestId = id.parse().expect("a UUID");
    assert_eq!(commits_with_id(log, key).await, vec![id]);
    for text in ["second body", "over nats", "Done."] {
        assert!(!log_mentions(log, text).await, "`{text}` is in the log");
    }
    app.teardown().await;
}

tests::on_both_stores!(another_request);

async fn another_request(store: Store) {
    let app = spawn_app(store).await;
    let (first, second) = (accepted(&app).await, accepted(&app).await);
    let key = key();
    let (status, answer) = note(&app, &first, key, "on the first request").await;
    assert_eq!(status, 200, "{answer}");
    let before = app.history(&second).await.len();

    let (status, answer) = note(&app, &second, key, "on the first request").await;
    assert_reused(status, &answer);

    assert_eq!(app.history(&second).await.len(), before);
    let first: RequestId = first.parse().expect("a UUID");
    let log = app.command_service.log();
    assert_eq!(commits_with_id(log, key).await, vec![first]);
    app.teardown().await;
}

#[tokio::test]
async fn a_key_stays_bound_past_the_jetstream_duplicate_window() {
    let app = spawn_app(Store::Nats).await;
    let client = async_nats::connect(tests::app::NATS_URL)
        .await
        .expect("nats");
    let js = async_nats::jetstream::new(client);
    let names = app.names();
    let mut stream = js
        .get_stream(names.events_stream())
        .await
        .expect("the event stream");
    let mut config = stream.info().await.expect("stream info").config.clone();
    config.duplicate_window = Duration::from_millis(200);
    js.update_stream(config).await.expect("window shortened");

    let (first, second) = (accepted(&app).await, accepted(&app).await);
    let key = key();
    let (status, answer) = note(&app, &first, key, "before the window passed").await;
    assert_eq!(status, 200, "{answer}");

    // Wait until JetStream itself has forgotten the id: an unbound append of a commit with
    // that id on a third request is then taken (until then it is answered as a duplicate and
    // writes nothing). This is what the log alone would have let through.
    let log = app.command_service.log();
    let third: RequestId = Uuid::now_v7();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut unbound = commit(third, 1, 1);
        unbound.commit_id = key;
        let appended = log.append(&unbound, 0).await.expect("the log appends");
        if !appended.duplicate {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the duplicate window never passed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let before = app.history(&second).await.len();
    let (status, answer) = note(&app, &second, key, "before the window passed").await;
    assert_reused(status, &answer);
    assert_eq!(app.history(&second).await.len(), before);
    let first: RequestId = first.parse().expect("a UUID");
    assert_eq!(commits_with_id(log, key).await, vec![first, third]);
    app.teardown().await;
}

tests::on_both_stores!(restart);

async fn restart(store: Store) {
    let app = spawn_app(store).await;
    let (first, second) = (accepted(&app).await, accepted(&app).await);
    let key = key();
    let (status, original) = note(&app, &first, key, "before the restart").await;
    assert_eq!(status, 200, "{original}");

    let app = app.restart().await;

    let (status, answer) = note(&app, &first, key, "after the restart").await;
    assert_reused(status, &answer);
    let (status, answer) = note(&app, &second, key, "before the restart").await;
    assert_reused(status, &answer);
    let (status, again) = note(&app, &first, key, "before the restart").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["events"], original["events"]);
    assert!(!log_mentions(app.command_service.log(), "after the restart").await);
    app.teardown().await;
}

/// A process that bound a key and stopped before publishing its commit (the window between
/// the two writes on JetStream) leaves the key to the same command: its retry is recorded,
/// any other request is refused.
#[tokio::test]
async fn a_binding_left_without_its_commit_is_completed_by_the_retry() {
    let app = spawn_app(Store::Nats).await;
    let (first, second) = (accepted(&app).await, accepted(&app).await);
    let key = key();
    let first_id: RequestId = first.parse().expect("a UUID");
    let request = CommandRequest {
        request_id: first_id,
        command_id: key,
        correlation_id: None,
        actor: Actor {
            id: "worker-li".into(),
            role: Role::StationWorker,
            unit: Some("sq-0101".into()),
        },
        command: Command::from_action_body("note_progress", json!({"note": "interrupted"}))
            .expect("a command"),
    };
    // Bind, then fail the publish (a stale expected position): the binding stays, no commit.
    let mut interrupted = commit(first_id, 1, 1);
    interrupted.commit_id = key;
    let log = app.command_service.log();
    let failed = log
        .append_bound(&interrupted, 1, &request.binding())
        .await
        .expect_err("the publish is refused");
    assert!(
        matches!(failed, engine_log::LogError::Conflict { .. }),
        "{failed}"
    );
    assert_eq!(
        log.binding(key).await.expect("bindings read"),
        Some(request.binding())
    );
    assert!(commits_with_id(log, key).await.is_empty());

    let (status, answer) = note(&app, &second, key, "interrupted").await;
    assert_reused(status, &answer);
    let (status, answer) = note(&app, &first, key, "interrupted").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["duplicate"], false);
    assert_eq!(commits_with_id(log, key).await, vec![first_id]);
    app.teardown().await;
}

tests::on_both_stores!(resent_intake);

async fn resent_intake(store: Store) {
    let app = spawn_app(store).await;
    let mut document = intake_document(&external_id());
    let (status, created) = app.intake(&document).await;
    assert_eq!(status, 201, "{created}");
    document["text"] = json!("The vendors are back, now also at building 4.");
    let (status, again) = app.intake(&document).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["created"], false);
    assert_eq!(again["request_id"], created["request_id"]);
    let app = app.restart().await;
    let (status, again) = app.intake(&document).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["created"], false);
    app.teardown().await;
}
