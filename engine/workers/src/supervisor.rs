//! The deadline supervisor: fires reminders, pre-breach warnings, overdue marks and
//! escalations when their instants come, through the ordinary command path.
//!
//! **Invariant:** no timer lives only in memory. The deadlines are facts in the requests'
//! events; the supervisor keeps an index `request id → next wakeup` rebuilt from the log at
//! start (position 0) and kept fresh by following it. Firing is idempotent: each firing's
//! command id is a UUIDv5 of (request, kind, deadline, due instant), so a restart, a catch-up
//! after downtime, or a second supervisor submitting the same firing is a duplicate, never a
//! second event.
//!
//! [`tick`] is one deterministic step (catch up with the log, fire what is due at `now`, in
//! due-time order, each recorded as of the instant it was due — `occurred_at` is that instant,
//! `recorded_at` the wall clock — so that after downtime every escalation level the request
//! would have reached is recorded at the instant it would have been reached); [`run`] loops it against the service's clock, sleeping until the earliest
//! wakeup, a new commit, or shutdown.
//!
//! Memory is bounded: one index entry (id, instant) per request with something left to fire,
//! plus at most `RECENT_MAX` recently seen request states, used to fold new commits without
//! reading the request's history again.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use engine_core::{Request, supervision};
use futures::{FutureExt, StreamExt};
use schemas::{Actor, Command, CommandKind, RequestId, Role, Timestamp};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use engine_write::commands::{CommandError, CommandRequest, CommandService};

/// Commits read from the log per batch while catching up.
const READ_BATCH: usize = 512;

/// Request states kept for folding commits without a log read.
const RECENT_MAX: usize = 4096;

/// How long a request the core keeps reporting as due, with nothing left to fire, is parked
/// before it is looked at again (unless a new commit touches it first).
const PARK: chrono::Duration = chrono::Duration::minutes(1);

/// Rounds of firing for one request within one tick (a firing can make the next one due,
/// e.g. an overdue mark then an escalation; a round ends after each of those); bounds the
/// work if the core kept answering.
const MAX_ROUNDS_PER_REQUEST: usize = 32;

/// Settings of the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisorConfig {
    /// Longest sleep in milliseconds between ticks even if nothing is due (guards against
    /// clock jumps and lost wake-ups).
    pub max_sleep_ms: u64,
    /// Milliseconds to wait after an error (log unavailable) before trying again.
    pub retry_delay_ms: u64,
}

impl Default for SupervisorConfig {
    fn default() -> SupervisorConfig {
        SupervisorConfig {
            max_sleep_ms: 60_000,
            retry_delay_ms: 1_000,
        }
    }
}

/// Why a supervisor step failed.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The event log could not be read.
    #[error("event log: {0}")]
    Log(String),
    /// A command could not be submitted for a reason other than a refusal.
    #[error("command for request {request_id}: {source}")]
    Command {
        /// The request.
        request_id: RequestId,
        /// What went wrong.
        #[source]
        source: CommandError,
    },
}

/// The supervisor's memory: log position read so far and the next wakeup of each open
/// request (ids and instants). Besides that it folds commits into a small, bounded set of
/// recently seen request states, so new and busy requests need no extra log read.
#[derive(Debug, Clone, Default)]
pub struct SupervisorState {
    /// Highest log position folded into the index.
    position: u64,
    /// Next wakeup per request with anything left to fire.
    wakeups: HashMap<RequestId, Timestamp>,
    /// The same entries, ordered by instant.
    queue: BTreeSet<(Timestamp, RequestId)>,
    /// Requests touched by commits since their wakeup was last computed.
    dirty: HashSet<RequestId>,
    /// Recently seen requests, complete up to the commits read so far (bounded; cleared
    /// whole when full).
    recent: HashMap<RequestId, Request>,
}

impl SupervisorState {
    /// An empty state: the first [`tick`] reads the whole log from position 0.
    pub fn new() -> SupervisorState {
        SupervisorState::default()
    }

    /// Highest log position seen.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Number of requests with a pending wakeup.
    pub fn len(&self) -> usize {
        self.wakeups.len()
    }

