//! The Open311 GeoReport v2 documents as they travel (JSON), and the spec's error array.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One entry of `GET /open311/v2/services.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Service {
    /// The catalogue item id.
    pub service_code: String,
    /// The item's display name.
    pub service_name: String,
    /// What the item covers and its limits.
    pub description: String,
    /// Whether a service definition (attributes) exists: always true (the grid attribute).
    pub metadata: bool,
    /// Always `realtime`: a request id is answered synchronously.
    #[serde(rename = "type")]
    pub kind: String,
    /// Comma-separated keywords: the category id and the item id.
    pub keywords: String,
    /// The catalogue category's name.
    pub group: String,
}

/// `GET /open311/v2/services/{service_code}.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceDefinition {
    /// The catalogue item id.
    pub service_code: String,
    /// The extra questions a client asks.
    pub attributes: Vec<Attribute>,
}

/// One attribute of a service definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Attribute {
    /// True: the client asks the resident for a value.
    pub variable: bool,
    /// The attribute code, sent back as `attribute[<code>]`.
    pub code: String,
    /// `string`, `number`, `datetime`, `text`, `singlevaluelist` or `multivaluelist`.
    pub datatype: String,
    /// Whether a value is required.
    pub required: bool,
    /// Help on the expected format, when any.
    pub datatype_description: Option<String>,
    /// Position in the form, from 1.
    pub order: u32,
    /// The question.
    pub description: String,
    /// The allowed values of list attributes.
    pub values: Vec<AttributeValue>,
}

/// An allowed value of a list attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AttributeValue {
    /// The value sent back.
    pub key: String,
    /// Its label.
    pub name: String,
}

/// One element of the answer to `POST /open311/v2/requests.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CreatedRequest {
    /// The request id (a UUID).
    pub service_request_id: String,
    /// What happens next: limits of the service.
    pub service_notice: Option<String>,
    /// The account id the client sent (echoed; never stored).
    pub account_id: Option<String>,
}

/// One element of `GET /open311/v2/requests.json` and `GET /open311/v2/requests/{id}.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceRequest {
    /// The request id (a UUID).
    pub service_request_id: String,
    /// `open` or `closed` (see `docs/open311.md` for the mapping from the workflow stage).
    pub status: String,
    /// The workflow stage in words, with the reply outcome once replied.
    pub status_notes: Option<String>,
    /// The catalogue item's name (the requested one until the request is classified).
    pub service_name: Option<String>,
    /// The catalogue item id (the requested one until the request is classified).
    pub service_code: Option<String>,
    /// The resident's description as submitted.
    pub description: Option<String>,
    /// The lead department handling it, once known.
    pub agency_responsible: Option<String>,
    /// The service's limits.
    pub service_notice: Option<String>,
    /// When the request was received.
    pub requested_datetime: String,
    /// When it last changed.
    pub updated_datetime: String,
    /// When completion is due (the completion deadline in force), once classified.
    pub expected_datetime: Option<String>,
    /// The address as submitted.
    pub address: Option<String>,
    /// The address id as submitted.
    pub address_id: Option<String>,
    /// The zip code, never known here.
    pub zipcode: Option<String>,
    /// Latitude of the point intake recorded, WGS-84.
    pub lat: Option<f64>,
    /// Longitude of the point intake recorded, WGS-84.
    #[serde(rename = "long")]
    pub long: Option<f64>,
    /// The first attachment's URI.
    pub media_url: Option<String>,
}

/// One element of the spec's error array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Open311ErrorItem {
    /// The HTTP status code.
    pub code: u16,
    /// What was wrong.
    pub description: String,
}

/// An error answered as the spec's array `[{"code": …, "description": …}]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Open311Error {
    /// The status.
    pub status: StatusCode,
    /// What was wrong.
    pub description: String,
}

impl Open311Error {
    /// An error with `status`.
    pub fn new(status: StatusCode, description: impl Into<String>) -> Open311Error {
        Open311Error {
            status,
            description: description.into(),
        }
    }

    /// 400: a parameter is missing or invalid.
    pub fn bad_request(description: impl Into<String>) -> Open311Error {
        Open311Error::new(StatusCode::BAD_REQUEST, description)
    }

    /// 404: nothing of that name.
    pub fn not_found(description: impl Into<String>) -> Open311Error {
        Open311Error::new(StatusCode::NOT_FOUND, description)
    }
}

impl IntoResponse for Open311Error {
    fn into_response(self) -> Response {
        let body = vec![Open311ErrorItem {
            code: self.status.as_u16(),
            description: self.description,
        }];
        (self.status, Json(body)).into_response()
    }
}

impl From<crate::commands::CommandError> for Open311Error {
    fn from(error: crate::commands::CommandError) -> Self {
        let status =
            StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = error.body();
        let description = match body.field {
            Some(field) => format!("{} ({}: {})", body.message, body.code, field),
            None => format!("{} ({})", body.message, body.code),
        };
        Open311Error::new(status, description)
    }
}
