//! The event log: the durable, ordered record of every commit, on NATS JetStream or SQLite.
//!
//! [`EventLog`] wraps an enum over the two stores (no trait objects, no async-trait), and
//! signs every commit appended through it when it holds a signer (see [`crate::signing`]);
//! both stores give
//! the same guarantees, checked by one conformance suite run against each:
//! - one record per [`Commit`] (a multi-event command is all-or-nothing);
//! - a global position per record (JetStream stream sequence / SQLite row id), strictly
//!   increasing and never reused;
//! - optimistic concurrency per request: an append names the position of the request's last
//!   commit it saw (`expected`, 0 for a new request) and fails with [`LogError::Conflict`] when
//!   another commit got there first;
//! - idempotency by `commit_id`: appending a commit that is already in the log returns its
//!   original position with `duplicate: true` and never writes a second record;
//! - permanent command ids ([`bindings`]): a commit appended with
//!   [`EventLog::append_bound`] binds its id to its request and command for good, and an
//!   append of the id for another request or command fails with [`LogError::IdBound`].
//!
//! This crate never interprets events; it stores and returns commits. It owns what every
//! writer and reader of the log shares: the commit signer and keyring ([`signing`]), SQLite
//! group commit ([`sqlite_batch`]), the one retry policy ([`backoff`]), the bounded cache
//! ([`cache`]) and the shell's only wall clock and id minter ([`clock`]). It may depend on
//! `schemas` and `engine-core` only, never on the service, the edges or the projections;
//! opening a log from the configuration is the service's (`engine-service::log_open`).

pub mod backoff;
pub mod bindings;
pub mod cache;
pub mod clock;
mod jetstream;
pub mod quarantine;
pub mod signing;
mod sqlite;
pub mod sqlite_batch;

use std::path::Path;
use std::sync::Arc;

use futures::stream::BoxStream;
use schemas::{Commit, DecodeError, LoggedCommit, RequestId};

use crate::signing::{CommitSigner, Keyring, SignatureCheck};
pub use bindings::Binding;
use bindings::BindingCache;
use quarantine::Checks;
pub use quarantine::Quarantined;
use uuid::Uuid;

pub use jetstream::{JetStreamConfig, JetStreamLog, transient_api_error};
pub use sqlite::SqliteLog;

/// Commits read per batch by [`EventLog::scan`].
pub const SCAN_BATCH_LEN: usize = 512;

/// The result of a successful append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The commit's global position.
    pub position: u64,
    /// The commit was already in the log (written by an earlier call, or by an earlier attempt
    /// of this call whose acknowledgement was lost); nothing new was written.
    pub duplicate: bool,
}

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Another commit was appended to the request after the one the caller saw.
    /// The caller reloads the request and decides again.
    #[error(
        "request {request_id}: expected last position {expected}, but it is {}",
        actual.map_or("none".to_string(), |p| p.to_string())
    )]
    Conflict {
        /// The request.
        request_id: RequestId,
        /// The position the caller expected to be the request's last.
        expected: u64,
        /// The request's actual last position (`None`: the request has no commit).
        actual: Option<u64>,
    },
    /// The store cannot be reached or did not answer in time; retrying later may succeed.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    /// A stored record does not decode as a commit.
    #[error("corrupt record at position {position}: {source}")]
    Corrupt {
        /// The record's position.
        position: u64,
        /// Why it does not decode.
        #[source]
        source: DecodeError,
    },
    /// The store refused the operation for a reason retrying will not fix (a missing stream,
    /// a message larger than the server allows, a misconfiguration).
    #[error("event log refused the operation: {0}")]
    Refused(String),
    /// The commit cannot be appended as given (for example, it holds no events).
    #[error("invalid commit: {0}")]
    InvalidCommit(&'static str),
    /// The commit's id is bound to another request or another command; nothing was written.
    #[error("command id {command_id} is bound to another command (request {bound_to})")]
    IdBound {
        /// The commit (command) id.
        command_id: Uuid,
        /// The request the id is bound to.
        bound_to: RequestId,
    },
}

