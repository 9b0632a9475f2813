//! The edge keeps the contract: whatever a client sends — out-of-range numbers, NUL bytes,
//! bytes that are not UTF-8, unknown or repeated parameters, bodies too large, routes and
//! methods that do not exist — the answer is `{code, message, field}` JSON with the right
//! status, never a dropped connection, plain text or a database's message. A handler that
//! panics is answered 500 JSON carrying the request id.

use std::time::Duration;

use axum::routing::get;
use engine_service::http::HttpLimits;
use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, intake_document, spawn_app_with};

const HIGHER: &str = "district-office;higher_level";

/// The answer to one request, checked to be the structured error.
async fn refused(case: &str, response: reqwest::Response, status: u16, field: Option<&str>) {
    let got = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(got, status, "{case}: status ({text})");
    assert!(
        media.starts_with("application/json"),
        "{case}: {media} {text}"
    );
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{case}: not JSON ({e}): {text}"));
    assert!(
        body["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{case}: {body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{case}: {body}");
    assert!(
        !message.contains("database") && !message.contains("0x00"),
        "{case}: internals exposed: {body}"
    );
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{case}: {body}");
    }
}

async fn app_with_pg_projections() -> (TestApp, tests::pg::TestDb) {
    let db = tests::pg::TestDb::create().await.expect("a test database");
    let url = db.url.clone();
    let app = spawn_app_with(Store::Sqlite, move |config| {
        config.projections.enabled = true;
        config.database_url = Some(url);
    })
    .await;
    (app, db)
}

#[tokio::test]
async fn out_of_range_numbers_are_refused_naming_the_parameter() {
    let (app, db) = app_with_pg_projections().await;
    for hours in [
        "100000000000",
        "9223372036854775807",
        "-9223372036854775808",
        "0",
        "-1",
        "8785",
        "1.5",
    ] {
        let path = format!("/api/v1/due-soon?within_hours={hours}");
        let response = app.get(&path, actors::SUPERVISOR).await;
        refused(&path, response, 400, Some("within_hours")).await;
    }
    let ok = app
        .get("/api/v1/due-soon?within_hours=8784", actors::SUPERVISOR)
        .await;
    assert_eq!(ok.status().as_u16(), 200);
    for (query, field) in [
        ("/api/v1/requests?limit=0", "limit"),
        ("/api/v1/requests?limit=1001", "limit"),
        (
            "/api/v1/requests?since_position=18446744073709551615",
            "since_position",
        ),
        ("/api/v1/upward?limit=-1", "limit"),
        ("/api/v1/rankings/departments?w1=NaN", "w1"),
        ("/api/v1/rankings/departments?w2=1e308", "w2"),
        ("/api/v1/rankings/departments?month=2026-13x", "month"),
        ("/api/v1/stats?from=yesterday", "from"),
        ("/api/v1/overdue?now=soon", "now"),
    ] {
        let response = app.get(query, actors::SUPERVISOR).await;
        refused(query, response, 400, Some(field)).await;
    }
    app.teardown().await;
    db.drop_db().await;
}

#[tokio::test]
async fn nul_and_invalid_text_are_refused_at_the_edge() {
    let (app, db) = app_with_pg_projections().await;
    for (path, field) in [
        ("/api/v1/stats?street=jd-01%00", "street"),
        ("/api/v1/stats?from=%00", "from"),
        ("/api/v1/requests?community=%FF", "community"),
        ("/api/v1/overdue?department=a%0Ab", "department"),
        ("/api/v1/worklists/departments/water%00", "path"),
        ("/api/v1/worklists/workers/%FF%FE", "path"),
        ("/api/v1/requests/%FF%FE/accept", "path"),
        ("/api/v1/requests/%FF%FE/history", "path"),
        ("/api/v1/reports?level=%00", "level"),
    ] {
        let response = app.get(path, actors::SUPERVISOR).await;
        refused(path, response, 400, Some(field)).await;
    }
    let response = app
        .post_raw(
            "/api/v1/requests/%FF%FE/accept",
            actors::STATION,
            b"{}".to_vec(),
        )
        .await;
    refused("POST bad path", response, 400, Some("path")).await;
    // A cursor whose id is not a UUID is no cursor of ours.
    let path = "/api/v1/requests?cursor=1.not-an-id".to_string();
    let response = app.get(&path, actors::SUPERVISOR).await;
    refused("a cursor of another form", response, 400, Some("cursor")).await;
    app.teardown().await;
    db.drop_db().await;
}

