//! The open requests that carry a point, for the dashboard map.

use serde::{Deserialize, Serialize};

use super::{Filter, Period, req};
use crate::db::Val;
use crate::{ProjectionError, Projections};

/// Most points one map answer carries (the most recently changed first).
pub const MAP_POINTS_MAX: usize = 5_000;

/// An open request with a point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapPoint {
    /// The request.
    pub request_id: String,
    /// Its stage.
    pub stage: String,
    /// Street code.
    pub street: String,
    /// Community code.
    pub community: String,
    /// Grid code.
    pub grid: String,
    /// Latitude, WGS-84 degrees.
    pub lat: f64,
    /// Longitude, WGS-84 degrees.
    pub lon: f64,
    /// Marked overdue.
    pub overdue: bool,
}

impl Projections {
    /// The open requests matching `filter` that carry a point, most recently changed first,
    /// at most [`MAP_POINTS_MAX`]; `truncated` when there were more.
    pub async fn open_points(
        &self,
        filter: &Filter,
    ) -> Result<(Vec<MapPoint>, bool), ProjectionError> {
        let mut args: Vec<Val> = Vec::new();
        let wher = filter.sql(Period::Month, &mut args);
        let sql = format!(
            "SELECT request_id, stage, street, community, grid, lat, lon, overdue \
             FROM request_summary WHERE {wher} AND is_open AND lat IS NOT NULL AND lon IS NOT NULL \
             ORDER BY last_position DESC, request_id LIMIT {}",
            MAP_POINTS_MAX + 1
        );
        let rows = self.pool.fetch(&sql, &args).await?;
        let mut points = rows
            .iter()
            .map(|r| {
                Ok(MapPoint {
                    request_id: req(r.text(0)?, "request_id")?,
                    stage: req(r.text(1)?, "stage")?,
                    street: req(r.text(2)?, "street")?,
                    community: req(r.text(3)?, "community")?,
                    grid: req(r.text(4)?, "grid")?,
                    lat: req(r.float(5)?, "lat")?,
                    lon: req(r.float(6)?, "lon")?,
                    overdue: req(r.bool(7)?, "overdue")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let truncated = points.len() > MAP_POINTS_MAX;
        points.truncate(MAP_POINTS_MAX);
        Ok((points, truncated))
    }
}
