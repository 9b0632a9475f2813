//! The report: every figure of a run, printed as a table and written as JSON to
//! `<out>/<mode>-<tag>.json` and `<out>/latest-<mode>.json` so runs can be compared.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::raw::RawLimits;
use crate::stats::{Latency, Throughput};

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `quick` or `full`.
    pub mode: String,
    /// The run's unique tag (names its scratch database and streams).
    pub run_tag: String,
    /// Where it ran.
    pub machine: Machine,
    /// The raw limits of the servers, measured first.
    pub raw: RawLimits,
    /// The engine's figures (`None` when the engine workloads were skipped or failed).
    pub engine: Option<EngineFigures>,
    /// `bianmin import` of a generated history file (`None` when skipped or failed).
    pub import: Option<crate::import::ImportFigures>,
    /// The figures that grow with the data, at each `--seed-history` size.
    pub seeded: Vec<crate::seed::SeedFigures>,
    /// Each target, met or not.
    pub targets: Vec<TargetCheck>,
    /// Remarks: skipped parts, errors, binding constraints.
    pub notes: Vec<String>,
}

/// The machine and server versions.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs available.
    pub cpus: usize,
    /// The CPU model, from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// nats-server version, as the server reports it.
    pub nats_server: String,
    /// PostgreSQL server version.
    pub postgres: String,
}

/// The engine's figures under the simulated city.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EngineFigures {
    /// Requests submitted.
    pub requests: u64,
    /// Commands (intake included) sent over NATS request-reply, and their rate.
    pub nats_commands: Option<Throughput>,
    /// Latency of one NATS command, reply included.
    pub nats_latency: Option<Latency>,
    /// Commands sent over HTTP, and their rate.
    pub http_commands: Option<Throughput>,
    /// Latency of one HTTP command.
    pub http_latency: Option<Latency>,
    /// Every command, both edges, over the whole load phase.
    pub commands: Option<Throughput>,
    /// Events recorded during the load phase, per second end to end.
    pub events: Option<Throughput>,
    /// Commands the engine refused (conflicts, rule refusals) or that failed.
    pub command_errors: u64,
    /// Commands the supervisor issued itself (reminders, escalations) during the load phase.
    pub supervisor_commits: u64,
    /// Projection lag (log head minus projected position, as time) sampled under load.
    pub projection_lag: Option<Latency>,
    /// Rebuild of every projection from the log, events per second.
    pub rebuild: Option<Throughput>,
    /// Loading one request's history over HTTP.
    pub history: Option<Latency>,
    /// Mean events per history loaded.
    pub history_events_mean: Option<f64>,
    /// Dashboard statistics queries over HTTP.
    pub dashboard: Option<Latency>,
    /// Peak resident set size of `bianmin serve` (VmHWM), MiB.
    pub peak_rss_mib: Option<f64>,
    /// The command rate of 1, 2 and 3 replicas of one instance on this machine.
    pub replicas: Vec<crate::replicas::ReplicaRate>,
    /// CPU used during the load phase per process group (serve, nats-server, postgres, bench).
    pub load_cpu: std::collections::BTreeMap<String, crate::cpu::CpuShare>,
}

/// One target and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    /// What is measured.
    pub metric: String,
    /// The target, in words.
    pub target: String,
    /// The figure this run measured (`None`: not measured).
    pub measured: Option<f64>,
    /// Whether it was met (`None`: not measured).
    pub met: Option<bool>,
}

