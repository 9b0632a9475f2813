//! `GET /api/v1/requests/{id}/duplicates`: the candidate duplicates of a request, scored, for
//! the worker who accepts or handles it.
//!
//! The neighbours come from the request summary ([`Projections::neighbours`]: the same base
//! grid, the same category once the request is classified, received within the profile's
//! `[duplicates] window_days` either side); each neighbour's text is read from its
//! `request_received` event and scored against the request's own by
//! [`engine_core::duplicates::similarity`]. Only candidates scoring at least the profile's
//! `min_score` and visible to the caller are listed, best first
//! ([`engine_core::duplicates::DuplicateRule`]). Rights first: the caller must be allowed to
//! read the request itself (as `GET /api/v1/requests/{id}`), else 403 whether it exists or not.
//!
//! The same list rides on the answers of native intake and of `accept` ([`for_answer`]), when
//! the read models run in this process.

use axum::extract::{Extension, State};
use axum::routing::get;
use axum::{Json, Router};
use engine_core::duplicates::similarity;
use engine_core::request::Request;
use projections::Projections;
use schemas::{Actor, Event, LoggedCommit, RequestId};
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
    let (request, text) = load(&state, request_id).await?;
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
    let Some(text) = text else {
        return Err(CommandError::NotFound(request_id).into());
    };
    Ok(Json(
        scored(&state, &projections, &actor, &request, &text).await?,
    ))
}

/// The request `request_id` and the text its resident gave, from the log.
async fn load(
    state: &AppState,
    request_id: RequestId,
) -> Result<(Request, Option<String>), CommandError> {
    let commits = state.commands.log().load(request_id).await?;
    let request = Request::from_history(request_id, commits.iter().flat_map(|c| &c.commit.events));
    Ok((request, received_text(&commits)))
}

/// The candidates of `request` (whose resident wrote `text`) that `actor` may read, scored
/// and filtered under the profile's rule, best first. The caller has checked that `actor`
/// may read `request` itself.
async fn scored(
    state: &AppState,
    projections: &Projections,
    actor: &Actor,
    request: &Request,
    text: &str,
) -> Result<DuplicateCandidates, CommandError> {
    let request_id = request.id();
    let intake = request.intake().ok_or(CommandError::NotFound(request_id))?;
    let rule = state.commands.policy().duplicates();
    let category = request.classification().map(|c| c.category.clone());
    let ids = projections
        .neighbours(
            &intake.location.grid,
            category.as_deref(),
            intake.received_at - rule.window(),
            intake.received_at + rule.window(),
            &request_id.to_string(),
            projections::query::NEIGHBOURS_MAX,
        )
        .await
        .map_err(|e| CommandError::Internal(e.to_string()))?;
    let mut candidates = Vec::new();
    for other_id in ids
        .iter()
        .filter_map(|other| other.parse::<RequestId>().ok())
    {
        let (other, other_text) = load(state, other_id).await?;
        let Some(other_text) = other_text else {
            continue;
        };
        let score = similarity(text, &other_text);
        // Rights first: a neighbour the caller may not read is never named.
        if !rule.lists(score) || !other.visible_to(actor) {
            continue;
        }
        candidates.push(DuplicateCandidate {
            request_id: other_id,
            external_id: other
                .intake()
                .map(|i| i.external_id.clone())
                .unwrap_or_default(),
            stage: other.stage().as_str().to_string(),
            score: (score * 1000.0).round() / 1000.0,
        });
    }
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(DuplicateCandidates {
        request_id,
        by_category: category.is_some(),
        candidates,
    })
}

/// The candidates to show `actor` in the answer of an intake or an `accept` of
/// `request_id`: `None` when no read models run in this process (or they could not be read:
/// the command is recorded either way, and its answer must not fail for a hint), else the
/// candidates `actor` may read, best first.
pub async fn for_answer(
    state: &AppState,
    actor: &Actor,
    request_id: RequestId,
) -> Option<Vec<DuplicateCandidate>> {
    let projections = state.read_models.get()?;
    let found = async {
        let (request, text) = load(state, request_id).await?;
        if !request.visible_to(actor) {
            return Ok(Vec::new());
        }
        let Some(text) = text else {
            return Ok(Vec::new());
        };
        Ok::<_, CommandError>(
            scored(state, projections, actor, &request, &text)
                .await?
                .candidates,
        )
    };
    match found.await {
        Ok(candidates) => Some(candidates),
        Err(error) => {
            tracing::warn!(%request_id, error.message = %error, "duplicate candidates not read");
            None
        }
    }
}
