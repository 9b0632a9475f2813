//! `GET /api/v1/map`: the grid polygons in force and the open requests' points, for the
//! dashboard map (docs/places.md).
//!
//! Polygons are reference data and answer every authenticated role; the points name
//! requests, so they follow the request list's read rule ([`read_model_access`] on
//! `/api/v1/requests` with the same query): a role that may not read the list gets the
//! polygons and `points_visible: false`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use projections::Projections;
use projections::query::{Dim, Filter, MapPoint};
use schemas::Actor;
use serde::Serialize;

use super::read_api::read_model_access;
use crate::http::error::ApiError;
use crate::http::{AppState, Caller};

/// The query parameters the map takes (the read-your-writes wait takes `min_position`).
const PARAMS: [&str; 5] = ["street", "community", "grid", "department", "min_position"];

/// One polygon of the map.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapArea {
    /// `community` or `grid`.
    pub level: &'static str,
    /// Street code.
    pub street: String,
    /// Community code.
    pub community: String,
    /// Grid code (grids only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grid: Option<String>,
    /// Rings as `[lon, lat]` positions (each polygon's exterior, then its holes).
    pub rings: Vec<Vec<[f64; 2]>>,
}

/// The answer of `GET /api/v1/map`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapAnswer {
    /// Version of the grid file in force (empty when none is loaded).
    pub version: String,
    /// `[min_lon, min_lat, max_lon, max_lat]` of every polygon; absent without polygons.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounds: Option<[f64; 4]>,
    /// Communities, then grids, in file order.
    pub areas: Vec<MapArea>,
    /// Whether the caller may see the requests' points.
    pub points_visible: bool,
    /// Open requests with a point, most recently changed first.
    pub points: Vec<MapPoint>,
    /// More open requests with points exist than the answer carries.
    pub truncated: bool,
}

/// `GET /api/v1/map?street=&community=&grid=&department=`.
pub async fn map(
    State(app): State<AppState>,
    Caller(actor): Caller,
    Query(params): Query<HashMap<String, String>>,
    projections: Projections,
) -> Response {
    match answer(&app, &actor, &params, &projections).await {
        Ok(answer) => Json(answer).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn answer(
    app: &AppState,
    actor: &Actor,
    params: &HashMap<String, String>,
    projections: &Projections,
) -> Result<MapAnswer, Response> {
    if let Some(unknown) = params.keys().find(|k| !PARAMS.contains(&k.as_str())) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("unknown parameter `{unknown}`"),
            Some(unknown.as_str()),
        )
        .into_response());
    }
    let places = app.commands.policy().places();
    let areas = places
        .areas()
        .iter()
        .map(|a| MapArea {
            level: a.level.as_str(),
            street: a.street.clone(),
            community: a.community.clone(),
            grid: a.grid.clone(),
            rings: a.rings(),
        })
        .collect();
    let points_visible = read_model_access(actor, "/api/v1/requests", params).is_ok();
    let (points, truncated) = if points_visible {
        let filter = Filter {
            dims: ["street", "community", "grid", "department"]
                .into_iter()
                .filter_map(|d| Some((Dim::parse(d)?, params.get(d)?.clone())))
                .collect(),
            ..Filter::default()
        };
        projections
            .open_points(&filter)
            .await
            .map_err(IntoResponse::into_response)?
    } else {
        (Vec::new(), false)
    };
    Ok(MapAnswer {
        version: places.version().to_string(),
        bounds: places.bounds(),
        areas,
        points_visible,
        points,
        truncated,
    })
}
