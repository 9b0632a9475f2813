//! Places: intake (HTTP, NATS request-reply, Open311, `bianmin import`) with a point instead
//! of a grid path is placed in the grid whose polygon holds it (WGS-84 or GCJ-02), recorded on
//! `request_received` and in the read model's lat/lon; a point outside the jurisdiction is
//! refused and nothing recorded; a malformed grid file stops the policy from loading, naming
//! the file; `GET /api/v1/map` answers the polygons and the open requests' points under the
//! request list's rule. On SQLite (read models on SQLite) and JetStream (read models on
//! PostgreSQL).

use std::time::{Duration, Instant};

use engine_core::places::gcj02::wgs84_to_gcj02;
use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, spawn_app_with};
use tests::pg::TestDb;

/// The middle of grid wg-010101 (jd-01 / sq-0101) in the built-in polygons.
const IN_010101: (f64, f64) = (34.755, 117.51);
/// The middle of grid wg-020202 (jd-02 / sq-0202).
const IN_020202: (f64, f64) = (34.785, 117.59);

fn point_document(point: Value) -> Value {
    json!({
        "channel": "online",
        "external_id": external_id(),
        "anonymous": true,
        "point": point,
        "address": "文化路 12 号北门",
        "text": "路灯不亮 The street light at the north gate is out.",
    })
}

async fn spawn(store: Store, database_url: Option<String>) -> TestApp {
    spawn_app_with(store, move |config| {
        config.projections.enabled = true;
        config.database_url = database_url;
    })
    .await
}

async fn received(app: &TestApp, id: &str) -> Value {
    let history = app.history(id).await;
    assert_eq!(history[0]["type"], "request_received", "{history:?}");
    history[0]["data"].clone()
}

/// Polls `GET /api/v1/map{query}` as `actor` until `id` is among the points (10 s at most).
async fn map_with(app: &TestApp, actor: &str, query: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = app.get(&format!("/api/v1/map{query}"), actor).await;
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.expect("JSON");
        let listed = body["points"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["request_id"] == id));
        if listed || Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_point_alone_places_the_request(store: Store, database_url: Option<String>) {
    let app = spawn(store, database_url).await;

    // The polygons in force are recorded as reference data at start-up.
    let response = app.get("/api/v1/audit/reference", actors::AUDITOR).await;
    let records: Value = response.json().await.expect("JSON");
    let grids = records
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["recorded"]["kind"] == "grid_polygons")
        .unwrap_or_else(|| panic!("grid polygons recorded: {records}"));
    assert_eq!(grids["recorded"]["version"], "2026.1");
    assert_eq!(grids["recorded"]["source"], "built-in grids");

    // A WGS-84 point only: filed under the grid holding it.
    let (lat, lon) = IN_010101;
    let (status, created) = app
        .intake(&point_document(json!({"lat": lat, "lon": lon})))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id").to_string();
    let data = received(&app, &id).await;
    assert_eq!(
        data["location"],
        json!({"street": "jd-01", "community": "sq-0101", "grid": "wg-010101"})
    );
    assert_eq!(
        data["place"],
        json!({"point": {"lat": lat, "lon": lon, "datum": "wgs84"}, "address": "文化路 12 号北门"})
    );

    // A GCJ-02 point (as a Chinese map app sends it): converted, the original kept.
    let (g_lat, g_lon) = wgs84_to_gcj02(IN_020202.0, IN_020202.1);
    let (status, created) = app
        .intake(&point_document(
            json!({"lat": g_lat, "lon": g_lon, "datum": "gcj02"}),
        ))
        .await;
    assert_eq!(status, 201, "{created}");
    let gcj_id = created["request_id"].as_str().expect("id").to_string();
    let data = received(&app, &gcj_id).await;
    assert_eq!(data["location"]["grid"], "wg-020202", "{data}");
    let point = &data["place"]["point"];
    assert_eq!(point["datum"], "wgs84");
    assert!(
        (point["lat"].as_f64().expect("lat") - IN_020202.0).abs() < 1e-6,
        "{point}"
    );
    assert!(
        (point["lon"].as_f64().expect("lon") - IN_020202.1).abs() < 1e-6,
        "{point}"
    );
    assert_eq!(
        data["place"]["sent"],
        json!({"lat": g_lat, "lon": g_lon, "datum": "gcj02"})
    );

    // The map: polygons and both points for a supervisor; the read model's row has lat/lon.
    let map = map_with(&app, actors::AUDITOR, "", &gcj_id).await;
    assert_eq!(map["version"], "2026.1");
    assert_eq!(
        map["areas"].as_array().map(Vec::len),
        Some(36),
        "9 communities, 27 grids"
    );
    assert_eq!(map["bounds"], json!([117.5, 34.74, 117.68, 34.83]));
    assert_eq!(map["points_visible"], true);
    let points = map["points"].as_array().expect("points");
    let ours = points
        .iter()
        .find(|p| p["request_id"] == id.as_str())
        .unwrap_or_else(|| panic!("the first request is on the map: {map}"));
    assert_eq!(
        (ours["lat"].as_f64(), ours["lon"].as_f64()),
        (Some(lat), Some(lon))
    );
    assert_eq!(ours["grid"], "wg-010101");
    assert!(points.iter().any(|p| p["request_id"] == gcj_id.as_str()));
    let response = app.get("/api/v1/requests?limit=100", actors::AUDITOR).await;
    let rows: Value = response.json().await.expect("JSON");
    let row = rows["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["request_id"] == id.as_str())
        .cloned()
        .expect("listed");
    assert_eq!(
        (row["lat"].as_f64(), row["lon"].as_f64()),
        (Some(lat), Some(lon))
    );

    // A station worker sees their community's points; the dashboard role the polygons only.
    let map = map_with(&app, actors::STATION, "?community=sq-0101", &id).await;
    let ids: Vec<&str> = map["points"]
        .as_array()
        .expect("points")
        .iter()
        .filter_map(|p| p["request_id"].as_str())
        .collect();
    assert_eq!(ids, [id.as_str()], "{map}");
    let response = app.get("/api/v1/map", actors::DASHBOARD).await;
    let map: Value = response.json().await.expect("JSON");
    assert_eq!(map["points_visible"], false);
    assert_eq!(map["points"], json!([]));
    assert_eq!(map["areas"].as_array().map(Vec::len), Some(36));
    let response = app.get("/api/v1/map?colour=red", actors::AUDITOR).await;
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        (body["code"].as_str(), body["field"].as_str()),
        (Some("malformed"), Some("colour"))
    );

    app.teardown().await;
}

