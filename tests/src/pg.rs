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

/// A PostgreSQL server of its own: `initdb` in a temporary directory, started on a free
/// loopback port, stopped (immediately) on drop. For tests that read the server's files —
/// heap, WAL, everything — which the shared server does not let them do.
pub struct PrivatePg {
    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub url: String,
    /// The server's data directory.
    pub data_dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    _root: tempfile::TempDir,
}

/// The directory of the PostgreSQL server binaries (`/usr/lib/postgresql/<v>/bin`, newest).
fn pg_bin() -> anyhow::Result<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no PostgreSQL binaries under /usr/lib/postgresql"))
}

/// A command run as the `postgres` user when this process is root (the server refuses to
/// run as root).
fn as_server_user(program: &std::path::Path) -> std::process::Command {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false);
    if root {
        let mut command = std::process::Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        std::process::Command::new(program)
    }
}

impl PrivatePg {
    /// Initialises and starts the server, waiting until it accepts connections.
    pub async fn start() -> anyhow::Result<PrivatePg> {
        let bin = pg_bin()?;
        let root = tempfile::tempdir()?;
        let data_dir = root.path().join("data");
        let _ = std::process::Command::new("chown")
            .args(["postgres"])
            .arg(root.path())
            .status();
        let init = as_server_user(&bin.join("initdb"))
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-D"])
            .arg(&data_dir)
            .output()?;
        anyhow::ensure!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='{}'",
            root.path().display()
        );
        let start = as_server_user(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data_dir)
            .args(["-o", &options, "-l"])
            .arg(root.path().join("server.log"))
            .args(["-w", "start"])
            .output()?;
        anyhow::ensure!(
            start.status.success(),
            "pg_ctl start failed: {}",
            String::from_utf8_lossy(&start.stderr)
        );
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let conn = PgConnection::connect(&url).await?;
        conn.close().await?;
        Ok(PrivatePg {
            url,
            data_dir,
            bin,
            _root: root,
        })
    }

    /// Forces a checkpoint: every dirty page is written to the data files.
    pub async fn checkpoint(&self) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&self.url).await?;
        sqlx::query("CHECKPOINT").execute(&mut conn).await?;
        conn.close().await?;
        Ok(())
    }

    /// Every file under the data directory (heap, indexes, WAL, everything), with its bytes.
    pub fn files(&self) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        fn walk(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if let Ok(bytes) = std::fs::read(&path) {
                    out.push((path, bytes));
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.data_dir, &mut out);
        out
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
