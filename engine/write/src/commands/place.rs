//! Where an intake's matter is: its grid path, given or looked up from its point in the grid
//! polygons (engine-core's [`engine_core::places`]), and the place recorded with it.
//!
//! Rules (docs/places.md):
//! - a point in GCJ-02 is converted to WGS-84; the point as sent is recorded beside it;
//! - a point outside every grid polygon is refused (`outside_jurisdiction`, field
//!   `location`), whether or not a grid path comes with it;
//! - a grid path and a point in another grid: the grid path is kept (a person or an upstream
//!   system chose it; a phone's position may be where the resident stands, not where the
//!   matter is) and the point is recorded as sent;
//! - neither a grid path nor a point: refused (`required`, field `location`).

use engine_core::Policy;
use engine_core::places::gcj02::gcj02_to_wgs84;
use schemas::{Datum, GeoPoint, GridPath, IntakeDocument, Place};

use super::CommandError;

/// Longest accepted address line, in characters.
pub const MAX_ADDRESS_CHARS: usize = 512;
/// Longest grid code, in characters.
const MAX_GRID_CODE_CHARS: usize = 64;

/// The grid path an intake is filed under and the place recorded with it (`None` when it
/// sent neither point nor address).
pub fn locate_intake(
    document: &IntakeDocument,
    policy: &Policy,
) -> Result<(GridPath, Option<Place>), CommandError> {
    let address = address(document.address.as_deref())?;
    let point = document.point.map(to_wgs84).transpose()?;
    let located = match &point {
        Some((wgs, _)) if !policy.places().is_empty() => {
            Some(policy.places().locate(wgs.lat, wgs.lon).ok_or_else(|| {
                CommandError::invalid(
                    "outside_jurisdiction",
                    "location",
                    format!(
                        "the point {:.6},{:.6} (WGS-84) lies outside every grid of the jurisdiction",
                        wgs.lat, wgs.lon
                    ),
                )
            })?)
        }
        _ => None,
    };
    let location = match (&document.location, located) {
        (Some(given), _) => {
            check_grid_path(given, policy)?;
            given.clone()
        }
        (None, Some(found)) => found,
        (None, None) if point.is_some() => {
            return Err(CommandError::invalid(
                "outside_jurisdiction",
                "location",
                "no grid polygons are configured: send the grid path with the point",
            ));
        }
        (None, None) => {
            return Err(CommandError::invalid(
                "required",
                "location",
                "a grid path (location) or a point is required",
            ));
        }
    };
    let place = Place {
        point: point.map(|(wgs, _)| wgs),
        sent: point.and_then(|(_, sent)| sent),
        address,
    };
    Ok((location, (!place.is_empty()).then_some(place)))
}

/// The point in WGS-84 (rounded to 1e-7°, about a centimetre) and, when converted, as sent.
fn to_wgs84(point: GeoPoint) -> Result<(GeoPoint, Option<GeoPoint>), CommandError> {
    let valid = point.lat.is_finite()
        && point.lon.is_finite()
        && (-90.0..=90.0).contains(&point.lat)
        && (-180.0..=180.0).contains(&point.lon);
    if !valid {
        return Err(CommandError::invalid(
            "invalid_value",
            "point",
            "lat must be -90..=90 and lon -180..=180 degrees",
        ));
    }
    let round = |v: f64| (v * 1e7).round() / 1e7;
    Ok(match point.datum {
        Datum::Wgs84 => (point, None),
        Datum::Gcj02 => {
            let (lat, lon) = gcj02_to_wgs84(point.lat, point.lon);
            let wgs = GeoPoint {
                lat: round(lat),
                lon: round(lon),
                datum: Datum::Wgs84,
            };
            (wgs, Some(point))
        }
    })
}

fn address(address: Option<&str>) -> Result<Option<String>, CommandError> {
    let Some(address) = address else {
        return Ok(None);
    };
    if address.trim().is_empty()
        || address.chars().count() > MAX_ADDRESS_CHARS
        || address.chars().any(char::is_control)
    {
        return Err(CommandError::invalid(
            "invalid_value",
            "address",
            format!(
                "address must be 1..={MAX_ADDRESS_CHARS} characters, not blank, without control characters"
            ),
        ));
    }
    Ok(Some(address.to_string()))
}

