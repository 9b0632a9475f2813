//! The event log on NATS JetStream: one stream, one subject per request, one message per commit.
//!
//! Position = stream sequence. Concurrency: every publish carries
//! `Nats-Expected-Last-Subject-Sequence` (the request's last position the caller saw) and
//! `Nats-Msg-Id` (the commit id). A "wrong last sequence" answer is resolved by reading, from
//! the stream leader, the message that follows `expected` on the request's subject: if it is
//! ours the append had already landed (duplicate), otherwise it is a genuine conflict. This
//! keeps re-appends idempotent long after the server's duplicate window.
//!
//! Never read through direct gets here: they may be served by a lagging replica.
//!
//! Command bindings ([`super::bindings`]) live in a key-value bucket next to the stream
//! ([`bindings`]); a bound append binds before it publishes.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::{CreateStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;

use futures::StreamExt;
use futures::stream::BoxStream;
use schemas::{Commit, RequestId};
use stream::LastRawMessageErrorKind;

use super::{Appended, Binding, LogError};

mod bindings;
mod read;

/// Publish attempts for an append whose outcome is unknown (timeout, lost connection) before
/// the log resolves it by reading and, failing that, reports the server unavailable.
const PUBLISH_ATTEMPTS_MAX: u32 = 4;
/// First retry delay; doubles per attempt (50, 100, 200 ms).
const PUBLISH_BACKOFF_INITIAL: Duration = Duration::from_millis(50);
/// Largest delay between two attempts of one ambiguous append.
const PUBLISH_BACKOFF_MAX: Duration = Duration::from_millis(400);
/// Pause before `follow` recreates its consumer after the server was unreachable.
const FOLLOW_RETRY_DELAY: Duration = Duration::from_secs(1);

const _: () = assert!(PUBLISH_ATTEMPTS_MAX >= 1);

/// Where and how the JetStream log keeps its commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetStreamConfig {
    /// The instance's names: the stream (`nats.stream`, default `BIANMIN_EVENTS`) and the
    /// subjects, a request's commits going to `<prefix>.events.<request_id>`.
    pub names: schemas::Names,
    /// Stream replicas: 1 on a single server, 3 on a cluster (tolerates one node lost).
    pub replicas: usize,
    /// The server's own deduplication window on `Nats-Msg-Id`. Re-appends after it are still
    /// idempotent (resolved by reading); the window only saves that read.
    pub duplicate_window: Duration,
    /// How long one publish or API request waits for the server's answer.
    pub request_timeout: Duration,
    /// Create or update the stream to this configuration at connect (`bianmin serve`).
    /// Tools that only read (verify, history, replay, rebuild) leave it false so that they
    /// never change a production stream (e.g. its replica count); the stream must exist.
    pub manage_stream: bool,
}

impl Default for JetStreamConfig {
    fn default() -> JetStreamConfig {
        JetStreamConfig {
            names: schemas::Names::default(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            request_timeout: Duration::from_secs(2),
            manage_stream: true,
        }
    }
}

impl JetStreamConfig {
    /// The stream configuration this log needs: file storage, keep everything forever,
    /// no deletes or purges.
    pub fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.names.events_stream().to_string(),
            description: Some("Bianmin event log: one message per commit".to_string()),
            subjects: vec![self.names.events_wildcard()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            max_messages: -1,
            max_bytes: -1,
            max_messages_per_subject: -1,
            max_consumers: -1,
            max_message_size: -1,
            max_age: Duration::ZERO,
            num_replicas: self.replicas,
            duplicate_window: self.duplicate_window,
            deny_delete: true,
            deny_purge: true,
            allow_rollup: false,
            allow_direct: false,
            ..Default::default()
        }
    }
}

/// The JetStream event log. Cheap to clone: clones share one connection and stream handle.
#[derive(Debug, Clone)]
pub struct JetStreamLog {
    shared: Arc<Shared>,
}

