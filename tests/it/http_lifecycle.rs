//! A request's whole life through the HTTP API, on both stores: intake, accept, classify,
//! refer, sign for, contact, start handling, reply, review, rate, archive. Checks every answer,
//! the dense versions, the hash chain, the read permissions, and that the contact data is in
//! the contact store and not in any event.

use engine_service::contacts::StoredContact;
use schemas::ContactRef;
use serde_json::{Value, json};
use tests::app::{Store, actors, external_id, intake_document, spawn_app};

tests::on_both_stores!(lifecycle);

async fn lifecycle(store: Store) {
    // Arrange
    let app = spawn_app(store).await;
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["created"], true);
    assert_eq!(created["version"], 1);
    let id = created["request_id"]
        .as_str()
        .expect("request id")
        .to_string();

    // Act: every step, each by the actor the workflow names.
    let steps: Vec<(&str, &str, Value, &str)> = vec![
        ("accept", actors::STATION, json!({}), "request_accepted"),
        (
            "classify",
            actors::STATION,
            json!({"catalogue_item": "um-street-vending", "request_type": "complaint"}),
            "request_classified",
        ),
        (
            "refer",
            actors::STATION,
            json!({"lead_department": "urban-management"}),
            "referred_to_department",
        ),
        ("sign_for", actors::URBAN, json!({}), "referral_signed_for"),
        (
            "contact_resident",
            actors::URBAN,
            json!({"method": "phone"}),
            "resident_contacted",
        ),
        (
            "start_handling",
            actors::URBAN,
            json!({}),
            "handling_started",
        ),
        (
            "reply",
            actors::URBAN,
            json!({"outcome": "resolved", "content": "Vendors moved to the night market lot."}),
            "result_replied",
        ),
        (
            "review_reply",
            actors::SUPERVISOR,
            json!({"approved": true}),
            "reply_reviewed",
        ),
        (
            "rate",
            actors::STATION,
            json!({"satisfaction": "satisfied", "resolution": "resolved"}),
            "rated",
        ),
        ("archive", actors::STATION, json!({}), "archived"),
    ];
    let mut version = 1;
    for (action, actor, body, expected_event) in steps {
        app.clock.advance(chrono::Duration::minutes(30));
        let (status, answer) = app.command(&id, action, actor, &body).await;
        assert_eq!(status, 200, "{action}: {answer}");
        let events = answer["events"].as_array().expect("events");
        assert!(
            events.iter().any(|e| e["type"] == expected_event),
            "{action} recorded {expected_event}: {answer}"
        );
        let new_version = answer["version"].as_u64().expect("version");
        assert_eq!(
            new_version,
            version + events.len() as u64,
            "{action}: versions are dense"
        );
        version = new_version;
    }

    // Assert: the state, the history and its chain.
    let response = app
        .get(&format!("/api/v1/requests/{id}"), actors::AUDITOR)
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let state: Value = response.json().await.expect("json");
    assert_eq!(state["version"], version);
    assert_eq!(state["stage"], "archived", "{state}");

    let history = app.history(&id).await;
    assert_eq!(history.len() as u64, version);
    let mut prev = schemas::envelope::GENESIS_HASH.to_string();
    for (i, event) in history.iter().enumerate() {
        assert_eq!(event["version"], i as u64 + 1);
        assert_eq!(event["prev_hash"], prev.as_str(), "chain at {}", i + 1);
        prev = event["hash"].as_str().expect("hash").to_string();
    }
    let serialized = serde_json::to_string(&history).expect("json");
    assert!(
        !serialized.contains("13800001111"),
        "contact data never enters an event"
    );
    assert!(
        !serialized.contains("Wang Fang"),
        "contact data never enters an event"
    );

    // The contact is in the contact store, under the reference the event names.
    let contact_ref = history[0]["data"]["contact_ref"]
        .as_str()
        .expect("contact ref");
    let contact_ref = ContactRef(contact_ref.parse().expect("uuid"));
    let stored = app
        .command_service
        .contacts()
        .get(&contact_ref)
        .await
        .expect("store answers");
    match stored {
        Some(StoredContact::Present(contact)) => {
            assert_eq!(contact.phone.as_deref(), Some("13800001111"))
        }
        other => panic!("contact not stored: {other:?}"),
    }

    // Reads: the referred department may read, another department and dashboards may not.
    let path = format!("/api/v1/requests/{id}");
    assert_eq!(app.get(&path, actors::URBAN).await.status().as_u16(), 200);
    assert_eq!(app.get(&path, actors::WATER).await.status().as_u16(), 403);
    assert_eq!(
        app.get(&path, actors::DASHBOARD).await.status().as_u16(),
        403
    );
    let anonymous = app
        .client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(anonymous.status().as_u16(), 401);

    // Health, readiness and metrics answer.
    assert_eq!(
        app.get("/healthz", actors::AUDITOR).await.status().as_u16(),
        200
    );
    assert_eq!(
        app.get("/readyz", actors::AUDITOR).await.status().as_u16(),
        200
    );
    let metrics = app
        .get("/metrics", actors::AUDITOR)
        .await
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("bianmin_commands_total{command=\"archive\",outcome=\"applied\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("bianmin_intake_total{channel=\"hotline\",outcome=\"created\"} 1"));
    app.teardown().await;
}
