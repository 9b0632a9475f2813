//! Optimistic concurrency for clients: a command names the version it was decided on
//! (`If-Match: "<version>"` over HTTP, `expected_version` over NATS) and is recorded only if
//! the request is still there, else 409 `version_mismatch` naming the current version, with
//! nothing recorded. Every command answer and request read carries the `ETag`. On the SQLite
//! store and on JetStream, with a second engine writing behind the first one's cache.

use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, intake_document, spawn_app};
use uuid::Uuid;

use crate::e2e_supervision::NatsApi;

/// `POST /api/v1/requests/{id}/{action}` with optional `If-Match` and `Idempotency-Key`;
/// (status, ETag, body).
async fn command(
    app: &TestApp,
    id: &str,
    action: &str,
    if_match: Option<&str>,
    key: Option<Uuid>,
    body: Value,
) -> (u16, Option<String>, Value) {
    let mut post = reqwest::Client::new()
        .post(format!("{}/api/v1/requests/{id}/{action}", app.address))
        .header("X-Bianmin-Actor", actors::STATION)
        .json(&body);
    if let Some(tag) = if_match {
        post = post.header("If-Match", tag);
    }
    if let Some(key) = key {
        post = post.header("Idempotency-Key", key.to_string());
    }
    let response = post.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().expect("ascii").to_string());
    (status, etag, response.json().await.expect("JSON"))
}

/// The request's ETag and version from `GET /api/v1/requests/{id}`.
async fn read(app: &TestApp, id: &str) -> (String, u64) {
    let response = app
        .get(&format!("/api/v1/requests/{id}"), actors::AUDITOR)
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let etag = response.headers()["etag"]
        .to_str()
        .expect("ascii")
        .to_string();
    let body: Value = response.json().await.expect("JSON");
    (etag, body["version"].as_u64().expect("version"))
}

fn classify() -> Value {
    json!({"catalogue_item": "um-street-vending", "request_type": "complaint"})
}

async fn commands_name_the_version_they_were_decided_on(store: Store) {
    let app = spawn_app(store).await;
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id").to_string();
    let (tag, version) = read(&app, &id).await;
    assert_eq!(tag, format!("\"{version}\""));

    // At the expected version: recorded, and the answer carries the new tag.
    let (status, etag, body) = command(&app, &id, "accept", Some(&tag), None, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let accepted = body["version"].as_u64().expect("version");
    assert_eq!(etag, Some(format!("\"{accepted}\"")));

    // Stale: 409 naming the current version; nothing recorded.
    let before = app.history(&id).await.len();
    let key = Uuid::now_v7();
    let (status, _, body) = command(&app, &id, "classify", Some(&tag), Some(key), classify()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "version_mismatch", "{body}");
    assert_eq!(body["field"], "If-Match", "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("version {accepted}"))),
        "{body}"
    );
    assert_eq!(app.history(&id).await.len(), before, "nothing recorded");

    // The same key at the current version records it; its retry with a stale tag is the
    // original outcome, not a mismatch.
    let current = format!("\"{accepted}\"");
    let (status, _, first) =
        command(&app, &id, "classify", Some(&current), Some(key), classify()).await;
    assert_eq!(
        (status, &first["duplicate"]),
        (200, &json!(false)),
        "{first}"
    );
    let (status, _, again) =
        command(&app, &id, "classify", Some(&tag), Some(key), classify()).await;
    assert_eq!(
        (status, &again["duplicate"]),
        (200, &json!(true)),
        "{again}"
    );
    assert_eq!(again["version"], first["version"]);

    // Malformed tags are refused before anything is read.
    for bad in ["seven", "\"-1\"", "W/\"3\"", ""] {
        let (status, _, body) = command(
            &app,
            &id,
            "note_progress",
            Some(bad),
            None,
            json!({"note": "x"}),
        )
        .await;
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some("If-Match")),
            "{bad:?}: {body}"
        );
    }

    // A second engine writes; the first one's cache is behind the log. A command naming the
    // log's version through the first engine is recorded, a stale one refused.
    let twin = app.twin().await;
    let (tag, _) = read(&twin, &id).await;
    let (status, _, body) = command(
        &twin,
        &id,
        "refer",
        Some(&tag),
        None,
        json!({"lead_department": "urban-management"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let after_twin = format!("\"{}\"", body["version"]);
    let note = json!({"note": "called the resident"});
    let (status, _, body) =
        command(&app, &id, "note_progress", Some(&tag), None, note.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("version_mismatch")),
        "{body}"
    );
    let (status, _, body) =
        command(&app, &id, "note_progress", Some(&after_twin), None, note).await;
    assert_eq!(
        status, 200,
        "the first engine judges by the log, not its cache: {body}"
    );
    twin.teardown_keep_store().await;
    app.teardown().await;
}

tests::on_both_stores!(commands_name_the_version_they_were_decided_on);

/// Over NATS the envelope's `expected_version` does the same.
#[tokio::test]
async fn the_nats_envelope_names_the_expected_version() {
    let app = spawn_app(Store::Nats).await;
    let nats = NatsApi::start(&app).await;
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id").to_string();
    let version = created["version"].as_u64().expect("version");
    let envelope = |expected: u64| {
        json!({
            "command_id": Uuid::now_v7(),
            "request_id": id,
            "expected_version": expected,
            "command": {"action": "accept"},
        })
    };
    let (error, body) = nats
        .send_envelope(actors::STATION, envelope(version + 5))
        .await;
    assert_eq!(error.as_deref(), Some("version_mismatch"), "{body}");
    assert_eq!(body["error"]["field"], "If-Match", "{body}");
    let (error, body) = nats.send_envelope(actors::STATION, envelope(version)).await;
    assert_eq!(error, None, "{body}");
    assert_eq!(body["version"].as_u64(), Some(version + 1), "{body}");
    nats.stop().await;
    app.teardown().await;
}
