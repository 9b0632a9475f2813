//! Corrections end to end through a running app: a wrong classification, a rating recorded on
//! the wrong request, a wrong department score and a stray progress note are neutralised by
//! the centre's `correct` (never deleted); the histories keep the original and the correction,
//! the read models count only what stands, and the hash chains still verify. On the SQLite
//! store and on JetStream, commands over HTTP and over NATS.

use engine_service::audit::verify;
use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, spawn_app, spawn_app_with_projections};

use crate::e2e_supervision::{
    NatsApi, SANITATION, awaiting_callback, completion_due, events, get_json, in_progress, ok,
    referred_as, refused, stats_row, wait_caught_up,
};

/// The id of the only (or first) event of `kind` in the request's history.
async fn event_id(app: &TestApp, id: &str, kind: &str) -> String {
    events(app, id, kind).await[0]["event_id"]
        .as_str()
        .expect("event id")
        .to_string()
}

/// The steps of the request's history with their state and `corrected_by`.
async fn steps(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, body) = get_json(
        app,
        &format!("/api/v1/requests/{id}/history?with_state=true"),
        actors::AUDITOR,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().expect("steps").clone()
}

/// `corrected_by` of the step recording `event_id`.
fn corrected_by(steps: &[Value], event_id: &str) -> Value {
    steps
        .iter()
        .find(|s| s.to_string().contains(event_id) && s["corrected_by"].is_string())
        .map(|s| s["corrected_by"].clone())
        .unwrap_or(Value::Null)
}

