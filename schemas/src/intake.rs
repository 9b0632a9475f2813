//! The intake document upstream systems (hotline platforms, windows, apps, grid patrols) submit.
//!
//! Unlike [`crate::command::Receive`], it carries the resident's contact data. The engine stores
//! that in the separate contact store and puts only a reference into the event log.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::types::*;

/// A resident's contact data (personal information under PIPL). Never enters an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResidentContact {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// ID number (collect only where the catalogue item requires it).
    #[serde(default)]
    pub id_number: Option<String>,
    /// Exact address.
    #[serde(default)]
    pub address_detail: Option<String>,
}

/// A new request as submitted by an upstream system (`POST /api/v1/requests`,
/// `bianmin.intake.<channel>`, `bianmin.inbox.<channel>`).
///
/// Grid codes are at most 64 characters; a grid path (`location`) or a `point` is required.
/// Beyond this schema the engine refuses (400) a location that names no grid of its policy,
/// a point outside every grid polygon of the jurisdiction (`outside_jurisdiction`), a
/// `raised_at` more than five minutes ahead of its clock or older than the intake window
/// (older requests come in through `bianmin import`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend(
    "allOf" = [{ "properties": {
        "location": { "properties": {
            "street": { "maxLength": 64 },
            "community": { "maxLength": 64 },
            "grid": { "maxLength": 64 },
            "micro_grid": { "maxLength": 64 }
        } },
        "attachments": { "items": { "properties": {
            "uri": { "minLength": 1, "maxLength": 2048, "pattern": "\\S" }
        } } }
    } }],
    "anyOf" = [{ "required": ["location"] }, { "required": ["point"] }],
    "if" = { "properties": { "anonymous": { "const": true } }, "required": ["anonymous"] },
    "else" = {
        "required": ["contact"],
        "properties": { "contact": { "type": "object", "properties": {
            "name": { "maxLength": 256 },
            "phone": { "maxLength": 256 },
            "id_number": { "maxLength": 256 },
            "address_detail": { "maxLength": 256 }
        }, "anyOf": [
            { "required": ["name"], "properties": { "name": { "type": "string", "pattern": "\\S" } } },
            { "required": ["phone"], "properties": { "phone": { "type": "string", "pattern": "\\S" } } },
            { "required": ["id_number"], "properties": { "id_number": { "type": "string", "pattern": "\\S" } } },
            { "required": ["address_detail"], "properties": { "address_detail": { "type": "string", "pattern": "\\S" } } }
        ] } }
    }
))]
pub struct IntakeDocument {
    /// Intake channel (over NATS it must match the subject's channel).
    pub channel: Channel,
    /// The upstream ticket id (1..=128 chars). With the channel, the idempotency key:
    /// the same pair always yields the same request.
    #[schemars(length(min = 1, max = 128), extend("pattern" = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"))]
    pub external_id: String,
    /// Contact data; unless `anonymous`, required with at least one field not blank and each
    /// field at most 256 characters.
    #[serde(default)]
    pub contact: Option<ResidentContact>,
    /// Anonymous: never contacted by handling units.
    #[serde(default)]
    pub anonymous: bool,
    /// Confidential handling requested.
    #[serde(default)]
    pub confidential: bool,
    /// No reply / callback requested.
    #[serde(default)]
    pub no_reply_requested: bool,
    /// Location in the grid tree; may be left out when `point` is given, and the engine
    /// looks the grid up in its grid polygons. When both are given the grid path is kept.
    #[serde(default)]
    pub location: Option<GridPath>,
    /// Where the matter is, as a point (WGS-84 or GCJ-02); outside the jurisdiction's grid
    /// polygons it is refused (`outside_jurisdiction`).
    #[serde(default)]
    pub point: Option<crate::GeoPoint>,
    /// The address line of the matter's place (1..=512 characters, not blank).
    #[serde(default)]
    #[schemars(length(min = 1, max = 512), extend("pattern" = "\\S"))]
    pub address: Option<String>,
    /// The matter in the resident's words (1..=10000 chars, not blank).
    #[schemars(length(min = 1, max = 10000), extend("pattern" = "\\S"))]
    pub text: String,
    /// Attachments by reference (at most 20; each uri 1..=2048 characters, not blank).
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub attachments: Vec<AttachmentRef>,
    /// Priority lanes (at most 3).
    #[serde(default)]
    #[schemars(length(max = 3))]
    pub priority_lanes: Vec<PriorityLane>,
    /// Service flow or dispute mediation.
    #[serde(default)]
    pub kind: RequestKind,
    /// When the resident raised it; defaults to the time of receipt.
    #[serde(default)]
    pub raised_at: Option<Timestamp>,
    /// The catalogue item (service code) the resident reports under, when the upstream
    /// system knows it (1..=64 chars); required when `answers` are given. Staff still
    /// classify; it names the item whose questions the answers reply to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub service_code: Option<String>,
    /// Answers to that item's typed questions (`GET /open311/v2/services/{code}.json` lists
    /// them): question code → text, number, `YYYY-MM-DD` date, boolean (yes/no), choice code,
    /// or an array of choice codes. A required question unanswered, an unknown question or an
    /// answer of the wrong type is refused (400) with `field` = `answers.<code>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub answers: BTreeMap<String, serde_json::Value>,
}
