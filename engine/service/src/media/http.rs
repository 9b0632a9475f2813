//! The attachment routes:
//!
//! | Route | |
//! |---|---|
//! | `POST /api/v1/requests/{id}/attachments?purpose=&personal=` | a file as the raw body (its `Content-Type`) or as the first file part of `multipart/form-data` → 201 the attachment, 200 when the request held those bytes already |
//! | `GET /api/v1/requests/{id}/attachments/{sha256}` | the bytes, with the recorded type; 410 `media_erased` once erased |
//!
//! Rights come first (the same 403/404 for a request outside the caller's scope as for an
//! unknown one), then the file: 413 `payload_too_large` over `media.max_bytes`, 415
//! `unsupported_media_type` for a type not accepted or not what the bytes are, nothing
//! stored or recorded. The route carries its own body limit (`media.max_bytes` plus room
//! for the multipart framing) instead of `http.body_limit_bytes`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use schemas::command::AttachmentPurpose;
use serde::Deserialize;

use super::attach::{AttachError, Upload, attach};
use super::{MediaConfig, MediaRefusal, MediaStore};
use crate::http::error::ApiError;
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::requests::{authorize_read, header_uuid, parse_request_id};
use crate::http::{AppState, Caller};

/// Room for the multipart framing and the other parts around the file.
pub const MULTIPART_OVERHEAD_BYTES: u64 = 64 * 1024;

/// What the routes share.
#[derive(Debug, Clone)]
pub struct MediaState {
    /// Where the bytes go.
    pub store: MediaStore,
    /// The limits.
    pub config: std::sync::Arc<MediaConfig>,
    /// The client that fetches Open311 `media_url`s ([`super::fetch`]).
    pub client: reqwest::Client,
}

/// The body limit of the upload route.
pub fn body_limit(config: &MediaConfig) -> usize {
    usize::try_from(config.max_bytes.saturating_add(MULTIPART_OVERHEAD_BYTES)).unwrap_or(usize::MAX)
}

/// Whether `path` is the upload route (the edge gives it [`body_limit`]).
pub fn is_upload_path(path: &str) -> bool {
    path.strip_prefix("/api/v1/requests/")
        .and_then(|rest| rest.strip_suffix("/attachments"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// The attachment routes (the store and limits travel in [`AppState::media`]).
pub fn router(config: &MediaConfig) -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/requests/{id}/attachments",
            post(upload).layer(DefaultBodyLimit::max(body_limit(config))),
        )
        .route("/api/v1/requests/{id}/attachments/{sha256}", get(download))
}

/// Query of the upload.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// `intake` (default), `progress`, `reply_before`, `reply_after`.
    #[serde(default)]
    pub purpose: AttachmentPurpose,
    /// Personal data of the resident; absent: true for intake files, false otherwise.
    #[serde(default)]
    pub personal: Option<bool>,
}

async fn upload(
    State(app): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, ApiError> {
    let media = app.media.clone();
    let request_id = parse_request_id(&id)?;
    let command_id = header_uuid(&headers, "idempotency-key")?;
    // Rights before facts: nothing of the body is read for a caller who may not attach.
    super::attach::admit(&app.commands, &actor, request_id).await?;
    let (bytes, declared) = read_file(request, &app, &media.config).await?;
    let upload = Upload {
        bytes,
        declared,
        purpose: query.purpose,
        personal: query.personal,
    };
    let commands = app.commands.clone();
    // Run to completion even if the client goes away: stored and recorded, or neither.
    let outcome = tokio::spawn(async move {
        attach(
            &commands,
            &media.store,
            &media.config,
            actor,
            request_id,
            upload,
            command_id,
        )
        .await
    })
    .await
    .map_err(|e| internal(e.to_string()))?
    .map_err(attach_error)?;
    let status = match outcome.created {
        true => StatusCode::CREATED,
        false => StatusCode::OK,
    };
    Ok((status, Json(outcome)).into_response())
}

/// The file and its declared type: the first part with a file name (or else the first part)
/// of a multipart body, or the raw body.
async fn read_file(
    request: Request,
    app: &AppState,
    config: &MediaConfig,
) -> Result<(Bytes, Option<String>), ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let too_large = || {
        refusal(MediaRefusal::TooLarge {
            limit: config.max_bytes,
        })
    };
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > config.max_bytes.saturating_add(MULTIPART_OVERHEAD_BYTES)) {
        return Err(too_large());
    }
    let multipart = declared.as_deref().is_some_and(|d| {
        d.trim()
            .to_ascii_lowercase()
            .starts_with("multipart/form-data")
    });
    if !multipart {
        let bytes = crate::http::error::read_body(request, app)
            .await
            .map_err(|e| match e.status {
                StatusCode::PAYLOAD_TOO_LARGE => too_large(),
                _ => e,
            })?;
        return Ok((bytes, declared));
    }
    let mut form = Multipart::from_request(request, app)
        .await
        .map_err(|e| malformed(e.body_text()))?;
    while let Some(field) = form.next_field().await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            malformed(e.body_text())
        }
    })? {
        if field.file_name().is_none() && field.name() != Some("file") {
            continue;
        }
        let declared = field.content_type().map(str::to_string);
        let bytes = field.bytes().await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                malformed(e.body_text())
            }
        })?;
        return Ok((bytes, declared));
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "missing_field",
        "the multipart body has no file part (a part with a file name, or named `file`)",
        Some("file"),
    ))
}

async fn download(
    State(app): State<AppState>,
    Caller(actor): Caller,
    ApiPath((id, sha256)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let request_id = parse_request_id(&id)?;
    authorize_read(&app, &actor, request_id).await?;
    let request = app.commands.load(request_id).await?;
    let Some(attachment) = request.attachment(&sha256) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the request has no attachment with this hash",
            Some("sha256"),
        ));
    };
    match app.media.store.get(request_id, &sha256).await {
        Ok(Some(bytes)) => Ok((
            [
                (header::CONTENT_TYPE, attachment.content_type.clone()),
                (header::CACHE_CONTROL, "private, no-store".to_string()),
            ],
            bytes,
        )
            .into_response()),
        Ok(None) => Err(ApiError::new(
            StatusCode::GONE,
            "media_erased",
            "the attachment was erased with the request's personal data",
            Some("sha256"),
        )),
        Err(e) => Err(attach_error(AttachError::Store(e))),
    }
}

fn malformed(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "malformed", message, Some("file"))
}

fn internal(message: String) -> ApiError {
    ApiError::from(crate::commands::CommandError::Internal(message))
}

/// The HTTP answer to a refused file.
pub fn refusal(refusal: MediaRefusal) -> ApiError {
    let (status, code, field) = match &refusal {
        MediaRefusal::TooLarge { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "file")
        }
        MediaRefusal::Empty => (StatusCode::BAD_REQUEST, "invalid_field", "file"),
        MediaRefusal::TypeNotAllowed { .. } => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "file",
        ),
        MediaRefusal::TypeMismatch { .. } => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "content_type",
        ),
    };
    ApiError::new(status, code, refusal.to_string(), Some(field))
}

/// The HTTP answer to a failed attachment.
pub fn attach_error(error: AttachError) -> ApiError {
    match error {
        AttachError::Refused(r) => refusal(r),
        AttachError::Command(e) => e.into(),
        AttachError::Store(e) => {
            tracing::error!(error = %e, "media store failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the media store is unavailable",
                None,
            )
        }
    }
}
