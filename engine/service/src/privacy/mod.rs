//! Residents' privacy (PIPL): erasure by crypto-shredding, the retention job, and recorded,
//! permission-gated reads of contact data.
//!
//! Contact data lives only in the encrypted [`ContactStore`]; events carry a [`ContactRef`].
//! Erasing destroys the contact's key: the ciphertext left behind is unreadable, the event log
//! is not touched, so every hash chain and every rate computed from the log stays as it was,
//! and histories show the contact as erased. Each erasure and each read of contact data is
//! written to the privacy ledger, which names references and actors, never contact content:
//! `privacy.db` beside the embedded contact store, or the `contact_erasures` and
//! `contact_access` tables of the PostgreSQL stores, shared by every replica (one set of
//! statements serves both).
//!
//! Retention ([`retention`]): contact data of a request is kept for a configured number of
//! days after the request is archived; a background sweep crypto-shreds expired keys and
//! records each erasure with the reason `retention`.
//!
//! Wiring: `bianmin privacy …` runs [`PrivacyCommand::run`]; `serve` spawns
//! [`retention::run`] as a background task and may merge [`http::router`] into its router.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use engine_core::Clock;
use schemas::{Actor, ContactRef, Event, RequestId, Role, Timestamp};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use uuid::Uuid;

use crate::contacts::{ContactError, ContactStore, StoredContact};
use engine_log::{EventLog, LogError};

mod cli;
pub mod http;
pub mod retention;

pub use cli::PrivacyCommand;

/// Why a privacy operation failed. Never carries contact data.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The contact store failed.
    #[error(transparent)]
    Contacts(#[from] ContactError),
    /// The media store failed while deleting personal attachments.
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
    /// The privacy ledger failed.
    #[error("privacy ledger unavailable: {0}")]
    Ledger(String),
    /// The request exists but was received without contact data (anonymous).
    #[error("request {0} holds no contact reference")]
    NoContact(RequestId),
    /// Neither a request nor a stored contact has this id.
    #[error("{0} is neither a request nor a stored contact reference")]
    Unknown(Uuid),
    /// The actor may not read contact data.
    #[error("{0}")]
    Forbidden(String),
    /// Opening the stores for the command line failed.
    #[error("cannot open {what}: {message}")]
    Open {
        /// Which store.
        what: &'static str,
        /// Why.
        message: String,
    },
}

impl From<sqlx::Error> for PrivacyError {
    fn from(error: sqlx::Error) -> Self {
        PrivacyError::Ledger(error.to_string())
    }
}

/// Privacy settings (a `[privacy]` table in the configuration).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Ids of the auditor identities explicitly permitted to read contact data. Everyone
    /// else, auditors included, sees only the reference.
    pub contact_readers: Vec<String>,
    /// Retention of contact data.
    pub retention: RetentionPolicy,
}

/// How long each record class is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Contact data: days after the request is archived (default 3 years). Events and hash
    /// chains are kept for good; only the contact key is destroyed.
    pub contact_days_after_archive: u32,
    /// How often the sweep runs, seconds.
    pub sweep_interval_secs: u64,
    /// Whether the sweep runs at all.
    pub enabled: bool,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            contact_days_after_archive: 3 * 365,
            sweep_interval_secs: 3600,
            enabled: true,
        }
    }
}

/// One recorded erasure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureRecord {
    /// The contact.
    pub contact_ref: ContactRef,
    /// The request it belonged to, when known.
    pub request_id: Option<RequestId>,
    /// `resident_request`, `retention`, … (free text, no personal data).
    pub reason: String,
    /// Who erased it.
    pub actor: String,
    /// When.
    pub erased_at: Timestamp,
    /// Whether a key was destroyed now (false: it was already gone).
    pub key_destroyed: bool,
}

/// One recorded read of contact data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// The contact.
    pub contact_ref: ContactRef,
    /// The request.
    pub request_id: RequestId,
    /// Who read it.
    pub actor: String,
    /// In which role.
    pub role: String,
    /// Why (as stated by the reader).
    pub purpose: String,
    /// When.
    pub accessed_at: Timestamp,
}

