//! The report-upward link against the shared nats-server: upward reports are published with
//! their report ids, feedback arrives by request-reply and acknowledgements by message, both
//! recorded on the request; delivery is tracked; and `upward replay` re-publishes exactly the
//! recorded sequence (ids, order, subjects), which a test subscriber compares.

use std::time::Duration;

use engine_core::Clock;
use engine_service::upward::{self, CancellationToken, Outbound, UpwardConfig};
use futures::StreamExt;
use schemas::{Event, RequestId, Role, Timestamp, UpwardLevel};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::{Rig, nats, supervisor, unique};

/// Collects `n` messages from `sub` (subject, message id, body), failing after 10 s.
async fn collect(sub: &mut async_nats::Subscriber, n: usize) -> Vec<(String, String, Outbound)> {
    let mut out = Vec::new();
    while out.len() < n {
        let message = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "only {} of {n} upward messages within 10 s: {out:?}",
                    out.len()
                )
            })
            .expect("subscription open");
        // Inbound traffic (feedback requests, acks) shares the prefix; only outbound counts.
        let subject = message.subject.as_str();
        if !subject.contains(".upward.reports.") && !subject.contains(".upward.feedback_log.") {
            continue;
        }
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        let body: Outbound = serde_json::from_slice(&message.payload).expect("outbound json");
        out.push((message.subject.to_string(), id, body));
    }
    out
}

/// Checks that `reply` is the NATS error reply `{"error": {code, …}}` with `code` in its
/// `Bianmin-Error` header.
fn assert_error_reply(reply: &async_nats::Message, code: &str) {
    let header = reply
        .headers
        .as_ref()
        .and_then(|h| h.get("Bianmin-Error"))
        .map(|v| v.as_str().to_string());
    let document: engine_service::nats::ErrorDocument = serde_json::from_slice(&reply.payload)
        .unwrap_or_else(|e| panic!("not the error reply ({e}): {:?}", reply.payload));
    assert_eq!(document.error.code, code, "{document:?}");
    assert_eq!(header.as_deref(), Some(code));
}

/// Polls until `check` holds, failing after 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn report_ids(rig: &Rig, id: RequestId) -> Vec<Uuid> {
    rig.events(id)
        .await
        .iter()
        .filter_map(|e| match &e.event {
            Event::ReportedUpward(r) => Some(r.report_id),
            _ => None,
        })
        .collect()
}

async fn classified(rig: &Rig, external: &str) -> RequestId {
    let id = rig.receive(external).await;
    assert!(rig.run(id, supervisor(), json!({"action": "accept"})).await);
    assert!(rig.run(id, supervisor(), json!({"action": "classify", "catalogue_item": "um-streetlight", "request_type": "help"})).await);
    assert!(
        rig.run(id, supervisor(), json!({"action": "handle_directly"}))
            .await
    );
    id
}