impl LogError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, LogError::Unavailable(_))
    }
}

/// The event log, on one of the two supported stores, with the key that signs every commit
/// appended through it.
#[derive(Debug, Clone)]
pub struct EventLog {
    store: Store,
    signer: Option<Arc<CommitSigner>>,
    checks: Arc<Checks>,
    bindings: Arc<BindingCache>,
}

/// The two supported stores.
#[derive(Debug, Clone)]
pub enum Store {
    /// NATS JetStream: one stream, one subject per request.
    JetStream(JetStreamLog),
    /// An embedded SQLite database file (single-node deployments, tests, laptops).
    Sqlite(SqliteLog),
}

impl EventLog {
    /// Connects to JetStream and creates or updates the stream idempotently.
    pub async fn connect_jetstream(
        client: async_nats::Client,
        cfg: JetStreamConfig,
    ) -> Result<EventLog, LogError> {
        Ok(EventLog::over(Store::JetStream(
            JetStreamLog::connect(client, cfg).await?,
        )))
    }

    /// Opens (creating if missing) an SQLite log file and its schema.
    pub async fn open_sqlite(path: &Path) -> Result<EventLog, LogError> {
        Ok(EventLog::over(Store::Sqlite(SqliteLog::open(path).await?)))
    }

    fn over(store: Store) -> EventLog {
        EventLog {
            store,
            signer: None,
            checks: Arc::new(Checks::default()),
            bindings: Arc::new(BindingCache::default()),
        }
    }

    /// The same log, signing every commit appended through it with `signer`, and trusting
    /// `keyring` (plus the signer's own key) when verifying.
    pub fn signed_by(self, signer: Arc<CommitSigner>, mut keyring: Keyring) -> EventLog {
        keyring.add(signer.public_key());
        EventLog {
            signer: Some(signer),
            checks: Arc::new(Checks::new(keyring)),
            ..self
        }
    }

    /// The same log, trusting `keyring` when verifying (a reading tool without the key).
    pub fn trusting(self, keyring: Keyring) -> EventLog {
        EventLog {
            checks: Arc::new(Checks::new(keyring)),
            ..self
        }
    }

    /// The key commits appended through this log are signed with, if any.
    pub fn signer(&self) -> Option<&CommitSigner> {
        self.signer.as_deref()
    }

    /// The public keys commits of this log are verified against.
    pub fn keyring(&self) -> &Keyring {
        &self.checks.keyring
    }

    /// Finds where signing began (the first record signed by a trusted key, or carrying any
    /// signature on a log without a keyring), scanning from the start; until then, unsigned records are taken as written before signing began. Call
    /// once after opening a log that has a keyring.
    pub async fn find_signing_start(&self) -> Result<Option<u64>, LogError> {
        let mut from = 1;
        loop {
            let batch = self.read_raw_from(from, SCAN_BATCH_LEN).await?;
            for (position, bytes) in &batch {
                let signed =
                    serde_json::from_slice::<serde_json::Value>(bytes).is_ok_and(|raw| match self
                        .checks
                        .keyring
                        .is_empty()
                    {
                        true => raw.get("signature").is_some(),
                        false => self.checks.keyring.check(&raw) == SignatureCheck::Valid,
                    });
                if signed {
                    self.checks.signing_began(*position);
                    return Ok(Some(*position));
                }
            }
            match batch.last() {
                Some((last, _)) if batch.len() == SCAN_BATCH_LEN => from = last + 1,
                _ => return Ok(None),
            }
        }
    }

    /// Every record this process has quarantined so far ([`quarantine`]), in log order.
    pub fn quarantined(&self) -> Vec<Quarantined> {
        self.checks.found()
    }

