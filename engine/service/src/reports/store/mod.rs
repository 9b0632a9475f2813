//! Rate reports in the log: each report (level × unit × period) has its own stream, id
//! UUIDv5(level, unit, period), holding `rate_report_published` revisions and
//! `rate_report_feedback_recorded` answers, hash-chained like every other stream. Nothing is
//! ever overwritten: a changed figure is a new revision that names what changed and why.

use engine_core::directory::Directory;
use schemas::envelope::{GENESIS_HASH, ID_NAMESPACE};
use schemas::event::{
    FigureChange, RateReportFeedbackRecorded, RateReportPublished, ReportFeedbackKind, ReportLevel,
};
use schemas::{Actor, CommandKind, CommitHeader, Event, LoggedCommit, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ReportError;
use super::compute::{
    FORMULA_VERSION, ReportPeriod, ReportSpec, canonical_bytes, compute, compute_many, diff,
    figures_sha256, message_id,
};
use engine_log::{EventLog, LogError};

mod feedback;
mod replay;

pub use feedback::{FeedbackDocument, FeedbackReply, record_feedback};
pub use replay::{ReplayReport, RevisionReplay, replay};

/// Commits read per batch while scanning the log.
const SCAN_BATCH_LEN: usize = 512;
/// Appends tried before giving up on a stream other writers keep extending.
const APPEND_ATTEMPTS: usize = 5;
/// Longest feedback comment accepted, in bytes.
pub const COMMENTS_MAX: usize = 4096;

/// One published revision, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Revision {
    /// Log position of its commit.
    pub position: u64,
    /// Its event id.
    pub event_id: Uuid,
    /// Who published it.
    pub published_by: Actor,
    /// When it was recorded.
    pub published_at: Timestamp,
    /// What was published.
    #[serde(flatten)]
    pub published: RateReportPublished,
}

/// One recorded answer of the higher level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feedback {
    /// Log position of its commit.
    pub position: u64,
    /// Its event id (its message id on NATS).
    pub event_id: Uuid,
    /// Who answered.
    pub from: Actor,
    /// When it was recorded.
    pub recorded_at: Timestamp,
    /// The answer.
    #[serde(flatten)]
    pub feedback: RateReportFeedbackRecorded,
}

/// A report with every revision and answer, in log order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRecord {
    /// The report (stream) id.
    pub report_id: Uuid,
    /// Level.
    pub level: ReportLevel,
    /// Unit.
    pub unit: String,
    /// Period.
    pub period: String,
    /// Revisions, first to latest.
    pub revisions: Vec<Revision>,
    /// Feedback, in the order recorded.
    pub feedback: Vec<Feedback>,
}

impl ReportRecord {
    /// The latest revision.
    pub fn latest(&self) -> Option<&Revision> {
        self.revisions.last()
    }

    /// The latest feedback kind on the latest revision.
    pub fn status(&self) -> Option<ReportFeedbackKind> {
        let latest = self.latest()?.published.revision;
        self.feedback
            .iter()
            .rev()
            .find(|f| f.feedback.revision == latest)
            .map(|f| f.feedback.kind)
    }

    fn absorb(&mut self, logged: &LoggedCommit) {
        for e in &logged.commit.events {
            match &e.event {
                Event::RateReportPublished(p) => self.revisions.push(Revision {
                    position: logged.position,
                    event_id: e.event_id,
                    published_by: e.actor.clone(),
                    published_at: e.recorded_at,
                    published: p.clone(),
                }),
                Event::RateReportFeedbackRecorded(f) => self.feedback.push(Feedback {
                    position: logged.position,
                    event_id: e.event_id,
                    from: e.actor.clone(),
                    recorded_at: e.recorded_at,
                    feedback: f.clone(),
                }),
                _ => {}
            }
        }
    }
}

/// A report stream as loaded: the record and what the next append must chain to.
struct Loaded {
    record: Option<ReportRecord>,
    last_position: u64,
    last_hash: String,
    version: u64,
}

async fn load_stream(log: &EventLog, report_id: Uuid) -> Result<Loaded, ReportError> {
    let commits = log.load(report_id).await?;
    let mut loaded = Loaded {
        record: None,
        last_position: commits.last().map_or(0, |c| c.position),
        last_hash: GENESIS_HASH.to_string(),
        version: 0,
    };
    for logged in &commits {
        if let Some(last) = logged.commit.events.last() {
            loaded.last_hash = last.hash.clone();
            loaded.version = last.version;
        }
        if loaded.record.is_none()
            && let Some(Event::RateReportPublished(p)) =
                logged.commit.events.first().map(|e| &e.event)
        {
            loaded.record = Some(ReportRecord {
                report_id,
                level: p.level,
                unit: p.unit.clone(),
                period: p.period.clone(),
                revisions: Vec::new(),
                feedback: Vec::new(),
            });
        }
        if let Some(record) = &mut loaded.record {
            record.absorb(logged);
        }
    }
    Ok(loaded)
}

