//! Metrics as docs/metrics.md defines them, through the HTTP read API on both log stores:
//! the whistle report time is the exact mean of `reported_at − blown_at` (3.700 s and 0.004 s
//! publish 1.852, not 1.5 from whole seconds), and `/api/v1/health/projections` says
//! `caught_up: true` only when a projector's checkpoint is the log head, and ratings under a
//! catalogue item flagged `excluded_from_satisfaction` stay out of the satisfaction rate.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tests::app::{Store, TestApp, actors, spawn_app_with_projections};
use tests::pg::TestDb;
use tokio::time::Instant;

use crate::e2e_supervision::{
    SANITATION, awaiting_callback, events, get_json, in_progress, ok, referred_as, stats_row,
    wait_caught_up,
};

/// Blows a whistle summoning sanitation and lets it report after `after`.
async fn whistle_answered_after(app: &TestApp, id: &str, after: chrono::Duration) {
    ok(
        app,
        id,
        "blow_whistle",
        actors::STATION,
        json!({"departments": ["sanitation"], "summary": "Overflowing bins"}),
    )
    .await;
    app.clock.advance(after);
    ok(
        app,
        id,
        "report_to_whistle",
        SANITATION,
        json!({"department": "sanitation", "note": "On site"}),
    )
    .await;
}

async fn the_whistle_mean_is_exact(store: Store) {
    let db = TestDb::create().await.expect("test database");
    let app = spawn_app_with_projections(store, Some(db.url.clone())).await;
    let id = in_progress(&app).await;
    whistle_answered_after(&app, &id, chrono::Duration::milliseconds(3_700)).await;
    app.clock.advance(chrono::Duration::minutes(1));
    whistle_answered_after(&app, &id, chrono::Duration::milliseconds(4)).await;
    wait_caught_up(&app).await;
    let (status, ranking) = get_json(
        &app,
        "/api/v1/rankings/departments?month=2026-03&now=2026-03-03T00:00:00Z",
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
    assert_eq!(sanitation["whistles"], 2, "{sanitation}");
    assert_eq!(sanitation["whistles_reported"], 2, "{sanitation}");
    assert_eq!(
        sanitation["whistle_response_avg_seconds"], 1.852,
        "{sanitation}"
    );
    app.teardown().await;
    db.drop_db().await;
}

tests::on_both_stores!(the_whistle_mean_is_exact);

/// The projectors' health lines.
async fn health(app: &TestApp) -> Vec<Value> {
    let (status, body) = get_json(app, "/api/v1/health/projections", actors::AUDITOR).await;
    assert_eq!(status, 200, "{body}");
    body["projectors"].as_array().expect("projectors").clone()
}

async fn caught_up_only_at_the_head(store: Store) {
    let db = TestDb::create().await.expect("test database");
    let app = spawn_app_with_projections(store, Some(db.url.clone())).await;
    let id = in_progress(&app).await;
    wait_caught_up(&app).await;

    // Hold the checkpoint rows: every apply waits, so the projectors stay where they are while
    // two more commands are appended.
    let mut blocker = PgConnection::connect(&db.url).await.expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut blocker)
        .await
        .expect("begin");
    sqlx::query("SELECT position FROM projection_checkpoints FOR UPDATE")
        .execute(&mut blocker)
        .await
        .expect("lock the checkpoints");
    for note in ["Crew booked", "Crew on the way"] {
        app.clock.advance(chrono::Duration::minutes(1));
        ok(
            &app,
            &id,
            "note_progress",
            actors::URBAN,
            json!({"note": note}),
        )
        .await;
    }
    let head = app
        .command_service
        .log()
        .last_position()
        .await
        .expect("head");
    let behind = health(&app).await;
    assert!(!behind.is_empty());
    for line in &behind {
        let checkpoint = line["checkpoint"].as_u64().expect("checkpoint");
        assert!(checkpoint + 2 <= head, "two behind the head {head}: {line}");
        assert_eq!(line["lag_events"], head - checkpoint, "{line}");
        assert_eq!(line["caught_up"], false, "behind the head {head}: {line}");
    }

    sqlx::query("COMMIT")
        .execute(&mut blocker)
        .await
        .expect("commit");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = health(&app).await;
        if lines
            .iter()
            .all(|l| l["checkpoint"] == head && l["caught_up"] == true && l["lag_events"] == 0)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not caught up at {head}: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    blocker.close().await.expect("close");
    app.teardown().await;
    db.drop_db().await;
}

tests::on_both_stores!(caught_up_only_at_the_head);

/// A request under catalogue item `item` (referred to urban management), handled, replied and
/// rated `satisfaction` by the station; returns its id.
async fn rated_as(app: &TestApp, item: &str, satisfaction: &str) -> String {
    let id = referred_as(app, item).await;
    for (action, body) in [
        ("sign_for", json!({})),
        ("contact_resident", json!({"method": "phone"})),
        ("start_handling", json!({})),
    ] {
        app.clock.advance(chrono::Duration::minutes(5));
        ok(app, &id, action, actors::URBAN, body).await;
    }
    awaiting_callback(app, &id).await;
    app.clock.advance(chrono::Duration::minutes(5));
    ok(
        app,
        &id,
        "rate",
        actors::STATION,
        json!({"satisfaction": satisfaction, "resolution": "resolved"}),
    )
    .await;
    id
}

async fn law_enforcement_items_stay_out_of_satisfaction(store: Store) {
    let app = spawn_app_with_projections(store, None).await;
    let enforced = rated_as(&app, "um-illegal-construction", "dissatisfied").await;
    rated_as(&app, "um-street-vending", "satisfied").await;
    let classified = &events(&app, &enforced, "request_classified").await[0]["data"];
    assert_eq!(
        classified["excluded_from_satisfaction"], true,
        "{classified}"
    );
    assert_eq!(classified["deadlines"]["catalogue_version"], "2026.4");

    wait_caught_up(&app).await;
    let row = stats_row(&app, "2026-03-31T00:00:00Z").await;
    // Both count as rated and resolved; only the street vending rating counts for satisfaction.
    assert_eq!(row["counts"]["rated"], 2, "{row}");
    assert_eq!(row["counts"]["resolved"], 2, "{row}");
    assert_eq!(row["counts"]["satisfaction_rated"], 1, "{row}");
    assert_eq!(row["counts"]["satisfied"], 1, "{row}");
    assert_eq!(row["counts"]["dissatisfied"], 0, "{row}");
    assert_eq!(row["rates"]["satisfaction_rate"], 1.0, "{row}");
    app.teardown().await;
}

tests::on_both_stores!(law_enforcement_items_stay_out_of_satisfaction);
