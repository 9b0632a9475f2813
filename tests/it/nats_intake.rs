//! The NATS edge against the shared nats-server: request-reply intake and commands, bad input
//! of every class, and the durable inbox (documents published while no engine runs, rejects).
//! The engine runs in-process on the embedded SQLite log and on JetStream; every test uses its
//! own subject prefix and stream names so tests share the server without seeing each other.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use chrono::{TimeZone, Utc};
use engine_core::{ManualClock, Policy};
use engine_log::{EventLog, JetStreamConfig};
use engine_service::auth::Authenticator;
use engine_service::commands::CommandService;
use engine_service::contacts::ContactStore;
use engine_service::metrics::Metrics;
use engine_service::nats::CancellationToken;
use engine_service::nats::{self, NatsApiConfig};
use schemas::{EventKind, RequestId, Timestamp};
use serde_json::{Value, json};
use uuid::Uuid;

/// Which event log the engine under test runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Store {
    Sqlite,
    JetStream,
}

/// An engine built in-process: the command service over a fresh log, a manual clock, and
/// the names that isolate this test on the shared NATS server.
pub(crate) struct Engine {
    pub service: CommandService,
    pub clock: Arc<ManualClock>,
    pub client: async_nats::Client,
    pub cfg: NatsApiConfig,
    /// JetStream streams this test created (deleted at the end).
    streams: Vec<String>,
    _dir: tempfile::TempDir,
}

/// A grid the test policy's directory knows.
pub(crate) const GRID: (&str, &str, &str) = ("jd-01", "sq-0101", "wg-010101");
/// A catalogue item of the test policy.
pub(crate) const ITEM: &str = "um-streetlight";
/// A department of the test policy's directory.
pub(crate) const DEPARTMENT: &str = "urban-management";

/// Monday 2026-03-02 10:00 in Beijing: inside office hours on a working day.
pub(crate) fn start_time() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 3, 2, 2, 0, 0)
        .single()
        .expect("valid instant")
}

pub(crate) fn unique() -> String {
    Uuid::now_v7().simple().to_string()
}

pub(crate) async fn connect() -> async_nats::Client {
    let url =
        std::env::var("BIANMIN_TEST_NATS_URL").unwrap_or_else(|_| "127.0.0.1:4222".to_string());
    async_nats::connect(url)
        .await
        .expect("the shared nats-server runs on 127.0.0.1:4222")
}

impl Engine {
    pub(crate) async fn build(store: Store) -> Engine {
        let dir = tempfile::tempdir().expect("temp dir");
        let client = connect().await;
        let id = unique();
        let cfg = NatsApiConfig {
            inbox_nak_delay_ms: 200,
            ..NatsApiConfig::with_prefix(&format!("t{id}"))
        };
        let mut streams = vec![cfg.names.inbox_stream(), cfg.names.rejects_stream()];
        let log = match store {
            Store::Sqlite => EventLog::open_sqlite(&dir.path().join("events.db")).await,
            Store::JetStream => {
                let stream = format!("TE_{id}");
                streams.push(stream.clone());
                EventLog::connect_jetstream(
                    client.clone(),
                    JetStreamConfig {
                        names: schemas::Names::new(&format!("t{id}"), &stream)
                            .expect("valid names"),
                        ..JetStreamConfig::default()
                    },
                )
                .await
            }
        }
        .expect("event log opens");
        Engine::assemble(log, client, cfg, streams, dir).await
    }

    /// An engine over an event log opened elsewhere (e.g. on a private server); the NATS edge
    /// uses the shared server.
    pub(crate) async fn on_log(log: EventLog) -> Engine {
        let dir = tempfile::tempdir().expect("temp dir");
        let client = connect().await;
        let id = unique();
        let cfg = NatsApiConfig {
            inbox_nak_delay_ms: 200,
            ..NatsApiConfig::with_prefix(&format!("t{id}"))
        };
        let streams = vec![cfg.names.inbox_stream(), cfg.names.rejects_stream()];
        Engine::assemble(log, client, cfg, streams, dir).await
    }

