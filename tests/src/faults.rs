//! Fault-injection harness: the real `bianmin serve` process (killed with SIGKILL and
//! restarted), an HTTP load driver that drives request lifecycles with retries under the same
//! idempotency keys, and the after-the-fact check that every acknowledged intake and command
//! is in the event log exactly once with intact hash chains; that the read-model projectors
//! caught up to the log head and hold exactly what a clean projection of the whole log into a
//! fresh database holds; and that `bianmin verify --all` passes on the same store.
//! [`PrivatePostgres`] is a PostgreSQL server of the test's own, to stop and restart mid-load
//! without touching the shared one.
//!
//! Nothing here sleeps to synchronise: readiness and progress are polled with deadlines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine_log::EventLog;
use projections::Projections;
use schemas::RequestId;
use serde_json::{Value, json};
use uuid::Uuid;

/// How long a starting engine may take to answer `/readyz`.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// Readiness polling interval.
const POLL: Duration = Duration::from_millis(50);
/// How long `bianmin verify --all` may take.
pub const VERIFY_DEADLINE: Duration = Duration::from_secs(60);

/// The built `bianmin` binary: `BIANMIN_BIN`, else `bianmin` beside the test executable's
/// `deps/` directory (the shared target dir), built on demand with cargo when missing.
pub fn bianmin_binary() -> PathBuf {
    if let Ok(path) = std::env::var("BIANMIN_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf();
    let candidate = profile_dir.join("bianmin");
    if !candidate.is_file() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "-p", "engine-service", "--bin", "bianmin"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building bianmin failed");
    }
    candidate
}

/// How the engine under test is configured.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// `--nats-url` (the event log on JetStream); `None` uses the embedded SQLite log.
    pub nats_url: Option<String>,
    /// `--database-url` (projections in PostgreSQL).
    pub database_url: Option<String>,
    /// Extra environment (e.g. `BIANMIN_NATS__STREAM`).
    pub env: Vec<(String, String)>,
    /// Extra TOML appended to the generated config file.
    pub extra_toml: String,
}

/// A `bianmin serve` process on a fixed loopback port with its own data dir; its output is
/// captured to a file that survives restarts. Killed on drop.
pub struct ServeProcess {
    port: u16,
    dir: tempfile::TempDir,
    options: ServeOptions,
    child: Option<Child>,
    starts: u32,
}

impl ServeProcess {
    /// Starts the engine and waits until `/readyz` answers 200.
    pub async fn start(options: ServeOptions) -> ServeProcess {
        let dir = tempfile::tempdir().expect("a temporary data dir");
        let mut process = ServeProcess {
            port: crate::nats::free_port(),
            dir,
            options,
            child: None,
            starts: 0,
        };
        process.spawn();
        process.wait_ready().await;
        process
    }

    fn spawn(&mut self) {
        let config = self.dir.path().join("bianmin.toml");
        std::fs::write(&config, &self.options.extra_toml).expect("write config");
        let log_path = self.log_path();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open the output file");
        let err = out.try_clone().expect("clone the output file");
        let mut command = self.bianmin_command();
        command
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--dev-identity")
            .env(
                "RUST_LOG",
                "debug,sqlx=warn,async_nats=info,hyper=info,h2=info",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        self.child = Some(command.spawn().expect("bianmin serve starts"));
        self.starts += 1;
    }

    /// `bianmin` with this engine's global arguments (config file, data dir, NATS and
    /// database URLs) and extra environment, before the subcommand.
    fn bianmin_command(&self) -> Command {
        let mut command = Command::new(bianmin_binary());
        command
            .arg("--config")
            .arg(self.dir.path().join("bianmin.toml"))
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--log-format")
            .arg("json");
        if let Some(url) = &self.options.nats_url {
            command.arg("--nats-url").arg(url);
        }
        if let Some(url) = &self.options.database_url {
            command.arg("--database-url").arg(url);
        }
        command.envs(
            self.options
                .env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        command
    }

    /// The read-model database the engine projects into: `database_url` when set, else the
    /// embedded SQLite file in the data dir.
    pub fn projections_url(&self) -> String {
        match &self.options.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir().join("projections.db").display()
            ),
        }
    }

