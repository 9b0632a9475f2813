//! `bianmin-bench`: measures the raw limits of NATS JetStream and PostgreSQL on this machine,
//! then runs the engine (`bianmin serve`, as a child process) under a seeded simulated city
//! against the same servers, and reports the engine's figures as ratios to those limits.
//!
//! ```text
//! cargo run --release -p benches --bin bianmin-bench -- --quick      # < 1 min smoke run
//! cargo run --release -p benches --bin bianmin-bench -- --full --requests 100000
//! ```
//!
//! # Layout
//! - [`raw`]: the raw limits (OCC appends, ordered replay, batched upserts).
//! - [`cpu`]: CPU time per process during the load (which one binds).
//! - [`city`]: the seeded simulated city and each request's lifecycle.
//! - [`serve`]: `bianmin serve` as a child process (config, readiness, RSS, stop).
//! - [`load`]: lifecycles over NATS and HTTP, projection lag, history and dashboard reads.
//! - [`rebuild`]: rebuilding every projection from the log.
//! - [`import`]: `bianmin import` of a generated file of historical requests.
//! - [`report`]: the table and the JSON written to `--out` (default `target/bench`).
//! - [`stats`]: latency percentiles and throughput.
//! - [`scratch`]: the run's scratch database and names, removed at the end.

mod city;
mod cpu;
mod import;
mod load;
mod raw;
mod rebuild;
mod replicas;
mod report;
mod scratch;
mod seed;
mod serve;
mod stats;
mod table;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

use report::{EngineFigures, Machine, Report};

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "bianmin-bench",
    about = "Benchmarks Bianmin against raw NATS and PostgreSQL limits"
)]
struct Args {
    /// Small counts; finishes in under a minute (the CI smoke run).
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// Large counts, for the README's performance section.
    #[arg(long)]
    full: bool,
    /// Requests the simulated city submits (default: 1,500 quick, 1,000,000 full).
    #[arg(long)]
    requests: Option<u64>,
    /// NATS server (JetStream enabled).
    #[arg(
        long,
        env = "BIANMIN_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    nats_url: String,
    /// PostgreSQL URL of a database the harness may create scratch databases from.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pg_url: String,
    /// Directory the JSON reports are written to.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Measure only the raw limits.
    #[arg(long)]
    raw_only: bool,
    /// The `bianmin` binary (default: next to this one, e.g. target/release/bianmin).
    #[arg(long)]
    bianmin: Option<PathBuf>,
    /// Requests whose lifecycles run at once on each edge.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Seed of the simulated city.
    #[arg(long, default_value_t = 12345)]
    seed: u64,
    /// Rows of the import workload's file (default: 2,000 quick, 100,000 full; 0 skips it).
    #[arg(long)]
    import_rows: Option<u64>,
    /// Data sizes (requests, comma-separated, e.g. `100000,300000,1000000`) at which the
    /// figures that grow with the data are measured: each size is written into a fresh log by
    /// `bianmin import`, then projected, read (history, dashboards), sized and rebuilt. With
    /// it, only the raw limits and the sizes are measured.
    #[arg(long, value_delimiter = ',')]
    seed_history: Vec<u64>,
}

/// The counts a mode runs with.
#[derive(Debug, Clone, Copy)]
struct Scale {
    raw_appends: usize,
    raw_rows: usize,
    requests: u64,
}