    async fn assemble(
        log: EventLog,
        client: async_nats::Client,
        cfg: NatsApiConfig,
        streams: Vec<String>,
        dir: tempfile::TempDir,
    ) -> Engine {
        let clock = Arc::new(ManualClock::new(start_time()));
        let contacts = ContactStore::in_memory(clock.clone())
            .await
            .expect("contact store");
        let service = CommandService::new(
            log,
            Arc::new(Policy::for_tests()),
            clock.clone(),
            contacts,
            Metrics::new(),
            tests::test_intake_ids(),
        );
        Engine {
            service,
            clock,
            client,
            cfg,
            streams,
            _dir: dir,
        }
    }

    /// A second engine process over the same log: its own cache and locks, the same clock.
    pub(crate) async fn second_service(&self) -> CommandService {
        let contacts = ContactStore::in_memory(self.clock.clone())
            .await
            .expect("contact store");
        CommandService::new(
            self.service.log().clone(),
            Arc::new(Policy::for_tests()),
            self.clock.clone(),
            contacts,
            Metrics::new(),
            self.service.intake_ids().clone(),
        )
    }

    /// Starts the request-reply server; cancel the token to stop it.
    pub(crate) async fn serve(&self) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let service = self.service.clone();
            let client = self.client.clone();
            let cfg = self.cfg.clone();
            let shutdown = shutdown.clone();
            async move {
                nats::run_intake(
                    service,
                    Authenticator::new(&[], true),
                    client,
                    cfg,
                    shutdown,
                )
                .await
                .expect("request-reply server ends cleanly");
            }
        });
        // Serving once a request is answered (an unknown channel is answered without effect).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let probe = tokio::time::timeout(
                Duration::from_millis(500),
                self.client
                    .request(self.cfg.names.intake_subject("probe"), "{}".into()),
            )
            .await;
            if matches!(probe, Ok(Ok(_))) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the NATS server did not start serving"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (shutdown, task)
    }

    /// Starts the inbox consumer; cancel the token to stop it.
    pub(crate) fn consume_inbox(&self) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let service = self.service.clone();
            let client = self.client.clone();
            let cfg = self.cfg.clone();
            let shutdown = shutdown.clone();
            async move {
                nats::run_inbox(service, client, cfg, shutdown)
                    .await
                    .expect("inbox consumer ends cleanly");
            }
        });
        (shutdown, task)
    }

    /// Sends a request with the dev identity header and returns the reply's headers and JSON.
    pub(crate) async fn request(
        &self,
        subject: String,
        actor: Option<&str>,
        payload: Vec<u8>,
    ) -> (Option<String>, Value) {
        let mut headers = HeaderMap::new();
        if let Some(actor) = actor {
            headers.insert("X-Bianmin-Actor", actor);
        }
        let reply = tokio::time::timeout(
            Duration::from_secs(10),
            self.client
                .request_with_headers(subject, headers, payload.into()),
        )
        .await
        .expect("a reply within 10 s")
        .expect("a reply");
        let error = reply
            .headers
            .as_ref()
            .and_then(|h| h.get("Bianmin-Error"))
            .map(|v| v.as_str().to_string());
        let body = serde_json::from_slice(&reply.payload).expect("replies are JSON");
        (error, body)
    }

    pub(crate) async fn command(
        &self,
        actor: &str,
        request_id: RequestId,
        command: Value,
    ) -> Value {
        let action = command["action"].as_str().expect("an action").to_string();
        let envelope =
            json!({"command_id": Uuid::now_v7(), "request_id": request_id, "command": command});
        let (error, body) = self
            .request(
                self.cfg.names.cmd_subject(&action),
                Some(actor),
                envelope.to_string().into_bytes(),
            )
            .await;
        assert_eq!(error, None, "`{action}` failed: {body}");
        body
    }

    pub(crate) async fn event_kinds(&self, request_id: RequestId) -> Vec<EventKind> {
        match self.service.history(request_id).await {
            Ok(events) => events.iter().map(|e| e.event.kind()).collect(),
            Err(_) => Vec::new(),
        }
    }

    pub(crate) async fn cleanup(self) {
        let js = jetstream::new(self.client.clone());
        for stream in &self.streams {
            let _ = js.delete_stream(stream).await;
        }
    }
}

/// The request id the engine derives for a channel and ticket id (the in-process engines
/// run with the test secret).
pub(crate) fn expected_id(channel: &str, external_id: &str) -> RequestId {
    let channel = schemas::Channel::parse(channel).expect("a channel");
    tests::test_intake_id(channel, external_id)
}