    /// Runs `bianmin verify --all` against this engine's event log (same configuration) as a
    /// separate process, within [`VERIFY_DEADLINE`].
    pub async fn verify_all(&self) -> Verified {
        self.run(&["verify", "--all"]).await
    }

    /// Runs `bianmin <args>` with this engine's configuration as a separate process, within
    /// [`VERIFY_DEADLINE`].
    pub async fn run(&self, args: &[&str]) -> Verified {
        let mut command = self.bianmin_command();
        command
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        let mut command = tokio::process::Command::from(command);
        command.kill_on_drop(true);
        let output = tokio::time::timeout(VERIFY_DEADLINE, command.output())
            .await
            .unwrap_or_else(|_| panic!("bianmin {args:?} ran longer than {VERIFY_DEADLINE:?}"))
            .expect("bianmin runs");
        Verified {
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The data directory (event log, contacts, privacy ledger when on SQLite).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The process's embedded event log, opened as the engine opens it: signing with the
    /// process's key (`<data dir>/signing.key`) and trusting it.
    pub async fn event_log(&self) -> EventLog {
        use engine_log::signing::{CommitSigner, Keyring, SigningConfig};
        let dir = self.data_dir();
        let signer = CommitSigner::load(&dir.join("signing.key")).expect("the engine's key");
        let keyring = Keyring::load(&SigningConfig::default(), &dir).expect("keyring");
        EventLog::open_sqlite(&dir.join("events.db"))
            .await
            .expect("the event log opens")
            .signed_by(Arc::new(signer), keyring)
    }

    /// Where stdout and stderr of every run go.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("output.log")
    }

    /// Everything the process has written so far (all runs).
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// How many times the process was started.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// `kill -9`: no shutdown path runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again (same port, data and config) and waits until ready.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn();
        self.wait_ready().await;
    }

    /// Polls `/readyz` until 200; panics with the captured output when the deadline passes or
    /// the process exits.
    pub async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(response) = client
                .get(format!("{}/readyz", self.url()))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                && response.status().is_success()
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("bianmin serve exited with {status}:\n{}", self.tail(60));
            }
            assert!(
                Instant::now() < deadline,
                "bianmin serve not ready:\n{}",
                self.tail(60)
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The last `lines` lines of output.
    pub fn tail(&self, lines: usize) -> String {
        let output = self.output();
        let all: Vec<&str> = output.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A grid the built-in directory knows.
pub const GRID: (&str, &str, &str) = ("jd-01", "sq-0101", "wg-010101");
/// A built-in catalogue item.
pub const ITEM: &str = "um-streetlight";
/// A built-in department, the one `ITEM` is referred to.
pub const DEPARTMENT: &str = "urban-management";
/// The intake system's dev identity.
pub const INTAKE: &str = "hotline-gateway;intake_system";
/// A station worker of the grid's community.
pub const WORKER: &str = "worker-1;station_worker;sq-0101";
/// A handler of `DEPARTMENT`.
pub const HANDLER: &str = "handler-1;department_handler;urban-management";
/// A supervisor.
pub const SUPERVISOR: &str = "centre-1;supervisor";

/// An intake document with a contact (phone `phone`).
pub fn intake_document(external_id: &str, phone: &str) -> Value {
    json!({
        "channel": "hotline",
        "external_id": external_id,
        "contact": {"name": "测试居民", "phone": phone},
        "location": {"street": GRID.0, "community": GRID.1, "grid": GRID.2},
        "text": "小区门口路灯不亮已经一周",
    })
}

/// The commands of one full lifecycle after intake, with the actor of each.
pub fn lifecycle_commands() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (WORKER, "accept", json!({})),
        (
            WORKER,
            "classify",
            json!({"catalogue_item": ITEM, "request_type": "help"}),
        ),
        (WORKER, "refer", json!({"lead_department": DEPARTMENT})),
        (HANDLER, "sign_for", json!({})),
        (HANDLER, "contact_resident", json!({"method": "phone"})),
        (HANDLER, "start_handling", json!({})),
        (
            HANDLER,
            "reply",
            json!({"outcome": "resolved", "content": "路灯已修复"}),
        ),
        (SUPERVISOR, "review_reply", json!({"approved": true})),
        (
            WORKER,
            "rate",
            json!({"satisfaction": "satisfied", "resolution": "resolved"}),
        ),
        (WORKER, "archive", json!({})),
    ]
}