async fn corrections_are_recorded_and_honoured(store: Store) {
    let app = spawn_app_with_projections(store, None).await;

    // A: classified with a wrong item (a civil-affairs item), corrected, reclassified.
    let a = referred_as(&app, "ca-minimum-living").await;
    let wrong = event_id(&app, &a, "request_classified").await;
    refused(
        &app,
        &a,
        "correct",
        actors::STATION,
        json!({"event_id": wrong, "reason": "wrong item"}),
        (403, "not_permitted"),
    )
    .await;
    let correction = ok(
        &app,
        &a,
        "correct",
        actors::SUPERVISOR,
        json!({"event_id": wrong, "reason": "Street vending, not a living allowance"}),
    )
    .await;
    assert_eq!(correction["events"][0]["type"], "event_corrected");
    refused(
        &app,
        &a,
        "correct",
        actors::SUPERVISOR,
        json!({"event_id": wrong, "reason": "again"}),
        (422, "already_recorded"),
    )
    .await;
    let acceptance = event_id(&app, &a, "request_accepted").await;
    refused(
        &app,
        &a,
        "correct",
        actors::SUPERVISOR,
        json!({"event_id": acceptance, "reason": "not correctable"}),
        (422, "not_correctable"),
    )
    .await;
    refused(
        &app,
        &a,
        "classify",
        actors::STATION,
        json!({"catalogue_item": "um-street-vending", "request_type": "complaint"}),
        (422, "missing_field"),
    )
    .await;
    ok(
        &app,
        &a,
        "classify",
        actors::STATION,
        json!({"catalogue_item": "um-street-vending", "request_type": "complaint",
               "reason": "Corrected classification"}),
    )
    .await;
    // The reclassification keeps the receipt as the clock's start: Thursday 17:30.
    assert_eq!(
        completion_due(&app, &a).await,
        crate::e2e_supervision::at("2026-03-05T09:30:00Z")
    );
    for (action, body) in [
        ("sign_for", json!({})),
        ("contact_resident", json!({"method": "phone"})),
        ("start_handling", json!({})),
    ] {
        ok(&app, &a, action, actors::URBAN, body).await;
    }
    // A stray progress note, corrected.
    ok(
        &app,
        &a,
        "note_progress",
        actors::URBAN,
        json!({"note": "Meant for another ticket"}),
    )
    .await;
    let note = event_id(&app, &a, "progress_noted").await;
    ok(
        &app,
        &a,
        "correct",
        actors::SUPERVISOR,
        json!({"event_id": note, "reason": "Noted on the wrong ticket"}),
    )
    .await;
    awaiting_callback(&app, &a).await;

    // B: in handling, with a whistle; sanitation's score is entered wrongly and corrected.
    let b = in_progress(&app).await;
    ok(
        &app,
        &b,
        "blow_whistle",
        actors::STATION,
        json!({"departments": ["sanitation"], "summary": "Clean-up"}),
    )
    .await;
    ok(
        &app,
        &b,
        "report_to_whistle",
        SANITATION,
        json!({"department": "sanitation", "note": "Truck sent"}),
    )
    .await;
    ok(
        &app,
        &b,
        "rate_department",
        actors::STATION,
        json!({"department": "sanitation", "score": 1}),
    )
    .await;
    let score = event_id(&app, &b, "department_rated").await;
    ok(
        &app,
        &b,
        "correct",
        actors::SUPERVISOR,
        json!({"event_id": score, "reason": "Typed 1 for 5"}),
    )
    .await;
    ok(
        &app,
        &b,
        "rate_department",
        actors::STATION,
        json!({"department": "sanitation", "score": 5}),
    )
    .await;
    // An event of another request is unknown here.
    refused(
        &app,
        &b,
        "correct",
        actors::SUPERVISOR,
        json!({"event_id": note, "reason": "other request"}),
        (422, "unknown_reference"),
    )
    .await;
    awaiting_callback(&app, &b).await;

    // The resident of B is recorded on A by mistake; corrected; then each rated rightly.
    ok(
        &app,
        &a,
        "rate",
        actors::STATION,
        json!({"satisfaction": "dissatisfied", "resolution": "unresolved"}),
    )
    .await;
    let misplaced = event_id(&app, &a, "rated").await;
    ok(
        &app,
        &a,
        "correct",
        actors::SUPERVISOR,
        json!({"event_id": misplaced, "reason": "Rating belonged to another request"}),
    )
    .await;
    // A corrected rating allows no reopen.
    refused(
        &app,
        &a,
        "reopen",
        actors::SUPERVISOR,
        json!({"reason": "dissatisfied"}),
        (422, "rating_does_not_allow_reopen"),
    )
    .await;
    ok(
        &app,
        &a,
        "rate",
        actors::STATION,
        json!({"satisfaction": "satisfied", "resolution": "resolved"}),
    )
    .await;
    ok(
        &app,
        &b,
        "rate",
        actors::STATION,
        json!({"satisfaction": "dissatisfied", "resolution": "unresolved"}),
    )
    .await;

    // Histories keep the originals and their corrections.
    let a_steps = steps(&app, &a).await;
    assert_eq!(events(&app, &a, "request_classified").await.len(), 2);
    assert_eq!(events(&app, &a, "rated").await.len(), 2);
    let corrections = events(&app, &a, "event_corrected").await;
    let corrected: Vec<(&str, &str)> = corrections
        .iter()
        .map(|c| {
            (
                c["data"]["event_id"].as_str().expect("id"),
                c["data"]["corrected_type"].as_str().expect("type"),
            )
        })
        .collect();
    assert_eq!(
        corrected,
        vec![
            (wrong.as_str(), "request_classified"),
            (note.as_str(), "progress_noted"),
            (misplaced.as_str(), "rated"),
        ]
    );
    for (original, correction) in [&wrong, &note, &misplaced].iter().zip(&corrections) {
        assert_eq!(
            corrected_by(&a_steps, original),
            correction["event_id"],
            "{original} is marked corrected by its correction"
        );
    }
    let b_corrections = events(&app, &b, "event_corrected").await;
    assert_eq!(b_corrections.len(), 1);
    assert_eq!(
        b_corrections[0]["data"]["corrected_type"],
        "department_rated"
    );
    assert_eq!(events(&app, &b, "department_rated").await.len(), 2);

    // The read models honour them.
    wait_caught_up(&app).await;
    let now = "2026-03-31T00:00:00Z";
    let row = stats_row(&app, now).await;
    assert_eq!(row["counts"]["received"], 2, "{row}");
    assert_eq!(row["counts"]["rated"], 2, "{row}");
    assert_eq!(row["counts"]["resolved"], 1, "{row}");
    assert_eq!(row["counts"]["satisfaction_rated"], 2, "{row}");
    assert_eq!(row["counts"]["satisfied"], 1, "{row}");
    assert_eq!(row["counts"]["dissatisfied"], 1, "{row}");
    assert_eq!(row["counts"]["reopened"], 0, "{row}");
    assert_eq!(row["rates"]["satisfaction_rate"], 0.5, "{row}");
    let (status, by_category) = get_json(
        &app,
        &format!("/api/v1/stats?period=month&group_by=category&now={now}"),
        actors::DASHBOARD,
    )
    .await;
    assert_eq!(status, 200, "{by_category}");
    let categories: Vec<(Value, Value)> = by_category["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| {
            (
                r["dims"]["category"].clone(),
                r["counts"]["received"].clone(),
            )
        })
        .collect();
    assert_eq!(
        categories,
        vec![(json!("urban-management"), json!(2))],
        "{by_category}"
    );
    let (status, ranking) = get_json(
        &app,
        &format!("/api/v1/rankings/departments?month=2026-03&now={now}"),
        actors::DASHBOARD,
    )
    .await;
    assert_eq!(status, 200, "{ranking}");
    let sanitation = ranking["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["department"] == "sanitation")
        .cloned()
        .unwrap_or_else(|| panic!("sanitation ranked: {ranking}"));
    assert_eq!(sanitation["bottom_up_count"], 1, "{sanitation}");
    assert_eq!(sanitation["bottom_up_avg"], 5.0, "{sanitation}");
    // The tier comes from the directory's kind of unit (a public institution).
    assert_eq!(sanitation["tier"], "district_department", "{sanitation}");
    assert!(
        sanitation["tier_rank"].as_u64() <= sanitation["rank"].as_u64(),
        "{sanitation}"
    );
    let (status, listed) = get_json(&app, "/api/v1/requests", actors::AUDITOR).await;
    assert_eq!(status, 200, "{listed}");
    let a_row = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["request_id"] == a.as_str())
        .cloned()
        .expect("A listed");
    assert_eq!(a_row["catalogue_item"], "um-street-vending", "{a_row}");
    assert_eq!(a_row["satisfaction"], "satisfied", "{a_row}");

    // Every chain still verifies, over HTTP and directly.
    let report = verify::verify_all(app.command_service.log(), None)
        .await
        .expect("verify");
    assert!(report.ok(), "{:?}", report.broken);
    assert!(report.requests >= 2);
    let (status, body) = get_json(&app, "/api/v1/audit/verify", actors::AUDITOR).await;
    assert_eq!(status, 200, "{body}");
    app.teardown().await;
}