/// The privacy ledger: every erasure and every read of contact data. Cheap to clone.
#[derive(Clone)]
pub struct PrivacyLedger {
    pool: LedgerPool,
}

/// The ledger's database.
#[derive(Clone)]
enum LedgerPool {
    Sqlite(SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Runs `$body` with `$pool` bound to the ledger's pool, whichever backend it is: the
/// statements are the same text on both (`$n` placeholders, text ids and times).
macro_rules! on_pool {
    ($ledger:expr, |$pool:ident| $body:expr) => {
        match &$ledger.pool {
            LedgerPool::Sqlite($pool) => $body,
            LedgerPool::Postgres($pool) => $body,
        }
    };
}

impl std::fmt::Debug for PrivacyLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivacyLedger").finish_non_exhaustive()
    }
}

const LEDGER_SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS contact_erasures (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        contact_ref TEXT NOT NULL,
        request_id TEXT,
        reason TEXT NOT NULL,
        actor TEXT NOT NULL,
        erased_at TEXT NOT NULL,
        key_destroyed INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS contact_access (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        contact_ref TEXT NOT NULL,
        request_id TEXT NOT NULL,
        actor TEXT NOT NULL,
        role TEXT NOT NULL,
        purpose TEXT NOT NULL,
        accessed_at TEXT NOT NULL
    )",
];

impl PrivacyLedger {
    /// Opens the ledger where `location` says: `data_dir/privacy.db`, or PostgreSQL.
    pub async fn open(
        location: &crate::stores::StoresLocation,
    ) -> Result<PrivacyLedger, PrivacyError> {
        match location {
            crate::stores::StoresLocation::Embedded { data_dir } => {
                PrivacyLedger::open_sqlite(&PrivacyLedger::path_in(data_dir)).await
            }
            crate::stores::StoresLocation::Postgres { url, .. } => {
                PrivacyLedger::open_postgres(url).await
            }
        }
    }

    /// Opens (creating if needed) the ledger in the SQLite file at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<PrivacyLedger, PrivacyError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        for statement in LEDGER_SCHEMA {
            sqlx::query(statement).execute(&pool).await?;
        }
        Ok(PrivacyLedger {
            pool: LedgerPool::Sqlite(pool),
        })
    }

    /// Opens the ledger in the PostgreSQL stores database at `url` (migrating it).
    pub async fn open_postgres(url: &str) -> Result<PrivacyLedger, PrivacyError> {
        let pool = crate::stores::connect_postgres(url)
            .await
            .map_err(|e| PrivacyError::Ledger(e.to_string()))?;
        Ok(PrivacyLedger {
            pool: LedgerPool::Postgres(pool),
        })
    }

    /// The ledger file beside the contact store in `data_dir`.
    pub fn path_in(data_dir: &Path) -> std::path::PathBuf {
        data_dir.join("privacy.db")
    }

    /// Records an erasure.
    pub async fn record_erasure(&self, record: &ErasureRecord) -> Result<(), PrivacyError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO contact_erasures
                   (contact_ref, request_id, reason, actor, erased_at, key_destroyed)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(record.contact_ref.0.to_string())
            .bind(record.request_id.map(|r| r.to_string()))
            .bind(&record.reason)
            .bind(&record.actor)
            .bind(record.erased_at.to_rfc3339())
            .bind(record.key_destroyed)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Records a read of contact data.
    pub async fn record_access(&self, record: &AccessRecord) -> Result<(), PrivacyError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO contact_access
                   (contact_ref, request_id, actor, role, purpose, accessed_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(record.contact_ref.0.to_string())
            .bind(record.request_id.to_string())
            .bind(&record.actor)
            .bind(&record.role)
            .bind(&record.purpose)
            .bind(record.accessed_at.to_rfc3339())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Every recorded erasure, oldest first.
    pub async fn erasures(&self) -> Result<Vec<ErasureRecord>, PrivacyError> {
        on_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT contact_ref, request_id, reason, actor, erased_at, key_destroyed
                 FROM contact_erasures ORDER BY id",
            )
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| {
                    Ok(ErasureRecord {
                        contact_ref: ContactRef(parse_uuid(
                            &row.try_get::<String, _>("contact_ref")?,
                        )?),
                        request_id: row
                            .try_get::<Option<String>, _>("request_id")?
                            .map(|s| parse_uuid(&s))
                            .transpose()?,
                        reason: row.try_get("reason")?,
                        actor: row.try_get("actor")?,
                        erased_at: parse_time(&row.try_get::<String, _>("erased_at")?)?,
                        key_destroyed: row.try_get("key_destroyed")?,
                    })
                })
                .collect()
        })
    }

    /// Every recorded read of contact data, oldest first.
    pub async fn accesses(&self) -> Result<Vec<AccessRecord>, PrivacyError> {
        on_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT contact_ref, request_id, actor, role, purpose, accessed_at
                 FROM contact_access ORDER BY id",
            )
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|row| {
                    Ok(AccessRecord {
                        contact_ref: ContactRef(parse_uuid(
                            &row.try_get::<String, _>("contact_ref")?,
                        )?),
                        request_id: parse_uuid(&row.try_get::<String, _>("request_id")?)?,
                        actor: row.try_get("actor")?,
                        role: row.try_get("role")?,
                        purpose: row.try_get("purpose")?,
                        accessed_at: parse_time(&row.try_get::<String, _>("accessed_at")?)?,
                    })
                })
                .collect()
        })
    }
}

