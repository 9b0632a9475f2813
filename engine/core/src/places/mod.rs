//! Places: the grid polygons of the jurisdiction (GeoJSON reference data) and the lookup
//! that assigns street, community and grid to a point.
//!
//! The file is a GeoJSON `FeatureCollection` (RFC 7946: WGS-84 longitude/latitude) with a
//! foreign member `version`; each feature is a `Polygon` or `MultiPolygon` with properties
//! `level` (`community` or `grid`), `street`, `community` and, for grids, `grid`, every code
//! one of the directory. Grids without a polygon are allowed: a point-only intake just never
//! lands there.
//!
//! **Boundary rule:** a point on an edge shared by two grids belongs to the first of them in
//! file order (the lookup tests the closed polygon, boundary included, in that order); a
//! point on the outer edge of the jurisdiction is inside it.

pub mod gcj02;

use geo::{BoundingRect, Intersects, MultiPolygon, Point};
use geojson::{FeatureCollection, GeoJson};
use schemas::GridPath;

use crate::directory::Directory;
use crate::policy::LoadError;

/// The built-in grid polygons of the sample directory's district.
pub const BUILTIN_GRIDS: &str = include_str!("../../../../deploy/policy/grids.geojson");

/// What an area is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AreaLevel {
    /// A community (社区): drawn on the map.
    Community,
    /// A base grid (基础网格): drawn and used by [`Places::locate`].
    Grid,
}

impl AreaLevel {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AreaLevel::Community => "community",
            AreaLevel::Grid => "grid",
        }
    }
}

/// One polygon of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    /// Community or grid.
    pub level: AreaLevel,
    /// Street code.
    pub street: String,
    /// Community code.
    pub community: String,
    /// Grid code (grids only).
    pub grid: Option<String>,
    shape: MultiPolygon<f64>,
}

impl Area {
    /// The polygons' rings as `[lon, lat]` lists: each polygon's exterior, then its holes.
    pub fn rings(&self) -> Vec<Vec<[f64; 2]>> {
        self.shape
            .iter()
            .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
            .map(|ring| ring.coords().map(|c| [c.x, c.y]).collect())
            .collect()
    }
}

/// The grid polygons in force, validated against the directory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Places {
    version: String,
    areas: Vec<Area>,
}

impl Places {
    /// The built-in polygons ([`BUILTIN_GRIDS`]) against `directory`.
    pub fn builtin(directory: &Directory) -> Result<Places, LoadError> {
        Places::parse("grids.geojson", BUILTIN_GRIDS, directory)
    }

    /// Parses and validates a grid file; `name` labels errors.
    pub fn parse(name: &str, text: &str, directory: &Directory) -> Result<Places, LoadError> {
        let collection = match text.parse::<GeoJson>() {
            Ok(GeoJson::FeatureCollection(c)) => c,
            Ok(_) => {
                return Err(LoadError::Syntax {
                    file: name.into(),
                    message: "not a GeoJSON FeatureCollection".into(),
                });
            }
            Err(e) => {
                return Err(LoadError::Syntax {
                    file: name.into(),
                    message: e.to_string(),
                });
            }
        };
        let version = file_version(name, &collection)?;
        let mut areas: Vec<Area> = Vec::with_capacity(collection.features.len());
        for (idx, feature) in collection.features.iter().enumerate() {
            let area = parse_area(name, idx, feature, directory)?;
            if areas.iter().any(|a| {
                a.level == area.level && a.community == area.community && a.grid == area.grid
            }) {
                return Err(LoadError::invalid(
                    name,
                    &format!("features[{idx}]"),
                    "properties",
                    "a second polygon for the same area".into(),
                ));
            }
            areas.push(area);
        }
        Ok(Places { version, areas })
    }

    /// The file's version (empty when no polygons are loaded).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether no polygons are loaded (then point-only intake is refused).
    pub fn is_empty(&self) -> bool {
        self.areas.is_empty()
    }

    /// Every area, in file order.
    pub fn areas(&self) -> &[Area] {
        &self.areas
    }

