//! The dashboard web page (`GET /dashboard`): one self-contained page for a leadership screen or
//! a station head, reading the projections' JSON API with the viewer's own credentials.
//!
//! | Route | |
//! |---|---|
//! | `GET /` | 307 to `/dashboard` |
//! | `GET /dashboard` | the page (HTML; no credentials needed to load it) |
//! | `GET /dashboard/dashboard.js`, `GET /dashboard/dashboard.css` | its script and style |
//! | `GET /dashboard/session` | the caller's identity and the list filter the read rule requires of it |
//!
//! The page shows headline rates, trend charts over weeks or months, rates by community,
//! department (or another dimension), the department ranking, the overdue and due-soon lists
//! and, for auditors and supervisors, a request's timeline; charts are inline SVG drawn by the
//! script. The assets are compiled in (`include_str!`): no build step, no CDN, no external fonts, so the
//! page works on an intranet without internet access. The page carries no data; every figure it
//! shows comes from `/api/v1/stats`, `/api/v1/rankings/departments`, `/api/v1/overdue`,
//! `/api/v1/due-soon` and `/api/v1/health/projections`, called with the bearer token (or, when
//! the server runs with `--dev-identity`, the actor header) the viewer typed in. A strict
//! Content-Security-Policy allows only same-origin scripts, styles and requests.

use std::collections::HashMap;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Serialize;

use super::{AppState, Caller};
use crate::projector::read_model_access;

/// The page; `{{DEV_IDENTITY}}` is replaced by `true` or `false` when served.
const PAGE_HTML: &str = include_str!("../../assets/dashboard.html");
/// The page's script.
const PAGE_JS: &str = include_str!("../../assets/dashboard.js");
/// The map's script (`drawMap`), loaded before the page's script.
const MAP_JS: &str = include_str!("../../assets/dashboard-map.js");
/// The page's style sheet.
const PAGE_CSS: &str = include_str!("../../assets/dashboard.css");

/// The SVG namespace name the script creates its charts in (an identifier; never fetched).
pub const SVG_NAMESPACE: &str = "http://www.w3.org/2000/svg";

/// Only same-origin scripts, styles and fetches; no frames, no inline code.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard routes, to merge into the engine's router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/dashboard") }))
        .route("/dashboard", get(page))
        .route(
            "/dashboard/",
            get(|| async { Redirect::temporary("/dashboard") }),
        )
        .route("/dashboard/dashboard.js", get(script))
        .route("/dashboard/map.js", get(map_script))
        .route("/dashboard/dashboard.css", get(style))
        .route("/dashboard/session", get(session))
}

/// Headers every dashboard asset carries.
fn asset(content_type: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CONTENT_SECURITY_POLICY, CSP),
        ],
        body,
    )
        .into_response()
}

/// `GET /dashboard`: the page, told whether the actor header is accepted.
async fn page(State(state): State<AppState>) -> Response {
    let dev = if state.auth.dev_identity() {
        "true"
    } else {
        "false"
    };
    asset(
        "text/html; charset=utf-8",
        PAGE_HTML.replace("{{DEV_IDENTITY}}", dev),
    )
}

/// `GET /dashboard/dashboard.js`.
async fn script() -> Response {
    asset("text/javascript; charset=utf-8", PAGE_JS.to_owned())
}

/// `GET /dashboard/map.js`.
async fn map_script() -> Response {
    asset("text/javascript; charset=utf-8", MAP_JS.to_owned())
}

/// `GET /dashboard/dashboard.css`.
async fn style() -> Response {
    asset("text/css; charset=utf-8", PAGE_CSS.to_owned())
}

/// What `GET /dashboard/session` answers: who the credentials stand for and how the page must
/// filter the overdue / due-soon lists for the read rule to let them through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    /// The caller's identity.
    pub id: String,
    /// Its role (wire name).
    pub role: String,
    /// Its unit (community or department), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The filter the lists need (`{}`: none; e.g. `{"community": "sq-0101"}`); `None`: this
    /// role may not read the lists at all.
    pub list_filter: Option<HashMap<String, String>>,
}

/// The list filter that lets `actor` read `/api/v1/overdue` under [`read_model_access`]: none,
/// its community, its department, or no access at all.
pub fn list_filter(actor: &schemas::Actor) -> Option<HashMap<String, String>> {
    let unscoped = HashMap::new();
    if read_model_access(actor, "/api/v1/overdue", &unscoped).is_ok() {
        return Some(unscoped);
    }
    let unit = actor.unit.as_deref().filter(|u| !u.is_empty())?;
    ["community", "department"].into_iter().find_map(|key| {
        let scoped = HashMap::from([(key.to_owned(), unit.to_owned())]);
        read_model_access(actor, "/api/v1/overdue", &scoped)
            .is_ok()
            .then_some(scoped)
    })
}

/// `GET /dashboard/session`: 200 with a [`Session`], 401 without valid credentials.
async fn session(Caller(actor): Caller) -> Response {
    let list_filter = list_filter(&actor);
    let body = Session {
        id: actor.id,
        role: actor.role.as_str().to_owned(),
        unit: actor.unit,
        list_filter,
    };
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use schemas::{Actor, Role};

    use super::*;

    fn actor(role: Role, unit: Option<&str>) -> Actor {
        Actor {
            id: "x".into(),
            role,
            unit: unit.map(str::to_owned),
        }
    }

    #[test]
    fn the_list_filter_follows_the_read_rule() {
        assert_eq!(
            list_filter(&actor(Role::Supervisor, None)),
            Some(HashMap::new())
        );
        assert_eq!(
            list_filter(&actor(Role::StationWorker, Some("sq-0101"))),
            Some(HashMap::from([("community".into(), "sq-0101".into())]))
        );
        assert_eq!(
            list_filter(&actor(Role::DepartmentHandler, Some("water"))),
            Some(HashMap::from([("department".into(), "water".into())]))
        );
        assert_eq!(list_filter(&actor(Role::Dashboard, None)), None);
        assert_eq!(list_filter(&actor(Role::StationWorker, None)), None);
    }

    #[test]
    fn the_page_uses_only_same_origin_assets() {
        for text in [PAGE_HTML, PAGE_JS, MAP_JS, PAGE_CSS] {
            // The SVG namespace is a name, not a resource: nothing is fetched from it.
            let text = text.replace(SVG_NAMESPACE, "");
            assert!(!text.contains("http://"), "no absolute http URL");
            assert!(!text.contains("https://"), "no absolute https URL");
            assert!(!text.contains("innerHTML"), "data is set as text only");
        }
        assert!(PAGE_HTML.contains("{{DEV_IDENTITY}}"));
    }
}
