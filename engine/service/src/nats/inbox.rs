//! The durable inbox: upstream systems publish intake documents to the JetStream stream
//! `BIANMIN_INBOX` (`<prefix>.inbox.<channel>`) and get a JetStream ack; the engine consumes them
//! with a durable pull consumer and acks each only once its request is in the event log.
//!
//! Outcomes per message:
//! - recorded (or already recorded: intake is idempotent, so redelivery is harmless) → ack;
//! - can never succeed (malformed, invalid, refused) → a reject `{external_id, channel, error}`
//!   is published to `BIANMIN_INBOX_REJECTS` (`<prefix>.inbox_rejects.<channel>`), then ack;
//! - transient failure (log unavailable, conflict) → nak with a delay, redelivered later.
//!
//! Documents published while no engine runs wait in the stream and are processed when a
//! consumer comes back.

use std::sync::Arc;
use std::time::Duration;

use crate::nats_client::transient_api_error;
use async_nats::jetstream::{self, AckKind, consumer, stream};
use engine_log::backoff::{Attempt, Backoff, Retries};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{NatsApiConfig, NatsApiError, Reply, intake};
use crate::commands::{CommandError, CommandService};

/// A rejected inbox document, as stored on `<prefix>.inbox_rejects.<channel>` with
/// `Nats-Msg-Id` = [`reject_message_id`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InboxReject {
    /// The upstream ticket id, when the document had a readable one.
    pub external_id: Option<String>,
    /// The channel of the subject the document was published on.
    pub channel: String,
    /// Why it was rejected.
    pub error: schemas::ErrorBody,
    /// Sequence of the document in the inbox stream.
    #[schemars(range(min = 1))]
    pub inbox_sequence: u64,
}

/// The `Nats-Msg-Id` of the reject of the inbox document at `inbox_sequence`: the sequence
/// itself in decimal, so a document rejected twice (redelivered) is stored once.
pub fn reject_message_id(inbox_sequence: u64) -> String {
    inbox_sequence.to_string()
}

/// The identity inbox documents are recorded under: publishing to the inbox is authorised by
/// the NATS account, so the engine records the inbox itself as the intake system.
pub fn inbox_actor() -> schemas::Actor {
    schemas::Actor {
        id: "nats-inbox".into(),
        role: schemas::Role::IntakeSystem,
        unit: None,
    }
}

