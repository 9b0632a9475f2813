//! Rate reports over NATS.
//!
//! Outbound: every recorded revision goes to `<prefix>.reports.<level>.<unit>` with
//! `Nats-Msg-Id` = its message id (UUIDv5 of unit, period and revision), and every recorded
//! feedback to `<prefix>.reports.feedback_log.<level>.<unit>` with `Nats-Msg-Id` = its event id.
//! The JetStream stream `<PREFIX>_REPORTS` (`BIANMIN_REPORTS`; created idempotently) captures both, so a message is
//! *sent* once JetStream stored it. The live publisher in `serve` follows the log and resumes
//! after a restart from the position named by the last live message it stored (header
//! `Bianmin-Position`, as the upward link does).
//!
//! Inbound: feedback documents arrive by request-reply on `<prefix>.reports.feedback` and are
//! recorded on the report's stream as the higher level.
//!
//! Resend: [`resend`] re-publishes past revisions and feedback since a time, in log order, with
//! their original ids (header `Bianmin-Replay: true`).

use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use schemas::event::{FigureChange, ReportFeedbackKind, ReportLevel};
use schemas::{Actor, Event, LoggedCommit, Role, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::store::{self, FeedbackDocument};
use super::{ReportError, nats_err};
use crate::nats::Reply;
use crate::outbound::{publish_logged, sent_through};
use engine_log::EventLog;

/// NATS names of the report link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// The instance's names: `<prefix>.reports.<level>.<unit>`, the stream `<PREFIX>_REPORTS`,
    /// the queue group `<prefix>-reports` of the feedback subscription.
    pub names: schemas::Names,
    /// Stream replicas.
    pub replicas: usize,
}

impl LinkConfig {
    /// `<prefix>.reports.<level>.<unit>`.
    pub fn report_subject(&self, level: ReportLevel, unit: &str) -> String {
        self.names.report_subject(level.as_str(), unit)
    }

    /// `<prefix>.reports.feedback_log.<level>.<unit>`.
    pub fn feedback_log_subject(&self, level: ReportLevel, unit: &str) -> String {
        self.names.report_feedback_log_subject(level.as_str(), unit)
    }