/// What clones of a [`JetStreamLog`] share.
#[derive(Debug)]
struct Shared {
    context: jetstream::Context,
    stream: Arc<stream::Stream>,
    cfg: JetStreamConfig,
    /// The server's version as announced at connect, e.g. `2.9.10`.
    server_version: String,
    /// The bucket of command bindings, opened at the first bind or lookup.
    bindings: tokio::sync::OnceCell<async_nats::jetstream::kv::Store>,
}

impl JetStreamLog {
    /// Creates the stream, or updates it to `cfg`, idempotently.
    async fn manage_stream(
        context: &jetstream::Context,
        cfg: &JetStreamConfig,
    ) -> Result<(), LogError> {
        context
            .create_or_update_stream(cfg.stream_config())
            .await
            .map_err(|e| {
                let message = format!("create or update stream {}: {e}", cfg.names.events_stream());
                match e.kind() {
                    // A configuration the server rejects; retrying will not help.
                    CreateStreamErrorKind::EmptyStreamName
                    | CreateStreamErrorKind::InvalidStreamName
                    | CreateStreamErrorKind::DomainAndExternalSet => LogError::Refused(message),
                    // 503: JetStream or the stream's leader is not available yet; too few
                    // peers: a cluster whose nodes are still joining (or one smaller than
                    // `nats.replicas`, which the start-up wait then reports).
                    CreateStreamErrorKind::JetStream(error) if !transient_api_error(&error) => {
                        LogError::Refused(message)
                    }
                    _ => LogError::Unavailable(message),
                }
            })?;
        Ok(())
    }

    /// Connects and, when `cfg.manage_stream`, creates or updates the stream.
    pub async fn connect(
        client: async_nats::Client,
        cfg: JetStreamConfig,
    ) -> Result<JetStreamLog, LogError> {
        let server_version = client.server_info().version;
        let mut context = jetstream::new(client);
        context.set_timeout(cfg.request_timeout);
        if cfg.manage_stream {
            Self::manage_stream(&context, &cfg).await?;
        }
        let stream = context
            .get_stream(&cfg.names.events_stream())
            .await
            .map_err(|e| {
                LogError::Unavailable(format!("get stream {}: {e}", cfg.names.events_stream()))
            })?;
        let log = JetStreamLog {
            shared: Arc::new(Shared {
                context,
                stream: Arc::new(stream),
                cfg,
                server_version,
                bindings: tokio::sync::OnceCell::new(),
            }),
        };
        tracing::info!(
            stream = %log.shared.cfg.names.events_stream(),
            replicas = log.shared.cfg.replicas,
            durability = %log.describe(),
            "event log on JetStream"
        );
        Ok(log)
    }

    fn subject(&self, request_id: RequestId) -> String {
        self.shared.cfg.names.event_subject(request_id)
    }

    /// See [`super::EventLog::append_bound`] (`binding` is `None` for an unbound append):
    /// binds the commit id first, then publishes.
    pub(super) async fn append(
        &self,
        commit: &Commit,
        expected: u64,
        binding: Option<&Binding>,
    ) -> Result<Appended, LogError> {
        if let Some(binding) = binding {
            self.bind(commit.commit_id, binding).await?;
        }
        self.publish(commit, expected).await
    }

    /// Publishes `commit` after `expected`, resolving ambiguous and rejected publishes.
    async fn publish(&self, commit: &Commit, expected: u64) -> Result<Appended, LogError> {
        let subject = self.subject(commit.request_id);
        let payload = Bytes::from(commit.to_bytes());
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            commit.commit_id.to_string().as_str(),
        );
        headers.insert(
            async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            expected.to_string().as_str(),
        );

