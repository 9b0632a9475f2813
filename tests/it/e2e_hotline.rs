//! The 12345 city-hotline profile (`city-hotline-12345`) end to end through the HTTP API, on
//! the SQLite store and on JetStream with the read models: intake within 2 natural hours,
//! limits that run from dispatch (the classification that routes the ticket) rather than from
//! receipt, sign-off within 2 hours, the supervisor's reminder, warning, overdue mark and
//! escalation at the instants the profile gives, and the late reply counted as not on time.

use chrono::{DateTime, Duration, Utc};
use engine_service::supervisor::{self, SupervisorState};
use serde_json::json;
use tests::app::{Store, TestApp, actors, external_id, intake_document, spawn_app_with};

use crate::e2e_supervision::{events, get_json, instant, ok, stats_row, wait_caught_up};

/// Ticks the supervisor at `at` (clock set there) and returns what fired.
async fn tick_at(app: &TestApp, state: &mut SupervisorState, at: DateTime<Utc>) -> usize {
    app.clock.set(at);
    let report = supervisor::tick(&app.command_service, state, at)
        .await
        .expect("tick");
    report.fired.len()
}

async fn a_hotline_ticket_runs_from_dispatch(store: Store) {
    let app = spawn_app_with(store, |config| {
        config.policy.profile = "city-hotline-12345".into();
        config.projections.enabled = true;
    })
    .await;
    let t0 = engine_core::Clock::now(&*app.clock);
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id").to_string();
    let received = &events(&app, &id, "request_received").await[0]["data"];
    // Network intake is accepted within 2 natural hours under this profile (24 at a station).
    assert_eq!(
        instant(&received["accept_due_at"]),
        t0 + Duration::hours(2),
        "{received}"
    );

    app.clock.set(t0 + Duration::minutes(30));
    ok(&app, &id, "accept", actors::STATION, json!({})).await;
    let dispatched_at = t0 + Duration::hours(3);
    app.clock.set(dispatched_at);
    ok(
        &app,
        &id,
        "classify",
        actors::STATION,
        json!({"catalogue_item": "ut-water-outage", "request_type": "complaint"}),
    )
    .await;
    ok(
        &app,
        &id,
        "refer",
        actors::STATION,
        json!({"lead_department": "water"}),
    )
    .await;

    // Limits run from dispatch: the item's 2-hour response and the time-critical tier's
    // 24 hours count from the classification, three hours after receipt.
    let classified = &events(&app, &id, "request_classified").await[0]["data"]["deadlines"];
    let due = dispatched_at + Duration::hours(24);
    assert_eq!(
        instant(&classified["completion_due_at"]),
        due,
        "{classified}"
    );
    assert_eq!(
        instant(&classified["response_due_at"]),
        dispatched_at + Duration::hours(2),
        "{classified}"
    );
    assert!(
        classified["policy"]
            .as_str()
            .is_some_and(|p| p.starts_with("city-hotline-12345@")),
        "{classified}"
    );
    let referred = &events(&app, &id, "referred_to_department").await[0]["data"];
    assert_eq!(
        instant(&referred["sign_off_due_at"]),
        dispatched_at + Duration::hours(2),
        "sign-off within 2 natural hours: {referred}"
    );

    // The water department signs, contacts the resident and starts, all in time.
    for (minutes, action, body) in [
        (30, "sign_for", json!({})),
        (60, "contact_resident", json!({"method": "phone"})),
        (90, "start_handling", json!({})),
    ] {
        app.clock.set(dispatched_at + Duration::minutes(minutes));
        ok(&app, &id, action, actors::WATER, body).await;
    }

    // The supervisor fires each completion instant once: reminder 4 h before (the item's
    // lead), warning at 80 % of the limit, the miss, and the escalation 24 h after it.
    let (remind, warn) = (
        instant(&classified["remind_at"]),
        instant(&classified["warn_at"]),
    );
    assert_eq!(remind, due - Duration::hours(4), "{classified}");
    assert_eq!(
        warn,
        dispatched_at + Duration::minutes(24 * 60 * 8 / 10),
        "{classified}"
    );
    let mut state = SupervisorState::new();
    let mut instants = vec![remind, warn, due, due + Duration::hours(24)];
    instants.sort();
    for at in instants {
        assert!(tick_at(&app, &mut state, at).await >= 1, "fires at {at}");
        assert_eq!(tick_at(&app, &mut state, at).await, 0, "once at {at}");
    }
    let missed = events(&app, &id, "deadline_missed").await;
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(missed[0]["data"]["deadline"], "completion");
    let escalated = events(&app, &id, "escalated").await;
    assert_eq!(escalated.len(), 1, "{escalated:?}");
    assert_eq!(escalated[0]["data"]["level"], "daily", "{escalated:?}");

    // A late reply: completed, responded on time, not completed on time.
    app.clock.set(due + Duration::hours(25));
    ok(
        &app,
        &id,
        "reply",
        actors::WATER,
        json!({"outcome": "resolved", "content": "Supply restored."}),
    )
    .await;
    wait_caught_up(&app).await;
    let now = (due + Duration::hours(26)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let row = stats_row(&app, &now).await;
    let counts = &row["counts"];
    assert_eq!(
        (
            &counts["completed"],
            &counts["completed_on_time"],
            &counts["responded_on_time"]
        ),
        (&json!(1), &json!(0), &json!(1)),
        "{row}"
    );
    let (status, overdue) = get_json(&app, "/api/v1/overdue", actors::SUPERVISOR).await;
    assert_eq!(status, 200, "{overdue}");
    assert_eq!(
        overdue["items"],
        json!([]),
        "replied: no longer open: {overdue}"
    );
    app.teardown().await;
}

tests::on_both_stores!(a_hotline_ticket_runs_from_dispatch);
