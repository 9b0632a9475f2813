//! Concurrent writers: duplicate intakes make one request, and many commands racing on one
//! request are each recorded exactly once with dense versions. Run on both stores within one
//! engine, and on JetStream across two engines sharing the stream (where the log's optimistic
//! concurrency, not the in-process lock, keeps them apart). The embedded SQLite log is a
//! single-engine store, so it has no two-engine case.

use std::collections::HashSet;

use futures::future::join_all;
use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, intake_document, spawn_app};

tests::on_both_stores!(duplicate_intakes);

tests::on_both_stores!(racing_commands);

#[tokio::test]
async fn two_engines_on_one_store_never_lose_an_update_on_nats() {
    two_engines(Store::Nats).await;
}

async fn duplicate_intakes(store: Store) {
    let app = spawn_app(store).await;
    let document = intake_document(&external_id());
    let answers = join_all((0..20).map(|_| app.intake(&document))).await;
    let created = answers.iter().filter(|(status, _)| *status == 201).count();
    let existing = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!((created, existing), (1, 19), "{answers:?}");
    let ids: HashSet<&str> = answers
        .iter()
        .filter_map(|(_, b)| b["request_id"].as_str())
        .collect();
    assert_eq!(ids.len(), 1, "one request id");
    let id = ids.into_iter().next().expect("id").to_string();
    let history = app.history(&id).await;
    assert_eq!(history.len(), 1, "one intake event");
    assert_eq!(history[0]["type"], "request_received");
    assert_eq!(app.log_length().await, 1);
    app.teardown().await;
}

async fn accepted_request(app: &TestApp) -> String {
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201);
    let id = created["request_id"].as_str().expect("id").to_string();
    let (status, answer) = app
        .command(&id, "accept", actors::STATION, &json!({}))
        .await;
    assert_eq!(status, 200, "{answer}");
    id
}

/// Checks the request's history holds every note exactly once with dense versions.
async fn assert_all_recorded(app: &TestApp, id: &str, notes: &[String], base: usize) {
    let history = app.history(id).await;
    assert_eq!(
        history.len(),
        base + notes.len(),
        "every command recorded once"
    );
    for (i, event) in history.iter().enumerate() {
        assert_eq!(event["version"], i as u64 + 1, "dense versions");
    }
    let recorded: Vec<&str> = history
        .iter()
        .filter(|e| e["type"] == "progress_noted")
        .filter_map(|e| e["data"]["note"].as_str())
        .collect();
    for note in notes {
        assert_eq!(recorded.iter().filter(|n| **n == note).count(), 1, "{note}");
    }
}

async fn racing_commands(store: Store) {
    let app = spawn_app(store).await;
    let id = accepted_request(&app).await;
    let notes: Vec<String> = (0..50).map(|i| format!("progress note {i}")).collect();
    let answers = join_all(notes.iter().map(|note| {
        let (app, id) = (&app, &id);
        async move {
            let body = json!({ "note": note });
            app.command(id, "note_progress", actors::STATION, &body)
                .await
        }
    }))
    .await;
    let mut versions: Vec<u64> = Vec::new();
    for (status, answer) in &answers {
        assert_eq!(*status, 200, "{answer}");
        versions.push(answer["version"].as_u64().expect("version"));
    }
    versions.sort_unstable();
    assert_eq!(
        versions,
        (3..=52).collect::<Vec<u64>>(),
        "each got its own version"
    );
    assert_all_recorded(&app, &id, &notes, 2).await;

    // A retry with the same idempotency key returns the original result and adds nothing.
    let key = uuid::Uuid::now_v7().to_string();
    let path = format!("/api/v1/requests/{id}/note_progress");
    let mut results: Vec<Value> = Vec::new();
    for _ in 0..2 {
        let response = app
            .client
            .post(format!("{}{path}", app.address))
            .header("X-Bianmin-Actor", actors::STATION)
            .header("Idempotency-Key", &key)
            .json(&json!({"note": "retried"}))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), 200);
        results.push(response.json().await.expect("json"));
    }
    assert_eq!(results[0]["duplicate"], false);
    assert_eq!(results[1]["duplicate"], true);
    assert_eq!(results[0]["version"], results[1]["version"]);
    assert_eq!(results[0]["events"], results[1]["events"]);
    assert_eq!(app.history(&id).await.len(), 53);
    app.teardown().await;
}

async fn two_engines(store: Store) {
    let first = spawn_app(store).await;
    let second = first.twin().await;
    let id = accepted_request(&first).await;
    let notes: Vec<String> = (0..30)
        .map(|i| format!("note from engine {} #{i}", i % 2))
        .collect();
    let answers = join_all(notes.iter().enumerate().map(|(i, note)| {
        let app = if i % 2 == 0 { &first } else { &second };
        let id = &id;
        async move {
            let body = json!({ "note": note });
            app.command(id, "note_progress", actors::STATION, &body)
                .await
        }
    }))
    .await;
    for (status, answer) in &answers {
        assert_eq!(*status, 200, "{answer}");
    }
    assert_all_recorded(&first, &id, &notes, 2).await;
    second.teardown_keep_store().await;
    first.teardown().await;
}
