//! The read API: an axum router over [`crate::query`], JSON in and out.
//!
//! Routes (all GET): `/api/v1/stats`, `/api/v1/overdue`, `/api/v1/due-soon`,
//! `/api/v1/rankings/departments`, `/api/v1/rankings/streets`, `/api/v1/rankings/communities`,
//! `/api/v1/worklists/workers/{id}` (owned, 首问), `/api/v1/worklists/people/{id}` (assigned),
//! `/api/v1/worklists/departments/{code}`, `/api/v1/worklists/stations/{community}/unassigned`,
//! `/api/v1/requests`, `/api/v1/upward`. `?now=` (RFC 3339) sets the instant deadlines are judged
//! against; it defaults to the current time, read here and nowhere else in the crate.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use schemas::ErrorBody;

use crate::query::{Dim, Filter, ListQuery, Period, RequestList, StatsQuery, UnitLevel, Weights};
use crate::{ProjectionError, Projections};

/// Widest `within_hours` of `/api/v1/due-soon` (366 days).
pub const MAX_WITHIN_HOURS: i64 = 366 * 24;
/// Largest page (`limit`) of every list.
pub const MAX_LIMIT: u32 = 1000;
/// Largest ranking weight (`w1` … `w4`).
pub const MAX_WEIGHT: f64 = 100.0;

impl IntoResponse for ProjectionError {
    fn into_response(self) -> Response {
        let (status, code, field) = match &self {
            ProjectionError::BadQuery(_) => (StatusCode::BAD_REQUEST, "malformed", None),
            ProjectionError::InvalidParam { field, .. } => {
                (StatusCode::BAD_REQUEST, "malformed", Some(field.clone()))
            }
            ProjectionError::UnknownProjector(_) => (StatusCode::NOT_FOUND, "not_found", None),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
        };
        // A server error's detail (SQL, driver messages) is logged, never answered.
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "read api failed");
            "internal error reading the read models".to_owned()
        } else {
            self.to_string()
        };
        let body = ErrorBody {
            code: code.into(),
            message,
            field,
        };
        (status, Json(body)).into_response()
    }
}

fn bad(field: &str, reason: impl Into<String>) -> ProjectionError {
    ProjectionError::InvalidParam {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// The parameters shared by every list route (besides the dimension filters).
const FILTER: &[&str] = &["from", "to", "dispatched", "now"];
const PAGE: &[&str] = &["since_position", "limit", "cursor"];

/// A read route's query string: each parameter at most once, only names the route reads,
/// text without control characters.
#[derive(Debug, Default)]
struct Params(HashMap<String, String>);

impl Params {
    /// Parses `raw`, allowing the dimension filters when `dims` and the names in `allowed`.
    fn parse(
        raw: Option<&str>,
        dims: bool,
        allowed: &[&[&str]],
    ) -> Result<Params, ProjectionError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
            .map_err(|e| ProjectionError::BadQuery(format!("invalid query string: {e}")))?;
        let mut map = HashMap::new();
        for (key, value) in pairs {
            let known = allowed.iter().any(|names| names.contains(&key.as_str()))
                || (dims && Dim::parse(&key).is_some());
            if !known {
                return Err(bad(&key, "unknown parameter"));
            }
            text(&key, &value)?;
            if map.insert(key.clone(), value).is_some() {
                return Err(bad(&key, "given more than once"));
            }
        }
        Ok(Params(map))
    }

    fn get(&self, key: &str) -> Option<&String> {
        self.0.get(key)
    }

    /// `true`, `false` or absent (false).
    fn flag(&self, key: &str) -> Result<bool, ProjectionError> {
        match self.get(key).map(String::as_str) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(bad(key, "expected true or false")),
        }
    }

    /// An integer in `min..=max`, or absent.
    fn int<T>(&self, key: &str, min: T, max: T) -> Result<Option<T>, ProjectionError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let n: T = v
            .parse()
            .map_err(|_| bad(key, format!("expected an integer in {min}..={max}")))?;
        if n < min || n > max {
            return Err(bad(key, format!("out of range {min}..={max}")));
        }
        Ok(Some(n))
    }

    /// A finite weight in `0..=MAX_WEIGHT`, or absent.
    fn weight(&self, key: &str) -> Result<Option<f64>, ProjectionError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match v.parse::<f64>() {
            Ok(w) if w.is_finite() && (0.0..=MAX_WEIGHT).contains(&w) => Ok(Some(w)),
            _ => Err(bad(key, format!("expected a number in 0..={MAX_WEIGHT}"))),
        }
    }

    /// A period key (`YYYY-MM-DD`, `YYYY-Www` or `YYYY-MM`), or absent.
    fn period_key(&self, key: &str) -> Result<Option<String>, ProjectionError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        if is_period_key(v) {
            Ok(Some(v.clone()))
        } else {
            Err(bad(key, "expected YYYY-MM-DD, YYYY-Www or YYYY-MM"))
        }
    }
}

/// Refuses text a database cannot store or a filter cannot mean (NUL, control characters).
fn text(field: &str, value: &str) -> Result<(), ProjectionError> {
    if value.chars().any(char::is_control) {
        return Err(bad(field, "holds a control character"));
    }
    Ok(())
}

