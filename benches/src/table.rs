//! The plain-text table of a [`Report`]: one row per figure (value, ratio to the raw limit it
//! is judged against, target), then the targets' verdicts and the notes.

use crate::import::ImportFigures;
use crate::raw::RawLimits;
use crate::report::{EngineFigures, Report};
use crate::stats::{Latency, Throughput};

/// One table row: figure, value, ratio, target.
pub type Row = [String; 4];

/// A row from its four cells.
fn row(figure: impl Into<String>, value: String, ratio: String, target: &str) -> Row {
    [figure.into(), value, ratio, target.into()]
}

/// A throughput as `N unit/s (ops in s)`.
fn rate(t: &Throughput, unit: &str) -> String {
    format!(
        "{:.0} {unit}/s ({} in {:.1} s)",
        t.per_second, t.ops, t.seconds
    )
}

/// A latency's p50 and p99, or "not measured".
fn lat(l: &Option<Latency>) -> String {
    match l {
        Some(l) => format!(
            "p50 {:.2} ms, p99 {:.2} ms ({} samples)",
            l.p50_ms, l.p99_ms, l.samples
        ),
        None => "not measured".into(),
    }
}

/// A ratio as a whole percentage.
fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// A throughput and its ratio to `limit` (named `name`), or "not measured".
fn with_ratio(t: &Option<Throughput>, unit: &str, limit: &Throughput, name: &str) -> [String; 2] {
    match t {
        Some(t) => [
            rate(t, unit),
            format!("{} of {name}", pct(t.ratio_to(limit))),
        ],
        None => ["not measured".into(), String::new()],
    }
}

/// The whole report as text.
pub fn render(report: &Report) -> String {
    let raw = &report.raw;
    let mut rows = raw_rows(raw);
    match &report.engine {
        Some(e) => rows.extend(engine_rows(e, raw)),
        None => rows.push(row("engine workloads", "not run".into(), String::new(), "")),
    }
    for r in report.engine.iter().flat_map(|e| &e.replicas) {
        rows.push(row(
            format!("commands, {} serve replica(s), HTTP", r.replicas),
            rate(&r.commands, "cmd"),
            format!("{} failed", r.errors),
            "",
        ));
    }
    if let Some(i) = &report.import {
        rows.extend(import_rows(i, raw));
    }
    for f in &report.seeded {
        rows.extend(crate::seed::rows(f, &raw.pg_upsert));
    }
    let m = &report.machine;
    let mut out = format!(
        "Bianmin benchmark, {} mode, run {} — {} CPUs ({}), nats-server {}, PostgreSQL {}\n\n",
        report.mode, report.run_tag, m.cpus, m.cpu_model, m.nats_server, m.postgres
    );
    out.push_str(&grid(&rows));
    out.push_str(&targets(report));
    out
}

/// The raw limits every ratio is taken against.
fn raw_rows(raw: &RawLimits) -> Vec<Row> {
    vec![
        row(
            "raw (a) JetStream OCC append",
            rate(&raw.occ_append, "msg"),
            "limit".into(),
            "",
        ),
        row(
            "raw (a) append latency",
            lat(&raw.occ_append_latency),
            String::new(),
            "",
        ),
        row(
            "raw (b) ordered-consumer replay",
            rate(&raw.replay, "msg"),
            "limit".into(),
            "",
        ),
        row(
            "raw (c) PG upsert, 500 rows/tx",
            rate(&raw.pg_upsert, "row"),
            "limit".into(),
            "",
        ),
    ]
}

