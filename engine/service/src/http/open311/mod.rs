//! Open311 GeoReport v2 over the catalogue and the request lifecycle, so civic apps and the
//! FixMyStreet family of clients can submit and follow requests.
//!
//! | Route | |
//! |---|---|
//! | `GET /open311/v2/discovery.json` | the service discovery document ([`discovery`]) |
//! | `GET /open311/v2/services.json` | catalogue items as services (`group` = category) |
//! | `GET /open311/v2/services/{service_code}.json` | the service definition: `grid` and `priority_lane` attributes, then the item's typed questions |
//! | `POST /open311/v2/requests.json` | create: form-encoded (or JSON); `api_key` = an intake token; answers `[{service_request_id, service_notice, account_id}]` |
//! | `GET /open311/v2/requests.json` | requests created over Open311: `service_request_id` (comma list), `service_code`, `status`, `start_date`, `end_date` |
//! | `GET /open311/v2/requests/{service_request_id}.json` | one request, as a one-element array |
//!
//! One deployment is one jurisdiction (`open311.jurisdiction_id`): a call naming another gets
//! 404. Errors are the spec's array `[{"code": <status>, "description": …}]`, also for paths no
//! route serves ([`discovery::unknown_path`]). Reads are public
//! and never show contact data; they show only requests created over Open311. Mapping and
//! decisions: `docs/open311.md`.

pub mod config;
pub mod discovery;
pub mod params;
mod requests;
pub mod status;
pub mod wire;
pub mod xml;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use chrono::{DateTime, Duration, FixedOffset, SecondsFormat, Utc};
use engine_core::Request;
use engine_core::catalogue::Item;
use engine_core::directory::DirectoryFile;
use engine_core::questions::{DEFAULT_TEXT_MAX, Question, QuestionKind};
use schemas::{Channel, DeadlineKind, Event, GridPath, RequestId, Role};
use tower::limit::ConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use uuid::Uuid;

use super::AppState;
use crate::auth::DEV_ACTOR_HEADER;
use crate::commands::CommandError;
pub use config::Open311Config;
use params::{CreateRequest, EXTERNAL_ID_PREFIX, GRID_ATTRIBUTE, LANE_ATTRIBUTE, Params, Recorded};
pub use requests::{create_request, get_request, list_requests};
use wire::{
    Attribute, AttributeValue, CreatedRequest, Open311Error, Service, ServiceDefinition,
    ServiceRequest,
};

/// What the Open311 routes need besides the app state.
#[derive(Debug, Clone)]
pub struct Open311State {
    config: Arc<Open311Config>,
    offset: FixedOffset,
    /// Department code → display name.
    departments: Arc<BTreeMap<String, String>>,
    /// Grid code → (path, label).
    grids: Arc<BTreeMap<String, (GridPath, String)>>,
    /// Filled when the read models run and their database is reachable (possibly after
    /// start-up); request lists answer 503 until then.
    projections: Arc<std::sync::OnceLock<projections::Projections>>,
    limiter: Option<crate::ratelimit::IntakeRateLimiter>,
}

impl Open311State {
    /// Where the read models go once their database is reachable (shared with the task
    /// that connects it).
    pub fn projections_slot(&self) -> Arc<std::sync::OnceLock<projections::Projections>> {
        self.projections.clone()
    }

