//! A link whose second commit fails: `link_duplicate` records `linked_to_original` on the
//! duplicate, then the back-reference `duplicate_recorded` on the original. Here JetStream
//! itself refuses the second append — the stream is limited to the original's current number
//! of messages per subject, new ones discarded per subject (a real server-side refusal of
//! exactly that subject; stopping the server, as `faults.rs` does, cannot tell the two
//! commits of one command apart). The caller gets an error, the first commit stands, and once
//! the limit is lifted a retry with the same idempotency key records the back-reference,
//! answering the first commit as a duplicate: nothing is recorded twice.

use async_nats::jetstream::stream::{Config, DiscardPolicy};
use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, intake_document, spawn_app_with};
use uuid::Uuid;

async fn intake(app: &TestApp) -> String {
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{created}");
    created["request_id"].as_str().expect("id").to_string()
}

/// `link_duplicate` of `id` to `original` under `key`; (status, body).
async fn link(app: &TestApp, id: &str, original: &str, key: Uuid) -> (u16, Value) {
    let response = app
        .client
        .post(format!(
            "{}/api/v1/requests/{id}/link_duplicate",
            app.address
        ))
        .header("X-Bianmin-Actor", actors::STATION)
        .header("Idempotency-Key", key.to_string())
        .json(&json!({"original": original, "reason": "同一路段的同一摊点"}))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// How many events of `kind` the request's history holds.
async fn count(app: &TestApp, id: &str, kind: &str) -> usize {
    let history = app.history(id).await;
    history.iter().filter(|e| e["type"] == kind).count()
}

/// The engine's events stream, and its configuration before the test changes it.
async fn events_stream(app: &TestApp) -> (async_nats::jetstream::Context, Config) {
    let jetstream = async_nats::jetstream::new(tests::nats::shared_nats().await);
    let name = app.names().events_stream().to_string();
    let mut stream = jetstream
        .get_stream(&name)
        .await
        .expect("the events stream");
    let config = stream.info().await.expect("stream info").config.clone();
    (jetstream, config)
}

#[tokio::test]
async fn a_failed_back_reference_is_completed_by_a_retry_with_the_same_key() {
    // Arrange: an original with two commits (receipt, acceptance), a duplicate with one.
    let app = spawn_app_with(Store::Nats, |_| {}).await;
    let original = intake(&app).await;
    let (status, body) = app
        .command(&original, "accept", actors::STATION, &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let duplicate = intake(&app).await;
    let (jetstream, config) = events_stream(&app).await;
    let limited = Config {
        max_messages_per_subject: 2,
        discard: DiscardPolicy::New,
        discard_new_per_subject: true,
        ..config.clone()
    };
    jetstream
        .update_stream(&limited)
        .await
        .expect("limit the stream");
    let key = Uuid::now_v7();

    // Act: the duplicate's commit fits, the original's third message does not.
    let (status, failed) = link(&app, &duplicate, &original, key).await;
    let linked_before_retry = count(&app, &duplicate, "linked_to_original").await;
    let back_before_retry = count(&app, &original, "duplicate_recorded").await;
    jetstream
        .update_stream(&config)
        .await
        .expect("lift the limit");
    let (retry_status, retried) = link(&app, &duplicate, &original, key).await;

    // Assert: an error, the first commit alone, then the retry completes the pair.
    assert_eq!(
        (status, &failed["code"]),
        (503, &json!("unavailable")),
        "{failed}"
    );
    assert!(failed["message"].is_string(), "{failed}");
    assert_eq!((linked_before_retry, back_before_retry), (1, 0));
    assert_eq!(retry_status, 200, "{retried}");
    assert_eq!(
        retried["duplicate"], true,
        "the first commit answered: {retried}"
    );
    assert_eq!(count(&app, &duplicate, "linked_to_original").await, 1);
    assert_eq!(count(&app, &original, "duplicate_recorded").await, 1);
    let state: Value = app
        .get(&format!("/api/v1/requests/{original}"), actors::SUPERVISOR)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        state["state"]["links"]["duplicates"][0]["request"], duplicate,
        "{state}"
    );
    // Once more: nothing new anywhere.
    let length = app.log_length().await;
    let (status, again) = link(&app, &duplicate, &original, key).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(app.log_length().await, length);
    app.teardown().await;
}