#[tokio::test]
async fn reports_feedback_and_acks_flow_and_replay_republishes_the_recorded_sequence() {
    let client = nats().await;
    let id = unique();
    let cfg = UpwardConfig {
        names: schemas::Names::for_prefix(&format!("tup{id}")).expect("valid names"),
        ..UpwardConfig::default()
    };
    let mut live = client
        .subscribe(format!("{}.upward.>", cfg.names.prefix()))
        .await
        .expect("subscribe");
    client.flush().await.expect("flush");

    let start: Timestamp = "2026-03-02T02:00:00Z".parse().expect("instant");
    let rig = Rig::sqlite(start).await;
    // One report recorded before the link runs: it is published when the link starts.
    let a = classified(&rig, "UP-A").await;
    assert!(
        rig.run(
            a,
            supervisor(),
            json!({"action": "report_upward", "level": "district", "summary": "需区级协调"})
        )
        .await
    );

    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let (service, client, cfg, shutdown) = (
            rig.service.clone(),
            client.clone(),
            cfg.clone(),
            shutdown.clone(),
        );
        async move { upward::run(service, client, cfg, shutdown).await }
    });

    rig.clock.advance(chrono::Duration::hours(1));
    let b = classified(&rig, "UP-B").await;
    assert!(
        rig.run(
            b,
            supervisor(),
            json!({"action": "report_upward", "level": "street", "summary": "街道协调"})
        )
        .await
    );
    assert!(
        rig.run(
            b,
            supervisor(),
            json!({"action": "report_upward", "level": "district", "summary": "再报区级"})
        )
        .await
    );

    let reports = collect(&mut live, 3).await;
    let a_reports = report_ids(&rig, a).await;
    let b_reports = report_ids(&rig, b).await;
    let expected: Vec<String> = a_reports
        .iter()
        .chain(&b_reports)
        .map(Uuid::to_string)
        .collect();
    assert_eq!(
        reports.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
        expected,
        "published in log order with report ids"
    );
    assert_eq!(
        reports[1].0,
        format!("{}.upward.reports.street", cfg.names.prefix())
    );

    // Feedback from the higher level, by request-reply.
    let feedback = json!({"request_id": a, "report_id": a_reports[0], "kind": "instruction", "content": "请街道牵头处理", "message_id": "F-1"});
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(
            cfg.names.upward_feedback_subject(),
            feedback.to_string().into(),
        ),
    )
    .await
    .expect("a reply within 10 s")
    .expect("a reply");
    let body: Value = serde_json::from_slice(&reply.payload).expect("json reply");
    assert_eq!(body["request_id"], json!(a), "{body}");
    assert_eq!(body["duplicate"], json!(false), "{body}");
    // The same document again (same sender message id) is recorded once.
    let again = client
        .request(
            cfg.names.upward_feedback_subject(),
            feedback.to_string().into(),
        )
        .await
        .expect("reply");
    let again: Value = serde_json::from_slice(&again.payload).expect("json");
    assert_eq!(again["duplicate"], json!(true), "{again}");
    // A feedback on an unknown report is refused with an error body.
    let unknown =
        json!({"request_id": a, "report_id": Uuid::now_v7(), "kind": "decision", "content": "x"});
    let refused = client
        .request(
            cfg.names.upward_feedback_subject(),
            unknown.to_string().into(),
        )
        .await
        .expect("reply");
    assert_error_reply(&refused, "unknown_reference");
    // A malformed one too, wrapped the same way as every other NATS error.
    let malformed = client
        .request(cfg.names.upward_feedback_subject(), "{\"kind\": 1}".into())
        .await
        .expect("reply");
    assert_error_reply(&malformed, "malformed");
    let feedback_b =
        json!({"request_id": b, "report_id": b_reports[0], "kind": "decision", "content": "同意"});
    let reply = client
        .request(
            cfg.names.upward_feedback_subject(),
            feedback_b.to_string().into(),
        )
        .await
        .expect("reply");
    assert!(
        reply
            .headers
            .as_ref()
            .and_then(|h| h.get("Bianmin-Error"))
            .is_none(),
        "{:?}",
        reply.payload
    );

    // The recorded feedback goes out on the feedback log, with the feedback event ids.
    let feedback_out = collect(&mut live, 2).await;
    let mut all_events = rig.events(a).await;
    all_events.extend(rig.events(b).await);
    let feedback_events: Vec<String> = all_events
        .into_iter()
        .filter(|e| matches!(e.event, Event::UpwardFeedbackReceived(_)))
        .map(|e| e.event_id.to_string())
        .collect();
    let mut got: Vec<String> = feedback_out.iter().map(|f| f.1.clone()).collect();
    got.sort();
    let mut want = feedback_events.clone();
    want.sort();
    assert_eq!(got, want);
    let recorded_by = rig
        .events(a)
        .await
        .into_iter()
        .find(|e| matches!(e.event, Event::UpwardFeedbackReceived(_)))
        .expect("feedback")
        .actor;
    assert_eq!(recorded_by.role, Role::HigherLevel);

    // The higher level acknowledges one report; delivery shows it.
    client
        .publish(
            cfg.names.upward_ack_subject(),
            json!({"report_id": b_reports[1]}).to_string().into(),
        )
        .await
        .expect("ack");
    eventually("the acknowledgement to be recorded", || async {
        rig.events(b).await.iter().any(
            |e| matches!(&e.event, Event::UpwardAcknowledged(x) if x.report_id == b_reports[1]),
        )
    })
    .await;
    // Sent as a request, an acknowledgement is answered: a second one as a duplicate, one of
    // a report never sent upward and a malformed one with the error reply.
    let ack = |document: Value| {
        let client = client.clone();
        let subject = cfg.names.upward_ack_subject();
        async move {
            tokio::time::timeout(
                Duration::from_secs(10),
                client.request(subject, document.to_string().into()),
            )
            .await
            .expect("upward.ack answers a request within 10 s")
            .expect("a reply")
        }
    };
    let again = ack(json!({"report_id": b_reports[1]})).await;
    let again: upward::AckReply = serde_json::from_slice(&again.payload).expect("an AckReply");
    assert_eq!(
        again,
        upward::AckReply {
            request_id: b,
            report_id: b_reports[1],
            duplicate: true
        }
    );
    assert_error_reply(
        &ack(json!({"report_id": Uuid::now_v7()})).await,
        "not_found",
    );
    assert_error_reply(&ack(json!({"report": 1})).await, "malformed");
    let stream = upward::ensure_stream(&client, &cfg).await.expect("stream");
    let through = upward::sent_through(&stream).await.expect("sent through");
    let deliveries = upward::deliveries(rig.log(), through)
        .await
        .expect("deliveries");
    assert_eq!(deliveries.len(), 3);
    assert!(deliveries.iter().all(|d| d.sent), "{deliveries:?}");
    assert_eq!(
        deliveries
            .iter()
            .filter(|d| d.acknowledged)
            .map(|d| d.report_id)
            .collect::<Vec<_>>(),
        vec![b_reports[1]]
    );

    shutdown.cancel();
    task.await.expect("task").expect("the link ends cleanly");
    let live_ids: Vec<String> = reports
        .iter()
        .chain(&feedback_out)
        .map(|m| m.1.clone())
        .collect();

    // Replay: a receiver that lost everything gets exactly the recorded sequence again.
    let recorded = upward::recorded_messages(rig.log(), start, None)
        .await
        .expect("recorded");
    assert_eq!(recorded.len(), 5);
    let mut receiver = client
        .subscribe(format!("{}.upward.>", cfg.names.prefix()))
        .await
        .expect("subscribe");
    client.flush().await.expect("flush");
    let published = upward::replay(rig.log(), &client, &cfg, start, None)
        .await
        .expect("replay");
    let replayed = collect(&mut receiver, published.len()).await;
    let expected: Vec<(String, String, Outbound)> = recorded
        .iter()
        .map(|(_, m)| (m.subject(&cfg), m.message_id().to_string(), m.clone()))
        .collect();
    assert_eq!(
        replayed, expected,
        "original order, ids, subjects and bodies"
    );
    let mut sorted_live = live_ids.clone();
    sorted_live.sort();
    let mut sorted_replayed: Vec<String> = replayed.iter().map(|m| m.1.clone()).collect();
    sorted_replayed.sort();
    assert_eq!(
        sorted_replayed, sorted_live,
        "the same ids as first published"
    );

    // By level and since a time.
    let street = upward::replay(rig.log(), &client, &cfg, start, Some(UpwardLevel::Street))
        .await
        .expect("replay street");
    let street_in = collect(&mut receiver, street.len()).await;
    let street_ids: Vec<String> = street_in.iter().map(|m| m.1.clone()).collect();
    let want: Vec<String> = recorded
        .iter()
        .filter(|(_, m)| m.level() == UpwardLevel::Street)
        .map(|(_, m)| m.message_id().to_string())
        .collect();
    assert_eq!(street_ids, want);
    // The street report and the decision recorded on it.
    assert_eq!(street_ids.len(), 2);
    assert_eq!(street_ids[0], b_reports[0].to_string());
    let later = upward::replay(
        rig.log(),
        &client,
        &cfg,
        rig.clock.now() + chrono::Duration::seconds(1),
        None,
    )
    .await
    .expect("replay");
    assert!(later.is_empty());
    // Replayed messages do not move where the live publisher resumes.
    assert_eq!(
        upward::sent_through(&stream).await.expect("sent through"),
        through
    );

    let js = async_nats::jetstream::new(client.clone());
    let _ = js.delete_stream(&cfg.names.upward_stream()).await;
}
