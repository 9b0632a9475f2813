//! Where a matter is, beyond its grid path: a point (WGS-84, or GCJ-02 as Chinese map apps
//! send it) and an address line. Intake may send a point instead of a grid path; the engine
//! then looks the grid up in its grid polygons (reference data).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The geodetic datum a point was sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Datum {
    /// WGS-84, as GPS receivers and international maps give it.
    #[default]
    Wgs84,
    /// GCJ-02 (国测局坐标), the offset datum of maps published in mainland China (AMap,
    /// Tencent, the WeChat location picker). Converted to WGS-84 on intake.
    Gcj02,
}

impl Datum {
    /// The wire name (`wgs84`, `gcj02`).
    pub fn as_str(self) -> &'static str {
        match self {
            Datum::Wgs84 => "wgs84",
            Datum::Gcj02 => "gcj02",
        }
    }
}

/// A point in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoPoint {
    /// Latitude in degrees, -90..=90.
    #[schemars(range(min = -90.0, max = 90.0))]
    pub lat: f64,
    /// Longitude in degrees, -180..=180.
    #[schemars(range(min = -180.0, max = 180.0))]
    pub lon: f64,
    /// The datum of `lat`/`lon`; WGS-84 unless said.
    #[serde(default)]
    pub datum: Datum,
}

/// Where the matter is, as recorded on `request_received`: the point in WGS-84 (whatever
/// datum it was sent in), the point as sent when it was converted, and the address line.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Place {
    /// The point in WGS-84 (`datum` is always `wgs84`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<GeoPoint>,
    /// The point exactly as sent, when it was sent in another datum and converted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<GeoPoint>,
    /// The address line of the matter's place (not the resident's address, which is
    /// contact data and never enters an event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl Place {
    /// Whether the place says nothing (no point, no address).
    pub fn is_empty(&self) -> bool {
        self.point.is_none() && self.address.is_none()
    }
}
