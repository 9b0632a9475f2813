//! `--seed-history N[,N…]`: the figures that grow with the data, measured at each size.
//!
//! For each N a generated history file of N requests (the import workload's file: three
//! lifecycles cycling over every grid of the built-in directory, 2025's timestamps) is written
//! into a fresh JetStream stream by `bianmin import` — the engine's own decide and commit
//! writer, signed, at the import's speed rather than through HTTP. Then `bianmin serve` starts
//! on that log with empty read models and its projectors catch up (the catch-up rate); history
//! reads of sampled requests and the dashboard queries are timed against the full data; the
//! peak RSS, the bytes per request in the log (the stream's stored bytes) and in the read
//! models (the database's size) are read; finally every projection is rebuilt from the log.
//! The stream and the scratch database are deleted afterwards.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::stats::{Latency, Throughput};
use crate::{import, load, rebuild, scratch, serve};

/// The built-in directory the generated file's grids come from.
const DIRECTORY: &str = include_str!("../../deploy/policy/directory.toml");
/// History reads per size (sampled requests).
const HISTORY_READS: usize = 500;
/// Rounds over the dashboard queries per size.
const DASHBOARD_ROUNDS: usize = 20;
/// Longest wait for the projectors to catch up with a seeded log.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(3_600);

/// The figures at one data size.
#[derive(Debug, Clone, Serialize)]
pub struct SeedFigures {
    /// Requests in the log.
    pub requests: u64,
    /// Commits in the log.
    pub commits: u64,
    /// `bianmin import` writing them: requests per second.
    pub seeded: Throughput,
    /// `serve`'s projectors from empty to the log head: commits per second.
    pub catch_up: Option<Throughput>,
    /// One request's history over HTTP.
    pub history: Option<Latency>,
    /// The dashboard queries over HTTP.
    pub dashboard: Option<Latency>,
    /// Every projection rebuilt from the log: events per second.
    pub rebuild: Option<Throughput>,
    /// Peak RSS of `bianmin serve` (VmHWM), MiB.
    pub peak_rss_mib: Option<f64>,
    /// Stored bytes of the log stream per request.
    pub log_bytes_per_request: Option<f64>,
    /// Size of the read-model database per request.
    pub read_model_bytes_per_request: Option<f64>,
}

/// Where one size runs.
pub struct Target<'a> {
    /// The `bianmin` binary.
    pub binary: &'a Path,
    /// A client of the NATS server.
    pub client: &'a async_nats::Client,
    /// Its URL, for the engine.
    pub nats_url: &'a str,
    /// A PostgreSQL URL scratch databases can be created from.
    pub pg_url: &'a str,
    /// The run's tag.
    pub tag: &'a str,
}

/// Seeds `requests` requests and measures; the stream and the database are removed after.
pub async fn measure(
    target: &Target<'_>,
    requests: u64,
    notes: &mut Vec<String>,
) -> anyhow::Result<SeedFigures> {
    let tag = format!("{}s{requests}", target.tag);
    let db = scratch::ScratchDb::create(target.pg_url, &tag).await?;
    let stream = format!("BIANMIN_BENCH_SEED_{tag}").to_uppercase();
    let outcome = seeded(target, &tag, &stream, &db.url, requests, notes).await;
    async_nats::jetstream::new(target.client.clone())
        .delete_stream(&stream)
        .await
        .ok();
    if let Err(e) = db.drop_now().await {
        notes.push(format!(
            "seed {requests}: scratch database not dropped: {e:#}"
        ));
    }
    outcome
}

async fn seeded(
    target: &Target<'_>,
    tag: &str,
    stream: &str,
    database_url: &str,
    requests: u64,
    notes: &mut Vec<String>,
) -> anyhow::Result<SeedFigures> {
    let dir = tempfile::tempdir()?;
    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(&secrets)?;
    let file = dir.path().join("history.csv");
    eprintln!("seed {requests}: writing the history file...");
    let expected = import::generate(&file, requests, tag)?;
    let prefix = format!("bmseed{tag}");
    eprintln!("seed {requests}: bianmin import ({expected} commits)...");
    let imported = import::run_seed_import(
        target.binary,
        &dir.path().join("import"),
        &file,
        (target.nats_url, stream, &prefix),
        database_url,
        &secrets,
    )
    .await?;
    anyhow::ensure!(
        imported.rejected == 0,
        "{} rows refused by the import",
        imported.rejected
    );
    let seconds = Duration::from_secs_f64(imported.seconds.max(1e-9));
    let mut figures = SeedFigures {
        requests,
        commits: imported.commits,
        seeded: Throughput::new(imported.rows, seconds),
        catch_up: None,
        history: None,
        dashboard: None,
        rebuild: None,
        peak_rss_mib: None,
        log_bytes_per_request: None,
        read_model_bytes_per_request: None,
    };
    let js = async_nats::jetstream::new(target.client.clone());
    let info = js.get_stream(stream).await?.info().await?.clone();
    figures.log_bytes_per_request = Some(info.state.bytes as f64 / requests as f64);
    let settings = serve::ServeSettings {
        binary: target.binary.to_path_buf(),
        nats_url: target.nats_url.to_string(),
        database_url: database_url.to_string(),
        stream: stream.to_string(),
        subject_prefix: prefix,
        directory_toml: DIRECTORY.to_string(),
        shared_secrets: Some(secrets),
    };
    eprintln!("seed {requests}: bianmin serve catching up...");
    let started = Instant::now();
    let mut engine = serve::Serve::start(&settings).await?;
    let mut conn = scratch::connect(database_url).await?;
    let head = info.state.last_sequence;
    wait_caught_up(&mut conn, head).await?;
    figures.catch_up = Some(Throughput::new(head, started.elapsed()));
    read_figures(&mut conn, &engine.base_url, &mut figures, notes).await?;
    let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&mut conn)
        .await?;
    figures.read_model_bytes_per_request = Some(size as f64 / requests as f64);
    figures.peak_rss_mib = engine.peak_rss_mib();
    if !engine.is_running() {
        notes.push(format!(
            "seed {requests}: serve exited: {}",
            engine.log_tail()
        ));
    }
    engine.stop().await?;
    eprintln!("seed {requests}: rebuilding the projections...");
    match rebuild::rebuild_all(target.client, stream, database_url).await {
        Ok(rebuilt) => figures.rebuild = Some(rebuilt.events),
        Err(e) => notes.push(format!("seed {requests}: rebuild failed: {e:#}")),
    }
    Ok(figures)
}

