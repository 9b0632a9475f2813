//! `bianmin serve` as a child process: its config file in a temp dir, start-up until `/readyz`
//! answers, its peak RSS from `/proc/<pid>/status` (VmHWM), and an orderly stop (SIGTERM).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::{Child, Command};

/// What the engine is started with.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// The `bianmin` binary.
    pub binary: PathBuf,
    /// NATS URL (the event log runs on JetStream).
    pub nats_url: String,
    /// PostgreSQL URL of the projections.
    pub database_url: String,
    /// JetStream stream of the event log.
    pub stream: String,
    /// Subject prefix of the log, intake and command subjects.
    pub subject_prefix: String,
    /// The generated directory file's text.
    pub directory_toml: String,
    /// A directory of secrets several replicas of one instance share (signing key,
    /// intake-id secret, KEK files); `None`: each process keeps its own in its data dir.
    pub shared_secrets: Option<PathBuf>,
}

/// A running `bianmin serve`.
#[derive(Debug)]
pub struct Serve {
    child: Child,
    /// Base URL of its HTTP API (`http://127.0.0.1:<port>`).
    pub base_url: String,
    _dir: tempfile::TempDir,
    /// Where its log lines go.
    pub log_path: PathBuf,
}

/// The `bianmin` binary next to this one (`target/release/bianmin` for a release bench).
pub fn find_binary() -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    let candidate = me.parent()?.join("bianmin");
    candidate.exists().then_some(candidate)
}

impl Serve {
    /// Writes the config, starts the process and waits (at most 60 s) until it is ready.
    pub async fn start(settings: &ServeSettings) -> anyhow::Result<Serve> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let directory = dir.path().join("directory.toml");
        std::fs::write(&directory, &settings.directory_toml)?;
        let config = dir.path().join("bianmin.toml");
        std::fs::write(&config, config_toml(settings, dir.path(), port, &directory))?;
        let log_path = dir.path().join("serve.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(&settings.binary)
            .arg("--config")
            .arg(&config)
            .arg("--log-format")
            .arg("json")
            .arg("serve")
            .arg("--dev-identity")
            .env("RUST_LOG", "warn")
            .env_remove("DATABASE_URL")
            .env_remove("BIANMIN_NATS_URL")
            .env_remove("BIANMIN_CONFIG")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", settings.binary.display()))?;
        let mut serve = Serve {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
            log_path,
        };
        serve.wait_ready(Duration::from_secs(60)).await?;
        Ok(serve)
    }

    async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "bianmin serve exited at start-up ({status}): {}",
                    self.log_tail()
                );
            }
            if let Ok(r) = http.get(format!("{}/readyz", self.base_url)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "bianmin serve not ready after {limit:?}: {}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Peak resident set size so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// The last lines of its log (for error messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(8).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks it to stop (SIGTERM) and waits up to 20 s, then kills it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
            if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        self.child.kill().await.context("killing bianmin serve")?;
        Ok(())
    }
}

/// A free loopback port (bound and released; the engine binds it right after).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The engine's configuration file.
fn config_toml(s: &ServeSettings, data_dir: &Path, port: u16, directory: &Path) -> String {
    let q = |v: &str| toml::Value::String(v.to_string()).to_string();
    format!(
        "data_dir = {data}\ndatabase_url = {db}\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n\
         concurrency_limit = 512\n\n\
         # The load generator is one client standing in for a whole city's upstream systems.\n\
         [http.intake_rate_limit]\nper_second = 0.0\n\n[nats]\nurl = {nats}\nstream = {stream}\nsubject_prefix = {prefix}\n\n\
         [policy]\ndirectory_file = {dir}\n\n[cache]\nrequests_max = 20000\n\n[auth]\ndev_identity = true\n",
        data = q(&data_dir.display().to_string()),
        db = q(&s.database_url),
        nats = q(&s.nats_url),
        stream = q(&s.stream),
        prefix = q(&s.subject_prefix),
        dir = q(&directory.display().to_string()),
    ) + &shared_toml(s.shared_secrets.as_deref())
}

/// The `[signing]`, `[intake_ids]` and `[stores]` keys naming the shared secrets.
fn shared_toml(secrets: Option<&Path>) -> String {
    let Some(dir) = secrets else {
        return String::new();
    };
    let q = |name: &str| toml::Value::String(dir.join(name).display().to_string()).to_string();
    format!(
        "\n[signing]\nkey_file = {}\n\n[intake_ids]\nkey_file = {}\n\n[stores]\nkek_dir = {}\n",
        q("signing.key"),
        q("intake-id.key"),
        q("kek")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_every_isolated_resource() {
        let s = ServeSettings {
            binary: PathBuf::from("bianmin"),
            nats_url: "nats://127.0.0.1:4222".into(),
            database_url: "postgres://postgres@127.0.0.1/bianmin_bench_1".into(),
            stream: "BIANMIN_BENCH_1".into(),
            subject_prefix: "bmbench1".into(),
            directory_toml: String::new(),
            shared_secrets: Some(PathBuf::from("/tmp/s")),
        };
        let text = config_toml(
            &s,
            Path::new("/tmp/d"),
            8123,
            Path::new("/tmp/d/directory.toml"),
        );
        let value: toml::Value = toml::from_str(&text).expect("valid TOML");
        assert_eq!(value["nats"]["stream"].as_str(), Some("BIANMIN_BENCH_1"));
        assert_eq!(value["http"]["listen"].as_str(), Some("127.0.0.1:8123"));
        assert_eq!(value["auth"]["dev_identity"].as_bool(), Some(true));
        assert_eq!(
            value["signing"]["key_file"].as_str(),
            Some("/tmp/s/signing.key")
        );
        assert_eq!(value["stores"]["kek_dir"].as_str(), Some("/tmp/s/kek"));
        assert_eq!(
            value["policy"]["directory_file"].as_str(),
            Some("/tmp/d/directory.toml")
        );
    }
}
