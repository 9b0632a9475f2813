//! Bad input over HTTP: each case is answered with the structured `{code, message, field}`
//! body and the right status, nothing is appended to the log, and the server keeps serving.

use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, intake_document, spawn_app};

tests::on_both_stores!(bad_input);

/// Sends one bad request and checks the answer and that the log did not grow.
async fn expect_refused(
    app: &TestApp,
    case: &str,
    response: reqwest::Response,
    status: u16,
    code: &str,
    field: Option<&str>,
) {
    let before = app.log_length().await;
    assert_eq!(response.status().as_u16(), status, "{case}: status");
    let body: Value = response
        .json()
        .await
        .unwrap_or_else(|e| panic!("{case}: JSON body: {e}"));
    assert_eq!(body["code"], code, "{case}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{case}: message"
    );
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{case}: {body}");
    }
    assert_eq!(app.log_length().await, before, "{case}: nothing appended");
    let health = app.get("/healthz", actors::AUDITOR).await;
    assert_eq!(health.status().as_u16(), 200, "{case}: still serving");
}

async fn bad_input(store: Store) {
    let app = spawn_app(store).await;
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201);
    let id = created["request_id"].as_str().expect("id").to_string();
    let intake = "/api/v1/requests";
    let accept = format!("/api/v1/requests/{id}/accept");
    assert_eq!(app.log_length().await, 1);

    let response = app
        .post_raw(intake, actors::INTAKE, b"{\"channel\": ".to_vec())
        .await;
    expect_refused(&app, "malformed JSON", response, 400, "malformed", None).await;

    let mut unknown_field = intake_document(&external_id());
    unknown_field["colour"] = json!("red");
    let response = app.post(intake, actors::INTAKE, &unknown_field).await;
    expect_refused(
        &app,
        "unknown field",
        response,
        400,
        "malformed",
        Some("colour"),
    )
    .await;

    // A key twice in one object: refused naming it, at the top level and nested, and on a
    // command body as well as intake (the shared extractor).
    let duplicated = format!(
        r#"{{"channel":"hotline","external_id":"{}","contact":{{"name":"A","phone":"13800000001","phone":"13800000002"}},"location":{{"street":"jd-01","community":"sq-0101","grid":"wg-010102"}},"text":"t"}}"#,
        external_id()
    );
    let response = app
        .post_raw(intake, actors::INTAKE, duplicated.into_bytes())
        .await;
    expect_refused(
        &app,
        "duplicate nested key",
        response,
        400,
        "duplicate_key",
        Some("contact.phone"),
    )
    .await;
    let duplicated = format!(
        r#"{{"channel":"hotline","external_id":"{0}","external_id":"{0}x","location":{{"street":"jd-01","community":"sq-0101","grid":"wg-010102"}},"anonymous":true,"text":"t"}}"#,
        external_id()
    );
    let response = app
        .post_raw(intake, actors::INTAKE, duplicated.into_bytes())
        .await;
    expect_refused(
        &app,
        "duplicate key",
        response,
        400,
        "duplicate_key",
        Some("external_id"),
    )
    .await;

    // The same on a command body (read by the command route itself, not the extractor).
    let response = app
        .post_raw(
            &format!("/api/v1/requests/{id}/accept"),
            actors::STATION,
            br#"{"note":"a","note":"b"}"#.to_vec(),
        )
        .await;
    expect_refused(
        &app,
        "duplicate key in a command",
        response,
        400,
        "duplicate_key",
        Some("note"),
    )
    .await;

    // Client timestamps in a plausible range only.
    for (case, raised_at) in [
        ("raised_at in year 0", "0000-01-01T00:00:00Z"),
        ("raised_at two years back", "2024-01-01T00:00:00Z"),
        ("raised_at next year", "2027-06-01T00:00:00Z"),
    ] {
        let mut document = intake_document(&external_id());
        document["raised_at"] = json!(raised_at);
        let response = app.post(intake, actors::INTAKE, &document).await;
        expect_refused(
            &app,
            case,
            response,
            400,
            "invalid_value",
            Some("raised_at"),
        )
        .await;
    }

    let mut wrong_type = intake_document(&external_id());
    wrong_type["anonymous"] = json!("yes");
    let response = app.post(intake, actors::INTAKE, &wrong_type).await;
    expect_refused(&app, "wrong type", response, 400, "malformed", None).await;

    let mut oversized = intake_document(&external_id());
    oversized["text"] = json!("x".repeat(70 * 1024));
    let response = app.post(intake, actors::INTAKE, &oversized).await;
    expect_refused(
        &app,
        "oversized body",
        response,
        413,
        "payload_too_large",
        None,
    )
    .await;

    let mut unknown_grid = intake_document(&external_id());
    unknown_grid["location"]["grid"] = json!("wg-999999");
    let response = app.post(intake, actors::INTAKE, &unknown_grid).await;
    expect_refused(
        &app,
        "unknown grid",
        response,
        400,
        "unknown_reference",
        Some("location"),
    )
    .await;

    let mut no_contact = intake_document(&external_id());
    no_contact
        .as_object_mut()
        .expect("object")
        .remove("contact");
    let response = app.post(intake, actors::INTAKE, &no_contact).await;
    expect_refused(
        &app,
        "missing contact",
        response,
        400,
        "required",
        Some("contact"),
    )
    .await;

    // An unknown request: 404 for a role that reads every request; anyone else gets the
    // answer it would get for a request outside its scope (rights before facts).
    let unknown = format!("/api/v1/requests/{}/accept", uuid::Uuid::now_v7());
    let response = app.post(&unknown, actors::SUPERVISOR, &json!({})).await;
    expect_refused(&app, "unknown request", response, 404, "not_found", None).await;
    let response = app.post(&unknown, actors::STATION, &json!({})).await;
    expect_refused(
        &app,
        "unknown request, station worker",
        response,
        403,
        "not_addressed_to_you",
        None,
    )
    .await;
    let response = app
        .get(
            &format!("/api/v1/requests/{}", uuid::Uuid::now_v7()),
            actors::AUDITOR,
        )
        .await;
    expect_refused(
        &app,
        "unknown request read",
        response,
        404,
        "not_found",
        None,
    )
    .await;

    let response = app
        .post(
            &format!("/api/v1/requests/{id}/fly"),
            actors::STATION,
            &json!({}),
        )
        .await;
    expect_refused(
        &app,
        "unknown action",
        response,
        404,
        "unknown_action",
        Some("action"),
    )
    .await;
    let response = app
        .post(
            &format!("/api/v1/requests/{id}/receive"),
            actors::STATION,
            &json!({}),
        )
        .await;
    expect_refused(
        &app,
        "receive by path",
        response,
        404,
        "unknown_action",
        Some("action"),
    )
    .await;

    let response = app
        .post(
            &format!("/api/v1/requests/{id}/archive"),
            actors::STATION,
            &json!({}),
        )
        .await;
    expect_refused(
        &app,
        "illegal transition",
        response,
        422,
        "wrong_stage",
        None,
    )
    .await;

    let response = app
        .post(&accept, actors::STATION, &json!({"colour": 1}))
        .await;
    expect_refused(
        &app,
        "unknown command field",
        response,
        400,
        "malformed",
        Some("colour"),
    )
    .await;

    let response = app
        .post(&accept, actors::STATION, &json!({"note": 5}))
        .await;
    expect_refused(
        &app,
        "wrong command field type",
        response,
        400,
        "malformed",
        None,
    )
    .await;

    let response = app.post(&accept, actors::URBAN, &json!({})).await;
    expect_refused(
        &app,
        "role not permitted",
        response,
        403,
        "not_permitted",
        None,
    )
    .await;

    let response = app
        .client
        .post(format!("{}{accept}", app.address))
        .header("X-Bianmin-Actor", actors::STATION)
        .header("Idempotency-Key", "not-a-uuid")
        .json(&json!({}))
        .send()
        .await
        .expect("answer");
    expect_refused(
        &app,
        "bad idempotency key",
        response,
        400,
        "malformed",
        Some("idempotency-key"),
    )
    .await;

    let response = app.post(&accept, "nobody", &json!({})).await;
    expect_refused(
        &app,
        "malformed actor",
        response,
        401,
        "malformed_actor",
        None,
    )
    .await;

    let response = app
        .post("/api/v1/nothing-here", actors::STATION, &json!({}))
        .await;
    expect_refused(&app, "unknown route", response, 404, "not_found", None).await;

    // After all that, the request still takes a good command.
    let (status, answer) = app
        .command(&id, "accept", actors::STATION, &json!({}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["version"], 2);
    app.teardown().await;
}
