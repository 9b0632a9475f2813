//! The audit and upward endpoints (merged into the main router before its state is set):
//!
//! | Route | |
//! |---|---|
//! | `GET /api/v1/audit/verify?request=<id>` | one request's chain report; without `request`, every chain |
//! | `GET /api/v1/audit/digests` | the recorded daily digests, each recomputed from the log |
//! | `GET /api/v1/audit/reference` | every recorded reference-data change (who, when, sha256) |
//! | `GET /api/v1/audit/requests/{id}/timeline?as_of=&version=` | history with the state after each step |
//! | `GET /api/v1/audit/requests/{id}/state?as_of=&version=` | the request as it stood then |
//! | `POST /api/v1/upward/feedback` | a higher level's feedback document → `record_upward_feedback` |
//!
//! Audit reads are for the auditor, supervisor and system roles; feedback is for the
//! higher-level and system roles. Errors are `{code, message, field}` like everywhere else.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use schemas::{RequestId, Role};
use serde::Deserialize;
use uuid::Uuid;

use super::timeline::{AsOf, Step};
use super::{AuditError, as_of, digest, reference, verify};
use crate::http::error::{ApiError, ApiJson};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::{AppState, Caller};
use crate::upward::{FeedbackDocument, FeedbackReply, record_feedback};

/// The audit and upward routes, to merge into the main router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit/verify", get(verify_handler))
        .route("/api/v1/audit/digests", get(digests_handler))
        .route("/api/v1/audit/reference", get(reference_handler))
        .route(
            "/api/v1/audit/requests/{id}/timeline",
            get(timeline_handler),
        )
        .route("/api/v1/audit/requests/{id}/state", get(state_handler))
        .route("/api/v1/upward/feedback", post(feedback_handler))
}

impl From<AuditError> for ApiError {
    fn from(error: AuditError) -> ApiError {
        match error {
            AuditError::Invalid(message) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid", message, None)
            }
            AuditError::Log(e) if e.is_retryable() => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
                None,
            ),
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                other.to_string(),
                None,
            ),
        }
    }
}

/// Only roles that may read full histories and audit results.
fn require_auditor(caller: &Caller) -> Result<(), ApiError> {
    match caller.0.role {
        Role::Auditor | Role::Supervisor | Role::System => Ok(()),
        other => Err(ApiError::forbidden(format!(
            "role `{}` may not read audit results",
            other.as_str()
        ))),
    }
}

fn parse_id(id: &str) -> Result<RequestId, ApiError> {
    Uuid::parse_str(id).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "request id must be a UUID",
            Some("id"),
        )
    })
}

fn not_found(id: RequestId) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("request {id} not found"),
        None,
    )
}

/// Query of the verify endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    /// One request; every chain when absent.
    pub request: Option<Uuid>,
}

async fn verify_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<VerifyQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_auditor(&caller)?;
    let log = state.commands.log();
    let value = match q.request {
        Some(id) => serde_json::to_value(verify::verify_request(log, id).await?),
        None => serde_json::to_value(verify::verify_all(log, None).await?),
    };
    Ok(Json(value.unwrap_or_default()))
}

async fn digests_handler(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<digest::DigestCheck>>, ApiError> {
    require_auditor(&caller)?;
    Ok(Json(digest::verify_digests(state.commands.log()).await?))
}

async fn reference_handler(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<reference::ReferenceRecord>>, ApiError> {
    require_auditor(&caller)?;
    Ok(Json(reference::history(state.commands.log()).await?))
}

async fn timeline_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(at): ApiQuery<AsOf>,
) -> Result<Json<Vec<Step>>, ApiError> {
    require_auditor(&caller)?;
    let id = parse_id(&id)?;
    let steps = as_of::history(state.commands.log(), id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(Json(
        steps
            .into_iter()
            .filter(|s| at.includes(&s.envelope))
            .collect(),
    ))
}

async fn state_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(at): ApiQuery<AsOf>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_auditor(&caller)?;
    let id = parse_id(&id)?;
    let request = as_of::request_as_of(state.commands.log(), id, at)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(Json(serde_json::json!({
        "request_id": id,
        "version": request.version(),
        "stage": request.stage().as_str(),
        "as_of": at.as_of,
        "state": request,
    })))
}

async fn feedback_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(document): ApiJson<FeedbackDocument>,
) -> Result<Json<FeedbackReply>, ApiError> {
    if !matches!(caller.0.role, Role::HigherLevel | Role::System) {
        return Err(ApiError::forbidden(
            "only the higher level records upward feedback",
        ));
    }
    Ok(Json(
        record_feedback(&state.commands, document, caller.0).await?,
    ))
}
