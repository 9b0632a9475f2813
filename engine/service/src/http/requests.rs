//! Handlers of `/api/v1/requests`: intake, commands and reads.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemas::{Command, CommandKind, DecodeError, EventEnvelope, IntakeDocument, RequestId};
use serde::Serialize;
use uuid::Uuid;

use super::error::{ApiError, ApiJson, read_body, refuse_duplicate_keys};
use super::extract::{ApiPath, ApiQuery};
use super::{AppState, Caller};
use crate::audit::as_of;
use crate::audit::timeline::AsOf;
use crate::auth::{ReadAccess, read_access};
use crate::commands::{CommandError, CommandRequest, EXPECTED_VERSION_FIELD};
use crate::projector::duplicates::{DuplicateCandidate, for_answer};

/// The answer to an intake.
#[derive(Debug, Serialize)]
pub struct IntakeResponse {
    /// The request.
    pub request_id: RequestId,
    /// False when it had been received before.
    pub created: bool,
    /// Its current version.
    pub version: u64,
    /// Candidate duplicates the caller may read, best first; absent when no read models run
    /// in this process ([`crate::projector::duplicates::for_answer`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<Vec<DuplicateCandidate>>,
}

/// The answer to a command.
#[derive(Debug, Serialize)]
pub struct CommandResponse {
    /// The request.
    pub request_id: RequestId,
    /// Its version after the command.
    pub version: u64,
    /// The commit's global position.
    pub position: u64,
    /// The events recorded.
    pub events: Vec<EventEnvelope>,
    /// The command had been recorded before: this is the original result.
    pub duplicate: bool,
    /// For `accept`: candidate duplicates the caller may read, best first; absent for other
    /// commands and when no read models run in this process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<Vec<DuplicateCandidate>>,
}

/// `POST /api/v1/requests`.
pub async fn intake(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiJson(document): ApiJson<IntakeDocument>,
) -> Result<Response, ApiError> {
    let service = state.commands.clone();
    let submitter = actor.clone();
    // Run to completion even if the client goes away: never half-applied.
    let outcome = tokio::spawn(async move { service.intake(document, submitter).await })
        .await
        .map_err(|e| CommandError::Internal(e.to_string()))??;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = IntakeResponse {
        request_id: outcome.request_id,
        created: outcome.created,
        version: outcome.version,
        duplicates: for_answer(&state, &actor, outcome.request_id).await,
    };
    Ok((status, Json(body)).into_response())
}

/// `POST /api/v1/requests/{id}/{action}`.
pub async fn command(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiPath((id, action)): ApiPath<(String, String)>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, ApiError> {
    let request_id = parse_request_id(&id)?;
    let kind = CommandKind::parse(&action)
        .filter(|k| {
            !matches!(
                k,
                CommandKind::Receive | CommandKind::AttachMedia | CommandKind::RecordDuplicate
            )
        })
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_action",
                format!(
                    "no action `{action}` (new requests are POSTed to /api/v1/requests, files \
                     to /api/v1/requests/{{id}}/attachments; the engine records back-references)"
                ),
                Some("action"),
            )
        })?;
    let command_id = match header_uuid(&headers, "idempotency-key")? {
        Some(id) => id,
        None => state.commands.fresh_command_id(),
    };
    let correlation_id = header_uuid(&headers, "x-correlation-id")?;
    let expected_version = if_match(&headers)?;
    let bytes = read_body(request, &state).await?;
    refuse_duplicate_keys(&bytes)?;
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|e| ApiError::from(&DecodeError::from_serde(e)))?
    };
    let command = Command::from_action_body(kind.as_str(), body).map_err(|e| ApiError::from(&e))?;
    let service = state.commands.clone();
    let command_request = CommandRequest {
        request_id,
        command_id,
        correlation_id,
        actor: actor.clone(),
        command,
    };
    let outcome = tokio::spawn(async move {
        service
            .execute_expecting(command_request, expected_version)
            .await
    })
    .await
    .map_err(|e| CommandError::Internal(e.to_string()))??;
    let etag = etag(outcome.version);
    let duplicates = match kind {
        CommandKind::Accept => for_answer(&state, &actor, request_id).await,
        _ => None,
    };
    let body = Json(CommandResponse {
        request_id: outcome.request_id,
        version: outcome.version,
        position: outcome.position,
        events: outcome.events,
        duplicate: outcome.duplicate,
        duplicates,
    });
    Ok(([(header::ETAG, etag)], body).into_response())
}