    /// True when no request has a pending wakeup.
    pub fn is_empty(&self) -> bool {
        self.wakeups.is_empty()
    }

    /// The earliest pending wakeup.
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// The pending wakeup of one request.
    pub fn wakeup_of(&self, request_id: RequestId) -> Option<Timestamp> {
        self.wakeups.get(&request_id).copied()
    }

    /// Notes a commit read from the log: its request's wakeup is recomputed at the next
    /// refresh. Commits must be observed in log order. Commits of the engine's own streams
    /// (reference data, digests) only advance the position.
    pub fn observe_commit(&mut self, logged: &schemas::LoggedCommit) {
        if logged.position <= self.position && self.position > 0 {
            return; // already seen (a follow and a read can overlap)
        }
        self.position = logged.position;
        let commit = &logged.commit;
        let Some(first) = commit.events.first() else {
            return;
        };
        if !first.event.kind().is_request_event() {
            return;
        }
        let id = commit.request_id;
        self.dirty.insert(id);
        // Fold into the recent state when it is complete up to this commit.
        let folded = match self.recent.get_mut(&id) {
            Some(request) if request.version() + 1 == first.version => {
                commit.events.iter().for_each(|e| request.apply(e));
                true
            }
            Some(_) => false,
            None if first.version == 1 => {
                if self.recent.len() >= RECENT_MAX {
                    self.recent.clear();
                }
                let mut request = Request::new(id);
                commit.events.iter().for_each(|e| request.apply(e));
                self.recent.insert(id, request);
                true
            }
            None => false,
        };
        if !folded {
            self.recent.remove(&id);
        }
    }

    fn remember(&mut self, request: &Request) {
        if self.recent.len() >= RECENT_MAX {
            self.recent.clear();
        }
        self.recent.insert(request.id(), request.clone());
    }

    fn set(&mut self, request_id: RequestId, wakeup: Option<Timestamp>) {
        if let Some(old) = self.wakeups.remove(&request_id) {
            self.queue.remove(&(old, request_id));
        }
        if let Some(at) = wakeup {
            self.wakeups.insert(request_id, at);
            self.queue.insert((at, request_id));
        }
    }

    fn due_at(&self, now: Timestamp) -> Vec<RequestId> {
        self.queue
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect()
    }
}

/// What one [`tick`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Commits read from the log during catch-up.
    pub commits_read: usize,
    /// Commands that recorded new events, in firing order.
    pub fired: Vec<(RequestId, CommandKind)>,
    /// Commands that had already been recorded (by a restart, or another supervisor).
    pub duplicates: usize,
    /// Commands the core refused (e.g. the deadline moved since the index was built).
    pub refused: usize,
    /// Requests with a pending wakeup after the tick.
    pub pending: usize,
    /// The earliest pending wakeup after the tick.
    pub next_wakeup: Option<Timestamp>,
}

/// The actor supervision commands are recorded under.
pub fn supervisor_actor() -> Actor {
    Actor {
        id: "supervisor".into(),
        role: Role::System,
        unit: None,
    }
}

/// The deterministic id of one firing: the same firing always gets the same id.
pub fn firing_id(request_id: RequestId, command: &Command) -> Uuid {
    let key = match command {
        Command::Remind(c) => format!("remind:{:?}:{}", c.deadline, c.due_at.to_rfc3339()),
        Command::Warn(c) => format!("warn:{:?}:{}", c.deadline, c.due_at.to_rfc3339()),
        Command::MarkOverdue(c) => {
            format!("mark_overdue:{:?}:{}", c.deadline, c.due_at.to_rfc3339())
        }
        Command::Escalate(c) => format!("escalate:{:?}:{}", c.level, c.to),
        other => format!(
            "{}:{}",
            other.kind().as_str(),
            serde_json::to_string(other).unwrap_or_default()
        ),
    };
    Uuid::new_v5(
        &schemas::envelope::ID_NAMESPACE,
        format!("supervision:{request_id}:{key}").as_bytes(),
    )
}

