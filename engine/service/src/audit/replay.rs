//! Replay of a log slice through the projections into a scratch database, so an auditor can
//! check a published figure: `bianmin replay --from <time> --to <time> [--filter ...]`.
//!
//! The slice is every request received in `[from, to)` with all of its events that occurred
//! before `to` (events at or after `to` are left out, as are requests received earlier, whose
//! rates belong to earlier periods). The commits are applied, in log order, to every projector
//! of a fresh database — an SQLite file in the temp directory, or a scratch schema when given a
//! PostgreSQL URL, dropped afterwards — and the rates are queried with deadlines judged at `to`:
//! exactly what the live projection showed at that instant for those periods.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::ProgressBar;
use projections::Projections;
use projections::query::{Dim, Filter, Period, RateRow, StatsQuery};
use schemas::{Event, LoggedCommit, Timestamp};
use serde::Serialize;

use super::AuditError;
use engine_log::EventLog;

/// Commits read from the log per batch.
const READ_BATCH_LEN: usize = 512;

/// Scratch databases made by this process (part of their unique names).
static SCRATCH_SEQ: AtomicU64 = AtomicU64::new(0);

/// What to replay and how to report it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplaySpec {
    /// Start of the slice (inclusive).
    pub from: Timestamp,
    /// End of the slice (exclusive); rates are judged at this instant.
    pub to: Timestamp,
    /// Equality filters (`street=jd-01,department=urban`).
    pub filter: Vec<(Dim, String)>,
    /// Period grain of the rates.
    pub period: Period,
    /// Dimensions to group by besides the period.
    pub group_by: Vec<Dim>,
}

/// The outcome of a replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    /// Start of the slice.
    pub from: Timestamp,
    /// End of the slice.
    pub to: Timestamp,
    /// Commits applied.
    pub commits_applied: u64,
    /// Requests in the slice.
    pub requests: u64,
    /// The rates at `to`, per period (and group).
    pub rates: Vec<RateRow>,
}

/// Parses `street=jd-01,community=sq-02,department=urban`.
pub fn parse_filter(spec: &str) -> Result<Vec<(Dim, String)>, AuditError> {
    spec.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').ok_or_else(|| {
                AuditError::Invalid(format!("filter {part:?}: expected name=value"))
            })?;
            let dim = Dim::parse(name.trim()).ok_or_else(|| {
                AuditError::Invalid(format!("filter {part:?}: unknown dimension {name:?}"))
            })?;
            Ok((dim, value.trim().to_string()))
        })
        .collect()
}

/// The period key of an instant at a grain (Asia/Shanghai), as the projections cut it.
pub fn period_key(at: Timestamp, period: Period) -> String {
    let (day, week, month) = projections::fold::periods(at);
    match period {
        Period::Day => day,
        Period::Week => week,
        Period::Month => month,
    }
}

/// The rates query for a slice, against any projections database.
pub fn stats_query(spec: &ReplaySpec) -> StatsQuery {
    let last_instant = spec.to - chrono::Duration::nanoseconds(1);
    StatsQuery {
        period: spec.period,
        group_by: spec.group_by.clone(),
        filter: Filter {
            dims: spec.filter.clone(),
            from: Some(period_key(spec.from, spec.period)),
            to: Some(period_key(last_instant.max(spec.from), spec.period)),
            dispatched_only: false,
        },
        now: spec.to,
    }
}

/// Applies the slice of `log` to `target` (a fresh projections database), reporting progress
/// in log positions. Returns (commits applied, requests).
pub async fn apply_slice(
    log: &EventLog,
    target: &Projections,
    from: Timestamp,
    to: Timestamp,
    progress: Option<&ProgressBar>,
) -> Result<(u64, u64), AuditError> {
    let mut targets = [SliceTarget {
        projections: target,
        rewrite: None,
    }];
    apply_slice_to(log, &mut targets, from, to, progress).await
}

/// A database a slice is folded into and, optionally, how its copy of each commit of the
/// slice is rewritten first (a what-if re-stamps deadlines under another profile).
pub struct SliceTarget<'a> {
    /// A fresh projections database.
    pub projections: &'a Projections,
    /// Applied to every commit of the slice, in log order, before this target folds it.
    pub rewrite: Option<&'a mut (dyn FnMut(&mut LoggedCommit) + Send)>,
}

