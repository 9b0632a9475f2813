//! Candidate duplicates, `GET /api/v1/requests/{id}/duplicates`: two requests with
//! near-identical texts in one grid are candidates of each other with a score; the same text
//! in another grid, and an unrelated text in the same grid, are not.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, spawn_app_with};

fn document(grid: (&str, &str, &str), text: &str) -> Value {
    json!({
        "channel": "hotline",
        "external_id": external_id(),
        "contact": { "name": "Wang Fang", "phone": "13800001111" },
        "location": { "street": grid.0, "community": grid.1, "grid": grid.2 },
        "text": text,
    })
}

async fn intake(app: &TestApp, document: Value) -> String {
    let (status, created) = app.intake(&document).await;
    assert_eq!(status, 201, "{created}");
    created["request_id"].as_str().unwrap().to_string()
}

async fn candidates(app: &TestApp, id: &str, actor: &str) -> (u16, Value) {
    let response = app
        .get(&format!("/api/v1/requests/{id}/duplicates"), actor)
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn near_identical_texts_in_one_grid(store: Store) {
    // Arrange
    let app = spawn_app_with(store, |config| config.projections.enabled = true).await;
    let here = ("jd-01", "sq-0101", "wg-010102");
    let elsewhere = ("jd-01", "sq-0101", "wg-010101");
    let first = intake(
        &app,
        document(here, "小区门口路灯不亮已经一周了，晚上很危险。"),
    )
    .await;
    let second = intake(
        &app,
        document(here, "小区门口的路灯不亮已经一周，晚上很危险！"),
    )
    .await;
    let unrelated = intake(&app, document(here, "楼下餐馆油烟太大，影响居民休息。")).await;
    let other_grid = intake(
        &app,
        document(elsewhere, "小区门口路灯不亮已经一周了，晚上很危险。"),
    )
    .await;

    // Act: wait for the read model to hold the second request.
    let deadline = Instant::now() + Duration::from_secs(20);
    let listed = loop {
        let (status, listed) = candidates(&app, &first, actors::STATION).await;
        assert_eq!(status, 200, "{listed}");
        if !listed["candidates"].as_array().unwrap().is_empty() {
            break listed;
        }
        assert!(Instant::now() < deadline, "no candidate appeared: {listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Assert
    let found = listed["candidates"].as_array().unwrap();
    assert_eq!(found.len(), 1, "only the near-identical one: {listed}");
    assert_eq!(found[0]["request_id"], second.as_str());
    assert_eq!(found[0]["stage"], "received");
    let score = found[0]["score"].as_f64().unwrap();
    assert!(score > 0.7 && score < 1.0, "{score}");
    assert_eq!(listed["by_category"], false);
    let (_, back) = candidates(&app, &second, actors::STATION).await;
    assert_eq!(
        back["candidates"][0]["request_id"],
        first.as_str(),
        "{back}"
    );
    let ids: Vec<&str> = found
        .iter()
        .filter_map(|c| c["request_id"].as_str())
        .collect();
    assert!(!ids.contains(&unrelated.as_str()) && !ids.contains(&other_grid.as_str()));
    let (status, alone) = candidates(&app, &other_grid, actors::SUPERVISOR).await;
    assert_eq!(status, 200);
    assert_eq!(alone["candidates"], json!([]), "another grid: none");
    // Rights first: a department the request was never referred to is refused.
    let (status, refused) = candidates(&app, &first, actors::URBAN).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["code"], "not_addressed_to_you");
    app.teardown().await;
}

tests::on_both_stores!(near_identical_texts_in_one_grid);
