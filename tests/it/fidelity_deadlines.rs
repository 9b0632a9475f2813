//! Deadlines to the instant through the HTTP API, on the SQLite store and on JetStream: a
//! referral recorded at 16:30:00.68 on the eve of the National Day week gets its 4-working-hour
//! sign-off at 13:30:00.68 on the first working day after the week (the partial minute carries
//! over the lunch break), and the accept, response and completion deadlines keep the start's
//! sub-seconds or end at closing time exactly as docs/deadlines.md states.

use chrono::{DateTime, Utc};
use serde_json::json;
use tests::app::{Store, actors, external_id, intake_document, spawn_app};

use crate::e2e_supervision::{at, events, instant, ok};

/// 2026-09-30 16:30:00.68 in Beijing.
const REFERRED_AT: &str = "2026-09-30T08:30:00.680Z";

async fn stamped_to_the_instant(store: Store) {
    let app = spawn_app(store).await;
    let start: DateTime<Utc> = at(REFERRED_AT);
    app.clock.set(start);
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id").to_string();
    ok(&app, &id, "accept", actors::STATION, json!({})).await;
    ok(
        &app,
        &id,
        "classify",
        actors::STATION,
        json!({"catalogue_item": "um-street-vending", "request_type": "complaint"}),
    )
    .await;
    ok(
        &app,
        &id,
        "refer",
        actors::STATION,
        json!({"lead_department": "urban-management"}),
    )
    .await;

    let received = &events(&app, &id, "request_received").await[0]["data"];
    // Accept: 24 natural hours, sub-seconds kept.
    assert_eq!(
        instant(&received["accept_due_at"]),
        at("2026-10-01T08:30:00.680Z"),
        "{received}"
    );
    let classified = &events(&app, &id, "request_classified").await[0]["data"]["deadlines"];
    // First response: 24 natural hours from the classification instant.
    assert_eq!(
        instant(&classified["response_due_at"]),
        at("2026-10-01T08:30:00.680Z"),
        "{classified}"
    );
    // Completion: the item's 3 working days count from the next day (10-08, 10-09 and the
    // make-up Saturday 10-10) and end at closing time, 17:30.
    assert_eq!(
        instant(&classified["completion_due_at"]),
        at("2026-10-10T09:30:00Z"),
        "{classified}"
    );
    let referral = &events(&app, &id, "referred_to_department").await[0]["data"];
    // Sign-off: 4 working hours = 59 min 59.32 s on 09-30, 3 h on 10-08 morning, 0.68 s after
    // lunch: 13:30:00.68 Beijing.
    assert_eq!(
        instant(&referral["sign_off_due_at"]),
        at("2026-10-08T05:30:00.680Z"),
        "{referral}"
    );
    app.teardown().await;
}

tests::on_both_stores!(stamped_to_the_instant);
