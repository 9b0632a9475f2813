//! The engine spawned in-process on port 0, on either store, with a manual clock.
//!
//! `spawn_app(Store::Sqlite)` runs on a fresh temporary data directory; `spawn_app(Store::Nats)`
//! runs on the shared nats-server at 127.0.0.1:4222 with a stream and subject prefix of its
//! own, so tests never see each other's events. `TestApp::restart` drops the app and builds a
//! new one on the same data directory and stream.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use engine_core::ManualClock;
use engine_service::app::{App, AppError, Role};
use engine_service::commands::CommandService;
use engine_service::config::Config;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The shared NATS server the `Nats` store uses.
pub const NATS_URL: &str = "nats://127.0.0.1:4222";

/// Actor headers (dev identity) for the sample directory's community `sq-0101` and its
/// departments.
pub mod actors {
    /// The 12345 platform.
    pub const INTAKE: &str = "platform-12345;intake_system";
    /// A station worker of community sq-0101.
    pub const STATION: &str = "worker-li;station_worker;sq-0101";
    /// A handler of the urban-management department.
    pub const URBAN: &str = "handler-zhao;department_handler;urban-management";
    /// A handler of an unrelated department.
    pub const WATER: &str = "handler-qian;department_handler;water";
    /// The centre's supervisor.
    pub const SUPERVISOR: &str = "centre-sun;supervisor";
    /// An auditor.
    pub const AUDITOR: &str = "audit-wu;auditor";
    /// A dashboard.
    pub const DASHBOARD: &str = "bi;dashboard";
}

/// Which event log the app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// Embedded SQLite in a temporary directory.
    Sqlite,
    /// JetStream on the shared server, with a unique stream.
    Nats,
}

impl Store {
    /// Both stores, for tests that run on each.
    pub const BOTH: [Store; 2] = [Store::Sqlite, Store::Nats];
}

/// A running engine and what tests need to drive it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The HTTP client.
    pub client: reqwest::Client,
    /// The engine's command service (the same one HTTP uses).
    pub command_service: CommandService,
    /// The engine's clock; advance it to move time.
    pub clock: Arc<ManualClock>,
    /// The configuration the app was built from.
    pub config: Config,
    /// The store.
    pub store: Store,
    data_dir: Arc<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    running: Option<JoinHandle<Result<(), AppError>>>,
}

/// The instant every test clock starts at: Monday 2 March 2026, 09:00 in Beijing.
pub fn start_time() -> DateTime<Utc> {
    "2026-03-02T01:00:00Z".parse().expect("valid instant")
}

/// Spawns the engine on `store`, without the read-model projectors.
pub async fn spawn_app(store: Store) -> TestApp {
    spawn_app_with(store, |_| {}).await
}

/// Spawns the engine on `store` with the read-model projectors, their read API and gauges,
/// on PostgreSQL at `database_url` or, when `None`, on SQLite in the data directory.
pub async fn spawn_app_with_projections(store: Store, database_url: Option<String>) -> TestApp {
    spawn_app_with(store, |config| {
        config.projections.enabled = true;
        config.database_url = database_url;
    })
    .await
}

/// Spawns the engine on `store` after `adjust` changed the test configuration (projectors
/// off unless `adjust` turns them on).
pub async fn spawn_app_with(store: Store, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = Arc::new(tempfile::tempdir().expect("temporary directory"));
    let mut config = Config {
        data_dir: data_dir.path().to_path_buf(),
        ..Config::default()
    };
    config.http.listen = "127.0.0.1:0".parse().expect("address");
    config.http.body_limit_bytes = 64 * 1024;
    config.auth.dev_identity = true;
    config.projections.enabled = false;
    if store == Store::Nats {
        let unique = Uuid::now_v7().simple().to_string();
        config.nats.url = Some(NATS_URL.to_string());
        config.nats.stream = format!("BIANMIN_T_{unique}");
        config.nats.subject_prefix = format!("t{unique}");
    }
    adjust(&mut config);
    let clock = Arc::new(ManualClock::new(start_time()));
    start(config, store, data_dir, clock).await
}

async fn start(
    config: Config,
    store: Store,
    data_dir: Arc<tempfile::TempDir>,
    clock: Arc<ManualClock>,
) -> TestApp {
    let role = Role::Serve { supervisor: false };
    let app = App::build_with_clock(config.clone(), role, clock.clone())
        .await
        .expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let command_service = app.commands().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::new(),
        command_service,
        clock,
        config,
        store,
        data_dir,
        stop: Some(stop),
        running: Some(running),
    }
}

