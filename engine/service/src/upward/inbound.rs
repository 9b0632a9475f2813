//! The inbound half of the upward link: feedback documents (`<prefix>.upward.feedback`,
//! request-reply) and acknowledgements (`<prefix>.upward.ack`, publish or request-reply) from
//! the higher level, recorded through the command service as the higher-level actor. Every
//! answer is a [`crate::nats::Reply`]: the reply document, or the shared error document.

use schemars::JsonSchema;
use schemas::command::{AcknowledgeUpward, RecordUpwardFeedback};
use schemas::envelope::ID_NAMESPACE;
use schemas::{Actor, Command, FeedbackKind, RequestId, Role, UpwardLevel};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ReportIndex;
use crate::commands::{CommandError, CommandRequest, CommandService};
use crate::nats::Reply;

/// A feedback document from the higher-level system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "UpwardFeedbackDocument")]
pub struct FeedbackDocument {
    /// The request.
    pub request_id: RequestId,
    /// The report answered.
    pub report_id: Uuid,
    /// Kind of feedback.
    pub kind: FeedbackKind,
    /// Content.
    pub content: String,
    /// Department named, for referral back.
    #[serde(default)]
    pub department: Option<String>,
    /// The sender's own message id; a resent document with the same id is recorded once.
    #[serde(default)]
    pub message_id: Option<String>,
}

/// An acknowledgement from the higher-level system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "UpwardAckDocument")]
pub struct AckDocument {
    /// The report acknowledged.
    pub report_id: Uuid,
    /// The request, when the sender knows it (else looked up from the report id).
    #[serde(default)]
    pub request_id: Option<RequestId>,
}

/// The answer to a feedback document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "UpwardFeedbackReply")]
pub struct FeedbackReply {
    /// The request.
    pub request_id: RequestId,
    /// Its version after the feedback.
    #[schemars(range(min = 1))]
    pub version: u64,
    /// The feedback had been recorded before.
    pub duplicate: bool,
}

/// The higher-level actor feedback is recorded as.
pub fn higher_level_actor(level: Option<UpwardLevel>) -> Actor {
    let unit = level.map(|l| l.as_str().to_string());
    Actor {
        id: format!("upward-{}", level.map_or("higher", |l| l.as_str())),
        role: Role::HigherLevel,
        unit,
    }
}

/// The answer to an acknowledgement sent as a request (a plain publish gets none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "UpwardAckReply")]
pub struct AckReply {
    /// The request the report belongs to.
    pub request_id: RequestId,
    /// The report acknowledged.
    pub report_id: Uuid,
    /// The report had been acknowledged before: nothing new was recorded.
    pub duplicate: bool,
}

/// Records a feedback document through the command service, as `actor` (a higher level).
pub async fn record_feedback(
    service: &CommandService,
    document: FeedbackDocument,
    actor: Actor,
) -> Result<FeedbackReply, CommandError> {
    let command_id = match &document.message_id {
        Some(id) => Uuid::new_v5(
            &ID_NAMESPACE,
            format!("upward-feedback:{}:{id}", document.request_id).as_bytes(),
        ),
        None => service.fresh_command_id(),
    };
    let outcome = service
        .execute(CommandRequest {
            request_id: document.request_id,
            command_id,
            correlation_id: Some(document.report_id),
            actor,
            command: Command::RecordUpwardFeedback(RecordUpwardFeedback {
                report_id: document.report_id,
                kind: document.kind,
                content: document.content,
                department: document.department,
            }),
        })
        .await?;
    Ok(FeedbackReply {
        request_id: outcome.request_id,
        version: outcome.version,
        duplicate: outcome.duplicate,
    })
}

/// Records the higher level's acknowledgement of a report (idempotent per report: a second
/// one answers `duplicate`).
pub async fn record_ack(
    service: &CommandService,
    request_id: RequestId,
    report_id: Uuid,
    level: Option<UpwardLevel>,
) -> Result<AckReply, CommandError> {
    let command_id = Uuid::new_v5(&ID_NAMESPACE, format!("upward-ack:{report_id}").as_bytes());
    let outcome = service
        .execute(CommandRequest {
            request_id,
            command_id,
            correlation_id: Some(report_id),
            actor: higher_level_actor(level),
            command: Command::AcknowledgeUpward(AcknowledgeUpward { report_id }),
        })
        .await;
    let reply = |duplicate| AckReply {
        request_id,
        report_id,
        duplicate,
    };
    match outcome {
        Ok(outcome) => Ok(reply(outcome.duplicate)),
        // Already acknowledged: nothing to do.
        Err(CommandError::Refused(refusal)) if refusal.code() == "already_recorded" => {
            Ok(reply(true))
        }
        Err(e) => Err(e),
    }
}

/// Answers one feedback document (reply: [`FeedbackReply`] or the error document).
pub(super) async fn on_feedback(
    service: &CommandService,
    client: &async_nats::Client,
    index: &ReportIndex,
    message: async_nats::Message,
) {
    let Some(reply_to) = message.reply.clone() else {
        tracing::warn!("upward feedback without a reply subject; ignored");
        return;
    };
    let reply = match Reply::decode::<FeedbackDocument>(&message.payload) {
        Err(refused) => refused,
        Ok(document) => {
            let level = index
                .lock()
                .expect("report index lock")
                .get(&document.report_id)
                .map(|(_, l)| *l);
            match record_feedback(service, document, higher_level_actor(level)).await {
                Ok(reply) => Reply::json(&reply),
                Err(error) => Reply::from(error.body()),
            }
        }
    };
    reply.send(client, reply_to).await;
}

/// Records one acknowledgement and, when the sender gave a reply subject, answers it with
/// [`AckReply`] or the error document (a plain publish only logs a failure).
pub(super) async fn on_ack(
    service: &CommandService,
    client: &async_nats::Client,
    index: &ReportIndex,
    message: async_nats::Message,
) {
    let reply = acknowledge(service, index, &message.payload).await;
    match (message.reply, reply) {
        (Some(reply_to), reply) => reply.send(client, reply_to).await,
        (None, Reply::Error(error)) => {
            tracing::warn!(code = %error.code, message = %error.message, "upward acknowledgement not recorded");
        }
        (None, Reply::Ok(_)) => {}
    }
}

/// Decodes and records one acknowledgement.
async fn acknowledge(service: &CommandService, index: &ReportIndex, payload: &[u8]) -> Reply {
    let document = match Reply::decode::<AckDocument>(payload) {
        Ok(document) => document,
        Err(refused) => return refused,
    };
    let known = index
        .lock()
        .expect("report index lock")
        .get(&document.report_id)
        .copied();
    let (request_id, level) = match (document.request_id, known) {
        (_, Some((request_id, level))) => (request_id, Some(level)),
        (Some(request_id), None) => (request_id, None),
        (None, None) => {
            return Reply::error(
                "not_found",
                format!("no report `{}` was sent upward", document.report_id),
                Some("report_id"),
            );
        }
    };
    match record_ack(service, request_id, document.report_id, level).await {
        Ok(reply) => Reply::json(&reply),
        Err(error) => Reply::from(error.body()),
    }
}
