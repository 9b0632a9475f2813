//! Report upward (上报) to the higher-level system, and its feedback, over NATS.
//!
//! Outbound: every `reported_upward` event is published to `<prefix>.upward.reports.<level>`
//! with `Nats-Msg-Id` = the report id, and every recorded `upward_feedback_received` to
//! `<prefix>.upward.feedback_log.<level>` with `Nats-Msg-Id` = the feedback event's id. A
//! JetStream stream (`<PREFIX>_UPWARD`, e.g. `BIANMIN_UPWARD`, created idempotently) captures both, so
//! delivery is durable: a report is *sent* once JetStream acknowledged it, and *acknowledged*
//! once the higher level answered on `<prefix>.upward.ack` (recorded as `acknowledge_upward`).
//! The publisher resumes after a restart from the log position named by the last message it
//! stored (header `Bianmin-Position`); re-publishing a commit is harmless (same ids).
//!
//! Inbound ([`inbound`]): feedback documents arrive by request-reply on
//! `<prefix>.upward.feedback` and are recorded with `record_upward_feedback` through the
//! command service, as the higher level; acknowledgements on `<prefix>.upward.ack` are
//! recorded as `acknowledge_upward` and answered when the sender gave a reply subject.
//!
//! Replay: [`replay`] re-publishes the reports and recorded feedback since a time, in original
//! log order, with their original ids, so a higher-level system that lost data can rebuild its
//! view; receivers deduplicate by id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use schemas::{
    Actor, AttachmentRef, Event, EventEnvelope, FeedbackKind, LoggedCommit, RequestId, Timestamp,
    UpwardLevel,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The shutdown signal [`run`] takes (re-exported so callers need no extra dependency).
pub use tokio_util::sync::CancellationToken;

use crate::commands::CommandService;
use engine_log::{EventLog, LogError};

mod inbound;

pub use inbound::{
    AckDocument, AckReply, FeedbackDocument, FeedbackReply, higher_level_actor, record_ack,
    record_feedback,
};

use crate::outbound::publish_logged;
pub use crate::outbound::{POSITION_HEADER, REPLAY_HEADER};

/// Why the upward link failed.
#[derive(Debug, thiserror::Error)]
pub enum UpwardError {
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// NATS or JetStream failed.
    #[error("nats: {0}")]
    Nats(String),
}

fn nats_err(e: impl std::fmt::Display) -> UpwardError {
    UpwardError::Nats(e.to_string())
}

/// Settings of the upward link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpwardConfig {
    /// The instance's names: `<prefix>.upward.reports.<level>`, the stream `<PREFIX>_UPWARD`,
    /// the queue group `<prefix>-upward` of the inbound subscriptions.
    pub names: schemas::Names,
    /// Stream replicas.
    pub replicas: usize,
}

impl Default for UpwardConfig {
    fn default() -> UpwardConfig {
        UpwardConfig {
            names: schemas::Names::default(),
            replicas: 1,
        }
    }
}

impl UpwardConfig {
    /// `<prefix>.upward.reports.<level>`.
    pub fn reports_subject(&self, level: UpwardLevel) -> String {
        self.names.upward_reports_subject(level.as_str())
    }

    /// `<prefix>.upward.feedback_log.<level>`.
    pub fn feedback_log_subject(&self, level: UpwardLevel) -> String {
        self.names.upward_feedback_log_subject(level.as_str())
    }

    /// The stream configuration: file storage, everything kept, deduplication on message ids.
    pub fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.names.upward_stream(),
            description: Some("Bianmin upward reports and recorded feedback, outbound".into()),
            subjects: self.names.upward_stream_subjects(),
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            num_replicas: self.replicas,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        }
    }
}

/// One outbound message, as the higher level receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outbound {
    /// An upward report.
    Report {
        /// The stable message id (= `report_id`).
        message_id: Uuid,
        /// The request.
        request_id: RequestId,
        /// The report.
        report_id: Uuid,
        /// Target level.
        level: UpwardLevel,
        /// Summary.
        summary: String,
        /// Attachments.
        attachments: Vec<AttachmentRef>,
        /// Who reported it (id, role, unit).
        reported_by: Actor,
        /// When.
        reported_at: Timestamp,
    },
    /// Feedback the engine recorded on a report.
    Feedback {
        /// The stable message id (= the feedback event's id).
        message_id: Uuid,
        /// The request.
        request_id: RequestId,
        /// The report answered.
        report_id: Uuid,
        /// Its level.
        level: UpwardLevel,
        /// Kind of feedback.
        kind: FeedbackKind,
        /// Content.
        content: String,
        /// Department named, for referral back.
        department: Option<String>,
        /// When it was recorded.
        recorded_at: Timestamp,
    },
}