/// Catches up with the log, then fires everything due at `now`, in due-time order.
///
/// Deterministic for a given log and `now`; safe to run from several supervisors at once.
pub async fn tick(
    service: &CommandService,
    state: &mut SupervisorState,
    now: Timestamp,
) -> Result<TickReport, SupervisorError> {
    let commits_read = catch_up(service, state).await?;
    let mut report = fire_due(service, state, now).await?;
    report.commits_read += commits_read;
    Ok(report)
}

/// Fires what is due at `now` from what the state has observed so far (no catch-up read
/// first: [`run`] feeds it from the log's live stream).
async fn fire_due(
    service: &CommandService,
    state: &mut SupervisorState,
    now: Timestamp,
) -> Result<TickReport, SupervisorError> {
    let mut report = TickReport::default();
    refresh_dirty(service, state).await?;
    let mut submitted = false;

    for request_id in state.due_at(now) {
        for round in 0..MAX_ROUNDS_PER_REQUEST {
            if round > 0 {
                // Fold in what the last round recorded before deciding again.
                report.commits_read += catch_up(service, state).await?;
            }
            let Some(request) = current(service, state, request_id).await? else {
                break;
            };
            let mut firings = supervision::due_firings(&request, now, service.policy());
            if firings.is_empty() {
                break;
            }
            firings.sort_by_key(|(at, command)| (*at, firing_rank(command)));
            // An overdue mark or an escalation can make an escalation due before the
            // firings after it: fire up to the first of them, then decide again.
            if let Some(stop) = firings
                .iter()
                .position(|(_, c)| matches!(c, Command::MarkOverdue(_) | Command::Escalate(_)))
            {
                firings.truncate(stop + 1);
            }
            let mut recorded = false;
            for (due_at, command) in firings {
                let kind = command.kind();
                submitted = true;
                // Recorded as of the instant it was due: after downtime an escalation is
                // reached when the policy says, and the next level counts from there.
                let outcome = service
                    .execute_as_of(
                        CommandRequest {
                            request_id,
                            command_id: firing_id(request_id, &command),
                            correlation_id: None,
                            actor: supervisor_actor(),
                            command,
                        },
                        due_at,
                    )
                    .await;
                match outcome {
                    Ok(outcome) if outcome.duplicate => report.duplicates += 1,
                    // Fired before, decided then with other details (the policy in force may
                    // have changed since): the firing stays the one recorded.
                    Err(CommandError::KeyReused { .. }) => {
                        tracing::debug!(%request_id, command = kind.as_str(), "fired before");
                        report.duplicates += 1;
                    }
                    Ok(_) => {
                        recorded = true;
                        report.fired.push((request_id, kind));
                    }
                    Err(CommandError::Refused(refusal)) => {
                        tracing::debug!(%request_id, command = kind.as_str(), %refusal, "supervision command refused");
                        report.refused += 1;
                    }
                    Err(error) => {
                        return Err(SupervisorError::Command {
                            request_id,
                            source: error,
                        });
                    }
                }
            }
            if !recorded {
                break;
            }
        }
        // Our own commits (and anyone else's) are folded in by the next catch-up; recompute
        // this request now so the queue does not offer it again in this tick.
        state.dirty.insert(request_id);
    }
    if submitted {
        report.commits_read += catch_up(service, state).await?;
    }
    refresh_dirty(service, state).await?;
    // A request the core still reports as due at `now` with nothing left to fire would make
    // the loop spin; park it (a new commit to it, or the park's end, brings it back).
    for request_id in state.due_at(now) {
        tracing::debug!(%request_id, "nothing to fire although due; parked");
        state.set(request_id, Some(now + PARK));
    }
    report.pending = state.len();
    report.next_wakeup = state.next_wakeup();
    Ok(report)
}

/// Order of firings due at the same instant: reminder → warning → overdue → escalation.
fn firing_rank(command: &Command) -> u8 {
    match command {
        Command::Remind(_) => 0,
        Command::Warn(_) => 1,
        Command::MarkOverdue(_) => 2,
        Command::Escalate(_) => 3,
        _ => 4,
    }
}

