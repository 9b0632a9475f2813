//! Read-your-writes: a read-model read with `?min_position=<a command's position>` answers only
//! once the projectors have applied that position (bounded by `projections.read_wait_ms`, then
//! 503 `not_caught_up` with `Retry-After`), and every read-model answer names the position the
//! read models had reached (`Bianmin-Position`). On the SQLite store and on JetStream.

use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, intake_document, spawn_app_with};

/// `GET path` as `actor`: (status, Bianmin-Position, Retry-After, body).
async fn read(app: &TestApp, path: &str, actor: &str) -> (u16, Option<u64>, Option<String>, Value) {
    let response = app.get(path, actor).await;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("ascii").to_string())
    };
    let position = header("bianmin-position").map(|p| p.parse().expect("a position"));
    let retry = header("retry-after");
    let status = response.status().as_u16();
    (
        status,
        position,
        retry,
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn a_read_waits_for_the_position_a_command_returned(store: Store) {
    let app = spawn_app_with(store, |config| {
        config.projections.enabled = true;
        config.projections.read_wait_ms = 300;
    })
    .await;
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id").to_string();
    let (status, accepted) = app
        .command(&id, "accept", actors::STATION, &json!({}))
        .await;
    assert_eq!(status, 200, "{accepted}");
    let position = accepted["position"].as_u64().expect("position");

    // Right after the command: the read shows it, and says how far the read models are.
    let path = format!("/api/v1/requests?min_position={position}&limit=10");
    let (status, reached, _, body) = read(&app, &path, actors::AUDITOR).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        reached.is_some_and(|r| r >= position),
        "{reached:?} < {position}"
    );
    let row = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["request_id"] == id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("the request is listed: {body}"));
    assert_eq!(row["stage"], "accepted", "{row}");

    // Every read-model answer names its position, with or without the parameter.
    let (status, reached, _, _) = read(&app, "/api/v1/stats?period=month", actors::DASHBOARD).await;
    assert_eq!(status, 200);
    assert!(reached.is_some_and(|r| r >= position));

    // A position the log has not reached: refused once the wait is over, with a retry hint.
    let started = std::time::Instant::now();
    let path = format!(
        "/api/v1/stats?period=month&min_position={}",
        position + 1000
    );
    let (status, _, retry, body) = read(&app, &path, actors::DASHBOARD).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("not_caught_up")),
        "{body}"
    );
    assert_eq!(body["field"], "min_position", "{body}");
    assert_eq!(retry.as_deref(), Some("1"));
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(300)
            && waited < std::time::Duration::from_secs(5),
        "waited {waited:?}"
    );

    // Rights before the wait; a malformed position is a 400.
    let path = format!("/api/v1/overdue?min_position={}", position + 1000);
    let (status, _, _, body) = read(&app, &path, actors::DASHBOARD).await;
    assert_eq!(status, 403, "{body}");
    let (status, _, _, body) =
        read(&app, "/api/v1/stats?min_position=soon", actors::DASHBOARD).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("min_position")),
        "{body}"
    );
    app.teardown().await;
}

tests::on_both_stores!(a_read_waits_for_the_position_a_command_returned);