impl TestApp {
    /// Stops the app gracefully and waits for it to finish.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            let result = tokio::time::timeout(std::time::Duration::from_secs(20), running)
                .await
                .expect("the app stops within 20 s")
                .expect("the app task does not panic");
            result.expect("the app stops cleanly");
        }
    }

    /// Stops this app and builds a new one on the same data directory / stream and clock.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let config = self.config.clone();
        start(
            config,
            self.store,
            self.data_dir.clone(),
            self.clock.clone(),
        )
        .await
    }

    /// Stops this app and builds a new one on the same data directory / stream and clock,
    /// with the configuration changed by `adjust` (e.g. projectors switched off or on).
    pub async fn restart_with(mut self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        self.stop().await;
        let mut config = self.config.clone();
        adjust(&mut config);
        start(
            config,
            self.store,
            self.data_dir.clone(),
            self.clock.clone(),
        )
        .await
    }

    /// A second engine on the same data directory / stream and clock, with its own port and
    /// command service (for tests of writers in different processes).
    pub async fn twin(&self) -> TestApp {
        start(
            self.config.clone(),
            self.store,
            self.data_dir.clone(),
            self.clock.clone(),
        )
        .await
    }

    /// Stops the app and leaves its store alone (another app still uses it).
    pub async fn teardown_keep_store(mut self) {
        self.stop().await;
    }

    /// Stops the app and deletes every NATS stream of its instance (log, inbox, rejects,
    /// upward, reports, notifications), if any.
    pub async fn teardown(mut self) {
        self.stop().await;
        if self.store == Store::Nats
            && let Ok(client) = async_nats::connect(NATS_URL).await
        {
            let js = async_nats::jetstream::new(client);
            for stream in self.names().all_streams() {
                let _ = js.delete_stream(&stream).await;
            }
        }
    }

    /// Every NATS name of the app's instance.
    pub fn names(&self) -> schemas::Names {
        self.config
            .names()
            .expect("the test configuration names a valid instance")
    }

    /// `POST path` with a JSON body as `actor`.
    pub async fn post(&self, path: &str, actor: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .header("X-Bianmin-Actor", actor)
            .json(body)
            .send()
            .await
            .expect("the server answers")
    }

    /// `POST path` with a raw body as `actor`.
    pub async fn post_raw(&self, path: &str, actor: &str, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .header("X-Bianmin-Actor", actor)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the server answers")
    }

    /// `GET path` as `actor`.
    pub async fn get(&self, path: &str, actor: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .header("X-Bianmin-Actor", actor)
            .send()
            .await
            .expect("the server answers")
    }

    /// Submits an intake document; returns (status, body).
    pub async fn intake(&self, document: &Value) -> (u16, Value) {
        let response = self
            .post("/api/v1/requests", actors::INTAKE, document)
            .await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    /// Issues `action` on `request_id` as `actor`; returns (status, body).
    pub async fn command(
        &self,
        request_id: &str,
        action: &str,
        actor: &str,
        body: &Value,
    ) -> (u16, Value) {
        let path = format!("/api/v1/requests/{request_id}/{action}");
        let response = self.post(&path, actor, body).await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    /// The request's history as JSON envelopes (as an auditor).
    pub async fn history(&self, request_id: &str) -> Vec<Value> {
        let path = format!("/api/v1/requests/{request_id}/history");
        let response = self.get(&path, actors::AUDITOR).await;
        assert_eq!(response.status().as_u16(), 200, "history of {request_id}");
        response.json().await.expect("a JSON array")
    }

    /// Number of request commits in the whole log (the engine's own reference-data and
    /// digest streams are not counted).
    pub async fn log_length(&self) -> u64 {
        request_commits(self.command_service.log()).await
    }
}

/// An intake document from the 12345 hotline about street vending in community sq-0101.
pub fn intake_document(external_id: &str) -> Value {
    json!({
        "channel": "hotline",
        "external_id": external_id,
        "contact": { "name": "Wang Fang", "phone": "13800001111" },
        "location": { "street": "jd-01", "community": "sq-0101", "grid": "wg-010102" },
        "text": "Street vendors block the pavement outside building 3 every evening.",
    })
}

/// A fresh, unique external id.
pub fn external_id() -> String {
    format!("T-{}", Uuid::now_v7().simple())
}

/// Number of request commits in `log` (the engine's own reference-data and digest streams,
/// written by internal command kinds, are not counted).
pub async fn request_commits(log: &engine_log::EventLog) -> u64 {
    let mut count = 0;
    let mut from = 1;
    loop {
        let batch = log.read_from(from, 500).await.expect("the log reads");
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        count += batch
            .iter()
            .filter(|c| !c.commit.command.is_internal())
            .count() as u64;
    }
    count
}