pub(crate) fn intake_document(channel: &str, external_id: &str) -> Value {
    json!({
        "channel": channel,
        "external_id": external_id,
        "contact": {"name": "王芳", "phone": "13800000000"},
        "location": {"street": GRID.0, "community": GRID.1, "grid": GRID.2},
        "text": "小区门口路灯不亮已经一周",
    })
}

const INTAKE_ACTOR: &str = "hotline-gateway;intake_system";
const WORKER: &str = "worker-1;station_worker;sq-0101";

async fn intake_over_request_reply_returns_the_request_id(store: Store) {
    let engine = Engine::build(store).await;
    let (shutdown, task) = engine.serve().await;

    let document = intake_document("hotline", "HL-0001");
    let (error, body) = engine
        .request(
            engine.cfg.names.intake_subject("hotline"),
            Some(INTAKE_ACTOR),
            document.to_string().into_bytes(),
        )
        .await;

    assert_eq!(error, None, "{body}");
    let expected = expected_id("hotline", "HL-0001");
    assert_eq!(body["request_id"], json!(expected));
    assert_eq!(body["created"], json!(true));
    assert_eq!(body["version"], json!(1));
    assert_eq!(
        engine.event_kinds(expected).await,
        vec![EventKind::RequestReceived]
    );

    shutdown.cancel();
    task.await.expect("server task");
    engine.cleanup().await;
}

#[tokio::test]
async fn intake_over_request_reply_returns_the_request_id_on_sqlite() {
    intake_over_request_reply_returns_the_request_id(Store::Sqlite).await;
}

#[tokio::test]
async fn intake_over_request_reply_returns_the_request_id_on_jetstream() {
    intake_over_request_reply_returns_the_request_id(Store::JetStream).await;
}

async fn twenty_concurrent_duplicate_intakes_make_one_request(store: Store) {
    let engine = Arc::new(Engine::build(store).await);
    let (shutdown, task) = engine.serve().await;
    let document = intake_document("online", "APP-42").to_string();

    let replies = futures::future::join_all((0..20).map(|_| {
        let engine = engine.clone();
        let document = document.clone();
        async move {
            engine
                .request(
                    engine.cfg.names.intake_subject("online"),
                    Some(INTAKE_ACTOR),
                    document.into_bytes(),
                )
                .await
        }
    }))
    .await;

    let expected = expected_id("online", "APP-42");
    let mut created = 0;
    for (error, body) in &replies {
        assert_eq!(*error, None, "{body}");
        assert_eq!(body["request_id"], json!(expected));
        if body["created"] == json!(true) {
            created += 1;
        }
    }
    assert_eq!(created, 1, "exactly one submission creates the request");
    assert_eq!(
        engine.event_kinds(expected).await,
        vec![EventKind::RequestReceived]
    );

    shutdown.cancel();
    task.await.expect("server task");
    if let Ok(engine) = Arc::try_unwrap(engine) {
        engine.cleanup().await;
    }
}

#[tokio::test]
async fn twenty_concurrent_duplicate_intakes_make_one_request_on_sqlite() {
    twenty_concurrent_duplicate_intakes_make_one_request(Store::Sqlite).await;
}

#[tokio::test]
async fn twenty_concurrent_duplicate_intakes_make_one_request_on_jetstream() {
    twenty_concurrent_duplicate_intakes_make_one_request(Store::JetStream).await;
}