    /// The stream: file storage, everything kept, deduplication on message ids.
    pub fn stream_config(&self) -> stream::Config {
        let mut subjects: Vec<String> = ReportLevel::ALL
            .iter()
            .map(|l| self.names.report_level_wildcard(l.as_str()))
            .collect();
        subjects.push(self.names.report_feedback_log_wildcard());
        stream::Config {
            name: self.names.reports_stream(),
            description: Some("Bianmin rate reports and recorded feedback, outbound".into()),
            subjects,
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
    /// A revision of a rate report.
    Report {
        /// Stable message id (unit + period + revision).
        message_id: Uuid,
        /// The report.
        report_id: Uuid,
        /// Revision.
        revision: u32,
        /// Level.
        level: ReportLevel,
        /// Unit.
        unit: String,
        /// Period.
        period: String,
        /// Log position the figures were computed at.
        log_position: u64,
        /// Instant deadlines were judged at.
        as_of: Timestamp,
        /// Formula version.
        formula_version: String,
        /// The figures.
        figures: Value,
        /// SHA-256 of their canonical bytes.
        figures_sha256: String,
        /// Revision superseded.
        supersedes: Option<u32>,
        /// Changes from it.
        changes: Vec<FigureChange>,
        /// Why.
        reason: Option<String>,
        /// Who published it.
        published_by: Actor,
        /// When.
        published_at: Timestamp,
    },
    /// Feedback recorded on a report.
    Feedback {
        /// Stable message id (= the feedback event's id).
        message_id: Uuid,
        /// The report.
        report_id: Uuid,
        /// Revision answered.
        revision: u32,
        /// Level.
        level: ReportLevel,
        /// Unit.
        unit: String,
        /// Kind.
        kind: ReportFeedbackKind,
        /// Comments.
        comments: String,
        /// Who answered.
        from: Actor,
        /// When it was recorded.
        recorded_at: Timestamp,
    },
}

impl Outbound {
    /// Its stable message id.
    pub fn message_id(&self) -> Uuid {
        match self {
            Outbound::Report { message_id, .. } | Outbound::Feedback { message_id, .. } => {
                *message_id
            }
        }
    }

    /// The subject it goes to.
    pub fn subject(&self, cfg: &LinkConfig) -> String {
        match self {
            Outbound::Report { level, unit, .. } => cfg.report_subject(*level, unit),
            Outbound::Feedback { level, unit, .. } => cfg.feedback_log_subject(*level, unit),
        }
    }

    fn level(&self) -> ReportLevel {
        match self {
            Outbound::Report { level, .. } | Outbound::Feedback { level, .. } => *level,
        }
    }
}

/// The outbound messages of a commit. Feedback needs its report's level and unit: `lookup`
/// gives them from the report id.
fn messages_of(
    logged: &LoggedCommit,
    lookup: &mut impl FnMut(Uuid) -> Option<(ReportLevel, String)>,
) -> Vec<(Timestamp, Outbound)> {
    let mut out = Vec::new();
    for e in &logged.commit.events {
        match &e.event {
            Event::RateReportPublished(p) => out.push((
                e.recorded_at,
                Outbound::Report {
                    message_id: p.message_id,
                    report_id: p.report_id,
                    revision: p.revision,
                    level: p.level,
                    unit: p.unit.clone(),
                    period: p.period.clone(),
                    log_position: p.log_position,
                    as_of: p.as_of,
                    formula_version: p.formula_version.clone(),
                    figures: p.figures.clone(),
                    figures_sha256: p.figures_sha256.clone(),
                    supersedes: p.supersedes,
                    changes: p.changes.clone(),
                    reason: p.reason.clone(),
                    published_by: e.actor.clone(),
                    published_at: e.recorded_at,
                },
            )),
            Event::RateReportFeedbackRecorded(f) => {
                let Some((level, unit)) = lookup(f.report_id) else {
                    continue;
                };
                out.push((
                    e.recorded_at,
                    Outbound::Feedback {
                        message_id: e.event_id,
                        report_id: f.report_id,
                        revision: f.revision,
                        level,
                        unit,
                        kind: f.kind,
                        comments: f.comments.clone(),
                        from: e.actor.clone(),
                        recorded_at: e.recorded_at,
                    },
                ))
            }
            _ => {}
        }
    }
    out
}

/// Report id → (level, unit), filled from the log as it is read.
#[derive(Debug, Default)]
struct Units(std::collections::HashMap<Uuid, (ReportLevel, String)>);

impl Units {
    fn note(&mut self, logged: &LoggedCommit) {
        for e in &logged.commit.events {
            if let Event::RateReportPublished(p) = &e.event {
                self.0.insert(p.report_id, (p.level, p.unit.clone()));
            }
        }
    }

    async fn get(&mut self, log: &EventLog, id: Uuid) -> Option<(ReportLevel, String)> {
        if let Some(found) = self.0.get(&id) {
            return Some(found.clone());
        }
        let record = store::load(log, id).await.ok().flatten()?;
        self.0.insert(id, (record.level, record.unit.clone()));
        Some((record.level, record.unit))
    }
}

/// Creates or updates the outbound stream.
pub async fn ensure_stream(
    client: &async_nats::Client,
    cfg: &LinkConfig,
) -> Result<stream::Stream, ReportError> {
    let js = jetstream::new(client.clone());
    js.create_or_update_stream(cfg.stream_config())
        .await
        .map_err(nats_err)?;
    js.get_stream(cfg.names.reports_stream())
        .await
        .map_err(nats_err)
}

/// Publishes one message through JetStream and waits for its acknowledgement.
pub async fn publish(
    js: &jetstream::Context,
    cfg: &LinkConfig,
    message: &Outbound,
    position: u64,
    replayed: bool,
) -> Result<(), ReportError> {
    let payload = serde_json::to_vec(message).expect("outbound messages always serialise");
    let id = message.message_id().to_string();
    publish_logged(js, message.subject(cfg), &id, position, replayed, payload)
        .await
        .map_err(nats_err)
}

/// Every report message recorded since `since` (by `recorded_at`), at `level` when given, in
/// log order, with its log position.
pub async fn recorded_messages(
    log: &EventLog,
    since: Timestamp,
    level: Option<ReportLevel>,
) -> Result<Vec<(u64, Outbound)>, ReportError> {
    let mut units = Units::default();
    let mut out = Vec::new();
    log.scan(1, |logged| {
        units.note(logged);
        let mut lookup = |id| units.0.get(&id).cloned();
        for (at, message) in messages_of(logged, &mut lookup) {
            if at >= since && level.is_none_or(|l| l == message.level()) {
                out.push((logged.position, message));
            }
        }
    })
    .await?;
    Ok(out)
}

/// Re-publishes the revisions and feedback recorded since `since` (at `level` when given) in
/// log order with their original ids. Returns what was published.
pub async fn resend(
    log: &EventLog,
    client: &async_nats::Client,
    cfg: &LinkConfig,
    since: Timestamp,
    level: Option<ReportLevel>,
) -> Result<Vec<Outbound>, ReportError> {
    ensure_stream(client, cfg).await?;
    let js = jetstream::new(client.clone());
    let messages = recorded_messages(log, since, level).await?;
    for (position, message) in &messages {
        publish(&js, cfg, message, *position, true).await?;
    }
    Ok(messages.into_iter().map(|(_, m)| m).collect())
}

/// Publishes the messages of one commit (used right after a CLI publish, marked as a replay so
/// the live publisher's resume point is not moved).
pub async fn publish_commit_of(
    log: &EventLog,
    client: &async_nats::Client,
    cfg: &LinkConfig,
    position: u64,
) -> Result<Vec<Outbound>, ReportError> {
    ensure_stream(client, cfg).await?;
    let js = jetstream::new(client.clone());
    let mut units = Units::default();
    let mut sent = Vec::new();
    for logged in log.read_from(position, 1).await? {
        if logged.position != position {
            continue;
        }
        units.note(&logged);
        let mut pending = Vec::new();
        for e in &logged.commit.events {
            if let Event::RateReportFeedbackRecorded(f) = &e.event {
                pending.push(f.report_id);
            }
        }
        for id in pending {
            let _ = units.get(log, id).await;
        }
        let mut lookup = |id| units.0.get(&id).cloned();
        for (_, message) in messages_of(&logged, &mut lookup) {
            publish(&js, cfg, &message, position, true).await?;
            sent.push(message);
        }
    }
    Ok(sent)
}

/// The higher-level actor inbound NATS feedback is recorded as.
pub fn higher_level_actor(level: ReportLevel) -> Actor {
    let up = match level {
        ReportLevel::Street => "district",
        ReportLevel::District => "city",
        ReportLevel::City => "province",
    };
    Actor {
        id: format!("reports-{up}"),
        role: Role::HigherLevel,
        unit: Some(up.to_string()),
    }
}

/// Runs the live publisher and the feedback listener until `shutdown`.
pub async fn run(
    log: EventLog,
    client: async_nats::Client,
    cfg: LinkConfig,
    clock: std::sync::Arc<dyn engine_core::Clock>,
    ids: engine_log::clock::IdSource,
    shutdown: CancellationToken,
) -> Result<(), ReportError> {
    let stream = ensure_stream(&client, &cfg).await?;
    let mut feedback = client
        .queue_subscribe(
            cfg.names.report_feedback_subject(),
            cfg.names.reports_queue_group(),
        )
        .await
        .map_err(nats_err)?;
    let resume = sent_through(&stream)
        .await
        .map_err(|e| ReportError::Nats(e.to_string()))?;
    tracing::info!(stream = %cfg.names.reports_stream(), resume_after = resume, "rate report link running");
    let publisher = publish_loop(
        log.clone(),
        client.clone(),
        cfg.clone(),
        resume,
        shutdown.clone(),
    );
    let listener = async {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                Some(message) = feedback.next() => {
                    on_feedback(&log, &client, clock.now(), ids.mint(), message).await;
                }
                else => return,
            }
        }
    };
    let (published, ()) = tokio::join!(publisher, listener);
    let _ = feedback.unsubscribe().await;
    published
}

