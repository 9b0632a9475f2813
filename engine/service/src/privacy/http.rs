//! The contact route of a request:
//! - `GET /api/v1/requests/{id}/contact?purpose=…`: contact data for explicitly permitted
//!   auditors, each read recorded in the privacy ledger before the data is sent;
//! - `PUT /api/v1/requests/{id}/contact` with `{contact, reason}`: the `correct_contact`
//!   command, the one way a stored contact changes. Station staff of the request's community
//!   and supervisors may send it; the event records the reason and who corrected, the new data
//!   goes only to the encrypted contact store. `Idempotency-Key` and the answer are those of
//!   the other command routes.
//!
//! Wiring: `router.merge(privacy::http::router(PrivacyState { … }))` (the state travels as
//! an `Extension`).

use super::*;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Extension, Json, Router};
use schemars::JsonSchema;
use schemas::Command;
use schemas::command::CorrectContact;
use schemas::intake::ResidentContact;

use crate::commands::{CommandError, CommandRequest, ContactWrite};
use crate::http::error::{ApiError, ApiJson};
use crate::http::requests::{CommandResponse, header_uuid, parse_request_id};
use crate::http::{AppState, Caller};

/// What the contact endpoint needs besides the app state.
#[derive(Debug, Clone)]
pub struct PrivacyState {
    /// The ledger.
    pub ledger: PrivacyLedger,
    /// Who may read.
    pub config: Arc<PrivacyConfig>,
}

/// The query of the contact endpoint.
#[derive(Debug, Deserialize)]
pub struct ContactQuery {
    /// Why the data is read (recorded).
    #[serde(default)]
    pub purpose: String,
}

/// The body of `PUT /api/v1/requests/{id}/contact`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactCorrection {
    /// The resident's contact data as it is now (the shape of the intake's `contact`: at
    /// least one field not blank, each at most 256 characters); replaces the stored record.
    #[schemars(extend(
        "properties" = {
            "name": { "type": ["string", "null"], "maxLength": 256 },
            "phone": { "type": ["string", "null"], "maxLength": 256 },
            "id_number": { "type": ["string", "null"], "maxLength": 256 },
            "address_detail": { "type": ["string", "null"], "maxLength": 256 }
        },
        "anyOf" = [
            { "required": ["name"], "properties": { "name": { "type": "string", "pattern": "\\S" } } },
            { "required": ["phone"], "properties": { "phone": { "type": "string", "pattern": "\\S" } } },
            { "required": ["id_number"], "properties": { "id_number": { "type": "string", "pattern": "\\S" } } },
            { "required": ["address_detail"], "properties": { "address_detail": { "type": "string", "pattern": "\\S" } } }
        ]
    ))]
    pub contact: ResidentContact,
    /// Why it is corrected (1 to 500 characters; recorded in the log, so no personal data).
    #[schemars(length(min = 1, max = 500), extend("pattern" = "\\S"))]
    pub reason: String,
}

/// The contact route.
pub fn router(state: PrivacyState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/requests/{id}/contact", get(contact).put(correct))
        .layer(Extension(state))
}

/// `PUT /api/v1/requests/{id}/contact`: records `correct_contact` and replaces the stored
/// contact. Rights come first, in the command service, before the body's contact is checked:
/// a caller who may not correct this request hears the same whether it exists or not, and
/// learns nothing of its stage.
async fn correct(
    State(app): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ContactCorrection>,
) -> Result<Json<CommandResponse>, ApiError> {
    let request_id = parse_request_id(&id)?;
    let command_id = match header_uuid(&headers, "idempotency-key")? {
        Some(id) => id,
        None => app.commands.fresh_command_id(),
    };
    let correlation_id = header_uuid(&headers, "x-correlation-id")?;
    let request = CommandRequest {
        request_id,
        command_id,
        correlation_id,
        actor,
        command: Command::CorrectContact(CorrectContact {
            reason: body.reason,
        }),
    };
    let service = app.commands.clone();
    // Run to completion even if the client goes away: never half-applied.
    let outcome = tokio::spawn(async move {
        let write = ContactWrite::Correction(&body.contact);
        service.execute_with(request, Some(write), None).await
    })
    .await
    .map_err(|e| CommandError::Internal(e.to_string()))??;
    Ok(Json(CommandResponse {
        request_id: outcome.request_id,
        version: outcome.version,
        position: outcome.position,
        events: outcome.events,
        duplicate: outcome.duplicate,
        duplicates: None,
    }))
}

async fn contact(
    State(app): State<AppState>,
    Extension(privacy): Extension<PrivacyState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(query): Query<ContactQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let request_id = Uuid::parse_str(&id).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "the request id is not a UUID",
            Some("request_id"),
        )
    })?;
    // Rights before facts: who may not read contact data hears the same whether the
    // request exists or not.
    if !may_read_contacts(&privacy.config, &actor) {
        return Err(ApiError::forbidden(format!(
            "`{}` is not permitted to read contact data",
            actor.id
        )));
    }
    let service = &app.commands;
    if service
        .log()
        .load_raw(request_id)
        .await
        .map_err(unavailable)?
        .is_empty()
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_request",
            format!("no request {request_id}"),
            Some("request_id"),
        ));
    }
    let result = read_contact(
        service.log(),
        service.contacts(),
        &privacy.ledger,
        &privacy.config,
        &actor,
        request_id,
        &query.purpose,
        service.clock().now(),
    )
    .await;
    match result {
        Ok(None) => Ok(Json(
            serde_json::json!({"request_id": request_id, "contact": null, "status": "none"}),
        )),
        Ok(Some(StoredContact::Erased)) => Ok(Json(
            serde_json::json!({"request_id": request_id, "contact": null, "status": "erased"}),
        )),
        Ok(Some(StoredContact::Present(contact))) => Ok(Json(
            serde_json::json!({"request_id": request_id, "contact": contact, "status": "present"}),
        )),
        Err(PrivacyError::Forbidden(message)) => Err(ApiError::forbidden(message)),
        Err(other) => Err(unavailable(other)),
    }
}

fn unavailable(error: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        error.to_string(),
        None,
    )
}