/// Creates the inbox and rejects streams if missing (idempotent). Upstream systems can publish
/// as soon as this has run, whether or not an engine is consuming.
pub async fn ensure_streams(
    js: &jetstream::Context,
    cfg: &NatsApiConfig,
) -> Result<(stream::Stream, stream::Stream), NatsApiError> {
    let inbox = js
        .get_or_create_stream(stream::Config {
            name: cfg.names.inbox_stream(),
            subjects: vec![cfg.names.inbox_subject(">")],
            description: Some("Bianmin durable intake inbox".into()),
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            num_replicas: cfg.inbox_replicas.max(1),
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(|e| stream_error("inbox stream", e))?;
    let rejects = js
        .get_or_create_stream(stream::Config {
            name: cfg.names.rejects_stream(),
            subjects: vec![cfg.names.rejects_subject(">")],
            description: Some("Bianmin inbox documents that can never be recorded".into()),
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            num_replicas: cfg.inbox_replicas.max(1),
            max_age: Duration::from_secs(cfg.rejects_max_age_days.max(1) * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(|e| stream_error("rejects stream", e))?;
    Ok((inbox, rejects))
}

/// A stream that could not be made: [`NatsApiError::Unavailable`] while JetStream is electing
/// a leader or does not answer, [`NatsApiError::JetStream`] when it refused.
fn stream_error(
    what: &str,
    error: async_nats::jetstream::context::CreateStreamError,
) -> NatsApiError {
    use async_nats::jetstream::context::CreateStreamErrorKind as Kind;
    let message = format!("{what}: {error}");
    match error.kind() {
        Kind::JetStream(api) if !transient_api_error(&api) => NatsApiError::JetStream(message),
        Kind::EmptyStreamName | Kind::InvalidStreamName | Kind::DomainAndExternalSet => {
            NatsApiError::JetStream(message)
        }
        _ => NatsApiError::Unavailable(message),
    }
}

/// The inbox's durable consumer, made (with the streams) once JetStream answers: an
/// election or a node coming back is waited out with [`Backoff::startup`] delays, a warning
/// each time, until `shutdown` (then `None`); a refusal is returned.
async fn open_inbox(
    js: &jetstream::Context,
    cfg: &NatsApiConfig,
    shutdown: &CancellationToken,
) -> Result<Option<consumer::PullConsumer>, NatsApiError> {
    let patient = Backoff::startup().patiently("inbox", Duration::MAX, Retries::Warn, || async {
        match inbox_consumer(js, cfg).await {
            Ok(consumer) => Attempt::Done(consumer),
            Err(NatsApiError::Unavailable(error)) => {
                Attempt::Transient(NatsApiError::Unavailable(error))
            }
            Err(refused) => Attempt::Failed(refused),
        }
    });
    tokio::select! {
        _ = shutdown.cancelled() => Ok(None),
        opened = patient => opened.map(Some),
    }
}

/// One attempt at the streams and the inbox's durable consumer.
async fn inbox_consumer(
    js: &jetstream::Context,
    cfg: &NatsApiConfig,
) -> Result<consumer::PullConsumer, NatsApiError> {
    use async_nats::jetstream::stream::ConsumerErrorKind as Kind;
    let (inbox, _) = ensure_streams(js, cfg).await?;
    let consumer_name = cfg.names.inbox_consumer();
    inbox
        .get_or_create_consumer(
            &consumer_name,
            consumer::pull::Config {
                durable_name: Some(consumer_name.clone()),
                description: Some("Bianmin engine intake".into()),
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: cfg.ack_wait(),
                max_ack_pending: cfg.inbox_max_ack_pending.max(1),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| {
            let message = format!("inbox consumer: {e}");
            match e.kind() {
                Kind::JetStream(api) if !transient_api_error(&api) => {
                    NatsApiError::JetStream(message)
                }
                Kind::InvalidConsumerType | Kind::InvalidName => NatsApiError::JetStream(message),
                _ => NatsApiError::Unavailable(message),
            }
        })
}

/// Consumes the durable inbox until `shutdown` is cancelled; in-flight documents are finished
/// (acked or nak'ed) before this returns.
pub async fn run_inbox(
    service: CommandService,
    client: async_nats::Client,
    cfg: NatsApiConfig,
    shutdown: CancellationToken,
) -> Result<(), NatsApiError> {
    let js = jetstream::new(client);
    let Some(consumer) = open_inbox(&js, &cfg, &shutdown).await? else {
        return Ok(());
    };
    let consumer_name = cfg.names.inbox_consumer();
    tracing::info!(stream = %cfg.names.inbox_stream(), consumer = %consumer_name, "consuming the NATS inbox");

    let shared = Arc::new(Worker { service, js, cfg });
    let permits = Arc::new(Semaphore::new(shared.cfg.max_in_flight.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let batch = usize::try_from(shared.cfg.inbox_max_ack_pending)
        .unwrap_or(256)
        .clamp(1, 256);
    let result = 'outer: loop {
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(batch)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
        {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "cannot pull from the inbox; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break 'outer Ok(()),
                next = messages.next() => next,
            };
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    // Missed heartbeats and the like while the server is away: back off a
                    // little instead of spinning on immediate errors.
                    tracing::warn!(%error, "inbox pull error");
                    tokio::select! {
                        _ = shutdown.cancelled() => break 'outer Ok(()),
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
                None => continue 'outer,
            };
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break 'outer Ok(()),
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break 'outer Ok(()),
                },
            };
            let shared = shared.clone();
            tasks.spawn(async move {
                shared.process(message).await;
                drop(permit);
            });
            while tasks.try_join_next().is_some() {}
        }
    };
    while tasks.join_next().await.is_some() {}
    result
}

struct Worker {
    service: CommandService,
    js: jetstream::Context,
    cfg: NatsApiConfig,
}

/// What to do with one inbox message.
enum Verdict {
    Recorded,
    Reject(schemas::ErrorBody),
    Retry(String),
}

impl Worker {
    async fn process(&self, message: jetstream::Message) {
        let (sequence, delivered) = match message.info() {
            Ok(info) => (info.stream_sequence, info.delivered),
            Err(_) => (0, 1),
        };
        let subject = message.subject.to_string();
        let verdict = match intake::decode(&self.cfg, &subject, &message.payload) {
            Err(Reply::Error(body)) => Verdict::Reject(body),
            Err(Reply::Ok(_)) => Verdict::Retry("unexpected decoder answer".into()),
            Ok(document) => match self.service.intake(document, inbox_actor()).await {
                Ok(_) => Verdict::Recorded,
                Err(error) => self.classify(error, delivered),
            },
        };
        let ack = match verdict {
            Verdict::Recorded => AckKind::Ack,
            Verdict::Reject(error) => {
                let reject = InboxReject {
                    external_id: external_id_of(&message.payload),
                    channel: super::last_token(&subject).to_string(),
                    error,
                    inbox_sequence: sequence,
                };
                match self.publish_reject(&reject).await {
                    Ok(()) => {
                        tracing::info!(sequence, code = %reject.error.code, "inbox document rejected");
                        AckKind::Ack
                    }
                    Err(error) => {
                        tracing::warn!(%error, sequence, "cannot record an inbox reject; will retry");
                        AckKind::Nak(Some(self.cfg.nak_delay()))
                    }
                }
            }
            Verdict::Retry(why) => {
                tracing::warn!(sequence, delivered, reason = %why, "inbox document deferred");
                AckKind::Nak(Some(self.cfg.nak_delay()))
            }
        };
        if let Err(error) = message.ack_with(ack).await {
            // Not acknowledged: the server redelivers after ack_wait; intake is idempotent.
            tracing::warn!(%error, sequence, "cannot acknowledge an inbox document");
        }
    }

    fn classify(&self, error: CommandError, delivered: i64) -> Verdict {
        match error {
            CommandError::Unavailable(_) | CommandError::Conflict { .. } => {
                Verdict::Retry(error.to_string())
            }
            CommandError::Internal(_) => {
                let failures = u64::try_from(delivered).unwrap_or(0);
                if failures >= self.cfg.inbox_max_internal_failures {
                    Verdict::Reject(error.body())
                } else {
                    Verdict::Retry(error.to_string())
                }
            }
            other => Verdict::Reject(other.body()),
        }
    }

    async fn publish_reject(&self, reject: &InboxReject) -> Result<(), String> {
        let payload = serde_json::to_vec(reject).map_err(|e| e.to_string())?;
        let mut headers = async_nats::HeaderMap::new();
        // A redelivered document rejected twice is stored once.
        headers.insert(
            "Nats-Msg-Id",
            reject_message_id(reject.inbox_sequence).as_str(),
        );
        let subject = self
            .cfg
            .names
            .rejects_subject(&subject_token(&reject.channel));
        let ack = self
            .js
            .publish_with_headers(subject, headers, payload.into())
            .await
            .map_err(|e| e.to_string())?;
        ack.await.map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// A subject-safe token (the channel token came from a subject, but be strict anyway).
fn subject_token(token: &str) -> String {
    let cleaned: String = token
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "unknown".into()
    } else {
        cleaned
    }
}

/// The `external_id` of a document that may not decode as a whole.
fn external_id_of(payload: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    value
        .get("external_id")?
        .as_str()
        .map(|s| s.chars().take(128).collect())
}
