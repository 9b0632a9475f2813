//! PostgreSQL harness: a fresh database per test on the local server, dropped at the end.
//!
//! The server is `postgres://postgres@127.0.0.1:5432` unless `BIANMIN_TEST_PG_URL` names
//! another (a server URL without database, or with one to connect through for admin work).

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use uuid::Uuid;

/// The server URL used for test databases.
pub fn server_url() -> String {
    std::env::var("BIANMIN_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

fn with_db(server: &str, db: &str) -> String {
    let base = server.trim_end_matches('/');
    // Replace a trailing database path, if any, keeping scheme, credentials and host.
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}/{db}")
}

/// A fresh, empty database named `bianmin_t_<uuid>`.
pub struct TestDb {
    /// Connection URL of the database.
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDb {
    /// Creates the database.
    pub async fn create() -> anyhow::Result<TestDb> {
        #[allow(clippy::disallowed_methods)] // test databases need unique names
        let name = format!("bianmin_t_{}", Uuid::new_v4().simple());
        let server = server_url();
        let admin_url = with_db(&server, "postgres");
        let mut conn = PgConnection::connect(&admin_url).await?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(TestDb {
            url: with_db(&server, &name),
            name,
            admin_url,
        })
    }

    /// Drops the database (best effort: errors are logged, not raised).
    pub async fn drop_db(self) {
        let result: anyhow::Result<()> = async {
            let mut conn = PgConnection::connect(&self.admin_url).await?;
            sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await?;
            conn.close().await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, db = %self.name, "could not drop test database");
        }
    }
}
