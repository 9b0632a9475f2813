//! Graceful shutdown under load: a burst of intakes and commands is in flight when the app is
//! told to stop; every request that got a 2xx answer is in the event log at the answered
//! version, the app stops within its drain timeout, and nothing is served afterwards. On the
//! SQLite store and on JetStream.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use schemas::RequestId;
use serde_json::{Value, json};
use tests::app::{Store, actors, external_id, intake_document, spawn_app_with};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Concurrent clients in the burst.
const CLIENTS: usize = 48;
/// Answers received before the stop is triggered.
const STOP_AFTER: usize = 6;
/// The drain timeout the app runs with.
const DRAIN_MS: u64 = 3_000;

/// What one client got: each answered step as (request id, action, version answered).
type Answered = Vec<(String, &'static str, u64)>;

/// One client: intake, then accept and classify, stopping at the first failure or non-2xx.
async fn client_run(
    client: reqwest::Client,
    address: String,
    answered: Arc<AtomicUsize>,
    first_answers: Arc<Notify>,
) -> Answered {
    let mut got = Vec::new();
    let mut record = |id: &str, action: &'static str, body: &Value| {
        let version = body["version"].as_u64().expect("a version");
        got.push((id.to_string(), action, version));
        if answered.fetch_add(1, Ordering::SeqCst) + 1 == STOP_AFTER {
            first_answers.notify_one();
        }
    };
    let Ok(response) = client
        .post(format!("{address}/api/v1/requests"))
        .header("X-Bianmin-Actor", actors::INTAKE)
        .json(&intake_document(&external_id()))
        .send()
        .await
    else {
        return got;
    };
    if !response.status().is_success() {
        return got;
    }
    let Ok(body) = response.json::<Value>().await else {
        return got;
    };
    let id = body["request_id"].as_str().expect("request id").to_string();
    record(&id, "intake", &body);
    for (action, command) in [
        ("accept", json!({})),
        (
            "classify",
            json!({"catalogue_item": "um-street-vending", "request_type": "complaint"}),
        ),
    ] {
        let Ok(response) = client
            .post(format!("{address}/api/v1/requests/{id}/{action}"))
            .header("X-Bianmin-Actor", actors::STATION)
            .json(&command)
            .send()
            .await
        else {
            return got;
        };
        if !response.status().is_success() {
            return got;
        }
        let Ok(body) = response.json::<Value>().await else {
            return got;
        };
        record(&id, action, &body);
    }
    got
}

async fn answered_commands_survive_a_graceful_shutdown(store: Store) {
    let mut app = spawn_app_with(store, |config| {
        config.http.drain_timeout_ms = DRAIN_MS;
    })
    .await;
    let answered = Arc::new(AtomicUsize::new(0));
    let first_answers = Arc::new(Notify::new());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            tokio::spawn(client_run(
                reqwest::Client::new(),
                app.address.clone(),
                answered.clone(),
                first_answers.clone(),
            ))
        })
        .collect();

    // Stop once the first answers are back, with the rest of the burst in flight.
    tokio::time::timeout(Duration::from_secs(10), first_answers.notified())
        .await
        .expect("the first answers arrive");
    let stopping = Instant::now();
    app.stop().await;
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_millis(DRAIN_MS + 2_000),
        "stopped in {took:?}, drain timeout {DRAIN_MS} ms"
    );

    let mut all: Answered = Vec::new();
    for client in clients {
        all.extend(
            tokio::time::timeout(Duration::from_secs(15), client)
                .await
                .expect("every client finishes")
                .expect("no panic"),
        );
    }
    assert!(all.len() >= STOP_AFTER, "{} answered", all.len());
    assert!(
        all.len() < CLIENTS * 3,
        "the stop came while the burst was in flight (all {} steps were answered)",
        all.len()
    );

    // Nothing is served any more.
    let after = reqwest::Client::new()
        .get(format!("{}/healthz", app.address))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(after.is_err(), "still serving after the stop: {after:?}");

    // Every answered step is in the log, at the version it was answered with.
    let log_types = |events: &[schemas::EventEnvelope]| -> Vec<(String, u64)> {
        events
            .iter()
            .map(|e| (format!("{:?}", e.event.kind()), e.version))
            .collect()
    };
    for (id, action, version) in &all {
        let request: RequestId = id.parse().expect("uuid");
        let history = app
            .command_service
            .history(request)
            .await
            .expect("the log reads after the stop");
        let expected = match *action {
            "intake" => "RequestReceived",
            "accept" => "RequestAccepted",
            _ => "RequestClassified",
        };
        assert!(
            history
                .iter()
                .any(|e| e.version == *version && format!("{:?}", e.event.kind()) == expected),
            "{action} of {id} answered at version {version}, log has {:?}",
            log_types(&history)
        );
    }
    let received = all.iter().filter(|a| a.1 == "intake").count() as u64;
    assert!(app.log_length().await >= all.len() as u64);
    assert!(app.log_length().await >= received);
    app.teardown().await;
}

tests::on_both_stores!(answered_commands_survive_a_graceful_shutdown);