/// The entity tag of a request at `version`: `"<version>"` (a strong tag; the version of a
/// request names its whole state).
fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits and quotes are a valid header")
}

/// The version a command expects the request to be at, from `If-Match: "<version>"` (the
/// `ETag` of the last read or command; a bare number is accepted too). Absent: no expectation.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    let unquoted = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    let digits = !unquoted.is_empty()
        && unquoted.len() <= 19
        && unquoted.bytes().all(|b| b.is_ascii_digit());
    match unquoted.parse::<u64>() {
        Ok(version) if digits => Ok(Some(version)),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "If-Match must be the request's ETag, a version number in quotes (\"7\")",
            Some(EXPECTED_VERSION_FIELD),
        )),
    }
}

/// `GET /api/v1/requests/{id}`; with `?as_of=<RFC 3339>` and/or `?version=<n>`, the request
/// as it stood then (events recorded up to that instant / version), rebuilt from the log.
pub async fn get_request(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(at): ApiQuery<AsOf>,
) -> Result<Response, ApiError> {
    let request_id = parse_request_id(&id)?;
    authorize_read(&state, &actor, request_id).await?;
    if at.is_present() {
        let request = as_of::request_as_of(state.commands.log(), request_id, at)
            .await?
            .ok_or_else(|| ApiError::from(CommandError::NotFound(request_id)))?;
        let value =
            serde_json::to_value(&request).map_err(|e| CommandError::Internal(e.to_string()))?;
        return Ok(Json(serde_json::json!({
            "request_id": request_id,
            "version": request.version(),
            "stage": request.stage().as_str(),
            "as_of": at.as_of,
            "state": value,
        }))
        .into_response());
    }
    let request = state.commands.load(request_id).await?;
    let value =
        serde_json::to_value(&request).map_err(|e| CommandError::Internal(e.to_string()))?;
    let body = Json(serde_json::json!({
        "request_id": request_id,
        "version": request.version(),
        "stage": request.stage().as_str(),
        "state": value,
    }));
    // The current state's tag, for a command's `If-Match`.
    Ok(([(header::ETAG, etag(request.version()))], body).into_response())
}

/// Query of `GET /api/v1/requests/{id}/history`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Each event with the request's state after it (and the correction that neutralised it).
    #[serde(default)]
    pub with_state: bool,
}

/// `GET /api/v1/requests/{id}/history`: the event envelopes in order; with `?with_state=true`
/// each step is `{envelope, state_after, corrected_by}`.
pub async fn history(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Response, ApiError> {
    let request_id = parse_request_id(&id)?;
    authorize_read(&state, &actor, request_id).await?;
    if query.with_state {
        let steps = as_of::history(state.commands.log(), request_id)
            .await?
            .ok_or_else(|| ApiError::from(CommandError::NotFound(request_id)))?;
        return Ok(Json(steps).into_response());
    }
    let events: Vec<EventEnvelope> = state.commands.history(request_id).await?;
    Ok(Json(events).into_response())
}

/// Rights before facts: checks `actor` may read `request_id` before anything about it is
/// answered. A role that reads every request learns that an unknown one does not exist
/// (404); every other caller gets the same 403 for a request outside its scope as for one
/// that does not exist ([`engine_core::Request::visible_to`]).
pub(crate) async fn authorize_read(
    state: &AppState,
    actor: &schemas::Actor,
    request_id: RequestId,
) -> Result<(), ApiError> {
    match read_access(actor) {
        ReadAccess::None => Err(ApiError::forbidden(format!(
            "role `{}` reads aggregates only",
            actor.role.as_str()
        ))),
        // Reads every request: the handler itself answers 404 for an unknown one.
        ReadAccess::Any => Ok(()),
        _ => match state.commands.load(request_id).await {
            Ok(request) if request.visible_to(actor) => Ok(()),
            Ok(_) | Err(CommandError::NotFound(_)) => Err(not_visible()),
            Err(other) => Err(other.into()),
        },
    }
}

/// The one answer to a caller outside a request's circle, whether the request exists or not.
pub(crate) fn not_visible() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "not_addressed_to_you",
        "no request with this id is addressed to you",
        None,
    )
}

pub(crate) fn parse_request_id(id: &str) -> Result<RequestId, ApiError> {
    Uuid::parse_str(id).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "the request id is not a UUID",
            Some("request_id"),
        )
    })
}

pub(crate) fn header_uuid(headers: &HeaderMap, name: &str) -> Result<Option<Uuid>, ApiError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| Uuid::parse_str(v.trim()).ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed",
                format!("{name} must be a UUID"),
                Some(name),
            )
        })
}