/// The outcome of one HTTP call.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// The body as JSON (`Null` when not JSON).
    pub body: Value,
}

/// A thin HTTP client of the engine.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    /// A client of the engine at `base`.
    pub fn new(base: impl Into<String>) -> Api {
        Api {
            base: base.into(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .pool_max_idle_per_host(4)
                .build()
                .expect("an HTTP client"),
        }
    }

    /// Sends `method path` as `actor` (dev identity) with an optional JSON body and
    /// idempotency key. `Err` only when no HTTP answer came (connection refused, reset,
    /// timeout).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        actor: Option<&str>,
        body: Option<&Value>,
        idempotency_key: Option<Uuid>,
    ) -> Result<Reply, String> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(actor) = actor {
            request = request.header("x-bianmin-actor", actor);
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key.to_string());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    /// `GET path` as `actor`.
    pub async fn get(&self, path: &str, actor: Option<&str>) -> Result<Reply, String> {
        self.call(reqwest::Method::GET, path, actor, None, None)
            .await
    }

    /// `POST path` as `actor` with `body`.
    pub async fn post(
        &self,
        path: &str,
        actor: Option<&str>,
        body: &Value,
        key: Option<Uuid>,
    ) -> Result<Reply, String> {
        self.call(reqwest::Method::POST, path, actor, Some(body), key)
            .await
    }

    /// The raw text of `GET path` (e.g. `/metrics`).
    pub async fn text(&self, path: &str, actor: Option<&str>) -> Result<(u16, String), String> {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(actor) = actor {
            request = request.header("x-bianmin-actor", actor);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.map_err(|e| e.to_string())?))
    }
}

/// What the load driver saw acknowledged.
#[derive(Debug, Default)]
pub struct Acks {
    /// Requests whose intake was answered 200/201, by request id.
    pub intakes: BTreeSet<RequestId>,
    /// Commands answered 200, by command id → request id.
    pub commands: BTreeMap<Uuid, RequestId>,
    /// Calls that got no answer or a 5xx/408 and were retried.
    pub retries: u64,
    /// Lifecycles that reached `archive`.
    pub completed: u64,
}

/// Drives full lifecycles over HTTP, retrying every unanswered or unavailable call with the
/// same idempotency key (intake retries are the same document) until `deadline`.
#[derive(Debug, Clone)]
pub struct LoadDriver {
    api: Api,
    /// What was acknowledged.
    pub acks: Arc<Mutex<Acks>>,
    deadline: Instant,
    run: String,
}

/// Whether a status means "try again" (no decision was made, or it may have been).
fn retryable(status: u16) -> bool {
    status == 408 || status == 409 || status == 429 || status >= 500
}

impl LoadDriver {
    /// A driver against `api`, giving up on calls after `deadline`.
    pub fn new(api: Api, deadline: Instant) -> LoadDriver {
        LoadDriver {
            api,
            acks: Arc::new(Mutex::new(Acks::default())),
            deadline,
            run: Uuid::now_v7().simple().to_string(),
        }
    }

