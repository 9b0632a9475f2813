//! Two engines on the same NATS stream and PostgreSQL database, each with a data directory
//! of its own: the contact store and the privacy ledger are shared, so a contact received
//! through one is read and erased through the other, and both see every ledger record; and
//! neither answers a read or refuses a command from a cached state the other has moved on.

use engine_core::Clock;
use engine_service::config::Config;
use engine_service::privacy::{self, PrivacyLedger};
use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, intake_document, spawn_app_with};
use tests::pg::TestDb;
use uuid::Uuid;

const DPO: &str = "audit-dpo;auditor";

/// The production shape: JetStream log, PostgreSQL projections and stores, the instance's
/// secrets (KEK directory, signing key, intake-id secret) mounted at shared paths, and a data
/// directory of its own per replica.
fn replica(stream: &str, db: &str, secrets: &std::path::Path) -> impl FnOnce(&mut Config) {
    let (stream, db, secrets) = (stream.to_string(), db.to_string(), secrets.to_path_buf());
    move |config| {
        config.signing.key_file = Some(secrets.join("signing.key"));
        config.intake_ids.key_file = Some(secrets.join("intake-id.key"));
        let kek_dir = secrets.join("kek");
        config.nats.stream = stream.clone();
        config.nats.subject_prefix = stream.to_lowercase();
        config.database_url = Some(db);
        config.stores.kek_dir = Some(kek_dir);
        config.privacy.contact_readers = vec!["audit-dpo".into()];
    }
}

async fn read_contact(app: &TestApp, id: &str) -> Value {
    let response = app
        .get(
            &format!("/api/v1/requests/{id}/contact?purpose=complaint%20review"),
            DPO,
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_received_by_one_replica_is_read_and_erased_through_another() {
    let db = TestDb::create().await.expect("a test database");
    let kek = tempfile::tempdir().expect("a KEK directory");
    let stream = format!("BIANMIN_R{}", Uuid::now_v7().simple()).to_uppercase();
    let first = spawn_app_with(Store::Nats, replica(&stream, &db.url, kek.path())).await;
    let second = spawn_app_with(Store::Nats, replica(&stream, &db.url, kek.path())).await;
    assert_ne!(first.config.data_dir, second.config.data_dir);
    assert_eq!(first.command_service.contacts().backend_name(), "postgres");

    let (status, body) = first.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{body}");
    let id = body["request_id"].as_str().expect("an id").to_string();
    let read = read_contact(&second, &id).await;
    assert_eq!(read["status"], "present", "{read}");
    assert_eq!(read["contact"]["phone"], "13800001111");

    let outcome = privacy::erase(
        second.command_service.log(),
        second.command_service.contacts(),
        &PrivacyLedger::open_postgres(&db.url).await.expect("ledger"),
        id.parse().expect("a uuid"),
        "dpo",
        "resident_request",
        second.clock.now(),
    )
    .await
    .expect("erased through the second replica");
    assert!(outcome.key_destroyed);
    let read = read_contact(&first, &id).await;
    assert_eq!(read["status"], "erased", "{read}");

    // One ledger: both reads (one through each replica) and the erasure, seen from either.
    let ledger = PrivacyLedger::open_postgres(&db.url).await.expect("ledger");
    let accesses = ledger.accesses().await.expect("accesses");
    assert_eq!(accesses.len(), 2, "{accesses:?}");
    assert!(accesses.iter().all(|a| a.request_id.to_string() == id));
    let erasures = ledger.erasures().await.expect("erasures");
    assert_eq!(erasures.len(), 1);
    assert_eq!(erasures[0].contact_ref, outcome.contact_ref);
    for app in [&first, &second] {
        let data_dir = &app.config.data_dir;
        assert!(!data_dir.join("contacts.db").exists(), "no contact file");
        assert!(!data_dir.join("privacy.db").exists(), "no ledger file");
    }
    second.teardown_keep_store().await;
    first.teardown().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_cache_is_behind_reads_and_decides_on_the_log() {
    let db = TestDb::create().await.expect("a test database");
    let kek = tempfile::tempdir().expect("a KEK directory");
    let stream = format!("BIANMIN_R{}", Uuid::now_v7().simple()).to_uppercase();
    let a = spawn_app_with(Store::Nats, replica(&stream, &db.url, kek.path())).await;
    let b = spawn_app_with(Store::Nats, replica(&stream, &db.url, kek.path())).await;

    // A receives the request and caches it as `received`; B accepts it.
    let (status, body) = a.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{body}");
    let id = body["request_id"].as_str().expect("an id").to_string();
    let (status, answer) = b.command(&id, "accept", actors::STATION, &json!({})).await;
    assert_eq!(status, 200, "{answer}");

    // A reads the stage B recorded, and classifies (allowed only once accepted).
    let state: Value = a
        .get(&format!("/api/v1/requests/{id}"), actors::STATION)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(state["stage"], "accepted", "{state}");
    // Refused for `wrong_stage` on A's cached `received` before; accepted on the log's state.
    let (status, answer) = a
        .command(&id, "classify", actors::STATION, &classify())
        .await;
    assert_eq!(status, 200, "{answer}");
    // A refusal on the current state still stands.
    let (status, answer) = b.command(&id, "accept", actors::STATION, &json!({})).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["code"], "wrong_stage", "{answer}");

    b.teardown_keep_store().await;
    a.teardown().await;
    db.drop_db().await;
}

fn classify() -> Value {
    json!({"catalogue_item": "um-street-vending", "request_type": "complaint"})
}
