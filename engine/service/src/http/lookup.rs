//! `POST /api/v1/lookup`: a resident's status lookup, for any channel, without an account.
//!
//! The caller names the ticket (`external_id`, and the `channel` if they know it) and proves
//! they are the resident with the last four digits of the phone number they gave, read from
//! the encrypted contact store and compared in memory — never logged, never answered. The
//! answer carries only what the resident was or will be told anyway: the stage in plain words,
//! the expected date (the acceptance limit while received, the completion deadline in force
//! while handled) and the reply text once replied.
//!
//! **No oracle.** An unknown ticket, a wrong check, an anonymous request, a request received
//! without a phone and one whose contact was erased all get the same `404 not_found` with the
//! same message. Every call takes a token from its peer address's bucket first
//! ([`crate::ratelimit::peer_key`]: headers are not trusted on an open route;
//! `http.lookup_rate_limit`): over it, `429 rate_limited` before anything is read, so the
//! 10 000 possible checks cannot be walked.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use engine_core::request::{Request, Stage};
use schemas::{Channel, DeadlineKind, Event, LoggedCommit, RequestId};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, ApiJson};
use crate::commands::CommandError;
use crate::contacts::StoredContact;
use crate::ratelimit::{IntakeRateLimiter, RateLimitConfig};

/// The longest ticket accepted, in characters.
const MAX_TICKET_CHARS: usize = 128;

/// What the resident sends.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupQuery {
    /// The channel the request came in on; every channel is tried when absent.
    #[serde(default)]
    pub channel: Option<Channel>,
    /// The ticket number the resident was given (1..=128 characters).
    #[schemars(length(min = 1, max = 128), extend("pattern" = "\\S"))]
    pub external_id: String,
    /// The last four digits of the phone number the resident gave.
    #[schemars(regex(pattern = r"^[0-9]{4}$"))]
    pub phone_last4: String,
}

/// The public facts of one request.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LookupAnswer {
    /// The ticket number, as asked.
    pub external_id: String,
    /// The channel it came in on.
    pub channel: Channel,
    /// The stage in plain words: `received`, `accepted`, `in_progress`, `paused`, `replied`,
    /// `not_accepted` or `closed`.
    pub status: &'static str,
    /// The same, in Chinese.
    pub status_text: &'static str,
    /// What `expected_at` is the limit of: `acceptance` or `completion`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<&'static str>,
    /// The expected date, Beijing time `YYYY-MM-DD HH:MM`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_at: Option<String>,
    /// The reply the resident was sent, once replied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
}

/// The limits a lookup client gets by default: one every five seconds, five at once.
pub fn default_rate_limit() -> RateLimitConfig {
    RateLimitConfig {
        per_second: 0.2,
        burst: 5,
        max_clients: 10_000,
    }
}

/// The lookup route behind its own per-client limiter.
pub fn router(limit: RateLimitConfig) -> Router<AppState> {
    Router::new()
        .route("/api/v1/lookup", post(lookup))
        .layer(axum::middleware::from_fn_with_state(
            IntakeRateLimiter::new(limit),
            crate::ratelimit::limit_by_peer,
        ))
}

/// The one answer of every miss.
fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no request with this ticket and check",
        None,
    )
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_field",
        message,
        Some(field),
    )
}

/// `POST /api/v1/lookup`.
async fn lookup(
    State(state): State<AppState>,
    ApiJson(query): ApiJson<LookupQuery>,
) -> Result<Json<LookupAnswer>, ApiError> {
    let ticket = query.external_id.trim();
    if ticket.is_empty() || ticket.chars().count() > MAX_TICKET_CHARS {
        return Err(invalid(
            "external_id",
            "external_id must be 1 to 128 characters",
        ));
    }
    let check = query.phone_last4.as_str();
    if check.len() != 4 || !check.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("phone_last4", "phone_last4 must be four digits"));
    }
    let channels = match query.channel {
        Some(channel) => vec![channel],
        None => Channel::ALL.to_vec(),
    };
    for channel in channels {
        let log = state.commands.log();
        let id = state
            .commands
            .intake_ids()
            .resolve(log, channel, ticket)
            .await
            .map_err(CommandError::from)?;
        let commits = log.load(id).await.map_err(CommandError::from)?;
        if commits.is_empty() {
            continue;
        }
        if let Some(answer) = answer_if_resident(&state, id, &commits, check).await? {
            return Ok(Json(answer));
        }
    }
    Err(not_found())
}