    async fn until_answered(
        &self,
        path: &str,
        actor: &str,
        body: &Value,
        key: Option<Uuid>,
    ) -> Option<Reply> {
        let mut pause = Duration::from_millis(20);
        loop {
            if Instant::now() > self.deadline {
                return None;
            }
            match self.api.post(path, Some(actor), body, key).await {
                Ok(reply) if !retryable(reply.status) => return Some(reply),
                _ => {
                    self.acks.lock().expect("acks").retries += 1;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
            }
        }
    }

    /// One lifecycle: intake (as ticket `n` of this run) then every command; when
    /// `duplicate` is set, every call is sent twice (an upstream that retries after success).
    pub async fn lifecycle(&self, n: usize, duplicate: bool) -> Result<RequestId, String> {
        let document = intake_document(&format!("FT-{}-{n}", self.run), "13700000000");
        let sends = if duplicate { 2 } else { 1 };
        let mut request_id = None;
        for _ in 0..sends {
            let reply = self
                .until_answered("/api/v1/requests", INTAKE, &document, None)
                .await
                .ok_or("intake: deadline passed")?;
            if reply.status != 200 && reply.status != 201 {
                return Err(format!("intake answered {}: {}", reply.status, reply.body));
            }
            let id: RequestId = serde_json::from_value(reply.body["request_id"].clone())
                .map_err(|e| format!("intake answer without id: {e}"))?;
            self.acks.lock().expect("acks").intakes.insert(id);
            request_id = Some(id);
        }
        let id = request_id.ok_or("no intake")?;
        for (actor, action, body) in lifecycle_commands() {
            let key = Uuid::now_v7();
            for _ in 0..sends {
                let reply = self
                    .until_answered(
                        &format!("/api/v1/requests/{id}/{action}"),
                        actor,
                        &body,
                        Some(key),
                    )
                    .await
                    .ok_or_else(|| format!("{action}: deadline passed"))?;
                if reply.status != 200 {
                    return Err(format!(
                        "{action} answered {}: {}",
                        reply.status, reply.body
                    ));
                }
                self.acks.lock().expect("acks").commands.insert(key, id);
            }
        }
        self.acks.lock().expect("acks").completed += 1;
        Ok(id)
    }

    /// Runs `total` lifecycles, `concurrency` at a time; returns the errors.
    pub async fn run(&self, total: usize, concurrency: usize, duplicate: bool) -> Vec<String> {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let driver = self.clone();
            let next = next.clone();
            workers.spawn(async move {
                let mut errors = Vec::new();
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if n >= total {
                        return errors;
                    }
                    if let Err(e) = driver.lifecycle(n, duplicate).await {
                        errors.push(e);
                    }
                }
            });
        }
        let mut errors = Vec::new();
        while let Some(done) = workers.join_next().await {
            errors.extend(done.unwrap_or_else(|e| vec![e.to_string()]));
        }
        errors
    }
}

/// The figures printed after a fault test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// Intakes and commands acknowledged to the client.
    pub acknowledged: usize,
    /// Of those, found in the log.
    pub found: usize,
    /// Acknowledged but missing.
    pub lost: usize,
    /// Commits recorded more than once (same commit id) or requests received twice.
    pub duplicates: usize,
    /// Requests whose hash chain is broken.
    pub broken_chains: usize,
    /// Commits in the log.
    pub commits: usize,
    /// Retries the clients made.
    pub retries: u64,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "acknowledged {}, found {}, lost {}, duplicates {}, broken chains {}, commits {}, client retries {}",
            self.acknowledged,
            self.found,
            self.lost,
            self.duplicates,
            self.broken_chains,
            self.commits,
            self.retries
        )
    }
}