#[tokio::test]
async fn a_point_alone_places_the_request_on_sqlite() {
    a_point_alone_places_the_request(Store::Sqlite, None).await;
}

#[tokio::test]
async fn a_point_alone_places_the_request_on_nats_and_postgres() {
    let db = TestDb::create().await.expect("a test database");
    a_point_alone_places_the_request(Store::Nats, Some(db.url.clone())).await;
    db.drop_db().await;
}

async fn bad_points_are_refused(store: Store) {
    let app = spawn_app_with(store, |_| {}).await;
    let cases = [
        (
            "outside the jurisdiction",
            point_document(json!({"lat": 39.9087, "lon": 116.3975})),
            "outside_jurisdiction",
            "location",
        ),
        (
            "outside, with a grid path",
            {
                let mut d = point_document(json!({"lat": 34.70, "lon": 117.51}));
                d["location"] =
                    json!({"street": "jd-01", "community": "sq-0101", "grid": "wg-010101"});
                d
            },
            "outside_jurisdiction",
            "location",
        ),
        (
            "latitude out of range",
            point_document(json!({"lat": 134.7, "lon": 117.51})),
            "invalid_value",
            "point",
        ),
        (
            "neither point nor grid path",
            {
                let mut d = point_document(json!({"lat": 0.0, "lon": 0.0}));
                d.as_object_mut().expect("object").remove("point");
                d
            },
            "required",
            "location",
        ),
    ];
    for (case, document, code, field) in cases {
        let before = app.log_length().await;
        let (status, body) = app.intake(&document).await;
        assert_eq!(status, 400, "{case}: {body}");
        assert_eq!(
            (body["code"].as_str(), body["field"].as_str()),
            (Some(code), Some(field)),
            "{case}: {body}"
        );
        assert_eq!(app.log_length().await, before, "{case}: nothing recorded");
    }
    // A grid path with a point in another grid: the path is kept, the point recorded.
    let mut document = point_document(json!({"lat": IN_020202.0, "lon": IN_020202.1}));
    document["location"] = json!({"street": "jd-01", "community": "sq-0101", "grid": "wg-010102"});
    let (status, created) = app.intake(&document).await;
    assert_eq!(status, 201, "{created}");
    let data = received(&app, created["request_id"].as_str().expect("id")).await;
    assert_eq!(data["location"]["grid"], "wg-010102");
    assert_eq!(data["place"]["point"]["lat"], IN_020202.0);
    app.teardown().await;
}

tests::on_both_stores!(bad_points_are_refused);

