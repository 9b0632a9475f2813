//! Correcting a resident's contact is an explicit, authorised, recorded act
//! (`PUT /api/v1/requests/{id}/contact`, the `correct_contact` command), on both logs: station
//! staff correct it, the contact route and the notifications use the new data from then on, the
//! history records `contact_corrected` with the reason and who, and no byte the engine stores
//! outside the encrypted contact store holds the new phone. Whoever may not correct learns
//! nothing of the request; anonymous and erased contacts are refused; a retry records once
//! and never undoes a later correction; an archived request can still be corrected.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use schemas::ContactRef;
use serde_json::{Value, json};
use tests::app::{NATS_URL, Store, TestApp, actors, external_id, intake_document, spawn_app_with};
use uuid::Uuid;

const OLD_PHONE: &str = "13800001111";
const NEW_PHONE: &str = "13677778888";
const FIRST_PHONE: &str = "13522223333";
const NEW_NAME: &str = "王芳更正";
const REASON: &str = "the resident called to give a new phone number";

/// The bodies a loopback webhook received.
#[derive(Clone, Default)]
struct Gateway {
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Gateway {
    async fn start(&self) -> String {
        let bodies = self.bodies.clone();
        let router = axum::Router::new().route(
            "/notify",
            axum::routing::post(move |body: axum::body::Bytes| {
                let bodies = bodies.clone();
                async move {
                    if let Ok(doc) = serde_json::from_slice(&body) {
                        bodies.lock().expect("not poisoned").push(doc);
                    }
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let url = format!("http://{}/notify", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    }

    /// The recipient phone of the first notification of `kind`, once it arrived.
    async fn phone_of(&self, kind: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self
                .bodies
                .lock()
                .expect("not poisoned")
                .iter()
                .find(|d| d["kind"] == kind)
                .map(|d| d["recipient"]["phone"].as_str().unwrap_or("").to_string());
            if let Some(phone) = found {
                return phone;
            }
            assert!(Instant::now() < deadline, "no {kind} notification arrived");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn spawn(store: Store, gateway: &Gateway) -> TestApp {
    let url = gateway.start().await;
    spawn_app_with(store, |config| {
        config.privacy.contact_readers = vec!["audit-dpo".into()];
        config.notify.poll_interval_ms = 50;
        config.notify.webhooks = vec![engine_service::notify::WebhookConfig {
            name: Some("sms".into()),
            url,
            kinds: vec![],
            secret: "s3cret-key".into(),
        }];
    })
    .await
}

fn correction(phone: &str) -> Value {
    json!({"contact": {"name": NEW_NAME, "phone": phone}, "reason": REASON})
}

/// `PUT /api/v1/requests/{id}/contact` as `actor`: (status, body).
async fn put(
    app: &TestApp,
    id: &str,
    actor: &str,
    key: Option<Uuid>,
    body: &Value,
) -> (u16, Value) {
    let mut request = app
        .client
        .put(format!("{}/api/v1/requests/{id}/contact", app.address))
        .header("X-Bianmin-Actor", actor)
        .json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key.to_string());
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

async fn intake(app: &TestApp, document: Value) -> String {
    let (status, body) = app.intake(&document).await;
    assert_eq!(status, 201, "{body}");
    body["request_id"].as_str().expect("an id").to_string()
}

async fn ok(app: &TestApp, id: &str, action: &str, body: Value) {
    app.clock.advance(chrono::Duration::minutes(5));
    let (status, answer) = app.command(id, action, actors::STATION, &body).await;
    assert_eq!(status, 200, "{action}: {answer}");
}

fn corrections(history: &[Value]) -> Vec<&Value> {
    history
        .iter()
        .filter(|e| e["type"] == "contact_corrected")
        .collect()
}

/// Every byte the engine stored outside the process: its data directory (log, projections,
/// delivery table, contact store, ledger, with `-wal`/`-shm`) and every stream of its instance.
async fn stored_text(app: &TestApp) -> String {
    let mut out = String::new();
    let mut dirs = vec![app.config.data_dir.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    if app.store == Store::Nats {
        let js = jetstream::new(async_nats::connect(NATS_URL).await.expect("nats"));
        for name in app.names().all_streams() {
            let Ok(mut stream) = js.get_stream(&name).await else {
                continue;
            };
            let state = stream.info().await.expect("stream info").state.clone();
            for seq in state.first_sequence.max(1)..=state.last_sequence {
                if let Ok(message) = stream.get_raw_message(seq).await {
                    out.push_str(&String::from_utf8_lossy(&message.payload));
                }
            }
        }
    }
    out
}

async fn station_staff_correct_a_contact(store: Store) {
    let gateway = Gateway::default();
    let app = spawn(store, &gateway).await;
    let id = intake(&app, intake_document(&external_id())).await;
    assert_eq!(gateway.phone_of("request_received").await, OLD_PHONE);

    // The generic command route refuses the command: its data has another route.
    let (status, body) = app
        .command(
            &id,
            "correct_contact",
            actors::STATION,
            &json!({"reason": REASON}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "use_contact_route");
    assert_eq!(body["field"], "action");

    let key = Uuid::now_v7();
    let (status, body) = put(
        &app,
        &id,
        actors::STATION,
        Some(key),
        &correction(NEW_PHONE),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["duplicate"], false);
    assert_eq!(body["events"][0]["type"], "contact_corrected");
    assert_eq!(body["events"][0]["data"], json!({"reason": REASON}));
    // A retry with the same key answers the original outcome and records nothing more.
    let (status, again) = put(
        &app,
        &id,
        actors::STATION,
        Some(key),
        &correction(NEW_PHONE),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["version"], body["version"]);

    let history = app.history(&id).await;
    let recorded = corrections(&history);
    assert_eq!(recorded.len(), 1, "one correction recorded");
    assert_eq!(recorded[0]["data"], json!({"reason": REASON}));
    assert_eq!(recorded[0]["actor"]["id"], "worker-li");
    let response = app
        .get(
            &format!("/api/v1/requests/{id}/contact?purpose=check"),
            "audit-dpo;auditor",
        )
        .await;
    let read: Value = response.json().await.expect("a JSON body");
    assert_eq!(read["contact"]["phone"], NEW_PHONE, "{read}");
    assert_eq!(read["contact"]["name"], NEW_NAME, "{read}");

    ok(&app, &id, "accept", json!({})).await;
    assert_eq!(gateway.phone_of("request_accepted").await, NEW_PHONE);
    let stored = stored_text(&app).await;
    assert!(stored.contains(REASON), "the scan reads the log");
    assert!(
        !stored.contains(NEW_PHONE),
        "the new phone is stored in the clear"
    );
    assert!(
        !stored.contains(NEW_NAME),
        "the new name is stored in the clear"
    );
    app.teardown().await;
}

tests::on_both_stores!(multi_thread: station_staff_correct_a_contact);

async fn who_may_not_correct_learns_nothing(store: Store) {
    let gateway = Gateway::default();
    let app = spawn(store, &gateway).await;
    let id = intake(&app, intake_document(&external_id())).await;
    ok(&app, &id, "accept", json!({})).await;
    let elsewhere = "worker-zhou;station_worker;sq-0202";
    for actor in [actors::URBAN, actors::INTAKE, actors::AUDITOR, elsewhere] {
        let mut answers = Vec::new();
        for request in [id.clone(), Uuid::now_v7().to_string()] {
            answers.push(put(&app, &request, actor, None, &correction(NEW_PHONE)).await);
        }
        assert_eq!(answers[0].0, 403, "{actor}: {answers:?}");
        assert_eq!(
            answers[0], answers[1],
            "{actor}: the same as for no request"
        );
        let message = answers[0].1["message"].as_str().unwrap_or("");
        assert!(
            !message.contains("accepted"),
            "{actor} learns the stage: {message}"
        );
    }
    assert!(corrections(&app.history(&id).await).is_empty());
    if store == Store::Nats {
        // The NATS command subject refuses the command as the HTTP command route does.
        let client = async_nats::connect(NATS_URL).await.expect("nats");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("X-Bianmin-Actor", actors::STATION);
        let envelope = json!({
            "command_id": Uuid::now_v7(),
            "request_id": id,
            "command": {"action": "correct_contact", "reason": REASON},
        });
        let reply = client
            .request_with_headers(
                app.names().cmd_subject("correct_contact"),
                headers,
                envelope.to_string().into(),
            )
            .await
            .expect("a reply");
        let body: Value = serde_json::from_slice(&reply.payload).expect("JSON");
        assert_eq!(body["error"]["code"], "use_contact_route", "{body}");
    }
    app.teardown().await;
}

tests::on_both_stores!(multi_thread: who_may_not_correct_learns_nothing);

async fn anonymous_erased_and_archived(store: Store) {
    let gateway = Gateway::default();
    let app = spawn(store, &gateway).await;

    let mut anonymous = intake_document(&external_id());
    anonymous["anonymous"] = json!(true);
    let id = intake(&app, anonymous).await;
    let (status, body) = put(&app, &id, actors::STATION, None, &correction(NEW_PHONE)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("no_contact")),
        "{body}"
    );

    let id = intake(&app, intake_document(&external_id())).await;
    let history = app.history(&id).await;
    let reference: Uuid = history[0]["data"]["contact_ref"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("a contact reference");
    let contacts = app.command_service.contacts();
    assert!(contacts.erase(&ContactRef(reference)).await.expect("erase"));
    let (status, body) = put(&app, &id, actors::SUPERVISOR, None, &correction(NEW_PHONE)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("contact_erased")),
        "{body}"
    );
    assert_eq!(body["field"], "contact");
    assert!(
        corrections(&app.history(&id).await).is_empty(),
        "nothing recorded"
    );

    let id = intake(&app, intake_document(&external_id())).await;
    ok(
        &app,
        &id,
        "decline",
        json!({"disposition": "OUTSIDE_PUBLIC_REMIT", "explanation": "属于物业服务合同事项。"}),
    )
    .await;
    ok(&app, &id, "archive", json!({})).await;
    let first = Uuid::now_v7();
    let (status, body) = put(
        &app,
        &id,
        actors::STATION,
        Some(first),
        &correction(FIRST_PHONE),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = put(&app, &id, actors::STATION, None, &correction(NEW_PHONE)).await;
    assert_eq!(status, 200, "{body}");
    // A late retry of the first correction answers its outcome and does not undo the second.
    let (status, body) = put(
        &app,
        &id,
        actors::STATION,
        Some(first),
        &correction(FIRST_PHONE),
    )
    .await;
    assert_eq!((status, &body["duplicate"]), (200, &json!(true)), "{body}");
    assert_eq!(corrections(&app.history(&id).await).len(), 2);
    let response = app
        .get(&format!("/api/v1/requests/{id}"), actors::SUPERVISOR)
        .await;
    let state: Value = response.json().await.expect("a JSON body");
    assert_eq!(state["stage"], "archived");
    let response = app
        .get(
            &format!("/api/v1/requests/{id}/contact?purpose=check"),
            "audit-dpo;auditor",
        )
        .await;
    let read: Value = response.json().await.expect("a JSON body");
    assert_eq!(read["contact"]["phone"], NEW_PHONE, "{read}");
    app.teardown().await;
}

tests::on_both_stores!(multi_thread: anonymous_erased_and_archived);
