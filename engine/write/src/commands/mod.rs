//! The command service: load a request, let the core decide, record the result.
//!
//! For every command: take the request's in-process lock, load its state (from the bounded
//! cache or by replaying its commits), recognise a retried command by its id, ask
//! `engine_core::Request::decide`, wrap the events in sealed, hash-chained envelopes, and
//! append them as one [`Commit`] naming the request's last position. When another writer got
//! there first the log answers `Conflict`: the cache entry is dropped, the request reloaded
//! and the command decided again (a bounded number of times). State changes only after a
//! successful append, so a refused or failed command leaves nothing behind. Other replicas
//! write to the same log, so a cached state may be behind it: the append's expected position
//! catches that for an accepted command, and a refusal (or a no-op, or a read through
//! [`CommandService::load`]) decided on a cached state first checks the request's last
//! position in the log ([`EventLog::head`]) and, when it moved, is decided again on a fresh
//! load.
//!
//! Idempotency keys are permanent: each commit is appended with the binding of its id to its
//! request and command ([`binding`], [`engine_log::bindings`]). A retry (same id, same
//! request, same command from the same sender) answers the original outcome with
//! `duplicate: true`; the same id with anything else answers [`CommandError::KeyReused`]
//! (409 `idempotency_key_reused`) and records nothing, however long after the first use.
//!
//! Intake ([`intake`]) turns an [`IntakeDocument`](schemas::IntakeDocument) into a `receive`
//! command, with the request id derived from `<channel>:<external_id>` keyed with the
//! instance's secret ([`IntakeIds`]: a resubmission finds the same request, an outsider cannot
//! compute the id). The contact itself goes into the [`ContactStore`] only once the core has decided
//! that this `receive` creates the request, under the request's lock and before the commit is
//! appended: a retried or duplicate intake never changes the contact a request was received
//! with, and a contact whose request was then not recorded is discarded. The one command that
//! changes a stored contact is `correct_contact`, which travels only with its data
//! ([`ContactWrite::Correction`], from the contact route) and replaces the record once its
//! event is appended ([`contact`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use engine_core::{Clock, Context, Policy, Refusal};
use schemas::{
    Actor, Command, CommandKind, Commit, CommitHeader, EventEnvelope, RequestId, Timestamp,
};
use tracing::Instrument;
use uuid::Uuid;

use crate::cache::{CachedRequest, RequestCache};
use crate::contacts::ContactStore;
use crate::intake_ids::IntakeIds;
use crate::metrics::Metrics;
use engine_log::clock::IdSource;
use engine_log::{EventLog, LogError};

mod binding;
mod contact;
mod error;
mod fresh;
pub mod intake;
pub mod links;
pub mod place;
mod state;

pub use contact::ContactWrite;
pub use contact::{MAX_CONTACT_FIELD_CHARS, validate_contact};

pub use error::{CommandError, EXPECTED_VERSION_FIELD, IDEMPOTENCY_KEY_FIELD};
pub use intake::{
    MAX_ATTACHMENTS, MAX_EXTERNAL_ID_CHARS, MAX_TEXT_CHARS, RAISED_AT_MAX_AGE_DAYS, validate_intake,
};
pub use place::{MAX_ADDRESS_CHARS, locate_intake};

/// How often a command is decided again after losing a race to another writer.
const MAX_ATTEMPTS: u32 = 8;

/// Namespace of the `receive` command id derived from a request id.
pub const RECEIVE_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_3c1e_8d2a_4f0b_9a57_2c44_1e0d_b002);
/// Namespace of contact references derived from a request id.
pub const CONTACT_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_3c1e_8d2a_4f0b_9a57_2c44_1e0d_b003);

/// One command addressed to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRequest {
    /// The request.
    pub request_id: RequestId,
    /// Idempotency key: a command with an id already recorded is not applied again, and the
    /// id is bound to this request and command for good.
    pub command_id: Uuid,
    /// Conversation id; defaults to the command id.
    pub correlation_id: Option<Uuid>,
    /// Who asks.
    pub actor: Actor,
    /// The command.
    pub command: Command,
}

/// What a command recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutcome {
    /// The request.
    pub request_id: RequestId,
    /// The request's version after the command.
    pub version: u64,
    /// Global log position of the commit.
    pub position: u64,
    /// The events recorded.
    pub events: Vec<EventEnvelope>,
    /// The command had already been recorded: this is the original outcome, nothing new.
    pub duplicate: bool,
}

