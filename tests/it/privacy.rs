//! Residents' privacy: a distinctive phone number never appears in responses to
//! non-privileged roles, /metrics, the engine's stores or its log output; erasure by
//! crypto-shredding leaves every hash chain and history intact with the contact shown as
//! erased; retention erases expired contacts and records it; contact reads need an explicit
//! permission and are recorded.

use std::sync::Arc;

use engine_core::{Clock, ManualClock};
use engine_service::audit::verify;
use engine_service::contacts::{ContactStore, StoredContact};
use engine_service::privacy::{
    self, ContactStatus, PrivacyConfig, PrivacyError, PrivacyLedger, RetentionPolicy, retention,
};
use schemas::{Actor, Role};
use tests::faults::{
    Api, HANDLER, INTAKE, SUPERVISOR, ServeOptions, ServeProcess, WORKER, intake_document,
    lifecycle_commands,
};
use uuid::Uuid;

const PHONE: &str = "13987654321";
const NAME: &str = "测试居民";

/// Runs one lifecycle with `PHONE`, collecting every response body non-privileged roles got.
async fn lifecycle(api: &Api, ticket: &str) -> (Uuid, Vec<String>) {
    let mut seen = Vec::new();
    let reply = api
        .post(
            "/api/v1/requests",
            Some(INTAKE),
            &intake_document(ticket, PHONE),
            None,
        )
        .await
        .expect("intake answered");
    assert_eq!(reply.status, 201, "{}", reply.body);
    seen.push(reply.body.to_string());
    let id: Uuid = serde_json::from_value(reply.body["request_id"].clone()).expect("an id");
    for (actor, action, body) in lifecycle_commands() {
        let reply = api
            .post(
                &format!("/api/v1/requests/{id}/{action}"),
                Some(actor),
                &body,
                Some(Uuid::now_v7()),
            )
            .await
            .expect("command answered");
        assert_eq!(reply.status, 200, "{action}: {}", reply.body);
        seen.push(reply.body.to_string());
    }
    for actor in [
        WORKER,
        HANDLER,
        SUPERVISOR,
        "audit-1;auditor",
        "district-1;higher_level",
        "bi-1;dashboard",
    ] {
        for path in [
            format!("/api/v1/requests/{id}"),
            format!("/api/v1/requests/{id}/history"),
        ] {
            let (_, text) = api.text(&path, Some(actor)).await.expect("read answered");
            seen.push(text);
        }
    }
    let (_, metrics) = api.text("/metrics", None).await.expect("metrics answered");
    seen.push(metrics);
    (id, seen)
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_data_stays_out_of_responses_stores_and_logs_and_erasure_keeps_chains_valid() {
    let engine = ServeProcess::start(ServeOptions::default()).await;
    let api = Api::new(engine.url());
    let (id, seen) = lifecycle(&api, &format!("PII-{}", Uuid::now_v7().simple())).await;

    for (i, body) in seen.iter().enumerate() {
        assert!(
            !body.contains(PHONE) && !body.contains(NAME),
            "response {i} leaks contact data: {body}"
        );
    }
    let output = engine.output();
    assert!(output.len() > 1000, "the engine logged (at debug level)");
    assert!(
        !output.contains(PHONE) && !output.contains(NAME),
        "the log output leaks contact data"
    );
    // Every store on disk: the event log, projections, the contact store (ciphertext only).
    let files = files_under(&engine.data_dir());
    assert!(
        files.iter().any(|f| f.ends_with("contacts.db")),
        "{files:?}"
    );
    for file in &files {
        let bytes = std::fs::read(file).expect("read a store file");
        assert!(
            !contains(&bytes, PHONE),
            "{} holds the phone number in plaintext",
            file.display()
        );
    }

    // Erase through the stores the engine uses, while it runs.
    let clock: Arc<dyn Clock> = Arc::new(engine_log::clock::SystemClock);
    let log = engine.event_log().await;
    let contacts = ContactStore::open_sqlite(&engine.data_dir().join("contacts.db"), clock.clone())
        .await
        .expect("contacts");
    let ledger = PrivacyLedger::open_sqlite(&PrivacyLedger::path_in(&engine.data_dir()))
        .await
        .expect("ledger");
    let before = api
        .get(
            &format!("/api/v1/requests/{id}/history"),
            Some("audit-1;auditor"),
        )
        .await
        .expect("history");
    assert_eq!(
        privacy::contact_status(&log, &contacts, id)
            .await
            .expect("status"),
        ContactStatus::Present
    );

    let outcome = privacy::erase(
        &log,
        &contacts,
        &ledger,
        id,
        "dpo-1",
        "resident_request",
        clock.now(),
    )
    .await
    .expect("erase");
    assert!(outcome.key_destroyed);
    assert_eq!(outcome.request_id, Some(id));
    assert_eq!(
        privacy::contact_status(&log, &contacts, id)
            .await
            .expect("status"),
        ContactStatus::Erased
    );
    assert_eq!(
        contacts.get(&outcome.contact_ref).await.expect("get"),
        Some(StoredContact::Erased)
    );
    // Erasing again is idempotent and recorded as such.
    let again = privacy::erase(
        &log,
        &contacts,
        &ledger,
        outcome.contact_ref.0,
        "dpo-1",
        "resident_request",
        clock.now(),
    )
    .await
    .expect("erase by contact reference");
    assert!(!again.key_destroyed);
    let erasures = ledger.erasures().await.expect("ledger");
    assert_eq!(erasures.len(), 2);
    assert_eq!(erasures[0].request_id, Some(id));

    // The log is untouched: same history, chains verify, the whole log verifies.
    let after = api
        .get(
            &format!("/api/v1/requests/{id}/history"),
            Some("audit-1;auditor"),
        )
        .await
        .expect("history");
    assert_eq!(before.body, after.body);
    assert!(verify::verify_request(&log, id).await.expect("verify").ok());
    assert!(
        verify::verify_all(&log, None)
            .await
            .expect("verify all")
            .ok()
    );
    // The engine still serves the request (e.g. state reads) after erasure.
    assert_eq!(
        api.get(&format!("/api/v1/requests/{id}"), Some(SUPERVISOR))
            .await
            .expect("read")
            .status,
        200
    );
    // Unknown targets are refused, nothing recorded.
    let unknown = privacy::erase(
        &log,
        &contacts,
        &ledger,
        Uuid::now_v7(),
        "dpo-1",
        "x",
        clock.now(),
    )
    .await;
    assert!(
        matches!(unknown, Err(PrivacyError::Unknown(_))),
        "{unknown:?}"
    );
    assert_eq!(ledger.erasures().await.expect("ledger").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_reads_need_an_explicit_permission_and_are_recorded() {
    let engine = ServeProcess::start(ServeOptions::default()).await;
    let api = Api::new(engine.url());
    let (id, _) = lifecycle(&api, &format!("PII-R-{}", Uuid::now_v7().simple())).await;
    let clock: Arc<dyn Clock> = Arc::new(engine_log::clock::SystemClock);
    let log = engine.event_log().await;
    let contacts = ContactStore::open_sqlite(&engine.data_dir().join("contacts.db"), clock.clone())
        .await
        .expect("contacts");
    let ledger = PrivacyLedger::open_sqlite(&PrivacyLedger::path_in(&engine.data_dir()))
        .await
        .expect("ledger");
    let config = PrivacyConfig {
        contact_readers: vec!["audit-dpo".into()],
        ..PrivacyConfig::default()
    };
    let actor = |id: &str, role| Actor {
        id: id.into(),
        role,
        unit: None,
    };

    for (who, role) in [
        ("audit-1", Role::Auditor),
        ("audit-dpo", Role::Supervisor),
        ("centre-1", Role::Supervisor),
    ] {
        let denied = privacy::read_contact(
            &log,
            &contacts,
            &ledger,
            &config,
            &actor(who, role),
            id,
            "complaint review",
            clock.now(),
        )
        .await;
        assert!(
            matches!(denied, Err(PrivacyError::Forbidden(_))),
            "{who}: {denied:?}"
        );
    }
    let no_purpose = privacy::read_contact(
        &log,
        &contacts,
        &ledger,
        &config,
        &actor("audit-dpo", Role::Auditor),
        id,
        " ",
        clock.now(),
    )
    .await;
    assert!(matches!(no_purpose, Err(PrivacyError::Forbidden(_))));
    assert!(ledger.accesses().await.expect("ledger").is_empty());

    let read = privacy::read_contact(
        &log,
        &contacts,
        &ledger,
        &config,
        &actor("audit-dpo", Role::Auditor),
        id,
        "complaint review",
        clock.now(),
    )
    .await
    .expect("permitted read");
    let Some(StoredContact::Present(contact)) = read else {
        panic!("the contact is present: {read:?}")
    };
    assert_eq!(contact.phone.as_deref(), Some(PHONE));
    let accesses = ledger.accesses().await.expect("ledger");
    assert_eq!(accesses.len(), 1);
    assert_eq!(
        (accesses[0].actor.as_str(), accesses[0].request_id),
        ("audit-dpo", id)
    );
    assert_eq!(accesses[0].purpose, "complaint review");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_erases_contacts_only_after_the_period_and_records_it() {
    let engine = ServeProcess::start(ServeOptions::default()).await;
    let api = Api::new(engine.url());
    let (archived, _) = lifecycle(&api, &format!("RET-A-{}", Uuid::now_v7().simple())).await;
    // A second request that is never archived keeps its contact whatever the time.
    let reply = api
        .post(
            "/api/v1/requests",
            Some(INTAKE),
            &intake_document(&format!("RET-O-{}", Uuid::now_v7().simple()), PHONE),
            None,
        )
        .await
        .expect("intake");
    let open: Uuid = serde_json::from_value(reply.body["request_id"].clone()).expect("an id");

    let log = engine.event_log().await;
    let archived_at = log
        .load(archived)
        .await
        .expect("load")
        .iter()
        .flat_map(|c| c.commit.events.clone())
        .find(|e| e.event.kind() == schemas::EventKind::Archived)
        .expect("archived")
        .occurred_at;
    let clock = Arc::new(ManualClock::new(archived_at));
    let contacts = ContactStore::open_sqlite(&engine.data_dir().join("contacts.db"), clock.clone())
        .await
        .expect("contacts");
    let ledger = PrivacyLedger::open_sqlite(&PrivacyLedger::path_in(&engine.data_dir()))
        .await
        .expect("ledger");
    let policy = RetentionPolicy {
        contact_days_after_archive: 30,
        ..RetentionPolicy::default()
    };
    let mut index = retention::RetentionIndex::new();

    let day = chrono::Duration::days(1);
    let early = retention::sweep(
        &log,
        &contacts,
        &ledger,
        None,
        &policy,
        &mut index,
        archived_at + day * 29,
    )
    .await
    .expect("sweep");
    assert!(early.erased.is_empty());
    assert_eq!(early.archived_with_contact, 1);
    assert_eq!(
        privacy::contact_status(&log, &contacts, archived)
            .await
            .expect("status"),
        ContactStatus::Present
    );

    let due = retention::sweep(
        &log,
        &contacts,
        &ledger,
        None,
        &policy,
        &mut index,
        archived_at + day * 30,
    )
    .await
    .expect("sweep");
    assert_eq!(due.erased.len(), 1);
    assert_eq!(
        privacy::contact_status(&log, &contacts, archived)
            .await
            .expect("status"),
        ContactStatus::Erased
    );
    assert_eq!(
        privacy::contact_status(&log, &contacts, open)
            .await
            .expect("status"),
        ContactStatus::Present
    );
    let erasures = ledger.erasures().await.expect("ledger");
    assert_eq!(erasures.len(), 1);
    assert_eq!(
        (erasures[0].reason.as_str(), erasures[0].request_id),
        ("retention", Some(archived))
    );

    // A later sweep finds nothing new; the archived history still verifies.
    let later = retention::sweep(
        &log,
        &contacts,
        &ledger,
        None,
        &policy,
        &mut index,
        archived_at + day * 400,
    )
    .await
    .expect("sweep");
    assert!(later.erased.is_empty());
    assert!(
        verify::verify_request(&log, archived)
            .await
            .expect("verify")
            .ok()
    );
    assert_eq!(ledger.erasures().await.expect("ledger").len(), 1);
}
