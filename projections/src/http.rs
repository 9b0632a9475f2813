//! The read API: an axum router over [`crate::query`], JSON in and out.
//!
//! Routes (all GET): `/api/v1/stats`, `/api/v1/overdue`, `/api/v1/due-soon`,
//! `/api/v1/rankings/departments`, `/api/v1/worklists/workers/{id}`,
//! `/api/v1/worklists/departments/{code}`, `/api/v1/worklists/stations/{community}/unassigned`,
//! `/api/v1/requests`, `/api/v1/upward`. `?now=` (RFC 3339) sets the instant deadlines are judged
//! against; it defaults to the current time, read here and nowhere else in the crate.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use schemas::ErrorBody;

use crate::query::{Dim, Filter, ListQuery, Period, RequestList, StatsQuery, Weights};
use crate::{ProjectionError, Projections};

type Params = HashMap<String, String>;

impl IntoResponse for ProjectionError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ProjectionError::BadQuery(_) => (StatusCode::BAD_REQUEST, "malformed"),
            ProjectionError::UnknownProjector(_) => (StatusCode::NOT_FOUND, "not_found"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "read api failed");
        }
        let body = ErrorBody {
            code: code.into(),
            message: self.to_string(),
            field: None,
        };
        (status, Json(body)).into_response()
    }
}

fn bad(field: &str) -> ProjectionError {
    ProjectionError::BadQuery(format!("invalid parameter {field}"))
}

/// `?now=` or the current time (the one clock read of the crate, at the HTTP edge).
fn now(p: &Params) -> Result<DateTime<Utc>, ProjectionError> {
    match p.get("now") {
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| bad("now")),
        #[allow(clippy::disallowed_methods)]
        None => Ok(Utc::now()),
    }
}

fn filter(p: &Params) -> Filter {
    Filter {
        dims: Dim::ALL
            .into_iter()
            .filter_map(|d| p.get(d.name()).map(|v| (d, v.clone())))
            .collect(),
        from: p.get("from").cloned(),
        to: p.get("to").cloned(),
        dispatched_only: p.get("dispatched").is_some_and(|v| v == "true"),
    }
}

fn num<T: std::str::FromStr>(p: &Params, key: &str) -> Result<Option<T>, ProjectionError> {
    p.get(key)
        .map(|v| v.parse().map_err(|_| bad(key)))
        .transpose()
}

fn list_query(p: &Params, list: RequestList) -> Result<ListQuery, ProjectionError> {
    Ok(ListQuery {
        list,
        filter: filter(p),
        since_position: num(p, "since_position")?,
        limit: num(p, "limit")?.unwrap_or(100),
        cursor: p.get("cursor").cloned(),
        now: now(p)?,
    })
}

async fn stats(
    State(s): State<Projections>,
    Query(p): Query<Params>,
) -> Result<Response, ProjectionError> {
    let period = match p.get("period") {
        Some(v) => Period::parse(v).ok_or_else(|| bad("period"))?,
        None => Period::Month,
    };
    let group_by = match p.get("group_by") {
        Some(v) if !v.is_empty() => v
            .split(',')
            .map(|d| Dim::parse(d).ok_or_else(|| bad("group_by")))
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    let q = StatsQuery {
        period,
        group_by,
        filter: filter(&p),
        now: now(&p)?,
    };
    Ok(Json(serde_json::json!({ "items": s.stats(&q).await? })).into_response())
}

async fn list(s: &Projections, p: &Params, l: RequestList) -> Result<Response, ProjectionError> {
    let q = list_query(p, l)?;
    Ok(Json(s.requests(&q).await?).into_response())
}

async fn overdue(
    State(s): State<Projections>,
    Query(p): Query<Params>,
) -> Result<Response, ProjectionError> {
    list(&s, &p, RequestList::Overdue).await
}

async fn due_soon(
    State(s): State<Projections>,
    Query(p): Query<Params>,
) -> Result<Response, ProjectionError> {
    let hours: i64 = num(&p, "within_hours")?.unwrap_or(24);
    list(&s, &p, RequestList::DueSoon(Duration::hours(hours))).await
}

async fn requests(
    State(s): State<Projections>,
    Query(p): Query<Params>,
) -> Result<Response, ProjectionError> {
    list(&s, &p, RequestList::All).await
}

async fn worker(
    State(s): State<Projections>,
    Path(id): Path<String>,
    Query(p): Query<Params>,
) -> Result<Response, ProjectionError> {
    list(&s, &p, RequestList::Worker(id)).await
}

async fn department(
    State(s): State<Projections>,
    Path(code): Path<String>,
    Query(p): Query<Params>,
) -> Result<Response, ProjectionError> {
    list(&s, &p, RequestList::Department(code)).await
}

async fn unassigned(
    State(s): State<Projections>,
    Path(community): Path<String>,
    Query(p): Query<Params>,
) -> Result<Response, ProjectionError> {
    list(&s, &p, RequestList::Unassigned(community)).await
}

async fn upward(
    State(s): State<Projections>,
    Query(p): Query<Params>,
) -> Result<Response, ProjectionError> {
    let open = p.get("open").is_some_and(|v| v == "true");
    let page = s
        .upward(
            open,
            num(&p, "since_position")?,
            num(&p, "limit")?.unwrap_or(100),
            p.get("cursor").map(String::as_str),
        )
        .await?;
    Ok(Json(page).into_response())
}

async fn rankings(
    State(s): State<Projections>,
    Query(p): Query<Params>,
) -> Result<Response, ProjectionError> {
    let now = now(&p)?;
    let month = match p.get("month") {
        Some(m) => m.clone(),
        None => crate::fold::periods(now).2,
    };
    let d = Weights::default();
    let w = Weights {
        response: num(&p, "w1")?.unwrap_or(d.response),
        resolution: num(&p, "w2")?.unwrap_or(d.resolution),
        satisfaction: num(&p, "w3")?.unwrap_or(d.satisfaction),
    };
    let all = s.department_ranking(&month, w, now).await?;
    let offset: usize = match p.get("cursor") {
        Some(c) => crate::query::decode_cursor(c)?
            .first()
            .and_then(|o| o.parse().ok())
            .ok_or_else(|| bad("cursor"))?,
        None => 0,
    };
    let limit: usize = num(&p, "limit")?.unwrap_or(100usize).clamp(1, 1000);
    let items: Vec<_> = all.iter().skip(offset).take(limit).cloned().collect();
    let next = (offset + limit < all.len())
        .then(|| crate::query::encode_cursor(&[(offset + limit).to_string()]));
    Ok(Json(
        serde_json::json!({ "month": month, "weights": w, "items": items, "next_cursor": next }),
    )
    .into_response())
}

impl Projections {
    /// The read API router (state: this handle).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v1/stats", get(stats))
            .route("/api/v1/overdue", get(overdue))
            .route("/api/v1/due-soon", get(due_soon))
            .route("/api/v1/rankings/departments", get(rankings))
            .route("/api/v1/worklists/workers/{id}", get(worker))
            .route("/api/v1/worklists/departments/{code}", get(department))
            .route(
                "/api/v1/worklists/stations/{community}/unassigned",
                get(unassigned),
            )
            .route("/api/v1/requests", get(requests))
            .route("/api/v1/upward", get(upward))
            .with_state(self.clone())
    }
}

impl Projections {
    /// Serves [`Projections::router`] on `listener` until the task is dropped.
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }
}