async fn commands_over_nats_drive_a_lifecycle(store: Store) {
    let engine = Engine::build(store).await;
    let (shutdown, task) = engine.serve().await;
    let (_, body) = engine
        .request(
            engine.cfg.names.intake_subject("hotline"),
            Some(INTAKE_ACTOR),
            intake_document("hotline", "HL-LIFE")
                .to_string()
                .into_bytes(),
        )
        .await;
    let id: RequestId = serde_json::from_value(body["request_id"].clone()).expect("an id");
    let handler = format!("handler-1;department_handler;{DEPARTMENT}");

    engine
        .command(WORKER, id, json!({"action": "accept"}))
        .await;
    engine
        .command(
            WORKER,
            id,
            json!({"action": "classify", "catalogue_item": ITEM, "request_type": "help"}),
        )
        .await;
    engine
        .command(
            WORKER,
            id,
            json!({"action": "refer", "lead_department": DEPARTMENT}),
        )
        .await;
    engine
        .command(&handler, id, json!({"action": "sign_for"}))
        .await;
    engine
        .command(
            &handler,
            id,
            json!({"action": "contact_resident", "method": "phone"}),
        )
        .await;
    engine
        .command(&handler, id, json!({"action": "start_handling"}))
        .await;
    engine
        .command(
            &handler,
            id,
            json!({"action": "reply", "outcome": "resolved", "content": "路灯已修复"}),
        )
        .await;
    engine
        .command(
            "centre-1;supervisor",
            id,
            json!({"action": "review_reply", "approved": true}),
        )
        .await;
    engine
        .command(
            WORKER,
            id,
            json!({"action": "rate", "satisfaction": "satisfied", "resolution": "resolved"}),
        )
        .await;
    let last = engine
        .command(WORKER, id, json!({"action": "archive"}))
        .await;

    let kinds = engine.event_kinds(id).await;
    assert_eq!(kinds.first(), Some(&EventKind::RequestReceived));
    assert_eq!(kinds.last(), Some(&EventKind::Archived));
    assert_eq!(last["version"], json!(kinds.len()));
    assert_eq!(last["duplicate"], json!(false));
    assert_eq!(last["events"].as_array().map(Vec::len), Some(1));

    // A retried command (same command id) is answered as a duplicate and recorded once.
    let envelope = json!({"command_id": Uuid::now_v7(), "request_id": id, "command": {"action": "note_progress", "note": "x"}});
    let (_, first) = engine
        .request(
            engine.cfg.names.cmd_subject("note_progress"),
            Some(WORKER),
            envelope.to_string().into_bytes(),
        )
        .await;
    let (_, again) = engine
        .request(
            engine.cfg.names.cmd_subject("note_progress"),
            Some(WORKER),
            envelope.to_string().into_bytes(),
        )
        .await;
    // After archiving, the note is refused both times: nothing is recorded either way.
    assert_eq!(first["error"]["code"], again["error"]["code"]);
    assert_eq!(engine.event_kinds(id).await.len(), kinds.len());

    shutdown.cancel();
    task.await.expect("server task");
    engine.cleanup().await;
}

#[tokio::test]
async fn commands_over_nats_drive_a_lifecycle_on_sqlite() {
    commands_over_nats_drive_a_lifecycle(Store::Sqlite).await;
}

#[tokio::test]
async fn commands_over_nats_drive_a_lifecycle_on_jetstream() {
    commands_over_nats_drive_a_lifecycle(Store::JetStream).await;
}

#[tokio::test]
async fn a_retried_command_is_recorded_once() {
    let engine = Engine::build(Store::JetStream).await;
    let (shutdown, task) = engine.serve().await;
    let (_, body) = engine
        .request(
            engine.cfg.names.intake_subject("window"),
            Some(INTAKE_ACTOR),
            intake_document("window", "W-7").to_string().into_bytes(),
        )
        .await;
    let id: RequestId = serde_json::from_value(body["request_id"].clone()).expect("an id");
    let envelope =
        json!({"command_id": Uuid::now_v7(), "request_id": id, "command": {"action": "accept"}});

    let (e1, first) = engine
        .request(
            engine.cfg.names.cmd_subject("accept"),
            Some(WORKER),
            envelope.to_string().into_bytes(),
        )
        .await;
    let (e2, second) = engine
        .request(
            engine.cfg.names.cmd_subject("accept"),
            Some(WORKER),
            envelope.to_string().into_bytes(),
        )
        .await;

    assert_eq!((e1, e2), (None, None), "{first} / {second}");
    assert_eq!(first["duplicate"], json!(false));
    assert_eq!(second["duplicate"], json!(true));
    assert_eq!(first["position"], second["position"]);
    assert_eq!(
        engine.event_kinds(id).await,
        vec![EventKind::RequestReceived, EventKind::RequestAccepted]
    );

    shutdown.cancel();
    task.await.expect("server task");
    engine.cleanup().await;
}

/// One bad-input case: name, subject, identity, payload, expected code, expected field.
type BadCase<'a> = (
    &'a str,
    String,
    Option<&'a str>,
    Vec<u8>,
    &'a str,
    Option<&'a str>,
);