impl Args {
    fn mode(&self) -> &'static str {
        if self.full { "full" } else { "quick" }
    }

    fn scale(&self) -> Scale {
        let (raw_appends, raw_rows, requests) = if self.full {
            (200_000, 1_000_000, 1_000_000)
        } else {
            (60_000, 150_000, 1_500)
        };
        Scale {
            raw_appends,
            raw_rows,
            requests: self.requests.unwrap_or(requests),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scale = args.scale();
    let tag = scratch::run_tag();
    eprintln!("bianmin-bench: {} mode, run {tag}, {scale:?}", args.mode());

    let client = async_nats::ConnectOptions::new()
        .name("bianmin-bench")
        .connect(&args.nats_url)
        .await
        .with_context(|| format!("connecting to NATS at {}", args.nats_url))?;
    let machine = Machine {
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu_model: cpu_model(),
        nats_server: client.server_info().version,
        postgres: scratch::postgres_version(&args.pg_url).await?,
    };
    let db = scratch::ScratchDb::create(&args.pg_url, &tag).await?;
    let outcome = run(&args, scale, &tag, &client, &db, machine).await;
    if let Err(e) = db.drop_now().await {
        eprintln!("warning: scratch database not dropped: {e:#}");
    }
    let report = outcome?;
    println!("{}", report.table());
    let path = report.write_json(&args.out)?;
    eprintln!("report written to {}", path.display());
    Ok(())
}

async fn run(
    args: &Args,
    scale: Scale,
    tag: &str,
    client: &async_nats::Client,
    db: &scratch::ScratchDb,
    machine: Machine,
) -> anyhow::Result<Report> {
    eprintln!(
        "measuring raw limits ({} appends, {} upserts)...",
        scale.raw_appends, scale.raw_rows
    );
    let raw = raw::measure(client, &db.url, tag, scale.raw_appends, scale.raw_rows).await?;
    let mut notes = Vec::new();
    if raw.occ_conflicts > 0 {
        notes.push(format!(
            "{} raw appends hit an unexpected OCC conflict",
            raw.occ_conflicts
        ));
    }
    if args.raw_only {
        notes.push("engine workloads skipped (--raw-only)".into());
    }
    let seeding = !args.seed_history.is_empty();
    if seeding {
        notes.push(
            "load and import workloads skipped (--seed-history measures the sizes only)".into(),
        );
    }
    let engine = if args.raw_only || seeding {
        None
    } else {
        match engine_phase(args, scale, tag, client, db, &mut notes).await {
            Ok(figures) => Some(figures),
            Err(e) => {
                notes.push(format!("engine workloads failed: {e:#}"));
                None
            }
        }
    };
    let import_rows = args
        .import_rows
        .unwrap_or(if args.full { 100_000 } else { 2_000 });
    let import = if args.raw_only || seeding || import_rows == 0 {
        None
    } else {
        match args.bianmin.clone().or_else(serve::find_binary) {
            Some(binary) => {
                match import::measure(
                    &binary,
                    client,
                    &args.nats_url,
                    tag,
                    import_rows,
                    &mut notes,
                )
                .await
                {
                    Ok(figures) => Some(figures),
                    Err(e) => {
                        notes.push(format!("import workload failed: {e:#}"));
                        None
                    }
                }
            }
            None => {
                notes.push("import workload skipped: no `bianmin` binary".into());
                None
            }
        }
    };
    let mut seeded = Vec::new();
    if !args.raw_only && !args.seed_history.is_empty() {
        match args.bianmin.clone().or_else(serve::find_binary) {
            Some(binary) => {
                let target = seed::Target {
                    binary: &binary,
                    client,
                    nats_url: &args.nats_url,
                    pg_url: &args.pg_url,
                    tag,
                };
                for &requests in &args.seed_history {
                    match seed::measure(&target, requests, &mut notes).await {
                        Ok(figures) => seeded.push(figures),
                        Err(e) => notes.push(format!("seed {requests} failed: {e:#}")),
                    }
                }
            }
            None => notes.push("--seed-history skipped: no `bianmin` binary".into()),
        }
    }
    let js = async_nats::jetstream::new(client.clone());
    let mut names = js.stream_names();
    let mut ours = Vec::new();
    while let Some(Ok(name)) = futures::StreamExt::next(&mut names).await {
        if name.contains(tag) {
            ours.push(name);
        }
    }
    for name in ours {
        js.delete_stream(&name).await.ok();
    }
    let mut report = Report {
        mode: args.mode().into(),
        run_tag: tag.into(),
        machine,
        raw,
        engine,
        import,
        seeded,
        targets: Vec::new(),
        notes,
    };
    report.check_targets();
    Ok(report)
}

/// Starts `bianmin serve`, loads it over NATS then HTTP, reads history and dashboards, stops
/// it, and rebuilds the projections. Parts that cannot run are noted and skipped.
async fn engine_phase(
    args: &Args,
    scale: Scale,
    tag: &str,
    client: &async_nats::Client,
    db: &scratch::ScratchDb,
    notes: &mut Vec<String>,
) -> anyhow::Result<EngineFigures> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let (city, settings, mut engine) = start_engine(args, tag, db).await?;
    let mut figures = EngineFigures {
        requests: scale.requests,
        ..EngineFigures::default()
    };

    let js = async_nats::jetstream::new(client.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let lag = tokio::spawn(load::sample_lag(
        js,
        settings.stream.clone(),
        db.url.clone(),
        std::time::Duration::from_millis(50),
        stop.clone(),
    ));

    let nats = load::Edge::Nats {
        client: client.clone(),
        prefix: settings.subject_prefix.clone(),
    };
    let http_client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.in_flight)
        .build()?;
    let http = load::Edge::Http {
        client: http_client.clone(),
        base_url: engine.base_url.clone(),
    };
    let half = scale.requests / 2;
    let cpu_before = cpu::snapshot(engine.pid());
    let started = std::time::Instant::now();
    eprintln!(
        "loading over NATS ({half} requests, {} in flight)...",
        args.in_flight
    );
    let over_nats = load::drive(&nats, &city, tag, 0..half, args.in_flight).await;
    eprintln!("loading over HTTP ({} requests)...", scale.requests - half);
    let over_http = load::drive(&http, &city, tag, half..scale.requests, args.in_flight).await;
    let load_time = started.elapsed();
    figures.load_cpu = cpu::shares(
        &cpu_before,
        &cpu::snapshot(engine.pid()),
        load_time.as_secs_f64(),
    );
    stop.store(true, Ordering::Relaxed);

    record_load(&mut figures, [&over_nats, &over_http], load_time, notes);

    match lag.await {
        Ok(Ok(samples)) if samples.len() > 0 => figures.projection_lag = samples.summary(),
        Ok(Ok(_)) => notes.push("projection lag: the projector never caught up with the log head (is it running in serve?)".into()),
        Ok(Err(e)) => notes.push(format!("projection lag not measured: {e:#}")),
        Err(e) => notes.push(format!("projection lag sampler failed: {e}")),
    }

    let completed: Vec<uuid::Uuid> = over_nats
        .completed
        .iter()
        .chain(&over_http.completed)
        .copied()
        .collect();
    measure_reads(
        &mut figures,
        &http_client,
        &engine.base_url,
        &city,
        &completed,
        args.full,
        notes,
    )
    .await;

    figures.peak_rss_mib = engine.peak_rss_mib();
    if !engine.is_running() {
        notes.push(format!(
            "bianmin serve exited during the run: {}",
            engine.log_tail()
        ));
    }
    engine.stop().await?;

    eprintln!("rebuilding projections from the log...");
    record_rebuild(&mut figures, client, &settings.stream, &db.url, notes).await;
    let replica_requests = (scale.requests / 5).max(30);
    eprintln!("command rate of 1, 2 and 3 replicas ({replica_requests} requests each)...");
    match replicas::measure(
        &settings,
        &city,
        &args.pg_url,
        tag,
        replica_requests,
        args.in_flight,
    )
    .await
    {
        Ok(rates) => figures.replicas = rates,
        Err(e) => notes.push(format!("replica workload failed: {e:#}")),
    }
    Ok(figures)
}

