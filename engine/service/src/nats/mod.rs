//! The NATS edge of the engine: request-reply intake (`<prefix>.intake.<channel>`), request-reply
//! commands (`<prefix>.cmd.<action>`), and the durable JetStream inbox (`<prefix>.inbox.<channel>`).
//!
//! The subjects, payloads, replies and headers are documented in `docs/nats-api.md`.
//!
//! # Layout
//! - [`intake`]: decoding and answering one intake request.
//! - [`cmd`]: decoding and answering one command request.
//! - [`inbox`]: the durable inbox consumer and its rejects stream.
//! - [`reply`]: the answer of every request-reply subject (intake, commands, upward and
//!   report feedback, upward acknowledgements) and the error document they share.
//! - [`json_schema`]: the published JSON Schemas of the replies, rejects and notifications.
//! - this file: configuration, errors, subjects, and [`run_intake`], the request-reply server
//!   that serves both intake and commands.
//!
//! **Invariant:** bad input never ends a loop. Every message gets an answer (a reply or an
//! ack / nak); only a lost connection or the shutdown token stops the server.

pub mod cmd;
pub mod inbox;
pub mod intake;
pub mod json_schema;
pub mod reply;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Semaphore;

/// The shutdown signal [`run_intake`] and [`run_inbox`] take (re-exported for callers).
pub use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::commands::CommandService;

pub use inbox::run_inbox;
pub(crate) use reply::Reply;
pub use reply::{ERROR_HEADER, ErrorDocument};

/// Header carrying the caller's bearer token: `Authorization: Bearer <token>`.
pub const AUTHORIZATION_HEADER: &str = "Authorization";
/// Development identity header (`<id>;<role>[;<unit>]`), honoured only in dev-identity mode.
pub const DEV_ACTOR_HEADER: &str = "X-Bianmin-Actor";

/// Settings of the NATS edge. Every field has a default; see `docs/nats-api.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsApiConfig {
    /// The instance's subjects, streams, durable consumer and queue group
    /// ([`schemas::names`]): `<prefix>.intake.<channel>`, `<PREFIX>_INBOX`, `<prefix>-engine`.
    pub names: schemas::Names,
    /// Messages processed at once by one engine (request-reply and inbox each).
    pub max_in_flight: usize,
    /// Largest accepted payload in bytes; larger messages get a `payload_too_large` error.
    pub max_payload_bytes: usize,
    /// Unacknowledged inbox messages the server hands out at once.
    pub inbox_max_ack_pending: i64,
    /// Milliseconds the server waits for an ack before redelivering.
    pub inbox_ack_wait_ms: u64,
    /// Milliseconds a transiently failed inbox message waits before redelivery.
    pub inbox_nak_delay_ms: u64,
    /// Deliveries after which an inbox message that keeps failing with an internal error is
    /// rejected instead of retried (an unavailable log is retried forever).
    pub inbox_max_internal_failures: u64,
    /// Replicas of the inbox and rejects streams (3 in a cluster).
    pub inbox_replicas: usize,
    /// Days rejected documents are kept for upstream systems to read.
    pub rejects_max_age_days: u64,
}

impl Default for NatsApiConfig {
    fn default() -> NatsApiConfig {
        NatsApiConfig {
            names: schemas::Names::default(),
            max_in_flight: 256,
            max_payload_bytes: 64 * 1024,
            inbox_max_ack_pending: 256,
            inbox_ack_wait_ms: 30_000,
            inbox_nak_delay_ms: 2_000,
            inbox_max_internal_failures: 5,
            inbox_replicas: 1,
            rejects_max_age_days: 30,
        }
    }
}

impl NatsApiConfig {
    /// The default settings for the instance named by `names`.
    pub fn new(names: schemas::Names) -> NatsApiConfig {
        NatsApiConfig {
            names,
            ..NatsApiConfig::default()
        }
    }

    /// The default settings with another subject prefix (tests isolate themselves this way).
    ///
    /// # Panics
    /// When `prefix` is not a valid subject token.
    pub fn with_prefix(prefix: &str) -> NatsApiConfig {
        NatsApiConfig::new(schemas::Names::for_prefix(prefix).expect("a valid subject prefix"))
    }

    fn ack_wait(&self) -> Duration {
        Duration::from_millis(self.inbox_ack_wait_ms)
    }

    fn nak_delay(&self) -> Duration {
        Duration::from_millis(self.inbox_nak_delay_ms)
    }
}

