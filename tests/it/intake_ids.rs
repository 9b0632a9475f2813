//! Intake request ids against the real `bianmin serve`: keyed with the instance's secret (not
//! the public UUIDv5 of the ticket), stable across a restart and across a second process that
//! shares the secret, and a ticket received under a legacy id before the change is found again
//! when it is sent after it.

use std::sync::Arc;

use engine_core::ManualClock;
use engine_service::commands::{CommandRequest, CommandService, RECEIVE_NAMESPACE};
use engine_service::contacts::ContactStore;
use engine_service::metrics::Metrics;
use schemas::{Actor, Channel, Command, Role};
use serde_json::{Value, json};
use tests::faults::{Api, INTAKE, ServeOptions, ServeProcess, intake_document};
use uuid::Uuid;

async fn submit(api: &Api, ticket: &str, phone: &str) -> (u16, Value) {
    let reply = api
        .post(
            "/api/v1/requests",
            Some(INTAKE),
            &intake_document(ticket, phone),
            None,
        )
        .await
        .expect("intake answered");
    (reply.status, reply.body)
}

fn id_of(body: &Value) -> Uuid {
    serde_json::from_value(body["request_id"].clone()).expect("a request id")
}

fn jetstream(stream: &str, extra_toml: String) -> ServeOptions {
    ServeOptions {
        nats_url: Some(tests::nats::shared_nats_url()),
        env: vec![
            ("BIANMIN_NATS__STREAM".into(), stream.into()),
            ("BIANMIN_NATS__SUBJECT_PREFIX".into(), stream.to_lowercase()),
        ],
        extra_toml,
        ..ServeOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_keyed_and_stable_across_a_restart_and_a_second_process() {
    let stream = format!("IDS_{}", Uuid::now_v7().simple()).to_uppercase();
    let mut first = ServeProcess::start(jetstream(&stream, String::new())).await;
    let ticket = format!("KEYED-{}", Uuid::now_v7());
    let (status, body) = submit(&Api::new(first.url()), &ticket, "13600003333").await;
    assert_eq!(status, 201, "{body}");
    let id = id_of(&body);
    assert_ne!(
        id,
        schemas::envelope::legacy_intake_request_id(Channel::Hotline, &ticket),
        "the id is not the public UUIDv5 of the ticket"
    );
    assert_eq!(id.get_version(), Some(uuid::Version::Custom));
    assert_eq!(
        id,
        tests::instance_intake_ids(&first.data_dir()).request_id(Channel::Hotline, &ticket)
    );

    first.restart().await;
    let (status, body) = submit(&Api::new(first.url()), &ticket, "13600003333").await;
    assert_eq!((status, id_of(&body)), (200, id), "after a restart: {body}");

    // A second process of the instance, sharing the secret (and the signing key).
    let data = first.data_dir();
    let signing = format!(
        "[signing]\nkey_file = \"{}\"\n",
        data.join("signing.key").display()
    );
    let shared = format!(
        "{signing}[intake_ids]\nkey_file = \"{}\"\n",
        data.join("intake-id.key").display()
    );
    let second = ServeProcess::start(jetstream(&stream, shared)).await;
    let (status, body) = submit(&Api::new(second.url()), &ticket, "13600003333").await;
    assert_eq!(
        (status, id_of(&body)),
        (200, id),
        "a second process: {body}"
    );

    // Control: a process with a secret of its own derives another id for the same ticket.
    let stranger = ServeProcess::start(jetstream(&stream, signing)).await;
    let (status, body) = submit(&Api::new(stranger.url()), &ticket, "13600003333").await;
    assert_eq!(status, 201, "{body}");
    assert_ne!(id_of(&body), id);

    drop((first, second, stranger));
    tests::nats::delete_stream(&tests::nats::shared_nats().await, &stream).await;
}

/// Records `ticket` as the engine did before keyed ids: a `receive` under the public UUIDv5.
async fn record_under_the_legacy_id(engine: &ServeProcess, ticket: &str) -> Uuid {
    let legacy = schemas::envelope::legacy_intake_request_id(Channel::Hotline, ticket);
    let clock = Arc::new(ManualClock::new(tests::app::start_time()));
    let contacts = ContactStore::in_memory(clock.clone())
        .await
        .expect("contact store");
    let policy = engine_service::policy_files::load_policy(
        &engine_service::config::Config::default().policy,
    )
    .expect("the built-in policy");
    let service = CommandService::new(
        engine.event_log().await,
        Arc::new(policy),
        clock.clone(),
        contacts,
        Metrics::new(),
        tests::test_intake_ids(),
    );
    let mut body = intake_document(ticket, "13600004444");
    body["anonymous"] = json!(true);
    body["raised_at"] = json!(tests::app::start_time());
    if let Some(fields) = body.as_object_mut() {
        fields.remove("contact");
    }
    let command = Command::from_action_body("receive", body).expect("a receive command");
    let outcome = service
        .execute(CommandRequest {
            request_id: legacy,
            command_id: Uuid::new_v5(&RECEIVE_NAMESPACE, legacy.as_bytes()),
            correlation_id: None,
            actor: Actor {
                id: "hotline-gateway".into(),
                role: Role::IntakeSystem,
                unit: None,
            },
            command,
        })
        .await
        .expect("the legacy receive is recorded");
    assert!(!outcome.duplicate);
    legacy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_received_under_a_legacy_id_is_found_when_sent_again() {
    let mut engine = ServeProcess::start(ServeOptions::default()).await;
    engine.kill9();
    let ticket = format!("LEGACY-{}", Uuid::now_v7());
    let legacy = record_under_the_legacy_id(&engine, &ticket).await;
    engine.restart().await;
    let api = Api::new(engine.url());

    let (status, body) = submit(&api, &ticket, "13600005555").await;
    assert_eq!(status, 200, "the retry finds the old request: {body}");
    assert_eq!(body["created"], false);
    assert_eq!(id_of(&body), legacy);
    let keyed =
        tests::instance_intake_ids(&engine.data_dir()).request_id(Channel::Hotline, &ticket);
    let log = engine.event_log().await;
    assert!(
        log.load(keyed).await.expect("the log reads").is_empty(),
        "no second request under the keyed id"
    );

    // New tickets still get keyed ids.
    let fresh = format!("FRESH-{}", Uuid::now_v7());
    let (status, body) = submit(&api, &fresh, "13600005555").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        id_of(&body),
        tests::instance_intake_ids(&engine.data_dir()).request_id(Channel::Hotline, &fresh)
    );
}

/// `bianmin import` on a log that predates keyed ids finds a ticket under its legacy id: the
/// row is skipped (the request exists and was not imported), not imported a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_finds_a_ticket_received_under_a_legacy_id() {
    let mut engine = ServeProcess::start(ServeOptions::default()).await;
    engine.kill9();
    let legacy = record_under_the_legacy_id(&engine, "12345-2025-000101").await;
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/import/example.csv");
    let output = std::process::Command::new(tests::faults::bianmin_binary())
        .arg("--data-dir")
        .arg(engine.data_dir())
        .env("RUST_LOG", "warn")
        .arg("import")
        .arg(&example)
        .output()
        .expect("bianmin import runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("1 skipped (request exists)"), "{stdout}");
    assert!(stdout.contains("4 imported"), "{stdout}");
    let log = engine.event_log().await;
    assert_eq!(log.load(legacy).await.expect("the log reads").len(), 1);
    let keyed = tests::instance_intake_ids(&engine.data_dir())
        .request_id(Channel::Hotline, "12345-2025-000101");
    assert!(log.load(keyed).await.expect("the log reads").is_empty());
}
