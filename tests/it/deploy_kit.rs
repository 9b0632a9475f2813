//! The deploy kit (`deploy/`) against the real parts it configures:
//! - every nats-server config passes the server's own config test (`nats-server -c … -t`), and
//!   the three cluster configs, moved to free ports and temporary stores, form a JetStream
//!   cluster that holds a `replicas: 3` stream;
//! - the systemd units pass `systemd-analyze verify` (skipped with a message where systemd is
//!   absent) and the `bianmin` binary accepts each unit's command line;
//! - the Kubernetes manifests parse, name kind / apiVersion / metadata, probe `/healthz` and
//!   `/readyz` on the port the ConfigMap's configuration listens on, load as a real
//!   configuration, and refer to the Secret that is shipped as an example; the NATS chart values
//!   ask for three JetStream servers with file storage;
//! - every metric the Prometheus rules and the Grafana dashboard name is on a running engine's
//!   `/metrics`, and every SQL panel of the dashboard runs on a migrated PostgreSQL holding a
//!   seeded month of requests;
//! - `deploy/postgres/init.sql`, run with psql, gives the engine a database it migrates and the
//!   dashboard role read-only access;
//! - `bianmin supervise` supervises a log shared with an engine that runs `serve
//!   --no-supervisor` (the split layout of the systemd units);
//! - `scripts/demo` brings up the embedded engine, runs a week of requests and prints the
//!   dashboard's address.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use engine_service::config::Config;
use serde_json::{Value, json};
use sqlx::Row;
use tests::app::{Store, actors, intake_document, spawn_app_with};
use tests::faults::bianmin_binary;
use tests::nats::free_port;
use tests::pg::TestDb;
use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn deploy(path: &str) -> PathBuf {
    repo().join("deploy").join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const CLUSTER: [&str; 3] = ["cluster/n1.conf", "cluster/n2.conf", "cluster/n3.conf"];

#[test]
fn every_nats_config_passes_the_servers_config_test() {
    let server = tests::nats::current_nats_server_binary();
    for config in ["nats-server.conf"].into_iter().chain(CLUSTER) {
        let path = deploy("nats").join(config);
        let output = Command::new(&server)
            .arg("-c")
            .arg(&path)
            .arg("-t")
            .output()
            .expect("nats-server runs");
        assert!(
            output.status.success(),
            "{config}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let text = read(&path);
        assert!(
            text.contains("sync_interval: always"),
            "{config} fsyncs every write"
        );
    }
}

/// A nats-server process, killed on drop.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_configs_form_a_cluster_holding_three_replicas() {
    let server = tests::nats::current_nats_server_binary();
    let dir = tempfile::tempdir().expect("temporary directory");
    let clients: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes = Vec::new();
    for (i, config) in CLUSTER.iter().enumerate() {
        // The shipped file with only its ports and store moved, so it runs beside other servers.
        let mut text = read(&deploy("nats").join(config));
        for n in 0..3 {
            text = text
                .replace(&format!("127.0.0.1:{}", 4222 + n), &format!("@client{n}@"))
                .replace(&format!("127.0.0.1:{}", 6222 + n), &format!("@route{n}@"));
        }
        for (n, (client, route)) in clients.iter().zip(&routes).enumerate() {
            text = text
                .replace(&format!("@client{n}@"), &format!("127.0.0.1:{client}"))
                .replace(&format!("@route{n}@"), &format!("127.0.0.1:{route}"));
        }
        let store = dir.path().join(format!("n{}", i + 1));
        text = text.replace(
            &format!("/var/lib/nats-n{}", i + 1),
            store.to_str().expect("utf-8 path"),
        );
        assert!(
            !text.contains("/var/lib") && text.contains(&clients[i].to_string()),
            "{config} was moved: {text}"
        );
        let path = dir.path().join(format!("n{}.conf", i + 1));
        std::fs::write(&path, text).expect("config written");
        let log = std::fs::File::create(dir.path().join(format!("n{}.log", i + 1))).expect("log");
        let child = Command::new(&server)
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        nodes.push(Node(child));
    }
    let addrs: Vec<async_nats::ServerAddr> = clients
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}").parse().expect("url"))
        .collect();
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(addrs)
        .await
        .expect("connects to the cluster");
    let js = async_nats::jetstream::new(client);
    let deadline = Instant::now() + Duration::from_secs(60);
    let stream = loop {
        let created = js
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: "DEPLOY_KIT".into(),
                subjects: vec!["deploykit.>".into()],
                num_replicas: 3,
                ..Default::default()
            })
            .await;
        match created {
            Ok(stream) => break stream,
            Err(error) => {
                let logs: String = (1..=3)
                    .map(|n| read(&dir.path().join(format!("n{n}.log"))))
                    .collect();
                assert!(
                    Instant::now() < deadline,
                    "no replicas-3 stream: {error}\n{logs}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    let ack = js
        .publish("deploykit.one", "held by a quorum".into())
        .await
        .expect("published")
        .await
        .expect("acknowledged");
    assert_eq!(ack.sequence, 1);
    let mut stream = stream;
    let info = stream.info().await.expect("stream info");
    let cluster = info.cluster.as_ref().expect("a clustered stream");
    assert_eq!(cluster.name.as_deref(), Some("bianmin"), "{cluster:?}");
    assert_eq!(cluster.replicas.len(), 2, "a leader and two replicas");
    drop(nodes);
}

/// The unit files with `/usr/local/bin/bianmin` replaced by the built binary.
fn units() -> Vec<(String, String)> {
    let bin = bianmin_binary();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(deploy("systemd")).expect("deploy/systemd") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_string();
        let text = read(&path).replace("/usr/local/bin/bianmin", bin.to_str().expect("utf-8"));
        out.push((name, text));
    }
    out.sort();
    out
}

#[test]
fn the_systemd_units_verify_and_their_command_lines_parse() {
    let units = units();
    let names: BTreeSet<&str> = units.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "bianmin.service",
        "bianmin@.service",
        "bianmin-projector.service",
        "bianmin-supervisor.service",
        "split.conf",
    ] {
        assert!(names.contains(expected), "deploy/systemd/{expected}");
    }
    let bin = bianmin_binary();
    let mut subcommands = BTreeSet::new();
    for (name, text) in &units {
        let exec = text
            .lines()
            .filter_map(|l| l.strip_prefix("ExecStart="))
            .rfind(|l| !l.is_empty())
            .unwrap_or_else(|| panic!("{name} has an ExecStart"));
        let mut words = exec.split_whitespace();
        assert_eq!(words.next(), bin.to_str(), "{name} runs bianmin");
        let args: Vec<&str> = words.collect();
        subcommands.insert(args[0].to_string());
        // The binary accepts the unit's flags: clap reads them all before `--help`.
        let output = Command::new(&bin)
            .args(&args)
            .arg("--help")
            .output()
            .expect("bianmin runs");
        assert!(
            output.status.success(),
            "{name}: `bianmin {}` is rejected: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(
        subcommands,
        BTreeSet::from(["serve".into(), "project".into(), "supervise".into()])
    );

    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
    else {
        eprintln!("systemd-analyze is not installed: unit verification skipped");
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut files = Vec::new();
    for (name, text) in units.iter().filter(|(n, _)| n.ends_with(".service")) {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("unit written");
        files.push(path);
    }
    let output = Command::new(analyze)
        .arg("verify")
        .args(&files)
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "systemd-analyze verify: {stderr}");
    for (name, _) in &units {
        assert!(
            !stderr.contains(name.as_str()),
            "systemd-analyze complains about {name}: {stderr}"
        );
    }
}

/// The engine is a Deployment of at least two replicas with no volume but configuration,
/// secrets and scratch, a PodDisruptionBudget selects its pods, and its configuration names
/// the KEK directory its Secret is mounted at.
fn stateless_replicas_under_a_disruption_budget(docs: &[Yaml]) {
    let engine = docs
        .iter()
        .find(|d| s(&d["kind"]) == "Deployment" && s(&d["metadata"]["name"]) == "bianmin")
        .expect("the engine's Deployment");
    assert!(
        engine["spec"]["replicas"].as_i64() >= Some(2),
        "two replicas or more"
    );
    assert!(engine["spec"]["volumeClaimTemplates"].is_badvalue());
    let pod = &engine["spec"]["template"]["spec"];
    let mut secrets = BTreeSet::new();
    for volume in pod["volumes"].as_vec().expect("volumes") {
        let name = s(&volume["name"]);
        let kept = ["configMap", "secret", "emptyDir"]
            .iter()
            .any(|kind| !volume[*kind].is_badvalue());
        assert!(kept, "volume {name} holds no state: {volume:?}");
        if !volume["secret"].is_badvalue() {
            secrets.insert(name.to_string());
        }
    }
    let budget = docs
        .iter()
        .find(|d| s(&d["kind"]) == "PodDisruptionBudget")
        .expect("a PodDisruptionBudget");
    assert_eq!(
        budget["spec"]["selector"]["matchLabels"], engine["spec"]["selector"]["matchLabels"],
        "the budget covers the engine's pods"
    );
    let config = docs
        .iter()
        .find(|d| s(&d["kind"]) == "ConfigMap")
        .expect("the ConfigMap");
    let config: Config =
        toml::from_str(s(&config["data"]["bianmin.toml"])).expect("the ConfigMap's config");
    let kek_dir = config.stores.kek_dir.expect("stores.kek_dir");
    let container = &pod["containers"][0];
    let mounted = container["volumeMounts"]
        .as_vec()
        .expect("mounts")
        .iter()
        .find(|m| Path::new(s(&m["mountPath"])) == kek_dir)
        .expect("the KEK directory is mounted");
    assert!(secrets.contains(s(&mounted["name"])), "from a Secret");
}

/// Every YAML document of `path`.
fn yaml(path: &Path) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn s(node: &Yaml) -> &str {
    node.as_str()
        .unwrap_or_else(|| panic!("a string: {node:?}"))
}

#[test]
fn the_kubernetes_manifests_are_complete_and_consistent() {
    let docs = yaml(&deploy("k8s/bianmin.yaml"));
    let secrets = yaml(&deploy("k8s/secret.example.yaml"));
    let secret_names: BTreeSet<&str> = secrets
        .iter()
        .filter(|d| s(&d["kind"]) == "Secret")
        .map(|d| s(&d["metadata"]["name"]))
        .collect();
    let mut kinds = BTreeSet::new();
    let mut listen_port = None;
    for doc in docs.iter().chain(&secrets) {
        assert!(!s(&doc["apiVersion"]).is_empty(), "apiVersion: {doc:?}");
        assert!(!s(&doc["metadata"]["name"]).is_empty(), "metadata.name");
        kinds.insert(s(&doc["kind"]).to_string());
        if s(&doc["kind"]) == "ConfigMap" {
            // The file parses as the engine's configuration (unknown keys are refused).
            let config: Config =
                toml::from_str(s(&doc["data"]["bianmin.toml"])).expect("the ConfigMap's config");
            assert_eq!(config.nats.replicas, 3, "streams on three NATS servers");
            assert!(config.nats.url.is_some(), "the event log on JetStream");
            listen_port = Some(config.http.listen.port());
        }
    }
    for kind in [
        "ConfigMap",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "Secret",
    ] {
        assert!(kinds.contains(kind), "a {kind}");
    }
    assert!(!kinds.contains("StatefulSet"), "no workload keeps state");
    stateless_replicas_under_a_disruption_budget(&docs);
    let port = i64::from(listen_port.expect("a ConfigMap with bianmin.toml"));
    let mut subcommands = BTreeSet::new();
    for doc in &docs {
        let kind = s(&doc["kind"]);
        if kind == "Service" {
            for p in doc["spec"]["ports"].as_vec().expect("ports") {
                assert_eq!(p["port"].as_i64(), Some(port), "the Service's port");
            }
        }
        if kind != "Deployment" && kind != "StatefulSet" {
            continue;
        }
        let name = s(&doc["metadata"]["name"]);
        let labels = &doc["spec"]["template"]["metadata"]["labels"];
        for (k, v) in doc["spec"]["selector"]["matchLabels"]
            .as_hash()
            .expect("matchLabels")
        {
            assert_eq!(
                &labels[s(k)],
                v,
                "{name}: the selector matches the pod labels"
            );
        }
        let pod = &doc["spec"]["template"]["spec"];
        let annotations = &doc["spec"]["template"]["metadata"]["annotations"];
        if !annotations.is_badvalue() {
            assert_eq!(s(&annotations["prometheus.io/path"]), "/metrics");
            assert_eq!(
                s(&annotations["prometheus.io/port"]),
                port.to_string(),
                "{name}: scraped on the listening port"
            );
        }
        for container in pod["containers"].as_vec().expect("containers") {
            assert!(!s(&container["image"]).is_empty(), "{name}: image");
            let args: Vec<&str> = container["args"]
                .as_vec()
                .expect("args")
                .iter()
                .map(s)
                .collect();
            subcommands.insert(args[0].to_string());
            let output = Command::new(bianmin_binary())
                .args(&args)
                .arg("--help")
                .output()
                .expect("bianmin runs");
            assert!(
                output.status.success(),
                "{name}: bianmin rejects {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            if let Some(listen) = args.iter().position(|a| *a == "--listen") {
                assert!(args[listen + 1].ends_with(&format!(":{port}")), "{name}");
            }
            let mut probes = 0;
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                let get = &container[probe]["httpGet"];
                if get.is_badvalue() {
                    continue;
                }
                probes += 1;
                assert!(
                    ["/healthz", "/readyz"].contains(&s(&get["path"])),
                    "{name} {probe} probes an endpoint the engine serves"
                );
                let ports = container["ports"].as_vec().expect("ports");
                let named = ports
                    .iter()
                    .find(|p| p["name"] == get["port"])
                    .unwrap_or_else(|| panic!("{name} {probe}: a declared port"));
                assert_eq!(named["containerPort"].as_i64(), Some(port));
            }
            let serves_http = args[0] != "project";
            assert_eq!(
                probes > 0,
                serves_http,
                "{name}: probes where HTTP is served"
            );
            if let Some(env) = container["env"].as_vec() {
                for var in env {
                    let secret = &var["valueFrom"]["secretKeyRef"];
                    if !secret.is_badvalue() {
                        assert!(
                            secret_names.contains(s(&secret["name"])),
                            "{name}: the Secret it reads is shipped"
                        );
                    }
                }
            }
        }
    }
    // Every replica runs `serve`: the singleton workers are leased, not separate workloads.
    assert_eq!(subcommands, BTreeSet::from(["serve".into()]));

    let values = &yaml(&deploy("k8s/nats-values.yaml"))[0];
    assert_eq!(values["config"]["cluster"]["enabled"].as_bool(), Some(true));
    assert_eq!(values["config"]["cluster"]["replicas"].as_i64(), Some(3));
    let jetstream = &values["config"]["jetstream"];
    assert_eq!(jetstream["enabled"].as_bool(), Some(true));
    assert_eq!(jetstream["fileStore"]["enabled"].as_bool(), Some(true));
    assert_eq!(
        jetstream["fileStore"]["pvc"]["enabled"].as_bool(),
        Some(true)
    );
    assert_eq!(s(&jetstream["merge"]["sync_interval"]), "always");
}

