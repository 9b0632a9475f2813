//! The command service: load a request, let the core decide, record the result.
//!
//! For every command: take the request's in-process lock, load its state (from the bounded
//! cache or by replaying its commits), recognise a retried command by its id, ask
//! `engine_core::Request::decide`, wrap the events in sealed, hash-chained envelopes, and
//! append them as one [`Commit`] naming the request's last position. When another writer got
//! there first the log answers `Conflict`: the cache entry is dropped, the request reloaded
//! and the command decided again (a bounded number of times). State changes only after a
//! successful append, so a refused or failed command leaves nothing behind.
//!
//! Intake turns an [`IntakeDocument`] into a `receive` command: it validates at the edge,
//! derives the request id from `<channel>:<external_id>` keyed with the instance's secret
//! ([`IntakeIds`]: a resubmission finds the same request, an outsider cannot compute the id)
//! and puts only a contact reference into the event. The contact itself goes into
//! the [`ContactStore`] only once the core has decided that this `receive` creates the
//! request, under the request's lock and before the commit is appended: a retried or duplicate
//! intake never changes the contact a request was received with, and a contact whose request
//! was then not recorded is discarded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use engine_core::{Clock, Context, Policy, Refusal, Request};
use schemas::command::Receive;
use schemas::{
    Actor, Command, CommandKind, Commit, ContactRef, ErrorBody, EventEnvelope, IntakeDocument,
    LoggedCommit, RequestId,
};
use tracing::Instrument;
use uuid::Uuid;

use crate::cache::{CachedRequest, RequestCache};
use crate::clock::IdSource;
use crate::contacts::{ContactError, ContactStore, PutOutcome};
use crate::intake_ids::IntakeIds;
use crate::log::{EventLog, LogError};
use crate::metrics::Metrics;
use schemas::intake::ResidentContact;

/// How often a command is decided again after losing a race to another writer.
const MAX_ATTEMPTS: u32 = 8;

/// Namespace of the `receive` command id derived from a request id.
pub const RECEIVE_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_3c1e_8d2a_4f0b_9a57_2c44_1e0d_b002);
/// Namespace of contact references derived from a request id.
pub const CONTACT_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_3c1e_8d2a_4f0b_9a57_2c44_1e0d_b003);

/// Most attachments an intake document may carry.
pub const MAX_ATTACHMENTS: usize = 20;
/// Longest accepted text, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;
/// How far in the past an intake's `raised_at` may lie, in days: a live channel forwards
/// what residents raised recently; history comes through `bianmin import`.
pub const RAISED_AT_MAX_AGE_DAYS: i64 = 366;
/// Longest accepted external id, in characters.
pub const MAX_EXTERNAL_ID_CHARS: usize = 128;

/// One command addressed to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRequest {
    /// The request.
    pub request_id: RequestId,
    /// Idempotency key: a command with an id already recorded is not applied again.
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

