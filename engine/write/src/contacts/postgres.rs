//! The PostgreSQL backend of the contact store, shared by every replica: data keys wrapped by
//! the current key-encryption key (see [`super::kek`]), one transaction per write.
//!
//! Concurrency: a put holds the current-epoch row `FOR SHARE` and its key row `FOR UPDATE`, a
//! rotation holds the current-epoch row `FOR UPDATE`. So two replicas putting the same
//! reference agree on one key (the insert that wins), an erase and a put of one reference
//! serialise, and no key is wrapped under an epoch a concurrent rotation is retiring.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use schemas::ContactRef;
use sqlx::{PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use super::kek::{self, Kek, KekError, KekRing};
use super::{ContactError, PutOutcome, StoredContact, WriteOp, open_contact, seal_contact};

/// Keys re-wrapped per statement batch during a rotation.
const ROTATE_BATCH: i64 = 1000;

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KekRotation {
    /// The epoch keys were wrapped under before.
    pub from_epoch: i32,
    /// The new epoch.
    pub to_epoch: i32,
    /// Live keys re-wrapped.
    pub rewrapped: u64,
    /// Epochs whose KEK file was destroyed.
    pub destroyed: Vec<i32>,
}

/// The PostgreSQL backend. Cheap to clone.
#[derive(Clone)]
pub(super) struct PgContacts {
    pool: PgPool,
    ring: Arc<KekRing>,
}

impl PgContacts {
    /// Connects, migrates, and makes sure a KEK epoch exists and matches the file here.
    pub(super) async fn open(
        url: &str,
        kek_dir: &Path,
        now: DateTime<Utc>,
    ) -> Result<PgContacts, ContactError> {
        let pool = crate::stores::connect_postgres(url).await?;
        let store = PgContacts {
            pool,
            ring: Arc::new(KekRing::new(kek_dir)),
        };
        store.ensure_epoch(now).await?;
        let mut tx = store.pool.begin().await?;
        store.current(&mut tx).await?;
        tx.commit().await?;
        Ok(store)
    }

    /// Creates epoch 1 (its file and its row) when the database has none. Serialised by an
    /// advisory lock, so replicas starting together create it once.
    async fn ensure_epoch(&self, now: DateTime<Utc>) -> Result<(), ContactError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('bianmin.contact_kek'))")
            .execute(&mut *tx)
            .await?;
        let current: Option<i32> =
            sqlx::query_scalar("SELECT epoch FROM contact_kek_current WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await?;
        if current.is_none() {
            let kek = self.ring.create(1)?;
            sqlx::query(
                "INSERT INTO contact_kek_epochs (epoch, check_value, created_at) VALUES (1, $1, $2)",
            )
            .bind(kek::check_value(&kek, 1))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO contact_kek_current (id, epoch) VALUES (1, 1)")
                .execute(&mut *tx)
                .await?;
            tracing::warn!(path = %self.ring.path(1).display(),
                "created the first key-encryption key of the contact store; every process of \
                 this instance must read the same stores.kek_dir");
        }
        tx.commit().await?;
        Ok(())
    }

    /// The current epoch and its KEK, holding the epoch `FOR SHARE` until `tx` ends.
    async fn current(
        &self,
        tx: &mut Transaction<'static, Postgres>,
    ) -> Result<(i32, Arc<Kek>), ContactError> {
        let row = sqlx::query(
            "SELECT c.epoch, e.check_value FROM contact_kek_current c
             JOIN contact_kek_epochs e ON e.epoch = c.epoch WHERE c.id = 1 FOR SHARE OF c",
        )
        .fetch_one(&mut **tx)
        .await?;
        let epoch: i32 = row.try_get("epoch")?;
        let check: Vec<u8> = row.try_get("check_value")?;
        let kek = self.ring.load(epoch)?;
        if !kek::matches_check(&kek, epoch, &check) {
            return Err(KekError::Mismatch(epoch).into());
        }
        Ok((epoch, kek))
    }

    /// Unwraps a stored key.
    fn unwrap(&self, key_id: Uuid, epoch: i32, wrapped: &[u8]) -> Result<[u8; 32], ContactError> {
        let kek = self.ring.load(epoch)?;
        kek::unwrap(&kek, key_id, epoch, wrapped).ok_or(ContactError::Corrupt(key_id))
    }

    /// One write in its own transaction.
    pub(super) async fn write(
        &self,
        contact_ref: &ContactRef,
        now: DateTime<Utc>,
        op: WriteOp,
    ) -> Result<PutOutcome, ContactError> {
        let id = contact_ref.0;
        let mut tx = self.pool.begin().await?;
        let outcome = match op {
            WriteOp::Erase => {
                sqlx::query("DELETE FROM resident_contacts WHERE contact_ref = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query(
                    "UPDATE contact_keys SET wrapped_key = NULL, kek_epoch = NULL, erased_at = $2
                     WHERE key_id = $1 AND wrapped_key IS NOT NULL",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                match done.rows_affected() {
                    0 => PutOutcome::Kept,
                    _ => PutOutcome::Stored,
                }
            }
            WriteOp::Discard => {
                sqlx::query("DELETE FROM resident_contacts WHERE contact_ref = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                // An erased reference keeps its tombstone.
                sqlx::query(
                    "DELETE FROM contact_keys WHERE key_id = $1 AND wrapped_key IS NOT NULL",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                PutOutcome::Stored
            }
            WriteOp::Put {
                plaintext,
                fresh_key,
                replace,
            } => {
                self.put(&mut tx, contact_ref, now, &plaintext, &fresh_key, replace)
                    .await?
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn put(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        contact_ref: &ContactRef,
        now: DateTime<Utc>,
        plaintext: &[u8],
        fresh_key: &[u8],
        replace: bool,
    ) -> Result<PutOutcome, ContactError> {
        let id = contact_ref.0;
        let (epoch, kek) = self.current(tx).await?;
        // The key id is the reference, so concurrent first puts (from any replica) agree on
        // one key: whichever insert wins, every put reads the winner's key back.
        sqlx::query(
            "INSERT INTO contact_keys (key_id, wrapped_key, kek_epoch, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (key_id) DO NOTHING",
        )
        .bind(id)
        .bind(kek::wrap(&kek, id, epoch, fresh_key))
        .bind(epoch)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        let row = sqlx::query(
            "SELECT wrapped_key, kek_epoch FROM contact_keys WHERE key_id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
        let (Some(wrapped), Some(key_epoch)): (Option<Vec<u8>>, Option<i32>) =
            (row.try_get("wrapped_key")?, row.try_get("kek_epoch")?)
        else {
            return Ok(PutOutcome::Erased);
        };
        if !replace {
            let stored: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM resident_contacts WHERE contact_ref = $1")
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await?;
            if stored.is_some() {
                return Ok(PutOutcome::Kept);
            }
        }
        let key = self.unwrap(id, key_epoch, &wrapped)?;
        let (nonce, ciphertext) = seal_contact(contact_ref, &key, plaintext)?;
        sqlx::query(
            "INSERT INTO resident_contacts (contact_ref, nonce, ciphertext, created_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (contact_ref) DO UPDATE SET nonce = excluded.nonce,
                 ciphertext = excluded.ciphertext",
        )
        .bind(id)
        .bind(nonce)
        .bind(ciphertext)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(PutOutcome::Stored)
    }

    /// The contact under `contact_ref`: `None` when never stored. A key re-wrapped by a
    /// rotation between the read and the unwrap is read again.
    pub(super) async fn get(
        &self,
        contact_ref: &ContactRef,
    ) -> Result<Option<StoredContact>, ContactError> {
        let mut attempt = 0;
        loop {
            match self.get_once(contact_ref).await {
                Err(ContactError::Kek(KekError::Missing { .. })) if attempt == 0 => attempt += 1,
                other => return other,
            }
        }
    }

    async fn get_once(
        &self,
        contact_ref: &ContactRef,
    ) -> Result<Option<StoredContact>, ContactError> {
        let row = sqlx::query(
            "SELECT k.wrapped_key, k.kek_epoch, c.nonce, c.ciphertext FROM contact_keys k
             LEFT JOIN resident_contacts c ON c.contact_ref = k.key_id WHERE k.key_id = $1",
        )
        .bind(contact_ref.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let (Some(wrapped), Some(epoch)): (Option<Vec<u8>>, Option<i32>) =
            (row.try_get("wrapped_key")?, row.try_get("kek_epoch")?)
        else {
            return Ok(Some(StoredContact::Erased));
        };
        let (Some(nonce), Some(ciphertext)): (Option<Vec<u8>>, Option<Vec<u8>>) =
            (row.try_get("nonce")?, row.try_get("ciphertext")?)
        else {
            return Ok(None);
        };
        let key = self.unwrap(contact_ref.0, epoch, &wrapped)?;
        open_contact(contact_ref, &key, &nonce, &ciphertext).map(Some)
    }

    /// When the current epoch was created.
    pub(super) async fn current_epoch_created_at(&self) -> Result<DateTime<Utc>, ContactError> {
        Ok(sqlx::query_scalar(
            "SELECT e.created_at FROM contact_kek_current c
             JOIN contact_kek_epochs e ON e.epoch = c.epoch WHERE c.id = 1",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Re-wraps every live key under a new epoch in one transaction, then destroys the KEK
    /// files of every older epoch. Puts wait for the transaction (they hold the current epoch
    /// `FOR SHARE`); reads do not.
    pub(super) async fn rotate(&self, now: DateTime<Utc>) -> Result<KekRotation, ContactError> {
        let mut tx = self.pool.begin().await?;
        let from_epoch: i32 =
            sqlx::query_scalar("SELECT epoch FROM contact_kek_current WHERE id = 1 FOR UPDATE")
                .fetch_one(&mut *tx)
                .await?;
        let newest: i32 = sqlx::query_scalar("SELECT MAX(epoch) FROM contact_kek_epochs")
            .fetch_one(&mut *tx)
            .await?;
        let to_epoch = newest + 1;
        let kek = self.ring.create(to_epoch)?;
        sqlx::query(
            "INSERT INTO contact_kek_epochs (epoch, check_value, created_at) VALUES ($1, $2, $3)",
        )
        .bind(to_epoch)
        .bind(kek::check_value(&kek, to_epoch))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let rewrapped = self.rewrap_all(&mut tx, &kek, to_epoch).await?;
        sqlx::query("UPDATE contact_kek_current SET epoch = $1 WHERE id = 1")
            .bind(to_epoch)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE contact_kek_epochs SET retired_at = $2 WHERE epoch < $1 AND retired_at IS NULL",
        )
        .bind(to_epoch)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // Only after the commit: until then the old epoch is still the one in force. A crash
        // here leaves old files behind; the next rotation destroys them.
        let mut destroyed = Vec::new();
        for epoch in self.ring.epochs_on_disk()? {
            if epoch < to_epoch && self.ring.destroy(epoch)? {
                destroyed.push(epoch);
            }
        }
        tracing::info!(
            from_epoch,
            to_epoch,
            rewrapped,
            ?destroyed,
            "key-encryption key rotated"
        );
        Ok(KekRotation {
            from_epoch,
            to_epoch,
            rewrapped,
            destroyed,
        })
    }

    /// Re-wraps, in batches, every live key not yet under `epoch`.
    async fn rewrap_all(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        kek: &Kek,
        epoch: i32,
    ) -> Result<u64, ContactError> {
        let mut rewrapped = 0u64;
        let mut after = Uuid::nil();
        loop {
            let rows = sqlx::query(
                "SELECT key_id, wrapped_key, kek_epoch FROM contact_keys
                 WHERE wrapped_key IS NOT NULL AND kek_epoch <> $1 AND key_id > $2
                 ORDER BY key_id LIMIT $3 FOR UPDATE",
            )
            .bind(epoch)
            .bind(after)
            .bind(ROTATE_BATCH)
            .fetch_all(&mut **tx)
            .await?;
            let Some(last) = rows.last() else {
                return Ok(rewrapped);
            };
            after = last.try_get("key_id")?;
            for row in &rows {
                let key_id: Uuid = row.try_get("key_id")?;
                let old: i32 = row.try_get("kek_epoch")?;
                let wrapped: Vec<u8> = row.try_get("wrapped_key")?;
                let key = self.unwrap(key_id, old, &wrapped)?;
                sqlx::query(
                    "UPDATE contact_keys SET wrapped_key = $2, kek_epoch = $3 WHERE key_id = $1",
                )
                .bind(key_id)
                .bind(kek::wrap(kek, key_id, epoch, &key))
                .bind(epoch)
                .execute(&mut **tx)
                .await?;
                rewrapped += 1;
            }
        }
    }

    /// Checks the database answers.
    pub(super) async fn ping(&self) -> Result<(), ContactError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The raw stored ciphertext.
    pub(super) async fn raw_ciphertext(
        &self,
        contact_ref: &ContactRef,
    ) -> Result<Option<Vec<u8>>, ContactError> {
        Ok(
            sqlx::query_scalar("SELECT ciphertext FROM resident_contacts WHERE contact_ref = $1")
                .bind(contact_ref.0)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The wrapped key and its epoch.
    pub(super) async fn raw_wrapped_key(
        &self,
        contact_ref: &ContactRef,
    ) -> Result<Option<(i32, Vec<u8>)>, ContactError> {
        let row = sqlx::query("SELECT kek_epoch, wrapped_key FROM contact_keys WHERE key_id = $1")
            .bind(contact_ref.0)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let epoch: Option<i32> = row.try_get("kek_epoch")?;
        let wrapped: Option<Vec<u8>> = row.try_get("wrapped_key")?;
        Ok(epoch.zip(wrapped))
    }

    /// The data key, unwrapped.
    pub(super) async fn raw_key(
        &self,
        contact_ref: &ContactRef,
    ) -> Result<Option<Vec<u8>>, ContactError> {
        match self.raw_wrapped_key(contact_ref).await? {
            Some((epoch, wrapped)) => {
                Ok(Some(self.unwrap(contact_ref.0, epoch, &wrapped)?.to_vec()))
            }
            None => Ok(None),
        }
    }
}
