//! The read API of the read models behind the engine's authentication, and
//! `/api/v1/health/projections`.
//!
//! # Who may read the read models ([`read_model_access`])
//! Aggregates (`/api/v1/stats`, `/api/v1/rankings/*`) are open to every
//! authenticated role, the dashboard included. Lists that name requests, workers or
//! departments' inboxes are narrower: auditors, supervisors and the system read everything;
//! a station worker or department handler reads the requests assigned to them
//! (`/api/v1/worklists/people/{own id}`) and a colleague's filtered to their own unit
//! (`?unit=<unit>`: the unit's inbox shows those requests already);
//! a station worker reads their own worker inbox, their community's unassigned queue, and the
//! overdue / due-soon / request lists filtered to their community (`?community=<unit>`); a
//! department handler reads their department's inbox and those lists filtered to their
//! department (`?department=<unit>`); the higher level reads the report-upward ledger.
//! `/api/v1/map` answers every role its polygons and, under the request list's rule, the
//! points (`super::map`). Every other read is refused with 403. `/api/v1/health/projections` (checkpoints and lag, no
//! request data) is open like `/readyz`.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use schemas::{Actor, Role};
use tower_http::timeout::TimeoutLayer;

use super::ProjectorRuntime;
use crate::http::error::ApiError;
use crate::http::{AppState, Caller, HttpLimits};

/// Whether `actor` may call the read-model route `path` (e.g. `/api/v1/overdue`) with query
/// `params`; `Err` says why not. The rule is written out in the module documentation.
pub fn read_model_access(
    actor: &Actor,
    path: &str,
    params: &HashMap<String, String>,
) -> Result<(), String> {
    let segments: Vec<&str> = path
        .trim_start_matches("/api/v1/")
        .trim_end_matches('/')
        .split('/')
        .collect();
    let role = actor.role;
    let unit = actor.unit.as_deref().filter(|u| !u.is_empty());
    let filtered_to = |key: &str| unit.is_some() && params.get(key).map(String::as_str) == unit;
    let allowed = match (role, segments.as_slice()) {
        (_, ["stats"] | ["rankings", "departments" | "streets" | "communities"]) => true,
        // The polygons answer everyone; the points follow the request list's rule
        // (`super::map`).
        (_, ["map"]) => true,
        (Role::Auditor | Role::Supervisor | Role::System, _) => true,
        (Role::HigherLevel, ["upward"]) => true,
        // A person reads their own assignments; a colleague those for their own unit.
        (Role::StationWorker | Role::DepartmentHandler, ["worklists", "people", id]) => {
            *id == actor.id || filtered_to("unit")
        }
        (Role::StationWorker, ["worklists", "workers", id]) => *id == actor.id,
        (Role::StationWorker, ["worklists", "stations", community, "unassigned"]) => {
            Some(*community) == unit
        }
        (Role::StationWorker, ["overdue" | "due-soon" | "requests"]) => filtered_to("community"),
        (Role::DepartmentHandler, ["worklists", "departments", code]) => Some(*code) == unit,
        (Role::DepartmentHandler, ["overdue" | "due-soon" | "requests"]) => {
            filtered_to("department")
        }
        _ => false,
    };
    if allowed {
        return Ok(());
    }
    Err(match role {
        Role::Dashboard | Role::IntakeSystem => format!(
            "role `{}` reads aggregates only (/api/v1/stats, /api/v1/rankings/*)",
            role.as_str()
        ),
        Role::StationWorker => {
            "station workers read their own inbox and their community's lists (?community=<your community>)".into()
        }
        Role::DepartmentHandler => {
            "department handlers read their department's inbox and lists (?department=<your department>)".into()
        }
        other => format!("role `{}` may not read this list", other.as_str()),
    })
}

/// Authenticates the caller and applies [`read_model_access`].
async fn authorize(Caller(actor): Caller, request: Request, next: Next) -> Response {
    let params: HashMap<String, String> = match Query::try_from_uri(request.uri()) {
        Ok(Query(params)) => params,
        Err(_) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed",
                "the query string does not parse",
                None,
            )
            .into_response();
        }
    };
    match read_model_access(&actor, request.uri().path(), &params) {
        Ok(()) => next.run(request).await,
        Err(reason) => ApiError::forbidden(reason).into_response(),
    }
}

