//! The residents' status lookup, `POST /api/v1/lookup`, on both stores: the right ticket and
//! check answer the stage and the expected date (and the reply once replied); a wrong check,
//! an unknown ticket, an anonymous request and an erased contact get the identical 404; bad input is 400 with
//! the field; past the per-peer limit the answer is 429 before anything is read.

use engine_service::ratelimit::RateLimitConfig;
use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, intake_document, spawn_app_with};

/// The phone of `intake_document` is 13800001111.
const CHECK: &str = "1111";

async fn lookup(app: &TestApp, body: Value) -> (u16, Value) {
    // No credentials: the route is open to residents.
    let response = app
        .client
        .post(format!("{}/api/v1/lookup", app.address))
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

async fn app_with_limit(store: Store, per_second: f64, burst: u32) -> TestApp {
    spawn_app_with(store, |config| {
        config.http.lookup_rate_limit = RateLimitConfig {
            per_second,
            burst,
            max_clients: 100,
        };
    })
    .await
}

async fn ok(app: &TestApp, id: &str, action: &str, actor: &str, body: Value) -> Value {
    let (status, answer) = app.command(id, action, actor, &body).await;
    assert_eq!(status, 200, "{action}: {answer}");
    answer
}

async fn right_ticket_and_check(store: Store) {
    // Arrange
    let app = app_with_limit(store, 1000.0, 1000).await;
    let ticket = external_id();
    let (status, created) = app.intake(&intake_document(&ticket)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().unwrap().to_string();

    // Act + Assert: received, with the acceptance limit; the channel may be left out.
    let (status, received) = lookup(
        &app,
        json!({"channel": "hotline", "external_id": ticket, "phone_last4": CHECK}),
    )
    .await;
    assert_eq!(status, 200, "{received}");
    assert_eq!(received["status"], "received");
    assert_eq!(received["status_text"], "已接收");
    assert_eq!(received["expected"], "acceptance");
    let history = app.history(&id).await;
    let accept_due: chrono::DateTime<chrono::Utc> = history[0]["data"]["accept_due_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let beijing = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let local = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&beijing)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    assert_eq!(received["expected_at"], local(accept_due));
    assert!(received.get("reply").is_none());
    let (status, without_channel) =
        lookup(&app, json!({"external_id": ticket, "phone_last4": CHECK})).await;
    assert_eq!(status, 200);
    assert_eq!(without_channel, received);

    // Handled: the completion deadline in force; replied: the reply's text.
    ok(&app, &id, "accept", actors::STATION, json!({})).await;
    let classified = ok(
        &app,
        &id,
        "classify",
        actors::STATION,
        json!({"catalogue_item": "um-street-vending", "request_type": "complaint"}),
    )
    .await;
    let completion: chrono::DateTime<chrono::Utc> = classified["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "request_classified")
        .expect("classified")["data"]["deadlines"]["completion_due_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    ok(
        &app,
        &id,
        "refer",
        actors::STATION,
        json!({"lead_department": "urban-management"}),
    )
    .await;
    let (_, handled) = lookup(&app, json!({"external_id": ticket, "phone_last4": CHECK})).await;
    assert_eq!(handled["status"], "in_progress", "{handled}");
    assert_eq!(handled["expected"], "completion");
    assert_eq!(handled["expected_at"], local(completion));
    ok(&app, &id, "sign_for", actors::URBAN, json!({})).await;
    ok(
        &app,
        &id,
        "contact_resident",
        actors::URBAN,
        json!({"method": "phone"}),
    )
    .await;
    ok(&app, &id, "start_handling", actors::URBAN, json!({})).await;
    ok(
        &app,
        &id,
        "reply",
        actors::URBAN,
        json!({"outcome": "resolved", "content": "摊贩已迁入夜市规划区域。"}),
    )
    .await;
    let (_, replied) = lookup(&app, json!({"external_id": ticket, "phone_last4": CHECK})).await;
    assert_eq!(replied["status"], "replied", "{replied}");
    assert_eq!(replied["reply"], "摊贩已迁入夜市规划区域。");
    assert!(replied.get("expected_at").is_none());
    let text = replied.to_string();
    assert!(
        !text.contains("13800001111") && !text.contains("Wang Fang") && !text.contains(&id),
        "only public facts: {text}"
    );
    app.teardown().await;
}

tests::on_both_stores!(right_ticket_and_check);

#[tokio::test]
async fn a_wrong_check_an_unknown_ticket_an_anonymous_request_and_an_erased_contact_look_alike() {
    // Arrange
    let app = app_with_limit(Store::Sqlite, 1000.0, 1000).await;
    let ticket = external_id();
    let (status, _) = app.intake(&intake_document(&ticket)).await;
    assert_eq!(status, 201);
    let anonymous_ticket = external_id();
    let mut anonymous = intake_document(&anonymous_ticket);
    anonymous["anonymous"] = json!(true);
    let (status, _) = app.intake(&anonymous).await;
    assert_eq!(status, 201);
    let erased_ticket = external_id();
    let (status, created) = app.intake(&intake_document(&erased_ticket)).await;
    assert_eq!(status, 201);
    let erased_id = created["request_id"].as_str().unwrap().to_string();
    let reference: uuid::Uuid = app.history(&erased_id).await[0]["data"]["contact_ref"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("a contact reference");
    let erased_before = lookup(
        &app,
        json!({"external_id": erased_ticket, "phone_last4": CHECK}),
    )
    .await;
    assert_eq!(erased_before.0, 200, "found before the erasure");
    assert!(
        app.command_service
            .contacts()
            .erase(&schemas::ContactRef(reference))
            .await
            .expect("erase")
    );

    // Act
    let wrong_check = lookup(&app, json!({"external_id": ticket, "phone_last4": "0000"})).await;
    let wrong_channel = lookup(
        &app,
        json!({"channel": "window", "external_id": ticket, "phone_last4": CHECK}),
    )
    .await;
    let unknown = lookup(
        &app,
        json!({"external_id": external_id(), "phone_last4": CHECK}),
    )
    .await;
    let anonymous = lookup(
        &app,
        json!({"external_id": anonymous_ticket, "phone_last4": CHECK}),
    )
    .await;
    let erased = lookup(
        &app,
        json!({"external_id": erased_ticket, "phone_last4": CHECK}),
    )
    .await;

    // Assert: one answer for every miss.
    assert_eq!(wrong_check.0, 404);
    assert_eq!(wrong_check.1["code"], "not_found");
    for other in [&wrong_channel, &unknown, &anonymous, &erased] {
        assert_eq!(other, &wrong_check);
    }
    // Bad input names the field.
    for (body, field) in [
        (
            json!({"external_id": ticket, "phone_last4": "11a1"}),
            "phone_last4",
        ),
        (
            json!({"external_id": ticket, "phone_last4": "111"}),
            "phone_last4",
        ),
        (
            json!({"external_id": " ", "phone_last4": CHECK}),
            "external_id",
        ),
    ] {
        let (status, error) = lookup(&app, body).await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["code"], "invalid_field");
        assert_eq!(error["field"], field);
    }
    app.teardown().await;
}

#[tokio::test]
async fn past_the_peer_limit_lookups_are_429_whatever_the_headers() {
    // Arrange: three at once, then one an hour.
    let app = app_with_limit(Store::Sqlite, 1.0 / 3600.0, 3).await;
    let ticket = external_id();
    let (status, _) = app.intake(&intake_document(&ticket)).await;
    assert_eq!(status, 201);
    let body = json!({"external_id": ticket, "phone_last4": "0000"});

    // Act
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(lookup(&app, body.clone()).await.0);
    }
    let refused = app
        .client
        .post(format!("{}/api/v1/lookup", app.address))
        .header("X-Bianmin-Actor", "someone-new;intake_system")
        .header("Authorization", "Bearer fresh-token")
        .json(&json!({"external_id": ticket, "phone_last4": CHECK}))
        .send()
        .await
        .unwrap();

    // Assert: a fresh identity in the headers does not buy a fresh bucket.
    assert_eq!(statuses, vec![404, 404, 404]);
    assert_eq!(refused.status().as_u16(), 429);
    assert!(refused.headers().get("retry-after").is_some());
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["code"], "rate_limited");
    // Intake is limited separately and goes on.
    let (status, _) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201);
    app.teardown().await;
}