        let mut backoff =
            crate::backoff::Backoff::new(PUBLISH_BACKOFF_INITIAL, PUBLISH_BACKOFF_MAX);
        let mut last_error = String::new();
        for attempt in 1..=PUBLISH_ATTEMPTS_MAX {
            let published = async {
                self.shared
                    .context
                    .publish_with_headers(subject.clone(), headers.clone(), payload.clone())
                    .await?
                    .await
            }
            .await;
            match published {
                Ok(ack) => {
                    if !ack.duplicate {
                        assert!(ack.sequence > expected, "positions strictly increase");
                    }
                    return Ok(Appended {
                        position: ack.sequence,
                        duplicate: ack.duplicate,
                    });
                }
                Err(error) => match error.kind() {
                    PublishErrorKind::WrongLastSequence => {
                        return self.resolve_rejected(commit, expected).await;
                    }
                    PublishErrorKind::MaxPayloadExceeded | PublishErrorKind::WrongLastMessageId => {
                        return Err(LogError::Refused(error.to_string()));
                    }
                    // Timed out, connection lost, no responders (stream leader being elected),
                    // or a transient server error: the outcome is unknown; try again.
                    _ => {
                        tracing::warn!(attempt, error = %error, "ambiguous append; retrying");
                        last_error = error.to_string();
                        if attempt < PUBLISH_ATTEMPTS_MAX {
                            tokio::time::sleep(backoff.next_delay()).await;
                        }
                    }
                },
            }
        }
        // Still ambiguous: maybe one attempt landed without us hearing back.
        match self.find_after(commit, expected).await {
            Ok(Some(position)) => Ok(Appended {
                position,
                duplicate: true,
            }),
            _ => Err(LogError::Unavailable(format!(
                "append not acknowledged: {last_error}"
            ))),
        }
    }

    /// The server refused our expected sequence: either our own commit already landed there
    /// (an earlier attempt whose acknowledgement was lost, or a re-append after the duplicate
    /// window), or another commit did.
    async fn resolve_rejected(&self, commit: &Commit, expected: u64) -> Result<Appended, LogError> {
        if let Some(position) = self.find_after(commit, expected).await? {
            return Ok(Appended {
                position,
                duplicate: true,
            });
        }
        let actual = self.last_on_subject(commit.request_id).await?;
        Err(LogError::Conflict {
            request_id: commit.request_id,
            expected,
            actual,
        })
    }

    /// The position of `commit` if it is the message that follows `expected` on its request's
    /// subject (read from the stream leader).
    async fn find_after(&self, commit: &Commit, expected: u64) -> Result<Option<u64>, LogError> {
        let subject = self.subject(commit.request_id);
        let message = match self
            .shared
            .stream
            .get_first_raw_message_by_subject(&subject, expected + 1)
            .await
        {
            Ok(message) => message,
            Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => {
                return Ok(None);
            }
            Err(e) => return Err(LogError::Unavailable(format!("read after {expected}: {e}"))),
        };
        let ours = commit.commit_id.to_string();
        let id_matches = match message.headers.get(async_nats::header::NATS_MESSAGE_ID) {
            Some(id) => id.as_str() == ours,
            None => Commit::from_bytes(&message.payload)
                .map(|stored| stored.commit_id == commit.commit_id)
                .unwrap_or(false),
        };
        Ok(id_matches.then_some(message.sequence))
    }

    /// The request's last position, from the stream leader.
    async fn last_on_subject(&self, request_id: RequestId) -> Result<Option<u64>, LogError> {
        match self
            .shared
            .stream
            .get_last_raw_message_by_subject(&self.subject(request_id))
            .await
        {
            Ok(message) => Ok(Some(message.sequence)),
            Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => Ok(None),
            Err(e) => Err(LogError::Unavailable(format!("read last: {e}"))),
        }
    }

    /// See [`super::EventLog::head`].
    pub(super) async fn head(&self, request_id: RequestId) -> Result<u64, LogError> {
        Ok(self.last_on_subject(request_id).await?.unwrap_or(0))
    }

    /// See [`super::EventLog::follow`].
    pub(super) fn follow(&self, from: u64) -> BoxStream<'static, Result<(u64, Vec<u8>), LogError>> {
        type Messages =
            BoxStream<'static, Result<jetstream::Message, consumer::pull::OrderedError>>;
        struct State {
            stream: Arc<stream::Stream>,
            next: u64,
            messages: Option<Messages>,
        }
        let state = State {
            stream: self.shared.stream.clone(),
            next: from,
            messages: None,
        };
        futures::stream::unfold(state, |mut state| async move {
            loop {
                let Some(messages) = state.messages.as_mut() else {
                    match ordered_from(&state.stream, state.next).await {
                        Ok(messages) => state.messages = Some(messages),
                        Err(error) => {
                            tokio::time::sleep(FOLLOW_RETRY_DELAY).await;
                            return Some((Err(error), state));
                        }
                    }
                    continue;
                };
                match messages.next().await {
                    Some(Ok(message)) => {
                        let position = match message.info() {
                            Ok(info) => info.stream_sequence,
                            Err(e) => {
                                let error = LogError::Unavailable(format!("message metadata: {e}"));
                                return Some((Err(error), state));
                            }
                        };
                        state.next = position + 1;
                        return Some((Ok((position, message.payload.to_vec())), state));
                    }
                    Some(Err(e)) => {
                        state.messages = None;
                        tokio::time::sleep(FOLLOW_RETRY_DELAY).await;
                        let error = LogError::Unavailable(format!("follow: {e}"));
                        return Some((Err(error), state));
                    }
                    None => state.messages = None,
                }
            }
        })
        .boxed()
    }

    /// See [`super::EventLog::last_position`].
    pub(super) async fn last_position(&self) -> Result<u64, LogError> {
        let info = self
            .shared
            .stream
            .get_info()
            .await
            .map_err(|e| LogError::Unavailable(format!("stream info: {e}")))?;
        Ok(info.state.last_sequence)
    }

    /// See [`super::EventLog::ping`].
    pub(super) async fn ping(&self) -> Result<(), LogError> {
        self.last_position().await.map(|_| ())
    }

    /// See [`super::EventLog::describe`].
    pub(super) fn describe(&self) -> String {
        let (major, minor) = parse_version(&self.shared.server_version);
        let sync = if (major, minor) >= (2, 10) {
            "configure `sync_interval: always` on every server for acknowledged appends to \
             survive a machine crash (otherwise they are fsynced every 2 min)"
        } else {
            "no sync_interval, data is fsynced every 2 min; acknowledged appends can be lost \
             on a machine crash"
        };
        format!(
            "nats-server {}: stream {} (file storage, {} replica(s), no limits, deny delete/purge); {}",
            self.shared.server_version,
            self.shared.cfg.names.events_stream(),
            self.shared.cfg.replicas,
            sync
        )
    }
}