/// `bianmin_*` metric names (and `up`) in PromQL expressions.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let word_start = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if word_start && expr[i..].starts_with("bianmin_") {
            let end = expr[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(expr.len(), |e| i + e);
            out.insert(expr[i..end].to_string());
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// The metric families on a `/metrics` page (histogram series reduced to their family).
fn exported(page: &str) -> BTreeSet<String> {
    page.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .flat_map(|family| {
            ["", "_bucket", "_sum", "_count"].map(|suffix| format!("{family}{suffix}"))
        })
        .collect()
}

fn grafana() -> Value {
    serde_json::from_str(&read(&deploy("grafana/bianmin.json"))).expect("the dashboard is JSON")
}

/// (panel title, query) of every target whose datasource is of `kind`.
fn grafana_targets(dashboard: &Value, kind: &str, field: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let ds = if target["datasource"].is_object() {
                &target["datasource"]
            } else {
                &panel["datasource"]
            };
            if ds["type"] == kind {
                let query = target[field].as_str().expect("a query").to_string();
                out.push((panel["title"].as_str().expect("title").to_string(), query));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_in_the_rules_and_the_dashboard_is_exported() {
    let rules = yaml(&deploy("prometheus/bianmin-alerts.yml"));
    let mut wanted: Vec<(String, String)> = Vec::new();
    let mut alerts = BTreeSet::new();
    for group in rules[0]["groups"].as_vec().expect("groups") {
        for rule in group["rules"].as_vec().expect("rules") {
            let alert = s(&rule["alert"]).to_string();
            assert!(!s(&rule["labels"]["severity"]).is_empty(), "{alert}");
            assert!(!s(&rule["annotations"]["summary"]).is_empty(), "{alert}");
            wanted.push((alert.clone(), s(&rule["expr"]).to_string()));
            alerts.insert(alert);
        }
    }
    for needed in [
        "BianminProjectionLagging",
        "BianminOverdueBacklog",
        "BianminAppendErrors",
        "BianminDown",
        "BianminNotReady",
    ] {
        assert!(alerts.contains(needed), "an alert rule {needed}");
    }
    let dashboard = grafana();
    wanted.extend(grafana_targets(&dashboard, "prometheus", "expr"));
    assert!(
        wanted.iter().any(|(_, e)| e.contains("up{")),
        "an alert on targets that are down"
    );
    let scrape = &yaml(&deploy("prometheus/prometheus.yml"))[0];
    assert!(
        s(&scrape["rule_files"][0]).ends_with("bianmin-alerts.yml"),
        "the scrape config loads the rules"
    );
    let targets: Vec<&str> = scrape["scrape_configs"][0]["static_configs"]
        .as_vec()
        .expect("static_configs")
        .iter()
        .flat_map(|c| c["targets"].as_vec().expect("targets").iter().map(s))
        .collect();
    assert_eq!(
        targets,
        ["127.0.0.1:8080", "127.0.0.1:8082"],
        "serve and supervise"
    );
    let probed: Vec<&str> = scrape["scrape_configs"][1]["static_configs"][0]["targets"]
        .as_vec()
        .expect("readiness probe targets")
        .iter()
        .map(s)
        .collect();
    assert_eq!(
        probed,
        [
            "http://127.0.0.1:8080/readyz",
            "http://127.0.0.1:8082/readyz"
        ],
        "readiness is probed on both listeners"
    );

    // A running engine with projections, after an intake, a command and a refusal, so that
    // every labelled series has been touched once.
    let app = spawn_app_with(Store::Sqlite, |config| config.projections.enabled = true).await;
    let (status, created) = app
        .intake(&intake_document(&tests::app::external_id()))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id").to_string();
    let (status, _) = app
        .command(&id, "accept", actors::STATION, &json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .command(&id, "accept", actors::STATION, &json!({}))
        .await;
    assert_eq!(status, 422, "accepting twice is refused");
    for probe in ["/healthz", "/readyz"] {
        let response = app.get(probe, actors::DASHBOARD).await;
        assert_eq!(response.status().as_u16(), 200, "{probe}");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let page = loop {
        let page = app
            .get("/metrics", actors::DASHBOARD)
            .await
            .text()
            .await
            .expect("metrics");
        if page.contains("bianmin_projection_lag_seconds") || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let families = exported(&page);
    let mut checked = 0;
    for (name, expr) in &wanted {
        for metric in metric_names(expr) {
            assert!(
                families.contains(&metric),
                "{name} reads {metric}, which /metrics does not export:\n{page}"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 10,
        "the rules and panels name metrics: {checked}"
    );
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sql_panel_of_the_grafana_dashboard_runs_on_postgres() {
    let db = TestDb::create().await.expect("a PostgreSQL database");
    let url = db.url.clone();
    let app = spawn_app_with(Store::Sqlite, |config| {
        config.projections.enabled = true;
        config.database_url = Some(url);
    })
    .await;
    let ids = crate::browser::seed_street_month(&app).await;
    crate::browser::wait_caught_up(&app).await;
    let dashboard = grafana();
    let queries = grafana_targets(&dashboard, "grafana-postgresql-datasource", "rawSql");
    assert!(queries.len() >= 5, "SQL panels over the read models");
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connects");
    let mut with_rows = 0;
    for (title, sql) in &queries {
        // Grafana's time macro, as Grafana expands it, over the seeded month.
        let sql = expand_time_filter(sql, "'2026-03-01T00:00:00Z'", "'2026-04-01T00:00:00Z'");
        assert!(
            !sql.contains('$'),
            "{title}: only $__timeFilter is used: {sql}"
        );
        // The dashboard's own SQL, from the repository: the text under test.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_all(&pool)
            .await
            .unwrap_or_else(|e| panic!("{title}: {e}\n{sql}"));
        if !rows.is_empty() {
            with_rows += 1;
        }
        if title.starts_with("Requests received per week") {
            let total: i64 = rows.iter().map(|r| r.get::<i64, _>("received")).sum();
            assert_eq!(total, ids.len() as i64, "{title}");
        }
    }
    assert_eq!(
        with_rows,
        queries.len(),
        "every panel shows the seeded data"
    );
    pool.close().await;
    app.teardown().await;
    db.drop_db().await;
}

/// Replaces `$__timeFilter(column)` with `column BETWEEN from AND to`.
fn expand_time_filter(sql: &str, from: &str, to: &str) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(at) = rest.find("$__timeFilter(") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "$__timeFilter(".len()..];
        let close = after.find(')').expect("the macro closes");
        out.push_str(&format!("{} BETWEEN {from} AND {to}", &after[..close]));
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_a_week_and_prints_the_dashboard() {
    let port = free_port();
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(repo().join("scripts/demo"))
            .args(["--no-open", "--duration", "0", "--requests", "21"])
            .arg("--port")
            .arg(port.to_string())
            .arg("--bin")
            .arg(bianmin_binary())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the demo finishes")
    .expect("the demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("demo: received 21, archived 18, open 3"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("dashboard: http://127.0.0.1:{port}/dashboard#")),
        "{stdout}"
    );
    // The engine is gone afterwards: the demo cleans up.
    let gone = std::net::TcpStream::connect(("127.0.0.1", port)).is_err();
    assert!(gone, "the demo stopped its engine");
}

/// The test server's URL as (scheme, credentials and host, host).
fn server_parts() -> (String, String, String) {
    let server = tests::pg::server_url();
    let (scheme, rest) = server.split_once("://").expect("a PostgreSQL URL");
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    (scheme.to_string(), authority.to_string(), host.to_string())
}

/// Runs `sql` with psql against the test server's `postgres` database, stopping at the first
/// error; returns psql's output.
fn psql(database: &str, sql_file: &Path) -> std::process::Output {
    let (scheme, credentials_and_host, _) = server_parts();
    let url = format!("{scheme}://{credentials_and_host}/{database}");
    Command::new("psql")
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-X", "-d", &url, "-f"])
        .arg(sql_file)
        .output()
        .expect("psql runs (PostgreSQL's client, installed with the server)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_init_script_gives_the_engine_a_database_and_dashboards_read_access() {
    // The shipped script with its role and database names made unique on the shared server.
    let unique = format!("bianmin_k{}", uuid::Uuid::now_v7().simple());
    let text = read(&deploy("postgres/init.sql"));
    assert!(text.contains("CREATE ROLE bianmin LOGIN"), "{text}");
    let script = text
        .replace("bianmin_dashboard", &format!("{unique}_dashboard"))
        .replace("ROLE bianmin ", &format!("ROLE {unique} "))
        .replace("ROLE bianmin;", &format!("ROLE {unique};"))
        .replace(
            "DATABASE bianmin OWNER bianmin",
            &format!("DATABASE {unique} OWNER {unique}"),
        )
        .replace("\\c bianmin", &format!("\\c {unique}"))
        .replace("FOR ROLE bianmin ", &format!("FOR ROLE {unique} "));
    assert!(
        !script.contains(" bianmin ") && !script.contains(" bianmin;"),
        "every name was made unique: {script}"
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("init.sql");
    std::fs::write(&file, &script).expect("written");
    let output = psql("postgres", &file);
    assert!(
        output.status.success(),
        "init.sql: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The engine, as the owner role, migrates and fills its read models there.
    let (scheme, _, host) = server_parts();
    let owner_url = format!("{scheme}://{unique}@{host}/{unique}");
    let app = spawn_app_with(Store::Sqlite, |config| {
        config.projections.enabled = true;
        config.database_url = Some(owner_url.clone());
    })
    .await;
    let (status, created) = app
        .intake(&intake_document(&tests::app::external_id()))
        .await;
    assert_eq!(status, 201, "{created}");
    crate::browser::wait_caught_up(&app).await;
    app.teardown().await;

    // The dashboard role reads the tables the engine created, and may not write them.
    let reader_url = format!("{scheme}://{unique}_dashboard@{host}/{unique}");
    let reader = sqlx::PgPool::connect(&reader_url)
        .await
        .expect("the dashboard role logs in");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM request_summary")
        .fetch_one(&reader)
        .await
        .expect("the dashboard role reads the read models");
    assert_eq!(count, 1);
    let write = sqlx::query("DELETE FROM request_summary")
        .execute(&reader)
        .await;
    assert!(write.is_err(), "the dashboard role cannot write");
    reader.close().await;

    let cleanup = dir.path().join("drop.sql");
    std::fs::write(
        &cleanup,
        format!(
            "DROP DATABASE {unique} WITH (FORCE);\nDROP ROLE {unique}_dashboard;\nDROP ROLE {unique};\n"
        ),
    )
    .expect("written");
    let output = psql("postgres", &cleanup);
    assert!(
        output.status.success(),
        "cleanup: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Supervisor event types: what only the deadline supervisor records.
const SUPERVISION: [&str; 4] = [
    "reminder_sent",
    "pre_breach_warned",
    "deadline_missed",
    "escalated",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_supervise_process_supervises_the_shared_log() {
    // The engine in-process (no supervisor runs in it) on a JetStream stream of its own, its
    // clock in March 2026: every deadline it stamps is long past by the wall clock that a
    // `bianmin supervise` process reads.
    let app = spawn_app_with(Store::Nats, |_| {}).await;
    let (status, created) = app
        .intake(&intake_document(&tests::app::external_id()))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id").to_string();
    for (action, body) in [
        ("accept", json!({})),
        (
            "classify",
            json!({"catalogue_item": "um-street-vending", "request_type": "complaint"}),
        ),
        ("refer", json!({"lead_department": "urban-management"})),
    ] {
        let (status, answer) = app.command(&id, action, actors::STATION, &body).await;
        assert_eq!(status, 200, "{action}: {answer}");
    }
    let before = app.history(&id).await;
    assert!(
        !before
            .iter()
            .any(|e| SUPERVISION.contains(&e["type"].as_str().unwrap_or(""))),
        "nothing supervised the request yet"
    );

    // `bianmin serve --no-supervisor` (split.conf's command line) leaves it alone.
    let dir = tempfile::tempdir().expect("data directory");
    let serve_port = free_port();
    let serve_log = std::fs::File::create(dir.path().join("serve.log")).expect("log file");
    let serve = Command::new(bianmin_binary())
        .args([
            "serve",
            "--no-supervisor",
            "--log-format",
            "compact",
            "--listen",
        ])
        .arg(format!("127.0.0.1:{serve_port}"))
        .arg("--data-dir")
        .arg(dir.path().join("serve"))
        .arg("--nats-url")
        .arg(tests::app::NATS_URL)
        .env("BIANMIN_NATS__STREAM", &app.config.nats.stream)
        .env(
            "BIANMIN_NATS__SUBJECT_PREFIX",
            &app.config.nats.subject_prefix,
        )
        // Every process of one instance signs with the instance's one key.
        .env(
            "BIANMIN_SIGNING__KEY_FILE",
            app.config.data_dir.join("signing.key"),
        )
        .env("BIANMIN_PROJECTIONS__ENABLED", "false")
        .stdout(serve_log.try_clone().expect("log file"))
        .stderr(serve_log)
        .spawn()
        .expect("bianmin serve starts");
    let mut serve = Node(serve);
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = http
            .get(format!("http://127.0.0.1:{serve_port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        assert!(
            serve.0.try_wait().expect("status").is_none() && Instant::now() < deadline,
            "bianmin serve --no-supervisor did not become ready: {}",
            read(&dir.path().join("serve.log"))
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !app.history(&id)
            .await
            .iter()
            .any(|e| SUPERVISION.contains(&e["type"].as_str().unwrap_or(""))),
        "serve --no-supervisor does not supervise"
    );
    let _ = serve.0.kill();
    let _ = serve.0.wait();
    drop(serve);

    // `bianmin supervise` as the systemd unit runs it, on the same stream.
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("supervise.log")).expect("log file");
    let child = Command::new(bianmin_binary())
        .args(["supervise", "--log-format", "compact", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.path().join("supervise"))
        .arg("--nats-url")
        .arg(tests::app::NATS_URL)
        .env("BIANMIN_NATS__STREAM", &app.config.nats.stream)
        .env(
            "BIANMIN_NATS__SUBJECT_PREFIX",
            &app.config.nats.subject_prefix,
        )
        // Every process of one instance signs with the instance's one key.
        .env(
            "BIANMIN_SIGNING__KEY_FILE",
            app.config.data_dir.join("signing.key"),
        )
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("bianmin supervise starts");
    let mut process = Node(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut supervised = Vec::new();
    while supervised.is_empty() {
        assert!(
            process.0.try_wait().expect("status").is_none(),
            "bianmin supervise exited: {}",
            read(&dir.path().join("supervise.log"))
        );
        assert!(
            Instant::now() < deadline,
            "no supervision within 60 s: {}",
            read(&dir.path().join("supervise.log"))
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        supervised = app
            .history(&id)
            .await
            .into_iter()
            .filter(|e| SUPERVISION.contains(&e["type"].as_str().unwrap_or("")))
            .collect();
    }
    for event in &supervised {
        assert_eq!(event["actor"]["role"], "system", "{event}");
    }
    // Its listener answers the probes and the scrape the deploy kit points at it.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let response = http
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            .expect("the supervisor's listener answers");
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
    let _ = process.0.kill();
    let _ = process.0.wait();
    drop(process);
    app.teardown().await;
}
