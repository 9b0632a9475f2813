//! The projector runner: keeps the read models of the `projections` crate up to date from the
//! event log, refreshes their gauges and rebuilds them.
//!
//! # The loop (one task per projector name)
//! `cp = checkpoint(name)`; `read_from(cp + 1, batch_max)`; `apply` (one transaction with the
//! checkpoint). When the log has nothing more, the task waits on the log's `follow` stream
//! from `cp + 1` for at most [`ProjectorSettings::idle_wait`] and applies what arrives at once
//! (with whatever else is already delivered, up to `batch_max`). The stream stays open while
//! it is exactly at the checkpoint, so under load commits flow from it with no new read or
//! subscription and the lag stays at one round trip; any gap, error or move of the checkpoint
//! by another process, or silence for `idle_wait` while the log head is past the checkpoint,
//! falls back to `read_from`. A log read is abandoned after `LOG_READ_TIMEOUT` (10 s). Any
//! failure (the database or the log unreachable, a read abandoned) is logged, marks the
//! projector not caught up, and is retried after a capped exponential backoff; nothing is lost
//! or applied twice because the checkpoint moves in the same transaction as the rows.
//!
//! Several processes may run the same projector (`bianmin serve` and any number of
//! `bianmin project`): `Projections::apply` locks the checkpoint row and skips what another
//! process applied first.
//!
//! The read API over the read models, and who may read what, is the service's
//! `projector::read_api`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine_core::Clock;
use futures::FutureExt as _;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use projections::metrics::Gauges;
use projections::{ProjectionError, Projections};
use schemas::LoggedCommit;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use engine_log::backoff::Backoff;
use engine_log::{EventLog, LogError};

/// `[projections]`: the read-model projectors' settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectionsConfig {
    /// Run one projector task per read model inside `bianmin serve` and serve the read API.
    /// Off when the projectors run as separate `bianmin project` processes and the read API
    /// is served elsewhere.
    pub enabled: bool,
    /// Most commits applied in one transaction.
    pub batch_max: usize,
    /// How often the backlog, overdue and lag gauges are refreshed.
    pub gauges_interval_ms: u64,
    /// Longest a read-model read with `?min_position=` waits for the projectors to reach that
    /// log position before answering 503 `not_caught_up` (read-your-writes).
    pub read_wait_ms: u64,
    /// The composite-score weights of the rankings when a query names none
    /// (`[projections.weights] response, resolution, satisfaction, bottom_up`).
    pub weights: projections::query::Weights,
}

impl Default for ProjectionsConfig {
    fn default() -> Self {
        ProjectionsConfig {
            enabled: true,
            batch_max: 500,
            gauges_interval_ms: 5_000,
            read_wait_ms: 5_000,
            weights: projections::query::Weights::default(),
        }
    }
}

/// Why a projector operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// The read-model database failed (or the projector name is unknown).
    #[error(transparent)]
    Projections(#[from] ProjectionError),
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The gauges could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Longest wait, after a commit arrives on the follow stream, for more to apply with it.
const LINGER: Duration = Duration::from_millis(20);

/// Timing of the projector loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectorSettings {
    /// Most commits applied in one transaction.
    pub batch_max: usize,
    /// Longest wait on the log's follow stream before checking the checkpoint again.
    pub idle_wait: Duration,
    /// First retry delay after a failure.
    pub backoff_min: Duration,
    /// Largest retry delay.
    pub backoff_max: Duration,
    /// How often the gauges are refreshed when nothing is applied.
    pub gauges_interval: Duration,
    /// Longest a read with `?min_position=` waits for the projectors.
    pub read_wait: Duration,
}

impl Default for ProjectorSettings {
    fn default() -> Self {
        ProjectorSettings::from_config(&ProjectionsConfig::default())
    }
}

impl ProjectorSettings {
    /// The settings of the `[projections]` configuration section.
    pub fn from_config(config: &ProjectionsConfig) -> ProjectorSettings {
        ProjectorSettings {
            batch_max: config.batch_max.max(1),
            idle_wait: Duration::from_secs(1),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            gauges_interval: Duration::from_millis(config.gauges_interval_ms.max(100)),
            read_wait: Duration::from_millis(config.read_wait_ms),
        }
    }
}

/// What a projector task last knew about itself.
#[derive(Debug, Default)]
struct Status {
    caught_up: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// Whether the task runs in this process now (it may run in another replica, which
    /// holds its lease).
    running: AtomicBool,
}

/// Marks a projector's task running in this process while alive.
struct Running<'a>(&'a Status);

