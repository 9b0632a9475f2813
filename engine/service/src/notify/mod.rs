//! Outbound notifications to residents — acceptance, decline, extension (new date and reason),
//! reply, missed callback, reopening — and to units — dispatch, sign-off reminders, 催办,
//! pre-breach warnings, overdue marks, escalations, return and appeal decisions, whistle
//! summons ([`units`], over the unit channels of [`channels`]) — rendered from versioned
//! templates and delivered with tracking, retries and a dead-letter list: one mechanism.
//!
//! **Follow.** [`run`] follows the event log from its checkpoint (`notify_checkpoint`, in the
//! projections database). For every event a resident must hear about ([`NotifyKind`]) it reads
//! the request's earlier events (contact reference, confidentiality, the extension's reason),
//! renders the text ([`Templates`]) and writes one row per channel to `notify_deliveries`,
//! together with the new checkpoint in one transaction. The row id is UUIDv5(event id +
//! channel), so re-reading commits after a restart writes nothing twice.
//!
//! **Send.** A sender loop claims due rows, reads the recipient from the encrypted contact
//! store (an erased or missing contact: the row ends `suppressed`, nothing is sent), and sends:
//! JetStream `<prefix>.notify.<kind>` with `Nats-Msg-Id` = the notification id, or a webhook
//! POST signed with HMAC-SHA256. A failure is retried with exponential backoff and jitter;
//! after `max_attempts` the row is `dead` until an operator replays it
//! (`bianmin notify replay`, `POST /api/v1/notifications/{id}/replay`).
//!
//! **Confidentiality.** Contact data exists only in the gateway payload: rows store the
//! document without its recipient, the API lists no contact data, texts have no contact
//! placeholders. `<prefix>.notify.>` and the webhooks are for resident gateways only.
//!
//! Retry timing is operational time: the sender schedules on the system clock, never the
//! engine's (possibly simulated) domain clock.

pub mod channels;
pub mod cli;
pub mod config;
pub mod deliver;
pub mod document;
pub mod http;
pub mod kind;
pub mod store;
pub mod templates;
pub mod units;

use std::sync::Arc;
use std::time::Duration;

use engine_core::Clock;
use futures::StreamExt;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use schemas::{EventEnvelope, LoggedCommit};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use channels::{Unit, UnitChannels};
pub use config::{NotifyConfig, WebhookConfig};
pub use deliver::Sender;
pub use document::{NotificationDocument, Recipient};
pub use kind::NotifyKind;
pub use store::{Delivery, DeliveryStore, Status};
pub use templates::{TemplateError, Templates};

use crate::contacts::{ContactError, ContactStore, StoredContact};
use engine_log::clock::SystemClock;
use engine_log::{EventLog, LogError};

/// Commits handled per checkpoint transaction.
const CHUNK_MAX: usize = 256;
/// Rows claimed per sender round.
const CLAIM_MAX: i64 = 64;
/// Sends in flight at once.
const SEND_CONCURRENCY: usize = 8;
/// How long a claimed row is reserved for this sender.
const LEASE: Duration = Duration::from_secs(60);
/// Longest wait before retrying a failed read or write of the notifier's own stores.
const STORE_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Why the notifier failed.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The delivery table failed.
    #[error("notification store: {0}")]
    Store(String),
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The contact store failed.
    #[error(transparent)]
    Contacts(#[from] ContactError),
    /// The templates or settings are invalid.
    #[error("{0}")]
    Config(String),
}

/// The notification counters and gauge.
#[derive(Debug, Clone)]
pub struct NotifyMetrics {
    outcomes: IntCounterVec,
    pending: IntGauge,
}

impl NotifyMetrics {
    /// Registers `bianmin_notifications_total{channel, outcome}` (outcome `sent`, `failed`,
    /// `dead`, `suppressed`; channel `nats` or `webhook`) and `bianmin_notifications_pending`.
    pub fn register(registry: &Registry) -> Result<NotifyMetrics, prometheus::Error> {
        let outcomes = IntCounterVec::new(
            Opts::new(
                "bianmin_notifications_total",
                "Resident notification attempts and their outcome, by channel type.",
            ),
            &["channel", "outcome"],
        )?;
        let pending = IntGauge::new(
            "bianmin_notifications_pending",
            "Resident notifications waiting for a (re)try.",
        )?;
        registry.register(Box::new(outcomes.clone()))?;
        registry.register(Box::new(pending.clone()))?;
        Ok(NotifyMetrics { outcomes, pending })
    }