impl Outbound {
    /// The message from an event, if it is an upward report or recorded feedback.
    pub fn from_event(envelope: &EventEnvelope) -> Option<Outbound> {
        match &envelope.event {
            Event::ReportedUpward(r) => Some(Outbound::Report {
                message_id: r.report_id,
                request_id: envelope.request_id,
                report_id: r.report_id,
                level: r.level,
                summary: r.summary.clone(),
                attachments: r.attachments.clone(),
                reported_by: envelope.actor.clone(),
                reported_at: envelope.occurred_at,
            }),
            Event::UpwardFeedbackReceived(f) => Some(Outbound::Feedback {
                message_id: envelope.event_id,
                request_id: envelope.request_id,
                report_id: f.report_id,
                level: f.level,
                kind: f.kind,
                content: f.content.clone(),
                department: f.department.clone(),
                recorded_at: envelope.recorded_at,
            }),
            _ => None,
        }
    }

    /// Its stable message id.
    pub fn message_id(&self) -> Uuid {
        match self {
            Outbound::Report { message_id, .. } | Outbound::Feedback { message_id, .. } => {
                *message_id
            }
        }
    }

    /// Its level.
    pub fn level(&self) -> UpwardLevel {
        match self {
            Outbound::Report { level, .. } | Outbound::Feedback { level, .. } => *level,
        }
    }

    /// The subject it goes to.
    pub fn subject(&self, cfg: &UpwardConfig) -> String {
        match self {
            Outbound::Report { level, .. } => cfg.reports_subject(*level),
            Outbound::Feedback { level, .. } => cfg.feedback_log_subject(*level),
        }
    }
}

/// Creates or updates the outbound stream.
pub async fn ensure_stream(
    client: &async_nats::Client,
    cfg: &UpwardConfig,
) -> Result<stream::Stream, UpwardError> {
    let js = jetstream::new(client.clone());
    js.create_or_update_stream(cfg.stream_config())
        .await
        .map_err(nats_err)?;
    js.get_stream(cfg.names.upward_stream())
        .await
        .map_err(nats_err)
}

/// Publishes one message through JetStream and waits for its acknowledgement.
async fn publish(
    js: &jetstream::Context,
    cfg: &UpwardConfig,
    message: &Outbound,
    position: u64,
    replayed: bool,
) -> Result<(), UpwardError> {
    let payload = serde_json::to_vec(message).expect("outbound messages always serialise");
    let id = message.message_id().to_string();
    publish_logged(js, message.subject(cfg), &id, position, replayed, payload)
        .await
        .map_err(nats_err)
}

/// The outbound messages of a commit, in event order.
fn messages_of(logged: &LoggedCommit) -> impl Iterator<Item = (EventEnvelope, Outbound)> + '_ {
    logged
        .commit
        .events
        .iter()
        .filter_map(|e| Outbound::from_event(e).map(|m| (e.clone(), m)))
}

/// Every upward message recorded since `since` (by `recorded_at`), at `level` when given, in
/// original log order, with its log position.
pub async fn recorded_messages(
    log: &EventLog,
    since: Timestamp,
    level: Option<UpwardLevel>,
) -> Result<Vec<(u64, Outbound)>, UpwardError> {
    let mut out = Vec::new();
    log.scan(1, |logged| {
        for (envelope, message) in messages_of(logged) {
            if envelope.recorded_at >= since && level.is_none_or(|l| l == message.level()) {
                out.push((logged.position, message));
            }
        }
    })
    .await?;
    Ok(out)
}

/// Re-publishes the upward reports and recorded feedback since `since` (at `level` when given),
/// in original log order with their original ids. Returns what was published.
pub async fn replay(
    log: &EventLog,
    client: &async_nats::Client,
    cfg: &UpwardConfig,
    since: Timestamp,
    level: Option<UpwardLevel>,
) -> Result<Vec<Outbound>, UpwardError> {
    ensure_stream(client, cfg).await?;
    let js = jetstream::new(client.clone());
    let messages = recorded_messages(log, since, level).await?;
    for (position, message) in &messages {
        publish(&js, cfg, message, *position, true).await?;
    }
    Ok(messages.into_iter().map(|(_, m)| m).collect())
}