/// A report with its revisions and feedback, if it was ever published.
pub async fn load(log: &EventLog, report_id: Uuid) -> Result<Option<ReportRecord>, ReportError> {
    Ok(load_stream(log, report_id).await?.record)
}

/// Every report in the log, in order of first publication, at `level` when given (one scan of
/// the whole log; [`ReportList`] keeps a scan and reads only what was appended since).
pub async fn list(
    log: &EventLog,
    level: Option<ReportLevel>,
) -> Result<Vec<ReportRecord>, ReportError> {
    ReportList::default().list(log, level).await
}

/// The reports found in the log so far and how far it was read: [`ReportList::list`] reads
/// only the commits appended since the last call (positions only grow and are never reused).
#[derive(Debug, Default)]
pub struct ReportList {
    scanned: tokio::sync::Mutex<Scanned>,
}

#[derive(Debug, Default)]
struct Scanned {
    through: u64,
    reports: Vec<ReportRecord>,
    index: std::collections::HashMap<Uuid, usize>,
}

impl ReportList {
    /// Every report, in order of first publication, at `level` when given.
    pub async fn list(
        &self,
        log: &EventLog,
        level: Option<ReportLevel>,
    ) -> Result<Vec<ReportRecord>, ReportError> {
        let mut scanned = self.scanned.lock().await;
        let Scanned {
            through,
            reports,
            index,
        } = &mut *scanned;
        loop {
            let batch = log.read_from(*through + 1, SCAN_BATCH_LEN).await?;
            let Some(last) = batch.last().map(|c| c.position) else {
                break;
            };
            for logged in &batch {
                let Some(first) = logged.commit.events.first() else {
                    continue;
                };
                let id = logged.commit.request_id;
                let at = match (&first.event, index.get(&id)) {
                    (_, Some(&i)) => i,
                    (Event::RateReportPublished(p), None) => {
                        index.insert(id, reports.len());
                        reports.push(ReportRecord {
                            report_id: id,
                            level: p.level,
                            unit: p.unit.clone(),
                            period: p.period.clone(),
                            revisions: Vec::new(),
                            feedback: Vec::new(),
                        });
                        reports.len() - 1
                    }
                    _ => continue,
                };
                reports[at].absorb(logged);
            }
            *through = last;
            if batch.len() < SCAN_BATCH_LEN {
                break;
            }
        }
        Ok(reports
            .iter()
            .filter(|r| level.is_none_or(|l| l == r.level))
            .cloned()
            .collect())
    }
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PublishOutcome {
    /// A new revision was recorded.
    Published {
        /// The revision as recorded.
        revision: Box<Revision>,
    },
    /// The figures equal the latest revision's: nothing was recorded.
    Unchanged {
        /// The report.
        report_id: Uuid,
        /// The latest revision, still current.
        revision: u32,
        /// The log position the figures were recomputed at.
        log_position: u64,
    },
}

/// The commit id of a revision (two engines publishing the same revision write one record).
pub fn revision_commit_id(report_id: Uuid, revision: u32) -> Uuid {
    Uuid::new_v5(
        &ID_NAMESPACE,
        format!("rate-report-commit:{report_id}:{revision}").as_bytes(),
    )
}

/// Computes `spec` from the whole log at `as_of` and records it as the next revision, unless
/// the figures equal the latest revision's. A revision after the first needs a `reason`.
/// With `first_only`, a report already published is left alone (the schedules use it, so a
/// restart never publishes twice).
pub async fn publish(
    log: &EventLog,
    directory: &Directory,
    spec: &ReportSpec,
    as_of: Timestamp,
    publisher: &Actor,
    reason: Option<&str>,
    first_only: bool,
) -> Result<PublishOutcome, ReportError> {
    spec.validate(directory)?;
    publish_with(log, spec, as_of, publisher, reason, first_only, None).await
}

/// Publishes revision 1 of every spec not published yet, computing all their figures over one
/// fold of the log (the schedules use it: one pass over the log for every street). Reports
/// that exist are left alone (`Unchanged`).
pub async fn publish_first_many(
    log: &EventLog,
    directory: &Directory,
    specs: &[ReportSpec],
    as_of: Timestamp,
    publisher: impl Fn(&ReportSpec) -> Actor,
) -> Result<Vec<PublishOutcome>, ReportError> {
    let mut pending = Vec::new();
    for spec in specs {
        spec.validate(directory)?;
        if load(log, spec.report_id()).await?.is_none() {
            pending.push(spec.clone());
        }
    }
    let position = log.last_position().await?;
    let mut figures = match pending.is_empty() {
        true => Vec::new(),
        false => {
            let items: Vec<(&ReportSpec, Timestamp)> =
                pending.iter().map(|spec| (spec, as_of)).collect();
            compute_many(log, position, &items).await?
        }
    }
    .into_iter();
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let precomputed = match pending.first() {
            Some(p) if p == spec => {
                pending.remove(0);
                figures.next().map(|f| (position, f))
            }
            _ => None,
        };
        let who = publisher(spec);
        out.push(publish_with(log, spec, as_of, &who, None, true, precomputed).await?);
    }
    Ok(out)
}

