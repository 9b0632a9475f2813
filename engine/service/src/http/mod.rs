//! The HTTP API (axum): intake, commands, reads, health and metrics.
//!
//! | Route | |
//! |---|---|
//! | `POST /api/v1/requests` | intake document → 201 `{request_id, created, version}`, 200 when it existed |
//! | `POST /api/v1/requests/{id}/{action}` | one command; body = its fields; `Idempotency-Key` = command id (`correct_contact` goes to the contact route) |
//! | `GET`, `PUT /api/v1/requests/{id}/contact` | read contact data (permitted auditors) or correct it (`correct_contact`) ([`crate::privacy::http`]) |
//! | `GET /api/v1/requests/{id}` | `{request_id, version, stage, state}`; `?as_of=<RFC 3339>` and/or `?version=<n>`: as it stood then, rebuilt from the events |
//! | `GET /api/v1/requests/{id}/history` | the request's event envelopes, in order; `?with_state=true`: each with `state_after` and `corrected_by` |
//! | `/api/v1/audit/...`, `POST /api/v1/upward/feedback` | auditors' reads and upward feedback ([`crate::audit::http`]) |
//! | read models (`/api/v1/stats`, ...), `GET /api/v1/health/projections` | merged by the app when projections run ([`crate::projector::read_router`]) |
//! | `/api/v1/reports...` | periodic rate reports upward, their revisions and feedback ([`crate::reports::http`]) |
//! | `POST`, `GET /api/v1/requests/{id}/attachments[/{sha256}]` | stored media: upload (raw or multipart) and download ([`crate::media::http`]) |
//! | `POST /api/v1/lookup` | a resident's status lookup by ticket and the phone's last four digits, no credentials, rate limited ([`lookup`]) |
//! | `GET /healthz`, `GET /readyz`, `GET /metrics` | liveness, readiness (log reachable), Prometheus |
//! | `GET /openapi.json` | the OpenAPI 3.1 document of every route ([`crate::openapi`]) |
//! | `/open311/v2/...` | Open311 GeoReport v2 ([`open311`]; errors are the spec's array) |
//!
//! Every route sits behind [`edge::wrap`] (request id, one body limit, path and query text
//! check, panic catcher, rewrite of unstructured errors), and reads its path and query with
//! [`extract::ApiPath`] / [`extract::ApiQuery`] and its body with [`error::ApiJson`].
//! Every error is `{code, message, field}`: 400 malformed or invalid input; 401 no or unknown
//! credentials; 403 a role or unit that may not do or see this; 404 unknown request, action or
//! route; 408 timeout; 409 lost a race for the request repeatedly (`conflict`) or an
//! `Idempotency-Key` first used for another command, caller or request
//! (`idempotency_key_reused`); 413 body over the limit;
//! 500 internal (detail logged with the request id, never answered); 422 refused by the workflow rules (e.g. `wrong_stage`); 503 event log unavailable.
//! Commands run to completion in their own task even when the client goes away, so a command
//! is never half-applied; retrying with the same `Idempotency-Key` (same body, same caller)
//! returns the original result with `duplicate: true`, however long after.

pub mod dashboard;
pub mod edge;
pub mod error;
pub mod extract;
pub mod health;
pub mod lookup;
pub mod open311;
pub mod requests;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use schemas::Actor;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::auth::{Authenticator, DEV_ACTOR_HEADER};
use crate::commands::CommandService;
use error::ApiError;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The command service.
    pub commands: CommandService,
    /// Who is asking.
    pub auth: Arc<Authenticator>,
    /// The state of the parts besides the log, for `/readyz`.
    pub readiness: crate::readiness::Readiness,
    /// `/readyz` warns this many days before the working calendar ends.
    pub calendar_warn_days: u32,
    /// The worker leases of this process (`/readyz` lists those held).
    pub leases: crate::lease::Leases,
    /// Per-client limit of the residents' status lookup (`http.lookup_rate_limit`).
    pub lookup_rate_limit: crate::ratelimit::RateLimitConfig,
    /// The media store and its limits (attachments, [`crate::media::http`]).
    pub media: crate::media::http::MediaState,
    /// The read models, once they run in this process and their database is reachable:
    /// the candidate duplicates of an intake's and an `accept`'s answer come from them.
    pub read_models: Arc<std::sync::OnceLock<projections::Projections>>,
}

/// Limits of the HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Largest request body, bytes.
    pub body_limit_bytes: usize,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Requests served at once.
    pub concurrency_limit: usize,
    /// Largest body of the attachment upload route (`media.max_bytes` and the multipart
    /// framing), which takes the place of `body_limit_bytes` there.
    pub media_body_limit_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            body_limit_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(10),
            concurrency_limit: 256,
            media_body_limit_bytes: crate::media::http::body_limit(
                &crate::media::MediaConfig::default(),
            ),
        }
    }
}

/// The router with every route, limit and fallback.
pub fn router(state: AppState, limits: HttpLimits) -> Router {
    let api = Router::new()
        .route("/api/v1/requests", post(requests::intake))
        .route("/api/v1/requests/{id}", get(requests::get_request))
        .route("/api/v1/requests/{id}/history", get(requests::history))
        .route("/api/v1/requests/{id}/{action}", post(requests::command))
        .layer(DefaultBodyLimit::max(limits.body_limit_bytes))
        .layer(ConcurrencyLimitLayer::new(limits.concurrency_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi_document))
        .merge(api)
        .merge(lookup::router(state.lookup_rate_limit))
        .merge(crate::media::http::router(&state.media.config))
        .merge(crate::audit::router())
        .merge(crate::reports::http::router())
        .merge(dashboard::router())
        .fallback(|| async { ApiError::route_not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed",
                None,
            )
        })
        .with_state(state)
}

/// `GET /openapi.json`: the OpenAPI document of this server (the committed one; a test keeps
/// the two equal).
async fn openapi_document() -> impl axum::response::IntoResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = DOCUMENT.get_or_init(crate::openapi::document_text).clone();
    ([(header::CONTENT_TYPE, "application/json")], text)
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Actor);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let bearer = crate::auth::bearer_token(
            parts
                .headers
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes()),
        )?;
        let dev = parts
            .headers
            .get(DEV_ACTOR_HEADER)
            .and_then(|v| v.to_str().ok());
        Ok(Caller(state.auth.authenticate(bearer, dev)?))
    }
}
