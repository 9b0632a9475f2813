//! `GET /api/v1/requests/{id}/duplicates`: the candidate duplicates of a request, scored, for
//! the worker who accepts or handles it.
//!
//! The neighbours come from the request summary ([`Projections::neighbours`]: the same base
//! grid, the same category once the request is classified, received within
//! [`engine_core::duplicates::WINDOW_DAYS`] days either side); each neighbour's text is read
//! from its `request_received` event and scored against the request's own by
//! [`engine_core::duplicates::similarity`]. Only candidates scoring at least
//! [`engine_core::duplicates::MIN_SCORE`] and visible to the caller are listed, best first.
//! Rights first: the caller must be allowed to read the request itself (as
//! `GET /api/v1/requests/{id}`), else 403 whether it exists or not.

use axum::extract::{Extension, State};
use axum::routing::get;
use axum::{Json, Router};
use engine_core::duplicates::{MIN_SCORE, WINDOW_DAYS, similarity};
use engine_core::request::Request;
use projections::Projections;
use schemas::{Event, LoggedCommit, RequestId};
use serde::Serialize;

use crate::auth::ReadAccess;
use crate::commands::CommandError;
use crate::http::error::ApiError;
use crate::http::extract::ApiPath;
use crate::http::requests::{not_visible, parse_request_id};
use crate::http::{AppState, Caller};

/// One candidate duplicate.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DuplicateCandidate {
    /// The other request.
    pub request_id: RequestId,
    /// Its ticket.
    pub external_id: String,
    /// Its stage.
    pub stage: String,
    /// How alike the two texts are, 0 to 1.
    pub score: f64,
}

/// The answer: the candidates, best first.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DuplicateCandidates {
    /// The request asked about.
    pub request_id: RequestId,
    /// Whether neighbours were matched on the category too (the request is classified).
    pub by_category: bool,
    /// The candidates, best first.
    pub candidates: Vec<DuplicateCandidate>,
}

/// The route, over `projections`.
pub fn router(projections: Projections) -> Router<AppState> {
    Router::new()
        .route("/api/v1/requests/{id}/duplicates", get(duplicates))
        .layer(Extension(projections))
}

/// The text the resident gave, from the request's receipt.
fn received_text(commits: &[LoggedCommit]) -> Option<String> {
    commits
        .iter()
        .flat_map(|c| &c.commit.events)
        .find_map(|e| match &e.event {
            Event::RequestReceived(r) => Some(r.text.clone()),
            _ => None,
        })
}

async fn duplicates(
    State(state): State<AppState>,
    Extension(projections): Extension<Projections>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DuplicateCandidates>, ApiError> {
    let request_id = parse_request_id(&id)?;
    let log = state.commands.log();
    let commits = log.load(request_id).await.map_err(CommandError::from)?;
    let request = Request::from_history(request_id, commits.iter().flat_map(|c| &c.commit.events));
    match crate::auth::read_access(&actor) {
        ReadAccess::None => {
            return Err(ApiError::forbidden(format!(
                "role `{}` reads aggregates only",
                actor.role.as_str()
            )));
        }
        ReadAccess::Any if !request.exists() => {
            return Err(CommandError::NotFound(request_id).into());
        }
        // Outside the caller's circle, the same 403 whether the request exists or not.
        _ if !request.visible_to(&actor) => return Err(not_visible()),
        _ => {}
    }
    let (Some(intake), Some(text)) = (request.intake(), received_text(&commits)) else {
        return Err(CommandError::NotFound(request_id).into());
    };
    let category = request.classification().map(|c| c.category.clone());
    let window = chrono::Duration::days(WINDOW_DAYS);
    let ids = projections
        .neighbours(
            &intake.location.grid,
            category.as_deref(),
            intake.received_at - window,
            intake.received_at + window,
            &request_id.to_string(),
            projections::query::NEIGHBOURS_MAX,
        )
        .await
        .map_err(|e| CommandError::Internal(e.to_string()))?;
    let mut candidates = Vec::new();
    for other in ids {
        let Ok(other_id) = other.parse::<RequestId>() else {
            continue;
        };
        let other_commits = log.load(other_id).await.map_err(CommandError::from)?;
        let other_request = Request::from_history(
            other_id,
            other_commits.iter().flat_map(|c| &c.commit.events),
        );
        let Some(other_text) = received_text(&other_commits) else {
            continue;
        };
        let score = similarity(&text, &other_text);
        if score < MIN_SCORE || !other_request.visible_to(&actor) {
            continue;
        }
        candidates.push(DuplicateCandidate {
            request_id: other_id,
            external_id: other_request
                .intake()
                .map(|i| i.external_id.clone())
                .unwrap_or_default(),
            stage: other_request.stage().as_str().to_string(),
            score: (score * 1000.0).round() / 1000.0,
        });
    }
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(Json(DuplicateCandidates {
        request_id,
        by_category: category.is_some(),
        candidates,
    }))
}