/// Reads the whole log and checks `acks` against it: each acknowledged intake has exactly one
/// `request_received`, each acknowledged command id exactly one commit, and every touched
/// request's hash chain verifies over the raw stored bytes.
pub async fn check_log(log: &EventLog, acks: &Acks) -> Figures {
    let mut commit_counts: BTreeMap<Uuid, usize> = BTreeMap::new();
    let mut commit_request: BTreeMap<Uuid, RequestId> = BTreeMap::new();
    let mut received: BTreeMap<RequestId, usize> = BTreeMap::new();
    let mut requests = BTreeSet::new();
    let mut from = 1;
    let mut commits = 0;
    loop {
        let batch = log.read_from(from, 1000).await.expect("read the log");
        let Some(last) = batch.last().map(|c| c.position) else {
            break;
        };
        for logged in &batch {
            if logged.commit.command.is_internal() {
                continue;
            }
            commits += 1;
            *commit_counts.entry(logged.commit.commit_id).or_default() += 1;
            commit_request.insert(logged.commit.commit_id, logged.commit.request_id);
            requests.insert(logged.commit.request_id);
            for envelope in &logged.commit.events {
                if envelope.event.kind() == schemas::EventKind::RequestReceived {
                    *received.entry(envelope.request_id).or_default() += 1;
                }
            }
        }
        from = last + 1;
    }
    let mut figures = Figures {
        acknowledged: acks.intakes.len() + acks.commands.len(),
        commits,
        retries: acks.retries,
        ..Figures::default()
    };
    for id in &acks.intakes {
        match received.get(id) {
            Some(1) => figures.found += 1,
            Some(_) => {
                figures.found += 1;
                figures.duplicates += 1;
            }
            None => figures.lost += 1,
        }
    }
    for (command, request) in &acks.commands {
        match commit_counts.get(command) {
            Some(n) if commit_request.get(command) == Some(request) => {
                figures.found += 1;
                if *n > 1 {
                    figures.duplicates += 1;
                }
            }
            _ => figures.lost += 1,
        }
    }
    figures.duplicates += commit_counts.values().filter(|n| **n > 1).count();
    figures.duplicates += received.values().filter(|n| **n > 1).count();
    for request in requests {
        let raw = log.load_raw(request).await.expect("load a request");
        if !engine_service::audit::verify::verify_raw(request, &raw).ok() {
            figures.broken_chains += 1;
        }
    }
    figures
}

/// The outcome of `bianmin verify --all` run as a process.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Exit status 0.
    pub success: bool,
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// What it printed (the chain report).
    pub stdout: String,
    /// Its diagnostics.
    pub stderr: String,
}

impl Verified {
    /// The `(chains, records)` of its report line `N chains, R records, E events verified`.
    pub fn counts(&self) -> Option<(u64, u64)> {
        let line = self.stdout.lines().find(|l| l.contains(" chains, "))?;
        let mut words = line.split_whitespace();
        let chains = words.next()?.parse().ok()?;
        let records = words.nth(1)?.parse().ok()?;
        Some((chains, records))
    }
}

impl std::fmt::Display for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let summary = self.stdout.lines().next().unwrap_or("(no output)");
        match self.code {
            Some(code) => write!(f, "verify --all exit {code}: {summary}"),
            None => write!(f, "verify --all killed: {summary}"),
        }
    }
}

