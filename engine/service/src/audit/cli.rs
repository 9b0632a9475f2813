//! The auditors' subcommands of `bianmin`: `verify`, `history`, `replay`, `digest`,
//! `reference` and `upward replay`. Human-readable output by default, JSON with `--json`;
//! progress bars (on a terminal only) for whole-log work. Exit code 1 when a check fails
//! (a broken chain, a digest that no longer matches), 2 when the request does not exist.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli_support::{bar, parse_period, parse_time};
use clap::Subcommand;
use projections::query::{Dim, Period};
use schemas::{Timestamp, UpwardLevel};
use serde::Serialize;
use uuid::Uuid;

use super::replay::{ReplaySpec, parse_filter};
use super::{AuditError, as_of, digest, reference, replay, timeline, verify};
use crate::upward::{self, UpwardConfig};
use engine_log::EventLog;

/// The auditors' subcommands (flattened into the `bianmin` command line).
#[derive(Debug, Clone, Subcommand)]
pub enum AuditCommand {
    /// Log records every reader skips (undecodable, wrongly hashed or wrongly signed):
    /// list them, or show one.
    #[command(subcommand)]
    Quarantine(super::quarantine::QuarantineCommand),
    /// Recompute the hash chains and report the first broken link of each.
    Verify {
        /// One request.
        #[arg(long, conflicts_with = "all")]
        request: Option<Uuid>,
        /// Every chain in the log (the default when no request is given).
        #[arg(long)]
        all: bool,
        /// Instead of the chains: check every digest anchored outside the data directory
        /// (`digest.anchor_file`, or `--anchor-file`) against the log.
        #[arg(long, conflicts_with_all = ["request", "all"])]
        digests: bool,
        /// The anchor file to check (default: `digest.anchor_file` of the configuration).
        #[arg(long, requires = "digests")]
        anchor_file: Option<std::path::PathBuf>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// A request's history: every event with who, when, why, and the state after it.
    History {
        /// The request.
        request: Uuid,
        /// Only what was recorded at or before this time (RFC 3339, or a day `YYYY-MM-DD`).
        #[arg(long, value_parser = parse_time)]
        as_of: Option<Timestamp>,
        /// Only up to this version.
        #[arg(long)]
        version: Option<u64>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Replay a slice of the log through the projections into a scratch database and print
    /// the rates as they stood at the end of the slice.
    Replay {
        /// Start (inclusive): RFC 3339, or a day `YYYY-MM-DD` (midnight, Asia/Shanghai).
        #[arg(long, value_parser = parse_time)]
        from: Timestamp,
        /// End (exclusive), same forms.
        #[arg(long, value_parser = parse_time)]
        to: Timestamp,
        /// Filters: `street=..,community=..,grid=..,department=..,category=..,channel=..`.
        #[arg(long, default_value = "")]
        filter: String,
        /// Period grain: day, week or month.
        #[arg(long, default_value = "month", value_parser = parse_period)]
        period: Period,
        /// Group by these dimensions too (comma-separated).
        #[arg(long, default_value = "")]
        group_by: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Recompute the recorded daily digests from the log (or show one day's).
    Digest {
        /// Only this day (`YYYY-MM-DD`, Asia/Shanghai).
        #[arg(long)]
        day: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// The recorded reference-data changes (catalogue, policy, calendars, directory, grants):
    /// who recorded each and why, and the diff from the content recorded before it.
    Reference {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// The report-upward link.
    #[command(subcommand)]
    Upward(UpwardCommand),
}

/// `bianmin upward ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum UpwardCommand {
    /// Re-publish the upward reports and their recorded feedback since a time, in original
    /// order with their original message ids.
    Replay {
        /// Recorded at or after (RFC 3339, or a day `YYYY-MM-DD`).
        #[arg(long, value_parser = parse_time)]
        since: Timestamp,
        /// Only this level: street, district or city.
        #[arg(long, value_parser = parse_level)]
        level: Option<UpwardLevel>,
    },
}

/// What the subcommands run against.
#[derive(Debug, Clone)]
pub struct CliContext {
    /// The event log.
    pub log: EventLog,
    /// NATS, when configured (needed by `upward replay`).
    pub nats: Option<async_nats::Client>,
    /// The projections database URL; a `postgres://` URL makes `replay` use a scratch schema
    /// there, anything else a scratch SQLite file.
    pub projections_url: Option<String>,
    /// The upward link's subjects and stream.
    pub upward: UpwardConfig,
    /// Where recorded digests are anchored outside the data directory, if anywhere.
    pub anchor_file: Option<std::path::PathBuf>,
}

fn parse_level(s: &str) -> Result<UpwardLevel, String> {
    [
        UpwardLevel::Street,
        UpwardLevel::District,
        UpwardLevel::City,
    ]
    .into_iter()
    .find(|l| l.as_str() == s)
    .ok_or_else(|| format!("{s:?}: expected street, district or city"))
}

pub(crate) fn parse_dims(s: &str) -> Result<Vec<Dim>, AuditError> {
    s.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            Dim::parse(d).ok_or_else(|| AuditError::Invalid(format!("unknown dimension {d:?}")))
        })
        .collect()
}

fn print_json<T: Serialize>(value: &T) -> Result<(), AuditError> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(|e| AuditError::Io(e.into()))?;
    writeln!(out)?;
    Ok(())
}

fn print(text: &str) -> Result<(), AuditError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    Ok(())
}

fn failed_if(bad: bool) -> ExitCode {
    if bad {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs one subcommand.
pub async fn run(cmd: AuditCommand, ctx: &CliContext) -> Result<ExitCode, AuditError> {
    match cmd {
        AuditCommand::Verify {
            digests: true,
            anchor_file,
            json,
            ..
        } => verify_anchors(ctx, anchor_file, json).await,
        AuditCommand::Quarantine(command) => {
            let (text, any) = super::quarantine::run(&command, &ctx.log).await?;
            print(&text)?;
            Ok(failed_if(any))
        }
        AuditCommand::Verify {
            request: Some(id),
            json,
            ..
        } => {
            let report = verify::verify_request(&ctx.log, id).await?;
            output(json, &report, describe_chain)?;
            Ok(failed_if(!report.ok()))
        }
        AuditCommand::Verify {
            request: None,
            json,
            ..
        } => {
            let progress = bar("verifying chains");
            let report = verify::verify_all(&ctx.log, Some(&progress)).await?;
            output(json, &report, describe_all_chains)?;
            Ok(failed_if(!report.ok()))
        }
        AuditCommand::History {
            request,
            as_of: at,
            version,
            json,
        } => {
            let Some(steps) = as_of::history(&ctx.log, request).await? else {
                eprintln!("request {request} not found");
                return Ok(ExitCode::from(2));
            };
            let bounds = timeline::AsOf { as_of: at, version };
            let steps: Vec<_> = steps
                .into_iter()
                .filter(|s| bounds.includes(&s.envelope))
                .collect();
            output(json, &steps, |s| timeline::render(s))?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Replay {
            from,
            to,
            filter,
            period,
            group_by,
            json,
        } => {
            let spec = ReplaySpec {
                from,
                to,
                filter: parse_filter(&filter)?,
                period,
                group_by: parse_dims(&group_by)?,
            };
            let pg = ctx
                .projections_url
                .as_deref()
                .filter(|u| u.starts_with("postgres"));
            let progress = bar("replaying");
            let report = replay::replay(&ctx.log, &spec, pg, Some(&progress)).await?;
            output(json, &report, replay::render)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Digest { day, json } => {
            let mut checks = digest::verify_digests(&ctx.log).await?;
            if let Some(day) = day {
                digest::parse_day(&day)?;
                checks.retain(|c| c.recorded.day == day);
            }
            output(json, &checks, |c| describe_digests(c))?;
            Ok(failed_if(checks.iter().any(|c| !c.ok())))
        }
        AuditCommand::Reference { json } => {
            let records = reference::history(&ctx.log).await?;
            output(json, &records, |r| describe_references(r))?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Upward(UpwardCommand::Replay { since, level }) => {
            upward_replay(ctx, since, level).await
        }
    }
}

/// Prints `value` as JSON, or as the text `describe` makes of it.
fn output<T: Serialize>(
    json: bool,
    value: &T,
    describe: impl FnOnce(&T) -> String,
) -> Result<(), AuditError> {
    if json {
        print_json(value)
    } else {
        print(&describe(value))
    }
}

/// `verify --digests`: the recorded daily digests against the external anchor file.
async fn verify_anchors(
    ctx: &CliContext,
    anchor_file: Option<PathBuf>,
    json: bool,
) -> Result<ExitCode, AuditError> {
    let Some(path) = anchor_file.or_else(|| ctx.anchor_file.clone()) else {
        return Err(AuditError::Invalid(
            "no anchor file: set digest.anchor_file or pass --anchor-file".into(),
        ));
    };
    let checks = super::anchor::check(&ctx.log, &path).await?;
    output(json, &checks, |c| describe_anchors(c, &path))?;
    Ok(failed_if(checks.iter().any(|c| c.problem.is_some())))
}

/// `upward replay`: re-publishes the upward reports and feedback recorded since `since`.
async fn upward_replay(
    ctx: &CliContext,
    since: Timestamp,
    level: Option<UpwardLevel>,
) -> Result<ExitCode, AuditError> {
    let client = ctx
        .nats
        .as_ref()
        .ok_or_else(|| AuditError::Invalid("upward replay needs NATS configured".into()))?;
    let published = upward::replay(&ctx.log, client, &ctx.upward, since, level)
        .await
        .map_err(|e| AuditError::Nats(e.to_string()))?;
    print(&format!(
        "re-published {} upward messages since {}\n",
        published.len(),
        since.to_rfc3339()
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn describe_all_chains(report: &verify::LogReport) -> String {
    let mut text = format!(
        "{} chains, {} records, {} events verified\n",
        report.requests, report.commits, report.events_verified
    );
    text.push_str(&describe_signatures(report));
    for broken in &report.broken {
        text.push_str(&describe_break(broken));
    }
    if !report.complete() {
        text.push_str(&format!(
            "incomplete: the log holds {} records, {} were read\n",
            report.log_head, report.commits
        ));
    }
    text.push_str(if report.ok() {
        "OK: every chain holds\n"
    } else {
        "FAILED\n"
    });
    text
}

fn describe_digests(checks: &[digest::DigestCheck]) -> String {
    let mut text = String::new();
    for c in checks {
        text.push_str(&format!(
            "{}  {:>6} events  through #{:<8} root {}  {}\n",
            c.recorded.day,
            c.recorded.n_events,
            c.recorded.last_position,
            c.recorded.merkle_root,
            if c.ok() {
                "ok".to_string()
            } else {
                format!("MISMATCH (log gives {})", c.recomputed.merkle_root)
            }
        ));
    }
    if checks.is_empty() {
        text.push_str("no digest recorded\n");
    }
    text
}

/// Each reference-data change: when, what, version, hash, source, who; why; the diff.
fn describe_references(records: &[reference::ReferenceRecord]) -> String {
    let mut text = String::new();
    for r in records {
        text.push_str(&format!(
            "{}  {:<15} {:<28} sha256 {}  from {}  by {} ({})\n",
            r.recorded_at.to_rfc3339(),
            serde_json::to_value(r.recorded.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            r.recorded.version,
            r.recorded.sha256,
            r.recorded.source,
            r.actor.id,
            r.actor.role.as_str(),
        ));
        if let Some(reason) = &r.recorded.reason {
            text.push_str(&format!("    why: {reason}\n"));
        }
        for line in r.recorded.diff.iter().flat_map(|d| d.lines()) {
            text.push_str(&format!("    {line}\n"));
        }
    }
    text
}

fn describe_break(b: &verify::BrokenLink) -> String {
    format!(
        "BROKEN request {} at version {} (log position {}, event {}): {}\n",
        b.request_id,
        b.version.map_or("-".into(), |v| v.to_string()),
        b.position,
        b.event_id.map_or("-".into(), |e| e.to_string()),
        b.what
    )
}

fn describe_chain(report: &verify::ChainReport) -> String {
    match &report.broken {
        None => format!(
            "OK: request {} — {} events in {} records chain from genesis to {}\n",
            report.request_id,
            report.events_verified,
            report.commits,
            report.head.as_deref().unwrap_or("(no events)")
        ),
        Some(b) => describe_break(b),
    }
}

/// One line per anchored day, then the verdict.
fn describe_anchors(checks: &[super::anchor::AnchorCheck], path: &std::path::Path) -> String {
    let mut text = format!("{} digests anchored in {}\n", checks.len(), path.display());
    for check in checks {
        match &check.problem {
            None => text.push_str(&format!("{}\t{}\tholds\n", check.day, check.anchored_root)),
            Some(problem) => text.push_str(&format!(
                "{}\t{}\tBROKEN: {problem}\n",
                check.day, check.anchored_root
            )),
        }
    }
    text.push_str(match checks.iter().all(|c| c.problem.is_none()) {
        true => "OK: the log matches every anchored digest\n",
        false => "FAILED\n",
    });
    text
}

/// One line on the log's signatures: how many records are signed by a trusted key, and how
/// many unsigned records precede the first signed one.
fn describe_signatures(report: &verify::LogReport) -> String {
    match report.signing_began_at {
        Some(began) => format!(
            "{} records signed by a trusted key; {} unsigned, before signing began at position {began}\n",
            report.signed, report.unsigned_before_signing
        ),
        None => format!(
            "no record is signed: {} unsigned records, written before signing began\n",
            report.unsigned_before_signing
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: AuditCommand,
    }

    #[test]
    fn the_subcommands_parse() {
        let cli = Cli::try_parse_from([
            "bianmin",
            "replay",
            "--from",
            "2026-03-01",
            "--to",
            "2026-04-01",
            "--filter",
            "street=jd-01",
        ])
        .unwrap();
        let AuditCommand::Replay {
            from,
            to,
            filter,
            period,
            ..
        } = cli.cmd
        else {
            panic!("replay")
        };
        assert_eq!(from, "2026-02-28T16:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(to, "2026-03-31T16:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!((filter.as_str(), period), ("street=jd-01", Period::Month));

        let cli = Cli::try_parse_from([
            "bianmin",
            "upward",
            "replay",
            "--since",
            "2026-03-01T00:00:00Z",
            "--level",
            "district",
        ])
        .unwrap();
        assert!(matches!(
            cli.cmd,
            AuditCommand::Upward(UpwardCommand::Replay {
                level: Some(UpwardLevel::District),
                ..
            })
        ));

        assert!(
            Cli::try_parse_from([
                "bianmin",
                "verify",
                "--all",
                "--request",
                &Uuid::nil().to_string()
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["bianmin", "history", "not-a-uuid"]).is_err());
        assert!(
            Cli::try_parse_from(["bianmin", "upward", "replay", "--since", "yesterday"]).is_err()
        );
    }
}