/// The answer for the request in `commits` when `check` matches its resident's phone.
async fn answer_if_resident(
    state: &AppState,
    id: RequestId,
    commits: &[LoggedCommit],
    check: &str,
) -> Result<Option<LookupAnswer>, ApiError> {
    let request = Request::from_history(id, commits.iter().flat_map(|c| &c.commit.events));
    let Some(intake) = request.intake() else {
        return Ok(None);
    };
    if intake.anonymous {
        return Ok(None);
    }
    let Some(contact_ref) = &intake.contact_ref else {
        return Ok(None);
    };
    let contact = state
        .commands
        .contacts()
        .get(contact_ref)
        .await
        .map_err(CommandError::from)?;
    let Some(StoredContact::Present(contact)) = contact else {
        return Ok(None);
    };
    let digits: Vec<u8> = contact
        .phone
        .as_deref()
        .unwrap_or("")
        .bytes()
        .filter(u8::is_ascii_digit)
        .collect();
    if digits.len() < 4 || digits[digits.len() - 4..] != *check.as_bytes() {
        return Ok(None);
    }
    Ok(Some(public_facts(&request, commits)))
}

/// The stage in plain words (English, Chinese).
fn status(request: &Request) -> (&'static str, &'static str) {
    use Stage::*;
    match request.stage() {
        New | Received => ("received", "已接收"),
        Accepted | Classified => ("accepted", "已受理"),
        NotAccepted | TransferredEmergency | LinkedDuplicate => ("not_accepted", "不予受理"),
        Merged => ("merged", "已并案"),
        _ if request.paused_since().is_some() => ("paused", "暂停计时"),
        DirectHandling | ProxyHandling | Dispatched | ReturnRequested | SignedFor | Contacted
        | InProgress | TerminationPending => ("in_progress", "办理中"),
        Replied | AwaitingCallback | Rated => ("replied", "已答复"),
        Archived => ("closed", "已办结"),
    }
}

/// What the resident may be told of `request`.
fn public_facts(request: &Request, commits: &[LoggedCommit]) -> LookupAnswer {
    let (status, status_text) = status(request);
    let expected = if request.stage() == Stage::Received {
        request
            .deadline_in_force(DeadlineKind::Response)
            .map(|at| ("acceptance", at))
    } else {
        request
            .deadline_in_force(DeadlineKind::Completion)
            .map(|at| ("completion", at))
    };
    let intake = request.intake();
    LookupAnswer {
        external_id: intake.map(|i| i.external_id.clone()).unwrap_or_default(),
        channel: intake.map(|i| i.channel).unwrap_or(Channel::Hotline),
        status,
        status_text,
        expected: expected.map(|(kind, _)| kind),
        expected_at: expected.map(|(_, at)| crate::notify::document::local_time(&at)),
        reply: request
            .stage()
            .is_replied()
            .then(|| latest_reply(commits))
            .flatten(),
    }
}

/// The text of the latest reply not neutralised by a correction.
fn latest_reply(commits: &[LoggedCommit]) -> Option<String> {
    let events = || commits.iter().flat_map(|c| &c.commit.events);
    let corrected: Vec<uuid::Uuid> = events()
        .filter_map(|e| match &e.event {
            Event::EventCorrected(c) => Some(c.event_id),
            _ => None,
        })
        .collect();
    events()
        .filter(|e| !corrected.contains(&e.event_id))
        .filter_map(|e| match &e.event {
            Event::ResultReplied(r) => Some(r.content.clone()),
            _ => None,
        })
        .next_back()
}