/// `YYYY-MM-DD`, `YYYY-Www` or `YYYY-MM` with digits where digits belong.
fn is_period_key(v: &str) -> bool {
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    match b.len() {
        7 => digits(0..4) && b[4] == b'-' && digits(5..7),
        8 => digits(0..4) && &b[4..6] == b"-W" && digits(6..8),
        10 => digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10),
        _ => false,
    }
}

/// `?now=` or the current time (the one clock read of the crate, at the HTTP edge).
fn now(p: &Params) -> Result<DateTime<Utc>, ProjectionError> {
    match p.get("now") {
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| bad("now", "expected an RFC 3339 date-time")),
        #[allow(clippy::disallowed_methods)]
        None => Ok(Utc::now()),
    }
}

fn filter(p: &Params) -> Result<Filter, ProjectionError> {
    Ok(Filter {
        dims: Dim::ALL
            .into_iter()
            .filter_map(|d| p.get(d.name()).map(|v| (d, v.clone())))
            .collect(),
        from: p.period_key("from")?,
        to: p.period_key("to")?,
        dispatched_only: p.flag("dispatched")?,
    })
}

/// `since_position`: log positions are stored as signed 64-bit integers.
fn since_position(p: &Params) -> Result<Option<u64>, ProjectionError> {
    p.int("since_position", 0, i64::MAX as u64)
}

/// `cursor`: absent for the first page; an empty one is refused like any malformed cursor
/// (the document states its form), never read as "no cursor".
fn cursor(p: &Params) -> Result<Option<&str>, ProjectionError> {
    match p.get("cursor") {
        Some(c) if c.is_empty() => Err(bad(
            "cursor",
            "must not be empty; omit it for the first page",
        )),
        other => Ok(other.map(String::as_str)),
    }
}

fn limit(p: &Params) -> Result<u32, ProjectionError> {
    Ok(p.int("limit", 1, MAX_LIMIT)?.unwrap_or(100))
}

fn list_query(p: &Params, list: RequestList) -> Result<ListQuery, ProjectionError> {
    Ok(ListQuery {
        list,
        filter: filter(p)?,
        since_position: since_position(p)?,
        limit: limit(p)?,
        cursor: cursor(p)?.map(str::to_owned),
        now: now(p)?,
    })
}

/// A path parameter's text.
fn segment(field: &str, value: String) -> Result<String, ProjectionError> {
    text(field, &value)?;
    Ok(value)
}