#[tokio::test]
async fn open311_lat_long_place_the_request() {
    let app = crate::open311::spawn(Store::Sqlite, None, false).await;
    let post = |body: String| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(format!("{}/open311/v2/requests.json", app.address))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("answers");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON"))
        }
    };
    let form = |lat: f64, long: f64| {
        format!(
            "api_key={}&service_code={}&lat={lat}&long={long}&address_string=Wenhua+Road+12&description=lamp+out",
            crate::open311::API_KEY,
            crate::open311::SERVICE
        )
    };
    let (status, created) = post(form(IN_020202.0, IN_020202.1)).await;
    assert_eq!(status, 201, "{created}");
    let id = created[0]["service_request_id"].as_str().expect("id");
    let data = received(&app, id).await;
    assert_eq!(
        data["location"],
        json!({"street": "jd-02", "community": "sq-0202", "grid": "wg-020202"})
    );
    assert_eq!(
        data["place"]["point"],
        json!({"lat": IN_020202.0, "lon": IN_020202.1, "datum": "wgs84"})
    );
    assert_eq!(data["place"]["address"], "Wenhua Road 12");

    let before = app.log_length().await;
    let (status, error) = post(form(37.76524078, -122.4212043)).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error[0]["code"], 400);
    assert!(
        error[0]["description"]
            .as_str()
            .is_some_and(|d| d.contains("outside every grid")),
        "{error}"
    );
    assert_eq!(app.log_length().await, before, "nothing recorded");
    app.teardown().await;
}

#[test]
fn a_malformed_grid_file_stops_the_policy_loading_naming_the_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("grids.geojson");
    let mut config = engine_service::config::PolicyConfig {
        grids_file: Some(path.clone()),
        ..Default::default()
    };
    let cases = [
        (
            "{\"type\": \"FeatureCollection\", \"features\": [",
            "grids.geojson",
        ),
        (
            r#"{"type":"FeatureCollection","version":"1","features":[{"type":"Feature","properties":{"level":"grid","street":"jd-01","community":"sq-0101","grid":"wg-nowhere"},"geometry":{"type":"Polygon","coordinates":[[[117.5,34.7],[117.6,34.7],[117.6,34.8],[117.5,34.7]]]}}]}"#,
            "features[0]: field `properties`",
        ),
    ];
    for (text, needle) in cases {
        std::fs::write(&path, text).expect("written");
        let error = engine_service::policy_files::load_policy(&config)
            .expect_err("a malformed grid file is refused");
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains(needle), "{message}");
    }
    // A missing file is refused too, naming it.
    config.grids_file = Some(dir.path().join("missing.geojson"));
    let error = engine_service::policy_files::load_policy(&config).expect_err("missing");
    assert!(
        format!("{error:?}").contains("missing.geojson"),
        "{error:?}"
    );
    // The shipped file loads and is recorded as grid-polygon reference data.
    config.grids_file = None;
    let (policy, sources) =
        engine_service::policy_files::load_policy_with_sources(&config).expect("built-in");
    assert_eq!(policy.places().areas().len(), 36);
    assert!(
        sources
            .iter()
            .any(|s| s.kind == schemas::event::ReferenceKind::GridPolygons
                && s.source == "built-in grids")
    );
}

async fn imported_rows_keep_their_points(store: Store) {
    use crate::import::{Stores, bad_rows, request_id};

    let stores = Stores::open(store).await;
    let prefix = format!("PLC-{}", uuid::Uuid::now_v7().simple());
    let (g_lat, g_lon) = wgs84_to_gcj02(IN_020202.0, IN_020202.1);
    let text = format!(
        "external_id,channel,received_at,street,community,grid,lat,lon,datum,address,text\n\
         {prefix}-A,hotline,2026-02-02 09:12,jd-02,sq-0202,wg-020202,{g_lat},{g_lon},gcj02,文化路 12 号,路灯不亮\n\
         {prefix}-B,hotline,2026-02-02 09:13,jd-02,sq-0202,wg-020202,39.9,116.4,,,路灯不亮\n\
         {prefix}-C,hotline,2026-02-02 09:14,jd-02,sq-0202,wg-020202,34.785,,,,路灯不亮\n"
    );
    let path = stores.dir.path().join("points.csv");
    std::fs::write(&path, text).expect("written");
    let report = stores
        .importer()
        .run(&engine_service::import::ImportOptions::new(&path), None)
        .await
        .expect("the import runs");
    assert_eq!(report.imported, 1, "{report:#?}");
    assert_eq!(
        bad_rows(&report),
        vec![
            (3, Some("lat"), "outside_jurisdiction"),
            (4, Some("lon"), "required")
        ]
    );
    let history = stores
        .log
        .load(request_id(&format!("{prefix}-A")))
        .await
        .expect("load");
    let schemas::Event::RequestReceived(received) = &history[0].commit.events[0].event else {
        panic!("the first event is request_received");
    };
    let place = received.place.clone().expect("a place");
    let point = place.point.expect("a point");
    assert!((point.lat - IN_020202.0).abs() < 1e-6 && (point.lon - IN_020202.1).abs() < 1e-6);
    assert_eq!(place.sent.map(|s| s.datum), Some(schemas::Datum::Gcj02));
    assert_eq!(place.address.as_deref(), Some("文化路 12 号"));
    for bad in ["B", "C"] {
        let commits = stores
            .log
            .load(request_id(&format!("{prefix}-{bad}")))
            .await
            .expect("load");
        assert!(commits.is_empty(), "row {bad} recorded nothing");
    }
    let projections = stores.project().await;
    let (points, _) = projections
        .open_points(&projections::query::Filter::default())
        .await
        .expect("points");
    assert_eq!(points.len(), 1, "{points:?}");
    assert_eq!(points[0].grid, "wg-020202");
    assert!((points[0].lat - IN_020202.0).abs() < 1e-6);
    stores.close().await;
}