/// The log position the live publisher has published through (0: nothing yet), read from the
/// last live message in the stream.
pub async fn sent_through(stream: &stream::Stream) -> Result<u64, UpwardError> {
    crate::outbound::sent_through(stream)
        .await
        .map_err(nats_err)
}

/// Delivery state of one upward report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The report.
    pub report_id: Uuid,
    /// The request.
    pub request_id: RequestId,
    /// Target level.
    pub level: UpwardLevel,
    /// Published and stored by JetStream.
    pub sent: bool,
    /// The higher level's system acknowledged it.
    pub acknowledged: bool,
}

/// The delivery state of every upward report, given how far the publisher got.
pub async fn deliveries(log: &EventLog, sent_through: u64) -> Result<Vec<Delivery>, UpwardError> {
    let mut out: Vec<Delivery> = Vec::new();
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    log.scan(1, |logged| {
        for e in &logged.commit.events {
            match &e.event {
                Event::ReportedUpward(r) => {
                    index.insert(r.report_id, out.len());
                    out.push(Delivery {
                        report_id: r.report_id,
                        request_id: e.request_id,
                        level: r.level,
                        sent: logged.position <= sent_through,
                        acknowledged: false,
                    });
                }
                Event::UpwardAcknowledged(a) => {
                    if let Some(&i) = index.get(&a.report_id) {
                        out[i].acknowledged = true;
                    }
                }
                _ => {}
            }
        }
    })
    .await?;
    Ok(out)
}

/// Report id → (request, level), from the log.
type ReportIndex = Arc<Mutex<HashMap<Uuid, (RequestId, UpwardLevel)>>>;

fn index_commit(index: &ReportIndex, logged: &LoggedCommit) {
    let mut index = index.lock().expect("report index lock");
    for e in &logged.commit.events {
        if let Event::ReportedUpward(r) = &e.event {
            index.insert(r.report_id, (e.request_id, r.level));
        }
    }
}

/// Builds the report index from the whole log.
async fn build_index(log: &EventLog) -> Result<(ReportIndex, u64), UpwardError> {
    let index: ReportIndex = Arc::default();
    let head = log.scan(1, |logged| index_commit(&index, logged)).await?;
    Ok((index, head))
}

/// Runs the upward link until `shutdown`: the outbound publisher and the inbound feedback and
/// acknowledgement listeners.
pub async fn run(
    service: CommandService,
    client: async_nats::Client,
    cfg: UpwardConfig,
    shutdown: CancellationToken,
) -> Result<(), UpwardError> {
    let stream = ensure_stream(&client, &cfg).await?;
    let (index, _) = build_index(service.log()).await?;
    let mut feedback = client
        .queue_subscribe(
            cfg.names.upward_feedback_subject(),
            cfg.names.upward_queue_group(),
        )
        .await
        .map_err(nats_err)?;
    let mut acks = client
        .queue_subscribe(
            cfg.names.upward_ack_subject(),
            cfg.names.upward_queue_group(),
        )
        .await
        .map_err(nats_err)?;
    let resume = sent_through(&stream).await?;
    tracing::info!(stream = %cfg.names.upward_stream(), resume_after = resume, "upward link running");

    let publisher = publish_loop(
        service.log().clone(),
        client.clone(),
        cfg.clone(),
        index.clone(),
        resume,
        shutdown.clone(),
    );
    let listener = async {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                Some(message) = feedback.next() => inbound::on_feedback(&service, &client, &index, message).await,
                Some(message) = acks.next() => inbound::on_ack(&service, &client, &index, message).await,
                else => return,
            }
        }
    };
    let (published, ()) = tokio::join!(publisher, listener);
    let _ = feedback.unsubscribe().await;
    let _ = acks.unsubscribe().await;
    published
}

/// Follows the log from `resume` and publishes every upward message, retrying until stored.
async fn publish_loop(
    log: EventLog,
    client: async_nats::Client,
    cfg: UpwardConfig,
    index: ReportIndex,
    resume: u64,
    shutdown: CancellationToken,
) -> Result<(), UpwardError> {
    let js = jetstream::new(client);
    let mut commits = log.follow(resume.max(1));
    while let Some(logged) =
        crate::outbound::next_commit(&mut commits, &shutdown, "upward reports").await
    {
        index_commit(&index, &logged);
        for (_, message) in messages_of(&logged) {
            let id = message.message_id().to_string();
            let attempt = || publish(&js, &cfg, &message, logged.position, false);
            if !crate::outbound::until_stored(attempt, &id, &shutdown).await {
                return Ok(());
            }
        }
    }
    Ok(())
}
