//! A thin layer over the two database kinds: one pool, one transaction, typed values and rows.
//!
//! Every statement of the crate is written once, with `$1`-style placeholders both PostgreSQL
//! and SQLite accept. Values carry their type even when NULL so PostgreSQL can infer parameter
//! types. Timestamps are `timestamptz` on PostgreSQL and fixed-width RFC 3339 text
//! (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, which sorts like time) on SQLite.

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::postgres::{PgArguments, PgPool, PgRow};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, Postgres, Row as _, Sqlite, Transaction};

/// The timestamp text format stored by SQLite (fixed width so text order is time order).
const SQLITE_TS: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// Which database a handle talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

/// A bound statement parameter, typed even when NULL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(Option<bool>),
    Ts(Option<DateTime<Utc>>),
    Float(Option<f64>),
    /// PostgreSQL arrays (for `UNNEST` and `= ANY`); SQLite statements never take them.
    TextArr(Vec<Option<String>>),
    IntArr(Vec<Option<i64>>),
    BoolArr(Vec<Option<bool>>),
    TsArr(Vec<Option<DateTime<Utc>>>),
    FloatArr(Vec<Option<f64>>),
}

impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(Some(v.to_owned()))
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(Some(v))
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Val {
        Val::Text(v)
    }
}
impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(Some(v))
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Val {
        Val::Int(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Val {
        Val::Bool(Some(v))
    }
}
impl From<Option<bool>> for Val {
    fn from(v: Option<bool>) -> Val {
        Val::Bool(v)
    }
}
impl From<Option<f64>> for Val {
    fn from(v: Option<f64>) -> Val {
        Val::Float(v)
    }
}
impl From<DateTime<Utc>> for Val {
    fn from(v: DateTime<Utc>) -> Val {
        Val::Ts(Some(v))
    }
}
impl From<Option<DateTime<Utc>>> for Val {
    fn from(v: Option<DateTime<Utc>>) -> Val {
        Val::Ts(v)
    }
}

/// SQLite's text form of a timestamp.
pub(crate) fn sqlite_ts(t: &DateTime<Utc>) -> String {
    t.format(SQLITE_TS).to_string()
}

fn pg_query(sql: &str, args: &[Val]) -> Query<'static, Postgres, PgArguments> {
    let mut q = sqlx::query(AssertSqlSafe(sql.to_owned()));
    for a in args {
        q = match a {
            Val::Text(v) => q.bind(v.clone()),
            Val::Int(v) => q.bind(*v),
            Val::Bool(v) => q.bind(*v),
            Val::Ts(v) => q.bind(*v),
            Val::Float(v) => q.bind(*v),
            Val::TextArr(v) => q.bind(v.clone()),
            Val::IntArr(v) => q.bind(v.clone()),
            Val::BoolArr(v) => q.bind(v.clone()),
            Val::TsArr(v) => q.bind(v.clone()),
            Val::FloatArr(v) => q.bind(v.clone()),
        };
    }
    q
}

fn lite_query(sql: &str, args: &[Val]) -> Query<'static, Sqlite, SqliteArguments> {
    let mut q = sqlx::query(AssertSqlSafe(sql.to_owned()));
    for a in args {
        q = match a {
            Val::Text(v) => q.bind(v.clone()),
            Val::Int(v) => q.bind(*v),
            Val::Bool(v) => q.bind(*v),
            Val::Ts(v) => q.bind(v.as_ref().map(sqlite_ts)),
            Val::Float(v) => q.bind(*v),
            // SQLite has no arrays: the crate never binds them there; bound as JSON text.
            Val::TextArr(v) => q.bind(serde_json::to_string(v).ok()),
            Val::IntArr(v) => q.bind(serde_json::to_string(v).ok()),
            Val::BoolArr(v) => q.bind(serde_json::to_string(v).ok()),
            Val::TsArr(v) => q.bind(serde_json::to_string(v).ok()),
            Val::FloatArr(v) => q.bind(serde_json::to_string(v).ok()),
        };
    }
    q
}

