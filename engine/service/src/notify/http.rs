//! `GET /api/v1/notifications` and `POST /api/v1/notifications/{id}/replay`.
//!
//! Listing: supervisors, auditors and the system role; replay: supervisors and the system
//! role. Every other role gets 403. Listings never carry contact data, for any caller: rows
//! hold the document without its recipient.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use schemas::Role;
use serde::{Deserialize, Serialize};

use super::store::{Delivery, DeliveryStore, Status};
use super::{NotificationDocument, now_ms};
use crate::http::error::ApiError;
use crate::http::{AppState, Caller};

/// Most rows one listing returns.
const LIST_MAX: i64 = 1_000;

/// The notification routes (the store travels as an `Extension`).
pub fn router(store: DeliveryStore) -> Router<AppState> {
    Router::new()
        .route("/api/v1/notifications", get(list))
        .route("/api/v1/notifications/{id}/replay", post(replay))
        .layer(Extension(store))
}

/// The listing query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `pending`, `failed`, `sent`, `dead` or `suppressed`.
    #[serde(default)]
    pub status: Option<String>,
    /// Only this request's notifications.
    #[serde(default)]
    pub request_id: Option<uuid::Uuid>,
    /// Most rows (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// One row as the API shows it: delivery state and the rendered text, never contact data.
#[derive(Debug, Serialize)]
pub struct NotificationView {
    /// Delivery state.
    #[serde(flatten)]
    pub delivery: Delivery,
    /// The rendered text.
    pub text: String,
    /// Its locale.
    pub locale: String,
    /// `created_at` as RFC 3339.
    pub created: Option<DateTime<Utc>>,
    /// `next_attempt_at` as RFC 3339.
    pub next_attempt: Option<DateTime<Utc>>,
}

impl From<Delivery> for NotificationView {
    fn from(delivery: Delivery) -> Self {
        let doc: Option<NotificationDocument> = serde_json::from_str(&delivery.document).ok();
        NotificationView {
            text: doc.as_ref().map(|d| d.text.clone()).unwrap_or_default(),
            locale: doc.map(|d| d.locale).unwrap_or_default(),
            created: DateTime::from_timestamp_millis(delivery.created_at),
            next_attempt: DateTime::from_timestamp_millis(delivery.next_attempt_at),
            delivery,
        }
    }
}

fn unavailable(error: super::NotifyError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        error.to_string(),
        None,
    )
}

async fn list(
    Extension(store): Extension<DeliveryStore>,
    Caller(actor): Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<NotificationView>>, ApiError> {
    if !matches!(actor.role, Role::Supervisor | Role::Auditor | Role::System) {
        return Err(ApiError::forbidden(
            "notifications are listed to supervisors, auditors and the system role only",
        ));
    }
    let Query(query) = query.map_err(|rejection| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!(
                "query: {} (status, request_id (a UUID) and limit (a number) are accepted)",
                rejection.body_text()
            ),
            None,
        )
    })?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(name) => Some(Status::parse(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "status must be one of pending, failed, sent, dead, suppressed",
                Some("status"),
            )
        })?),
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=LIST_MAX).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("limit must be between 1 and {LIST_MAX}"),
            Some("limit"),
        ));
    }
    let request_id = query.request_id.map(|id| id.to_string());
    let rows = store
        .list(status, request_id.as_deref(), limit)
        .await
        .map_err(unavailable)?;
    Ok(Json(rows.into_iter().map(NotificationView::from).collect()))
}

async fn replay(
    Extension(store): Extension<DeliveryStore>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<NotificationView>, ApiError> {
    if !matches!(actor.role, Role::Supervisor | Role::System) {
        return Err(ApiError::forbidden(
            "notifications are replayed by supervisors and the system role only",
        ));
    }
    let id = uuid::Uuid::parse_str(&id).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "the notification id is not a UUID",
            Some("id"),
        )
    })?;
    let row = store
        .replay(&id.to_string(), now_ms())
        .await
        .map_err(unavailable)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such notification",
                None,
            )
        })?;
    if row.status == Status::Suppressed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_replayable",
            format!(
                "the notification was suppressed ({}) and is never sent",
                row.last_error.as_deref().unwrap_or("no reason")
            ),
            None,
        ));
    }
    Ok(Json(row.into()))
}
