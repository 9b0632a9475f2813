//! `bianmin report ...`: publish, replay, resend, list and show rate reports. Human-readable
//! output by default, JSON with `--json`. Exit code 1 when a replay differs from what was sent,
//! 2 when the report does not exist, 3 on bad input.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use engine_core::directory::Directory;
use schemas::event::ReportLevel;
use schemas::{Actor, Role, Timestamp};
use uuid::Uuid;

use super::ReportError;
use super::compute::{ReportPeriod, ReportSpec};
use super::link::{self, LinkConfig};
use super::store::{self, PublishOutcome};
use crate::cli_support::{folding, parse_time};
use engine_log::EventLog;

/// `bianmin report ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum ReportCommand {
    /// Compute a unit's report for a period from the whole log and publish it: revision 1 the
    /// first time; afterwards a new revision (with --reason) only when a figure changed, else
    /// nothing. Recorded in the log and, when NATS is configured, sent to
    /// `<prefix>.reports.<level>.<unit>`.
    Publish(PublishArgs),
    /// Recompute every revision of a report from the log up to its recorded position and prove
    /// it byte-identical to what was sent; list what later events would change.
    Replay {
        /// The report id.
        report: Uuid,
        /// Only this revision.
        #[arg(long)]
        revision: Option<u32>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Re-publish past revisions and feedback recorded since a time, in log order, with their
    /// original message ids (for a higher-level system that lost them). Needs NATS.
    Resend {
        /// Recorded at or after (RFC 3339, or a day `YYYY-MM-DD`, Asia/Shanghai).
        #[arg(long, value_parser = parse_time)]
        since: Timestamp,
        /// Only reports of this level: street, district or city.
        #[arg(long, value_parser = parse_level)]
        level: Option<ReportLevel>,
    },
    /// List published reports with their revisions and feedback.
    List {
        /// Only this level.
        #[arg(long, value_parser = parse_level)]
        level: Option<ReportLevel>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// One report: every revision with its figures, changes and reason, and its feedback (JSON).
    Show {
        /// The report id.
        report: Uuid,
    },
}

/// Arguments of `bianmin report publish`.
#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// Level of the reporting unit: street, district or city.
    #[arg(long, value_parser = parse_level)]
    pub level: ReportLevel,
    /// The unit's code (a street of the directory, the directory's district, or a city code).
    #[arg(long)]
    pub unit: String,
    /// The period: a month `2026-10`, an ISO week `2026-W43`, or days `2026-10-01..2026-10-15`.
    #[arg(long)]
    pub period: String,
    /// Why a new revision is published (required for every revision after the first).
    #[arg(long)]
    pub reason: Option<String>,
    /// Who publishes (recorded with the revision).
    #[arg(long, default_value = "report-cli")]
    pub by: String,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

fn parse_level(s: &str) -> Result<ReportLevel, String> {
    ReportLevel::parse(s).ok_or_else(|| format!("{s:?}: expected street, district or city"))
}

/// What the subcommands run against.
#[derive(Debug, Clone)]
pub struct ReportContext {
    /// The event log.
    pub log: EventLog,
    /// NATS, when configured.
    pub nats: Option<async_nats::Client>,
    /// Subjects and stream.
    pub link: LinkConfig,
    /// The directory units are checked against.
    pub directory: Directory,
    /// Now (the publication instant).
    pub now: Timestamp,
}

/// Runs one subcommand, printing to stdout.
pub async fn run(command: ReportCommand, ctx: &ReportContext) -> Result<ExitCode, ReportError> {
    match execute(command, ctx).await {
        Ok((text, code)) => {
            print!("{text}");
            Ok(code)
        }
        Err(e @ ReportError::NotFound(_)) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
        Err(e @ ReportError::Invalid { .. }) => {
            let body = e.body();
            eprintln!(
                "error: {} ({}{})",
                body.message,
                body.code,
                body.field
                    .map(|f| format!(", field {f}"))
                    .unwrap_or_default()
            );
            Ok(ExitCode::from(3))
        }
        Err(e) => Err(e),
    }
}

/// What became of sending a published revision over NATS (`None`: NATS not configured or
/// nothing published).
fn sent_line(sent: Option<Result<usize, ReportError>>) -> Option<String> {
    match sent? {
        Ok(n) => Some(format!("sent {n} message(s) over NATS")),
        Err(e) => Some(format!(
            "recorded, but not sent ({e}); `bianmin serve` or `bianmin report resend` will send it"
        )),
    }
}

fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).expect("serialisable") + "\n"
}