/// Reads every commit after the state's position and marks their requests dirty.
async fn catch_up(
    service: &CommandService,
    state: &mut SupervisorState,
) -> Result<usize, SupervisorError> {
    let mut read = 0;
    loop {
        let batch = service
            .log()
            .read_from(state.position + 1, READ_BATCH)
            .await
            .map_err(|e| SupervisorError::Log(e.to_string()))?;
        if batch.is_empty() {
            return Ok(read);
        }
        read += batch.len();
        for logged in &batch {
            state.observe_commit(logged);
        }
        if batch.len() < READ_BATCH {
            return Ok(read);
        }
    }
}

/// Recomputes the wakeup of every dirty request.
async fn refresh_dirty(
    service: &CommandService,
    state: &mut SupervisorState,
) -> Result<(), SupervisorError> {
    let dirty: Vec<RequestId> = state.dirty.drain().collect();
    for request_id in dirty {
        match current(service, state, request_id).await {
            Ok(Some(request)) => state.set(
                request_id,
                supervision::next_wakeup(&request, service.policy()),
            ),
            Ok(None) => state.set(request_id, None),
            Err(error) => {
                // Keep it dirty so the next attempt recomputes it.
                state.dirty.insert(request_id);
                return Err(error);
            }
        }
    }
    Ok(())
}

/// A request's current state: the folded one when the state holds it complete, else read
/// from the log (and remembered).
async fn current(
    service: &CommandService,
    state: &mut SupervisorState,
    request_id: RequestId,
) -> Result<Option<Request>, SupervisorError> {
    if let Some(request) = state.recent.get(&request_id) {
        return Ok(Some(request.clone()));
    }
    let loaded = load_fresh(service, request_id).await?;
    if let Some(request) = &loaded {
        state.remember(request);
    }
    Ok(loaded)
}

/// A request's state read from the log itself, not from a cache another engine's writes may
/// have outdated. `None` when the request has no events.
async fn load_fresh(
    service: &CommandService,
    request_id: RequestId,
) -> Result<Option<Request>, SupervisorError> {
    match service.history(request_id).await {
        Ok(events) => Ok(Some(Request::from_history(request_id, events.iter()))),
        Err(CommandError::NotFound(_)) => Ok(None),
        Err(error) => Err(SupervisorError::Command {
            request_id,
            source: error,
        }),
    }
}

/// Runs the supervisor until `shutdown` is cancelled: rebuilds the index from the whole log,
/// then ticks whenever the earliest wakeup comes or the log grows.
pub async fn run(
    service: CommandService,
    cfg: SupervisorConfig,
    shutdown: CancellationToken,
) -> Result<(), SupervisorError> {
    let mut state = SupervisorState::new();
    let max_sleep = Duration::from_millis(cfg.max_sleep_ms.max(1));
    let retry = Duration::from_millis(cfg.retry_delay_ms.max(1));
    let mut follow = None;
    // The first step reads the whole log; later ones only what the live stream brought,
    // with a full catch-up whenever the timer (not the stream) woke us, as a safety net.
    let mut full = true;
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let now = service.clock().now();
        let step = if full {
            tick(&service, &mut state, now).await
        } else {
            fire_due(&service, &mut state, now).await
        };
        let sleep_for = match step {
            Ok(report) => {
                if !report.fired.is_empty() {
                    tracing::info!(
                        fired = report.fired.len(),
                        pending = report.pending,
                        "supervision fired"
                    );
                }
                match report.next_wakeup {
                    Some(at) => (at - service.clock().now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .min(max_sleep),
                    None => max_sleep,
                }
            }
            Err(error) => {
                tracing::warn!(%error, "supervision step failed; retrying");
                full = true;
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(retry) => {}
                }
                continue;
            }
        };
        // Wake early when the log grows: a new or changed request may be due sooner.
        let commits = follow.get_or_insert_with(|| service.log().follow(state.position() + 1));
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(sleep_for) => full = true,
            item = commits.next() => match item {
                Some(Ok(logged)) => {
                    full = false;
                    state.observe_commit(&logged);
                    // Fold whatever else is already there before the next step.
                    while let Some(Some(Ok(logged))) = commits.next().now_or_never() {
                        state.observe_commit(&logged);
                    }
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "following the log failed; reopening");
                    follow = None;
                    full = true;
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(retry) => {}
                    }
                }
                None => {
                    follow = None;
                    full = true;
                }
            },
        }
    }
}