    /// Counts one outcome under the transport of `channel` (`nats` for the resident and unit
    /// subjects, `webhook` for every webhook), so the label set stays small.
    fn count(&self, channel: &str, outcome: &str) {
        let nats = channel == "nats" || channel == channels::UNIT_NATS;
        let channel = if nats { "nats" } else { "webhook" };
        self.outcomes.with_label_values(&[channel, outcome]).inc();
    }
}

/// Everything the notifier runs on.
#[derive(Clone)]
pub struct Notifier {
    log: EventLog,
    contacts: ContactStore,
    store: DeliveryStore,
    sender: Arc<Sender>,
    templates: Arc<Templates>,
    cfg: NotifyConfig,
    metrics: NotifyMetrics,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

/// Loads the template set `cfg` names (the built-in one by default).
pub fn load_templates(cfg: &NotifyConfig) -> Result<Templates, NotifyError> {
    let templates = match &cfg.templates_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| NotifyError::Config(format!("cannot read {}: {e}", path.display())))?;
            Templates::parse(&path.display().to_string(), &text)
        }
        None => Templates::builtin(),
    }
    .map_err(|e| NotifyError::Config(e.to_string()))?;
    if !templates.covers_locale(&cfg.locale) {
        tracing::warn!(locale = %cfg.locale, fallback = %templates.default_locale(),
            "notification templates lack some texts in the configured locale; the default locale fills in");
    }
    Ok(templates)
}

fn now_ms() -> i64 {
    SystemClock.now().timestamp_millis()
}