impl<'a> Running<'a> {
    fn start(status: &'a Status) -> Running<'a> {
        status.running.store(true, Ordering::Relaxed);
        Running(status)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Relaxed);
        self.0.caught_up.store(false, Ordering::Relaxed);
    }
}

impl Status {
    fn ok(&self, caught_up: bool) {
        self.caught_up.store(caught_up, Ordering::Relaxed);
        if let Ok(mut e) = self.last_error.lock() {
            *e = None;
        }
    }

    fn failed(&self, error: &ProjectorError) {
        self.caught_up.store(false, Ordering::Relaxed);
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(error.to_string());
        }
    }
}

/// The follow stream kept open while idle, with the position it yields next.
type Tail = Option<(BoxStream<'static, Result<LoggedCommit, LogError>>, u64)>;

enum Stepped {
    /// A batch was applied; `caught_up` when it was the end of what the log had.
    Applied { caught_up: bool },
    /// Nothing arrived within the idle wait.
    Idle,
    /// Nothing arrived within the idle wait although the log is past the checkpoint.
    Behind,
    /// Shutdown was requested.
    Stopped,
}

/// Longest a projector waits for one log read. A JetStream read whose answer is lost (the
/// server, or the cluster node holding the read consumer, stopped mid-read) never ends by
/// itself; without this bound the projector would wait forever while reporting caught up.
const LOG_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// `log.read_from(from, max)` within [`LOG_READ_TIMEOUT`] (else `LogError::Unavailable`).
async fn read_bounded(
    log: &EventLog,
    from: u64,
    max: usize,
) -> Result<Vec<LoggedCommit>, ProjectorError> {
    match tokio::time::timeout(LOG_READ_TIMEOUT, log.read_from(from, max)).await {
        Ok(read) => Ok(read?),
        Err(_elapsed) => Err(LogError::Unavailable(format!(
            "reading the log from position {from} took longer than {} s",
            LOG_READ_TIMEOUT.as_secs()
        ))
        .into()),
    }
}

/// One health line per projector (`GET /api/v1/health/projections`).
#[derive(Debug, Clone, Serialize)]
pub struct ProjectorHealth {
    /// Projector name.
    pub projector: String,
    /// Last applied log position.
    pub checkpoint: u64,
    /// Commits not yet applied.
    pub lag_events: u64,
    /// Age of the last applied commit when behind, seconds.
    pub lag_seconds: f64,
    /// The task of this process last found nothing more to apply and its checkpoint is the
    /// log head (`None`: not run here).
    pub caught_up: Option<bool>,
    /// The last failure of the task of this process, while it is retrying.
    pub last_error: Option<String>,
}

/// The projectors of one process over one read-model database and one log. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ProjectorRuntime {
    projections: Projections,
    log: EventLog,
    settings: ProjectorSettings,
    statuses: Arc<HashMap<&'static str, Status>>,
    applied: Arc<tokio::sync::Notify>,
}