/// Waits until the slowest projector's checkpoint reaches `head`.
async fn wait_caught_up(conn: &mut sqlx::PgConnection, head: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + CATCH_UP_LIMIT;
    loop {
        let checkpoint: Option<i64> =
            sqlx::query_scalar("SELECT min(position) FROM projection_checkpoints")
                .fetch_one(&mut *conn)
                .await
                .ok()
                .flatten();
        if checkpoint.unwrap_or(0).max(0) as u64 >= head {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "projectors not caught up after {CATCH_UP_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Times history reads of sampled requests and the dashboard queries.
async fn read_figures(
    conn: &mut sqlx::PgConnection,
    base_url: &str,
    figures: &mut SeedFigures,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let supervisor = "centre-supervisor;supervisor";
    let sampled: Vec<String> = sqlx::query_scalar(
        "SELECT request_id FROM request_summary ORDER BY md5(request_id) LIMIT $1",
    )
    .bind(HISTORY_READS as i64)
    .fetch_all(&mut *conn)
    .await
    .context("sampling requests")?;
    let paths: Vec<String> = sampled
        .iter()
        .map(|id| format!("/api/v1/requests/{id}/history"))
        .collect();
    let (history, failures, _) = load::read_many(&http, base_url, &paths, supervisor, 1).await;
    figures.history = history.summary();
    if failures > 0 {
        notes.push(format!(
            "seed {}: {failures} history reads failed",
            figures.requests
        ));
    }
    let queries = [
        "/api/v1/stats?period=month&from=2025-01&to=2025-12",
        "/api/v1/stats?period=month&from=2025-01&to=2025-12&street=jd-01",
        "/api/v1/stats?period=month&from=2025-01&to=2025-12&department=urban-management",
        "/api/v1/rankings/departments?month=2025-06",
        "/api/v1/overdue?limit=50",
        "/api/v1/worklists/departments/urban-management?limit=50",
    ];
    let paths: Vec<String> = (0..DASHBOARD_ROUNDS)
        .flat_map(|_| queries.iter().map(|q| q.to_string()))
        .collect();
    let (dashboard, failures, _) = load::read_many(&http, base_url, &paths, supervisor, 1).await;
    figures.dashboard = dashboard.summary();
    if failures > 0 {
        notes.push(format!(
            "seed {}: {failures} dashboard queries failed",
            figures.requests
        ));
    }
    Ok(())
}

/// The report's rows for one size: the growth curve reads down the sizes.
pub fn rows(f: &SeedFigures, pg_upsert: &Throughput) -> Vec<[String; 4]> {
    let lat = |l: &Option<Latency>| match l {
        Some(l) => format!("p50 {:.2} ms, p99 {:.2} ms", l.p50_ms, l.p99_ms),
        None => "not measured".into(),
    };
    let rate = |t: &Option<Throughput>, unit: &str| match t {
        Some(t) => format!("{:.0} {unit}/s", t.per_second),
        None => "not measured".into(),
    };
    let bytes = |b: Option<f64>| b.map_or("-".into(), |b| format!("{b:.0} B"));
    let n = f.requests;
    vec![
        [
            format!("seeded {n} requests ({} commits)", f.commits),
            format!("{:.0} requests/s by bianmin import", f.seeded.per_second),
            String::new(),
            String::new(),
        ],
        [
            format!("  {n}: catch-up from empty"),
            rate(&f.catch_up, "commit"),
            String::new(),
            String::new(),
        ],
        [
            format!("  {n}: history"),
            lat(&f.history),
            String::new(),
            "p99 < 5 ms at 1 M".into(),
        ],
        [
            format!("  {n}: dashboard queries"),
            lat(&f.dashboard),
            String::new(),
            "p99 < 50 ms at 1 M".into(),
        ],
        [
            format!("  {n}: rebuild"),
            rate(&f.rebuild, "event"),
            f.rebuild.map_or(String::new(), |r| {
                format!("{:.0}% of (c)", r.ratio_to(pg_upsert) * 100.0)
            }),
            ">= 60% of (c)".into(),
        ],
        [
            format!("  {n}: peak RSS / bytes per request (log, read models)"),
            format!(
                "{} MiB / {}, {}",
                f.peak_rss_mib.map_or("-".into(), |m| format!("{m:.0}")),
                bytes(f.log_bytes_per_request),
                bytes(f.read_model_bytes_per_request)
            ),
            String::new(),
            "< 512 MiB at 1 M".into(),
        ],
    ]
}
