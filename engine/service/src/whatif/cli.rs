//! `bianmin policy whatif --profile <file> --from <date> --to <date>`: the what-if report of
//! a proposed profile file, progress on stderr, a table or (`--json`) the report on stdout.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use projections::query::{Period, Weights};
use schemas::Timestamp;

use super::{WhatIfSpec, render, whatif};
use crate::audit::cli::parse_dims;
use crate::cli_support::{bar, parse_period, parse_time};
use crate::config::Config;
use crate::reports::ReportError;

/// `bianmin policy ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum PolicyCommand {
    /// Fold a period of the log under a proposed profile into a scratch projection and show
    /// every rate and ranking figure next to the recorded one, with the delta. Nothing live
    /// changes. What is re-derived: docs/whatif.md.
    Whatif(WhatifArgs),
    /// Record the reference data the configuration puts in force (catalogue, profile,
    /// calendars, directory, grid polygons, unit channels, role grants) as an operator's
    /// change, with a reason: each changed file's content and a diff from the last recorded
    /// one join the reference-data history (`bianmin reference`). Run it after editing a
    /// file and before restarting, or the engine records the change itself as found.
    Record {
        /// Who makes the change (recorded as the change's actor).
        #[arg(long, value_name = "ID")]
        actor: String,
        /// Why (recorded with the change), e.g. the decision or notice it carries out.
        #[arg(long)]
        reason: String,
    },
}

/// The flags of `bianmin policy whatif`.
#[derive(Debug, Clone, clap::Args)]
pub struct WhatifArgs {
    /// The proposed profile file (TOML, as in `deploy/policy/profiles/`).
    #[arg(long)]
    pub profile: PathBuf,
    /// Start (inclusive): RFC 3339, or a day `YYYY-MM-DD` (midnight, Asia/Shanghai).
    #[arg(long, value_parser = parse_time)]
    pub from: Timestamp,
    /// End (exclusive), same forms; deadlines are judged at this instant.
    #[arg(long, value_parser = parse_time)]
    pub to: Timestamp,
    /// Period grain: day, week or month.
    #[arg(long, default_value = "month", value_parser = parse_period)]
    pub period: Period,
    /// Group the rates by these dimensions too (comma-separated).
    #[arg(long, default_value = "")]
    pub group_by: String,
    /// Proposed composite weights, `response=10,resolution=45,satisfaction=45,bottom_up=0`
    /// (absent keys 0 when any is given); the deployment's when absent.
    #[arg(long, value_parser = parse_weights)]
    pub weights: Option<Weights>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Why a `bianmin policy` command failed.
#[derive(Debug, thiserror::Error)]
pub enum PolicyCliError {
    /// The what-if failed.
    #[error(transparent)]
    WhatIf(#[from] ReportError),
    /// The reference data could not be loaded or recorded.
    #[error("recording the reference data: {0}")]
    Record(#[source] crate::app::AppError),
    /// A required flag is blank.
    #[error("{0} must not be blank")]
    Blank(&'static str),
}

/// Parses `response=10,resolution=45,...` into weights.
pub fn parse_weights(s: &str) -> Result<Weights, String> {
    let text = s.split(',').map(str::trim).collect::<Vec<_>>().join("\n");
    let zero = Weights {
        response: 0.0,
        resolution: 0.0,
        satisfaction: 0.0,
        bottom_up: 0.0,
    };
    let table: toml::Table = toml::from_str(&text).map_err(|e| format!("weights: {e}"))?;
    let mut weights = zero;
    for (key, value) in table {
        let v = value
            .as_float()
            .or_else(|| value.as_integer().map(|i| i as f64))
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("weights: {key} must be a number ≥ 0"))?;
        match key.as_str() {
            "response" => weights.response = v,
            "resolution" => weights.resolution = v,
            "satisfaction" => weights.satisfaction = v,
            "bottom_up" => weights.bottom_up = v,
            other => return Err(format!("weights: unknown weight {other:?}")),
        }
    }
    Ok(weights)
}

impl PolicyCommand {
    /// Runs the command against the log and the reference data `config` names.
    pub async fn run(&self, config: &Config, now: Timestamp) -> Result<ExitCode, PolicyCliError> {
        match self {
            PolicyCommand::Record { actor, reason } => {
                for (value, flag) in [(actor, "--actor"), (reason, "--reason")] {
                    if value.trim().is_empty() {
                        return Err(PolicyCliError::Blank(flag));
                    }
                }
                let by = crate::audit::reference::Attribution::operator(actor, reason);
                let recorded = crate::app::record_reference_data(config, &by, now)
                    .await
                    .map_err(PolicyCliError::Record)?;
                if recorded.is_empty() {
                    println!("nothing changed since the last record");
                }
                for change in recorded {
                    let lines = change.diff.as_deref().map_or(0, |d| d.lines().count());
                    println!(
                        "recorded {:?} {} from {} ({lines} diff lines)",
                        change.kind, change.version, change.source
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            PolicyCommand::Whatif(args) => Ok(whatif_command(args, config).await?),
        }
    }
}

/// `bianmin policy whatif`: folds the period twice and prints the comparison.
async fn whatif_command(args: &WhatifArgs, config: &Config) -> Result<ExitCode, ReportError> {
    let WhatifArgs {
        profile,
        from,
        to,
        period,
        group_by,
        weights,
        json,
    } = args;
    let profile_text = std::fs::read_to_string(profile)
        .map_err(|e| ReportError::invalid("profile", format!("{}: {e}", profile.display())))?;
    let spec = WhatIfSpec {
        profile_name: profile.display().to_string(),
        profile_text,
        from: *from,
        to: *to,
        period: *period,
        group_by: parse_dims(group_by)
            .map_err(|e| ReportError::invalid("group_by", e.to_string()))?,
        weights: *weights,
    };
    let policy = crate::policy_files::load_policy(&config.policy)
        .map_err(|e| ReportError::Projections(format!("reference data: {e}")))?;
    let assessment = crate::read_models::assessment(config, &policy);
    let (log, _nats) = crate::log_open::open_log(config)
        .await
        .map_err(|e| ReportError::Projections(format!("opening the event log: {e}")))?;
    let progress = bar("folding the period twice");
    let report = whatif(&log, &policy, &assessment, &spec, Some(&progress)).await?;
    if *json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| ReportError::Projections(e.to_string()))?;
        println!("{text}");
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_parse_with_absent_keys_zero_and_refuse_unknown_or_negative() {
        let w = parse_weights("response=20, resolution=40,satisfaction=40").unwrap();
        assert_eq!(
            (w.response, w.resolution, w.satisfaction, w.bottom_up),
            (20.0, 40.0, 40.0, 0.0)
        );
        assert_eq!(parse_weights("bottom_up=2.5").unwrap().bottom_up, 2.5);
        assert!(parse_weights("speed=1").unwrap_err().contains("speed"));
        assert!(
            parse_weights("response=-1")
                .unwrap_err()
                .contains("response")
        );
        assert!(parse_weights("response").is_err());
    }
}