/// The generated city and `bianmin serve` started on it with isolated stream, subjects and
/// database.
async fn start_engine(
    args: &Args,
    tag: &str,
    db: &scratch::ScratchDb,
) -> anyhow::Result<(city::City, serve::ServeSettings, serve::Serve)> {
    let city = city::City::generate(args.seed)?;
    let binary = args.bianmin.clone().or_else(serve::find_binary).ok_or_else(|| {
        anyhow::anyhow!("no `bianmin` binary next to this one; run `cargo build --release -p engine-service` or pass --bianmin")
    })?;
    let settings = serve::ServeSettings {
        binary,
        nats_url: args.nats_url.clone(),
        database_url: db.url.clone(),
        stream: format!("BIANMIN_BENCH_{tag}"),
        subject_prefix: format!("bmbench{tag}"),
        directory_toml: city.directory_toml.clone(),
        shared_secrets: None,
    };
    eprintln!(
        "starting bianmin serve ({} streets, {} grids, {} catalogue items)...",
        city.grids
            .iter()
            .map(|g| &g.street)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        city.grids.len(),
        city.items.len()
    );
    let engine = serve::Serve::start(&settings).await?;
    Ok((city, settings, engine))
}

/// The load's figures: throughput and latency per edge, both edges together, failures noted.
fn record_load(
    figures: &mut EngineFigures,
    [nats, http]: [&load::Outcome; 2],
    load_time: std::time::Duration,
    notes: &mut Vec<String>,
) {
    for (edge, outcome) in [("NATS", nats), ("HTTP", http)] {
        if outcome.error_count() > 0 {
            let codes: Vec<String> = outcome
                .errors
                .iter()
                .map(|(c, n)| format!("{c} x{n}"))
                .collect();
            notes.push(format!(
                "{edge}: {} failed commands: {}",
                outcome.error_count(),
                codes.join(", ")
            ));
        }
    }
    if nats.commands > 0 {
        figures.nats_commands = nats.throughput;
        figures.nats_latency = nats.latency.summary();
    }
    if http.commands > 0 {
        figures.http_commands = http.throughput;
        figures.http_latency = http.latency.summary();
    }
    let commands = nats.commands + http.commands;
    let events = nats.events + http.events;
    figures.commands = Some(stats::Throughput::new(commands, load_time));
    figures.events = Some(stats::Throughput::new(events, load_time));
    figures.command_errors = nats.error_count() + http.error_count();
}

