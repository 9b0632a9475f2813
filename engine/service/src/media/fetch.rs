//! Fetching an Open311 `media_url`: the engine downloads the file once, at intake, so the
//! request keeps its own copy (checked, hashed and stored like an upload) rather than a link
//! that may change or vanish. Bounded: `media.fetch_timeout_ms` for the whole download, and
//! the body is read chunk by chunk and abandoned as soon as it passes `media.max_bytes`.
//! Only `http` and `https` URLs, and only when `media.fetch_media_urls` is on (the engine
//! then reaches out to hosts residents name: see docs/security.md).

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::{MediaConfig, MediaRefusal};

/// Why a `media_url` could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Not an http(s) URL.
    #[error("media_url must be an http or https URL")]
    BadUrl,
    /// Over the size limit.
    #[error(transparent)]
    Refused(#[from] MediaRefusal),
    /// The server did not answer 2xx in time, or the connection failed.
    #[error("media_url could not be fetched: {0}")]
    Failed(String),
}

/// Downloads `url` within `config`'s limits; the bytes and the `Content-Type` served.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    config: &MediaConfig,
) -> Result<(Bytes, Option<String>), FetchError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| FetchError::BadUrl)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(FetchError::BadUrl);
    }
    let timeout = Duration::from_millis(config.fetch_timeout_ms);
    tokio::time::timeout(timeout, download(client, parsed, config.max_bytes))
        .await
        .map_err(|_| FetchError::Failed(format!("no complete answer within {timeout:?}")))?
}

async fn download(
    client: &reqwest::Client,
    url: reqwest::Url,
    max_bytes: u64,
) -> Result<(Bytes, Option<String>), FetchError> {
    let failed = |e: reqwest::Error| FetchError::Failed(e.without_url().to_string());
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(failed)?
        .error_for_status()
        .map_err(failed)?;
    let too_large = || FetchError::Refused(MediaRefusal::TooLarge { limit: max_bytes });
    if response.content_length().is_some_and(|n| n > max_bytes) {
        return Err(too_large());
    }
    let declared = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if (body.len() + chunk.len()) as u64 > max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body.freeze(), declared))
}

/// The file `url` names, fetched and checked as an intake attachment of the resident's
/// (purpose `intake`, personal): refused files answer before anything is recorded.
pub async fn intake_upload(
    media: &super::http::MediaState,
    url: &str,
) -> Result<super::Upload, FetchError> {
    let (bytes, declared) = fetch(&media.client, url, &media.config).await?;
    super::check(&bytes, declared.as_deref(), &media.config)?;
    Ok(super::Upload {
        bytes,
        declared,
        purpose: schemas::command::AttachmentPurpose::Intake,
        personal: None,
    })
}
