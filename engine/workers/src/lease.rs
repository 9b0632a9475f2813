//! Leased singleton workers: the background tasks that must run once per instance (the
//! supervisor, each projector, the notifier, the upward and report links, report schedules,
//! digests, retention) run in whichever replica holds their lease, and only while it does.
//!
//! On JetStream the leases are the keys of the key-value bucket
//! [`schemas::Names::leases_bucket`]: one key per worker, the value naming the holder (host,
//! process id and a fresh id per process start). The bucket's `max_age` is the lease TTL, so
//! an entry not renewed for one TTL disappears. A replica takes a lease with `create` (refused
//! by the stream leader while another holds it), renews it every TTL/3 with `update` at the
//! revision it last wrote (refused once anyone else wrote it), and deletes it at that
//! revision when it shuts down gracefully, so a standby takes over at its next attempt
//! (every TTL/3) instead of after the TTL.
//!
//! A holder that cannot renew for two thirds of the TTL (counted from when its last
//! successful renewal was *sent*, which is no later than the server's timestamp the expiry
//! counts from) stops its worker, and aborts it should it not stop within the last third:
//! the worker has stopped before the entry can expire and another replica can take it.
//! Workers that take over resume from their checkpoints; their firings carry deterministic
//! command ids, so a command sent twice across a handover is recorded once.
//!
//! The embedded SQLite log has one process: there the lease is local and always held.
//! Decided over PostgreSQL advisory locks because the lease then lives where the log does:
//! a replica cut off from NATS can do none of this work anyway, and the lease follows the
//! cluster's quorum rather than one database connection's lifetime.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use engine_log::backoff::Backoff;

/// What a background task ends with when it fails: any error, kept with its source.
pub type TaskError = Box<dyn std::error::Error + Send + Sync>;

/// How long a worker must run after a failure before its next failure starts the backoff
/// from the beginning again and it stops being listed as failing.
const STABLE_RUN: Duration = Duration::from_secs(60);

/// `[leases]`: the lease of every singleton worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaseConfig {
    /// Lease time-to-live, milliseconds: a holder that dies is replaced after at most this
    /// plus a third of it. Renewed every third. The same in every replica of an instance
    /// (the bucket's `max_age` follows the process that started last).
    pub ttl_ms: u64,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig { ttl_ms: 10_000 }
    }
}

impl LeaseConfig {
    /// The TTL, at least 300 ms.
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms.max(300))
    }
}

/// Why a lease operation could not be decided.
#[derive(Debug, thiserror::Error)]
#[error("lease bucket {bucket}: {message}")]
pub struct LeaseError {
    bucket: String,
    message: String,
}

/// The leases of this process. Cheap to clone.
#[derive(Clone)]
pub struct Leases {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    holder: String,
    ttl: Duration,
    held: Mutex<BTreeSet<String>>,
    gauge: IntGaugeVec,
    /// Workers whose last run failed, with the error.
    failing: Mutex<BTreeMap<String, String>>,
    failures: IntCounterVec,
}

enum Backend {
    /// One process: every lease is held.
    Local,
    /// The bucket on JetStream, opened on first use.
    JetStream(Box<Bucket>),
}

struct Bucket {
    context: jetstream::Context,
    names: schemas::Names,
    replicas: usize,
    store: tokio::sync::OnceCell<kv::Store>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("holder", &self.inner.holder)
            .field("held", &self.held())
            .finish_non_exhaustive()
    }
}

/// A lease this process holds: the revision it last wrote.
#[derive(Debug, Clone, Copy)]
struct Held {
    revision: u64,
}

/// How holding a lease ended.
enum Holding {
    /// Lost (not renewed in time, or taken by another): stand by again.
    Lost,
    /// The worker ended (shutdown, or its own error): the lease was released.
    Ended(Result<(), TaskError>),
}

