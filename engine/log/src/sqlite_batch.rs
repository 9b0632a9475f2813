//! Group commit on SQLite: many queued writes applied in one `BEGIN IMMEDIATE` transaction,
//! each under its own savepoint, with one fsync at commit. Shared by the embedded event log
//! and the contact store, whose single writer tasks drain their queues through it.

use futures::future::BoxFuture;
use sqlx::{Sqlite, SqlitePool, Transaction};

/// The transaction a batch runs in.
pub type Tx = Transaction<'static, Sqlite>;

/// Applies `apply` to every item of `batch` in one transaction, one result per item, in order.
/// Each item runs under its own savepoint, so one that fails leaves the others intact; when the
/// transaction itself cannot be begun or committed, every item fails with `unavailable`.
pub async fn write_batch<T, R, E>(
    pool: &SqlitePool,
    batch: &[T],
    apply: impl for<'a> Fn(&'a mut Tx, &'a T) -> BoxFuture<'a, Result<R, E>>,
    unavailable: impl Fn(String) -> E,
) -> Vec<Result<R, E>> {
    let fail_all = |error: sqlx::Error| {
        let message = error.to_string();
        batch
            .iter()
            .map(|_| Err(unavailable(message.clone())))
            .collect()
    };
    let mut tx = match pool.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(error) => return fail_all(error),
    };
    let mut results = Vec::with_capacity(batch.len());
    for item in batch {
        if let Err(error) = sqlx::query("SAVEPOINT one_write").execute(&mut *tx).await {
            return fail_all(error);
        }
        let result = apply(&mut tx, item).await;
        let end = if result.is_ok() {
            "RELEASE one_write"
        } else {
            "ROLLBACK TO one_write; RELEASE one_write"
        };
        if let Err(error) = sqlx::raw_sql(end).execute(&mut *tx).await {
            return fail_all(error);
        }
        results.push(result);
    }
    match tx.commit().await {
        Ok(()) => results,
        Err(error) => fail_all(error),
    }
}