/// Reads the slice of `log` once and folds it into every target, each through every
/// projector. Returns (commits applied, requests).
pub async fn apply_slice_to(
    log: &EventLog,
    targets: &mut [SliceTarget<'_>],
    from: Timestamp,
    to: Timestamp,
    progress: Option<&ProgressBar>,
) -> Result<(u64, u64), AuditError> {
    let head = log.last_position().await?;
    if let Some(bar) = progress {
        bar.set_length(head);
    }
    let mut in_slice = HashSet::new();
    let mut applied = 0u64;
    let mut next = 1u64;
    while next <= head {
        let batch = log.read_from(next, READ_BATCH_LEN).await?;
        let Some(last) = batch.last().map(|c| c.position) else {
            break;
        };
        let chosen: Vec<LoggedCommit> = batch
            .into_iter()
            .filter(|c| c.position <= head)
            .filter_map(|c| slice_commit(c, from, to, &mut in_slice))
            .collect();
        if !chosen.is_empty() {
            for target in targets.iter_mut() {
                fold_into(target, &chosen).await?;
            }
            applied += chosen.len() as u64;
        }
        if let Some(bar) = progress {
            bar.set_position(last.min(head));
        }
        next = last + 1;
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    Ok((applied, in_slice.len() as u64))
}

/// Folds commits into one target through every projector, rewritten first when it says so.
async fn fold_into(
    target: &mut SliceTarget<'_>,
    chosen: &[LoggedCommit],
) -> Result<(), AuditError> {
    let rewritten;
    let commits = match target.rewrite.as_mut() {
        Some(rewrite) => {
            let mut copy = chosen.to_vec();
            for commit in &mut copy {
                rewrite(commit);
            }
            rewritten = copy;
            &rewritten[..]
        }
        None => chosen,
    };
    for projector in Projections::projector_names() {
        target
            .projections
            .apply(projector, commits)
            .await
            .map_err(|e| AuditError::Projections(e.to_string()))?;
    }
    Ok(())
}

/// The part of a commit inside the slice: events that occurred before `to`, of requests
/// received in `[from, to)`.
fn slice_commit(
    mut logged: LoggedCommit,
    from: Timestamp,
    to: Timestamp,
    in_slice: &mut HashSet<schemas::RequestId>,
) -> Option<LoggedCommit> {
    let id = logged.commit.request_id;
    if !in_slice.contains(&id) {
        let first = logged.commit.events.first()?;
        let received_here = first.version == 1
            && matches!(first.event, Event::RequestReceived(_))
            && first.occurred_at >= from
            && first.occurred_at < to;
        if !received_here {
            return None;
        }
        in_slice.insert(id);
    }
    logged.commit.events.retain(|e| e.occurred_at < to);
    (!logged.commit.events.is_empty()).then_some(logged)
}

/// A scratch projections database, removed by [`Scratch::close`].
pub struct Scratch {
    /// The database handle.
    pub projections: Projections,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    Schema { admin: sqlx::PgPool, schema: String },
}

impl Scratch {
    /// A fresh scratch database: a scratch schema on `pg_url` when given, else an SQLite file
    /// in the temp directory.
    pub async fn create(pg_url: Option<&str>) -> Result<Scratch, AuditError> {
        let seq = SCRATCH_SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("bianmin_replay_{}_{seq}", std::process::id());
        let projections_err =
            |e: projections::ProjectionError| AuditError::Projections(e.to_string());
        match pg_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let admin = sqlx::PgPool::connect(url)
                    .await
                    .map_err(|e| AuditError::Projections(e.to_string()))?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
                )))
                .execute(&admin)
                .await
                .map_err(|e| AuditError::Projections(e.to_string()))?;
                let sep = if url.contains('?') { '&' } else { '?' };
                let scoped = format!("{url}{sep}options=-c%20search_path%3D{name}");
                let projections = Projections::connect(&scoped)
                    .await
                    .map_err(projections_err)?;
                Ok(Scratch {
                    projections,
                    cleanup: Cleanup::Schema {
                        admin,
                        schema: name,
                    },
                })
            }
            Some(other) => Err(AuditError::Invalid(format!(
                "scratch database must be a postgres:// URL (or none for SQLite), not {other:?}"
            ))),
            None => {
                let path = std::env::temp_dir().join(format!("{name}.sqlite"));
                remove_sqlite(&path);
                let url = format!("sqlite://{}?mode=rwc", path.display());
                let projections = Projections::connect(&url).await.map_err(projections_err)?;
                Ok(Scratch {
                    projections,
                    cleanup: Cleanup::File(path),
                })
            }
        }
    }

    /// Drops the scratch database.
    pub async fn close(self) {
        match self.cleanup {
            Cleanup::File(path) => {
                drop(self.projections);
                remove_sqlite(&path);
            }
            Cleanup::Schema { admin, schema } => {
                drop(self.projections);
                let dropped = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )))
                .execute(&admin)
                .await;
                if let Err(error) = dropped {
                    tracing::warn!(%error, %schema, "scratch schema not dropped");
                }
                admin.close().await;
            }
        }
    }
}