impl Report {
    /// Checks the targets against the figures (a 2-core machine is assumed by the targets).
    pub fn check_targets(&mut self) {
        let raw = &self.raw;
        let engine = self.engine.clone().unwrap_or_default();
        let ratio = |t: Option<Throughput>, limit: &Throughput| t.map(|t| t.ratio_to(limit));
        let at_least = |v: Option<f64>, min: f64| v.map(|v| v >= min);
        let below = |v: Option<f64>, max: f64| v.map(|v| v < max);
        let mut targets = Vec::new();
        let mut add = |metric: &str, target: &str, measured: Option<f64>, met: Option<bool>| {
            targets.push(TargetCheck {
                metric: metric.into(),
                target: target.into(),
                measured,
                met,
            });
        };
        let nats = ratio(engine.nats_commands, &raw.occ_append);
        add(
            "NATS command path / raw OCC append",
            ">= 0.40",
            nats,
            at_least(nats, 0.40),
        );
        let http = ratio(engine.http_commands, &raw.occ_append);
        add(
            "HTTP command path / raw OCC append",
            ">= 0.30",
            http,
            at_least(http, 0.30),
        );
        let lag = engine.projection_lag.map(|l| l.p99_ms);
        add("projection lag p99 (ms)", "< 1000", lag, below(lag, 1000.0));
        let rebuild = ratio(engine.rebuild, &raw.pg_upsert);
        add(
            "rebuild / raw batched PG upsert",
            ">= 0.60",
            rebuild,
            at_least(rebuild, 0.60),
        );
        let history = engine.history.map(|l| l.p99_ms);
        add("history p99 (ms)", "< 5", history, below(history, 5.0));
        let dashboard = engine.dashboard.map(|l| l.p99_ms);
        add(
            "dashboard query p99 (ms)",
            "< 50",
            dashboard,
            below(dashboard, 50.0),
        );
        add(
            "peak RSS of serve (MiB)",
            "< 512",
            engine.peak_rss_mib,
            below(engine.peak_rss_mib, 512.0),
        );
        self.targets = targets;
    }

    /// The report as a plain-text table ([`crate::table`]).
    pub fn table(&self) -> String {
        crate::table::render(self)
    }

    /// Writes `<dir>/<mode>-<tag>.json` and `<dir>/latest-<mode>.json`; returns the first path.
    pub fn write_json(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let json = serde_json::to_vec_pretty(self)?;
        let path = dir.join(format!("{}-{}.json", self.mode, self.run_tag));
        std::fs::write(&path, &json).with_context(|| format!("writing {}", path.display()))?;
        let latest = dir.join(format!("latest-{}.json", self.mode));
        std::fs::write(&latest, &json).with_context(|| format!("writing {}", latest.display()))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn report(engine: Option<EngineFigures>) -> Report {
        let t = |ops| Throughput::new(ops, Duration::from_secs(1));
        Report {
            mode: "quick".into(),
            run_tag: "1_2".into(),
            machine: Machine {
                cpus: 2,
                cpu_model: "cpu".into(),
                nats_server: "2.9".into(),
                postgres: "15".into(),
            },
            raw: RawLimits {
                occ_append: t(10_000),
                occ_append_latency: None,
                occ_conflicts: 0,
                replay: t(100_000),
                pg_upsert: t(50_000),
            },
            engine,
            import: None,
            seeded: Vec::new(),
            targets: Vec::new(),
            notes: vec!["n".into()],
        }
    }

    #[test]
    fn targets_compare_ratios_and_latencies() {
        let t = |ops| Some(Throughput::new(ops, Duration::from_secs(1)));
        let lat = |p99_ms| {
            Some(Latency {
                samples: 10,
                p50_ms: 1.0,
                p99_ms,
                max_ms: p99_ms,
            })
        };
        let mut r = report(Some(EngineFigures {
            nats_commands: t(4_000),
            http_commands: t(2_000),
            projection_lag: lat(1500.0),
            rebuild: t(40_000),
            history: lat(4.0),
            ..EngineFigures::default()
        }));
        r.check_targets();
        let met: Vec<Option<bool>> = r.targets.iter().map(|t| t.met).collect();
        assert_eq!(
            met,
            vec![
                Some(true),
                Some(false),
                Some(false),
                Some(true),
                Some(true),
                None,
                None
            ]
        );
        let table = r.table();
        assert!(table.contains("40% of (a)"), "{table}");
        assert!(table.contains("MISSED"));
    }

    #[test]
    fn json_goes_to_a_run_file_and_a_latest_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = report(None);
        r.check_targets();
        let path = r.write_json(dir.path()).unwrap();
        let value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(value["raw"]["occ_append"]["ops"], 10_000);
        assert!(dir.path().join("latest-quick.json").exists());
        assert!(r.table().contains("not run"));
    }
}