/// A connection pool of either kind.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Pg(PgPool),
    Lite(SqlitePool),
}

impl Pool {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Pool::Pg(_) => Backend::Postgres,
            Pool::Lite(_) => Backend::Sqlite,
        }
    }

    /// Begins a write transaction. On SQLite it is `BEGIN IMMEDIATE`: the writer lock is taken
    /// up front, so a read-then-write inside it can never lose a race.
    pub(crate) async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Pool::Pg(p) => Tx::Pg(p.begin().await?),
            Pool::Lite(p) => Tx::Lite(p.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    pub(crate) async fn fetch(&self, sql: &str, args: &[Val]) -> Result<Vec<Row>, sqlx::Error> {
        Ok(match self {
            Pool::Pg(p) => pg_query(sql, args)
                .fetch_all(p)
                .await?
                .into_iter()
                .map(Row::Pg)
                .collect(),
            Pool::Lite(p) => lite_query(sql, args)
                .fetch_all(p)
                .await?
                .into_iter()
                .map(Row::Lite)
                .collect(),
        })
    }
}

/// An open transaction of either kind; dropped without `commit` it rolls back.
pub(crate) enum Tx {
    Pg(Transaction<'static, Postgres>),
    Lite(Transaction<'static, Sqlite>),
}

impl Tx {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Tx::Pg(_) => Backend::Postgres,
            Tx::Lite(_) => Backend::Sqlite,
        }
    }

    pub(crate) async fn exec(&mut self, sql: &str, args: &[Val]) -> Result<u64, sqlx::Error> {
        Ok(match self {
            Tx::Pg(t) => pg_query(sql, args).execute(&mut **t).await?.rows_affected(),
            Tx::Lite(t) => lite_query(sql, args)
                .execute(&mut **t)
                .await?
                .rows_affected(),
        })
    }

    pub(crate) async fn fetch(&mut self, sql: &str, args: &[Val]) -> Result<Vec<Row>, sqlx::Error> {
        Ok(match self {
            Tx::Pg(t) => pg_query(sql, args)
                .fetch_all(&mut **t)
                .await?
                .into_iter()
                .map(Row::Pg)
                .collect(),
            Tx::Lite(t) => lite_query(sql, args)
                .fetch_all(&mut **t)
                .await?
                .into_iter()
                .map(Row::Lite)
                .collect(),
        })
    }

    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Pg(t) => t.commit().await,
            Tx::Lite(t) => t.commit().await,
        }
    }
}

/// A result row of either kind, read by column index.
pub(crate) enum Row {
    Pg(PgRow),
    Lite(SqliteRow),
}

impl Row {
    pub(crate) fn text(&self, i: usize) -> Result<Option<String>, sqlx::Error> {
        match self {
            Row::Pg(r) => r.try_get(i),
            Row::Lite(r) => r.try_get(i),
        }
    }

    pub(crate) fn int(&self, i: usize) -> Result<Option<i64>, sqlx::Error> {
        match self {
            Row::Pg(r) => r.try_get(i),
            Row::Lite(r) => r.try_get(i),
        }
    }

    pub(crate) fn bool(&self, i: usize) -> Result<Option<bool>, sqlx::Error> {
        match self {
            Row::Pg(r) => r.try_get(i),
            Row::Lite(r) => r.try_get(i),
        }
    }

    pub(crate) fn float(&self, i: usize) -> Result<Option<f64>, sqlx::Error> {
        match self {
            Row::Pg(r) => r.try_get(i),
            Row::Lite(r) => r.try_get(i),
        }
    }

    pub(crate) fn ts(&self, i: usize) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        match self {
            Row::Pg(r) => r.try_get(i),
            Row::Lite(r) => {
                let text: Option<String> = r.try_get(i)?;
                text.map(|s| {
                    NaiveDateTime::parse_from_str(&s, SQLITE_TS)
                        .map(|n| n.and_utc())
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
                })
                .transpose()
            }
        }
    }
}
