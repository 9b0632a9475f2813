//! Poison records stop nothing: garbage on a new request subject, garbage on an existing
//! request's subject, a forged but chained commit, and a corrupt SQLite row are each skipped by
//! every reader and listed once, while later intakes and commands go on and reach the
//! projections, and a restart succeeds.

use std::time::Duration;

use async_nats::HeaderMap;
use engine_service::audit::{quarantine, verify};
use serde_json::{Value, json};
use tests::app::{
    Store, TestApp, actors, external_id, intake_document, spawn_app_with_projections,
};
use uuid::Uuid;

async fn intake(app: &TestApp) -> String {
    let (status, body) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{body}");
    body["request_id"].as_str().expect("id").to_string()
}

/// The request's stage as the projections show it, once they list it.
async fn projected_stage(app: &TestApp, id: &str, stage: &str) {
    for _ in 0..100 {
        let body: Value = app
            .get("/api/v1/requests?limit=1000", actors::AUDITOR)
            .await
            .json()
            .await
            .expect("json");
        let found = body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|item| item["request_id"] == json!(id) && item["stage"] == json!(stage));
        if found {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} not projected as {stage} within 10 s");
}

/// Publishes `payload` to `subject`, after the subject's current last sequence when given.
async fn publish(subject: String, payload: Vec<u8>, after: Option<u64>) -> u64 {
    let client = async_nats::connect(tests::app::NATS_URL)
        .await
        .expect("nats");
    let js = async_nats::jetstream::new(client);
    let mut headers = HeaderMap::new();
    if let Some(last) = after {
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            last.to_string().as_str(),
        );
    }
    js.publish_with_headers(subject, headers, payload.into())
        .await
        .expect("publish")
        .await
        .expect("stored")
        .sequence
}

async fn last_raw(app: &TestApp, id: &str) -> (u64, Value) {
    let raw = app
        .command_service
        .log()
        .load_raw(id.parse().expect("uuid"))
        .await
        .expect("raw");
    let (position, bytes) = raw.last().expect("records").clone();
    (position, serde_json::from_slice(&bytes).expect("json"))
}

#[tokio::test]
async fn poison_records_on_jetstream_are_quarantined_and_stop_nothing() {
    let app = spawn_app_with_projections(Store::Nats, None).await;
    let names = app.names();
    let (a, b) = (intake(&app).await, intake(&app).await);
    projected_stage(&app, &b, "received").await;

    // A record that is not a commit on a new subject; garbage on a's subject; a forged,
    // correctly chained copy of b's last event on b's subject.
    let stray = Uuid::now_v7();
    let p1 = publish(
        names.event_subject(stray),
        br#"{"not":"a commit"}"#.to_vec(),
        None,
    )
    .await;
    let (a_head, _) = last_raw(&app, &a).await;
    let p2 = publish(
        names.event_subject(&a),
        b"garbage-not-json".to_vec(),
        Some(a_head),
    )
    .await;
    let (b_head, b_last) = last_raw(&app, &b).await;
    let p3 = publish(
        names.event_subject(&b),
        serde_json::to_vec(&tests::forge::next_commit(&b_last)).expect("json"),
        Some(b_head),
    )
    .await;

    // Later intakes and commands, on a new request and on both poisoned requests, go on.
    let c = intake(&app).await;
    for id in [&a, &b] {
        let (status, body) = app.command(id, "accept", actors::STATION, &json!({})).await;
        assert_eq!(status, 200, "{id}: {body}");
    }
    projected_stage(&app, &c, "received").await;
    projected_stage(&app, &a, "accepted").await;
    projected_stage(&app, &b, "accepted").await;
    let history = app.history(&b).await;
    assert_eq!(history.len(), 2, "the forged event is not in b's history");

    // Each bad record is listed once, with its reason, by the CLI's scan and by /readyz.
    let log = app.command_service.log().clone();
    let listed = quarantine::list(&log).await.expect("list");
    let positions: Vec<u64> = listed.iter().map(|q| q.position).collect();
    assert_eq!(positions, [p1, p2, p3], "{listed:?}");
    assert!(listed[1].reason.contains("not JSON"), "{listed:?}");
    assert!(listed[2].reason.contains("unsigned"), "{listed:?}");
    let ready: Value = app
        .get("/readyz", actors::AUDITOR)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ready["status"], json!("degraded"), "{ready}");
    let seen: Vec<u64> = ready["quarantined"]
        .as_array()
        .expect("list")
        .iter()
        .map(|q| q["position"].as_u64().expect("position"))
        .collect();
    assert_eq!(seen, [p1, p2, p3], "{ready}");
    let metrics = app
        .get("/metrics", actors::AUDITOR)
        .await
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("bianmin_log_quarantined_records 3"),
        "{metrics}"
    );
    // verify still names every one of them.
    let report = verify::verify_all(&log, None).await.expect("verify");
    let broken: Vec<u64> = report.broken.iter().map(|b| b.position).collect();
    assert_eq!(broken, [p1, p2, p3], "{:?}", report.broken);

    // A restart succeeds and goes on serving.
    let app = app.restart().await;
    let d = intake(&app).await;
    projected_stage(&app, &d, "received").await;
    app.teardown().await;
}

#[tokio::test]
async fn a_corrupt_sqlite_row_is_quarantined_and_stops_nothing() {
    let app = spawn_app_with_projections(Store::Sqlite, None).await;
    let a = intake(&app).await;
    let (position, _) = last_raw(&app, &a).await;
    let path = app.config.events_db();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open sqlite");
    sqlx::query("UPDATE commits SET payload = ? WHERE position = ?")
        .bind(b"garbage-not-json".to_vec())
        .bind(position as i64)
        .execute(&pool)
        .await
        .expect("update");
    pool.close().await;

    let app = app.restart().await;
    let b = intake(&app).await;
    let (status, body) = app.command(&b, "accept", actors::STATION, &json!({})).await;
    assert_eq!(status, 200, "{body}");
    projected_stage(&app, &b, "accepted").await;
    let listed = quarantine::list(app.command_service.log())
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|q| q.position).collect::<Vec<_>>(),
        [position]
    );
    // The request whose only record is gone reads as not found, not as an error.
    let answer = app
        .get(&format!("/api/v1/requests/{a}"), actors::AUDITOR)
        .await;
    assert_eq!(answer.status(), 404);
    app.teardown().await;
}