fn parse_uuid(text: &str) -> Result<Uuid, PrivacyError> {
    Uuid::parse_str(text).map_err(|e| PrivacyError::Ledger(format!("bad id in ledger: {e}")))
}

fn parse_time(text: &str) -> Result<Timestamp, PrivacyError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| PrivacyError::Ledger(format!("bad time in ledger: {e}")))
}

/// The contact reference a request was received with (`None`: anonymous or no such request).
pub async fn contact_of(
    log: &EventLog,
    request_id: RequestId,
) -> Result<Option<ContactRef>, PrivacyError> {
    let commits = log.load(request_id).await?;
    Ok(commits
        .iter()
        .flat_map(|c| c.commit.events.iter())
        .find_map(|e| match &e.event {
            Event::RequestReceived(r) => r.contact_ref.clone(),
            _ => None,
        }))
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureOutcome {
    /// The contact erased.
    pub contact_ref: ContactRef,
    /// The request, when the target was one.
    pub request_id: Option<RequestId>,
    /// False when the key had already been destroyed (erasure is idempotent).
    pub key_destroyed: bool,
    /// Personal attachments deleted from the media store by this erasure.
    pub media_deleted: usize,
}

/// Erases the contact behind `target`, a request id or a contact reference, and records it.
pub async fn erase(
    log: &EventLog,
    contacts: &ContactStore,
    ledger: &PrivacyLedger,
    target: Uuid,
    actor: &str,
    reason: &str,
    now: Timestamp,
) -> Result<ErasureOutcome, PrivacyError> {
    let (contact_ref, request_id) = if log.load_raw(target).await?.is_empty() {
        let reference = ContactRef(target);
        if contacts.get(&reference).await?.is_none() {
            return Err(PrivacyError::Unknown(target));
        }
        (reference, None)
    } else {
        let reference = contact_of(log, target)
            .await?
            .ok_or(PrivacyError::NoContact(target))?;
        (reference, Some(target))
    };
    erase_ref(
        contacts,
        ledger,
        contact_ref,
        request_id,
        actor,
        reason,
        now,
    )
    .await
}

async fn erase_ref(
    contacts: &ContactStore,
    ledger: &PrivacyLedger,
    contact_ref: ContactRef,
    request_id: Option<RequestId>,
    actor: &str,
    reason: &str,
    now: Timestamp,
) -> Result<ErasureOutcome, PrivacyError> {
    let key_destroyed = contacts.erase(&contact_ref).await?;
    ledger
        .record_erasure(&ErasureRecord {
            contact_ref: contact_ref.clone(),
            request_id,
            reason: reason.to_string(),
            actor: actor.to_string(),
            erased_at: now,
            key_destroyed,
        })
        .await?;
    tracing::info!(contact_ref = %contact_ref.0, request_id = ?request_id, reason, key_destroyed, "contact erased");
    Ok(ErasureOutcome {
        contact_ref,
        request_id,
        key_destroyed,
        media_deleted: 0,
    })
}

/// [`erase`], and then the request's personal attachments deleted from `media`
/// ([`crate::media::erase_request`]): what `bianmin privacy erase` and retention do. An
/// erasure named by a contact reference alone has no request, hence no attachments.
#[allow(clippy::too_many_arguments)]
pub async fn erase_with_media(
    log: &EventLog,
    contacts: &ContactStore,
    ledger: &PrivacyLedger,
    media: &crate::media::MediaStore,
    target: Uuid,
    actor: &str,
    reason: &str,
    now: Timestamp,
) -> Result<ErasureOutcome, PrivacyError> {
    let mut outcome = erase(log, contacts, ledger, target, actor, reason, now).await?;
    if let Some(request_id) = outcome.request_id {
        outcome.media_deleted = crate::media::erase_request(log, media, request_id).await?;
    }
    Ok(outcome)
}

/// How a request's contact reads in a history: the data itself is never part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactStatus {
    /// Received anonymously or without contact data.
    None,
    /// Held, readable by permitted readers.
    Present,
    /// Erased (crypto-shredded).
    Erased,
}

