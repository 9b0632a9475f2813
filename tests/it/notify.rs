//! Resident notifications: documents on `<prefix>.notify.<kind>` (JetStream) and on webhooks,
//! rendered in Chinese, once per event and channel even across restarts; webhook retries with
//! backoff, the dead-letter list and replay (HTTP and CLI); confidential contact data never in
//! department-visible output; an erased contact gets no message.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use axum::http::{HeaderMap, StatusCode};
use engine_service::config::Config;
use engine_service::notify::{NotifyConfig, WebhookConfig};
use hmac::{Hmac, Mac};
use schemas::ContactRef;
use serde_json::{Value, json};
use sha2::Sha256;
use tests::app::{NATS_URL, Store, TestApp, actors, external_id, intake_document, spawn_app_with};

/// Polling interval of the test's waits.
const POLL: Duration = Duration::from_millis(50);
/// Longest wait for a notification to settle.
const SETTLE: Duration = Duration::from_secs(30);

/// Fast retries for tests.
fn fast(config: &mut Config) {
    config.notify.poll_interval_ms = 50;
    config.notify.retry_initial_ms = 100;
    config.notify.retry_max_ms = 2_000;
}

fn webhook(name: &str, url: String, kinds: &[&str]) -> WebhookConfig {
    WebhookConfig {
        name: Some(name.into()),
        url,
        kinds: kinds
            .iter()
            .map(|k| engine_service::notify::NotifyKind::parse(k).expect("a kind"))
            .collect(),
        secret: "s3cret-key".into(),
    }
}

/// One call a test webhook received.
#[derive(Debug, Clone)]
struct Call {
    at: Instant,
    body: Vec<u8>,
    signature: String,
    answered: u16,
}

/// A loopback webhook answering 503 to its first `failures` calls (forever when `None`,
/// until `heal` is called), then 200.
#[derive(Clone)]
struct Gateway {
    url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    failures: Arc<Mutex<Option<usize>>>,
}

