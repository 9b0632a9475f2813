//! Work reaches the units: a referral's dispatch, a reminder (催办), a pre-breach warning, an
//! overdue mark and an escalation each reach the right unit's signed webhook and NATS subject
//! exactly once, through the notifier's one delivery table; a unit webhook that keeps failing
//! is retried, dead-lettered and replayed with `bianmin notify replay`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use axum::http::{HeaderMap, StatusCode};
use engine_service::supervisor::{self, SupervisorState};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tests::app::{NATS_URL, Store, TestApp, actors, spawn_app_with};

use crate::e2e_supervision::in_progress;

const SECRET: &str = "unit-s3cret";

/// A loopback webhook recording the documents it accepted (verified signature); it answers
/// 503 while `failing`.
#[derive(Clone)]
pub(crate) struct Hook {
    pub(crate) url: String,
    pub(crate) accepted: Arc<Mutex<Vec<Value>>>,
    refused: Arc<Mutex<usize>>,
    failing: Arc<Mutex<bool>>,
}

impl Hook {
    pub(crate) async fn start(failing: bool) -> Hook {
        let hook = Hook {
            url: String::new(),
            accepted: Arc::default(),
            refused: Arc::default(),
            failing: Arc::new(Mutex::new(failing)),
        };
        let state = hook.clone();
        let router = axum::Router::new().route(
            "/unit",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    if *state.failing.lock().unwrap() {
                        *state.refused.lock().unwrap() += 1;
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
                    mac.update(&body);
                    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                    let signed = headers
                        .get("x-bianmin-signature")
                        .and_then(|v| v.to_str().ok());
                    if signed != Some(expected.as_str()) {
                        return StatusCode::UNAUTHORIZED;
                    }
                    let doc: Value = serde_json::from_slice(&body).expect("a JSON document");
                    state.accepted.lock().unwrap().push(doc);
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/unit", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Hook { url, ..hook }
    }

    /// Kinds accepted, counted.
    pub(crate) fn kinds(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for doc in self.accepted.lock().unwrap().iter() {
            *out.entry(doc["kind"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        out
    }
}

pub(crate) async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The unit rows of `request_id` as the supervisor lists them.
async fn unit_rows(app: &TestApp, request_id: &str) -> Vec<Value> {
    let path = format!("/api/v1/notifications?request_id={request_id}&limit=1000");
    let rows: Vec<Value> = app
        .get(&path, actors::SUPERVISOR)
        .await
        .json()
        .await
        .unwrap();
    rows.into_iter()
        .filter(|r| r["recipient"].is_string())
        .collect()
}

/// Every message of the app's unit stream: (subject, document).
pub(crate) async fn unit_messages(app: &TestApp) -> Vec<(String, Value)> {
    let js = jetstream::new(async_nats::connect(NATS_URL).await.expect("nats"));
    let Ok(mut stream) = js.get_stream(app.names().units_stream()).await else {
        return Vec::new();
    };
    let info = stream.info().await.expect("stream info").clone();
    let mut out = Vec::new();
    for seq in info.state.first_sequence.max(1)..=info.state.last_sequence {
        if let Ok(message) = stream.get_raw_message(seq).await {
            let doc = serde_json::from_slice(&message.payload).expect("a JSON document");
            out.push((message.subject.to_string(), doc));
        }
    }
    out
}

fn channels_file(
    dir: &std::path::Path,
    lead: &Hook,
    backup: &Hook,
    street: &Hook,
) -> std::path::PathBuf {
    let hook = |unit: &str, name: &str, url: &str| {
        format!(
            "[[units]]\nunit = \"{unit}\"\n[[units.webhooks]]\nname = \"{name}\"\nurl = \"{url}\"\nsecret = \"units\"\n"
        )
    };
    let text = format!(
        "version = \"test-1\"\nnats_all = true\n{}{}{}",
        hook("department:urban-management", "um-dispatch", &lead.url),
        hook("department:urban-management", "um-backup", &backup.url),
        hook("level:street", "street-office", &street.url),
    );
    let path = dir.join("channels.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn dispatch_and_supervision_reach_the_right_units_once_and_a_failing_unit_webhook_is_replayed()
 {
    // Arrange: the lead department has a healthy and a failing webhook, the street office one.
    let (lead, backup, street) = (
        Hook::start(false).await,
        Hook::start(true).await,
        Hook::start(false).await,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = channels_file(dir.path(), &lead, &backup, &street);
    let app = spawn_app_with(Store::Nats, |config| {
        config.notify.poll_interval_ms = 50;
        config.notify.retry_initial_ms = 50;
        config.notify.retry_max_ms = 200;
        config.notify.max_attempts = 3;
        config.notify.channels_file = Some(path);
        config.notify.channel_secrets = BTreeMap::from([("units".into(), SECRET.into())]);
    })
    .await;

    // The channels in force are recorded as reference data.
    let recorded = engine_service::audit::reference::history(app.command_service.log())
        .await
        .expect("reference history");
    assert!(
        recorded.iter().any(
            |r| r.recorded.kind == schemas::event::ReferenceKind::UnitChannels
                && r.recorded.version == "test-1"
        ),
        "{recorded:?}"
    );

    // Act: referred, signed for and in handling; then the supervisor runs long past the
    // completion deadline.
    let id = in_progress(&app).await;
    let deadlines = app
        .history(&id)
        .await
        .into_iter()
        .find(|e| e["type"] == "request_classified")
        .map(|e| e["data"]["deadlines"].clone())
        .expect("classified");
    let due: chrono::DateTime<chrono::Utc> = deadlines["completion_due_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let late = due + chrono::Duration::days(10);
    app.clock.set(late);
    let mut state = SupervisorState::new();
    supervisor::tick(&app.command_service, &mut state, late)
        .await
        .expect("tick");

    // Assert: each kind reached the lead's webhook once, the escalation to the street the
    // street office's, all signed and addressed.
    let once = |kinds: &[&str]| {
        kinds
            .iter()
            .map(|k| (k.to_string(), 1))
            .collect::<BTreeMap<_, _>>()
    };
    let lead_kinds = once(&["dispatch", "overdue", "pre_breach_warning", "reminder"]);
    wait_until("the lead's webhook has every kind", || async {
        lead.kinds() == lead_kinds
    })
    .await;
    wait_until("the street office has the escalation", || async {
        street.kinds() == once(&["escalation"])
    })
    .await;
    for doc in lead.accepted.lock().unwrap().iter() {
        assert_eq!(doc["unit"], "department:urban-management", "{doc}");
        assert_eq!(doc["request_id"], id.as_str());
        assert!(doc.get("recipient").is_none(), "no resident contact: {doc}");
    }
    let escalation = street.accepted.lock().unwrap()[0].clone();
    assert_eq!(escalation["unit"], "level:street");
    assert!(
        escalation["text"].as_str().unwrap().contains("daily"),
        "{escalation}"
    );

    // … and the NATS subjects, once each.
    let prefix = app.config.nats.subject_prefix.clone();
    let expected: BTreeMap<String, usize> = [
        "department.urban-management.dispatch",
        "department.urban-management.reminder",
        "department.urban-management.pre_breach_warning",
        "department.urban-management.overdue",
        "level.street.escalation",
        "level.district.escalation",
    ]
    .iter()
    .map(|s| {
        (
            format!("{prefix}.units.{s}"),
            if s.starts_with("level.district") {
                2
            } else {
                1
            },
        )
    })
    .collect();
    wait_until("every unit subject", || async {
        let mut got = BTreeMap::new();
        for (subject, _) in unit_messages(&app).await {
            *got.entry(subject).or_insert(0) += 1;
        }
        got == expected
    })
    .await;

    // The failing webhook: retried, then dead.
    wait_until("the backup webhook's rows dead", || async {
        let rows = unit_rows(&app, &id).await;
        let backup: Vec<&Value> = rows
            .iter()
            .filter(|r| r["channel"] == "unit-webhook:um-backup")
            .collect();
        backup.len() == 4
            && backup
                .iter()
                .all(|r| r["status"] == "dead" && r["attempts"] == 3)
    })
    .await;
    assert_eq!(
        *backup.refused.lock().unwrap(),
        12,
        "3 attempts for each of 4 notifications"
    );

    // A restart sends nothing twice.
    let app = app.restart().await;
    supervisor::tick(&app.command_service, &mut SupervisorState::new(), late)
        .await
        .expect("tick");

    // Replay with the CLI once the webhook is back.
    *backup.failing.lock().unwrap() = false;
    let output = std::process::Command::new(tests::faults::bianmin_binary())
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
    wait_until("the replayed notifications sent", || async {
        backup.kinds() == lead_kinds
    })
    .await;
    // 4 kinds × (2 webhooks + NATS) for the lead, 1 × 2 for the street, 2 × NATS for the district.
    wait_until("every unit row sent", || async {
        let rows = unit_rows(&app, &id).await;
        rows.len() == 16 && rows.iter().all(|r| r["status"] == "sent")
    })
    .await;
    assert_eq!(lead.kinds(), lead_kinds, "nothing sent twice");
    assert_eq!(street.kinds(), once(&["escalation"]));
    let js = jetstream::new(async_nats::connect(NATS_URL).await.unwrap());
    let _ = js.delete_stream(app.names().units_stream()).await;
    app.teardown().await;
}
