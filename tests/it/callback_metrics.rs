//! Callback (回访) figures in `/api/v1/stats` through a running app on each log store (SQLite
//! log with SQLite read models, JetStream with PostgreSQL): a callback that reached the
//! resident within the `[callback]` limit counts as reached and timely, one reached after it as
//! reached only, an unanswered one for neither; the rates follow docs/metrics.md §Callbacks.

use chrono::Duration;
use serde_json::json;
use tests::app::{Store, TestApp, actors, spawn_app_with_projections};
use tests::pg::TestDb;

use crate::e2e_supervision::{
    awaiting_callback, events, in_progress, ok, stats_row, wait_caught_up,
};

/// A request replied and approved, awaiting its callback.
async fn replied(app: &TestApp) -> String {
    let id = in_progress(app).await;
    awaiting_callback(app, &id).await;
    id
}

async fn callback_figures(store: Store) {
    let db = match store {
        Store::Nats => Some(TestDb::create().await.expect("a PostgreSQL database")),
        Store::Sqlite => None,
    };
    let app = spawn_app_with_projections(store, db.as_ref().map(|d| d.url.clone())).await;
    let (timely, late, unanswered) = (
        replied(&app).await,
        replied(&app).await,
        replied(&app).await,
    );
    let call = |outcome: &str| json!({"outcome": outcome});
    ok(
        &app,
        &unanswered,
        "record_callback",
        actors::SUPERVISOR,
        call("unreachable"),
    )
    .await;
    ok(
        &app,
        &timely,
        "record_callback",
        actors::SUPERVISOR,
        call("busy"),
    )
    .await;
    app.clock.advance(Duration::hours(1));
    ok(
        &app,
        &timely,
        "record_callback",
        actors::SUPERVISOR,
        call("reached"),
    )
    .await;
    // Five calendar days later: past the two working days of the built-in profile.
    app.clock.advance(Duration::days(5));
    ok(
        &app,
        &late,
        "record_callback",
        actors::SUPERVISOR,
        call("reached"),
    )
    .await;
    let stamped = |id: String| {
        let app = &app;
        async move {
            let attempts = events(app, &id, "callback_attempted").await;
            attempts.last().expect("an attempt")["data"]["within_limit"].clone()
        }
    };
    assert_eq!(stamped(timely.clone()).await, true);
    assert_eq!(stamped(late.clone()).await, false);

    wait_caught_up(&app).await;
    let row = stats_row(&app, "2026-03-31T00:00:00Z").await;
    assert_eq!(row["counts"]["completed"], 3, "{row}");
    let cb = &row["callbacks"];
    assert_eq!(
        (&cb["reached"], &cb["timed"], &cb["on_time"]),
        (&json!(2), &json!(2), &json!(1)),
        "{row}"
    );
    let rate = cb["callback_rate"].as_f64().expect("a callback rate");
    assert!((rate - 2.0 / 3.0).abs() < 1e-9, "{row}");
    assert_eq!(cb["callback_timeliness"], 0.5, "{row}");
    app.teardown().await;
    if let Some(db) = db {
        db.drop_db().await;
    }
}

tests::on_both_stores!(callback_figures);