/// The engine's figures under load.
fn engine_rows(e: &EngineFigures, raw: &RawLimits) -> Vec<Row> {
    let mut rows = Vec::new();
    let [v, r] = with_ratio(&e.nats_commands, "cmd", &raw.occ_append, "(a)");
    rows.push(row("commands over NATS", v, r, ">= 40% of (a)"));
    rows.push(row(
        "  NATS command latency",
        lat(&e.nats_latency),
        String::new(),
        "",
    ));
    let [v, r] = with_ratio(&e.http_commands, "cmd", &raw.occ_append, "(a)");
    rows.push(row("commands over HTTP", v, r, ">= 30% of (a)"));
    rows.push(row(
        "  HTTP command latency",
        lat(&e.http_latency),
        String::new(),
        "",
    ));
    let [v, r] = with_ratio(&e.commands, "cmd", &raw.occ_append, "(a)");
    rows.push(row("commands, both edges", v, r, ""));
    let [v, r] = with_ratio(&e.events, "event", &raw.occ_append, "(a)");
    rows.push(row("events recorded", v, r, ""));
    rows.push(row(
        "command errors / supervisor commits",
        format!("{} / {}", e.command_errors, e.supervisor_commits),
        String::new(),
        "",
    ));
    rows.push(row(
        "projection lag under load",
        lat(&e.projection_lag),
        String::new(),
        "p99 < 1 s",
    ));
    let [v, r] = with_ratio(&e.rebuild, "event", &raw.pg_upsert, "(c)");
    rows.push(row("rebuild", v, r, ">= 60% of (c)"));
    if let Some(rebuild) = &e.rebuild {
        let ratio = format!("{} of (b)", pct(rebuild.ratio_to(&raw.replay)));
        rows.push(row("  rebuild vs replay", String::new(), ratio, ""));
    }
    let mean = e
        .history_events_mean
        .map(|m| format!(", {m:.1} events each"))
        .unwrap_or_default();
    let history = format!("{}{mean}", lat(&e.history));
    rows.push(row(
        "history of a request",
        history,
        String::new(),
        "p99 < 5 ms",
    ));
    rows.push(row(
        "dashboard query",
        lat(&e.dashboard),
        String::new(),
        "p99 < 50 ms",
    ));
    let rss = e
        .peak_rss_mib
        .map(|m| format!("{m:.0} MiB"))
        .unwrap_or_else(|| "not measured".into());
    rows.push(row(
        "peak RSS of bianmin serve",
        rss,
        String::new(),
        "< 512 MiB",
    ));
    let cpu: Vec<String> = e
        .load_cpu
        .iter()
        .map(|(name, s)| format!("{name} {:.2}", s.cores))
        .collect();
    rows.push(row(
        "cores busy during load",
        cpu.join(", "),
        String::new(),
        "",
    ));
    rows
}

/// The import of a generated history.
fn import_rows(i: &ImportFigures, raw: &RawLimits) -> Vec<Row> {
    let mut rows = vec![
        row(
            format!("import into JetStream ({} rows)", i.rows),
            rate(&i.jetstream_rows, "row"),
            String::new(),
            "",
        ),
        row(
            "  import commits",
            rate(&i.jetstream_commits, "commit"),
            format!(
                "{} of (a)",
                pct(i.jetstream_commits.ratio_to(&raw.occ_append))
            ),
            "",
        ),
        row(
            "  import re-run (all rows there)",
            rate(&i.rerun_rows, "row"),
            String::new(),
            "",
        ),
    ];
    if let (Some(r), Some(c)) = (&i.sqlite_rows, &i.sqlite_commits) {
        let value = format!("{}, {}", rate(r, "row"), rate(c, "commit"));
        rows.push(row("import into embedded SQLite", value, String::new(), ""));
    }
    if i.rejected > 0 {
        rows.push(row(
            "  import rows rejected",
            i.rejected.to_string(),
            String::new(),
            "0",
        ));
    }
    rows
}

/// The rows as a Markdown table, each column as wide as its widest cell.
fn grid(rows: &[Row]) -> String {
    let header = row("figure", "value".into(), "ratio".into(), "target");
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(rows.iter()) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: &Row| {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell}{}", " ".repeat(w - cell.chars().count())))
            .collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out = line(&header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// The targets' verdicts and the run's notes.
fn targets(report: &Report) -> String {
    let mut out = String::from("\nTargets:\n");
    for t in &report.targets {
        let verdict = match t.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        let measured = t
            .measured
            .map(|m| format!("{m:.3}"))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "  {:<40} target {:<8} measured {:<10} {verdict}\n",
            t.metric, t.target, measured
        ));
    }
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}