#[tokio::test]
async fn bad_input_of_every_class_gets_the_error_document_and_appends_nothing() {
    let engine = Engine::build(Store::Sqlite).await;
    let (shutdown, task) = engine.serve().await;
    let (_, body) = engine
        .request(
            engine.cfg.names.intake_subject("hotline"),
            Some(INTAKE_ACTOR),
            intake_document("hotline", "HL-BAD")
                .to_string()
                .into_bytes(),
        )
        .await;
    let id: RequestId = serde_json::from_value(body["request_id"].clone()).expect("an id");
    let before = engine
        .service
        .log()
        .last_position()
        .await
        .expect("position");

    let mut unknown_field = intake_document("hotline", "HL-X");
    unknown_field["colour"] = json!("red");
    let mut wrong_type = intake_document("hotline", "HL-Y");
    wrong_type["anonymous"] = json!("yes");
    let mut oversize = intake_document("hotline", "HL-Z");
    oversize["text"] = json!("长".repeat(30_000));
    let envelope = |request_id: RequestId, command: Value| {
        json!({"command_id": Uuid::now_v7(), "request_id": request_id, "command": command})
            .to_string()
            .into_bytes()
    };
    let cfg = &engine.cfg;
    let twice = format!(
        r#"{{"command_id":"{}","request_id":"{id}","command":{{"action":"accept","note":"a","note":"b"}}}}"#,
        Uuid::now_v7()
    );
    let cases: Vec<BadCase> = vec![
        (
            "a key twice in a command envelope",
            cfg.names.cmd_subject("accept"),
            Some("worker-li;station_worker;sq-0101"),
            twice.into_bytes(),
            "duplicate_key",
            Some("command.note"),
        ),
        (
            "malformed JSON",
            cfg.names.intake_subject("hotline"),
            Some(INTAKE_ACTOR),
            b"{not json".to_vec(),
            "malformed",
            None,
        ),
        (
            "unknown field",
            cfg.names.intake_subject("hotline"),
            Some(INTAKE_ACTOR),
            unknown_field.to_string().into_bytes(),
            "malformed",
            Some("colour"),
        ),
        (
            "wrong type",
            cfg.names.intake_subject("hotline"),
            Some(INTAKE_ACTOR),
            wrong_type.to_string().into_bytes(),
            "malformed",
            None,
        ),
        (
            "oversize",
            cfg.names.intake_subject("hotline"),
            Some(INTAKE_ACTOR),
            oversize.to_string().into_bytes(),
            "payload_too_large",
            None,
        ),
        (
            "channel mismatch",
            cfg.names.intake_subject("email"),
            Some(INTAKE_ACTOR),
            intake_document("hotline", "HL-M").to_string().into_bytes(),
            "channel_mismatch",
            Some("channel"),
        ),
        (
            "unknown channel",
            cfg.names.intake_subject("fax"),
            Some(INTAKE_ACTOR),
            intake_document("hotline", "HL-F").to_string().into_bytes(),
            "unknown_channel",
            Some("channel"),
        ),
        (
            "no identity",
            cfg.names.intake_subject("hotline"),
            None,
            intake_document("hotline", "HL-N").to_string().into_bytes(),
            "unauthenticated",
            None,
        ),
        (
            "unknown action",
            cfg.names.cmd_subject("teleport"),
            Some(WORKER),
            envelope(id, json!({"action": "accept"})),
            "unknown_type",
            Some("action"),
        ),
        (
            "action mismatch",
            cfg.names.cmd_subject("archive"),
            Some(WORKER),
            envelope(id, json!({"action": "accept"})),
            "action_mismatch",
            Some("action"),
        ),
        (
            "receive as a command",
            cfg.names.cmd_subject("receive"),
            Some(WORKER),
            envelope(id, json!({"action": "receive"})),
            "unknown_type",
            Some("action"),
        ),
        (
            "command wrong type",
            cfg.names.cmd_subject("reply"),
            Some(WORKER),
            envelope(id, json!({"action": "reply", "outcome": 7, "content": "x"})),
            "malformed",
            None,
        ),
        (
            "command malformed",
            cfg.names.cmd_subject("accept"),
            Some(WORKER),
            b"[]".to_vec(),
            "malformed",
            None,
        ),
    ];
    for (name, subject, actor, payload, code, field) in cases {
        let (header, body) = engine.request(subject, actor, payload).await;
        assert_eq!(body["error"]["code"], json!(code), "{name}: {body}");
        assert_eq!(header.as_deref(), Some(code), "{name}: error header");
        if let Some(field) = field {
            assert_eq!(body["error"]["field"], json!(field), "{name}: {body}");
        }
    }

    // Errors the command service decides: unknown request, illegal transition.
    let (_, unknown) = engine
        .request(
            cfg.names.cmd_subject("accept"),
            Some("centre-1;supervisor"),
            envelope(Uuid::now_v7(), json!({"action": "accept"})),
        )
        .await;
    assert_eq!(unknown["error"]["code"], json!("not_found"), "{unknown}");
    let (_, illegal) = engine
        .request(
            cfg.names.cmd_subject("archive"),
            Some(WORKER),
            envelope(id, json!({"action": "archive"})),
        )
        .await;
    assert!(illegal["error"]["code"].is_string(), "{illegal}");
    assert_ne!(illegal["error"]["code"], json!("internal"), "{illegal}");

    assert_eq!(
        engine
            .service
            .log()
            .last_position()
            .await
            .expect("position"),
        before,
        "nothing appended"
    );
    assert_eq!(
        engine.event_kinds(id).await,
        vec![EventKind::RequestReceived]
    );

    // Still serving.
    let (error, body) = engine
        .request(
            cfg.names.intake_subject("hotline"),
            Some(INTAKE_ACTOR),
            intake_document("hotline", "HL-AFTER")
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(error, None, "{body}");
    assert_eq!(body["created"], json!(true));

    shutdown.cancel();
    task.await.expect("server task");
    engine.cleanup().await;
}

/// Polls `check` every 50 ms until it holds or `limit` passes.
pub(crate) async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn stream_messages(js: &jetstream::Context, name: &str) -> Option<u64> {
    let mut stream = js.get_stream(name).await.ok()?;
    stream.info().await.ok().map(|info| info.state.messages)
}

pub(crate) async fn publish_to_inbox(js: &jetstream::Context, subject: String, payload: Vec<u8>) {
    js.publish(subject, payload.into())
        .await
        .expect("publish")
        .await
        .expect("the inbox stores the document");
}

async fn inbox_documents_published_while_no_engine_runs_are_processed_later(store: Store) {
    let engine = Engine::build(store).await;
    let js = jetstream::new(engine.client.clone());
    nats::inbox::ensure_streams(&js, &engine.cfg)
        .await
        .expect("inbox streams");

    // No consumer runs: the documents wait in the stream.
    let ids: Vec<RequestId> = (0..5)
        .map(|n| expected_id("grid_patrol", &format!("GP-{n}")))
        .collect();
    for n in 0..5 {
        let document = intake_document("grid_patrol", &format!("GP-{n}"));
        publish_to_inbox(
            &js,
            engine.cfg.names.inbox_subject("grid_patrol"),
            document.to_string().into_bytes(),
        )
        .await;
    }
    // The same ticket published twice still makes one request.
    publish_to_inbox(
        &js,
        engine.cfg.names.inbox_subject("grid_patrol"),
        intake_document("grid_patrol", "GP-0")
            .to_string()
            .into_bytes(),
    )
    .await;
    for id in &ids {
        assert!(
            engine.event_kinds(*id).await.is_empty(),
            "nothing is processed without a consumer"
        );
    }

    let (shutdown, task) = engine.consume_inbox();
    eventually(
        Duration::from_secs(15),
        "the inbox to be processed",
        || async {
            let mut all = true;
            for id in &ids {
                all &= engine.event_kinds(*id).await == vec![EventKind::RequestReceived];
            }
            all
        },
    )
    .await;
    // Acked: the work-queue stream empties.
    eventually(
        Duration::from_secs(10),
        "the inbox to be acknowledged",
        || async { stream_messages(&js, &engine.cfg.names.inbox_stream()).await == Some(0) },
    )
    .await;

    shutdown.cancel();
    task.await.expect("inbox task");
    engine.cleanup().await;
}

#[tokio::test]
async fn inbox_documents_published_while_no_engine_runs_are_processed_later_on_sqlite() {
    inbox_documents_published_while_no_engine_runs_are_processed_later(Store::Sqlite).await;
}

#[tokio::test]
async fn inbox_documents_published_while_no_engine_runs_are_processed_later_on_jetstream() {
    inbox_documents_published_while_no_engine_runs_are_processed_later(Store::JetStream).await;
}

#[tokio::test]
async fn invalid_inbox_documents_end_up_in_the_rejects_stream() {
    let engine = Engine::build(Store::JetStream).await;
    let js = jetstream::new(engine.client.clone());
    let (shutdown, task) = engine.consume_inbox();
    // The consumer creates the streams; wait for them.
    eventually(Duration::from_secs(10), "the inbox stream", || async {
        js.get_stream(&engine.cfg.names.inbox_stream())
            .await
            .is_ok()
    })
    .await;

    let mut unknown_grid = intake_document("hotline", "HL-R2");
    unknown_grid["location"]["grid"] = json!("no-such-grid");
    let rejected = vec![
        ("hotline", b"{ definitely not json".to_vec()),
        ("hotline", unknown_grid.to_string().into_bytes()),
        (
            "email",
            intake_document("hotline", "HL-R3").to_string().into_bytes(),
        ),
    ];
    for (channel, payload) in rejected {
        publish_to_inbox(&js, engine.cfg.names.inbox_subject(channel), payload).await;
    }
    publish_to_inbox(
        &js,
        engine.cfg.names.inbox_subject("hotline"),
        intake_document("hotline", "HL-OK").to_string().into_bytes(),
    )
    .await;

    let ok = expected_id("hotline", "HL-OK");
    eventually(Duration::from_secs(15), "the valid document", || async {
        engine.event_kinds(ok).await == vec![EventKind::RequestReceived]
    })
    .await;
    eventually(Duration::from_secs(15), "three rejects", || async {
        stream_messages(&js, &engine.cfg.names.rejects_stream()).await == Some(3)
    })
    .await;
    let rejects = js
        .get_stream(&engine.cfg.names.rejects_stream())
        .await
        .expect("rejects stream");

    let mut stored = Vec::new();
    for sequence in 1..=3 {
        let message = rejects.get_raw_message(sequence).await.expect("a reject");
        let reject: Value = serde_json::from_slice(&message.payload).expect("rejects are JSON");
        // The documented message id: the inbox sequence in decimal.
        let id = message
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_string());
        assert_eq!(
            id,
            reject["inbox_sequence"].as_u64().map(|s| s.to_string()),
            "{reject}"
        );
        stored.push((message.subject.to_string(), reject));
    }
    stored.sort_by_key(|(_, r)| r["inbox_sequence"].as_u64());
    assert_eq!(stored[0].0, engine.cfg.names.rejects_subject("hotline"));
    assert_eq!(stored[0].1["external_id"], Value::Null);
    assert_eq!(stored[0].1["error"]["code"], json!("malformed"));
    assert_eq!(stored[1].1["external_id"], json!("HL-R2"));
    assert_eq!(stored[1].1["error"]["field"], json!("location"));
    assert_eq!(stored[2].0, engine.cfg.names.rejects_subject("email"));
    assert_eq!(stored[2].1["error"]["code"], json!("channel_mismatch"));
    assert_eq!(stored[2].1["channel"], json!("email"));
    for id in [
        expected_id("hotline", "HL-R2"),
        expected_id("hotline", "HL-R3"),
        expected_id("email", "HL-R3"),
    ] {
        assert!(
            engine.event_kinds(id).await.is_empty(),
            "a rejected document records nothing"
        );
    }

    shutdown.cancel();
    task.await.expect("inbox task");
    engine.cleanup().await;
}