    /// Why the stored record `bytes` at `position` would be quarantined, if it would.
    pub fn quarantine_reason(
        &self,
        position: u64,
        bytes: &[u8],
    ) -> Option<(Option<RequestId>, String)> {
        self.checks.check(position, bytes).err()
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Appends one commit for `commit.request_id`. `expected` is the position of the
    /// request's last commit (0: the request must not exist yet). The commit id is not bound
    /// (the engine's own writers and the importer, whose ids are derived, use this).
    pub async fn append(&self, commit: &Commit, expected: u64) -> Result<Appended, LogError> {
        self.append_with(commit, expected, None).await
    }

    /// Appends one commit as [`EventLog::append`] does, binding its id to `binding` for good
    /// ([`bindings`]): fails with [`LogError::IdBound`], writing nothing, when the id is bound
    /// to another request or command. `binding.request_id` must be the commit's request.
    pub async fn append_bound(
        &self,
        commit: &Commit,
        expected: u64,
        binding: &Binding,
    ) -> Result<Appended, LogError> {
        if binding.request_id != commit.request_id {
            return Err(LogError::InvalidCommit(
                "a commit is bound to its own request",
            ));
        }
        let cached = self.bindings.get(commit.commit_id);
        if let Some(bound) = &cached
            && bound != binding
        {
            return Err(LogError::IdBound {
                command_id: commit.commit_id,
                bound_to: bound.request_id,
            });
        }
        // Bound by this process before (a retry after a conflict): no need to bind again.
        let to_bind = cached.is_none().then_some(binding);
        let appended = self.append_with(commit, expected, to_bind).await?;
        self.bindings.put(commit.commit_id, binding.clone());
        Ok(appended)
    }

    /// What `command_id` is bound to, if anything (from this process's cache, else the store).
    /// Commits written before bindings existed, and unbound appends, have none.
    pub async fn binding(&self, command_id: Uuid) -> Result<Option<Binding>, LogError> {
        if let Some(bound) = self.bindings.get(command_id) {
            return Ok(Some(bound));
        }
        let bound = match &self.store {
            Store::JetStream(log) => log.binding(command_id).await?,
            Store::Sqlite(log) => log.binding(command_id).await?,
        };
        if let Some(bound) = &bound {
            self.bindings.put(command_id, bound.clone());
        }
        Ok(bound)
    }

    async fn append_with(
        &self,
        commit: &Commit,
        expected: u64,
        binding: Option<&Binding>,
    ) -> Result<Appended, LogError> {
        if commit.events.is_empty() {
            return Err(LogError::InvalidCommit("a commit holds at least one event"));
        }
        if commit
            .events
            .iter()
            .any(|e| e.request_id != commit.request_id)
        {
            return Err(LogError::InvalidCommit(
                "every event of a commit belongs to the commit's request",
            ));
        }
        let signed;
        let commit = match &self.signer {
            Some(signer) => {
                signed = Commit {
                    signature: Some(signer.sign(commit)),
                    ..commit.clone()
                };
                &signed
            }
            None => commit,
        };
        let appended = match &self.store {
            Store::JetStream(log) => log.append(commit, expected, binding).await?,
            Store::Sqlite(log) => log.append(commit, expected, binding).await?,
        };
        if self.signer.is_some() {
            self.checks.signing_began(appended.position);
        }
        Ok(appended)
    }

    /// All admitted commits of one request, in order (empty when the request does not
    /// exist); quarantined records are skipped.
    pub async fn load(&self, request_id: RequestId) -> Result<Vec<LoggedCommit>, LogError> {
        Ok(self.load_with_head(request_id).await?.0)
    }

    /// The admitted commits of one request and the position of its last stored record,
    /// quarantined or not: the position the next append must name as `expected`.
    pub async fn load_with_head(
        &self,
        request_id: RequestId,
    ) -> Result<(Vec<LoggedCommit>, u64), LogError> {
        let raw = self.load_raw(request_id).await?;
        let head = raw.last().map_or(0, |(position, _)| *position);
        let commits = raw
            .iter()
            .filter_map(|(position, bytes)| self.checks.admit(*position, bytes))
            .collect();
        Ok((commits, head))
    }

    /// The position of the request's last stored record (0: none), one cheap read (the
    /// stream leader's last message on the request's subject, or one indexed query): a cached
    /// state at this position is current.
    pub async fn head(&self, request_id: RequestId) -> Result<u64, LogError> {
        match &self.store {
            Store::JetStream(log) => log.head(request_id).await,
            Store::Sqlite(log) => log.head(request_id).await,
        }
    }

    /// All commits of one request as the raw stored bytes, with their positions, in order
    /// (for hash-chain verification and tamper tests).
    pub async fn load_raw(&self, request_id: RequestId) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        match &self.store {
            Store::JetStream(log) => log.load_raw(request_id).await,
            Store::Sqlite(log) => log.load_raw(request_id).await,
        }
    }

