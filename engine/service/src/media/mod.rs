//! Stored media: the photos and documents attached to requests.
//!
//! One [`MediaStore`] with two backends, chosen by the composition root from the log's mode:
//! the JetStream object store `<PREFIX>_MEDIA` ([`object`]) beside a JetStream log, files
//! under `<data_dir>/media` ([`files`]) beside the embedded SQLite log. Either keeps one object
//! per request and content hash, so erasing one request's files never touches another's that
//! happens to hold the same bytes.
//!
//! The bytes are checked before anything is stored ([`check`]: size limit, type by magic
//! bytes via `infer`, SHA-256), then stored, then recorded by the one commit writer as
//! `attach_media` ([`attach`]). Routes: [`http`]; Open311 `media_url`: [`fetch`]. Erasure of a
//! request's personal files: [`erase_personal`], called by `privacy::erase_with_media`
//! (the CLI's erasure and retention).

pub mod attach;
pub mod check;
pub mod fetch;
pub mod files;
pub mod http;
pub mod object;

use bytes::Bytes;
use schemas::RequestId;
use serde::{Deserialize, Serialize};

pub use attach::{AttachOutcome, Upload, attach};
pub use check::{Checked, MediaRefusal, check};

/// `[media]`: limits of stored attachments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Largest file accepted, in bytes.
    pub max_bytes: u64,
    /// Media types accepted, as the file's magic bytes show them.
    pub allowed_types: Vec<String>,
    /// Fetch the file an Open311 `media_url` names at intake ([`fetch`]); off, the URL is
    /// kept as a reference only.
    pub fetch_media_urls: bool,
    /// How long fetching an Open311 `media_url` may take, in milliseconds.
    pub fetch_timeout_ms: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            max_bytes: 10 * 1024 * 1024,
            allowed_types: ["image/jpeg", "image/png", "image/webp", "application/pdf"]
                .map(String::from)
                .to_vec(),
            fetch_media_urls: false,
            fetch_timeout_ms: 5_000,
        }
    }
}

/// A media store failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// A file could not be read, written or removed.
    #[error("media file {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The object store did not answer as expected.
    #[error("media object store: {0}")]
    ObjectStore(String),
}

/// Where attachments are kept: one interface, two backends.
#[derive(Debug, Clone)]
pub enum MediaStore {
    /// Files under the data dir (embedded mode).
    Files(files::FileMedia),
    /// The JetStream object store (JetStream mode); boxed, it is the larger by far.
    Object(Box<object::ObjectMedia>),
}

impl MediaStore {
    /// The backend's name, for logs.
    pub fn backend_name(&self) -> &'static str {
        match self {
            MediaStore::Files(_) => "files",
            MediaStore::Object(_) => "nats-object-store",
        }
    }

    /// Stores `bytes` as the file `sha256` of `request_id` (idempotent: the same key holds
    /// the same bytes).
    pub async fn put(
        &self,
        request_id: RequestId,
        sha256: &str,
        bytes: Bytes,
    ) -> Result<(), MediaError> {
        match self {
            MediaStore::Files(f) => f.put(request_id, sha256, &bytes).await,
            MediaStore::Object(o) => o.put(request_id, sha256, bytes).await,
        }
    }

    /// The file `sha256` of `request_id`, if stored.
    pub async fn get(
        &self,
        request_id: RequestId,
        sha256: &str,
    ) -> Result<Option<Bytes>, MediaError> {
        match self {
            MediaStore::Files(f) => f.get(request_id, sha256).await,
            MediaStore::Object(o) => o.get(request_id, sha256).await,
        }
    }

    /// Deletes the file `sha256` of `request_id`; false when it was not stored.
    pub async fn delete(&self, request_id: RequestId, sha256: &str) -> Result<bool, MediaError> {
        match self {
            MediaStore::Files(f) => f.delete(request_id, sha256).await,
            MediaStore::Object(o) => o.delete(request_id, sha256).await,
        }
    }
}

/// Opens the media store of `config`: the object store beside a JetStream log (`nats` is
/// the log's connection), files under the data dir beside the embedded log.
pub async fn open(
    config: &crate::config::Config,
    names: &schemas::Names,
    nats: Option<async_nats::Client>,
) -> Result<MediaStore, crate::app::AppError> {
    Ok(match nats {
        Some(client) => MediaStore::Object(Box::new(
            object::ObjectMedia::open(
                client,
                names,
                config.nats.replicas,
                true,
                std::time::Duration::from_secs(config.nats.startup_wait_secs),
            )
            .await
            .map_err(crate::app::AppError::Media)?,
        )),
        None => MediaStore::Files(files::FileMedia::in_data_dir(&config.data_dir)),
    })
}

/// Deletes the personal attachments of `request_id` as its log records them.
pub async fn erase_request(
    log: &engine_log::EventLog,
    store: &MediaStore,
    request_id: RequestId,
) -> Result<usize, crate::privacy::PrivacyError> {
    let commits = log.load(request_id).await?;
    let request = engine_core::Request::from_history(
        request_id,
        commits.iter().flat_map(|c| c.commit.events.iter()),
    );
    let deleted = erase_personal(store, &request).await?;
    tracing::info!(%request_id, deleted, "personal attachments erased");
    Ok(deleted)
}

/// Deletes every personal attachment of `request` from `store` (erasure of the request's
/// personal data); returns how many were stored and are now gone. Files units attached as
/// not personal stay: they are the record of the handling.
pub async fn erase_personal(
    store: &MediaStore,
    request: &engine_core::Request,
) -> Result<usize, MediaError> {
    let mut deleted = 0;
    for attachment in request.attachments().iter().filter(|a| a.personal) {
        if store.delete(request.id(), &attachment.sha256).await? {
            deleted += 1;
        }
    }
    Ok(deleted)
}
