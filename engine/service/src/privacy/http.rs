//! `GET /api/v1/requests/{id}/contact?purpose=…`: contact data for explicitly permitted
//! auditors, each read recorded in the privacy ledger before the data is sent.
//!
//! Wiring: `router.merge(privacy::http::router(PrivacyState { … }))` (the state travels as
//! an `Extension`).

use super::*;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};

use crate::http::error::ApiError;
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

/// The contact route.
pub fn router(state: PrivacyState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/requests/{id}/contact", get(contact))
        .layer(Extension(state))
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