/// Polls `GET /api/v1/health/projections` until it answers 200 with status `ok` and every
/// projector at the log head (`lag_events` 0); returns that answer. Panics with the last answer
/// when `within` passes.
pub async fn wait_projections_caught_up(api: &Api, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let last = api
            .get("/api/v1/health/projections", Some(SUPERVISOR))
            .await;
        if let Ok(reply) = &last
            && projections_caught_up(reply)
        {
            return reply.body.clone();
        }
        assert!(
            Instant::now() < deadline,
            "projectors not at the log head within {within:?}; last answer: {last:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Whether a `/api/v1/health/projections` answer says every projector is at the log head with
/// no error.
pub fn projections_caught_up(reply: &Reply) -> bool {
    let Some(projectors) = reply.body["projectors"].as_array() else {
        return false;
    };
    reply.status == 200
        && reply.body["status"] == "ok"
        && projectors.len() == Projections::projector_names().len()
        && projectors
            .iter()
            .all(|p| p["lag_events"] == 0 && p["last_error"].is_null())
}

/// Every table of every projector, rows as text columns, sorted (see `Projections::snapshot`).
pub type Snapshot = Vec<(String, Vec<Vec<Option<String>>>)>;

/// The snapshot of every projector of `projections`.
pub async fn snapshot(projections: &Projections) -> Snapshot {
    let mut all = Vec::new();
    for name in Projections::projector_names() {
        all.extend(
            projections
                .snapshot(name)
                .await
                .expect("snapshot of the read models"),
        );
    }
    all
}

/// The whole of `log` projected from scratch into the fresh database at `url` (same kind as
/// the one compared with: text renderings differ between SQLite and PostgreSQL).
pub async fn clean_projection(log: &EventLog, url: &str) -> Snapshot {
    let clean = Projections::connect(url)
        .await
        .expect("the clean projections database opens");
    let mut from = 1;
    loop {
        let batch = log.read_from(from, 500).await.expect("read the log");
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        for name in Projections::projector_names() {
            clean
                .apply(name, &batch)
                .await
                .expect("the clean projection applies");
        }
    }
    snapshot(&clean).await
}

/// The live read models compared with a clean projection of the log.
#[derive(Debug, Clone, Default)]
pub struct ProjectionCheck {
    /// The log head.
    pub head: u64,
    /// Each projector's checkpoint in the live database.
    pub checkpoints: Vec<(String, u64)>,
    /// Tables compared.
    pub tables: usize,
    /// Rows in the live tables.
    pub rows: usize,
    /// Rows of `request_summary` (one per request ever received: no double counting).
    pub request_rows: usize,
    /// Tables whose rows differ, each with a description of the first difference.
    pub differences: Vec<String>,
}

impl ProjectionCheck {
    /// Every checkpoint at the head and every table equal to the clean projection.
    pub fn ok(&self) -> bool {
        self.differences.is_empty() && self.checkpoints.iter().all(|(_, cp)| *cp == self.head)
    }
}

impl std::fmt::Display for ProjectionCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let checkpoints: Vec<String> = self
            .checkpoints
            .iter()
            .map(|(name, cp)| format!("{name} {cp}"))
            .collect();
        write!(
            f,
            "log head {}, checkpoints {}, {} rows in {} tables ({} requests), {}",
            self.head,
            checkpoints.join(" / "),
            self.rows,
            self.tables,
            self.request_rows,
            if self.differences.is_empty() {
                "equal to a clean rebuild".to_owned()
            } else {
                format!(
                    "{} tables differ from a clean rebuild",
                    self.differences.len()
                )
            }
        )
    }
}

/// Compares the read models at `live_url` with the whole of `log` projected into the fresh
/// database at `clean_url`. Run it once nothing appends to the log any more.
pub async fn check_projections(live_url: &str, log: &EventLog, clean_url: &str) -> ProjectionCheck {
    let head = log.last_position().await.expect("the log head");
    let live = Projections::connect(live_url)
        .await
        .expect("the live projections database opens");
    let mut checkpoints = Vec::new();
    for name in Projections::projector_names() {
        let cp = live.checkpoint(name).await.expect("a checkpoint");
        checkpoints.push(((*name).to_owned(), cp));
    }
    let live_tables = snapshot(&live).await;
    let clean_tables = clean_projection(log, clean_url).await;
    let mut check = ProjectionCheck {
        head,
        checkpoints,
        tables: live_tables.len(),
        rows: live_tables.iter().map(|(_, rows)| rows.len()).sum(),
        request_rows: live_tables
            .iter()
            .find(|(name, _)| name == "request_summary")
            .map_or(0, |(_, rows)| rows.len()),
        differences: Vec::new(),
    };
    let clean: BTreeMap<&str, &Vec<Vec<Option<String>>>> = clean_tables
        .iter()
        .map(|(name, rows)| (name.as_str(), rows))
        .collect();
    for (name, rows) in &live_tables {
        let Some(expected) = clean.get(name.as_str()) else {
            check
                .differences
                .push(format!("{name}: not in the clean projection"));
            continue;
        };
        if rows == *expected {
            continue;
        }
        let first = rows
            .iter()
            .zip(expected.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(rows.len().min(expected.len()));
        check.differences.push(format!(
            "{name}: {} live rows, {} clean; first difference at row {first}: live {:?}, clean {:?}",
            rows.len(),
            expected.len(),
            rows.get(first),
            expected.get(first)
        ));
    }
    check
}

/// Everything checked after a fault, printed as one figures line.
#[derive(Debug, Clone)]
pub struct AfterFault {
    /// Acknowledgements against the log.
    pub figures: Figures,
    /// The read models against a clean rebuild.
    pub projections: ProjectionCheck,
    /// `bianmin verify --all` on the same store.
    pub verified: Verified,
    /// From the engine's log: projector failures retried (`projector paused`) and silent
    /// follow streams given up for a read from the checkpoint.
    pub projector_retries: (usize, usize),
}

impl std::fmt::Display for AfterFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}; projections: {} (projector retries {}, silent follow streams {}); {}",
            self.figures,
            self.projections,
            self.projector_retries.0,
            self.projector_retries.1,
            self.verified
        )
    }
}