    /// The state from the configuration and the directory file in force (`directory_text`,
    /// the built-in one when `None`), reading request lists from `projections` when they run.
    pub fn new(
        config: &Open311Config,
        directory_text: Option<&str>,
        projections: Option<projections::Projections>,
    ) -> Open311State {
        let text = directory_text.unwrap_or(engine_core::directory::BUILTIN_DIRECTORY);
        let mut departments = BTreeMap::new();
        let mut grids = BTreeMap::new();
        match toml::from_str::<DirectoryFile>(text) {
            Ok(file) => {
                for department in file.departments {
                    departments.insert(department.code, department.name);
                }
                for street in &file.streets {
                    for community in &street.communities {
                        for grid in &community.grids {
                            let path = GridPath {
                                street: street.code.clone(),
                                community: community.code.clone(),
                                grid: grid.code.clone(),
                                micro_grid: None,
                            };
                            let label =
                                format!("{} / {} / {}", street.name, community.name, grid.code);
                            grids.insert(grid.code.clone(), (path, label));
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "open311: directory unreadable; no grid list"),
        }
        Open311State {
            config: Arc::new(config.clone()),
            offset: config
                .utc_offset
                .parse()
                .unwrap_or_else(|_| schemas::local_time::offset()),
            departments: Arc::new(departments),
            grids: Arc::new(grids),
            projections: Arc::new(projections.map(Into::into).unwrap_or_default()),
            limiter: None,
        }
    }

    /// Limits creates per submitter (the api key's identity) with `config`, like
    /// `http.intake_rate_limit` limits `POST /api/v1/requests` per client.
    pub fn with_rate_limit(mut self, config: crate::ratelimit::RateLimitConfig) -> Open311State {
        self.limiter = Some(crate::ratelimit::IntakeRateLimiter::new(config));
        self
    }

    fn datetime(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.offset)
            .to_rfc3339_opts(SecondsFormat::Secs, false)
    }
}

/// The Open311 routes under the HTTP limits (the state travels as an `Extension`).
pub fn router(state: Open311State, limits: super::HttpLimits) -> Router<AppState> {
    Router::new()
        .route("/open311/v2/discovery.json", get(discovery::discovery))
        .route("/open311/v2/discovery.xml", get(discovery::discovery))
        .route("/open311/v2/services.json", get(services))
        .route("/open311/v2/services.xml", get(services))
        .route(
            "/open311/v2/services/{service_file}",
            get(service_definition),
        )
        .route(
            "/open311/v2/requests.json",
            get(list_requests).post(create_request),
        )
        .route(
            "/open311/v2/requests.xml",
            get(list_requests).post(create_request),
        )
        .route("/open311/v2/requests/{request_file}", get(get_request))
        .layer(axum::middleware::from_fn(xml::xml_format))
        .layer(Extension(state))
        .layer(DefaultBodyLimit::max(limits.body_limit_bytes))
        .layer(ConcurrencyLimitLayer::new(limits.concurrency_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
}

/// `name.json` or `name.xml` → `name` (the format is applied by [`xml::xml_format`]).
fn strip_json(file: &str) -> Result<&str, Open311Error> {
    match file.rsplit_once('.') {
        Some((name, "json" | "xml")) if !name.is_empty() => Ok(name),
        Some((_, other)) => Err(Open311Error::bad_request(format!(
            "format `{other}` is not served: use .json or .xml"
        ))),
        _ => Err(Open311Error::not_found(
            "no such resource: expected <id>.json or <id>.xml",
        )),
    }
}

fn query_params(query: Option<&str>) -> Result<Params, Open311Error> {
    Params::from_form(query.unwrap_or_default().as_bytes())
}

fn check_jurisdiction(state: &Open311State, params: &Params) -> Result<(), Open311Error> {
    match params.get("jurisdiction_id") {
        Some(id) if id != state.config.jurisdiction_id => Err(Open311Error::not_found(format!(
            "jurisdiction_id `{id}` is not served here (this is `{}`)",
            state.config.jurisdiction_id
        ))),
        _ => Ok(()),
    }
}

fn limits_notice(app: &AppState, item: &Item, state: &Open311State) -> String {
    let policy = app.commands.policy();
    let (response, completion) = policy.limits_for(item, item.default_urgency);
    let unit = |l: engine_core::catalogue::Limit| {
        let unit = match l.unit {
            engine_core::catalogue::LimitUnit::NaturalMinutes => "minutes",
            engine_core::catalogue::LimitUnit::NaturalHours => "hours",
            engine_core::catalogue::LimitUnit::WorkingHours => "working hours",
            engine_core::catalogue::LimitUnit::WorkingDays => "working days",
            engine_core::catalogue::LimitUnit::CalendarDays => "calendar days",
        };
        format!("{} {unit}", l.amount)
    };
    let lead = item
        .departments
        .first()
        .map(|d| {
            state
                .departments
                .get(d)
                .cloned()
                .unwrap_or_else(|| d.clone())
        })
        .unwrap_or_default();
    format!(
        "First response within {}, completion within {}; responsible: {lead}.",
        unit(response),
        unit(completion)
    )
}

/// `GET /open311/v2/services.json`: every catalogue item.
pub async fn services(
    State(app): State<AppState>,
    Extension(state): Extension<Open311State>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<Service>>, Open311Error> {
    let params = query_params(query.as_deref())?;
    check_jurisdiction(&state, &params)?;
    let catalogue = app.commands.policy().catalogue();
    let categories: BTreeMap<&str, &str> = catalogue.categories().collect();
    let mut items: Vec<&Item> = catalogue.items().collect();
    items.sort_by(|a, b| (&a.category, &a.id).cmp(&(&b.category, &b.id)));
    let services = items
        .into_iter()
        .map(|item| Service {
            service_code: item.id.clone(),
            service_name: item.name.clone(),
            description: format!("{}. {}", item.name, limits_notice(&app, item, &state)),
            metadata: true,
            kind: "realtime".into(),
            keywords: format!("{}, {}", item.category, item.id),
            group: categories
                .get(item.category.as_str())
                .map_or_else(|| item.category.clone(), |name| name.to_string()),
        })
        .collect();
    Ok(Json(services))
}

/// `GET /open311/v2/services/{service_code}.json`: the attributes a client asks for.
pub async fn service_definition(
    State(app): State<AppState>,
    Extension(state): Extension<Open311State>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<ServiceDefinition>, Open311Error> {
    let code = strip_json(&file)?;
    let params = query_params(query.as_deref())?;
    check_jurisdiction(&state, &params)?;
    let item = app
        .commands
        .policy()
        .catalogue()
        .item(code)
        .ok_or_else(|| Open311Error::not_found(format!("no service_code `{code}`")))?;
    let grid_values = state
        .grids
        .iter()
        .map(|(code, (_, label))| AttributeValue {
            key: code.clone(),
            name: label.clone(),
        })
        .collect();
    let lanes = [
        ("elderly", "老年人 Elderly resident"),
        ("military", "军人 Active or retired military"),
        ("disabled", "残疾人 Resident with a disability"),
    ]
    .into_iter()
    .map(|(key, name)| AttributeValue {
        key: key.into(),
        name: name.into(),
    })
    .collect();
    let mut attributes = vec![
        Attribute {
            variable: true,
            code: GRID_ATTRIBUTE.into(),
            datatype: "singlevaluelist".into(),
            // Not needed when a default grid is configured, or when grid polygons are loaded
            // and the client sends lat and long (docs/places.md).
            required: state.config.default_grid.is_none()
                && app.commands.policy().places().is_empty(),
            datatype_description: Some(
                "The grid (网格) the matter is in; may be left out when lat and long are given."
                    .into(),
            ),
            order: 1,
            description: "网格 Which grid is the matter in?".into(),
            values: grid_values,
        },
        Attribute {
            variable: true,
            code: LANE_ATTRIBUTE.into(),
            datatype: "multivaluelist".into(),
            required: false,
            datatype_description: Some("Priority lanes (绿色通道) shorten the limits.".into()),
            order: 2,
            description: "绿色通道 Does a priority lane apply?".into(),
            values: lanes,
        },
    ];
    attributes.extend(
        item.questions
            .iter()
            .zip(3..)
            .map(|(q, order)| question_attribute(q, order)),
    );
    Ok(Json(ServiceDefinition {
        service_code: item.id.clone(),
        attributes,
    }))
}

/// A catalogue item's typed question as an Open311 attribute: text as `string`, numbers as
/// `number`, dates as `datetime`, choices as `singlevaluelist` / `multivaluelist`, yes/no as
/// a `singlevaluelist` of `true` and `false` (GeoReport v2 has no boolean); the bilingual
/// label as the description, the form order after `grid` and `priority_lane`.
fn question_attribute(q: &Question, order: u32) -> Attribute {
    let value = |key: &str, name: String| AttributeValue {
        key: key.into(),
        name,
    };
    let (datatype, help, values) = match q.kind {
        QuestionKind::Text => (
            "string",
            format!(
                "Text, at most {} characters.",
                q.max_length.unwrap_or(DEFAULT_TEXT_MAX)
            ),
            vec![],
        ),
        QuestionKind::Number => ("number", number_help(q), vec![]),
        QuestionKind::Date => ("datetime", "A date, YYYY-MM-DD.".to_string(), vec![]),
        QuestionKind::YesNo => (
            "singlevaluelist",
            "Yes or no.".to_string(),
            vec![
                value("true", "是 Yes".into()),
                value("false", "否 No".into()),
            ],
        ),
        QuestionKind::SingleChoice | QuestionKind::MultiChoice => (
            if q.kind == QuestionKind::SingleChoice {
                "singlevaluelist"
            } else {
                "multivaluelist"
            },
            "One of the values' keys.".to_string(),
            q.choices
                .iter()
                .map(|c| value(&c.code, format!("{} {}", c.label_zh, c.label_en)))
                .collect(),
        ),
    };
    Attribute {
        variable: true,
        code: q.code.clone(),
        datatype: datatype.into(),
        required: q.required,
        datatype_description: Some(help),
        order,
        description: q.label(),
        values,
    }
}

fn number_help(q: &Question) -> String {
    match (q.min, q.max) {
        (Some(min), Some(max)) => format!("A number from {min} to {max}."),
        (Some(min), None) => format!("A number, at least {min}."),
        (None, Some(max)) => format!("A number, at most {max}."),
        (None, None) => "A number.".into(),
    }
}