/// [`publish`] after validation; `precomputed` figures (at a position) serve the first
/// attempt instead of a fresh fold.
async fn publish_with(
    log: &EventLog,
    spec: &ReportSpec,
    as_of: Timestamp,
    publisher: &Actor,
    reason: Option<&str>,
    first_only: bool,
    mut precomputed: Option<(u64, serde_json::Value)>,
) -> Result<PublishOutcome, ReportError> {
    let report_id = spec.report_id();
    let period = spec.period.key();
    for _ in 0..APPEND_ATTEMPTS {
        let loaded = load_stream(log, report_id).await?;
        let latest = loaded.record.as_ref().and_then(|r| r.latest()).cloned();
        if first_only && let Some(latest) = &latest {
            return Ok(PublishOutcome::Unchanged {
                report_id,
                revision: latest.published.revision,
                log_position: latest.published.log_position,
            });
        }
        let (position, figures) = match precomputed.take() {
            Some(done) => done,
            None => {
                let position = log.last_position().await?;
                (position, compute(log, position, spec, as_of).await?)
            }
        };
        let (revision, supersedes, changes) = match &latest {
            None => (1, None, Vec::new()),
            Some(prev) => {
                let changes = diff(&prev.published.figures, &figures);
                if changes.is_empty() {
                    return Ok(PublishOutcome::Unchanged {
                        report_id,
                        revision: prev.published.revision,
                        log_position: position,
                    });
                }
                (
                    prev.published.revision + 1,
                    Some(prev.published.revision),
                    changes,
                )
            }
        };
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if supersedes.is_some() && reason.is_none() {
            return Err(ReportError::invalid(
                "reason",
                format!(
                    "the figures changed since revision {} ({} figures); a revision needs a reason",
                    revision - 1,
                    changes.len()
                ),
            ));
        }
        let published = RateReportPublished {
            report_id,
            revision,
            level: spec.level,
            unit: spec.unit.clone(),
            period: period.clone(),
            log_position: position,
            as_of,
            formula_version: FORMULA_VERSION.to_string(),
            figures_sha256: figures_sha256(&figures),
            figures,
            message_id: message_id(spec.level, &spec.unit, &period, revision),
            supersedes,
            changes,
            reason: reason.map(str::to_string),
        };
        let commit_id = revision_commit_id(report_id, revision);
        match append(
            log,
            &loaded,
            report_id,
            commit_id,
            CommandKind::PublishRateReport,
            publisher,
            as_of,
            Event::RateReportPublished(published),
        )
        .await
        {
            Ok(()) => {}
            Err(ReportError::Log(LogError::Conflict { .. })) => continue,
            Err(e) => return Err(e),
        }
        let record = load(log, report_id).await?;
        let revision = record
            .and_then(|r| {
                r.revisions
                    .into_iter()
                    .find(|x| x.published.revision == revision)
            })
            .ok_or_else(|| ReportError::NotFound(format!("report {report_id} vanished")))?;
        return Ok(PublishOutcome::Published {
            revision: Box::new(revision),
        });
    }
    Err(ReportError::Conflict(format!(
        "report {report_id}: other writers kept appending"
    )))
}

/// Seals one event onto a loaded report stream and appends it.
#[allow(clippy::too_many_arguments)]
async fn append(
    log: &EventLog,
    loaded: &Loaded,
    report_id: Uuid,
    commit_id: Uuid,
    command: CommandKind,
    actor: &Actor,
    at: Timestamp,
    event: Event,
) -> Result<(), ReportError> {
    let event_id = Uuid::new_v5(&ID_NAMESPACE, format!("event:{commit_id}").as_bytes());
    let commit = CommitHeader {
        commit_id,
        stream: report_id,
        command,
        actor: actor.clone(),
        occurred_at: at,
        recorded_at: at,
        correlation_id: report_id,
        after_version: loaded.version,
        after_hash: loaded.last_hash.clone(),
    }
    .seal(vec![event], |_| event_id);
    log.append(&commit, loaded.last_position).await?;
    Ok(())
}