impl Leases {
    /// Leases on JetStream when `nats` is set (the bucket created with `replicas`), else the
    /// local lease of a single process. Registers `bianmin_lease_held` in `registry`.
    pub fn new(
        config: &LeaseConfig,
        nats: Option<(async_nats::Client, usize)>,
        names: &schemas::Names,
        registry: &Registry,
    ) -> Result<Leases, prometheus::Error> {
        let gauge = IntGaugeVec::new(
            Opts::new(
                "bianmin_lease_held",
                "1 while this process holds the lease of the worker (and runs it), else 0.",
            ),
            &["worker"],
        )?;
        registry.register(Box::new(gauge.clone()))?;
        let failures = IntCounterVec::new(
            Opts::new(
                "bianmin_worker_failures_total",
                "Runs of a leased worker that ended with an error (each is started again later).",
            ),
            &["worker"],
        )?;
        registry.register(Box::new(failures.clone()))?;
        let backend = match nats {
            None => Backend::Local,
            Some((client, replicas)) => Backend::JetStream(Box::new(Bucket {
                context: jetstream::new(client),
                names: names.clone(),
                replicas,
                store: tokio::sync::OnceCell::new(),
            })),
        };
        Ok(Leases {
            inner: Arc::new(Inner {
                backend,
                holder: holder_id(),
                ttl: config.ttl(),
                held: Mutex::default(),
                gauge,
                failing: Mutex::default(),
                failures,
            }),
        })
    }

    /// Local leases (one process, always held), with a gauge of their own.
    pub fn local() -> Leases {
        Leases::new(
            &LeaseConfig::default(),
            None,
            &schemas::Names::default(),
            &Registry::new(),
        )
        .expect("a fresh registry takes the gauge")
    }

    /// Who this process is in the lease bucket.
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    /// The workers whose lease this process holds now.
    pub fn held(&self) -> Vec<String> {
        self.held_set().iter().cloned().collect()
    }

    /// Whether the leases are local (one process).
    pub fn is_local(&self) -> bool {
        matches!(self.inner.backend, Backend::Local)
    }