    /// Up to `max` commits with position >= `from`, in global order (for projections,
    /// replay and rebuilds). Returns fewer than `max` only at the end of the log.
    pub async fn read_from(&self, from: u64, max: usize) -> Result<Vec<LoggedCommit>, LogError> {
        let mut admitted = Vec::new();
        let mut next = from.max(1);
        while admitted.len() < max {
            let want = max - admitted.len();
            let raw = self.read_raw_from(next, want).await?;
            let at_end = raw.len() < want;
            for (position, bytes) in raw {
                next = position + 1;
                admitted.extend(self.checks.admit(position, &bytes));
            }
            if at_end {
                break;
            }
        }
        Ok(admitted)
    }

    /// Up to `max` stored records with position >= `from`, raw and unchecked, in global
    /// order (for verify and the quarantine listing). Fewer than `max` only at the end.
    pub async fn read_raw_from(
        &self,
        from: u64,
        max: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        match &self.store {
            Store::JetStream(log) => log.read_raw_from(from.max(1), max).await,
            Store::Sqlite(log) => log.read_raw_from(from.max(1), max).await,
        }
    }

    /// Calls `visit` with every commit from position `from` to the end of the log as it stands
    /// now, in global order, reading [`SCAN_BATCH_LEN`] commits at a time. Returns the last
    /// position visited (`from - 1` when there was nothing to visit).
    pub async fn scan(
        &self,
        from: u64,
        mut visit: impl FnMut(&LoggedCommit),
    ) -> Result<u64, LogError> {
        let mut last = from.max(1) - 1;
        loop {
            let batch = self.read_from(last + 1, SCAN_BATCH_LEN).await?;
            for logged in &batch {
                visit(logged);
                last = logged.position;
            }
            if batch.len() < SCAN_BATCH_LEN {
                return Ok(last);
            }
        }
    }

    /// A live stream of commits from position `from` onward, in global order. It never ends:
    /// after the last stored commit it waits for new appends. Errors are yielded as items;
    /// a store that stays unreachable yields [`LogError::Unavailable`] and the stream goes on
    /// trying.
    pub fn follow(&self, from: u64) -> BoxStream<'static, Result<LoggedCommit, LogError>> {
        use futures::StreamExt as _;
        let raw = match &self.store {
            Store::JetStream(log) => log.follow(from.max(1)),
            Store::Sqlite(log) => log.follow(from.max(1)),
        };
        let checks = self.checks.clone();
        raw.filter_map(move |item| {
            let admitted = match item {
                Ok((position, bytes)) => checks.admit(position, &bytes).map(Ok),
                Err(error) => Some(Err(error)),
            };
            std::future::ready(admitted)
        })
        .boxed()
    }

    /// Highest position written (0 when the log is empty).
    pub async fn last_position(&self) -> Result<u64, LogError> {
        match &self.store {
            Store::JetStream(log) => log.last_position().await,
            Store::Sqlite(log) => log.last_position().await,
        }
    }

    /// Cheap reachability check for readiness probes.
    pub async fn ping(&self) -> Result<(), LogError> {
        match &self.store {
            Store::JetStream(log) => log.ping().await,
            Store::Sqlite(log) => log.ping().await,
        }
    }

    /// A human description of the store and its durability guarantees, for start-up logs.
    pub fn describe(&self) -> String {
        match &self.store {
            Store::JetStream(log) => log.describe(),
            Store::Sqlite(log) => log.describe(),
        }
    }
}
