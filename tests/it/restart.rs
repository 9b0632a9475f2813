//! Restart: every acknowledged request survives dropping the engine and building a new one
//! on the same data directory / stream; the new engine continues the hash chain and still
//! recognises retried intakes and commands.

use serde_json::json;
use tests::app::{Store, actors, external_id, intake_document, spawn_app};

tests::on_both_stores!(restart);

async fn restart(store: Store) {
    // Arrange: five requests, some accepted, one retried command key.
    let app = spawn_app(store).await;
    let mut acknowledged = Vec::new();
    for i in 0..5 {
        let external = external_id();
        let (status, created) = app.intake(&intake_document(&external)).await;
        assert_eq!(status, 201);
        let id = created["request_id"].as_str().expect("id").to_string();
        let mut version = 1;
        if i % 2 == 0 {
            let (status, answer) = app
                .command(&id, "accept", actors::STATION, &json!({}))
                .await;
            assert_eq!(status, 200, "{answer}");
            version = answer["version"].as_u64().expect("version");
        }
        acknowledged.push((external, id, version));
    }
    let key = uuid::Uuid::now_v7().to_string();
    let first_id = acknowledged[0].1.clone();
    let note_path = format!("/api/v1/requests/{first_id}/note_progress");
    let send_note = |app: &tests::app::TestApp| {
        app.client
            .post(format!("{}{note_path}", app.address))
            .header("X-Bianmin-Actor", actors::STATION)
            .header("Idempotency-Key", &key)
            .json(&json!({"note": "before restart"}))
            .send()
    };
    let before: serde_json::Value = send_note(&app)
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(before["duplicate"], false);
    acknowledged[0].2 += 1;

    // Act
    let app = app.restart().await;

    // Assert: all found, at the version acknowledged.
    for (external, id, version) in &acknowledged {
        let response = app
            .get(&format!("/api/v1/requests/{id}"), actors::AUDITOR)
            .await;
        assert_eq!(response.status().as_u16(), 200, "{id} found after restart");
        let state: serde_json::Value = response.json().await.expect("json");
        assert_eq!(state["version"], *version, "{id}");
        let (status, again) = app.intake(&intake_document(external)).await;
        assert_eq!(
            status, 200,
            "a resubmission finds the same request: {again}"
        );
        assert_eq!(again["created"], false);
        assert_eq!(again["request_id"], id.as_str());
    }
    let after: serde_json::Value = send_note(&app)
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(
        after["duplicate"], true,
        "the retried command is recognised after restart"
    );
    assert_eq!(after["version"], before["version"]);

    // The new engine continues the chain.
    let (status, answer) = app
        .command(
            &first_id,
            "note_progress",
            actors::STATION,
            &json!({"note": "after"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let history = app.history(&first_id).await;
    let n = history.len();
    assert_eq!(history[n - 1]["prev_hash"], history[n - 2]["hash"]);
    assert_eq!(app.log_length().await, 5 + 3 + 1 + 1);
    app.teardown().await;
}
