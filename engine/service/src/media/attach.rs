//! Attaching a file to a request: rights, checks, store, record — in that order, so an
//! outsider learns nothing, a refused file leaves nothing behind, and the log only names
//! bytes the store holds.

use bytes::Bytes;
use engine_core::{Refusal, Request};
use schemas::command::{AttachMedia, AttachmentPurpose};
use schemas::{Actor, Command, CommandKind, Event, RequestId};
use serde::Serialize;
use uuid::Uuid;

use super::check::{MediaRefusal, check};
use super::{MediaConfig, MediaError, MediaStore};
use crate::commands::{CommandError, CommandRequest, CommandService};

/// Namespace of the command ids of attachments sent without an `Idempotency-Key`: the same
/// bytes for the same purpose on the same request are one command, so a retried upload is
/// answered with the original result.
const ATTACH_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_3c1e_8d2a_4f0b_9a57_2c44_1e0d_b0a7);

/// A file as it arrived.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The bytes.
    pub bytes: Bytes,
    /// The `Content-Type` it was sent with, if any.
    pub declared: Option<String>,
    /// At which step it comes in.
    pub purpose: AttachmentPurpose,
    /// Personal data or not; absent: the purpose's default.
    pub personal: Option<bool>,
}

/// The attachment as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct AttachOutcome {
    /// The request.
    pub request_id: RequestId,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// The media type found from the bytes.
    pub content_type: String,
    /// Length in bytes.
    pub size_bytes: u64,
    /// At which step it came in.
    pub purpose: AttachmentPurpose,
    /// Personal data of the resident.
    pub personal: bool,
    /// The request's version after it.
    pub version: u64,
    /// False when these bytes were attached to the request before (nothing new recorded).
    pub created: bool,
}

/// Why an attachment was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The file itself is refused (size, type).
    #[error(transparent)]
    Refused(#[from] MediaRefusal),
    /// The command was refused or failed (rights, stage, log).
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The media store failed.
    #[error(transparent)]
    Store(#[from] MediaError),
}

/// Rights before facts: whether `actor` may attach a file to `request_id` at all (the same
/// answer for a request outside its scope as for none); the request as it stands.
pub async fn admit(
    commands: &CommandService,
    actor: &Actor,
    request_id: RequestId,
) -> Result<Request, CommandError> {
    let request = match commands.load(request_id).await {
        Ok(request) => request,
        Err(CommandError::NotFound(_)) => Request::new(request_id),
        Err(other) => return Err(other),
    };
    match request.admit(actor, CommandKind::AttachMedia) {
        Ok(()) => Ok(request),
        Err(Refusal::DoesNotExist) => Err(CommandError::NotFound(request_id)),
        Err(refusal) => Err(CommandError::Refused(refusal)),
    }
}

/// Attaches `upload` to `request_id` as `actor`: admits, checks the file against
/// `config`, stores it in `media`, records `attach_media` through the command service. A
/// file refused by the rules after it was stored is deleted again, unless the request
/// already holds those bytes (a retry: answered with the recorded attachment).
pub async fn attach(
    commands: &CommandService,
    media: &MediaStore,
    config: &MediaConfig,
    actor: Actor,
    request_id: RequestId,
    upload: Upload,
    command_id: Option<Uuid>,
) -> Result<AttachOutcome, AttachError> {
    let request = admit(commands, &actor, request_id).await?;
    let checked = check(&upload.bytes, upload.declared.as_deref(), config)?;
    if let Some(existing) = request.attachment(&checked.sha256) {
        return Ok(outcome(request_id, existing, request.version(), false));
    }
    media
        .put(request_id, &checked.sha256, upload.bytes.clone())
        .await?;
    let command = AttachMedia {
        sha256: checked.sha256.clone(),
        content_type: checked.content_type.clone(),
        size_bytes: checked.size_bytes,
        purpose: upload.purpose,
        personal: upload.personal,
    };
    let command_id = command_id.unwrap_or_else(|| {
        let name = format!(
            "{request_id}/{}/{}",
            checked.sha256,
            upload.purpose.as_str()
        );
        Uuid::new_v5(&ATTACH_NAMESPACE, name.as_bytes())
    });
    let result = commands
        .execute(CommandRequest {
            request_id,
            command_id,
            correlation_id: None,
            actor,
            command: Command::AttachMedia(command),
        })
        .await;
    match result {
        Ok(done) => {
            let attached = done.events.iter().find_map(|e| match &e.event {
                Event::MediaAttached(m) => Some(engine_core::request::Attachment::from(m)),
                _ => None,
            });
            let attached = match attached {
                Some(a) => a,
                // A retried command answered from the log: read what it recorded.
                None => recorded(commands, request_id, &checked.sha256).await?,
            };
            Ok(outcome(
                request_id,
                &attached,
                done.version,
                !done.duplicate,
            ))
        }
        Err(CommandError::Refused(Refusal::AlreadyRecorded { .. })) => {
            let attached = recorded(commands, request_id, &checked.sha256).await?;
            let version = commands.load(request_id).await?.version();
            Ok(outcome(request_id, &attached, version, false))
        }
        Err(error) => {
            // Nothing recorded: leave nothing stored either.
            if let Err(cleanup) = media.delete(request_id, &checked.sha256).await {
                tracing::warn!(%request_id, error = %cleanup, "could not remove a refused attachment");
            }
            Err(error.into())
        }
    }
}

async fn recorded(
    commands: &CommandService,
    request_id: RequestId,
    sha256: &str,
) -> Result<engine_core::request::Attachment, CommandError> {
    commands
        .load(request_id)
        .await?
        .attachment(sha256)
        .cloned()
        .ok_or_else(|| CommandError::Internal(format!("attachment {sha256} not recorded")))
}

fn outcome(
    request_id: RequestId,
    a: &engine_core::request::Attachment,
    version: u64,
    created: bool,
) -> AttachOutcome {
    AttachOutcome {
        request_id,
        sha256: a.sha256.clone(),
        content_type: a.content_type.clone(),
        size_bytes: a.size_bytes,
        purpose: a.purpose,
        personal: a.personal,
        version,
        created,
    }
}