/// Follows the log from after `resume` and publishes every report message, retrying until
/// stored.
async fn publish_loop(
    log: EventLog,
    client: async_nats::Client,
    cfg: LinkConfig,
    resume: u64,
    shutdown: CancellationToken,
) -> Result<(), ReportError> {
    let js = jetstream::new(client);
    let mut units = Units::default();
    let mut commits = log.follow(resume + 1);
    while let Some(logged) =
        crate::outbound::next_commit(&mut commits, &shutdown, "rate reports").await
    {
        units.note(&logged);
        let pending: Vec<Uuid> = logged
            .commit
            .events
            .iter()
            .filter_map(|e| match &e.event {
                Event::RateReportFeedbackRecorded(f) => Some(f.report_id),
                _ => None,
            })
            .collect();
        for id in pending {
            let _ = units.get(&log, id).await;
        }
        let mut lookup = |id| units.0.get(&id).cloned();
        for (_, message) in messages_of(&logged, &mut lookup) {
            let id = message.message_id().to_string();
            let attempt = || publish(&js, &cfg, &message, logged.position, false);
            if !crate::outbound::until_stored(attempt, &id, &shutdown).await {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Answers one feedback document (reply: [`store::FeedbackReply`] or the shared error
/// document `{"error": {code, message, field}}` with header `Bianmin-Error`).
async fn on_feedback(
    log: &EventLog,
    client: &async_nats::Client,
    now: Timestamp,
    fresh_id: Uuid,
    message: async_nats::Message,
) {
    let Some(reply_to) = message.reply.clone() else {
        tracing::warn!("rate report feedback without a reply subject; ignored");
        return;
    };
    let reply = match Reply::decode::<FeedbackDocument>(&message.payload) {
        Err(refused) => refused,
        Ok(document) => match record(log, document, now, fresh_id).await {
            Ok(recorded) => Reply::json(&recorded),
            Err(error) => Reply::from(error.body()),
        },
    };
    reply.send(client, reply_to).await;
}

/// Records a feedback document as the higher level of its report's level.
async fn record(
    log: &EventLog,
    document: FeedbackDocument,
    now: Timestamp,
    fresh_id: Uuid,
) -> Result<store::FeedbackReply, ReportError> {
    let from = match document.report_id {
        Some(id) => match store::load(log, id).await.ok().flatten() {
            Some(report) => Some(report.level),
            None => return Err(ReportError::NotFound(format!("report {id} not found"))),
        },
        None => None,
    };
    let actor = higher_level_actor(from.unwrap_or(ReportLevel::Street));
    store::record_feedback(log, document, &actor, now, fresh_id).await
}