impl AfterFault {
    /// Asserts the whole outcome: every acknowledgement found once, chains intact, `commits`
    /// request commits, the read models at the head and equal to a clean rebuild with
    /// `requests` request rows, and `verify --all` passing.
    pub fn assert_clean(&self, commits: usize, requests: usize) {
        let figures = &self.figures;
        assert_eq!(figures.found, figures.acknowledged, "{self}");
        assert_eq!(
            (figures.lost, figures.duplicates, figures.broken_chains),
            (0, 0, 0),
            "{self}"
        );
        assert_eq!(figures.commits, commits, "{self}");
        assert!(
            self.projections.ok(),
            "{self}\n{}",
            self.projections.differences.join("\n")
        );
        assert_eq!(self.projections.request_rows, requests, "{self}");
        assert!(
            self.verified.success
                && self.verified.stdout.contains("OK")
                && self.verified.counts().map(|(_, records)| records)
                    == Some(self.projections.head),
            "verify --all must pass over every record of the log: {self}\nstdout:\n{}\nstderr:\n{}",
            self.verified.stdout,
            self.verified.stderr
        );
    }
}

/// After the load: waits (within `catch_up`) until the engine's projectors reach the log
/// head, kills the engine so nothing appends any more, then checks `acks` against `log`,
/// compares the read models with a clean projection into the fresh database at `clean_url`,
/// and runs `bianmin verify --all` on the same store.
pub async fn after_fault(
    engine: &mut ServeProcess,
    log: &EventLog,
    acks: &Acks,
    clean_url: &str,
    catch_up: Duration,
) -> AfterFault {
    let api = Api::new(engine.url());
    let caught_up = tokio::spawn(async move { wait_projections_caught_up(&api, catch_up).await });
    if let Err(failure) = caught_up.await {
        let output = engine.output();
        let projector_lines: Vec<&str> = output
            .lines()
            .filter(|l| {
                l.contains("projector") || l.contains("\"WARN\"") || l.contains("\"ERROR\"")
            })
            .collect();
        panic!(
            "{failure}\nthe engine's projector lines (last 30):\n{}",
            projector_lines[projector_lines.len().saturating_sub(30)..].join("\n")
        );
    }
    engine.kill9();
    let figures = check_log(log, acks).await;
    let projections = check_projections(&engine.projections_url(), log, clean_url).await;
    let verified = engine.verify_all().await;
    let output = engine.output();
    AfterFault {
        figures,
        projections,
        verified,
        projector_retries: (
            output.matches("projector paused").count(),
            output.matches("follow stream silent").count(),
        ),
    }
}

/// How long a private PostgreSQL may take to start or stop.
const PG_DEADLINE: Duration = Duration::from_secs(60);

/// The directory holding `initdb` and `pg_ctl`: `BIANMIN_PG_BIN_DIR`, else the newest
/// `/usr/lib/postgresql/<version>/bin`, else the directory of `pg_ctl` on `PATH`. `Err` says
/// how to get them.
pub fn postgres_bin_dir() -> Result<PathBuf, String> {
    let complete = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(dir) = std::env::var("BIANMIN_PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        return if complete(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "BIANMIN_PG_BIN_DIR={} holds no initdb and pg_ctl",
                dir.display()
            ))
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            complete(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            if complete(&dir) {
                return Ok(dir);
            }
        }
    }
    Err(
        "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on \
         PATH: install PostgreSQL with scripts/services (Debian package `postgresql`) or set \
         BIANMIN_PG_BIN_DIR"
            .to_owned(),
    )
}

