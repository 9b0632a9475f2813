//! The JetStream backend: the object store `<PREFIX>_MEDIA` ([`schemas::Names::media_bucket`]),
//! one object `<request id>/<sha256>` per file. Deleting an object purges its chunks from the
//! stream (the client's `delete` rolls up the metadata and purges the chunk subject), so an
//! erased file's bytes are no longer held by the server.

use async_nats::jetstream::{self, object_store, stream};
use bytes::Bytes;
use engine_log::backoff::{Attempt, Backoff, Retries};
use schemas::{Names, RequestId};
use tokio::io::AsyncReadExt;

use super::MediaError;

/// An opened object-store bucket.
#[derive(Clone)]
pub struct ObjectMedia {
    store: object_store::ObjectStore,
    bucket: String,
}

impl std::fmt::Debug for ObjectMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectMedia")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

fn failed(what: &str, error: impl std::fmt::Display) -> MediaError {
    MediaError::ObjectStore(format!("{what}: {error}"))
}

impl ObjectMedia {
    /// Opens the media bucket of `names` on `client`, declaring its stream (object-store
    /// layout, file storage, `replicas` copies) when `manage_stream`. The stream is declared
    /// here rather than through the client's bucket creation, as the command bindings
    /// bucket is, so servers without newer stream fields (2.9) accept it. While the server
    /// answers "not now" (a cluster electing its leaders) it tries again for up to `wait`.
    pub async fn open(
        client: async_nats::Client,
        names: &Names,
        replicas: usize,
        manage_stream: bool,
        wait: std::time::Duration,
    ) -> Result<ObjectMedia, MediaError> {
        let context = jetstream::new(client);
        let bucket = names.media_bucket();
        Backoff::startup()
            .patiently("media store", wait, Retries::Warn, || async {
                match Self::try_open(&context, names, replicas, manage_stream).await {
                    Ok(store) => Attempt::Done(ObjectMedia {
                        store,
                        bucket: bucket.clone(),
                    }),
                    Err((error, true)) => Attempt::Transient(error),
                    Err((error, false)) => Attempt::Failed(error),
                }
            })
            .await
    }

    /// One attempt at declaring the stream and opening the bucket; the error says whether
    /// trying again may help (a timeout or a "not now" answer while a cluster elects its
    /// leaders, as [`engine_log::transient_api_error`] judges).
    async fn try_open(
        context: &jetstream::Context,
        names: &Names,
        replicas: usize,
        manage_stream: bool,
    ) -> Result<object_store::ObjectStore, (MediaError, bool)> {
        use async_nats::jetstream::context::CreateStreamErrorKind as Kind;
        if manage_stream {
            context
                .create_or_update_stream(stream_config(names, replicas))
                .await
                .map_err(|e| {
                    let transient = match e.kind() {
                        Kind::EmptyStreamName
                        | Kind::InvalidStreamName
                        | Kind::DomainAndExternalSet => false,
                        Kind::JetStream(error) => engine_log::transient_api_error(&error),
                        _ => true,
                    };
                    (failed("declare the media stream", e), transient)
                })?;
        }
        context
            .get_object_store(names.media_bucket())
            .await
            .map_err(|e| (failed("open the media bucket", e), true))
    }

    fn name(request_id: RequestId, sha256: &str) -> String {
        format!("{request_id}/{sha256}")
    }

    pub(super) async fn put(
        &self,
        request_id: RequestId,
        sha256: &str,
        bytes: Bytes,
    ) -> Result<(), MediaError> {
        let name = Self::name(request_id, sha256);
        let mut reader: &[u8] = &bytes;
        self.store
            .put(name.as_str(), &mut reader)
            .await
            .map_err(|e| failed("put", e))?;
        Ok(())
    }

    pub(super) async fn get(
        &self,
        request_id: RequestId,
        sha256: &str,
    ) -> Result<Option<Bytes>, MediaError> {
        let name = Self::name(request_id, sha256);
        let mut object = match self.store.get(&name).await {
            Ok(object) => object,
            Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(failed("get", e)),
        };
        let mut bytes = Vec::new();
        object
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| failed("read", e))?;
        Ok(Some(bytes.into()))
    }

    pub(super) async fn delete(
        &self,
        request_id: RequestId,
        sha256: &str,
    ) -> Result<bool, MediaError> {
        let name = Self::name(request_id, sha256);
        match self.store.info(&name).await {
            Ok(info) if !info.deleted => {}
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(failed("info", e)),
        }
        self.store
            .delete(&name)
            .await
            .map_err(|e| failed("delete", e))?;
        Ok(true)
    }
}

/// The media bucket's stream in the object-store layout (`$O.<bucket>.C.>` chunks,
/// `$O.<bucket>.M.>` metadata, roll-ups allowed, purges allowed for erasure).
pub fn stream_config(names: &Names, replicas: usize) -> stream::Config {
    let bucket = names.media_bucket();
    stream::Config {
        name: names.media_bucket_stream(),
        description: Some("Bianmin stored attachments".to_string()),
        subjects: vec![format!("$O.{bucket}.C.>"), format!("$O.{bucket}.M.>")],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        discard: stream::DiscardPolicy::New,
        allow_rollup: true,
        allow_direct: true,
        ..Default::default()
    }
}