impl ProjectorRuntime {
    /// A runtime for every projector of the `projections` crate.
    pub fn new(
        projections: Projections,
        log: EventLog,
        settings: ProjectorSettings,
    ) -> ProjectorRuntime {
        let statuses = Projections::projector_names()
            .iter()
            .map(|name| (*name, Status::default()))
            .collect();
        ProjectorRuntime {
            projections,
            log,
            settings,
            statuses: Arc::new(statuses),
            applied: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// The read-model database.
    pub fn projections(&self) -> &Projections {
        &self.projections
    }

    /// The event log.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// The loop settings.
    pub fn settings(&self) -> ProjectorSettings {
        self.settings
    }

    /// Runs projector `name` until `token` is cancelled (then returns `Ok`). Failures are
    /// logged and retried; only an unknown name ends it with an error.
    pub async fn run(&self, name: &str, token: CancellationToken) -> Result<(), ProjectorError> {
        let status = self
            .statuses
            .get(name)
            .ok_or_else(|| ProjectionError::UnknownProjector(name.to_owned()))?;
        let mut backoff = Backoff::new(self.settings.backoff_min, self.settings.backoff_max);
        let mut tail: Tail = None;
        let mut failing = false;
        let _running = Running::start(status);
        tracing::info!(projector = name, "projector started");
        loop {
            if token.is_cancelled() {
                tracing::info!(projector = name, "projector stopped");
                return Ok(());
            }
            match self.step(name, &mut tail, &token).await {
                Ok(Stepped::Stopped) => {
                    tracing::info!(projector = name, "projector stopped");
                    return Ok(());
                }
                Ok(Stepped::Applied { caught_up }) => {
                    if failing {
                        tracing::info!(projector = name, "projector resumed");
                        failing = false;
                    }
                    backoff.reset();
                    status.ok(caught_up);
                    self.applied.notify_one();
                }
                Ok(Stepped::Idle) => {
                    backoff.reset();
                    status.ok(true);
                }
                Ok(Stepped::Behind) => {
                    backoff.reset();
                    status.ok(false);
                }
                Err(error) => {
                    tail = None;
                    status.failed(&error);
                    let delay = backoff.next_delay();
                    failing = true;
                    tracing::warn!(projector = name, %error, retry_in_ms = delay.as_millis() as u64,
                        "projector paused");
                    tokio::select! {
                        () = token.cancelled() => return Ok(()),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    async fn step(
        &self,
        name: &str,
        tail: &mut Tail,
        token: &CancellationToken,
    ) -> Result<Stepped, ProjectorError> {
        let max = self.settings.batch_max;
        let cp = self.projections.checkpoint(name).await?;
        // A follow stream left open at `cp + 1` delivers everything from there: no read needed.
        let (mut stream, next) = match tail.take() {
            Some((stream, next)) if next == cp + 1 => (stream, next),
            _ => {
                let batch = read_bounded(&self.log, cp + 1, max).await?;
                if !batch.is_empty() {
                    let caught_up = batch.len() < max;
                    self.projections.apply(name, &batch).await?;
                    return Ok(Stepped::Applied { caught_up });
                }
                // Caught up: wait for the next append on a follow stream.
                (self.log.follow(cp + 1), cp + 1)
            }
        };
        let first = tokio::select! {
            () = token.cancelled() => return Ok(Stepped::Stopped),
            first = tokio::time::timeout(self.settings.idle_wait, stream.next()) => first,
        };
        let commit = match first {
            Err(_elapsed) => {
                // Silence normally means nothing was appended. But a follow stream can stay
                // silent while the log moves on (seen after a nats-server restart and after the
                // cluster node holding its consumer was killed): when the head is past the
                // checkpoint, drop it and read from the checkpoint instead.
                let head = self.log.last_position().await?;
                if head > cp {
                    tracing::warn!(
                        projector = name,
                        checkpoint = cp,
                        head,
                        "follow stream silent while the log moved on; reading from the checkpoint"
                    );
                    return Ok(Stepped::Behind);
                }
                *tail = Some((stream, next));
                return Ok(Stepped::Idle);
            }
            Ok(None) => return Ok(Stepped::Idle),
            Ok(Some(Err(error))) => return Err(error.into()),
            // Not the next position: read from the checkpoint instead.
            Ok(Some(Ok(commit))) if commit.position != next => return Ok(Stepped::Idle),
            Ok(Some(Ok(commit))) => commit,
        };
        let mut batch = vec![commit];
        let mut keep = true;
        // Gather what is delivered, and what arrives within LINGER of the first commit: the
        // follow stream hands commits over a few at a time, and one transaction per handful
        // costs more than the commits themselves under load.
        let linger = tokio::time::Instant::now() + LINGER;
        while batch.len() < max {
            let next = match stream.next().now_or_never() {
                Some(next) => Some(next),
                None => tokio::time::timeout_at(linger, stream.next()).await.ok(),
            };
            match next {
                Some(Some(Ok(commit))) => batch.push(commit),
                None => break,
                // An error or the end: read from the checkpoint next time.
                Some(_) => {
                    keep = false;
                    break;
                }
            }
        }
        let last = batch.last().map_or(cp, |c| c.position);
        self.projections.apply(name, &batch).await?;
        if keep {
            *tail = Some((stream, last + 1));
        }
        Ok(Stepped::Applied {
            caught_up: batch.len() < max,
        })
    }

    /// Registers the read-model gauges in `registry` and refreshes them every
    /// `gauges_interval` and shortly after applied batches, with `head = log.last_position()`
    /// and `now = clock.now()`, until `token` is cancelled.
    pub async fn run_gauges(
        &self,
        gauges: Gauges,
        clock: Arc<dyn Clock>,
        token: CancellationToken,
    ) -> Result<(), ProjectorError> {
        const MIN_GAP: Duration = Duration::from_millis(250);
        loop {
            if let Err(error) = self.update_gauges(&gauges, clock.now()).await {
                tracing::warn!(%error, "projection gauges not refreshed");
            }
            tokio::select! {
                () = token.cancelled() => return Ok(()),
                () = tokio::time::sleep(self.settings.gauges_interval) => {}
                () = self.applied.notified() => {
                    tokio::select! {
                        () = token.cancelled() => return Ok(()),
                        () = tokio::time::sleep(MIN_GAP) => {}
                    }
                }
            }
        }
    }

    /// Refreshes `gauges` once.
    pub async fn update_gauges(
        &self,
        gauges: &Gauges,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), ProjectorError> {
        let head = self.log.last_position().await?;
        self.projections.update_gauges(gauges, head, now).await?;
        Ok(())
    }

    /// Checkpoint and lag of every projector at `now`, with this process's task status.
    pub async fn health(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<ProjectorHealth>, ProjectorError> {
        let head = self.log.last_position().await?;
        let lag = self.projections.lag(head, now).await?;
        Ok(lag
            .into_iter()
            .map(|l| {
                let status = self.statuses.get(l.projector.as_str());
                ProjectorHealth {
                    // Caught up only at the log head: the task's own flag says what it last
                    // saw, and the log may have moved on since. A task running in another
                    // replica (which holds its lease) is judged by the shared checkpoint.
                    caught_up: status.map(|s| {
                        let here = s.running.load(Ordering::Relaxed);
                        (!here || s.caught_up.load(Ordering::Relaxed)) && l.events == 0
                    }),
                    last_error: status
                        .and_then(|s| s.last_error.lock().ok().and_then(|e| e.clone())),
                    checkpoint: l.position,
                    lag_events: l.events,
                    lag_seconds: l.seconds,
                    projector: l.projector,
                }
            })
            .collect())
    }
}

/// The projector names to run: `only` (checked) or all of them.
pub fn selected_projectors(only: Option<&str>) -> Result<Vec<&'static str>, ProjectorError> {
    let names = Projections::projector_names();
    match only {
        None => Ok(names.to_vec()),
        Some(name) => names
            .iter()
            .find(|n| **n == name)
            .map(|n| vec![*n])
            .ok_or_else(|| ProjectionError::UnknownProjector(name.to_owned()).into()),
    }
}

/// Connects to the read-model database, retrying with backoff while it is unreachable, until
/// `token` is cancelled (`None`). Each failure is logged and handed to `failed` (which
/// `serve` shows on `/readyz`).
pub async fn connect_with_retry(
    url: &str,
    settings: ProjectorSettings,
    token: &CancellationToken,
    failed: impl Fn(&ProjectionError),
) -> Option<Projections> {
    let mut backoff = Backoff::new(settings.backoff_min, settings.backoff_max);
    loop {
        match Projections::connect(url).await {
            Ok(p) => return Some(p),
            Err(error) => {
                failed(&error);
                let delay = backoff.next_delay();
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64,
                    "projections database unavailable");
                tokio::select! {
                    () = token.cancelled() => return None,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Rebuilds `projector` from the start of `log` into fresh tables and swaps them in without
/// stopping reads ([`rebuild_all`] for one projector). Returns the position the swapped tables
/// are at.
pub async fn rebuild(
    projections: &Projections,
    log: &EventLog,
    projector: &str,
    batch_max: usize,
    progress: impl Fn(u64, u64),
) -> Result<u64, ProjectorError> {
    let rebuilt = rebuild_all(projections, log, &[projector], batch_max, progress).await?;
    Ok(rebuilt.first().map_or(0, |(_, position)| *position))
}

/// Rebuilds every projector of `projectors` from ONE read of `log` (each commit read and
/// decoded once, in reads of `batch_max` commits, and applied to every projector's fresh
/// tables) and swaps them all in, in one transaction, without stopping reads (see
/// `Projections::rebuild_projectors`). `progress(done, head)` is called after every gathering
/// of commits. Returns, per projector, the position its swapped tables are at.
pub async fn rebuild_all(
    projections: &Projections,
    log: &EventLog,
    projectors: &[&str],
    batch_max: usize,
    progress: impl Fn(u64, u64),
) -> Result<Vec<(&'static str, u64)>, ProjectorError> {
    let head = log.last_position().await?;
    let batch_max = batch_max.max(1);
    let rebuilt = projections
        .rebuild_projectors(
            projectors,
            head,
            |from| {
                let log = log.clone();
                async move { log.read_from(from, batch_max).await }
            },
            progress,
        )
        .await?;
    Ok(rebuilt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_projector_name_is_refused() {
        assert!(selected_projectors(Some("nope")).is_err());
        assert_eq!(
            selected_projectors(None).unwrap(),
            Projections::projector_names().to_vec()
        );
        assert_eq!(
            selected_projectors(Some("requests")).unwrap(),
            vec!["requests"]
        );
    }
}