#[derive(Clone)]
struct HealthState {
    runtime: ProjectorRuntime,
    app: AppState,
}

/// Longest `/api/v1/health/projections` waits on the read-model database. While the database
/// is down its pool keeps retrying for its whole acquire timeout (30 s); a health probe must
/// answer promptly instead, so it gives up after this and answers 503.
const HEALTH_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /api/v1/health/projections`: each projector's checkpoint and lag behind the log head;
/// 503 when the read-model database (or the log) does not answer within [`HEALTH_DB_TIMEOUT`].
async fn health(State(state): State<HealthState>) -> Response {
    let now = state.app.commands.clock().now();
    let answer = match tokio::time::timeout(HEALTH_DB_TIMEOUT, state.runtime.health(now)).await {
        Ok(answer) => answer.map_err(|error| error.to_string()),
        Err(_elapsed) => Err(format!(
            "the projections database did not answer within {} ms",
            HEALTH_DB_TIMEOUT.as_millis()
        )),
    };
    match answer {
        Ok(projectors) => {
            let ready = projectors.iter().all(|p| p.last_error.is_none());
            axum::Json(serde_json::json!({
                "status": if ready { "ok" } else { "degraded" },
                "projectors": projectors,
            }))
            .into_response()
        }
        Err(message) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            message,
            None,
        )
        .into_response(),
    }
}

/// The read API of the projections crate behind authentication and [`read_model_access`],
/// plus `/api/v1/health/projections`; to merge into the engine's router (it carries its own
/// state).
pub fn read_router(runtime: &ProjectorRuntime, app: AppState, limits: HttpLimits) -> Router {
    let waits = super::read_your_writes::ReadYourWrites {
        projections: runtime.projections().clone(),
        max_wait: runtime.settings().read_wait,
    };
    let projections = runtime.projections().clone();
    let map = Router::new()
        .route(
            "/api/v1/map",
            get(
                move |app: State<AppState>,
                      caller: Caller,
                      query: Query<HashMap<String, String>>| {
                    let projections = projections.clone();
                    async move { super::map::map(app, caller, query, projections).await }
                },
            ),
        )
        .with_state(app.clone());
    // Authorised first; then the wait for `?min_position=`, then the read.
    let reads = runtime
        .projections()
        .router()
        .merge(map)
        .layer(middleware::from_fn_with_state(
            waits,
            super::read_your_writes::read_your_writes,
        ))
        .layer(middleware::from_fn_with_state(app.clone(), authorize));
    let duplicates =
        super::duplicates::router(runtime.projections().clone()).with_state(app.clone());
    let whatif = crate::whatif::http::router(runtime.projections().clone()).with_state(app.clone());
    let health = Router::new()
        .route("/api/v1/health/projections", get(health))
        .with_state(HealthState {
            runtime: runtime.clone(),
            app,
        });
    reads
        .merge(duplicates)
        .merge(whatif)
        .merge(health)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(id: &str, role: Role, unit: Option<&str>) -> Actor {
        Actor {
            id: id.into(),
            role,
            unit: unit.map(str::to_string),
        }
    }

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_dashboard_reads_aggregates_only() {
        let bi = actor("bi", Role::Dashboard, None);
        let none = params(&[]);
        assert!(read_model_access(&bi, "/api/v1/stats", &none).is_ok());
        // The map's polygons answer every role; its points follow the request list's rule.
        assert!(read_model_access(&bi, "/api/v1/map", &none).is_ok());
        assert!(read_model_access(&bi, "/api/v1/rankings/departments", &none).is_ok());
        assert!(read_model_access(&bi, "/api/v1/rankings/streets", &none).is_ok());
        assert!(read_model_access(&bi, "/api/v1/rankings/communities", &none).is_ok());
        for path in [
            "/api/v1/overdue",
            "/api/v1/due-soon",
            "/api/v1/requests",
            "/api/v1/upward",
            "/api/v1/worklists/workers/w1",
            "/api/v1/worklists/departments/water",
        ] {
            assert!(read_model_access(&bi, path, &none).is_err(), "{path}");
        }
    }

    #[test]
    fn workers_and_handlers_read_their_own_unit_only() {
        let li = actor("worker-li", Role::StationWorker, Some("sq-0101"));
        let own = params(&[("community", "sq-0101")]);
        let other = params(&[("community", "sq-0102")]);
        assert!(read_model_access(&li, "/api/v1/overdue", &own).is_ok());
        assert!(read_model_access(&li, "/api/v1/overdue", &other).is_err());
        assert!(read_model_access(&li, "/api/v1/overdue", &params(&[])).is_err());
        assert!(read_model_access(&li, "/api/v1/worklists/workers/worker-li", &other).is_ok());
        assert!(read_model_access(&li, "/api/v1/worklists/workers/worker-wang", &own).is_err());
        assert!(
            read_model_access(&li, "/api/v1/worklists/stations/sq-0101/unassigned", &other).is_ok()
        );
        assert!(
            read_model_access(&li, "/api/v1/worklists/stations/sq-0102/unassigned", &own).is_err()
        );
        let zhao = actor("zhao", Role::DepartmentHandler, Some("urban-management"));
        let dept = params(&[("department", "urban-management")]);
        assert!(
            read_model_access(
                &zhao,
                "/api/v1/worklists/departments/urban-management",
                &dept
            )
            .is_ok()
        );
        assert!(read_model_access(&zhao, "/api/v1/worklists/departments/water", &dept).is_err());
        assert!(read_model_access(&zhao, "/api/v1/due-soon", &dept).is_ok());
        assert!(read_model_access(&zhao, "/api/v1/upward", &dept).is_err());
        let unitless = actor("x", Role::DepartmentHandler, None);
        assert!(
            read_model_access(&unitless, "/api/v1/overdue", &params(&[("department", "")]))
                .is_err()
        );
    }

    #[test]
    fn people_read_their_own_assignments_and_colleagues_only_within_their_unit() {
        let zhao = actor("zhao", Role::DepartmentHandler, Some("water"));
        let none = params(&[]);
        assert!(read_model_access(&zhao, "/api/v1/worklists/people/zhao", &none).is_ok());
        assert!(read_model_access(&zhao, "/api/v1/worklists/people/qian", &none).is_err());
        let own = params(&[("unit", "water")]);
        assert!(read_model_access(&zhao, "/api/v1/worklists/people/qian", &own).is_ok());
        let other = params(&[("unit", "police")]);
        assert!(read_model_access(&zhao, "/api/v1/worklists/people/qian", &other).is_err());
        let li = actor("li", Role::StationWorker, Some("sq-0101"));
        assert!(read_model_access(&li, "/api/v1/worklists/people/li", &other).is_ok());
        for role in [Role::Dashboard, Role::HigherLevel, Role::IntakeSystem] {
            let a = actor("zhao", role, Some("water"));
            assert!(read_model_access(&a, "/api/v1/worklists/people/zhao", &own).is_err());
        }
        let sup = actor("sup", Role::Supervisor, None);
        assert!(read_model_access(&sup, "/api/v1/worklists/people/qian", &none).is_ok());
    }

    #[test]
    fn auditors_read_everything_and_the_higher_level_the_ledger() {
        let none = params(&[]);
        for role in [Role::Auditor, Role::Supervisor, Role::System] {
            let a = actor("a", role, None);
            for path in [
                "/api/v1/overdue",
                "/api/v1/upward",
                "/api/v1/worklists/workers/w",
            ] {
                assert!(read_model_access(&a, path, &none).is_ok(), "{path}");
            }
        }
        let up = actor("city", Role::HigherLevel, None);
        assert!(read_model_access(&up, "/api/v1/upward", &none).is_ok());
        assert!(read_model_access(&up, "/api/v1/overdue", &none).is_err());
    }
}