    /// Runs `work` whenever this process holds the lease of `worker`, until `shutdown`: waits
    /// for the lease, starts `work` with a token cancelled when the lease is lost or at
    /// shutdown, renews, and stands by again after a loss. When `work` fails, the lease is
    /// released (another replica may take the work over), the failure is counted, logged and
    /// shown by [`Leases::failing`], and after a [`Backoff::worker`] delay this process
    /// stands by again: a worker's error (a server away, an election) never stops the
    /// process. Returns at shutdown, or when `work` ends on its own without an error.
    pub async fn run<F, Fut>(
        &self,
        worker: &str,
        shutdown: CancellationToken,
        mut work: F,
    ) -> Result<(), TaskError>
    where
        F: FnMut(CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), TaskError>> + Send + 'static,
    {
        self.inner.gauge.with_label_values(&[worker]).set(0);
        let mut backoff = Backoff::worker();
        loop {
            let Some(held) = self.wait_for(worker, &shutdown).await else {
                return Ok(());
            };
            tracing::info!(worker, holder = %self.inner.holder, "lease taken; worker starting");
            self.mark(worker, true);
            let started = Instant::now();
            let holding = self.hold(worker, held, &shutdown, &mut work).await;
            self.mark(worker, false);
            match holding {
                Holding::Lost => tracing::warn!(worker, "lease lost; worker stopped"),
                Holding::Ended(Ok(())) => return Ok(()),
                Holding::Ended(Err(error)) if shutdown.is_cancelled() => return Err(error),
                Holding::Ended(Err(error)) => {
                    if started.elapsed() >= STABLE_RUN {
                        backoff.reset();
                    }
                    let delay = backoff.next_delay();
                    tracing::error!(worker, %error, retry_in_ms = delay.as_millis() as u64,
                        "worker failed; lease released, starting again later");
                    self.inner.failures.with_label_values(&[worker]).inc();
                    self.failing_set()
                        .insert(worker.to_string(), error.to_string());
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// The workers whose last run failed, with the error, until a run of theirs has lasted
    /// [`STABLE_RUN`].
    pub fn failing(&self) -> BTreeMap<String, String> {
        self.failing_set().clone()
    }

    fn failing_set(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.inner
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Tries to take the lease of `worker` every TTL/3 until it is taken (`Some`) or
    /// `shutdown` is cancelled (`None`).
    async fn wait_for(&self, worker: &str, shutdown: &CancellationToken) -> Option<Held> {
        let mut reported = false;
        loop {
            if shutdown.is_cancelled() {
                return None;
            }
            match self.acquire(worker).await {
                Ok(Some(held)) => return Some(held),
                Ok(None) if !reported => {
                    tracing::info!(worker, "lease held by another replica; standing by");
                    reported = true;
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(worker, %error, "lease not taken; retrying"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(self.renew_every()) => {}
            }
        }
    }

    /// Runs `work` while the lease is renewed; see [`Leases::run`].
    async fn hold<F, Fut>(
        &self,
        worker: &str,
        mut held: Held,
        shutdown: &CancellationToken,
        work: &mut F,
    ) -> Holding
    where
        F: FnMut(CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), TaskError>> + Send + 'static,
    {
        let token = shutdown.child_token();
        let mut task = tokio::spawn(work(token.clone()));
        let started = Instant::now();
        let mut renewed_at = started;
        let mut next = renewed_at + self.renew_every();
        let give_up = self.inner.ttl - self.renew_every();
        loop {
            tokio::select! {
                ended = &mut task => {
                    self.release(worker, held).await;
                    return Holding::Ended(ended.unwrap_or_else(|e| Err(Box::new(e))));
                }
                () = tokio::time::sleep_until(next), if !self.is_local() => {}
            }
            let sent = Instant::now();
            // Never wait for an answer past the point where the worker must stop.
            let budget = give_up
                .saturating_sub(sent.duration_since(renewed_at))
                .clamp(Duration::from_millis(10), self.renew_every());
            let renewed = tokio::time::timeout(budget, self.renew(worker, held)).await;
            let failure = match renewed {
                Ok(Ok(Some(now_held))) => {
                    if sent.duration_since(started) >= STABLE_RUN {
                        self.failing_set().remove(worker);
                    }
                    (held, renewed_at) = (now_held, sent);
                    next = sent + self.renew_every();
                    continue;
                }
                Ok(Ok(None)) => None,
                Ok(Err(error)) => Some(error.to_string()),
                Err(_elapsed) => Some("no answer".to_string()),
            };
            match failure {
                Some(error) if Instant::now().duration_since(renewed_at) < give_up => {
                    tracing::warn!(worker, %error, "lease not renewed; retrying");
                    next = Instant::now() + self.renew_every() / 4;
                }
                Some(error) => {
                    tracing::warn!(worker, %error, "lease not renewed in time");
                    self.stop(worker, token, task).await;
                    return Holding::Lost;
                }
                None => {
                    self.stop(worker, token, task).await;
                    return Holding::Lost;
                }
            }
        }
    }

    /// Stops a worker whose lease is lost: cancels it, and aborts it should it still run a
    /// third of the TTL later (before the lease can expire and be taken).
    async fn stop(
        &self,
        worker: &str,
        token: CancellationToken,
        mut task: tokio::task::JoinHandle<Result<(), TaskError>>,
    ) {
        token.cancel();
        match tokio::time::timeout(self.renew_every(), &mut task).await {
            Ok(Ok(Err(error))) => tracing::warn!(worker, %error, "worker ended with an error"),
            Ok(_) => {}
            Err(_elapsed) => {
                tracing::warn!(worker, "worker did not stop in time; aborted");
                task.abort();
            }
        }
    }

    fn renew_every(&self) -> Duration {
        self.inner.ttl / 3
    }

    fn mark(&self, worker: &str, held: bool) {
        let mut set = self.held_set();
        match held {
            true => set.insert(worker.to_string()),
            false => set.remove(worker),
        };
        self.inner
            .gauge
            .with_label_values(&[worker])
            .set(i64::from(held));
    }

    fn held_set(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the lease of `worker` if nobody holds it (`None`: someone does).
    async fn acquire(&self, worker: &str) -> Result<Option<Held>, LeaseError> {
        let Backend::JetStream(bucket) = &self.inner.backend else {
            return Ok(Some(Held { revision: 0 }));
        };
        let store = bucket.store(self.inner.ttl).await?;
        let value = Bytes::from(self.inner.holder.clone());
        match store.create(worker, value).await {
            Ok(revision) => Ok(Some(Held { revision })),
            // Held, or an ambiguous answer: what the leader holds decides.
            Err(error) => self.ours(bucket, store, worker, &error.to_string()).await,
        }
    }

    /// Renews the lease of `worker` (`None`: it is no longer ours).
    async fn renew(&self, worker: &str, held: Held) -> Result<Option<Held>, LeaseError> {
        let Backend::JetStream(bucket) = &self.inner.backend else {
            return Ok(Some(held));
        };
        let store = bucket.store(self.inner.ttl).await?;
        let value = Bytes::from(self.inner.holder.clone());
        match store.update(worker, value, held.revision).await {
            Ok(revision) => Ok(Some(Held { revision })),
            // An earlier renewal may have landed without its acknowledgement.
            Err(error) => self.ours(bucket, store, worker, &error.to_string()).await,
        }
    }

    /// The lease of `worker` as the leader holds it, if it names this process.
    async fn ours(
        &self,
        bucket: &Bucket,
        store: &kv::Store,
        worker: &str,
        write_error: &str,
    ) -> Result<Option<Held>, LeaseError> {
        let entry = store.entry(worker).await.map_err(|e| {
            bucket.error(format!(
                "{worker}: {write_error}; reading the lease back: {e}"
            ))
        })?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .filter(|e| e.value.as_ref() == self.inner.holder.as_bytes())
            .map(|e| Held {
                revision: e.revision,
            }))
    }

    /// Gives the lease of `worker` up (best effort: unreleased, it expires after the TTL).
    async fn release(&self, worker: &str, held: Held) {
        let Backend::JetStream(bucket) = &self.inner.backend else {
            return;
        };
        let released = match bucket.store(self.inner.ttl).await {
            Ok(store) => store
                .delete_expect_revision(worker, Some(held.revision))
                .await
                .map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match released {
            Ok(()) => tracing::info!(worker, "lease released"),
            Err(error) => tracing::warn!(worker, %error, "lease not released; it expires"),
        }
    }
}

impl Bucket {
    fn error(&self, message: String) -> LeaseError {
        LeaseError {
            bucket: self.names.leases_bucket(),
            message,
        }
    }

    /// The bucket, its stream created or updated to [`bucket_stream_config`] on first use.
    async fn store(&self, ttl: Duration) -> Result<&kv::Store, LeaseError> {
        self.store
            .get_or_try_init(|| async {
                self.context
                    .create_or_update_stream(bucket_stream_config(&self.names, self.replicas, ttl))
                    .await
                    .map_err(|e| self.error(e.to_string()))?;
                self.context
                    .get_key_value(self.names.leases_bucket())
                    .await
                    .map_err(|e| self.error(e.to_string()))
            })
            .await
    }
}

/// The stream of the lease bucket, in the layout of a NATS key-value bucket: one revision
/// per key, each expiring after `ttl`, on file storage with the log's replicas, every read
/// from the leader (no direct gets a lagging replica might answer). Declared here, as the
/// command bindings' bucket is, rather than through the client's bucket creation.
pub fn bucket_stream_config(
    names: &schemas::Names,
    replicas: usize,
    ttl: Duration,
) -> jetstream::stream::Config {
    use jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType};
    Config {
        name: names.leases_bucket_stream(),
        description: Some("Bianmin worker leases: worker → holder, expiring".to_string()),
        subjects: vec![names.leases_bucket_subjects()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::New,
        max_messages: -1,
        max_bytes: -1,
        max_messages_per_subject: 1,
        max_age: ttl,
        duplicate_window: ttl.min(Duration::from_secs(120)),
        num_replicas: replicas.max(1),
        deny_delete: true,
        deny_purge: true,
        allow_rollup: false,
        allow_direct: false,
        ..Default::default()
    }
}

/// `<host>-<pid>-<fresh id>`: unique per process start, readable by an operator.
fn holder_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "bianmin".to_string());
    let id = engine_log::clock::IdSource.mint().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &id[id.len() - 8..])
}
