//! The delivery table: one row per notification and channel, in the projections database
//! (PostgreSQL or SQLite), plus the notifier's log checkpoint.
//!
//! The tables are the notifier's own (`notify_deliveries`, `notify_checkpoint`), created
//! idempotently when the store opens, so the projections' migrations and rebuilds never touch
//! them. Rows never hold contact data: the document is stored without its recipient, which is
//! read from the encrypted contact store at each attempt. Times are Unix milliseconds
//! (`BIGINT`), the same on both databases. `recipient` (the addressed unit of a unit
//! notification) came later: [`DeliveryStore::connect`] adds it to older tables.

use std::sync::Once;

use serde::Serialize;
use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AssertSqlSafe, Row as _};

use super::NotifyError;

/// A notification's delivery state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for its first attempt (or replayed).
    Pending,
    /// An attempt failed; another is scheduled at `next_attempt_at`.
    Failed,
    /// Delivered: JetStream stored it, or the webhook answered 2xx.
    Sent,
    /// Every attempt failed: in the dead-letter list until replayed.
    Dead,
    /// Not sent, on purpose: the reason is in `last_error` (`contact_erased`, `anonymous`,
    /// `no_reply_requested`, `no_contact`).
    Suppressed,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Failed,
        Status::Sent,
        Status::Dead,
        Status::Suppressed,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Failed => "failed",
            Status::Sent => "sent",
            Status::Dead => "dead",
            Status::Suppressed => "suppressed",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// One row of the delivery table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// UUIDv5 of the event id and the channel; the `Nats-Msg-Id` and webhook id.
    pub notification_id: String,
    /// The event told about.
    pub event_id: String,
    /// The request.
    pub request_id: String,
    /// The kind (`request_accepted`, …).
    pub kind: String,
    /// `nats` or `webhook:<name>`.
    pub channel: String,
    /// Delivery state.
    pub status: Status,
    /// Attempts made.
    pub attempts: i64,
    /// The last failure, or the suppression reason.
    pub last_error: Option<String>,
    /// When the next attempt is due (Unix ms).
    pub next_attempt_at: i64,
    /// When the row was written (Unix ms).
    pub created_at: i64,
    /// Last change (Unix ms).
    pub updated_at: i64,
    /// When it was delivered (Unix ms).
    pub sent_at: Option<i64>,
    /// Template version it was rendered from.
    pub template_version: String,
    /// The document without its recipient (JSON).
    #[serde(skip)]
    pub document: String,
    /// The contact reference the recipient is read from at each attempt.
    #[serde(skip)]
    pub contact_ref: Option<String>,
    /// The unit a unit notification is addressed to (`department:<code>`, …); `None` for a
    /// resident's.
    pub recipient: Option<String>,
}

/// A row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// See [`Delivery::notification_id`].
    pub notification_id: String,
    /// See [`Delivery::event_id`].
    pub event_id: String,
    /// See [`Delivery::request_id`].
    pub request_id: String,
    /// See [`Delivery::kind`].
    pub kind: String,
    /// See [`Delivery::channel`].
    pub channel: String,
    /// `Pending` or `Suppressed`.
    pub status: Status,
    /// The suppression reason.
    pub reason: Option<String>,
    /// See [`Delivery::template_version`].
    pub template_version: String,
    /// See [`Delivery::document`].
    pub document: String,
    /// See [`Delivery::contact_ref`].
    pub contact_ref: Option<String>,
    /// See [`Delivery::recipient`].
    pub recipient: Option<String>,
}

const SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS notify_checkpoint (
        id INTEGER PRIMARY KEY,
        position BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS notify_deliveries (
        notification_id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        request_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        channel TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt_at BIGINT NOT NULL,
        lease_until BIGINT NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        sent_at BIGINT,
        template_version TEXT NOT NULL,
        document TEXT NOT NULL,
        contact_ref TEXT
    )",
    "CREATE INDEX IF NOT EXISTS notify_deliveries_due
        ON notify_deliveries (status, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS notify_deliveries_request
        ON notify_deliveries (request_id)",
];

/// Migration 2 (unit notifications): the addressed unit. Added to tables created before it;
/// the same statement on PostgreSQL and SQLite.
const ADD_RECIPIENT: &str = "ALTER TABLE notify_deliveries ADD COLUMN recipient TEXT";

const COLUMNS: &str = "notification_id, event_id, request_id, kind, channel, status, attempts, \
     last_error, next_attempt_at, created_at, updated_at, sent_at, template_version, document, \
     contact_ref, recipient";

/// The delivery table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DeliveryStore {
    pool: AnyPool,
}

fn db(error: sqlx::Error) -> NotifyError {
    NotifyError::Store(error.to_string())
}

fn row_to_delivery(row: &AnyRow) -> Result<Delivery, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(Delivery {
        notification_id: row.try_get("notification_id")?,
        event_id: row.try_get("event_id")?,
        request_id: row.try_get("request_id")?,
        kind: row.try_get("kind")?,
        channel: row.try_get("channel")?,
        status: Status::parse(&status).unwrap_or(Status::Failed),
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        sent_at: row.try_get("sent_at")?,
        template_version: row.try_get("template_version")?,
        document: row.try_get("document")?,
        contact_ref: row.try_get("contact_ref")?,
        recipient: row.try_get("recipient")?,
    })
}

/// Adds the `recipient` column where it is missing. Two engines starting at once may both
/// try: the loser's `ALTER` fails, and the column is then there.
async fn migrate_recipient(pool: &AnyPool) -> Result<(), NotifyError> {
    let has = || sqlx::query("SELECT recipient FROM notify_deliveries LIMIT 1").fetch_all(pool);
    if has().await.is_ok() {
        return Ok(());
    }
    let added = sqlx::query(ADD_RECIPIENT).execute(pool).await;
    match (added, has().await) {
        (_, Ok(_)) => Ok(()),
        (Err(error), Err(_)) => Err(db(error)),
        (Ok(_), Err(error)) => Err(db(error)),
    }
}