/// Why a command or query failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The input is not acceptable as given (checked at the edge, before the core).
    #[error("{message}")]
    Invalid {
        /// Stable code.
        code: String,
        /// Explanation.
        message: String,
        /// The offending field.
        field: Option<String>,
    },
    /// The core refused the command; nothing was recorded.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// No such request.
    #[error("request {0} not found")]
    NotFound(RequestId),
    /// Other writers kept winning the race for the request; nothing was recorded.
    #[error("request {request_id} kept changing; try again")]
    Conflict {
        /// The request.
        request_id: RequestId,
    },
    /// The event log (or contact store) cannot be reached; nothing was recorded.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A fault in the engine or its data.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CommandError {
    fn invalid(code: &str, field: &str, message: impl Into<String>) -> CommandError {
        CommandError::Invalid {
            code: code.into(),
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// The stable error code.
    pub fn code(&self) -> String {
        match self {
            CommandError::Invalid { code, .. } => code.clone(),
            CommandError::Refused(refusal) => refusal.code().to_string(),
            CommandError::NotFound(_) => "not_found".into(),
            CommandError::Conflict { .. } => "conflict".into(),
            CommandError::Unavailable(_) => "unavailable".into(),
            CommandError::Internal(_) => "internal".into(),
        }
    }

    /// The structured body every edge returns.
    pub fn body(&self) -> ErrorBody {
        let field = match self {
            CommandError::Invalid { field, .. } => field.clone(),
            CommandError::Refused(refusal) => refusal.field().map(str::to_string),
            _ => None,
        };
        let message = match self {
            // Internal details go to the log, not to callers.
            CommandError::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        ErrorBody {
            code: self.code(),
            message,
            field,
        }
    }

    /// The HTTP status: 400 invalid input; 403 refused because of who asks (`not_permitted`,
    /// `not_addressed_to_you`); 422 every other refusal by the rules (for example
    /// `wrong_stage`: a transition the request's stage does not allow); 404 unknown request;
    /// 409 lost races; 503 store unavailable; 500 internal.
    pub fn http_status(&self) -> u16 {
        match self {
            CommandError::Invalid { .. } => 400,
            CommandError::Refused(
                Refusal::NotPermitted { .. } | Refusal::NotAddressedToYou { .. },
            ) => 403,
            CommandError::Refused(_) => 422,
            CommandError::NotFound(_) => 404,
            CommandError::Conflict { .. } => 409,
            CommandError::Unavailable(_) => 503,
            CommandError::Internal(_) => 500,
        }
    }

    /// The metric outcome label.
    fn outcome(&self) -> &'static str {
        match self {
            CommandError::Invalid { .. } => "invalid",
            CommandError::Refused(_) => "refused",
            CommandError::NotFound(_) => "not_found",
            CommandError::Conflict { .. } => "conflict",
            CommandError::Unavailable(_) => "unavailable",
            CommandError::Internal(_) => "internal",
        }
    }
}

impl From<LogError> for CommandError {
    fn from(error: LogError) -> Self {
        match error {
            LogError::Unavailable(message) => CommandError::Unavailable(message),
            LogError::Conflict { request_id, .. } => CommandError::Conflict { request_id },
            other => CommandError::Internal(other.to_string()),
        }
    }
}

impl From<ContactError> for CommandError {
    fn from(error: ContactError) -> Self {
        match error {
            ContactError::Unavailable(message) => CommandError::Unavailable(message),
            other => CommandError::Internal(other.to_string()),
        }
    }
}

/// A contact write that goes with a command: made after the core decided to record the
/// command and before its commit is appended, under the request's lock.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ContactWrite<'a> {
    /// The contact sent with a `receive`: stored only when that receive creates the request,
    /// never replacing a stored contact.
    Intake(&'a ContactRef, &'a ResidentContact),
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
        self.execute_with(request, None).await
    }

    /// Decides and records one command, writing `contact` to the contact store once the core
    /// has decided to record it (see [`ContactWrite`]).
    pub(crate) async fn execute_with(
        &self,
        request: CommandRequest,
        contact: Option<ContactWrite<'_>>,
    ) -> Result<CommandOutcome, CommandError> {
        let kind = request.command.kind();
        let span = tracing::info_span!(
            "command",
            request_id = %request.request_id,
            command_id = %request.command_id,
            command = kind.as_str(),
        );
        let result = self
            .execute_locked(request, contact)
            .instrument(span.clone())
            .await;
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
    ) -> Result<CommandOutcome, CommandError> {
        let lock = self.lock_for(request.request_id);
        let _guard = lock.lock().await;
        // A `receive` normally creates its request: on a cache miss the first attempt
        // assumes the request is new instead of reading the log for it. The log's expected
        // position (0) keeps that safe: should the request exist, the append answers
        // duplicate (the same receive) or conflict, and the next attempt loads it.
        let mut assume_new = request.command.kind() == CommandKind::Receive;
        for _attempt in 0..MAX_ATTEMPTS {
            match self.attempt(&request, assume_new, contact).await {
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
    ) -> Result<CommandOutcome, CommandError> {
        let id = request.request_id;
        let cached = match (assume_new, self.cached(id)) {
            (_, Some(hit)) => hit,
            (true, None) => CachedRequest::empty(id),
            (false, None) => self.state(id).await?,
        };
        // Rights before facts: the role and the request's visibility to the actor come
        // before its existence, a recorded command or its stage (`Request::admit`).
        cached
            .request
            .admit(&request.actor, request.command.kind())
            .map_err(|refusal| match refusal {
                Refusal::DoesNotExist => CommandError::NotFound(id),
                other => CommandError::Refused(other),
            })?;
        if let Some(&position) = cached.commit_ids.get(&request.command_id) {
            return self
                .original_outcome(id, request.command_id, Some(position))
                .await;
        }
        let now = self.inner.clock.now();
        let context = Context {
            now,
            actor: &request.actor,
            command_id: request.command_id,
            policy: &self.inner.policy,
        };
        let events = cached
            .request
            .decide(&request.command, &context)
            .map_err(CommandError::Refused)?;
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
        let mut prev_hash = cached.last_hash.clone();
        let base_version = cached.request.version();
        let mut envelopes = Vec::with_capacity(events.len());
        for (i, event) in events.into_iter().enumerate() {
            let envelope = EventEnvelope {
                event_id: self.inner.ids.mint(),
                request_id: id,
                version: base_version + i as u64 + 1,
                schema_version: 0,
                occurred_at: now,
                recorded_at: now,
                actor: request.actor.clone(),
                causation_id: request.command_id,
                correlation_id: request.correlation_id.unwrap_or(request.command_id),
                prev_hash,
                hash: String::new(),
                event,
            }
            .seal();
            prev_hash = envelope.hash.clone();
            envelopes.push(envelope);
        }
        let commit = Commit {
            commit_id: request.command_id,
            request_id: id,
            command: request.command.kind(),
            events: envelopes,
            signature: None,
        };
        let stored_now = self.write_contact(contact).await?;
        let started = Instant::now();
        let appended = self.inner.log.append(&commit, cached.position).await;
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
        let appended = match appended {
            Ok(appended) => appended,
            Err(error) => {
                // Whatever happened, the cached entry may no longer match the log.
                self.forget(id);
                return Err(error.into());
            }
        };
        if appended.duplicate {
            self.forget(id);
            return self
                .original_outcome(id, request.command_id, Some(appended.position))
                .await;
        }
        let mut next = cached;
        for envelope in &commit.events {
            next.request.apply(envelope);
        }
        next.position = appended.position;
        next.last_hash = prev_hash;
        next.commit_ids.insert(commit.commit_id, appended.position);
        let version = next.request.version();
        self.remember(id, next);
        Ok(CommandOutcome {
            request_id: id,
            version,
            position: appended.position,
            events: commit.events,
            duplicate: false,
        })
    }

    /// Makes `contact`'s write; returns the reference when an intake stored a new contact
    /// (to discard should its commit not be recorded).
    async fn write_contact(
        &self,
        contact: Option<ContactWrite<'_>>,
    ) -> Result<Option<ContactRef>, CommandError> {
        let contacts = &self.inner.contacts;
        match contact {
            None => Ok(None),
            Some(ContactWrite::Intake(reference, data)) => {
                Ok((contacts.put(reference, data).await? == PutOutcome::Stored)
                    .then(|| reference.clone()))
            }
        }
    }

    async fn discard_contact(&self, stored: Option<ContactRef>) {
        let Some(reference) = stored else { return };
        if let Err(error) = self.inner.contacts.discard(&reference).await {
            tracing::warn!(contact_ref = %reference.0, %error, "could not discard an unused contact");
        }
    }

    /// The outcome a command recorded earlier, read back from the log.
    async fn original_outcome(
        &self,
        id: RequestId,
        command_id: Uuid,
        _position: Option<u64>,
    ) -> Result<CommandOutcome, CommandError> {
        let commits = self.inner.log.load(id).await?;
        match commits
            .into_iter()
            .find(|c| c.commit.commit_id == command_id)
        {
            Some(LoggedCommit { position, commit }) => Ok(CommandOutcome {
                request_id: id,
                version: commit.last_version(),
                position,
                events: commit.events,
                duplicate: true,
            }),
            None => Err(CommandError::invalid(
                "duplicate_command_id",
                "command_id",
                "this command id was already used for another request",
            )),
        }
    }

    /// Turns an intake document into a new request (or finds the one it made before).
    pub async fn intake(
        &self,
        document: IntakeDocument,
        actor: Actor,
    ) -> Result<IntakeOutcome, CommandError> {
        let channel = document.channel.as_str();
        let result = self.intake_inner(document, actor).await;
        let outcome = match &result {
            Ok(outcome) if outcome.created => "created",
            Ok(_) => "existing",
            Err(CommandError::Invalid { .. } | CommandError::Refused(_)) => "invalid",
            Err(_) => "failed",
        };
        self.inner.metrics.intake(channel, outcome);
        result
    }

    async fn intake_inner(
        &self,
        document: IntakeDocument,
        actor: Actor,
    ) -> Result<IntakeOutcome, CommandError> {
        let now = self.inner.clock.now();
        validate_intake(&document, &self.inner.policy, now)?;
        let request_id = self
            .inner
            .intake_ids
            .resolve(&self.inner.log, document.channel, &document.external_id)
            .await?;
        let command_id = Uuid::new_v5(&RECEIVE_NAMESPACE, request_id.as_bytes());
        // Anonymous residents' contact data is never stored, even when sent.
        let contact = document.contact.filter(|_| !document.anonymous);
        let contact_ref = contact
            .as_ref()
            .map(|_| ContactRef(Uuid::new_v5(&CONTACT_NAMESPACE, request_id.as_bytes())));
        let command = Command::Receive(Receive {
            channel: document.channel,
            external_id: document.external_id,
            contact_ref: contact_ref.clone(),
            anonymous: document.anonymous,
            confidential: document.confidential,
            no_reply_requested: document.no_reply_requested,
            location: document.location,
            text: document.text,
            attachments: document.attachments,
            priority_lanes: document.priority_lanes,
            kind: document.kind,
            raised_at: document.raised_at.unwrap_or(now),
        });
        let request = CommandRequest {
            request_id,
            command_id,
            correlation_id: None,
            actor,
            command,
        };
        let write = contact_ref
            .as_ref()
            .zip(contact.as_ref())
            .map(|(reference, data)| ContactWrite::Intake(reference, data));
        match self.execute_with(request, write).await {
            Ok(outcome) if !outcome.duplicate => Ok(IntakeOutcome {
                request_id,
                created: true,
                version: outcome.version,
            }),
            Ok(outcome) => Ok(IntakeOutcome {
                request_id,
                created: false,
                version: self.current_version(request_id, outcome.version).await,
            }),
            // Should a request with this id exist without our receive commit, it is still
            // the same request: report it, record nothing.
            Err(CommandError::Refused(refusal)) => match self.load(request_id).await {
                Ok(existing) => Ok(IntakeOutcome {
                    request_id,
                    created: false,
                    version: existing.version(),
                }),
                Err(_) => Err(CommandError::Refused(refusal)),
            },
            Err(other) => Err(other),
        }
    }

    async fn current_version(&self, id: RequestId, fallback: u64) -> u64 {
        match self.load(id).await {
            Ok(request) => request.version(),
            Err(_) => fallback,
        }
    }

    /// The current state of a request.
    pub async fn load(&self, id: RequestId) -> Result<Request, CommandError> {
        let cached = self.state(id).await?;
        if cached.request.exists() {
            Ok(cached.request)
        } else {
            Err(CommandError::NotFound(id))
        }
    }

    /// Every event of a request, in order.
    pub async fn history(&self, id: RequestId) -> Result<Vec<EventEnvelope>, CommandError> {
        let commits = self.inner.log.load(id).await?;
        if commits.is_empty() {
            return Err(CommandError::NotFound(id));
        }
        Ok(commits.into_iter().flat_map(|c| c.commit.events).collect())
    }

    /// The cached state of `id`, or its replay from the log.
    async fn state(&self, id: RequestId) -> Result<CachedRequest, CommandError> {
        if let Some(hit) = self.cached(id) {
            return Ok(hit);
        }
        // The head counts quarantined records too: the next append must name the request's
        // last stored record, while the state folds only the admitted ones.
        let (commits, head) = self.inner.log.load_with_head(id).await?;
        let mut entry = CachedRequest::empty(id);
        for LoggedCommit { position, commit } in commits {
            for envelope in &commit.events {
                entry.request.apply(envelope);
                entry.last_hash = envelope.hash.clone();
            }
            entry.commit_ids.insert(commit.commit_id, position);
        }
        entry.position = head;
        if entry.position > 0 {
            self.remember(id, entry.clone());
        }
        Ok(entry)
    }

    fn cached(&self, id: RequestId) -> Option<CachedRequest> {
        self.cache().get(&id)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, RequestCache> {
        // A poisoned cache only means a panic elsewhere mid-update; entries are whole values.
        self.inner
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn remember(&self, id: RequestId, entry: CachedRequest) {
        self.cache().put(id, entry);
    }

    fn forget(&self, id: RequestId) {
        self.cache().remove(&id);
    }

    fn lock_for(&self, id: RequestId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .inner
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(lock) = locks.get(&id).and_then(Weak::upgrade) {
            return lock;
        }
        // Drop locks nobody holds any more, so the map stays as small as the work in flight.
        if locks.len() >= 1024 {
            locks.retain(|_, weak| weak.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(id, Arc::downgrade(&lock));
        lock
    }
}

/// Checks an intake document before anything is stored.
pub fn validate_intake(
    document: &IntakeDocument,
    policy: &Policy,
    now: schemas::Timestamp,
) -> Result<(), CommandError> {
    let external_chars = document.external_id.chars().count();
    if external_chars == 0 || external_chars > MAX_EXTERNAL_ID_CHARS {
        return Err(CommandError::invalid(
            "invalid_length",
            "external_id",
            format!("external_id must be 1..={MAX_EXTERNAL_ID_CHARS} characters"),
        ));
    }
    if document.external_id.chars().any(char::is_control) {
        return Err(CommandError::invalid(
            "invalid_value",
            "external_id",
            "external_id must not contain control characters",
        ));
    }
    let text_chars = document.text.chars().count();
    if document.text.trim().is_empty() || text_chars > MAX_TEXT_CHARS {
        return Err(CommandError::invalid(
            "invalid_length",
            "text",
            format!("text must be 1..={MAX_TEXT_CHARS} characters and not blank"),
        ));
    }
    if !document.anonymous {
        let Some(contact) = &document.contact else {
            return Err(CommandError::invalid(
                "required",
                "contact",
                "contact is required unless the request is anonymous",
            ));
        };
        let fields = [
            &contact.name,
            &contact.phone,
            &contact.id_number,
            &contact.address_detail,
        ];
        if fields
            .iter()
            .all(|f| f.as_deref().is_none_or(|v| v.trim().is_empty()))
        {
            return Err(CommandError::invalid(
                "required",
                "contact",
                "contact must give at least one of name, phone, id_number, address_detail",
            ));
        }
        if fields
            .iter()
            .any(|f| f.as_deref().is_some_and(|v| v.chars().count() > 256))
        {
            return Err(CommandError::invalid(
                "invalid_length",
                "contact",
                "contact fields are at most 256 characters",
            ));
        }
    }
    let location = &document.location;
    let codes = [&location.street, &location.community, &location.grid];
    if codes
        .into_iter()
        .chain(location.micro_grid.as_ref())
        .any(|c| c.chars().count() > 64)
    {
        return Err(CommandError::invalid(
            "invalid_length",
            "location",
            "grid codes are at most 64 characters",
        ));
    }
    if !policy.knows_grid(location) {
        return Err(CommandError::invalid(
            "unknown_reference",
            "location",
            "the location does not name a known grid",
        ));
    }
    if document.attachments.len() > MAX_ATTACHMENTS {
        return Err(CommandError::invalid(
            "too_many",
            "attachments",
            format!("at most {MAX_ATTACHMENTS} attachments"),
        ));
    }
    if document
        .attachments
        .iter()
        .any(|a| a.uri.trim().is_empty() || a.uri.chars().count() > 2048)
    {
        return Err(CommandError::invalid(
            "invalid_value",
            "attachments",
            "attachment uris are 1..=2048 characters",
        ));
    }
    if document.priority_lanes.len() > 3 {
        return Err(CommandError::invalid(
            "too_many",
            "priority_lanes",
            "each priority lane at most once",
        ));
    }
    if document
        .raised_at
        .is_some_and(|raised| raised > now + chrono::Duration::minutes(5))
    {
        return Err(CommandError::invalid(
            "invalid_value",
            "raised_at",
            "raised_at lies in the future",
        ));
    }
    if document
        .raised_at
        .is_some_and(|raised| raised < now - chrono::Duration::days(RAISED_AT_MAX_AGE_DAYS))
    {
        return Err(CommandError::invalid(
            "invalid_value",
            "raised_at",
            format!(
                "raised_at lies more than {RAISED_AT_MAX_AGE_DAYS} days in the past; \
                 older requests are brought in with `bianmin import`"
            ),
        ));
    }
    Ok(())
}
