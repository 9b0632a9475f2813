//! The rate-report endpoints (merged into the main router):
//!
//! | Route | |
//! |---|---|
//! | `GET /api/v1/reports?level=street` | every published report: revisions (without figures) and feedback |
//! | `GET /api/v1/reports/{id}` | one report: every revision with its figures, changes and reason, and its feedback |
//! | `POST /api/v1/reports/{id}/feedback` | the higher level's feedback `{kind, comments, revision?, message_id?}` |
//!
//! Reads are for the auditor, supervisor, higher-level, dashboard and system roles; feedback
//! for the higher-level and system roles. Errors are `{code, message, field}`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use schemas::Role;
use schemas::event::ReportLevel;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ReportError;
use super::store::{self, FeedbackDocument, FeedbackReply, ReportRecord};
use crate::http::error::{ApiError, ApiJson};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::{AppState, Caller};

/// The report routes, to merge into the main router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/reports", get(list_handler))
        .route("/api/v1/reports/{id}", get(get_handler))
        .route("/api/v1/reports/{id}/feedback", post(feedback_handler))
        .layer(Extension(Arc::new(store::ReportList::default())))
}

impl From<ReportError> for ApiError {
    fn from(error: ReportError) -> ApiError {
        let status = match &error {
            ReportError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ReportError::NotFound(_) => StatusCode::NOT_FOUND,
            ReportError::Conflict(_) => StatusCode::CONFLICT,
            ReportError::Log(e) if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            body: error.body(),
        }
    }
}

fn require_reader(caller: &Caller) -> Result<(), ApiError> {
    match caller.0.role {
        Role::Auditor | Role::Supervisor | Role::HigherLevel | Role::Dashboard | Role::System => {
            Ok(())
        }
        other => Err(ApiError::forbidden(format!(
            "role `{}` may not read rate reports",
            other.as_str()
        ))),
    }
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "report id must be a UUID",
            Some("id"),
        )
    })
}

/// Query of the list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `street`, `district` or `city`.
    pub level: Option<String>,
}

/// One revision in the list (figures left out).
#[derive(Debug, Serialize)]
pub struct RevisionLine {
    /// Revision.
    pub revision: u32,
    /// NATS message id.
    pub message_id: Uuid,
    /// Log position computed at.
    pub log_position: u64,
    /// Deadlines judged at.
    pub as_of: schemas::Timestamp,
    /// SHA-256 of the figures.
    pub figures_sha256: String,
    /// Who published it.
    pub published_by: schemas::Actor,
    /// When.
    pub published_at: schemas::Timestamp,
    /// Revision superseded.
    pub supersedes: Option<u32>,
    /// Figures changed.
    pub changes: usize,
    /// Why.
    pub reason: Option<String>,
}

/// One report in the list.
#[derive(Debug, Serialize)]
pub struct ReportLine {
    /// Report id.
    pub report_id: Uuid,
    /// Level.
    pub level: ReportLevel,
    /// Unit.
    pub unit: String,
    /// Period.
    pub period: String,
    /// Latest feedback on the latest revision.
    pub status: Option<schemas::event::ReportFeedbackKind>,
    /// Revisions.
    pub revisions: Vec<RevisionLine>,
    /// Feedback.
    pub feedback: Vec<store::Feedback>,
}

impl From<ReportRecord> for ReportLine {
    fn from(r: ReportRecord) -> ReportLine {
        ReportLine {
            report_id: r.report_id,
            level: r.level,
            status: r.status(),
            unit: r.unit,
            period: r.period,
            revisions: r
                .revisions
                .into_iter()
                .map(|v| RevisionLine {
                    revision: v.published.revision,
                    message_id: v.published.message_id,
                    log_position: v.published.log_position,
                    as_of: v.published.as_of,
                    figures_sha256: v.published.figures_sha256,
                    published_by: v.published_by,
                    published_at: v.published_at,
                    supersedes: v.published.supersedes,
                    changes: v.published.changes.len(),
                    reason: v.published.reason,
                })
                .collect(),
            feedback: r.feedback,
        }
    }
}

async fn list_handler(
    State(state): State<AppState>,
    Extension(cache): Extension<Arc<store::ReportList>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<ReportLine>>, ApiError> {
    require_reader(&caller)?;
    let level = match q.level.as_deref() {
        None | Some("") => None,
        Some(l) => Some(ReportLevel::parse(l).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("level {l:?}: expected street, district or city"),
                Some("level"),
            )
        })?),
    };
    // The list is kept in memory and extended with what the log appended since the last call.
    let reports = cache.list(state.commands.log(), level).await?;
    Ok(Json(reports.into_iter().map(ReportLine::from).collect()))
}

async fn get_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ReportRecord>, ApiError> {
    require_reader(&caller)?;
    let id = parse_id(&id)?;
    let record = store::load(state.commands.log(), id)
        .await?
        .ok_or_else(|| ApiError::from(ReportError::NotFound(format!("report {id} not found"))))?;
    Ok(Json(record))
}

async fn feedback_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(mut document): ApiJson<FeedbackDocument>,
) -> Result<Json<FeedbackReply>, ApiError> {
    if !matches!(caller.0.role, Role::HigherLevel | Role::System) {
        return Err(ApiError::forbidden(
            "only the higher level records feedback on rate reports",
        ));
    }
    let id = parse_id(&id)?;
    if document.report_id.is_some_and(|r| r != id) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "report_id in the body differs from the path",
            Some("report_id"),
        ));
    }
    document.report_id = Some(id);
    let commands = &state.commands;
    let reply = store::record_feedback(
        commands.log(),
        document,
        &caller.0,
        commands.clock().now(),
        commands.fresh_command_id(),
    )
    .await?;
    Ok(Json(reply))
}
