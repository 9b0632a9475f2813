//! The grid roll-up down to the micro-grid (微网格), on both stores: intake that names a
//! micro-grid is counted under it (`group_by=micro_grid`), intake that names none under null,
//! and `micro_grid=` filters the statistics and the request list like any other dimension.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tests::app::{
    Store, TestApp, actors, external_id, intake_document, spawn_app_with_projections,
};
use tests::pg::TestDb;

use crate::e2e_supervision::{get_json, wait_caught_up};

async fn received_in(app: &TestApp, grid: &str, micro: Option<&str>) {
    let mut document = intake_document(&external_id());
    document["location"]["grid"] = json!(grid);
    if let Some(micro) = micro {
        document["location"]["micro_grid"] = json!(micro);
    }
    let (status, created) = app.intake(&document).await;
    assert_eq!(status, 201, "{created}");
}

/// received counts per micro-grid from a stats answer.
fn by_micro(body: &Value) -> BTreeMap<Option<String>, i64> {
    let mut out = BTreeMap::new();
    for item in body["items"].as_array().expect("items") {
        let key = item["dims"]["micro_grid"].as_str().map(String::from);
        *out.entry(key).or_default() += item["counts"]["received"].as_i64().expect("received");
    }
    out
}

async fn rolled_up_to_the_micro_grid(store: Store) {
    let db = match store {
        Store::Nats => Some(TestDb::create().await.expect("a PostgreSQL database")),
        Store::Sqlite => None,
    };
    let app = spawn_app_with_projections(store, db.as_ref().map(|d| d.url.clone())).await;
    received_in(&app, "wg-010101", Some("wwg-01010101")).await;
    received_in(&app, "wg-010101", Some("wwg-01010101")).await;
    received_in(&app, "wg-010101", Some("wwg-01010102")).await;
    received_in(&app, "wg-010102", None).await;
    wait_caught_up(&app).await;

    let (status, body) = get_json(
        &app,
        "/api/v1/stats?period=month&group_by=micro_grid",
        actors::DASHBOARD,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let expected = BTreeMap::from([
        (None, 1),
        (Some("wwg-01010101".to_string()), 2),
        (Some("wwg-01010102".to_string()), 1),
    ]);
    assert_eq!(by_micro(&body), expected, "{body}");

    let path = "/api/v1/stats?period=month&group_by=grid,micro_grid&micro_grid=wwg-01010101";
    let (status, body) = get_json(&app, path, actors::DASHBOARD).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{body}");
    assert_eq!(items[0]["dims"]["grid"], "wg-010101");
    assert_eq!(items[0]["counts"]["received"], 2);

    let (status, body) = get_json(
        &app,
        "/api/v1/requests?micro_grid=wwg-01010102",
        actors::SUPERVISOR,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{body}");
    assert_eq!(items[0]["micro_grid"], "wwg-01010102", "{body}");
    app.teardown().await;
    if let Some(db) = db {
        db.drop_db().await;
    }
}

tests::on_both_stores!(rolled_up_to_the_micro_grid);
