//! Corrections of stage changes and deadline moves end to end, on the SQLite store and on
//! JetStream: a mistaken referral (back to `classified`, off the department's worklist and out
//! of its figures, then referred rightly), a granted extension (the completion deadline
//! reverts) and a decline (back to `received`, accepted after all). The read models count
//! only what stands; the histories keep every event and its correction.

use serde_json::{Value, json};
use tests::app::{
    Store, TestApp, actors, external_id, intake_document, spawn_app_with_projections,
};

use crate::e2e_supervision::{
    at, events, get_json, in_progress, instant, ok, referred, refused, stats_row, wait_caught_up,
};

/// The id of the last event of `kind` in the request's history.
async fn last_id(app: &TestApp, id: &str, kind: &str) -> String {
    let found = events(app, id, kind).await;
    found.last().expect("recorded")["event_id"]
        .as_str()
        .expect("event id")
        .to_string()
}

/// Corrects the last event of `kind` as the centre's supervisor.
async fn correct_last(app: &TestApp, id: &str, kind: &str) -> String {
    let event_id = last_id(app, id, kind).await;
    ok(
        app,
        id,
        "correct",
        actors::SUPERVISOR,
        json!({"event_id": event_id, "reason": "Entered on the wrong ticket"}),
    )
    .await;
    event_id
}

/// The engine's state of a request (`GET /api/v1/requests/{id}`).
async fn state(app: &TestApp, id: &str) -> Value {
    let (status, body) = get_json(app, &format!("/api/v1/requests/{id}"), actors::AUDITOR).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The request ids on a department's worklist.
async fn worklist(app: &TestApp, department: &str, actor: &str) -> Vec<String> {
    wait_caught_up(app).await;
    let path = format!("/api/v1/worklists/departments/{department}");
    let (status, list) = get_json(app, &path, actor).await;
    assert_eq!(status, 200, "{list}");
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["request_id"].as_str().expect("id").to_string())
        .collect()
}

/// The referrals the ranking counts for `department` in March 2026.
async fn referrals_counted(app: &TestApp, department: &str) -> Value {
    wait_caught_up(app).await;
    let path = "/api/v1/rankings/departments?month=2026-03&now=2026-03-31T00:00:00Z";
    let (status, ranking) = get_json(app, path, actors::DASHBOARD).await;
    assert_eq!(status, 200, "{ranking}");
    ranking["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["department"] == department)
        .map(|r| r["referrals"].clone())
        .unwrap_or(json!(0))
}

/// Whether the audit history marks `event_id` as corrected by a later `event_corrected`.
async fn marked_corrected(app: &TestApp, id: &str, event_id: &str) -> bool {
    let path = format!("/api/v1/requests/{id}/history?with_state=true");
    let (status, body) = get_json(app, &path, actors::AUDITOR).await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .expect("steps")
        .iter()
        .any(|s| s.to_string().contains(event_id) && s["corrected_by"].is_string())
}

async fn a_mistaken_referral_is_corrected_and_referred_rightly(app: &TestApp) {
    let id = referred(app).await;
    assert!(
        worklist(app, "urban-management", actors::URBAN)
            .await
            .contains(&id)
    );
    assert_eq!(referrals_counted(app, "urban-management").await, 1);
    let referral = correct_last(app, &id, "referred_to_department").await;
    let body = state(app, &id).await;
    assert_eq!(body["stage"], "classified", "{body}");
    assert!(body["state"]["handling"].is_null(), "{body}");
    assert!(
        !worklist(app, "urban-management", actors::URBAN)
            .await
            .contains(&id)
    );
    assert_eq!(referrals_counted(app, "urban-management").await, 0);
    refused(
        app,
        &id,
        "sign_for",
        actors::URBAN,
        json!({}),
        (403, "not_addressed_to_you"),
    )
    .await;
    ok(
        app,
        &id,
        "refer",
        actors::STATION,
        json!({"lead_department": "water"}),
    )
    .await;
    assert!(worklist(app, "water", actors::WATER).await.contains(&id));
    assert_eq!(referrals_counted(app, "water").await, 1);
    ok(app, &id, "sign_for", actors::WATER, json!({})).await;
    // Something was built on the new referral: it is no longer correctable.
    let referral_now = last_id(app, &id, "referred_to_department").await;
    let refusal = refused(
        app,
        &id,
        "correct",
        actors::SUPERVISOR,
        json!({"event_id": referral_now, "reason": "again"}),
        (422, "not_correctable"),
    )
    .await;
    assert!(
        refusal["message"]
            .as_str()
            .expect("message")
            .contains("left the stage"),
        "{refusal}"
    );
    assert_eq!(events(app, &id, "referred_to_department").await.len(), 2);
    assert!(marked_corrected(app, &id, &referral).await);
}

async fn a_granted_extension_is_corrected(app: &TestApp) {
    let id = in_progress(app).await;
    let due = instant(&state(app, &id).await["state"]["deadlines"]["completion_due_at"]);
    ok(
        app,
        &id,
        "request_extension",
        actors::URBAN,
        json!({"reason": "Waiting on the permit office", "working_days": 3}),
    )
    .await;
    ok(app, &id, "grant_extension", actors::SUPERVISOR, json!({})).await;
    let extended = instant(&state(app, &id).await["state"]["deadlines"]["completion_due_at"]);
    assert!(extended > due);
    let grant = correct_last(app, &id, "extension_granted").await;
    let body = state(app, &id).await;
    assert_eq!(
        instant(&body["state"]["deadlines"]["completion_due_at"]),
        due,
        "{body}"
    );
    assert_eq!(body["state"]["extensions"]["pending"], 3, "{body}");
    ok(
        app,
        &id,
        "deny_extension",
        actors::SUPERVISOR,
        json!({"reason": "Permit not needed"}),
    )
    .await;
    // The read model's deadline reverts too.
    wait_caught_up(app).await;
    let (status, listed) = get_json(app, "/api/v1/requests", actors::AUDITOR).await;
    assert_eq!(status, 200, "{listed}");
    let row = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["request_id"] == id.as_str())
        .cloned()
        .expect("listed");
    assert_eq!(instant(&row["completion_due_at"]), due, "{row}");
    assert!(marked_corrected(app, &id, &grant).await);
}

