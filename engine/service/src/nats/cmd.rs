//! Request-reply commands: one [`schemas::CommandEnvelope`] on `<prefix>.cmd.<action>`,
//! answered with the outcome summary or the error document.

use schemars::JsonSchema;
use schemas::{CommandEnvelope, CommandKind, EventEnvelope};
use serde::{Deserialize, Serialize};

use super::intake::check_size;
use super::{NatsApiConfig, Reply, authenticate, last_token};
use crate::auth::Authenticator;
use crate::commands::{CommandRequest, CommandService};

/// The successful command reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandReply {
    /// The request.
    pub request_id: schemas::RequestId,
    /// The request's version after the command.
    #[schemars(range(min = 1))]
    pub version: u64,
    /// Log position of the commit that recorded the command.
    #[schemars(range(min = 1))]
    pub position: u64,
    /// True when this command id had already been applied: nothing new was recorded and the
    /// original outcome is returned.
    pub duplicate: bool,
    /// The events the command recorded, summarised (the full envelopes are in the request's
    /// history).
    pub events: Vec<EventSummary>,
}

/// One recorded event in a command reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSummary {
    /// The event's id.
    pub event_id: uuid::Uuid,
    /// Its version in the request's stream.
    #[schemars(range(min = 1))]
    pub version: u64,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: schemas::EventKind,
}

impl From<&EventEnvelope> for EventSummary {
    fn from(envelope: &EventEnvelope) -> EventSummary {
        EventSummary {
            event_id: envelope.event_id,
            version: envelope.version,
            kind: envelope.event.kind(),
        }
    }
}

/// Answers one command request. Never panics; every failure becomes an error reply.
pub(crate) async fn handle(
    service: &CommandService,
    auth: &Authenticator,
    cfg: &NatsApiConfig,
    message: &async_nats::Message,
) -> Reply {
    let actor = match authenticate(auth, message) {
        Ok(actor) => actor,
        Err(reply) => return reply,
    };
    let envelope = match decode(cfg, message.subject.as_str(), &message.payload) {
        Ok(envelope) => envelope,
        Err(reply) => return reply,
    };
    let expected_version = envelope.expected_version;
    let request = CommandRequest {
        request_id: envelope.request_id,
        command_id: envelope.command_id,
        correlation_id: envelope.correlation_id,
        actor,
        command: envelope.command,
    };
    match service.execute_expecting(request, expected_version).await {
        Ok(outcome) => Reply::json(&CommandReply {
            request_id: outcome.request_id,
            version: outcome.version,
            position: outcome.position,
            duplicate: outcome.duplicate,
            events: outcome.events.iter().map(EventSummary::from).collect(),
        }),
        Err(error) => Reply::Error(error.body()),
    }
}

/// Decodes a command envelope from a subject ending in its action, checking that the action
/// is known, is not `receive` (new requests come through intake), and matches the envelope.
pub(crate) fn decode(
    cfg: &NatsApiConfig,
    subject: &str,
    payload: &[u8],
) -> Result<CommandEnvelope, Reply> {
    let action = last_token(subject);
    let Some(kind) = CommandKind::parse(action) else {
        return Err(Reply::error(
            "unknown_type",
            format!("unknown action `{action}`"),
            Some("action"),
        ));
    };
    if kind == CommandKind::Receive {
        return Err(Reply::error(
            "unknown_type",
            "new requests are submitted as intake documents on `<prefix>.intake.<channel>`",
            Some("action"),
        ));
    }
    if kind == CommandKind::AttachMedia {
        return Err(Reply::error(
            "unknown_type",
            "files are attached over HTTP, POST /api/v1/requests/{id}/attachments (the engine \
             records `attach_media` once it holds the bytes)",
            Some("action"),
        ));
    }
    if kind == CommandKind::RecordDuplicate {
        return Err(Reply::error(
            "unknown_type",
            "back-references are recorded by the engine with `link_duplicate` and `merge_into`",
            Some("action"),
        ));
    }
    check_size(cfg, payload)?;
    let envelope: CommandEnvelope = Reply::decode(payload)?;
    if envelope.command.kind() != kind {
        return Err(Reply::error(
            "action_mismatch",
            format!(
                "the command's action `{}` differs from the subject's `{}`",
                envelope.command.kind().as_str(),
                kind.as_str()
            ),
            Some("action"),
        ));
    }
    Ok(envelope)
}