async fn stats(
    State(s): State<Projections>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ProjectionError> {
    let p = Params::parse(raw.as_deref(), true, &[FILTER, &["period", "group_by"]])?;
    let period = match p.get("period") {
        Some(v) => Period::parse(v).ok_or_else(|| bad("period", "expected day, week or month"))?,
        None => Period::Month,
    };
    let group_by = match p.get("group_by") {
        Some(v) if !v.is_empty() => v
            .split(',')
            .map(|d| {
                Dim::parse(d).ok_or_else(|| bad("group_by", format!("unknown dimension {d:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    let q = StatsQuery {
        period,
        group_by,
        filter: filter(&p)?,
        now: now(&p)?,
    };
    Ok(Json(serde_json::json!({ "items": s.stats(&q).await? })).into_response())
}

/// A list route: the filters, the page and `extra` parameters.
async fn list(
    s: &Projections,
    raw: Option<&str>,
    extra: &[&str],
    l: impl FnOnce(&Params) -> Result<RequestList, ProjectionError>,
) -> Result<Response, ProjectionError> {
    let p = Params::parse(raw, true, &[FILTER, PAGE, extra])?;
    let q = list_query(&p, l(&p)?)?;
    Ok(Json(s.requests(&q).await?).into_response())
}

async fn overdue(
    State(s): State<Projections>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ProjectionError> {
    list(&s, raw.as_deref(), &[], |_| Ok(RequestList::Overdue)).await
}

async fn due_soon(
    State(s): State<Projections>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ProjectionError> {
    list(&s, raw.as_deref(), &["within_hours"], |p| {
        let hours = p.int("within_hours", 1, MAX_WITHIN_HOURS)?.unwrap_or(24);
        Ok(RequestList::DueSoon(Duration::hours(hours)))
    })
    .await
}

async fn requests(
    State(s): State<Projections>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ProjectionError> {
    list(&s, raw.as_deref(), &[], |_| Ok(RequestList::All)).await
}

async fn worker(
    State(s): State<Projections>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ProjectionError> {
    let id = segment("id", id)?;
    list(&s, raw.as_deref(), &[], |_| Ok(RequestList::Worker(id))).await
}

/// `/api/v1/worklists/people/{id}`: the open requests assigned to a person; `?unit=` keeps
/// the assignments for that unit (lead department or community).
async fn person(
    State(s): State<Projections>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ProjectionError> {
    let id = segment("id", id)?;
    list(&s, raw.as_deref(), &["unit"], |p| {
        let unit = match p.get("unit") {
            Some(u) if u.is_empty() => return Err(bad("unit", "must not be empty")),
            other => other.cloned(),
        };
        Ok(RequestList::Person { id, unit })
    })
    .await
}

async fn department(
    State(s): State<Projections>,
    Path(code): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ProjectionError> {
    let code = segment("code", code)?;
    list(&s, raw.as_deref(), &[], |_| {
        Ok(RequestList::Department(code))
    })
    .await
}

async fn unassigned(
    State(s): State<Projections>,
    Path(community): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ProjectionError> {
    let community = segment("community", community)?;
    list(&s, raw.as_deref(), &[], |_| {
        Ok(RequestList::Unassigned(community))
    })
    .await
}

async fn upward(
    State(s): State<Projections>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ProjectionError> {
    let p = Params::parse(raw.as_deref(), false, &[PAGE, &["open"]])?;
    let page = s
        .upward(
            p.flag("open")?,
            since_position(&p)?,
            limit(&p)?,
            cursor(&p)?,
        )
        .await?;
    Ok(Json(page).into_response())
}

/// The month a ranking covers (`?month=`, default: the current one) and the weights it
/// scores with (`?w1..w4=`, default: the deployment's).
fn ranking_scope(p: &Params, s: &Projections) -> Result<(String, Weights), ProjectionError> {
    let now = now(p)?;
    let month = match p.get("month") {
        Some(m) if m.len() == 7 && is_period_key(m) => m.clone(),
        Some(_) => return Err(bad("month", "expected YYYY-MM")),
        None => crate::fold::periods(now).2,
    };
    let d = s.assessment().weights;
    let w = Weights {
        response: p.weight("w1")?.unwrap_or(d.response),
        resolution: p.weight("w2")?.unwrap_or(d.resolution),
        satisfaction: p.weight("w3")?.unwrap_or(d.satisfaction),
        bottom_up: p.weight("w4")?.unwrap_or(d.bottom_up),
    };
    Ok((month, w))
}

/// One page of a ranking: the ranking's cursor is the offset of the next page.
fn ranking_page<T: serde::Serialize + Clone>(
    p: &Params,
    month: &str,
    weights: Weights,
    all: &[T],
) -> Result<Response, ProjectionError> {
    let offset: usize = match cursor(p)? {
        Some(c) => c
            .parse()
            .ok()
            .filter(|_| c.len() <= 18 && c.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| bad("cursor", "not a cursor this list made"))?,
        None => 0,
    };
    let limit = limit(p)? as usize;
    let items: Vec<T> = all.iter().skip(offset).take(limit).cloned().collect();
    let next = (offset.saturating_add(limit) < all.len()).then(|| (offset + limit).to_string());
    Ok(Json(
        serde_json::json!({ "month": month, "weights": weights, "items": items, "next_cursor": next }),
    )
    .into_response())
}

/// Parameters every ranking reads.
const RANKING: &[&str] = &["now", "month", "w1", "w2", "w3", "w4", "cursor", "limit"];

async fn rankings(
    State(s): State<Projections>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ProjectionError> {
    let p = Params::parse(raw.as_deref(), false, &[RANKING, &["tier"]])?;
    let (month, w) = ranking_scope(&p, &s)?;
    let mut all = s.department_ranking(&month, w, now(&p)?).await?;
    if let Some(tier) = p.get("tier") {
        if !crate::query::TIERS.contains(&tier.as_str()) {
            return Err(bad(
                "tier",
                format!("expected one of {}", crate::query::TIERS.join(", ")),
            ));
        }
        all.retain(|d| d.tier.as_deref() == Some(tier.as_str()));
    }
    ranking_page(&p, &month, w, &all)
}

async fn unit_rankings(
    s: Projections,
    raw: Option<String>,
    level: UnitLevel,
) -> Result<Response, ProjectionError> {
    let extra: &[&str] = match level {
        UnitLevel::Street => &[],
        UnitLevel::Community => &["street"],
    };
    let p = Params::parse(raw.as_deref(), false, &[RANKING, extra])?;
    let (month, w) = ranking_scope(&p, &s)?;
    let street = p.get("street").map(String::as_str);
    let all = s.unit_ranking(level, &month, street, w, now(&p)?).await?;
    ranking_page(&p, &month, w, &all)
}

async fn street_rankings(
    State(s): State<Projections>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ProjectionError> {
    unit_rankings(s, raw, UnitLevel::Street).await
}

async fn community_rankings(
    State(s): State<Projections>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ProjectionError> {
    unit_rankings(s, raw, UnitLevel::Community).await
}

impl Projections {
    /// The read API router (state: this handle).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v1/stats", get(stats))
            .route("/api/v1/overdue", get(overdue))
            .route("/api/v1/due-soon", get(due_soon))
            .route("/api/v1/rankings/departments", get(rankings))
            .route("/api/v1/rankings/streets", get(street_rankings))
            .route("/api/v1/rankings/communities", get(community_rankings))
            .route("/api/v1/worklists/workers/{id}", get(worker))
            .route("/api/v1/worklists/people/{id}", get(person))
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
