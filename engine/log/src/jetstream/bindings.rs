//! Command bindings on JetStream: the key-value bucket [`schemas::Names::commands_bucket`],
//! one key per command id, value = the [`Binding`] as JSON (see [`crate::bindings`] for
//! why the binding is created before the commit is published).
//!
//! The bucket keeps one revision per key, forever, in file storage with the log's replica
//! count ([`bucket_stream_config`]). `create` is the only write; it is refused by the stream leader when the key exists,
//! so two processes can never bind one id to two requests. Reads go to the bucket stream's
//! leader (`STREAM.MSG.GET`), never a direct get that a lagging replica may answer.

use async_nats::jetstream::kv;
use async_nats::jetstream::stream::{self, LastRawMessageErrorKind, StorageType};
use bytes::Bytes;
use uuid::Uuid;

use super::JetStreamLog;
use crate::{Binding, LogError};

impl JetStreamLog {
    /// Binds `command_id` to `binding`, or finds it bound to `binding` already (a retry, or
    /// an earlier attempt that stopped before its publish). Fails with [`LogError::IdBound`]
    /// when it is bound to anything else, and with [`LogError::Unavailable`] when the bucket
    /// cannot be reached (binding again later is safe).
    pub(crate) async fn bind(&self, command_id: Uuid, binding: &Binding) -> Result<(), LogError> {
        let bucket = self.bindings_bucket().await?;
        let created = bucket
            .create(command_id.to_string(), Bytes::from(binding.to_bytes()))
            .await;
        let Err(error) = created else {
            return Ok(());
        };
        // Exists already, or an ambiguous answer: what the leader holds decides.
        match read_binding(bucket, command_id).await? {
            Some(bound) if bound == *binding => Ok(()),
            Some(bound) => Err(LogError::IdBound {
                command_id,
                bound_to: bound.request_id,
            }),
            None => Err(LogError::Unavailable(format!(
                "bind command id {command_id}: {error}"
            ))),
        }
    }

    /// See [`crate::EventLog::binding`].
    pub(crate) async fn binding(&self, command_id: Uuid) -> Result<Option<Binding>, LogError> {
        let bucket = self.bindings_bucket().await?;
        read_binding(bucket, command_id).await
    }

    /// The bucket, created (or updated to [`bucket_stream_config`]) on first use by a process
    /// that manages the stream, else opened as it is.
    async fn bindings_bucket(&self) -> Result<&kv::Store, LogError> {
        let shared = &self.shared;
        shared
            .bindings
            .get_or_try_init(|| async {
                let names = &shared.cfg.names;
                let unavailable = |e: &dyn std::fmt::Display| {
                    LogError::Unavailable(format!(
                        "command bindings bucket {}: {e}",
                        names.commands_bucket()
                    ))
                };
                if shared.cfg.manage_stream {
                    shared
                        .context
                        .create_or_update_stream(bucket_stream_config(&shared.cfg))
                        .await
                        .map_err(|e| unavailable(&e))?;
                }
                shared
                    .context
                    .get_key_value(names.commands_bucket())
                    .await
                    .map_err(|e| unavailable(&e))
            })
            .await
    }
}

/// The stream of the bindings bucket, in the layout of a NATS key-value bucket (so `nats kv`
/// tools read it) with one revision per key kept forever, on file storage with the log's
/// replicas. Declared here rather than through the client's bucket creation, which needs an
/// account-info answer older servers (2.9) do not give in the form it expects; and so that
/// deletes and purges are denied and every read goes to the leader (no direct gets).
pub(super) fn bucket_stream_config(cfg: &super::JetStreamConfig) -> stream::Config {
    let names = &cfg.names;
    stream::Config {
        name: names.commands_bucket_stream(),
        description: Some(
            "Bianmin command bindings: command id → request and command digest".to_string(),
        ),
        subjects: vec![names.commands_bucket_subjects()],
        storage: StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        max_messages: -1,
        max_bytes: -1,
        max_messages_per_subject: 1,
        max_age: std::time::Duration::ZERO,
        num_replicas: cfg.replicas,
        deny_delete: true,
        deny_purge: true,
        allow_rollup: false,
        allow_direct: false,
        ..Default::default()
    }
}

/// The binding of `command_id` as the bucket stream's leader holds it.
async fn read_binding(bucket: &kv::Store, command_id: Uuid) -> Result<Option<Binding>, LogError> {
    let subject = format!("{}{command_id}", bucket.prefix);
    let message = match bucket
        .stream
        .get_last_raw_message_by_subject(&subject)
        .await
    {
        Ok(message) => message,
        Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => return Ok(None),
        Err(e) => {
            return Err(LogError::Unavailable(format!(
                "read binding of {command_id}: {e}"
            )));
        }
    };
    if message.payload.is_empty() {
        // A delete marker (only an operator writes one): the id is free again.
        return Ok(None);
    }
    Binding::from_bytes(&message.payload)
        .map(Some)
        .map_err(|e| LogError::Refused(format!("stored binding of {command_id}: {e}")))
}