#[tokio::test]
async fn inbox_documents_wait_while_the_event_log_is_unavailable() {
    // The event log lives on a private server that goes away; the inbox on the shared one.
    let mut log_server = tests::nats::NatsServer::start().await;
    let log_client = log_server.client().await;
    let log = EventLog::connect_jetstream(log_client, JetStreamConfig::default())
        .await
        .expect("event log on the private server");
    let engine = Engine::on_log(log).await;
    let js = jetstream::new(engine.client.clone());
    let (shutdown, task) = engine.consume_inbox();
    eventually(Duration::from_secs(10), "the inbox stream", || async {
        js.get_stream(&engine.cfg.names.inbox_stream())
            .await
            .is_ok()
    })
    .await;

    log_server.stop();
    publish_to_inbox(
        &js,
        engine.cfg.names.inbox_subject("hotline"),
        intake_document("hotline", "HL-DOWN")
            .to_string()
            .into_bytes(),
    )
    .await;
    // While the log is down the document is retried, neither recorded nor rejected.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        stream_messages(&js, &engine.cfg.names.inbox_stream()).await,
        Some(1)
    );
    assert_eq!(
        stream_messages(&js, &engine.cfg.names.rejects_stream()).await,
        Some(0)
    );

    log_server.restart().await;
    let id = expected_id("hotline", "HL-DOWN");
    eventually(
        Duration::from_secs(30),
        "the document once the log is back",
        || async { engine.event_kinds(id).await == vec![EventKind::RequestReceived] },
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "the inbox to be acknowledged",
        || async { stream_messages(&js, &engine.cfg.names.inbox_stream()).await == Some(0) },
    )
    .await;
    assert_eq!(
        stream_messages(&js, &engine.cfg.names.rejects_stream()).await,
        Some(0)
    );

    shutdown.cancel();
    task.await.expect("inbox task");
    engine.cleanup().await;
}

