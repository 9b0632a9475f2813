//! Open311 `lat`/`long` from the place intake recorded: a request submitted natively on the
//! online channel with an Open311 ticket and a GCJ-02 point (no marked location line in its
//! text) answers the recorded WGS-84 point in `GET requests/{id}.json`, `.xml` and the
//! list by id; hiding its public text leaves the point published.

use engine_core::places::gcj02::wgs84_to_gcj02;
use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors};

use crate::open311::{get, spawn};

/// A point in grid wg-020202 of the built-in polygons, WGS-84.
const IN_020202: (f64, f64) = (34.785, 117.59);

/// Submits a document on the online channel with an Open311 ticket and `point`; the text has
/// no marked location line, so only the recorded place can answer `lat`/`long`.
async fn submit(app: &TestApp, point: Value) -> String {
    let document = json!({
        "channel": "online",
        "external_id": format!("o311:um-street-vending:{}", uuid::Uuid::now_v7().simple()),
        "anonymous": true,
        "point": point,
        "address": "文化路 12 号北门",
        "text": "路灯不亮 The street light at the north gate is out.",
    });
    let (status, created) = app.intake(&document).await;
    assert_eq!(status, 201, "{created}");
    created["request_id"].as_str().unwrap().to_string()
}

/// `lat` and `long` of the XML answer, as numbers.
async fn xml_point(app: &TestApp, id: &str) -> (f64, f64) {
    let xml = app
        .client
        .get(format!("{}/open311/v2/requests/{id}.xml", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let field = |name: &str| -> f64 {
        let open = format!("<{name}>");
        let start = xml
            .find(&open)
            .unwrap_or_else(|| panic!("no {name} in {xml}"))
            + open.len();
        let end = start + xml[start..].find('<').unwrap();
        xml[start..end]
            .parse()
            .unwrap_or_else(|_| panic!("{name} in {xml}"))
    };
    (field("lat"), field("long"))
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-6)
}

#[tokio::test]
async fn open311_answers_the_recorded_wgs84_point_also_when_the_text_is_hidden() {
    // Arrange: a GCJ-02 point, which intake records converted to WGS-84.
    let app = spawn(Store::Sqlite, None, false).await;
    let (g_lat, g_lon) = wgs84_to_gcj02(IN_020202.0, IN_020202.1);
    let id = submit(&app, json!({"lat": g_lat, "lon": g_lon, "datum": "gcj02"})).await;
    let history = app.history(&id).await;
    let recorded = &history[0]["data"]["place"]["point"];
    assert!(close(&recorded["lat"], IN_020202.0), "{recorded}");
    let path = format!("/open311/v2/requests/{id}.json");

    // Act
    let (status, one) = get(&app, &path).await;
    let (_, listed) = get(
        &app,
        &format!("/open311/v2/requests.json?service_request_id={id}"),
    )
    .await;
    let xml = xml_point(&app, &id).await;

    // Assert: the recorded WGS-84 point, not the GCJ-02 one sent.
    assert_eq!(status, 200, "{one}");
    assert_eq!(one[0]["lat"], recorded["lat"], "{one}");
    assert_eq!(one[0]["long"], recorded["lon"], "{one}");
    assert!(
        !close(&one[0]["lat"], g_lat),
        "the sent GCJ-02 latitude is not answered"
    );
    assert_eq!(one[0]["address"], "文化路 12 号北门");
    assert_eq!(listed[0]["lat"], one[0]["lat"], "{listed}");
    assert!(
        close(&json!(xml.0), IN_020202.0) && close(&json!(xml.1), IN_020202.1),
        "{xml:?}"
    );

    // Moderation hides the words, not the place of the matter.
    let hide = json!({"moderation": "hide", "reason": "personal data of a third party"});
    let (status, body) = app
        .command(&id, "moderate_public_text", actors::SUPERVISOR, &hide)
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, hidden) = get(&app, &path).await;
    assert!(hidden[0]["description"].is_null(), "{hidden}");
    assert_eq!(hidden[0]["lat"], recorded["lat"], "{hidden}");
    assert_eq!(hidden[0]["long"], recorded["lon"], "{hidden}");
    app.teardown().await;
}

#[tokio::test]
async fn a_request_recorded_without_a_point_answers_no_lat_long() {
    let app = spawn(Store::Sqlite, None, false).await;
    let document = json!({
        "channel": "online",
        "external_id": format!("o311:um-street-vending:{}", uuid::Uuid::now_v7().simple()),
        "anonymous": true,
        "location": {"street": "jd-01", "community": "sq-0101", "grid": "wg-010102"},
        "text": "路灯不亮",
    });
    let (status, created) = app.intake(&document).await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().unwrap();
    let (_, one) = get(&app, &format!("/open311/v2/requests/{id}.json")).await;
    assert!(one[0]["lat"].is_null() && one[0]["long"].is_null(), "{one}");
    app.teardown().await;
}