fn check_grid_path(location: &GridPath, policy: &Policy) -> Result<(), CommandError> {
    let codes = [&location.street, &location.community, &location.grid];
    if codes
        .into_iter()
        .chain(location.micro_grid.as_ref())
        .any(|c| c.chars().count() > MAX_GRID_CODE_CHARS)
    {
        return Err(CommandError::invalid(
            "invalid_length",
            "location",
            "grid codes are at most 64 characters",
        ));
    }
    if !policy.knows_grid(location) {
        return Err(CommandError::invalid(
            "unknown_reference",
            "location",
            "the location does not name a known grid",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(extra: serde_json::Value) -> IntakeDocument {
        let mut base = serde_json::json!({
            "channel": "online", "external_id": "t-1", "anonymous": true, "text": "路灯不亮"
        });
        base.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        serde_json::from_value(base).expect("a valid document")
    }

    fn code(result: Result<(GridPath, Option<Place>), CommandError>) -> (String, Option<String>) {
        match result {
            Err(CommandError::Invalid { code, field, .. }) => (code, field),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_point_alone_is_placed_in_its_grid() {
        let policy = Policy::for_tests();
        let doc = document(serde_json::json!({"point": {"lat": 34.755, "lon": 117.51}}));
        let (location, place) = locate_intake(&doc, &policy).expect("placed");
        assert_eq!(location.grid, "wg-010101");
        let place = place.expect("recorded");
        assert_eq!(place.point.map(|p| (p.lat, p.lon)), Some((34.755, 117.51)));
        assert_eq!(place.sent, None);
    }

    #[test]
    fn a_gcj02_point_is_converted_and_recorded_as_sent() {
        let policy = Policy::for_tests();
        let (lat, lon) = engine_core::places::gcj02::wgs84_to_gcj02(34.755, 117.51);
        let doc = document(serde_json::json!({
            "point": {"lat": lat, "lon": lon, "datum": "gcj02"}, "address": "文化路 12 号"
        }));
        let (location, place) = locate_intake(&doc, &policy).expect("placed");
        assert_eq!(location.grid, "wg-010101");
        let place = place.expect("recorded");
        let point = place.point.expect("point");
        assert_eq!(point.datum, Datum::Wgs84);
        assert!((point.lat - 34.755).abs() < 1e-6 && (point.lon - 117.51).abs() < 1e-6);
        assert_eq!(place.sent.map(|s| s.datum), Some(Datum::Gcj02));
        assert_eq!(place.address.as_deref(), Some("文化路 12 号"));
    }

    #[test]
    fn outside_missing_and_bad_points_are_refused() {
        let policy = Policy::for_tests();
        let outside = document(serde_json::json!({"point": {"lat": 39.9, "lon": 116.4}}));
        assert_eq!(
            code(locate_intake(&outside, &policy)),
            ("outside_jurisdiction".into(), Some("location".into()))
        );
        let with_path = document(serde_json::json!({
            "point": {"lat": 39.9, "lon": 116.4},
            "location": {"street": "jd-01", "community": "sq-0101", "grid": "wg-010101"}
        }));
        assert_eq!(
            code(locate_intake(&with_path, &policy)).0,
            "outside_jurisdiction"
        );
        let neither = document(serde_json::json!({"address": "文化路"}));
        assert_eq!(
            code(locate_intake(&neither, &policy)),
            ("required".into(), Some("location".into()))
        );
        let bad = document(serde_json::json!({"point": {"lat": 91.0, "lon": 117.5}}));
        assert_eq!(
            code(locate_intake(&bad, &policy)),
            ("invalid_value".into(), Some("point".into()))
        );
    }

    #[test]
    fn a_grid_path_wins_over_a_point_in_another_grid() {
        let policy = Policy::for_tests();
        let doc = document(serde_json::json!({
            "point": {"lat": 34.815, "lon": 117.67},
            "location": {"street": "jd-01", "community": "sq-0101", "grid": "wg-010102"}
        }));
        let (location, place) = locate_intake(&doc, &policy).expect("kept");
        assert_eq!(location.grid, "wg-010102");
        assert_eq!(place.and_then(|p| p.point).map(|p| p.lat), Some(34.815));
    }
}
