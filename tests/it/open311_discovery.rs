//! Open311 service discovery and unknown paths: `discovery.json` has the keys and types of
//! the spec's example and names this endpoint (GeoReport v2, production, JSON and XML);
//! `discovery.xml` is the same document; every path under `/open311/v2/` no route serves
//! answers the spec's error array, 400 for another format of a served resource and 404 for
//! anything else.

use serde_json::Value;
use tests::app::Store;

use crate::open311::{assert_same_shape, fixture_json, get, get_xml, keys, spawn};

#[tokio::test]
async fn discovery_names_this_endpoint_in_json_and_xml() {
    let app = spawn(Store::Sqlite, None, false).await;
    let (status, discovery) = get(&app, "/open311/v2/discovery.json").await;
    assert_eq!(status, 200, "{discovery}");
    assert_same_shape(&discovery, &fixture_json("discovery.json"), "discovery");
    let endpoints = discovery["endpoints"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), 1, "{discovery}");
    let endpoint = &endpoints[0];
    assert_eq!(
        endpoint["specification"],
        "http://wiki.open311.org/GeoReport_v2"
    );
    assert_eq!(endpoint["type"], "production");
    assert_eq!(
        endpoint["formats"],
        serde_json::json!(["text/xml", "application/json"])
    );
    let url = endpoint["url"].as_str().expect("url");
    assert_eq!(url, format!("{}/open311/v2", app.address));
    // The endpoint URL serves the API.
    let (status, services) = get(
        &app,
        &format!("{}/services.json", &url[app.address.len()..]),
    )
    .await;
    assert_eq!(status, 200, "{services}");

    let (status, xml) = get_xml(&app, "/open311/v2/discovery.xml").await;
    assert_eq!(status, 200);
    assert_eq!(xml.name, "discovery");
    assert_eq!(xml.child_names(), keys(&discovery));
    assert_eq!(xml.child("changeset").text, discovery["changeset"]);
    let endpoint_xml = &xml.child("endpoints").children[0];
    assert_eq!(endpoint_xml.name, "endpoint");
    assert_eq!(endpoint_xml.child("url").text, url);
    let formats: Vec<&str> = endpoint_xml
        .child("formats")
        .children
        .iter()
        .map(|f| {
            assert_eq!(f.name, "format");
            f.text.as_str()
        })
        .collect();
    assert_eq!(formats, ["text/xml", "application/json"]);
}

#[tokio::test]
async fn unknown_formats_and_paths_answer_the_spec_error_array() {
    let app = spawn(Store::Sqlite, None, false).await;
    let example = fixture_json("error.json");
    let cases = [
        ("/open311/v2/services.csv", 400),
        ("/open311/v2/requests.csv", 400),
        ("/open311/v2/discovery.csv", 400),
        (
            "/open311/v2/requests/0190b5b4-0000-7000-8000-000000000000.csv",
            400,
        ),
        ("/open311/v2/services/um-street-vending.csv", 400),
        ("/open311/v2/tokens/abc.json", 404),
        ("/open311/v2/nothing", 404),
    ];
    for (path, want) in cases {
        let (status, body) = get(&app, path).await;
        assert_eq!(status, want, "{path}: {body}");
        assert_same_shape(&body, &example, path);
        assert_eq!(body[0]["code"], Value::from(want), "{path}: {body}");
    }
    let (status, errors) = get_xml(&app, "/open311/v2/nothing.xml").await;
    assert_eq!(status, 404);
    assert_eq!(errors.name, "errors");
    assert_eq!(errors.children[0].child("code").text, "404");
}