/// Why the NATS edge stopped.
#[derive(Debug, thiserror::Error)]
pub enum NatsApiError {
    /// A subscription could not be made.
    #[error("cannot subscribe to `{subject}`: {message}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// The client's explanation.
        message: String,
    },
    /// A JetStream stream or consumer could not be created or read.
    #[error("JetStream: {0}")]
    JetStream(String),
    /// JetStream did not answer in time or had no leader (an election, a node restarting):
    /// worth trying again.
    #[error("JetStream unavailable: {0}")]
    Unavailable(String),
    /// The connection closed while serving.
    #[error("the NATS subscription ended (connection closed)")]
    Disconnected,
}

/// Serves request-reply intake on `<prefix>.intake.*` and commands on `<prefix>.cmd.*` in the
/// queue group, until `shutdown` is cancelled. Messages are processed concurrently, at most
/// `max_in_flight` at once; in-flight messages are answered before this returns.
pub async fn run_intake(
    service: CommandService,
    auth: Authenticator,
    client: async_nats::Client,
    cfg: NatsApiConfig,
    shutdown: CancellationToken,
) -> Result<(), NatsApiError> {
    let intake_subject = cfg.names.intake_subject("*");
    let cmd_subject = cfg.names.cmd_subject("*");
    let group = cfg.names.edge_queue_group();
    let mut intake_sub = queue_subscribe(&client, &intake_subject, &group).await?;
    let mut cmd_sub = queue_subscribe(&client, &cmd_subject, &group).await?;
    // Make sure the server registered both subscriptions before callers are told we serve.
    let _ = client.flush().await;
    tracing::info!(intake = %intake_subject, commands = %cmd_subject, "serving NATS request-reply");

    let shared = Arc::new(Shared {
        service,
        auth,
        client,
        cfg,
    });
    let permits = Arc::new(Semaphore::new(shared.cfg.max_in_flight.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let result = loop {
        let (message, kind) = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            message = intake_sub.next() => (message, Kind::Intake),
            message = cmd_sub.next() => (message, Kind::Command),
        };
        let Some(message) = message else {
            break Err(NatsApiError::Disconnected);
        };
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break Ok(()),
            },
        };
        let shared = shared.clone();
        tasks.spawn(async move {
            shared.answer(kind, message).await;
            drop(permit);
        });
        // Reap finished tasks so the set does not grow with the message count.
        while tasks.try_join_next().is_some() {}
    };
    let _ = intake_sub.unsubscribe().await;
    let _ = cmd_sub.unsubscribe().await;
    while tasks.join_next().await.is_some() {}
    let _ = shared.client.flush().await;
    result
}

async fn queue_subscribe(
    client: &async_nats::Client,
    subject: &str,
    group: &str,
) -> Result<async_nats::Subscriber, NatsApiError> {
    client
        .queue_subscribe(subject.to_string(), group.to_string())
        .await
        .map_err(|e| NatsApiError::Subscribe {
            subject: subject.to_string(),
            message: e.to_string(),
        })
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Intake,
    Command,
}

struct Shared {
    service: CommandService,
    auth: Authenticator,
    client: async_nats::Client,
    cfg: NatsApiConfig,
}

impl Shared {
    async fn answer(&self, kind: Kind, message: async_nats::Message) {
        let Some(reply_to) = message.reply.clone() else {
            // Fire-and-forget publishes get no answer; the durable path is the inbox.
            tracing::debug!(subject = %message.subject, "request without a reply subject ignored");
            return;
        };
        let reply = match kind {
            Kind::Intake => intake::handle(&self.service, &self.auth, &self.cfg, &message).await,
            Kind::Command => cmd::handle(&self.service, &self.auth, &self.cfg, &message).await,
        };
        reply.send(&self.client, reply_to).await;
    }
}

/// Reads the identity headers of a message and authenticates the caller.
pub(crate) fn authenticate(
    auth: &Authenticator,
    message: &async_nats::Message,
) -> Result<schemas::Actor, Reply> {
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
    };
    let authorization = header(AUTHORIZATION_HEADER);
    let bearer = crate::auth::bearer_token(authorization.as_deref().map(str::as_bytes))
        .map_err(auth_error)?;
    let dev = header(DEV_ACTOR_HEADER);
    auth.authenticate(bearer, dev.as_deref())
        .map_err(auth_error)
}

fn auth_error(error: crate::auth::AuthError) -> Reply {
    Reply::error(error.code(), error.to_string(), None)
}

/// The last token of a subject (`bianmin.intake.hotline` → `hotline`).
pub(crate) fn last_token(subject: &str) -> &str {
    subject.rsplit('.').next().unwrap_or("")
}