/// A PostgreSQL server of the test's own: a fresh cluster (`initdb`, trust auth, user
/// `postgres`) in a temporary directory, on a free loopback port with its socket in that
/// directory, run with `pg_ctl`. When the test runs as root the server runs as the `postgres`
/// OS user (`runuser`), which owns the directory. [`PrivatePostgres::stop`] is a crash-like
/// stop (`pg_ctl -m immediate`: no checkpoint, recovery at the next start). Stopped and
/// removed on drop.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
    running: bool,
}

impl PrivatePostgres {
    /// Creates the cluster and starts the server. Panics with a clear message when the
    /// PostgreSQL binaries are missing or the server does not start.
    pub async fn start() -> PrivatePostgres {
        let bin = postgres_bin_dir().unwrap_or_else(|e| panic!("private PostgreSQL: {e}"));
        let dir = tempfile::tempdir().expect("a temporary cluster dir");
        let as_postgres = is_root();
        if as_postgres {
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(
                status.success(),
                "chown postgres:postgres {} failed (is there a `postgres` OS user?)",
                dir.path().display()
            );
        }
        let mut pg = PrivatePostgres {
            bin,
            dir,
            port: crate::nats::free_port(),
            as_postgres,
            running: false,
        };
        let data = pg.data_dir();
        let data = data.to_str().expect("a UTF-8 temp path").to_owned();
        pg.tool(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )
        .await;
        pg.restart().await;
        pg
    }

    /// The server's data directory (heap, WAL, everything), for tests that read its files.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` (a plain identifier) and returns its URL.
    pub async fn create_database(&self, name: &str) -> String {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("connect to the private server");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create a database");
        let _ = conn.close().await;
        self.url(name)
    }

    /// Runs a PostgreSQL tool (as `postgres` when root) and panics with its output and the
    /// server log when it fails.
    async fn tool(&self, name: &str, args: &[&str]) {
        let mut command = tokio::process::Command::from(self.tool_command(name, args));
        command.kill_on_drop(true);
        let output = tokio::time::timeout(PG_DEADLINE, command.output())
            .await
            .unwrap_or_else(|_| panic!("{name} ran longer than {PG_DEADLINE:?}"))
            .unwrap_or_else(|e| panic!("{name} does not run: {e}"));
        assert!(
            output.status.success(),
            "{name} {args:?} failed ({}):\n{}{}\nserver log:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.log_path()).unwrap_or_default()
        );
    }

    fn tool_command(&self, name: &str, args: &[&str]) -> Command {
        let tool = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(tool);
            command
        } else {
            Command::new(tool)
        };
        command.args(args).stdin(Stdio::null());
        command
    }

    fn pg_ctl_args(&self, action: &str) -> Vec<String> {
        let data = self.data_dir().display().to_string();
        let mut args = vec!["-D".to_owned(), data, "-w".to_owned(), "-t".to_owned()];
        args.push(PG_DEADLINE.as_secs().to_string());
        match action {
            "start" => {
                args.push("-l".into());
                args.push(self.log_path().display().to_string());
                args.push("-o".into());
                args.push(format!(
                    "-p {} -k {} -c listen_addresses=127.0.0.1 -c shared_buffers=16MB -c max_connections=50",
                    self.port,
                    self.dir.path().display()
                ));
            }
            _ => {
                args.push("-m".into());
                args.push("immediate".into());
            }
        }
        args.push(action.to_owned());
        args
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub async fn restart(&mut self) {
        let args = self.pg_ctl_args("start");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.tool("pg_ctl", &args).await;
        self.running = true;
    }

    /// Stops the server like a crash: `pg_ctl -m immediate stop` (connections cut, no
    /// shutdown checkpoint).
    pub async fn stop(&mut self) {
        let args = self.pg_ctl_args("stop");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.tool("pg_ctl", &args).await;
        self.running = false;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let args = self.pg_ctl_args("stop");
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let _ = self
                .tool_command("pg_ctl", &args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Whether this process runs as root (the owner of `/proc/self`).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