/// What an intake recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeOutcome {
    /// The request (derived from channel and external id).
    pub request_id: RequestId,
    /// False when the document had been received before.
    pub created: bool,
    /// The request's current version.
    pub version: u64,
}

/// Loads, decides, records. Cheap to clone.
#[derive(Clone)]
pub struct CommandService {
    inner: Arc<Inner>,
}

struct Inner {
    log: EventLog,
    policy: Arc<Policy>,
    clock: Arc<dyn Clock>,
    contacts: ContactStore,
    metrics: Metrics,
    ids: IdSource,
    intake_ids: IntakeIds,
    cache: Mutex<RequestCache>,
    /// One async lock per request being written, so commands on one request in this
    /// process run one after the other instead of racing on the log.
    locks: Mutex<HashMap<RequestId, Weak<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for CommandService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandService")
            .field("log", &self.inner.log.describe())
            .finish()
    }
}

/// The default bound of the request cache.
pub const DEFAULT_CACHE_REQUESTS_MAX: usize = 10_000;

impl CommandService {
    /// A service over `log` with the default cache bound.
    pub fn new(
        log: EventLog,
        policy: Arc<Policy>,
        clock: Arc<dyn Clock>,
        contacts: ContactStore,
        metrics: Metrics,
        intake_ids: IntakeIds,
    ) -> CommandService {
        CommandService::with_cache_capacity(
            log,
            policy,
            clock,
            contacts,
            metrics,
            intake_ids,
            DEFAULT_CACHE_REQUESTS_MAX,
        )
    }