#[tokio::test]
async fn imported_rows_keep_their_points_on_sqlite() {
    imported_rows_keep_their_points(Store::Sqlite).await;
}

#[tokio::test]
async fn imported_rows_keep_their_points_on_jetstream_and_postgres() {
    imported_rows_keep_their_points(Store::Nats).await;
}

/// Over NATS request-reply: a GCJ-02 point alone is placed as over HTTP, and a point outside
/// the jurisdiction is answered with the error reply and recorded nowhere.
async fn nats_intake_with_a_point(store: crate::nats_intake::Store) {
    use crate::nats_intake::{Engine, expected_id};

    let engine = Engine::build(store).await;
    let (shutdown, task) = engine.serve().await;
    let actor = Some("app-gateway;intake_system");
    let (g_lat, g_lon) = wgs84_to_gcj02(IN_010101.0, IN_010101.1);
    let mut document = point_document(json!({"lat": g_lat, "lon": g_lon, "datum": "gcj02"}));
    document["external_id"] = json!("APP-0001");
    let subject = engine.cfg.names.intake_subject("online");
    let (error, body) = engine
        .request(subject.clone(), actor, document.to_string().into_bytes())
        .await;
    assert_eq!(error, None, "{body}");
    let id = expected_id("online", "APP-0001");
    assert_eq!(body["request_id"], json!(id));
    let history = engine.service.history(id).await.expect("history");
    let schemas::Event::RequestReceived(received) = &history[0].event else {
        panic!("request_received first");
    };
    assert_eq!(received.location.grid, "wg-010101");
    assert_eq!(
        received
            .place
            .as_ref()
            .and_then(|p| p.sent)
            .map(|s| s.datum),
        Some(schemas::Datum::Gcj02)
    );

    let mut outside = point_document(json!({"lat": 31.2304, "lon": 121.4737}));
    outside["external_id"] = json!("APP-0002");
    let (error, body) = engine
        .request(subject, actor, outside.to_string().into_bytes())
        .await;
    assert_eq!(error.as_deref(), Some("outside_jurisdiction"), "{body}");
    assert_eq!(body["error"]["field"], "location", "{body}");
    assert!(
        engine
            .event_kinds(expected_id("online", "APP-0002"))
            .await
            .is_empty()
    );

    shutdown.cancel();
    task.await.expect("server task");
    engine.cleanup().await;
}

#[tokio::test]
async fn nats_intake_with_a_point_on_sqlite() {
    nats_intake_with_a_point(crate::nats_intake::Store::Sqlite).await;
}

#[tokio::test]
async fn nats_intake_with_a_point_on_jetstream() {
    nats_intake_with_a_point(crate::nats_intake::Store::JetStream).await;
}

#[tokio::test]
async fn the_engine_refuses_to_start_on_a_malformed_grid_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let grids = dir.path().join("district-grids.geojson");
    std::fs::write(&grids, r#"{"type":"FeatureCollection","features":[]}"#).expect("written");
    let mut config = engine_service::config::Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    config.http.listen = "127.0.0.1:0".parse().expect("address");
    config.projections.enabled = false;
    config.policy.grids_file = Some(grids.clone());
    let role = engine_service::app::Role::Serve { supervisor: false };
    let Err(error) = engine_service::app::App::build(config, role).await else {
        panic!("the engine started on a grid file without a version");
    };
    let message = error.to_string();
    assert!(message.contains("district-grids.geojson"), "{message}");
    assert!(message.contains("version"), "{message}");
}