/// Removes an SQLite file and its WAL companions, ignoring absence.
fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
    }
}

/// Replays the slice into a scratch database and returns the rates at its end.
pub async fn replay(
    log: &EventLog,
    spec: &ReplaySpec,
    pg_url: Option<&str>,
    progress: Option<&ProgressBar>,
) -> Result<ReplayReport, AuditError> {
    if spec.to <= spec.from {
        return Err(AuditError::Invalid("--to must be after --from".into()));
    }
    let scratch = Scratch::create(pg_url).await?;
    let outcome = async {
        let (commits_applied, requests) =
            apply_slice(log, &scratch.projections, spec.from, spec.to, progress).await?;
        let rates = scratch
            .projections
            .stats(&stats_query(spec))
            .await
            .map_err(|e| AuditError::Projections(e.to_string()))?;
        Ok(ReplayReport {
            from: spec.from,
            to: spec.to,
            commits_applied,
            requests,
            rates,
        })
    }
    .await;
    scratch.close().await;
    outcome
}

/// Formats a rate as a percentage.
fn pct(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_string(), |r| format!("{:.2}%", r * 100.0))
}

/// Renders the report as a table.
pub fn render(report: &ReplayReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "slice [{}, {}): {} requests, {} commits replayed; rates judged at {}",
        report.from.to_rfc3339(),
        report.to.to_rfc3339(),
        report.requests,
        report.commits_applied,
        report.to.to_rfc3339()
    );
    let _ = writeln!(
        out,
        "{:<10} {:<24} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "period",
        "group",
        "received",
        "response",
        "on-time",
        "resolved",
        "satisfied",
        "reopen",
        "returned",
        "p90 h"
    );
    for row in &report.rates {
        let group = row
            .dims
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("-")))
            .collect::<Vec<_>>()
            .join(",");
        let r = &row.rates;
        let _ = writeln!(
            out,
            "{:<10} {:<24} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            row.period,
            if group.is_empty() {
                "all".to_string()
            } else {
                group
            },
            row.counts.received,
            pct(r.response_rate),
            pct(r.on_time_completion_rate),
            pct(r.resolution_rate),
            pct(r.satisfaction_rate),
            pct(r.reopen_rate),
            pct(r.referral_return_rate),
            r.handling_p90_seconds
                .map_or_else(|| "-".into(), |s| format!("{:.1}", s as f64 / 3600.0)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_refuse_unknown_dimensions() {
        let f = parse_filter("street=jd-01, department=urban").unwrap();
        assert_eq!(
            f,
            vec![
                (Dim::Street, "jd-01".into()),
                (Dim::Department, "urban".into())
            ]
        );
        assert!(parse_filter("planet=mars").is_err());
        assert!(parse_filter("street").is_err());
        assert!(parse_filter("").unwrap().is_empty());
    }

    #[test]
    fn a_month_slice_queries_that_month_only() {
        let spec = ReplaySpec {
            from: "2026-02-28T16:00:00Z".parse().unwrap(),
            to: "2026-03-31T16:00:00Z".parse().unwrap(),
            filter: vec![],
            period: Period::Month,
            group_by: vec![],
        };
        let q = stats_query(&spec);
        assert_eq!(q.filter.from.as_deref(), Some("2026-03"));
        assert_eq!(q.filter.to.as_deref(), Some("2026-03"));
        assert_eq!(q.now, spec.to);
    }
}
