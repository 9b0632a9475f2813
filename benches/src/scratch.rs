//! Per-run isolation: a unique run tag, the scratch PostgreSQL database (`bianmin_bench_<tag>`)
//! and the names of the JetStream streams a run creates. Everything is removed at the end.

use std::str::FromStr;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

/// A tag unique to this run: seconds since the epoch and the process id.
pub fn run_tag() -> String {
    // The harness names its scratch resources after the wall clock; this is its only clock read
    // outside of `Instant`, which is what every measurement uses.
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now();
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs}_{}", std::process::id())
}

/// `url` with its database name replaced by `database` (query parameters kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_and_path = &base[authority_start..];
    let prefix = match host_and_path.find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{prefix}/{database}?{query}"),
        None => format!("{prefix}/{database}"),
    }
}

/// The scratch database of one run.
#[derive(Debug)]
pub struct ScratchDb {
    admin_url: String,
    /// Database name.
    pub name: String,
    /// URL of the scratch database.
    pub url: String,
}

impl ScratchDb {
    /// Creates `bianmin_bench_<tag>` through the server at `admin_url`.
    pub async fn create(admin_url: &str, tag: &str) -> anyhow::Result<ScratchDb> {
        let name = format!("bianmin_bench_{tag}");
        let mut admin = connect(admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .with_context(|| format!("creating database {name}"))?;
        admin.close().await.ok();
        Ok(ScratchDb {
            admin_url: admin_url.to_string(),
            url: with_database(admin_url, &name),
            name,
        })
    }

    /// Drops the database, disconnecting anyone still on it.
    pub async fn drop_now(self) -> anyhow::Result<()> {
        let mut admin = connect(&self.admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await
        .with_context(|| format!("dropping database {}", self.name))?;
        admin.close().await.ok();
        Ok(())
    }
}

/// One connection to `url`, with statement logging off (the harness times queries itself).
pub async fn connect(url: &str) -> anyhow::Result<PgConnection> {
    let options = PgConnectOptions::from_str(url)
        .with_context(|| format!("parsing PostgreSQL URL {url}"))?
        .disable_statement_logging();
    options
        .connect()
        .await
        .with_context(|| format!("connecting to PostgreSQL at {url}"))
}

/// The server's version string (`SHOW server_version`).
pub async fn postgres_version(url: &str) -> anyhow::Result<String> {
    let mut conn = connect(url).await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await.ok();
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced_and_query_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "b1"),
            "postgres://postgres@127.0.0.1:5432/b1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "b2"),
            "postgres://u:p@h/b2?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "b3"),
            "postgres://h:5432/b3"
        );
    }

    #[test]
    fn run_tags_are_lowercase_identifier_safe() {
        let tag = run_tag();
        assert!(tag.chars().all(|c| c.is_ascii_digit() || c == '_'), "{tag}");
    }
}