/// An ordered consumer over the whole stream from `from`.
async fn ordered_from(
    stream: &stream::Stream,
    from: u64,
) -> Result<BoxStream<'static, Result<jetstream::Message, consumer::pull::OrderedError>>, LogError>
{
    let config = consumer::pull::OrderedConfig {
        deliver_policy: consumer::DeliverPolicy::ByStartSequence {
            start_sequence: from,
        },
        ..Default::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| LogError::Unavailable(format!("create follow consumer: {e}")))?;
    let messages = consumer
        .messages()
        .await
        .map_err(|e| LogError::Unavailable(format!("follow: {e}")))?;
    Ok(messages.boxed())
}

/// `2.9.10` → (2, 9); unknown parts are 0.
fn parse_version(version: &str) -> (u32, u32) {
    let mut parts = version
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Whether a JetStream API error means "not now" rather than "no": 503 (no leader, no
/// responders) and 408, and a placement that fails because a peer is offline (a node
/// restarting) — each answered differently once the cluster has its nodes and leaders back.
pub fn transient_api_error(error: &async_nats::jetstream::Error) -> bool {
    use async_nats::jetstream::ErrorCode;
    matches!(error.code(), 503 | 408)
        || error.error_code() == ErrorCode::CLUSTER_NO_PEERS
        || error.error_code() == ErrorCode::INSUFFICIENT_RESOURCES
}
