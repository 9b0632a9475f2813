//! The XML format of GeoReport v2: the same documents as JSON, for `.xml` paths.
//!
//! Handlers answer JSON; [`xml_format`] rewrites the answer of every `.xml` path into the
//! spec's XML (`<services><service>…`, `<service_definition>…`, `<service_requests><request>…`,
//! `<errors><error>…`), so both formats come from one set of types.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// Largest JSON answer converted (lists are capped well below it).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// The element name of an array's items, by the array's element name.
fn item_name(list: &str) -> &'static str {
    match list {
        "services" => "service",
        "service_requests" => "request",
        "attributes" => "attribute",
        "values" => "value",
        "errors" => "error",
        "endpoints" => "endpoint",
        "formats" => "format",
        _ => "item",
    }
}

fn element(name: &str, value: &Value, out: &mut String) {
    match value {
        Value::Null => {
            out.push('<');
            out.push_str(name);
            out.push_str("/>");
        }
        Value::Array(items) => {
            out.push_str(&format!("<{name}>"));
            for item in items {
                element(item_name(name), item, out);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::Object(members) => {
            out.push_str(&format!("<{name}>"));
            for (key, member) in members {
                element(key, member, out);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::String(text) => {
            out.push_str(&format!("<{name}>"));
            out.push_str(&quick_xml::escape::escape(text.as_str()));
            out.push_str(&format!("</{name}>"));
        }
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

/// `value` as an XML document with root element `root`.
pub fn document(root: &str, value: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    element(root, value, &mut out);
    out
}

/// The root element of an answer to `path` with `status`.
pub fn root_for(path: &str, error: bool) -> &'static str {
    if error {
        "errors"
    } else if path.ends_with("/discovery.xml") {
        "discovery"
    } else if path.ends_with("/services.xml") {
        "services"
    } else if path.contains("/services/") {
        "service_definition"
    } else {
        "service_requests"
    }
}

/// Middleware: the answer of a `.xml` path, as XML.
pub async fn xml_format(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    if !path.ends_with(".xml") {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ANSWER_BYTES).await else {
        return super::wire::Open311Error::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "the answer could not be read",
        )
        .into_response();
    };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let root = root_for(
        &path,
        parts.status.is_client_error() || parts.status.is_server_error(),
    );
    let text = document(root, &value);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_nest_their_items_and_text_is_escaped() {
        let value = serde_json::json!([{"code": 403, "description": "a < b & \"c\""}]);
        assert_eq!(
            document("errors", &value),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><errors><error><code>403</code>\
             <description>a &lt; b &amp; &quot;c&quot;</description></error></errors>"
        );
        let definition = serde_json::json!({"service_code": "x", "attributes": [
            {"code": "grid", "datatype_description": null, "values": [{"key": "k", "name": "n"}]}
        ]});
        assert_eq!(
            document("service_definition", &definition),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><service_definition><attributes>\
             <attribute><code>grid</code><datatype_description/><values><value><key>k</key>\
             <name>n</name></value></values></attribute></attributes>\
             <service_code>x</service_code></service_definition>"
        );
    }
}