    /// A service whose cache holds at most `requests_max` requests.
    pub fn with_cache_capacity(
        log: EventLog,
        policy: Arc<Policy>,
        clock: Arc<dyn Clock>,
        contacts: ContactStore,
        metrics: Metrics,
        intake_ids: IntakeIds,
        requests_max: usize,
    ) -> CommandService {
        CommandService {
            inner: Arc::new(Inner {
                log,
                policy,
                clock,
                contacts,
                metrics,
                ids: IdSource,
                intake_ids,
                cache: Mutex::new(RequestCache::new(requests_max)),
                locks: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The event log.
    pub fn log(&self) -> &EventLog {
        &self.inner.log
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The clock commands are timed by.
    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    /// The contact store.
    pub fn contacts(&self) -> &ContactStore {
        &self.inner.contacts
    }

    /// How intake request ids are derived.
    pub fn intake_ids(&self) -> &IntakeIds {
        &self.inner.intake_ids
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// A fresh command id, for callers that did not send an idempotency key.
    pub fn fresh_command_id(&self) -> Uuid {
        self.inner.ids.mint()
    }

    /// Decides and records one command.
    pub async fn execute(&self, request: CommandRequest) -> Result<CommandOutcome, CommandError> {
        self.execute_inner(request, None, None, None).await
    }

    /// [`CommandService::execute`] only if the request is still at `expected_version` (the
    /// version the caller last saw; `None` expects nothing): otherwise
    /// [`CommandError::VersionMismatch`] and nothing is recorded. A retry of a command already
    /// recorded answers its original outcome whatever version it names.
    pub async fn execute_expecting(
        &self,
        request: CommandRequest,
        expected_version: Option<u64>,
    ) -> Result<CommandOutcome, CommandError> {
        self.execute_inner(request, None, expected_version, None)
            .await
    }

    /// Decides and records one command as of `at`, an instant not after now: the events'
    /// `occurred_at` (and the decision's `now`) is `at`, raised to the request's last event
    /// if that is later, so a history never runs backwards; `recorded_at` stays the wall
    /// clock. The supervisor worker records a firing caught up after downtime at the instant it
    /// was due.
    pub async fn execute_as_of(
        &self,
        request: CommandRequest,
        at: Timestamp,
    ) -> Result<CommandOutcome, CommandError> {
        self.execute_with(request, None, Some(at)).await
    }

    /// Decides and records one command, writing `contact` to the contact store once the core
    /// has decided to record it (see [`ContactWrite`]).
    pub async fn execute_with(
        &self,
        request: CommandRequest,
        contact: Option<ContactWrite<'_>>,
        as_of: Option<Timestamp>,
    ) -> Result<CommandOutcome, CommandError> {
        self.execute_inner(request, contact, None, as_of).await
    }

    /// One command with its contact write, expected version and instant, traced and counted.
    async fn execute_inner(
        &self,
        request: CommandRequest,
        contact: Option<ContactWrite<'_>>,
        expected_version: Option<u64>,
        as_of: Option<Timestamp>,
    ) -> Result<CommandOutcome, CommandError> {
        let kind = request.command.kind();
        let back_reference = links::back_reference(&request);
        let span = tracing::info_span!(
            "command",
            request_id = %request.request_id,
            command_id = %request.command_id,
            command = kind.as_str(),
        );
        let mut result = self
            .execute_locked(request, contact, expected_version, as_of)
            .instrument(span.clone())
            .await;
        // A link's second commit, on the original (`links`), also after a retried first one.
        if let (Ok(_), Some(back)) = (&result, back_reference) {
            let recorded = self
                .record_back_reference(back)
                .instrument(span.clone())
                .await;
            if let Err(error) = recorded {
                result = Err(error);
            }
        }
        let _entered = span.enter();
        match &result {
            Ok(outcome) if outcome.duplicate => {
                self.inner.metrics.command(kind.as_str(), "duplicate");
                tracing::info!(version = outcome.version, "command already recorded");
            }
            Ok(outcome) => {
                self.inner.metrics.command(kind.as_str(), "applied");
                tracing::info!(
                    version = outcome.version,
                    position = outcome.position,
                    "recorded"
                );
            }
            Err(error) => {
                self.inner.metrics.command(kind.as_str(), error.outcome());
                if let CommandError::Refused(refusal) = error {
                    self.inner.metrics.refusal(refusal.code());
                    tracing::info!(code = refusal.code(), "refused");
                } else if matches!(error, CommandError::Internal(_)) {
                    tracing::error!(error = %error, "command failed");
                } else {
                    tracing::warn!(error = %error, "command failed");
                }
            }
        }
        result
    }

    async fn execute_locked(
        &self,
        request: CommandRequest,
        contact: Option<ContactWrite<'_>>,
        expected_version: Option<u64>,
        as_of: Option<Timestamp>,
    ) -> Result<CommandOutcome, CommandError> {
        contact::check_pairing(request.command.kind(), contact)?;
        let lock = self.lock_for(request.request_id);
        let _guard = lock.lock().await;
        // A `receive` normally creates its request: on a cache miss the first attempt
        // assumes the request is new instead of reading the log for it. The log's expected
        // position (0) keeps that safe: should the request exist, the append answers
        // duplicate (the same receive) or conflict, and the next attempt loads it.
        let mut assume_new = request.command.kind() == CommandKind::Receive;
        for _attempt in 0..MAX_ATTEMPTS {
            match self
                .attempt(&request, assume_new, contact, expected_version, as_of)
                .await
            {
                Err(CommandError::Conflict { .. }) => {
                    if !assume_new {
                        self.inner.metrics.conflict();
                    }
                    assume_new = false;
                    self.forget(request.request_id);
                }
                other => return other,
            }
        }
        Err(CommandError::Conflict {
            request_id: request.request_id,
        })
    }

    /// One load-decide-append round. With `assume_new`, a request that is not cached is
    /// taken to have no commits (expected position 0) rather than read from the log.
    async fn attempt(
        &self,
        request: &CommandRequest,
        assume_new: bool,
        contact: Option<ContactWrite<'_>>,
        expected_version: Option<u64>,
        as_of: Option<Timestamp>,
    ) -> Result<CommandOutcome, CommandError> {
        let id = request.request_id;
        // Whether the state was just read from the log (else it is a cache entry, or assumed
        // new, and another replica may have written since).
        let (cached, fresh) = match (assume_new, self.cached(id)) {
            (_, Some(hit)) => (hit, false),
            (true, None) => (CachedRequest::empty(id), false),
            (false, None) => (self.state(id).await?, true),
        };
        // Rights before facts: the role and the request's visibility to the actor come
        // before its existence, a recorded command or its stage (`Request::admit`).
        if let Err(refusal) = cached.request.admit(&request.actor, request.command.kind()) {
            let error = match refusal {
                Refusal::DoesNotExist => CommandError::NotFound(id),
                other => CommandError::Refused(other),
            };
            return Err(self.confirmed(id, cached.position, fresh, error).await);
        }
        contact::check_data(contact)?;
        let binding = request.binding();
        let contact_ref = cached.request.contact_ref().cloned();
        if cached.commit_ids.contains_key(&request.command_id) {
            self.check_retry(request.command_id, &binding).await?;
            self.rewrite_on_retry(contact, contact_ref.as_ref(), id, request.command_id)
                .await?;
            return self.original_outcome(id, request.command_id).await;
        }
        if let Some(expected) = expected_version {
            let current = cached.request.version();
            if expected != current {
                // Judged against the log, not a cache another replica may have overtaken.
                let error = CommandError::VersionMismatch { expected, current };
                return Err(self.confirmed(id, cached.position, fresh, error).await);
            }
        }
        let peer = self.peer_of(request).await?;
        let recorded_at = self.inner.clock.now();
        let now = decision_instant(as_of, recorded_at, cached.last_occurred_at);
        let context = Context {
            now,
            actor: &request.actor,
            command_id: request.command_id,
            policy: &self.inner.policy,
            peer: peer.as_ref(),
        };
        let events = match cached.request.decide(&request.command, &context) {
            Ok(events) => events,
            Err(refusal) => {
                let error = CommandError::Refused(refusal);
                return Err(self.confirmed(id, cached.position, fresh, error).await);
            }
        };
        if events.is_empty() && !fresh && !self.is_current(id, cached.position).await? {
            return Err(CommandError::Conflict { request_id: id });
        }
        if events.is_empty() {
            // Nothing to record (an idempotent no-op decided by the core).
            return Ok(CommandOutcome {
                request_id: id,
                version: cached.request.version(),
                position: cached.position,
                events: Vec::new(),
                duplicate: false,
            });
        }
        let commit = CommitHeader {
            commit_id: request.command_id,
            stream: id,
            command: request.command.kind(),
            actor: request.actor.clone(),
            occurred_at: now,
            recorded_at,
            correlation_id: request.correlation_id.unwrap_or(request.command_id),
            after_version: cached.request.version(),
            after_hash: cached.last_hash.clone(),
        }
        .seal(events, |_| self.inner.ids.mint());
        let appended = self
            .append_with_contact(
                &commit,
                cached.position,
                &binding,
                contact,
                contact_ref.as_ref(),
            )
            .await?;
        if appended.duplicate {
            self.forget(id);
            self.rewrite_on_retry(contact, contact_ref.as_ref(), id, request.command_id)
                .await?;
            return self.original_outcome(id, request.command_id).await;
        }
        let mut next = cached;
        for envelope in &commit.events {
            next.request.apply(envelope);
        }
        next.position = appended.position;
        next.last_hash = commit.last_hash().unwrap_or(&next.last_hash).to_string();
        next.last_occurred_at = Some(now);
        next.commit_ids.insert(commit.commit_id, appended.position);
        let version = next.request.version();
        self.remember(id, next);
        self.write_after_append(contact, contact_ref.as_ref(), id)
            .await?;
        Ok(CommandOutcome {
            request_id: id,
            version,
            position: appended.position,
            events: commit.events,
            duplicate: false,
        })
    }

    /// Appends `commit` after `expected` under `binding`, writing the intake's contact first
    /// (and discarding it again when the commit turned out not to be recorded); the cached
    /// state is forgotten on any failure, since it may no longer match the log.
    async fn append_with_contact(
        &self,
        commit: &Commit,
        expected: u64,
        binding: &engine_log::Binding,
        contact: Option<ContactWrite<'_>>,
        contact_ref: Option<&schemas::ContactRef>,
    ) -> Result<engine_log::Appended, CommandError> {
        let id = commit.request_id;
        let stored_now = self.write_before_append(contact, contact_ref, id).await?;
        let started = Instant::now();
        let appended = self.inner.log.append_bound(commit, expected, binding).await;
        // The request existed after all, or the log refused the commit: what this attempt
        // stored belongs to no request. An unavailable log may still have recorded it (an
        // ambiguous append), so the contact stays for the retry that finds the request.
        let not_recorded = match &appended {
            Ok(appended) => appended.duplicate,
            Err(LogError::Unavailable(_)) => false,
            Err(_) => true,
        };
        if stored_now.is_some() && not_recorded {
            self.discard_contact(stored_now).await;
        }
        self.inner
            .metrics
            .append_duration(started.elapsed().as_secs_f64());
        appended.map_err(|error| {
            self.forget(id);
            error.into()
        })
    }
}

/// The instant a command is decided at: now, or the caught-up instant `as_of` (never after now,
/// never before the request's last event, so a history never runs backwards).
fn decision_instant(
    as_of: Option<Timestamp>,
    recorded_at: Timestamp,
    last_occurred_at: Option<Timestamp>,
) -> Timestamp {
    match as_of {
        Some(at) => at.min(recorded_at).max(last_occurred_at.unwrap_or(at)),
        None => recorded_at,
    }
}