impl DeliveryStore {
    /// Connects to `url` (`postgres://…` or `sqlite://…`) and creates the tables if missing.
    pub async fn connect(url: &str) -> Result<DeliveryStore, NotifyError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .connect(url)
            .await
            .map_err(db)?;
        for statement in SCHEMA {
            sqlx::query(statement).execute(&pool).await.map_err(db)?;
        }
        migrate_recipient(&pool).await?;
        Ok(DeliveryStore { pool })
    }

    /// The log position the notifier has read through (0: nothing yet).
    pub async fn checkpoint(&self) -> Result<u64, NotifyError> {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM notify_checkpoint WHERE id = 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        Ok(position.unwrap_or(0).max(0) as u64)
    }

    /// Writes `rows` (a row already there is left as it is) and moves the checkpoint to
    /// `position`, in one transaction.
    pub async fn enqueue(
        &self,
        rows: &[NewDelivery],
        position: u64,
        now_ms: i64,
    ) -> Result<(), NotifyError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        for row in rows {
            sqlx::query(
                "INSERT INTO notify_deliveries (notification_id, event_id, request_id, kind,
                    channel, status, attempts, last_error, next_attempt_at, lease_until,
                    created_at, updated_at, template_version, document, contact_ref, recipient)
                 VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, 0, $8, $8, $9, $10, $11, $12)
                 ON CONFLICT (notification_id) DO NOTHING",
            )
            .bind(&row.notification_id)
            .bind(&row.event_id)
            .bind(&row.request_id)
            .bind(&row.kind)
            .bind(&row.channel)
            .bind(row.status.as_str())
            .bind(row.reason.clone())
            .bind(now_ms)
            .bind(&row.template_version)
            .bind(&row.document)
            .bind(row.contact_ref.clone())
            .bind(row.recipient.clone())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        sqlx::query(
            "INSERT INTO notify_checkpoint (id, position) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET position = excluded.position
             WHERE notify_checkpoint.position < excluded.position",
        )
        .bind(position as i64)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    /// Claims up to `limit` rows due at `now_ms` for `lease_ms`: another notifier on the same
    /// database skips them until the lease ends.
    pub async fn claim_due(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>, NotifyError> {
        let sql = format!(
            "UPDATE notify_deliveries SET lease_until = $1
             WHERE lease_until < $2 AND status IN ('pending', 'failed')
               AND notification_id IN (
                 SELECT notification_id FROM notify_deliveries
                 WHERE status IN ('pending', 'failed') AND next_attempt_at <= $2
                   AND lease_until < $2
                 ORDER BY next_attempt_at LIMIT $3)
             RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now_ms + lease_ms)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(row_to_delivery)
            .collect::<Result<_, _>>()
            .map_err(db)
    }

    /// Records the outcome of an attempt: `status` with the attempt count, error and next
    /// attempt; the lease is released.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_attempt(
        &self,
        notification_id: &str,
        status: Status,
        attempts: i64,
        error: Option<&str>,
        next_attempt_at: i64,
        now_ms: i64,
    ) -> Result<(), NotifyError> {
        let sent_at = (status == Status::Sent).then_some(now_ms);
        sqlx::query(
            "UPDATE notify_deliveries SET status = $1, attempts = $2, last_error = $3,
                next_attempt_at = $4, lease_until = 0, updated_at = $5,
                sent_at = COALESCE($6, sent_at)
             WHERE notification_id = $7",
        )
        .bind(status.as_str())
        .bind(attempts)
        .bind(error.map(str::to_string))
        .bind(next_attempt_at)
        .bind(now_ms)
        .bind(sent_at)
        .bind(notification_id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Rows with `status` (all when `None`), of `request_id` when given, newest first.
    pub async fn list(
        &self,
        status: Option<Status>,
        request_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Delivery>, NotifyError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM notify_deliveries
             WHERE ($1 = '' OR status = $1) AND ($2 = '' OR request_id = $2)
             ORDER BY created_at DESC, notification_id LIMIT $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(status.map_or("", Status::as_str))
            .bind(request_id.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(row_to_delivery)
            .collect::<Result<_, _>>()
            .map_err(db)
    }

    /// One row.
    pub async fn get(&self, notification_id: &str) -> Result<Option<Delivery>, NotifyError> {
        let sql = format!("SELECT {COLUMNS} FROM notify_deliveries WHERE notification_id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(notification_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(row_to_delivery).transpose().map_err(db)
    }

    /// Queues a `dead`, `failed` or `sent` row again with a fresh attempt budget; returns the
    /// row as it now stands (`None`: unknown id). A `suppressed` or `pending` row is left
    /// alone (its returned status says so).
    pub async fn replay(
        &self,
        notification_id: &str,
        now_ms: i64,
    ) -> Result<Option<Delivery>, NotifyError> {
        sqlx::query(
            "UPDATE notify_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1,
                lease_until = 0, updated_at = $1
             WHERE notification_id = $2 AND status IN ('dead', 'failed', 'sent')",
        )
        .bind(now_ms)
        .bind(notification_id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        self.get(notification_id).await
    }

    /// Queues every dead row again; returns how many.
    pub async fn replay_all_dead(&self, now_ms: i64) -> Result<u64, NotifyError> {
        let done = sqlx::query(
            "UPDATE notify_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1,
                lease_until = 0, updated_at = $1
             WHERE status = 'dead'",
        )
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    /// Rows waiting for an attempt (`pending` or `failed`).
    pub async fn pending_count(&self) -> Result<i64, NotifyError> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM notify_deliveries WHERE status IN ('pending', 'failed')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }
}