/// History reads of completed requests and the dashboard queries, after the load.
async fn measure_reads(
    figures: &mut EngineFigures,
    http_client: &reqwest::Client,
    base_url: &str,
    city: &city::City,
    completed: &[uuid::Uuid],
    full: bool,
    notes: &mut Vec<String>,
) {
    let supervisor = "centre-supervisor;supervisor";
    let history_paths: Vec<String> = completed
        .iter()
        .take(if full { 2000 } else { 200 })
        .map(|id| format!("/api/v1/requests/{id}/history"))
        .collect();
    let (history, failures, mean) =
        load::read_many(http_client, base_url, &history_paths, supervisor, 1).await;
    figures.history = history.summary();
    figures.history_events_mean = mean;
    if failures > 0 {
        notes.push(format!(
            "history: {failures} of {} reads failed",
            history_paths.len()
        ));
    }

    let street = city.grids[0].street.clone();
    let dashboards = [
        "/api/v1/stats".to_string(),
        format!("/api/v1/stats?street={street}"),
        "/api/v1/stats?department=urban-management".into(),
        "/api/v1/stats?channel=hotline".into(),
        "/api/v1/rankings/departments".into(),
        "/api/v1/overdue?limit=50".into(),
        "/api/v1/due-soon?limit=50".into(),
        "/api/v1/worklists/departments/urban-management?limit=50".into(),
    ];
    let rounds = if full { 50 } else { 10 };
    let dashboard_paths: Vec<String> = (0..rounds)
        .flat_map(|_| dashboards.iter().cloned())
        .collect();
    let (dashboard, failures, _) =
        load::read_many(http_client, base_url, &dashboard_paths, supervisor, 1).await;
    figures.dashboard = dashboard.summary();
    if failures > 0 {
        notes.push(format!(
            "dashboard: {failures} of {} queries failed",
            dashboard_paths.len()
        ));
    }
}

/// The projections rebuilt from the log into the scratch database, per projector.
async fn record_rebuild(
    figures: &mut EngineFigures,
    client: &async_nats::Client,
    stream: &str,
    db_url: &str,
    notes: &mut Vec<String>,
) {
    match rebuild::rebuild_all(client, stream, db_url).await {
        Ok(rebuilt) => {
            figures.rebuild = Some(rebuilt.events);
            figures.supervisor_commits = rebuilt.supervisor_commits;
            for (name, t) in rebuilt.per_projector {
                notes.push(format!(
                    "rebuild of projector `{name}`: {:.0} events/s ({} events in {:.2} s)",
                    t.per_second, t.ops, t.seconds
                ));
            }
        }
        Err(e) => notes.push(format!("rebuild failed: {e:#}")),
    }
}

/// The CPU model name from `/proc/cpuinfo` ("unknown" elsewhere).
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