tests::on_both_stores!(corrections_are_recorded_and_honoured);

#[tokio::test]
async fn corrections_over_nats() {
    let app = spawn_app(Store::Nats).await;
    let api = NatsApi::start(&app).await;
    let id = referred_as(&app, "ca-minimum-living").await;
    let wrong = event_id(&app, &id, "request_classified").await;
    let before = app.log_length().await;
    let (error, body) = api
        .command(
            actors::STATION,
            &id,
            json!({"action": "correct", "event_id": wrong, "reason": "x"}),
        )
        .await;
    assert_eq!(error.as_deref(), Some("not_permitted"), "{body}");
    assert_eq!(app.log_length().await, before);
    let (error, body) = api
        .command(
            actors::SUPERVISOR,
            &id,
            json!({"action": "correct", "event_id": wrong, "reason": "Wrong item"}),
        )
        .await;
    assert_eq!(error, None, "{body}");
    assert_eq!(body["events"][0]["type"], "event_corrected", "{body}");
    let (error, body) = api
        .command(
            actors::SUPERVISOR,
            &id,
            json!({"action": "correct", "event_id": wrong, "reason": "Twice"}),
        )
        .await;
    assert_eq!(error.as_deref(), Some("already_recorded"), "{body}");
    let (error, body) = api
        .command(
            actors::STATION,
            &id,
            json!({"action": "classify", "catalogue_item": "um-street-vending",
                   "request_type": "complaint", "reason": "Corrected"}),
        )
        .await;
    assert_eq!(error, None, "{body}");
    let classified = events(&app, &id, "request_classified").await;
    assert_eq!(classified.len(), 2);
    assert_eq!(classified[1]["data"]["catalogue_item"], "um-street-vending");
    assert_eq!(classified[1]["data"]["reclassified"], true);
    let report = verify::verify_all(app.command_service.log(), None)
        .await
        .expect("verify");
    assert!(report.ok(), "{:?}", report.broken);
    api.stop().await;
    app.teardown().await;
}
