//! Request-reply intake: one [`schemas::IntakeDocument`] on `<prefix>.intake.<channel>`,
//! answered with `{"request_id", "created", "version"}` or the error document.

use schemars::JsonSchema;
use schemas::{Channel, IntakeDocument};
use serde::{Deserialize, Serialize};

use super::{NatsApiConfig, Reply, authenticate, last_token};
use crate::auth::Authenticator;
use crate::commands::CommandService;

/// The successful intake reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntakeReply {
    /// The request (derived from channel and external id: the same pair, the same id).
    pub request_id: schemas::RequestId,
    /// False when the request already existed (a retried or duplicate submission).
    pub created: bool,
    /// The request's version after the intake.
    #[schemars(range(min = 1))]
    pub version: u64,
}

/// Answers one intake request. Never panics; every failure becomes an error reply.
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
    let document = match decode(cfg, message.subject.as_str(), &message.payload) {
        Ok(document) => document,
        Err(reply) => return reply,
    };
    match service.intake(document, actor).await {
        Ok(outcome) => Reply::json(&IntakeReply {
            request_id: outcome.request_id,
            created: outcome.created,
            version: outcome.version,
        }),
        Err(error) => Reply::Error(error.body()),
    }
}

/// Decodes an intake document from a subject ending in its channel, checking size, JSON shape
/// and that the channel in the document is the subject's.
pub(crate) fn decode(
    cfg: &NatsApiConfig,
    subject: &str,
    payload: &[u8],
) -> Result<IntakeDocument, Reply> {
    let channel_token = last_token(subject);
    let Some(channel) = Channel::parse(channel_token) else {
        return Err(Reply::error(
            "unknown_channel",
            format!("`{channel_token}` is not an intake channel"),
            Some("channel"),
        ));
    };
    check_size(cfg, payload)?;
    let document: IntakeDocument = Reply::decode(payload)?;
    if document.channel != channel {
        return Err(Reply::error(
            "channel_mismatch",
            format!(
                "the document's channel `{}` differs from the subject's `{}`",
                document.channel.as_str(),
                channel.as_str()
            ),
            Some("channel"),
        ));
    }
    Ok(document)
}

/// Refuses payloads over the configured limit.
pub(crate) fn check_size(cfg: &NatsApiConfig, payload: &[u8]) -> Result<(), Reply> {
    if payload.len() > cfg.max_payload_bytes {
        return Err(Reply::error(
            "payload_too_large",
            format!(
                "{} bytes exceed the limit of {} bytes",
                payload.len(),
                cfg.max_payload_bytes
            ),
            None,
        ));
    }
    Ok(())
}