impl Notifier {
    /// A notifier over the given stores; `nats` is the client when the log runs on JetStream,
    /// `units` the unit delivery channels in force.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        log: EventLog,
        contacts: ContactStore,
        store: DeliveryStore,
        nats: Option<(async_nats::Client, usize)>,
        names: &schemas::Names,
        cfg: NotifyConfig,
        metrics: NotifyMetrics,
        units: UnitChannels,
    ) -> Result<Notifier, NotifyError> {
        cfg.validate().map_err(NotifyError::Config)?;
        let templates = load_templates(&cfg)?;
        let sender = Sender::new(&cfg, names, nats, units).map_err(NotifyError::Config)?;
        Ok(Notifier {
            log,
            contacts,
            store,
            sender: Arc::new(sender),
            templates: Arc::new(templates),
            cfg,
            metrics,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Whether there is any channel to send on.
    pub fn has_channels(&self) -> bool {
        let units = !self.sender.units().is_empty();
        units
            || NotifyKind::RESIDENT
                .iter()
                .any(|k| !self.sender.channels(*k).is_empty())
    }

    /// Runs the follower and the sender until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), NotifyError> {
        let start = self.store.checkpoint().await?;
        tracing::info!(resume_after = start, "resident notifier running");
        let follower = self.follow(start, shutdown.clone());
        let sender = self.send_loop(shutdown.clone());
        let (followed, ()) = tokio::join!(follower, sender);
        followed
    }

    async fn follow(&self, start: u64, shutdown: CancellationToken) -> Result<(), NotifyError> {
        let mut commits = self.log.follow(start + 1).ready_chunks(CHUNK_MAX);
        loop {
            let chunk = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                chunk = commits.next() => match chunk {
                    Some(chunk) => chunk,
                    None => return Ok(()),
                },
            };
            let mut logged = Vec::with_capacity(chunk.len());
            for item in chunk {
                match item {
                    Ok(commit) => logged.push(commit),
                    Err(error) => {
                        tracing::warn!(%error, "following the log for notifications failed")
                    }
                }
            }
            let Some(last) = logged.last().map(|c| c.position) else {
                continue;
            };
            let mut backoff = Duration::from_millis(100);
            loop {
                let result = async {
                    let rows = self.rows_of(&logged).await?;
                    self.store.enqueue(&rows, last, now_ms()).await?;
                    Ok::<usize, NotifyError>(rows.len())
                }
                .await;
                match result {
                    Ok(written) => {
                        if written > 0 {
                            self.wake.notify_one();
                        }
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%error, position = last, "recording notifications failed; retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => return Ok(()),
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(STORE_BACKOFF_MAX);
                    }
                }
            }
        }
    }

    /// The delivery rows of `commits`.
    async fn rows_of(
        &self,
        commits: &[LoggedCommit],
    ) -> Result<Vec<store::NewDelivery>, NotifyError> {
        let mut rows = Vec::new();
        for logged in commits {
            for envelope in &logged.commit.events {
                // History brought in by `bianmin import` happened long ago: nobody is told
                // about it again.
                if envelope.correlation_id
                    == crate::import::plan::import_correlation_id(envelope.request_id)
                {
                    continue;
                }
                if let Some(kind) = NotifyKind::unit_kind_of_event(&envelope.event)
                    && self.cfg.kinds.contains(&kind)
                    && !self.sender.units().is_empty()
                {
                    rows.extend(self.unit_rows(logged.position, envelope, kind).await?);
                }
                let Some(kind) = NotifyKind::of_event(&envelope.event) else {
                    continue;
                };
                if !self.cfg.kinds.contains(&kind) {
                    continue;
                }
                let channels = self.sender.channels(kind);
                if channels.is_empty() {
                    continue;
                }
                rows.extend(
                    self.rows_of_event(logged.position, envelope, kind, &channels)
                        .await?,
                );
            }
        }
        Ok(rows)
    }

    async fn rows_of_event(
        &self,
        position: u64,
        envelope: &EventEnvelope,
        kind: NotifyKind,
        channels: &[String],
    ) -> Result<Vec<store::NewDelivery>, NotifyError> {
        let facts = match &envelope.event {
            // The receipt carries everything itself: no read of the request's history.
            schemas::Event::RequestReceived(received) => Some(document::RequestFacts {
                received: received.clone(),
                extension_reason: None,
            }),
            _ => {
                let history: Vec<LoggedCommit> = self
                    .log
                    .load(envelope.request_id)
                    .await?
                    .into_iter()
                    .filter(|c| c.position <= position)
                    .collect();
                document::RequestFacts::from_history(&history, envelope.event_id)
            }
        };
        let Some(facts) = facts else {
            tracing::warn!(request_id = %envelope.request_id, "no receipt for a notifiable event; skipped");
            return Ok(Vec::new());
        };
        let received = &facts.received;
        let reason = match (
            &received.contact_ref,
            received.anonymous,
            received.no_reply_requested,
        ) {
            (None, _, _) | (_, true, _) => Some("anonymous"),
            (_, _, true) => Some("no_reply_requested"),
            (Some(contact_ref), _, _) => match self.contacts.get(contact_ref).await? {
                Some(StoredContact::Present(_)) => None,
                Some(StoredContact::Erased) => Some("contact_erased"),
                None => Some("no_contact"),
            },
        };
        let base = document::render(kind, envelope, &facts, &self.templates, &self.cfg.locale);
        let mut rows = Vec::with_capacity(channels.len());
        for channel in channels {
            let mut doc = base.clone();
            doc.notification_id = document::notification_id(envelope.event_id, channel);
            rows.push(store::NewDelivery {
                notification_id: doc.notification_id.to_string(),
                event_id: envelope.event_id.to_string(),
                request_id: envelope.request_id.to_string(),
                kind: kind.as_str().to_string(),
                channel: channel.clone(),
                status: if reason.is_some() {
                    Status::Suppressed
                } else {
                    Status::Pending
                },
                reason: reason.map(str::to_string),
                template_version: doc.template_version.clone(),
                document: serde_json::to_string(&doc).expect("documents always serialise"),
                contact_ref: received.contact_ref.as_ref().map(|r| r.0.to_string()),
                recipient: None,
            });
            if reason.is_some() {
                self.metrics.count(channel, "suppressed");
            }
        }
        Ok(rows)
    }

    async fn send_loop(&self, shutdown: CancellationToken) {
        let poll = Duration::from_millis(self.cfg.poll_interval_ms);
        let mut backoff = Duration::from_millis(100);
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let claimed = self
                .store
                .claim_due(now_ms(), LEASE.as_millis() as i64, CLAIM_MAX)
                .await;
            let full = match claimed {
                Ok(due) => {
                    backoff = Duration::from_millis(100);
                    let full = due.len() as i64 == CLAIM_MAX;
                    futures::stream::iter(due)
                        .for_each_concurrent(SEND_CONCURRENCY, |d| self.attempt(d))
                        .await;
                    if let Ok(pending) = self.store.pending_count().await {
                        self.metrics.pending.set(pending);
                    }
                    full
                }
                Err(error) => {
                    tracing::warn!(%error, "claiming due notifications failed");
                    backoff = (backoff * 2).min(STORE_BACKOFF_MAX);
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    continue;
                }
            };
            if !full {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                }
            }
        }
    }

    /// One attempt at one row, and its recorded outcome.
    async fn attempt(&self, delivery: Delivery) {
        let outcome = self.try_send(&delivery).await;
        let now = now_ms();
        let attempts = delivery.attempts + 1;
        let (status, error, next) = match outcome {
            Ok(None) => (Status::Sent, None, now),
            Ok(Some(reason)) => (Status::Suppressed, Some(reason.to_string()), now),
            Err(error) if attempts >= i64::from(self.cfg.max_attempts) => {
                (Status::Dead, Some(error), now)
            }
            Err(error) => {
                let delay = self.cfg.backoff(attempts as u32);
                // Jitter: a uniform delay in [delay/2, delay], so retries of many
                // notifications to one gateway spread out.
                let half = delay.as_millis() as i64 / 2;
                let jitter = if half > 0 {
                    rand::random_range(0..=half)
                } else {
                    0
                };
                (Status::Failed, Some(error), now + half + jitter)
            }
        };
        self.metrics.count(&delivery.channel, status.as_str());
        match status {
            Status::Dead => tracing::warn!(notification_id = %delivery.notification_id,
                channel = %delivery.channel, attempts, error = error.as_deref().unwrap_or(""),
                "notification undeliverable; moved to the dead-letter list"),
            Status::Failed => tracing::info!(notification_id = %delivery.notification_id,
                channel = %delivery.channel, attempts, error = error.as_deref().unwrap_or(""),
                "notification attempt failed; retry scheduled"),
            _ => {}
        }
        if let Err(e) = self
            .store
            .record_attempt(
                &delivery.notification_id,
                status,
                attempts,
                error.as_deref(),
                next,
                now,
            )
            .await
        {
            // The lease runs out and the row is tried again; receivers deduplicate by id.
            tracing::warn!(error = %e, notification_id = %delivery.notification_id, "recording a notification attempt failed");
        }
    }

    /// Sends one row: `Ok(None)` sent, `Ok(Some(reason))` suppressed, `Err` failed.
    async fn try_send(&self, delivery: &Delivery) -> Result<Option<&'static str>, String> {
        let mut doc: NotificationDocument = serde_json::from_str(&delivery.document)
            .map_err(|e| format!("stored document: {e}"))?;
        if doc.unit.is_some() {
            // Addressed to a unit: no resident contact is read or sent.
            return self
                .sender
                .send(&delivery.channel, &doc)
                .await
                .map(|()| None);
        }
        let Some(contact_ref) = &delivery.contact_ref else {
            return Ok(Some("anonymous"));
        };
        let contact_ref = uuid::Uuid::parse_str(contact_ref)
            .map(schemas::ContactRef)
            .map_err(|e| format!("stored contact reference: {e}"))?;
        let contact = match self.contacts.get(&contact_ref).await {
            Ok(Some(StoredContact::Present(contact))) => contact,
            Ok(Some(StoredContact::Erased)) => return Ok(Some("contact_erased")),
            Ok(None) => return Ok(Some("no_contact")),
            Err(error) => return Err(error.to_string()),
        };
        doc.recipient = Some(Recipient {
            name: contact.name,
            phone: contact.phone,
        });
        self.sender
            .send(&delivery.channel, &doc)
            .await
            .map(|()| None)
    }
}

/// Builds the notifier for `serve` (or `None` when disabled or with no channel) — the caller
/// spawns [`Notifier::run`].
#[allow(clippy::too_many_arguments)]
pub async fn build(
    cfg: &NotifyConfig,
    log: EventLog,
    contacts: ContactStore,
    database_url: &str,
    nats: Option<(async_nats::Client, usize)>,
    names: &schemas::Names,
    registry: &Registry,
    units: UnitChannels,
) -> Result<Option<(Notifier, DeliveryStore)>, NotifyError> {
    if !cfg.enabled {
        tracing::info!("notifications disabled (notify.enabled = false)");
        return Ok(None);
    }
    let unit_webhooks = units.has_webhooks();
    if nats.is_none() && cfg.webhooks.is_empty() && !unit_webhooks {
        tracing::info!("notifications off: no NATS and no webhook configured");
        return Ok(None);
    }
    let store = DeliveryStore::connect(database_url).await?;
    let metrics =
        NotifyMetrics::register(registry).map_err(|e| NotifyError::Config(e.to_string()))?;
    let notifier = Notifier::new(
        log,
        contacts,
        store.clone(),
        nats,
        names,
        cfg.clone(),
        metrics,
        units,
    )?;
    Ok(Some((notifier, store)))
}