#[tokio::test]
async fn unknown_repeated_and_malformed_parameters_are_refused_as_json() {
    let (app, db) = app_with_pg_projections().await;
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201);
    let id = created["request_id"].as_str().expect("id").to_string();
    for (path, field) in [
        (
            format!("/api/v1/audit/requests/{id}/timeline?as_of=bad"),
            "as_of",
        ),
        (
            format!("/api/v1/audit/requests/{id}/state?version=null"),
            "version",
        ),
        ("/api/v1/audit/verify?request=null".to_string(), "request"),
        ("/api/v1/requests?cursor=".to_string(), "cursor"),
        ("/api/v1/upward?cursor=".to_string(), "cursor"),
        ("/api/v1/rankings/departments?cursor=".to_string(), "cursor"),
        (
            format!("/api/v1/audit/verify?request={id}&colour=red"),
            "colour",
        ),
        (format!("/api/v1/requests/{id}?as_of=bad"), "as_of"),
        (
            format!("/api/v1/requests/{id}?version=1&version=2"),
            "version",
        ),
        (
            format!("/api/v1/requests/{id}/history?with_state=maybe"),
            "with_state",
        ),
        (
            format!("/api/v1/requests/{id}/history?colour=red"),
            "colour",
        ),
        (
            format!("/api/v1/requests/{id}/contact?purpose=a&purpose=b"),
            "purpose",
        ),
        ("/api/v1/stats?colour=red".to_string(), "colour"),
        ("/api/v1/stats?street=a&street=b".to_string(), "street"),
        ("/api/v1/stats?period=year".to_string(), "period"),
        ("/api/v1/stats?dispatched=yes".to_string(), "dispatched"),
        ("/api/v1/upward?open=1".to_string(), "open"),
        ("/api/v1/upward?street=x".to_string(), "street"),
        ("/api/v1/reports?colour=red".to_string(), "colour"),
    ] {
        let response = app.get(&path, actors::AUDITOR).await;
        refused(&path, response, 400, Some(field)).await;
    }
    app.teardown().await;
    db.drop_db().await;
}

#[tokio::test]
async fn bodies_unknown_routes_and_methods_are_answered_as_json() {
    let app = spawn_app_with(Store::Sqlite, |_| {}).await;
    let response = app
        .post_raw("/api/v1/upward/feedback", HIGHER, b"{\"kind\": ".to_vec())
        .await;
    refused("bad JSON on feedback", response, 400, None).await;
    // No content type at all.
    let response = app
        .client
        .post(format!("{}/api/v1/upward/feedback", app.address))
        .header("X-Bianmin-Actor", HIGHER)
        .body("{}")
        .send()
        .await
        .expect("sent");
    refused("feedback without content type", response, 400, None).await;
    // One limit on every route: 64 KiB here, not axum's 2 MB default.
    let big = json!({ "comments": "x".repeat(100 * 1024) });
    for path in [
        "/api/v1/upward/feedback".to_string(),
        format!("/api/v1/reports/{}/feedback", uuid::Uuid::nil()),
        format!("/api/v1/notifications/{}/replay", uuid::Uuid::nil()),
        "/open311/v2/requests.json".to_string(),
    ] {
        let response = app.post(&path, HIGHER, &big).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, 413, "{path}: {text}");
        assert!(
            serde_json::from_str::<Value>(&text).is_ok(),
            "{path}: {text}"
        );
    }
    let response = app.get("/api/v1/no-such-thing", actors::AUDITOR).await;
    refused("unknown route", response, 404, None).await;
    let response = app
        .client
        .delete(format!("{}/api/v1/requests", app.address))
        .header("X-Bianmin-Actor", actors::AUDITOR)
        .send()
        .await
        .expect("sent");
    refused("unknown method", response, 405, None).await;
    app.teardown().await;
}

#[tokio::test]
async fn the_server_serves_its_openapi_document() {
    let app = spawn_app_with(Store::Sqlite, |_| {}).await;
    let response = app.get("/openapi.json", actors::AUDITOR).await;
    assert_eq!(response.status().as_u16(), 200);
    let served: Value = response.json().await.expect("JSON");
    assert_eq!(served, engine_service::openapi::document());
    let within = served["paths"]["/api/v1/due-soon"]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "within_hours"))
        .cloned()
        .expect("within_hours documented");
    assert_eq!(within["schema"]["minimum"], 1);
    assert_eq!(within["schema"]["maximum"], 8784);
    app.teardown().await;
}

#[tokio::test]
async fn a_panicking_handler_is_answered_500_json_with_its_request_id() {
    let router = axum::Router::new().route(
        "/boom",
        get(|| async {
            if true {
                panic!("the handler gave up");
            }
            "unreachable"
        }),
    );
    let router = engine_service::http::edge::wrap(router, HttpLimits::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let response = client
        .get(format!("http://{address}/boom"))
        .header("x-request-id", "req-42")
        .send()
        .await
        .expect("an answer, not a dropped connection");
    assert_eq!(response.status().as_u16(), 500);
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("req-42")
    );
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["code"], "internal");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("req-42"),
        "{body}"
    );
    assert!(
        !body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("gave up"),
        "{body}"
    );
    // The server keeps serving after the panic.
    let again = client
        .get(format!("http://{address}/boom"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(again.status().as_u16(), 500);
    server.abort();
}