async fn a_decline_is_corrected(app: &TestApp) -> String {
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id").to_string();
    ok(
        app,
        &id,
        "decline",
        actors::STATION,
        json!({"disposition": "OUTSIDE_PUBLIC_REMIT", "explanation": "属于物业服务合同事项。"}),
    )
    .await;
    let decline = correct_last(app, &id, "request_declined").await;
    assert_eq!(state(app, &id).await["stage"], "received");
    ok(app, &id, "accept", actors::STATION, json!({})).await;
    assert!(marked_corrected(app, &id, &decline).await);
    id
}

async fn stage_changes_and_deadline_moves_are_corrected(store: Store) {
    let app = spawn_app_with_projections(store, None).await;
    a_mistaken_referral_is_corrected_and_referred_rightly(&app).await;
    a_granted_extension_is_corrected(&app).await;
    let declined = a_decline_is_corrected(&app).await;

    // The rates count what stands: three received, all accepted, none declined; two
    // referred (the corrected referral leaves the first one referred once, to water).
    wait_caught_up(&app).await;
    let row = stats_row(&app, "2026-03-31T00:00:00Z").await;
    assert_eq!(row["counts"]["received"], 3, "{row}");
    assert_eq!(row["counts"]["accepted"], 3, "{row}");
    assert_eq!(row["counts"]["referred"], 2, "{row}");
    let (status, listed) = get_json(&app, "/api/v1/requests", actors::AUDITOR).await;
    assert_eq!(status, 200, "{listed}");
    let declined_row = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["request_id"] == declined.as_str())
        .cloned()
        .expect("listed");
    assert!(declined_row["declined_at"].is_null(), "{declined_row}");
    assert_eq!(declined_row["stage"], "accepted", "{declined_row}");
    assert!(at("2026-03-31T00:00:00Z") > instant(&declined_row["received_at"]));
    app.teardown().await;
}

tests::on_both_stores!(stage_changes_and_deadline_moves_are_corrected);
