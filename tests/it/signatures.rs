//! Signed commits: every commit the engine writes carries a signature by its key, and a
//! chained commit published by any other client to the event subjects — unsigned, signed by
//! an unknown key, or carrying a signature copied from another commit — fails `verify`.

use async_nats::HeaderMap;
use engine_service::audit::verify;
use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, intake_document, spawn_app};
use uuid::Uuid;

/// A request accepted by the station: two commits, both written by the engine.
async fn accepted(app: &TestApp) -> Uuid {
    let (status, body) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{body}");
    let id = body["request_id"].as_str().expect("id").to_string();
    let (status, body) = app
        .command(&id, "accept", actors::STATION, &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    id.parse().expect("a uuid")
}

/// Publishes `commit` to the request's subject with the right expected sequence, as any
/// client allowed to publish there can; returns its position.
async fn publish(app: &TestApp, request: Uuid, commit: &Value) -> u64 {
    let raw = app.command_service.log().load_raw(request).await.unwrap();
    let last = raw.last().unwrap().0;
    let mut headers = HeaderMap::new();
    headers.insert(
        "Nats-Expected-Last-Subject-Sequence",
        last.to_string().as_str(),
    );
    let client = async_nats::connect(tests::app::NATS_URL).await.unwrap();
    let js = async_nats::jetstream::new(client);
    js.publish_with_headers(
        app.names().event_subject(request),
        headers,
        serde_json::to_vec(commit).unwrap().into(),
    )
    .await
    .expect("publish")
    .await
    .expect("JetStream stores the forgery")
    .sequence
}

async fn last_record(app: &TestApp, request: Uuid) -> Value {
    let raw = app.command_service.log().load_raw(request).await.unwrap();
    serde_json::from_slice(&raw.last().unwrap().1).unwrap()
}

#[tokio::test]
async fn every_commit_is_signed_and_forged_commits_fail_verify_on_jetstream() {
    let app = spawn_app(Store::Nats).await;
    let log = app.command_service.log().clone();
    let (a, b, c) = (
        accepted(&app).await,
        accepted(&app).await,
        accepted(&app).await,
    );

    // Clean: every record signed by the engine's key.
    let clean = verify::verify_all(&log, None).await.unwrap();
    assert!(clean.ok(), "{:?}", clean.broken);
    assert_eq!(clean.signed, clean.commits, "{clean:?}");
    assert_eq!(clean.unsigned_before_signing, 0);
    assert_eq!(clean.signing_began_at, Some(1));
    let stored = last_record(&app, a).await;
    assert!(stored["signature"]["key_id"].is_string(), "{stored}");

    // Forgery 1: chained and hashed, unsigned.
    let unsigned = tests::forge::next_commit(&last_record(&app, a).await);
    let at_a = publish(&app, a, &unsigned).await;
    // Forgery 2: signed by a key the engine does not trust.
    let stranger = engine_log::signing::CommitSigner::from_seed([42; 32]);
    let mut foreign = tests::forge::next_commit(&last_record(&app, b).await);
    let typed: schemas::Commit = serde_json::from_value(foreign.clone()).unwrap();
    foreign["signature"] = serde_json::to_value(stranger.sign(&typed)).unwrap();
    let at_b = publish(&app, b, &foreign).await;
    // Forgery 3: the engine's own signature copied from the previous commit.
    let previous = last_record(&app, c).await;
    let mut copied = tests::forge::next_commit(&previous);
    copied["signature"] = previous["signature"].clone();
    let at_c = publish(&app, c, &copied).await;

    let report = verify::verify_all(&log, None).await.unwrap();
    let broken: Vec<(Uuid, u64, String)> = report
        .broken
        .iter()
        .map(|b| (b.request_id, b.position, b.what.clone()))
        .collect();
    assert_eq!(broken.len(), 3, "{broken:?}");
    assert_eq!((broken[0].0, broken[0].1), (a, at_a));
    assert!(
        broken[0].2.contains("unsigned record after signing began"),
        "{broken:?}"
    );
    assert_eq!((broken[1].0, broken[1].1), (b, at_b));
    assert!(broken[1].2.contains("unknown key"), "{broken:?}");
    assert_eq!((broken[2].0, broken[2].1), (c, at_c));
    assert!(broken[2].2.contains("bad signature"), "{broken:?}");
    let single = verify::verify_request(&log, a).await.unwrap();
    assert_eq!(single.broken.map(|b| b.position), Some(at_a));
    app.teardown().await;
}

#[tokio::test]
async fn a_restarted_engine_keeps_its_key_and_old_commits_verify() {
    let app = spawn_app(Store::Sqlite).await;
    let first = accepted(&app).await;
    let app = app.restart().await;
    let second = accepted(&app).await;
    let log = app.command_service.log().clone();
    let report = verify::verify_all(&log, None).await.unwrap();
    assert!(report.ok(), "{:?}", report.broken);
    assert_eq!(report.signed, report.commits);
    assert!(verify::verify_request(&log, first).await.unwrap().ok());
    assert!(verify::verify_request(&log, second).await.unwrap().ok());
    app.teardown().await;
}