/// The status of `request_id`'s contact.
pub async fn contact_status(
    log: &EventLog,
    contacts: &ContactStore,
    request_id: RequestId,
) -> Result<ContactStatus, PrivacyError> {
    let Some(reference) = contact_of(log, request_id).await? else {
        return Ok(ContactStatus::None);
    };
    Ok(match contacts.get(&reference).await? {
        None => ContactStatus::None,
        Some(StoredContact::Erased) => ContactStatus::Erased,
        Some(StoredContact::Present(_)) => ContactStatus::Present,
    })
}

/// Whether `actor` may read contact data: an auditor explicitly listed in
/// `contact_readers`.
pub fn may_read_contacts(config: &PrivacyConfig, actor: &Actor) -> bool {
    actor.role == Role::Auditor && config.contact_readers.contains(&actor.id)
}

/// Reads `request_id`'s contact for a permitted reader, recording the access first (no
/// record, no data).
#[allow(clippy::too_many_arguments)]
pub async fn read_contact(
    log: &EventLog,
    contacts: &ContactStore,
    ledger: &PrivacyLedger,
    config: &PrivacyConfig,
    actor: &Actor,
    request_id: RequestId,
    purpose: &str,
    now: Timestamp,
) -> Result<Option<StoredContact>, PrivacyError> {
    if !may_read_contacts(config, actor) {
        return Err(PrivacyError::Forbidden(format!(
            "`{}` is not permitted to read contact data",
            actor.id
        )));
    }
    if purpose.trim().is_empty() || purpose.len() > 500 {
        return Err(PrivacyError::Forbidden(
            "a purpose (1 to 500 characters) is required to read contact data".into(),
        ));
    }
    let Some(reference) = contact_of(log, request_id).await? else {
        return Ok(None);
    };
    ledger
        .record_access(&AccessRecord {
            contact_ref: reference.clone(),
            request_id,
            actor: actor.id.clone(),
            role: actor.role.as_str().to_string(),
            purpose: purpose.trim().to_string(),
            accessed_at: now,
        })
        .await?;
    tracing::info!(request_id = %request_id, actor = %actor.id, "contact data read");
    Ok(contacts.get(&reference).await?)
}