    /// The grid holding the WGS-84 point `(lat, lon)` (boundary included, first in file
    /// order), or `None` outside every grid polygon.
    pub fn locate(&self, lat: f64, lon: f64) -> Option<GridPath> {
        let point = Point::new(lon, lat);
        self.areas
            .iter()
            .filter(|a| a.level == AreaLevel::Grid)
            .find(|a| a.shape.intersects(&point))
            .map(|a| GridPath {
                street: a.street.clone(),
                community: a.community.clone(),
                grid: a.grid.clone().unwrap_or_default(),
                micro_grid: None,
            })
    }

    /// `[min_lon, min_lat, max_lon, max_lat]` of every area, when any.
    pub fn bounds(&self) -> Option<[f64; 4]> {
        let rects = self.areas.iter().filter_map(|a| a.shape.bounding_rect());
        rects.fold(None, |acc, r| {
            let (lo, hi) = (r.min(), r.max());
            Some(match acc {
                None => [lo.x, lo.y, hi.x, hi.y],
                Some([a, b, c, d]) => [a.min(lo.x), b.min(lo.y), c.max(hi.x), d.max(hi.y)],
            })
        })
    }
}

fn file_version(name: &str, collection: &FeatureCollection) -> Result<String, LoadError> {
    let version = collection
        .foreign_members
        .as_ref()
        .and_then(|m| m.get("version"))
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if version.trim().is_empty() {
        return Err(LoadError::invalid(
            name,
            "FeatureCollection",
            "version",
            "must be a non-empty string".into(),
        ));
    }
    Ok(version.to_string())
}

fn parse_area(
    name: &str,
    idx: usize,
    feature: &geojson::Feature,
    directory: &Directory,
) -> Result<Area, LoadError> {
    let at = format!("features[{idx}]");
    let invalid = |field: &str, reason: &str| LoadError::invalid(name, &at, field, reason.into());
    let text = |key: &str| -> Result<Option<String>, LoadError> {
        match feature.property(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| invalid(&format!("properties.{key}"), "must be a string")),
        }
    };
    let level = match text("level")?.as_deref() {
        Some("community") => AreaLevel::Community,
        Some("grid") => AreaLevel::Grid,
        _ => return Err(invalid("properties.level", "must be `community` or `grid`")),
    };
    let street = text("street")?.ok_or_else(|| invalid("properties.street", "required"))?;
    let community =
        text("community")?.ok_or_else(|| invalid("properties.community", "required"))?;
    let grid = text("grid")?;
    match (level, &grid) {
        (AreaLevel::Grid, None) => return Err(invalid("properties.grid", "required")),
        (AreaLevel::Community, Some(_)) => {
            return Err(invalid("properties.grid", "a community has no grid"));
        }
        _ => {}
    }
    let known = directory.grids().any(|p| {
        p.street == street && p.community == community && grid.as_ref().is_none_or(|g| *g == p.grid)
    });
    if !known {
        return Err(invalid(
            "properties",
            "names no grid or community of the directory",
        ));
    }
    let shape = shape(feature).map_err(|reason| invalid("geometry", reason))?;
    Ok(Area {
        level,
        street,
        community,
        grid,
        shape,
    })
}

fn shape(feature: &geojson::Feature) -> Result<MultiPolygon<f64>, &'static str> {
    let geometry = feature.geometry.as_ref().ok_or("required")?;
    let shape: MultiPolygon<f64> = match geo::Geometry::<f64>::try_from(geometry.clone()) {
        Ok(geo::Geometry::Polygon(p)) => MultiPolygon::new(vec![p]),
        Ok(geo::Geometry::MultiPolygon(m)) => m,
        _ => return Err("must be a Polygon or MultiPolygon"),
    };
    let in_range = shape.iter().flat_map(|p| p.exterior().coords()).all(|c| {
        c.x.is_finite()
            && c.y.is_finite()
            && (-180.0..=180.0).contains(&c.x)
            && (-90.0..=90.0).contains(&c.y)
    });
    if !in_range {
        return Err("coordinates must be longitude -180..=180, latitude -90..=90");
    }
    if shape.iter().any(|p| p.exterior().0.len() < 4) {
        return Err("each ring needs at least four positions");
    }
    Ok(shape)
}

#[cfg(test)]
mod tests;