/// Throughput of the command path over NATS against raw JetStream appends on the same server
/// (run with `BIANMIN_PERF=1`; the target is at least 40% of the raw rate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_throughput_over_nats_is_a_fair_share_of_raw_jetstream() {
    if std::env::var("BIANMIN_PERF").is_err() {
        return;
    }
    const N_REQUESTS: usize = 64;
    const N_PER_REQUEST: usize = 40;
    let engine = Arc::new(Engine::build(Store::JetStream).await);
    let (shutdown, task) = engine.serve().await;
    let mut ids = Vec::new();
    for n in 0..N_REQUESTS {
        let (_, body) = engine
            .request(
                engine.cfg.names.intake_subject("hotline"),
                Some(INTAKE_ACTOR),
                intake_document("hotline", &format!("PERF-{n}"))
                    .to_string()
                    .into_bytes(),
            )
            .await;
        ids.push(serde_json::from_value::<RequestId>(body["request_id"].clone()).expect("id"));
        engine
            .command(
                WORKER,
                *ids.last().expect("id"),
                json!({"action": "accept"}),
            )
            .await;
    }

    let started = std::time::Instant::now();
    futures::future::join_all(ids.iter().map(|id| {
        let engine = engine.clone();
        let id = *id;
        async move {
            for _ in 0..N_PER_REQUEST {
                engine
                    .command(
                        WORKER,
                        id,
                        json!({"action": "note_progress", "note": "进展"}),
                    )
                    .await;
            }
        }
    }))
    .await;
    let engine_rate = (N_REQUESTS * N_PER_REQUEST) as f64 / started.elapsed().as_secs_f64();

    // Raw: the same number of appends of a similar payload, same concurrency, straight to a
    // JetStream stream with the same per-subject expectation header.
    let js = jetstream::new(engine.client.clone());
    let raw = format!("TP_{}", unique());
    js.create_stream(jetstream::stream::Config {
        name: raw.clone(),
        subjects: vec![format!("{raw}.>")],
        ..Default::default()
    })
    .await
    .expect("raw stream");
    let payload = vec![b'x'; 1200];
    let started = std::time::Instant::now();
    futures::future::join_all((0..N_REQUESTS).map(|n| {
        let js = js.clone();
        let subject = format!("{raw}.{n}");
        let payload = payload.clone();
        async move {
            let mut last = 0u64;
            for _ in 0..N_PER_REQUEST {
                let mut headers = HeaderMap::new();
                headers.insert(
                    "Nats-Expected-Last-Subject-Sequence",
                    last.to_string().as_str(),
                );
                let ack = js
                    .publish_with_headers(subject.clone(), headers, payload.clone().into())
                    .await
                    .expect("publish")
                    .await
                    .expect("ack");
                last = ack.sequence;
            }
        }
    }))
    .await;
    let raw_rate = (N_REQUESTS * N_PER_REQUEST) as f64 / started.elapsed().as_secs_f64();
    let _ = js.delete_stream(&raw).await;
    println!("commands over NATS: {engine_rate:.0}/s; raw JetStream appends: {raw_rate:.0}/s");

    shutdown.cancel();
    task.await.expect("server task");
    if let Ok(engine) = Arc::try_unwrap(engine) {
        engine.cleanup().await;
    }
    assert!(
        engine_rate >= 0.4 * raw_rate,
        "{engine_rate:.0}/s is under 40% of {raw_rate:.0}/s"
    );
}