impl Gateway {
    async fn start(failures: Option<usize>) -> Gateway {
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let failures = Arc::new(Mutex::new(failures));
        let (c, f) = (calls.clone(), failures.clone());
        let router = axum::Router::new().route(
            "/notify",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (calls, failures) = (c.clone(), f.clone());
                async move {
                    let mut calls = calls.lock().unwrap();
                    let failing = match *failures.lock().unwrap() {
                        None => true,
                        Some(n) => calls.len() < n,
                    };
                    let status = if failing {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    };
                    calls.push(Call {
                        at: Instant::now(),
                        body: body.to_vec(),
                        signature: headers
                            .get("x-bianmin-signature")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string(),
                        answered: status.as_u16(),
                    });
                    status
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/notify", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Gateway {
            url,
            calls,
            failures,
        }
    }

    /// From now on every call succeeds.
    fn heal(&self) {
        let done = self.calls.lock().unwrap().len();
        *self.failures.lock().unwrap() = Some(done);
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

/// Waits until `check` holds or fails with `what`.
async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + SETTLE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// The notifications of `request_id` as a supervisor lists them.
async fn listed(app: &TestApp, request_id: &str) -> Vec<Value> {
    let response = app
        .get(
            &format!("/api/v1/notifications?request_id={request_id}"),
            actors::SUPERVISOR,
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.expect("a JSON array")
}

/// The listed notification of `kind` for `request_id`.
async fn row(app: &TestApp, request_id: &str, kind: &str) -> Option<Value> {
    listed(app, request_id)
        .await
        .into_iter()
        .find(|r| r["kind"] == kind)
}

async fn ok(app: &TestApp, id: &str, action: &str, actor: &str, body: Value) -> Value {
    app.clock.advance(chrono::Duration::minutes(5));
    let (status, answer) = app.command(id, action, actor, &body).await;
    assert_eq!(status, 200, "{action}: {answer}");
    answer
}

async fn intake(app: &TestApp, document: Value) -> String {
    let (status, created) = app.intake(&document).await;
    assert_eq!(status, 201, "{created}");
    created["request_id"].as_str().expect("id").to_string()
}

/// Every message stored in the app's notify stream: (Nats-Msg-Id, subject, document).
async fn stream_messages(app: &TestApp) -> Vec<(String, String, Value)> {
    let client = async_nats::connect(NATS_URL).await.expect("nats");
    let js = jetstream::new(client);
    let name = app.names().notify_stream();
    let Ok(mut stream) = js.get_stream(&name).await else {
        return Vec::new();
    };
    let info = stream.info().await.expect("stream info").clone();
    let mut out = Vec::new();
    for seq in info.state.first_sequence.max(1)..=info.state.last_sequence {
        let Ok(message) = stream.get_raw_message(seq).await else {
            continue;
        };
        let id = message
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        let doc: Value = serde_json::from_slice(&message.payload).expect("a JSON document");
        out.push((id, message.subject.to_string(), doc));
    }
    out
}

async fn delete_stream(app: &TestApp) {
    if let Ok(client) = async_nats::connect(NATS_URL).await {
        let name = app.names().notify_stream();
        let _ = jetstream::new(client).delete_stream(&name).await;
    }
}

#[tokio::test]
async fn a_lifecycle_is_told_to_the_resident_on_the_notify_subjects_once_each_across_restarts() {
    // Arrange
    let app = spawn_app_with(Store::Nats, fast).await;
    let prefix = app.config.nats.subject_prefix.clone();
    let ticket = external_id();
    let id = intake(&app, intake_document(&ticket)).await;

    // Act: a whole lifecycle, with a restart in the middle.
    ok(&app, &id, "accept", actors::STATION, json!({})).await;
    let classified = ok(
        &app,
        &id,
        "classify",
        actors::STATION,
        json!({"catalogue_item": "um-street-vending", "request_type": "complaint"}),
    )
    .await;
    let completion_due = classified["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "request_classified")
        .expect("classified")["data"]["deadlines"]["completion_due_at"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    ok(
        &app,
        &id,
        "refer",
        actors::STATION,
        json!({"lead_department": "urban-management"}),
    )
    .await;
    for (action, body) in [
        ("sign_for", json!({})),
        ("contact_resident", json!({"method": "phone"})),
        ("start_handling", json!({})),
        (
            "request_extension",
            json!({"reason": "需等待夜市摊位审批", "working_days": 3}),
        ),
    ] {
        ok(&app, &id, action, actors::URBAN, body).await;
    }
    let granted = ok(&app, &id, "grant_extension", actors::SUPERVISOR, json!({})).await;
    let new_due = granted["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "extension_granted")
        .expect("extension granted")["data"]["new_due_at"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    let app = app.restart().await;
    ok(
        &app,
        &id,
        "reply",
        actors::URBAN,
        json!({"outcome": "resolved", "content": "摊贩已迁入夜市规划区域。"}),
    )
    .await;
    ok(
        &app,
        &id,
        "review_reply",
        actors::SUPERVISOR,
        json!({"approved": true}),
    )
    .await;
    ok(
        &app,
        &id,
        "record_callback",
        actors::STATION,
        json!({"reached": false}),
    )
    .await;
    let declined_ticket = external_id();
    let declined = intake(&app, intake_document(&declined_ticket)).await;
    ok(
        &app,
        &declined,
        "decline",
        actors::STATION,
        json!({"disposition": "OUTSIDE_PUBLIC_REMIT", "explanation": "属于物业服务合同事项，请联系物业公司。"}),
    )
    .await;
    let expected = [
        "request_received",
        "request_accepted",
        "request_classified",
        "extension_granted",
        "result_replied",
        "callback_attempted",
    ];
    wait_until("every notification sent", || async {
        let rows = listed(&app, &id).await;
        expected.iter().all(|k| {
            rows.iter()
                .any(|r| r["kind"] == *k && r["status"] == "sent")
        })
    })
    .await;
    wait_until("the decline sent", || async {
        row(&app, &declined, "request_declined")
            .await
            .is_some_and(|r| r["status"] == "sent")
    })
    .await;

    // A restart that forgets the checkpoint re-reads the whole log and sends nothing again.
    let mut app = app;
    app.stop().await;
    let pool = sqlx::SqlitePool::connect(&app.config.projections_url())
        .await
        .unwrap();
    sqlx::query("UPDATE notify_checkpoint SET position = 0")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let app = app.restart().await;
    wait_until("the notifier re-read the log", || async {
        let pool = sqlx::SqlitePool::connect(&app.config.projections_url())
            .await
            .unwrap();
        let position: i64 = sqlx::query_scalar("SELECT position FROM notify_checkpoint")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        position > 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Assert: once each, on the right subject, in Chinese, with what statutes require.
    let messages = stream_messages(&app).await;
    let of_request: Vec<&(String, String, Value)> = messages
        .iter()
        .filter(|(_, _, d)| d["request_id"] == id.as_str())
        .collect();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (msg_id, subject, doc) in &of_request {
        *kinds
            .entry(doc["kind"].as_str().unwrap().to_string())
            .or_default() += 1;
        assert_eq!(
            subject,
            &format!("{prefix}.notify.{}", doc["kind"].as_str().unwrap())
        );
        assert_eq!(msg_id, doc["notification_id"].as_str().unwrap());
        assert_eq!(doc["template_version"], "2026.4");
        assert_eq!(doc["locale"], "zh-CN");
        assert_eq!(doc["ticket"], ticket.as_str());
        assert!(
            doc.get("recipient").is_none(),
            "no contact on the stream: {doc}"
        );
        let text = doc["text"].as_str().unwrap();
        assert!(
            text.starts_with("【便民服务】") && text.contains(&ticket),
            "{text}"
        );
    }
    let expected_counts: BTreeMap<String, usize> =
        expected.iter().map(|k| (k.to_string(), 1)).collect();
    assert_eq!(kinds, expected_counts, "each kind exactly once");
    let text_of = |kind: &str| {
        of_request
            .iter()
            .find(|(_, _, d)| d["kind"] == kind)
            .map(|(_, _, d)| d["text"].as_str().unwrap().to_string())
            .unwrap()
    };
    let beijing = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let due_text = new_due
        .with_timezone(&beijing)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let local = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&beijing)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    let registered = text_of("request_classified");
    assert!(
        registered.contains(&local(completion_due)),
        "the completion date: {registered}"
    );
    assert!(
        text_of("request_received").contains("前受理"),
        "the acceptance limit: {}",
        text_of("request_received")
    );
    let extension = text_of("extension_granted");
    assert!(
        extension.contains(&due_text) && extension.contains("需等待夜市摊位审批"),
        "the new date and the reason: {extension}"
    );
    assert!(text_of("result_replied").contains("摊贩已迁入夜市规划区域"));
    assert!(text_of("callback_attempted").contains("第1次回访"));
    let decline: Vec<_> = messages
        .iter()
        .filter(|(_, _, d)| d["request_id"] == declined.as_str() && d["kind"] == "request_declined")
        .collect();
    assert_eq!(decline.len(), 1);
    assert!(
        decline[0].2["text"]
            .as_str()
            .unwrap()
            .contains("属于物业服务合同事项")
    );
    // No notification for events residents are not told about.
    assert!(
        messages
            .iter()
            .all(|(_, _, d)| d["kind"] != "referred_to_department")
    );
    delete_stream(&app).await;
    app.teardown().await;
}

#[tokio::test]
async fn a_webhook_failing_three_times_is_retried_with_backoff_and_ends_sent_on_sqlite() {
    retried_until_sent(None).await;
}

#[tokio::test]
async fn a_webhook_failing_three_times_is_retried_with_backoff_and_ends_sent_on_postgres() {
    let db = tests::pg::TestDb::create().await.expect("a test database");
    retried_until_sent(Some(db.url.clone())).await;
    db.drop_db().await;
}

/// Delivery tracking in the embedded database (`None`) or PostgreSQL.
async fn retried_until_sent(database_url: Option<String>) {
    // Arrange: the embedded log, one webhook taking acceptances, failing three times.
    let gateway = Gateway::start(Some(3)).await;
    let url = gateway.url.clone();
    let app = spawn_app_with(Store::Sqlite, |config| {
        fast(config);
        config.database_url = database_url;
        config.notify.webhooks = vec![webhook("sms", url, &["request_accepted"])];
    })
    .await;
    let id = intake(&app, intake_document(&external_id())).await;

    // Act
    ok(&app, &id, "accept", actors::STATION, json!({})).await;
    wait_until("the acceptance sent", || async {
        row(&app, &id, "request_accepted")
            .await
            .is_some_and(|r| r["status"] == "sent")
    })
    .await;

    // Assert: four attempts, spaced by at least half the doubling delay (jitter), signed.
    let calls = gateway.calls();
    assert_eq!(
        calls.iter().map(|c| c.answered).collect::<Vec<_>>(),
        [503, 503, 503, 200]
    );
    for (i, pair) in calls.windows(2).enumerate() {
        let gap = pair[1].at - pair[0].at;
        let floor = Duration::from_millis(50 << i);
        assert!(gap >= floor, "gap {i} is {gap:?}, at least {floor:?}");
    }
    let last = calls.last().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret-key").unwrap();
    mac.update(&last.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(last.signature, expected, "HMAC-SHA256 of the body");
    let doc: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(doc["kind"], "request_accepted");
    assert_eq!(doc["recipient"]["phone"], "13800001111");
    let listed = row(&app, &id, "request_accepted").await.unwrap();
    assert_eq!(listed["attempts"], 4);
    assert_eq!(listed["channel"], "webhook:sms");
    assert!(
        row(&app, &id, "request_received").await.is_none(),
        "the webhook takes acceptances only"
    );
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("bianmin_notifications_total{channel=\"webhook\",outcome=\"failed\"} 3"),
        "{text}"
    );
    assert!(text.contains("bianmin_notifications_total{channel=\"webhook\",outcome=\"sent\"} 1"));
    assert!(text.contains("bianmin_notifications_pending 0"), "{text}");
    app.teardown().await;
}

#[tokio::test]
async fn an_undeliverable_notification_is_dead_lettered_and_replay_sends_it() {
    // Arrange: a gateway that is down; three attempts allowed.
    let gateway = Gateway::start(None).await;
    let url = gateway.url.clone();
    let app = spawn_app_with(Store::Sqlite, |config| {
        fast(config);
        config.notify.max_attempts = 3;
        config.notify.webhooks = vec![webhook("wechat", url, &[])];
    })
    .await;
    let id = intake(&app, intake_document(&external_id())).await;
    ok(&app, &id, "accept", actors::STATION, json!({})).await;
    wait_until("both notifications dead", || async {
        let rows = listed(&app, &id).await;
        rows.len() == 2 && rows.iter().all(|r| r["status"] == "dead")
    })
    .await;
    let dead: Vec<Value> = app
        .get("/api/v1/notifications?status=dead", actors::AUDITOR)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(dead.len(), 2);
    assert!(
        dead.iter()
            .all(|r| r["attempts"] == 3 && r["last_error"].as_str().unwrap().contains("503"))
    );
    assert_eq!(gateway.calls().len(), 6);
    for (query, field) in [
        ("status=bogus", Some("status")),
        ("limit=0", Some("limit")),
        ("limit=many", None),
        ("request_id=not-a-uuid", None),
        ("colour=red", None),
    ] {
        let response = app
            .get(
                &format!("/api/v1/notifications?{query}"),
                actors::SUPERVISOR,
            )
            .await;
        assert_eq!(response.status().as_u16(), 400, "{query}");
        let body: Value = response.json().await.expect("a structured error");
        assert!(
            body["code"].is_string() && body["message"].is_string(),
            "{body}"
        );
        if let Some(field) = field {
            assert_eq!(body["field"], field, "{query}");
        }
    }

    // The CLI lists the same dead letters.
    let binary = tests::faults::bianmin_binary();
    let output = std::process::Command::new(&binary)
        .args(["notify", "dead-letters", "--json", "--data-dir"])
        .arg(&app.config.data_dir)
        .env_remove("BIANMIN_NATS_URL")
        .env_remove("DATABASE_URL")
        .output()
        .expect("bianmin runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cli: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON");
    let mut cli_ids: Vec<&str> = cli
        .iter()
        .map(|r| r["notification_id"].as_str().unwrap())
        .collect();
    let mut api_ids: Vec<&str> = dead
        .iter()
        .map(|r| r["notification_id"].as_str().unwrap())
        .collect();
    cli_ids.sort();
    api_ids.sort();
    assert_eq!(cli_ids, api_ids);

    // Act: the gateway recovers; one is replayed over HTTP, the rest with the CLI.
    gateway.heal();
    let accepted = row(&app, &id, "request_accepted").await.unwrap();
    let accepted_id = accepted["notification_id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/notifications/{accepted_id}/replay");
    let refused = app.post(&path, actors::URBAN, &json!({})).await;
    assert_eq!(refused.status().as_u16(), 403);
    let replayed = app.post(&path, actors::SUPERVISOR, &json!({})).await;
    assert_eq!(replayed.status().as_u16(), 200);
    wait_until("the replayed acceptance sent", || async {
        row(&app, &id, "request_accepted")
            .await
            .is_some_and(|r| r["status"] == "sent")
    })
    .await;
    assert_eq!(
        row(&app, &id, "request_received").await.unwrap()["status"],
        "dead",
        "only the replayed one moved"
    );
    let output = std::process::Command::new(&binary)
        .args(["notify", "replay", "--all-dead", "--data-dir"])
        .arg(&app.config.data_dir)
        .env_remove("BIANMIN_NATS_URL")
        .env_remove("DATABASE_URL")
        .output()
        .expect("bianmin runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    wait_until("the received notice sent", || async {
        row(&app, &id, "request_received")
            .await
            .is_some_and(|r| r["status"] == "sent")
    })
    .await;

    // Assert: the gateway got each notification once more, with the same ids.
    let delivered: Vec<Value> = gateway
        .calls()
        .iter()
        .filter(|c| c.answered == 200)
        .map(|c| serde_json::from_slice(&c.body).unwrap())
        .collect();
    assert_eq!(delivered.len(), 2);
    assert!(
        delivered
            .iter()
            .any(|d| d["notification_id"] == accepted_id.as_str())
    );
    let unknown = app
        .post(
            "/api/v1/notifications/00000000-0000-0000-0000-000000000000/replay",
            actors::SUPERVISOR,
            &json!({}),
        )
        .await;
    assert_eq!(unknown.status().as_u16(), 404);
    app.teardown().await;
}

#[tokio::test]
async fn a_confidential_residents_contact_reaches_only_the_gateway() {
    // Arrange: NATS and a webhook; a confidential request referred to a department.
    let gateway = Gateway::start(Some(0)).await;
    let url = gateway.url.clone();
    let app = spawn_app_with(Store::Nats, |config| {
        fast(config);
        config.notify.webhooks = vec![webhook("sms", url, &[])];
    })
    .await;
    let mut document = intake_document(&external_id());
    document["confidential"] = json!(true);
    document["contact"] = json!({"name": "Zhou Min", "phone": "13912345678"});
    let id = intake(&app, document).await;
    ok(&app, &id, "accept", actors::STATION, json!({})).await;
    ok(
        &app,
        &id,
        "classify",
        actors::STATION,
        json!({"catalogue_item": "um-street-vending", "request_type": "complaint"}),
    )
    .await;
    ok(
        &app,
        &id,
        "refer",
        actors::STATION,
        json!({"lead_department": "urban-management"}),
    )
    .await;
    ok(&app, &id, "sign_for", actors::URBAN, json!({})).await;
    wait_until("notifications sent on both channels", || async {
        let rows = listed(&app, &id).await;
        // Receipt, acceptance and registration, each on NATS and the webhook.
        rows.len() == 6 && rows.iter().all(|r| r["status"] == "sent")
    })
    .await;

    // Act: everything a department or any API reader can see of this request.
    let mut visible = Vec::new();
    for (path, actor) in [
        (format!("/api/v1/requests/{id}"), actors::URBAN),
        (format!("/api/v1/requests/{id}/history"), actors::URBAN),
        (
            format!("/api/v1/notifications?request_id={id}"),
            actors::URBAN,
        ),
        (
            format!("/api/v1/notifications?request_id={id}"),
            actors::SUPERVISOR,
        ),
        ("/api/v1/notifications".to_string(), actors::AUDITOR),
    ] {
        let response = app.get(&path, actor).await;
        let status = response.status().as_u16();
        visible.push((path, actor, status, response.text().await.unwrap()));
    }
    let pool = sqlx::SqlitePool::connect(&app.config.projections_url())
        .await
        .unwrap();
    let stored: Vec<String> = sqlx::query_scalar("SELECT document FROM notify_deliveries")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;

    // Assert
    let (_, _, status, _) = &visible[2];
    assert_eq!(*status, 403, "departments do not list notifications");
    assert_eq!(
        visible[0].2, 200,
        "the department reads the request it signed for"
    );
    for (path, actor, _, body) in &visible {
        assert!(
            !body.contains("13912345678") && !body.contains("Zhou Min"),
            "{path} as {actor} shows contact data: {body}"
        );
    }
    assert_eq!(stored.len(), 6);
    assert!(
        stored.iter().all(|d| !d.contains("13912345678")),
        "rows hold no contact"
    );
    let published = stream_messages(&app).await;
    assert_eq!(published.len(), 3);
    for (_, _, doc) in &published {
        assert_eq!(doc["confidential"], true);
        assert!(
            doc.get("recipient").is_none(),
            "the stream carries no contact: {doc}"
        );
    }
    let hooked = gateway.calls();
    assert_eq!(hooked.len(), 3);
    assert!(
        hooked
            .iter()
            .all(|c| String::from_utf8_lossy(&c.body).contains("13912345678"))
    );
    delete_stream(&app).await;
    app.teardown().await;
}

#[tokio::test]
async fn an_erased_contact_gets_no_message_and_the_suppression_is_recorded() {
    // Arrange
    let gateway = Gateway::start(Some(0)).await;
    let url = gateway.url.clone();
    let app = spawn_app_with(Store::Sqlite, |config| {
        fast(config);
        config.notify.webhooks = vec![webhook("sms", url, &[])];
    })
    .await;
    let id = intake(&app, intake_document(&external_id())).await;
    wait_until("the receipt sent", || async {
        row(&app, &id, "request_received")
            .await
            .is_some_and(|r| r["status"] == "sent")
    })
    .await;
    let history = app.history(&id).await;
    let contact_ref: uuid::Uuid = history[0]["data"]["contact_ref"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // Act: the resident's contact is crypto-shredded, then the request is accepted.
    assert!(
        app.command_service
            .contacts()
            .erase(&ContactRef(contact_ref))
            .await
            .unwrap()
    );
    ok(&app, &id, "accept", actors::STATION, json!({})).await;
    wait_until("the acceptance recorded", || async {
        row(&app, &id, "request_accepted").await.is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Assert
    let accepted = row(&app, &id, "request_accepted").await.unwrap();
    assert_eq!(accepted["status"], "suppressed");
    assert_eq!(accepted["last_error"], "contact_erased");
    let calls = gateway.calls();
    assert_eq!(calls.len(), 1, "only the receipt, sent before the erasure");
    assert!(String::from_utf8_lossy(&calls[0].body).contains("request_received"));
    let id_of = accepted["notification_id"].as_str().unwrap();
    let replay = app
        .post(
            &format!("/api/v1/notifications/{id_of}/replay"),
            actors::SUPERVISOR,
            &json!({}),
        )
        .await;
    assert_eq!(
        replay.status().as_u16(),
        409,
        "a suppressed notification is never sent"
    );
    app.teardown().await;
}

#[test]
fn the_default_notify_settings_are_valid() {
    NotifyConfig::default().validate().unwrap();
}

#[tokio::test]
async fn a_template_file_with_an_unknown_placeholder_stops_the_engine_at_start_up() {
    // Arrange: a template set that would put the phone number into the stored text.
    let dir = tempfile::tempdir().unwrap();
    let builtin = engine_service::notify::templates::BUILTIN_TEMPLATES;
    let bad = builtin.replace("已收到，编号{ticket}", "已收到，编号{ticket}，电话{phone}");
    assert_ne!(bad, builtin, "the built-in text changed: adjust this test");
    let path = dir.path().join("templates.toml");
    std::fs::write(&path, bad).unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.notify.templates_file = Some(path);
    config.notify.webhooks = vec![webhook("sms", "http://127.0.0.1:9/notify".into(), &[])];

    // Act
    let clock = std::sync::Arc::new(engine_core::ManualClock::new(tests::app::start_time()));
    let built = engine_service::app::App::build_with_clock(
        config,
        engine_service::app::Role::Serve { supervisor: false },
        clock,
    )
    .await;

    // Assert
    let Err(error) = built else {
        panic!("the engine started with an invalid template file");
    };
    let message = error.to_string();
    assert!(
        message.contains("request_received.zh-CN") && message.contains("`{phone}`"),
        "{message}"
    );
}

#[tokio::test]
async fn the_configured_locale_renders_the_english_texts() {
    // Arrange
    let gateway = Gateway::start(Some(0)).await;
    let url = gateway.url.clone();
    let app = spawn_app_with(Store::Sqlite, |config| {
        fast(config);
        config.notify.locale = "en".into();
        config.notify.webhooks = vec![webhook("sms", url, &["request_received"])];
    })
    .await;
    let ticket = external_id();

    // Act
    let id = intake(&app, intake_document(&ticket)).await;
    wait_until("the receipt sent", || async {
        row(&app, &id, "request_received")
            .await
            .is_some_and(|r| r["status"] == "sent")
    })
    .await;

    // Assert
    let calls = gateway.calls();
    assert_eq!(calls.len(), 1);
    let doc: Value = serde_json::from_slice(&calls[0].body).unwrap();
    assert_eq!(doc["locale"], "en");
    let text = doc["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!(
            "[Bianmin] We have received your request {ticket} and will accept it by 20"
        )) && text.ends_with(" (Beijing time)."),
        "{text}"
    );
    app.teardown().await;
}

#[tokio::test]
async fn two_engines_on_one_database_send_each_notification_once() {
    // Arrange: two engines on the same log and delivery table, one webhook.
    let gateway = Gateway::start(Some(0)).await;
    let url = gateway.url.clone();
    let app = spawn_app_with(Store::Nats, |config| {
        fast(config);
        config.notify.webhooks = vec![webhook("sms", url, &[])];
    })
    .await;
    let twin = app.twin().await;

    // Act: requests through both engines.
    let mut ids = Vec::new();
    for i in 0..6 {
        let engine = if i % 2 == 0 { &app } else { &twin };
        let id = intake(engine, intake_document(&external_id())).await;
        ok(engine, &id, "accept", actors::STATION, json!({})).await;
        ids.push(id);
    }
    for id in &ids {
        let deadline = Instant::now() + SETTLE;
        loop {
            let rows = listed(&app, id).await;
            if rows.len() == 4 && rows.iter().all(|r| r["status"] == "sent") {
                break;
            }
            assert!(Instant::now() < deadline, "not all sent: {rows:#?}");
            tokio::time::sleep(POLL).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Assert: receipt and acceptance of six requests on two channels: twelve POSTs and
    // twelve stored messages, none twice.
    let mut posted: Vec<String> = gateway
        .calls()
        .iter()
        .map(|c| {
            let doc: Value = serde_json::from_slice(&c.body).unwrap();
            doc["notification_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(posted.len(), 12, "one POST per notification");
    posted.sort();
    posted.dedup();
    assert_eq!(posted.len(), 12);
    let published = stream_messages(&app).await;
    let mut ids: Vec<&str> = published.iter().map(|(id, _, _)| id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((published.len(), ids.len()), (12, 12));
    delete_stream(&app).await;
    twin.teardown_keep_store().await;
    app.teardown().await;
}

#[tokio::test]
async fn imported_history_is_not_told_to_residents() {
    // Arrange: the embedded store with a webhook, and a historical request in a CSV file.
    let gateway = Gateway::start(Some(0)).await;
    let url = gateway.url.clone();
    let app = spawn_app_with(Store::Sqlite, |config| {
        fast(config);
        config.notify.webhooks = vec![webhook("sms", url, &[])];
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.csv");
    let old = external_id();
    std::fs::write(
        &path,
        format!(
            "external_id,channel,received_at,street,community,grid,text,contact_name,\
             contact_phone,accepted_at,catalogue_item,classified_at,handling,department,\
             referred_at,signed_for_at,contacted_at,replied_at,outcome,reviewed_at,rated_at,\
             satisfaction,resolution,archived_at\n\
             {old},hotline,2026-02-02 09:12,jd-01,sq-0101,wg-010101,小区北门路灯已坏三天,王芳,\
             13700009876,2026-02-02 09:20,um-streetlight,2026-02-02 09:35,referral,\
             urban-management,2026-02-02 09:40,2026-02-02 11:00,2026-02-02 14:00,\
             2026-02-04 16:00,resolved,2026-02-04 17:00,2026-02-05 10:00,satisfied,resolved,\
             2026-02-05 10:30\n"
        ),
    )
    .unwrap();
    let service = &app.command_service;
    let importer = engine_service::import::Importer::new(
        service.log().clone(),
        service.contacts().clone(),
        std::sync::Arc::new(service.policy().clone()),
        app.clock.clone(),
        service.intake_ids().clone(),
    );

    // Act: the import, then a live request behind it in the log.
    let report = importer
        .run(&engine_service::import::ImportOptions::new(&path), None)
        .await
        .expect("the import runs");
    assert_eq!(report.imported, 1, "{report:#?}");
    let live = intake(&app, intake_document(&external_id())).await;
    wait_until("the live receipt sent", || async {
        row(&app, &live, "request_received")
            .await
            .is_some_and(|r| r["status"] == "sent")
    })
    .await;

    // Assert: nothing recorded or sent for the imported request.
    let calls = gateway.calls();
    assert_eq!(calls.len(), 1, "only the live receipt");
    assert!(!String::from_utf8_lossy(&calls[0].body).contains(&old));
    let all: Vec<Value> = app
        .get("/api/v1/notifications", actors::SUPERVISOR)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "{all:#?}");
    app.teardown().await;
}
