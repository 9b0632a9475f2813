//! `GET /open311/v2/discovery.json` (and `.xml`): the GeoReport v2 service discovery document
//! (<http://wiki.open311.org/Service_Discovery>), and the spec's error array for every other
//! file under `/open311/v2/` (an unknown format of a known resource answers 400, anything else
//! 404).

use axum::Extension;
use axum::Json;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Open311State;
use super::wire::{Open311Error, Open311ErrorItem};

/// The specification every endpoint implements.
pub const SPECIFICATION: &str = "http://wiki.open311.org/GeoReport_v2";

/// When the Open311 surface of this code last changed (the discovery document's `changeset`,
/// in the spec's `YYYY-MM-DD HH:MM`): bump it with any change of routes, parameters or
/// documents under `/open311/v2/`.
pub const CHANGESET: &str = "2026-12-02 00:00";

/// The formats every endpoint answers (media types, as the spec lists them).
const FORMATS: [&str; 2] = ["text/xml", "application/json"];

/// The prefix of every Open311 path.
pub const PREFIX: &str = "/open311/v2/";

/// The resources served under [`PREFIX`] (each as `<name>.json` / `<name>.xml`).
const RESOURCES: [&str; 3] = ["discovery", "services", "requests"];

/// The service discovery document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Open311Discovery")]
pub struct Discovery {
    /// When the API last changed (`YYYY-MM-DD HH:MM`).
    pub changeset: String,
    /// Who to contact about the API (`open311.contact`).
    pub contact: String,
    /// How to get an `api_key` (`open311.key_service`).
    pub key_service: String,
    /// The endpoints: this server's.
    pub endpoints: Vec<Endpoint>,
}

/// One endpoint of the discovery document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Open311Endpoint")]
pub struct Endpoint {
    /// The specification implemented: always [`SPECIFICATION`].
    pub specification: String,
    /// The endpoint's base URL (`…/open311/v2`).
    pub url: String,
    /// When the endpoint last changed (`YYYY-MM-DD HH:MM`).
    pub changeset: String,
    /// `production` (the spec's other values are `test` and `sandbox`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The media types answered: `text/xml` and `application/json`.
    pub formats: Vec<String>,
}

/// `GET /open311/v2/discovery.json`: this deployment's one production endpoint.
pub async fn discovery(
    Extension(state): Extension<Open311State>,
    headers: HeaderMap,
) -> Json<Discovery> {
    let config = &state.config;
    let url = match &config.base_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => derived_base_url(&headers),
    };
    Json(Discovery {
        changeset: CHANGESET.into(),
        contact: config.contact.clone(),
        key_service: config.key_service.clone(),
        endpoints: vec![Endpoint {
            specification: SPECIFICATION.into(),
            url,
            changeset: CHANGESET.into(),
            kind: "production".into(),
            formats: FORMATS.iter().map(|f| f.to_string()).collect(),
        }],
    })
}

/// The base URL from the request's `Host` (and `X-Forwarded-Proto`, behind a proxy) when
/// `open311.base_url` is not configured.
fn derived_base_url(headers: &HeaderMap) -> String {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let host = text(header::HOST.as_str()).unwrap_or("localhost");
    let scheme = match text("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}/open311/v2")
}

/// The answer to a path under [`PREFIX`] no route serves: 400 for a served resource in
/// another format (`services.csv`, `requests/<id>.csv`), else 404; as the spec's error array,
/// in XML for a `.xml` path.
pub fn unknown_path(path: &str) -> Response {
    let rest = path.strip_prefix(PREFIX).unwrap_or(path);
    let (name, format) = rest.rsplit_once('.').unwrap_or((rest, ""));
    let resource = name.split('/').next().unwrap_or(name);
    let depth = name.split('/').count();
    let known = match resource {
        "services" | "requests" => depth <= 2 && !name.ends_with('/'),
        other => RESOURCES.contains(&other) && depth == 1,
    };
    let error = if known && !format.is_empty() && format != "json" && format != "xml" {
        Open311Error::bad_request(format!(
            "format `{format}` is not served: use .json or .xml"
        ))
    } else {
        Open311Error::not_found(format!(
            "no such resource `{path}`: see {PREFIX}discovery.json"
        ))
    };
    if format == "xml" {
        xml_error(error)
    } else {
        error.into_response()
    }
}

fn xml_error(error: Open311Error) -> Response {
    let items = vec![Open311ErrorItem {
        code: error.status.as_u16(),
        description: error.description,
    }];
    let value = serde_json::to_value(items).unwrap_or_default();
    (
        error.status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        super::xml::document("errors", &value),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(path: &str) -> (u16, String) {
        let response = unknown_path(path);
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap_or_default();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn another_format_of_a_served_resource_is_400_anything_else_404() {
        for path in [
            "/open311/v2/services.csv",
            "/open311/v2/requests.csv",
            "/open311/v2/discovery.csv",
            "/open311/v2/requests/0190b5b4-0000-7000-8000-000000000000.csv",
            "/open311/v2/services/um-street-vending.csv",
        ] {
            let (status, body) = answer(path).await;
            assert_eq!(status, 400, "{path}: {body}");
            let items: Vec<Open311ErrorItem> = serde_json::from_str(&body).expect(path);
            assert_eq!(items[0].code, 400);
        }
        for path in [
            "/open311/v2/tokens.json",
            "/open311/v2/nothing",
            "/open311/v2/discovery/x.json",
        ] {
            let (status, body) = answer(path).await;
            assert_eq!(status, 404, "{path}: {body}");
            assert!(body.starts_with("[{\"code\":404"), "{path}: {body}");
        }
        let (status, body) = answer("/open311/v2/tokens.xml").await;
        assert_eq!(status, 404);
        assert!(body.contains("<errors><error><code>404</code>"), "{body}");
    }
}