/// Runs one subcommand and returns its output and exit code.
pub async fn execute(
    command: ReportCommand,
    ctx: &ReportContext,
) -> Result<(String, ExitCode), ReportError> {
    match command {
        ReportCommand::Publish(args) => publish(&args, ctx).await,
        ReportCommand::Replay {
            report,
            revision,
            json: as_json,
        } => replay(report, revision, as_json, ctx).await,
        ReportCommand::Resend { since, level } => resend(since, level, ctx).await,
        ReportCommand::List {
            level,
            json: as_json,
        } => list(level, as_json, ctx).await,
        ReportCommand::Show { report } => {
            let record = store::load(&ctx.log, report)
                .await?
                .ok_or_else(|| ReportError::NotFound(format!("report {report} not found")))?;
            Ok((json(&record), ExitCode::SUCCESS))
        }
    }
}

/// `report publish`: computes and records a revision, sends it upward when NATS is there.
async fn publish(
    args: &PublishArgs,
    ctx: &ReportContext,
) -> Result<(String, ExitCode), ReportError> {
    let mut out = String::new();
    let spec = ReportSpec {
        level: args.level,
        unit: args.unit.clone(),
        period: ReportPeriod::parse(&args.period)?,
    };
    let publisher = Actor {
        id: args.by.clone(),
        role: Role::Supervisor,
        unit: Some(args.unit.clone()),
    };
    let spinner = folding(format!(
        "computing the {} report of {} for {} from the log",
        args.level.as_str(),
        args.unit,
        args.period
    ));
    let outcome = store::publish(
        &ctx.log,
        &ctx.directory,
        &spec,
        ctx.now,
        &publisher,
        args.reason.as_deref(),
        false,
    )
    .await;
    spinner.finish_and_clear();
    let outcome = outcome?;
    let mut sent = None;
    if let (PublishOutcome::Published { revision }, Some(client)) = (&outcome, &ctx.nats) {
        sent = Some(
            link::publish_commit_of(&ctx.log, client, &ctx.link, revision.position)
                .await
                .map(|m| m.len()),
        );
    }
    if args.json {
        out = json(&outcome);
    } else {
        match &outcome {
            PublishOutcome::Published { revision } => {
                let p = &revision.published;
                let _ = writeln!(
                    out,
                    "published report {} revision {} ({} {} {}) at log position {}, sha256 {}",
                    p.report_id,
                    p.revision,
                    p.level.as_str(),
                    p.unit,
                    p.period,
                    p.log_position,
                    p.figures_sha256
                );
                let _ = writeln!(out, "message id {}", p.message_id);
                for c in &p.changes {
                    let _ = writeln!(out, "  changed {}: {} -> {}", c.path, c.from, c.to);
                }
            }
            PublishOutcome::Unchanged {
                report_id,
                revision,
                log_position,
            } => {
                let _ = writeln!(
                    out,
                    "report {report_id}: figures at log position {log_position} equal revision {revision}; nothing published"
                );
            }
        }
    }
    if let Some(line) = sent_line(sent) {
        // With `--json` stdout is the one JSON document; the delivery note goes to
        // stderr.
        if args.json {
            eprintln!("{line}");
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    Ok((out, ExitCode::SUCCESS))
}

/// `report replay`: recomputes each revision from the log and compares it with what was sent.
async fn replay(
    report: Uuid,
    revision: Option<u32>,
    as_json: bool,
    ctx: &ReportContext,
) -> Result<(String, ExitCode), ReportError> {
    let mut out = String::new();
    let spinner = folding(format!("recomputing report {report} from the log"));
    let r = store::replay(&ctx.log, report, revision).await;
    spinner.finish_and_clear();
    let r = r?;
    let code = if r.identical() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if as_json {
        return Ok((json(&r), code));
    }
    let _ = writeln!(
        out,
        "report {} ({} {} {}), log head {}",
        r.report_id,
        r.level.as_str(),
        r.unit,
        r.period,
        r.log_head
    );
    for rev in &r.revisions {
        let _ = writeln!(
            out,
            "revision {} at position {}: {} (recorded {}, recomputed {})",
            rev.revision,
            rev.log_position,
            if rev.identical {
                "IDENTICAL"
            } else {
                "DIFFERS"
            },
            rev.recorded_sha256,
            rev.recomputed_sha256
        );
        for c in &rev.differences {
            let _ = writeln!(
                out,
                "  differs {}: sent {} recomputed {}",
                c.path, c.from, c.to
            );
        }
        if rev.later_changes.is_empty() {
            let _ = writeln!(out, "  later events change nothing");
        }
        for c in &rev.later_changes {
            let _ = writeln!(
                out,
                "  later events change {}: {} -> {}",
                c.path, c.from, c.to
            );
        }
    }
    Ok((out, code))
}

/// `report resend`: re-publishes revisions and feedback recorded since a time.
async fn resend(
    since: Timestamp,
    level: Option<ReportLevel>,
    ctx: &ReportContext,
) -> Result<(String, ExitCode), ReportError> {
    let mut out = String::new();
    let client = ctx.nats.as_ref().ok_or_else(|| {
        ReportError::invalid("nats.url", "resend needs NATS (--nats-url or nats.url)")
    })?;
    let sent = link::resend(&ctx.log, client, &ctx.link, since, level).await?;
    let _ = writeln!(
        out,
        "re-published {} report message(s) since {}",
        sent.len(),
        since.to_rfc3339()
    );
    for m in &sent {
        let _ = writeln!(out, "  {} {}", m.message_id(), m.subject(&ctx.link));
    }
    Ok((out, ExitCode::SUCCESS))
}

/// `report list`: the published reports with their revisions and feedback.
async fn list(
    level: Option<ReportLevel>,
    as_json: bool,
    ctx: &ReportContext,
) -> Result<(String, ExitCode), ReportError> {
    let mut out = String::new();
    let reports = store::list(&ctx.log, level).await?;
    if as_json {
        let lines: Vec<super::http::ReportLine> = reports.into_iter().map(Into::into).collect();
        return Ok((json(&lines), ExitCode::SUCCESS));
    }
    for r in &reports {
        let _ = writeln!(
            out,
            "{} {:<8} {:<10} {:<24} revisions {} feedback {} status {}",
            r.report_id,
            r.level.as_str(),
            r.unit,
            r.period,
            r.revisions.len(),
            r.feedback.len(),
            r.status().map_or("-", |k| k.as_str())
        );
    }
    Ok((out, ExitCode::SUCCESS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ReportCommand,
    }

    fn parse(args: &[&str]) -> Result<ReportCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("report").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    #[test]
    fn the_command_line_parses_and_refuses_unknown_levels_and_times() {
        match parse(&[
            "publish", "--level", "street", "--unit", "jd-01", "--period", "2026-10", "--reason",
            "更正",
        ])
        .unwrap()
        {
            ReportCommand::Publish(a) => {
                assert_eq!(a.level, ReportLevel::Street);
                assert_eq!(a.reason.as_deref(), Some("更正"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["resend", "--since", "2026-10-01", "--level", "district"]).unwrap(),
            ReportCommand::Resend {
                level: Some(ReportLevel::District),
                ..
            }
        ));
        assert!(
            parse(&[
                "publish", "--level", "county", "--unit", "x", "--period", "2026-10"
            ])
            .is_err()
        );
        assert!(parse(&["resend", "--since", "last week"]).is_err());
        assert!(parse(&["replay", "not-a-uuid"]).is_err());
    }
}
