//! The dashboard's map in headless Chromium (as in `browser.rs`): the inline SVG has a path
//! per grid and community polygon of `GET /api/v1/map` and a dot per open request with a point;
//! a wall screen (`dashboard` role) gets the polygons and no dots.

use std::time::Duration;

use engine_service::auth::{TokenConfig, hash_token};
use schemas::Role;
use serde_json::json;
use tests::app::{Store, actors, external_id, spawn_app_with};

use crate::browser::{run_chromium, wait_caught_up};

const SCREEN_TOKEN: &str = "map-screen-token-77a1";

/// How often `needle` occurs in `haystack`.
fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// The rendered map: from `#map-chart` to the end of its SVG.
fn map_region(dom: &str) -> &str {
    let start = dom
        .find("id=\"map-chart\"")
        .expect("the page has #map-chart");
    let rest = &dom[start..];
    &rest[..rest.find("</svg>").unwrap_or(rest.len())]
}

#[tokio::test]
async fn the_dashboard_map_draws_the_polygons_and_the_open_requests() {
    tokio::time::timeout(Duration::from_secs(240), scenario())
        .await
        .expect("test timed out");
}

async fn scenario() {
    let app = spawn_app_with(Store::Sqlite, |config| {
        config.projections.enabled = true;
        config.auth.tokens = vec![TokenConfig {
            id: "map-screen".into(),
            role: Role::Dashboard,
            unit: None,
            token_sha256: hash_token(SCREEN_TOKEN),
        }];
    })
    .await;
    let mut with_points = Vec::new();
    for (lat, lon) in [(34.755, 117.51), (34.815, 117.67)] {
        let (status, created) = app
            .intake(&json!({
                "channel": "online", "external_id": external_id(), "anonymous": true,
                "point": {"lat": lat, "lon": lon}, "text": "井盖缺失 A manhole cover is missing.",
            }))
            .await;
        assert_eq!(status, 201, "{created}");
        with_points.push(created["request_id"].as_str().expect("id").to_string());
    }
    let (status, created) = app
        .intake(&tests::app::intake_document(&external_id()))
        .await;
    assert_eq!(status, 201, "{created}");
    let without_point = created["request_id"].as_str().expect("id").to_string();
    wait_caught_up(&app).await;

    let url = format!(
        "{}/dashboard#date=2026-03-02&actor={}",
        app.address,
        actors::SUPERVISOR
    );
    let dom = run_chromium(&url, &["--dump-dom".to_string()]).await;
    assert!(
        dom.contains("data-state=\"ready\""),
        "the page loaded: {dom}"
    );
    let map = map_region(&dom);
    assert!(map.contains("<svg"), "an inline SVG: {map}");
    assert_eq!(count(map, "class=\"map-grid\""), 27, "a path per grid");
    assert_eq!(
        count(map, "class=\"map-community\""),
        9,
        "a path per community"
    );
    assert_eq!(
        count(map, "<circle"),
        2,
        "a dot per open request with a point"
    );
    for id in &with_points {
        assert!(
            map.contains(&format!("data-request-id=\"{id}\"")),
            "{id} on the map"
        );
    }
    assert!(!map.contains(&without_point), "no dot without a point");
    assert!(
        map.contains("data-grid=\"wg-030303\""),
        "grids are labelled by code"
    );

    let kiosk = format!(
        "{}/dashboard#date=2026-03-02&token={SCREEN_TOKEN}",
        app.address
    );
    let dom = run_chromium(&kiosk, &["--dump-dom".to_string()]).await;
    assert!(dom.contains("data-state=\"ready\""), "{dom}");
    let map = map_region(&dom);
    assert_eq!(count(map, "class=\"map-grid\""), 27);
    assert_eq!(
        count(map, "<circle"),
        0,
        "the screen role gets no request points"
    );
    assert!(dom.contains("grid polygons only"), "and is told so");

    app.teardown().await;
}
