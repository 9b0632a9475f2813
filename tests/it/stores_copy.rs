//! `bianmin stores copy`: an embedded deployment's contacts and ledger, moved into the
//! PostgreSQL stores: present contacts readable there, erased ones erased, ledger records
//! copied, and a second run copying nothing.

use engine_core::Clock;
use engine_service::contacts::{ContactStore, StoredContact};
use engine_service::privacy::{self, AccessRecord, PrivacyLedger};
use engine_service::stores::StoresLocation;
use engine_service::stores_copy::{StoreSet, copy};
use tests::app::{Store, external_id, intake_document, spawn_app_with};
use tests::pg::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_stores_are_copied_into_postgres_once() {
    let app = spawn_app_with(Store::Nats, |config| {
        config.stores.url = Some("sqlite".into());
    })
    .await;
    let mut ids: Vec<schemas::RequestId> = Vec::new();
    for _ in 0..3 {
        let (status, body) = app.intake(&intake_document(&external_id())).await;
        assert_eq!(status, 201, "{body}");
        ids.push(
            body["request_id"]
                .as_str()
                .expect("id")
                .parse()
                .expect("uuid"),
        );
    }
    let source_location = StoresLocation::Embedded {
        data_dir: app.config.data_dir.clone(),
    };
    let from = StoreSet {
        contacts: app.command_service.contacts().clone(),
        ledger: PrivacyLedger::open(&source_location).await.expect("ledger"),
    };
    assert_eq!(from.contacts.backend_name(), "sqlite");
    let log = app.command_service.log();
    let erased = privacy::erase(
        log,
        &from.contacts,
        &from.ledger,
        ids[0],
        "dpo",
        "resident_request",
        app.clock.now(),
    )
    .await
    .expect("erased in the source");
    from.ledger
        .record_access(&AccessRecord {
            contact_ref: erased.contact_ref.clone(),
            request_id: ids[0],
            actor: "audit-dpo".into(),
            role: "auditor".into(),
            purpose: "complaint review".into(),
            accessed_at: app.clock.now(),
        })
        .await
        .expect("access recorded");

    let db = TestDb::create().await.expect("db");
    let kek = tempfile::tempdir().expect("kek");
    let target = StoresLocation::Postgres {
        url: db.url.clone(),
        kek_dir: kek.path().join("kek"),
    };
    let to = StoreSet {
        contacts: ContactStore::open(&target, app.clock.clone())
            .await
            .expect("contacts"),
        ledger: PrivacyLedger::open(&target).await.expect("ledger"),
    };
    let mut seen = Vec::new();
    let first = copy(log, &from, &to, |done, total| seen.push((done, total)))
        .await
        .expect("copied");
    assert_eq!(
        (
            first.contacts_seen,
            first.contacts_copied,
            first.contacts_erased
        ),
        (3, 2, 1),
        "{first:?}"
    );
    assert_eq!(
        (first.erasures_copied, first.accesses_copied),
        (1, 1),
        "{first:?}"
    );
    assert_eq!(seen.last(), Some(&(3, 3)), "progress reaches the end");
    assert_eq!(
        to.contacts.get(&erased.contact_ref).await.expect("get"),
        Some(StoredContact::Erased)
    );
    for id in &ids[1..] {
        let status = privacy::contact_status(log, &to.contacts, *id)
            .await
            .expect("status");
        assert_eq!(serde_json::to_value(status).expect("json"), "present");
    }
    let again = copy(log, &from, &to, |_, _| {})
        .await
        .expect("copied again");
    assert_eq!(
        (
            again.contacts_copied,
            again.contacts_kept,
            again.erasures_copied,
            again.accesses_copied
        ),
        (0, 2, 0, 0),
        "{again:?}"
    );
    assert_eq!(to.ledger.erasures().await.expect("erasures").len(), 1);
    app.teardown().await;
    db.drop_db().await;
}
