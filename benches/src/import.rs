//! The import workload: a generated file of historical requests (`docs/import.md` columns),
//! imported by `bianmin import` (the real binary, as an operator runs it) into a fresh
//! JetStream stream, imported again (every row already there: the idempotent re-run), and
//! imported into the embedded SQLite log. Figures: rows/s and commits/s of each run, from the
//! report the binary writes (`--report`, the import's own elapsed time, process start-up
//! excluded); commits/s is compared with the raw JetStream OCC append limit (a).
//!
//! The file is deterministic for a seed: rows cycle over every grid of the built-in directory
//! and three lifecycles — a referral through to archive with a contact (11 commits), an
//! anonymous consultation answered directly and rated (8), a complaint still with its
//! department (4) — with timestamps spread over 2025.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::stats::Throughput;

/// The built-in directory the engine runs with when no directory file is configured.
const DIRECTORY: &str = include_str!("../../deploy/policy/directory.toml");

const HEADER: &str = "external_id,channel,received_at,street,community,grid,text,contact_name,\
contact_phone,accepted_at,catalogue_item,classified_at,handling,department,referred_at,\
signed_for_at,contacted_at,replied_at,outcome,reviewed_at,rated_at,satisfaction,resolution,\
archived_at";

/// What the import workload measured.
#[derive(Debug, Clone, Serialize)]
pub struct ImportFigures {
    /// Rows in the file.
    pub rows: u64,
    /// Commits the first run appended.
    pub commits: u64,
    /// Rows the first run reported bad or failed (must be 0).
    pub rejected: u64,
    /// First run into JetStream: rows per second.
    pub jetstream_rows: Throughput,
    /// First run into JetStream: commits per second.
    pub jetstream_commits: Throughput,
    /// Second run of the same file (every row already imported): rows per second.
    pub rerun_rows: Throughput,
    /// Run into the embedded SQLite log: rows per second.
    pub sqlite_rows: Option<Throughput>,
    /// Run into the embedded SQLite log: commits per second.
    pub sqlite_commits: Option<Throughput>,
}

/// `(street, community, grid)` of every grid in the built-in directory.
fn grids() -> anyhow::Result<Vec<(String, String, String)>> {
    let doc: toml::Value = toml::from_str(DIRECTORY).context("the built-in directory")?;
    let mut out = Vec::new();
    let streets = doc
        .get("streets")
        .and_then(|s| s.as_array())
        .context("streets")?;
    for street in streets {
        let street_code = street
            .get("code")
            .and_then(|c| c.as_str())
            .context("code")?;
        for community in street
            .get("communities")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
        {
            let community_code = community
                .get("code")
                .and_then(|c| c.as_str())
                .context("code")?;
            for grid in community
                .get("grids")
                .and_then(|g| g.as_array())
                .into_iter()
                .flatten()
            {
                let grid_code = grid.get("code").and_then(|c| c.as_str()).context("code")?;
                out.push((
                    street_code.to_string(),
                    community_code.to_string(),
                    grid_code.to_string(),
                ));
            }
        }
    }
    anyhow::ensure!(!out.is_empty(), "the built-in directory has no grids");
    Ok(out)
}

/// Writes a CSV file of `rows` historical requests to `path`; returns the commits they make.
pub fn generate(path: &Path, rows: u64, tag: &str) -> anyhow::Result<u64> {
    let grids = grids()?;
    let base = chrono::NaiveDate::from_ymd_opt(2025, 1, 2)
        .and_then(|d| d.and_hms_opt(8, 0, 0))
        .context("base date")?;
    let mut out = String::with_capacity(rows as usize * 300);
    out.push_str(HEADER);
    out.push('\n');
    let mut commits = 0;
    let fmt = |t: chrono::NaiveDateTime| t.format("%Y-%m-%d %H:%M").to_string();
    let minutes = |m: i64| chrono::Duration::minutes(m);
    for i in 0..rows {
        let (street, community, grid) = &grids[(i as usize) % grids.len()];
        // Spread over about 330 days, a few minutes apart, always on a working morning hour.
        let day = (i % 330) as i64;
        let received = base + chrono::Duration::days(day) + minutes(((i / 330) % 240) as i64);
        let t = |m: i64| fmt(received + minutes(m));
        let id = format!("BENCH-{tag}-{i:07}");
        match i % 5 {
            // A referral through to archive, with a contact.
            0..=2 => {
                commits += 11;
                writeln!(
                    out,
                    "{id},hotline,{},{street},{community},{grid},路灯不亮,居民{i},138{:08},{},um-streetlight,{},referral,urban-management,{},{},{},{},resolved,{},{},satisfied,resolved,{}",
                    t(0),
                    i % 100_000_000,
                    t(5),
                    t(15),
                    t(20),
                    t(60),
                    t(120),
                    t(1440),
                    t(1500),
                    t(2880),
                    t(2900)
                )?;
            }
            // An anonymous consultation answered directly and rated.
            3 => {
                commits += 8;
                writeln!(
                    out,
                    "{id},hotline,{},{street},{community},{grid},咨询婚姻登记材料,,,{},ca-marriage-consultation,{},,,,,,{},resolved,,{},basically_satisfied,resolved,{}",
                    t(0),
                    t(2),
                    t(4),
                    t(20),
                    t(60),
                    t(70)
                )?;
            }
            // An anonymous complaint still with its department.
            _ => {
                commits += 4;
                writeln!(
                    out,
                    "{id},hotline,{},{street},{community},{grid},夜间施工噪音,,,{},um-construction-noise-night,{},,,{},,,,,,,,,",
                    t(0),
                    t(3),
                    t(6),
                    t(8)
                )?;
            }
        }
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
    Ok(commits)
}

/// One `bianmin import` run and the figures of its report.
pub struct Run {
    /// Rows read.
    pub rows: u64,
    /// Commits appended.
    pub commits: u64,
    /// Rows refused or failed.
    pub rejected: u64,
    /// The import's own elapsed time.
    pub seconds: f64,
}

/// `bianmin import` of `file` into the JetStream log `(url, stream, prefix)` of an instance
/// whose secrets (signing key, intake-id key, KEK) are in `secrets` and whose stores are in
/// `database_url`, as the seeding of `--seed-history` runs it.
pub async fn run_seed_import(
    binary: &Path,
    data_dir: &Path,
    file: &Path,
    nats: (&str, &str, &str),
    database_url: &str,
    secrets: &Path,
) -> anyhow::Result<Run> {
    std::fs::create_dir_all(data_dir)?;
    let instance = [
        ("DATABASE_URL", database_url.to_string()),
        (
            "BIANMIN_SIGNING__KEY_FILE",
            secrets.join("signing.key").display().to_string(),
        ),
        (
            "BIANMIN_INTAKE_IDS__KEY_FILE",
            secrets.join("intake-id.key").display().to_string(),
        ),
        (
            "BIANMIN_STORES__KEK_DIR",
            secrets.join("kek").display().to_string(),
        ),
    ];
    run_import_with(binary, data_dir, file, Some(nats), &instance).await
}

async fn run_import(
    binary: &Path,
    data_dir: &Path,
    file: &Path,
    nats: Option<(&str, &str, &str)>,
) -> anyhow::Result<Run> {
    run_import_with(binary, data_dir, file, nats, &[]).await
}

async fn run_import_with(
    binary: &Path,
    data_dir: &Path,
    file: &Path,
    nats: Option<(&str, &str, &str)>,
    env: &[(&str, String)],
) -> anyhow::Result<Run> {
    let report = data_dir.join(format!(
        "report-{}.json",
        std::fs::read_dir(data_dir).map(|d| d.count()).unwrap_or(0)
    ));
    let mut command = tokio::process::Command::new(binary);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .arg("import")
        .arg(file)
        .arg("--report")
        .arg(&report)
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(std::process::Stdio::null());
    if let Some((url, stream, prefix)) = nats {
        command
            .arg("--nats-url")
            .arg(url)
            .env("BIANMIN_NATS__STREAM", stream)
            .env("BIANMIN_NATS__SUBJECT_PREFIX", prefix);
    }
    let output = command.output().await.context("running bianmin import")?;
    let code = output.status.code().unwrap_or(-1);
    anyhow::ensure!(
        code == 0,
        "bianmin import exited with {code}: {}",
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .take(10)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).context("the import report")?)?;
    let count = |key: &str| json[key].as_u64().unwrap_or(0);
    Ok(Run {
        rows: count("rows"),
        commits: count("commits"),
        rejected: count("bad") + count("failed"),
        seconds: json["elapsed_seconds"].as_f64().unwrap_or(0.0),
    })
}

/// Generates `rows` rows and imports them: into a new JetStream stream (deleted afterwards),
/// again (re-run), and into the embedded SQLite log.
pub async fn measure(
    binary: &Path,
    client: &async_nats::Client,
    nats_url: &str,
    tag: &str,
    rows: u64,
    notes: &mut Vec<String>,
) -> anyhow::Result<ImportFigures> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("history.csv");
    let expected_commits = generate(&file, rows, tag)?;
    let stream = format!("BIANMIN_BENCH_IMPORT_{tag}");
    let prefix = format!("bmimport{tag}");
    let secs = |s: f64| Duration::from_secs_f64(s.max(1e-9));

    let js_dir = dir.path().join("jetstream");
    std::fs::create_dir_all(&js_dir)?;
    eprintln!("importing {rows} rows into JetStream...");
    let target = Some((nats_url, stream.as_str(), prefix.as_str()));
    let first = run_import(binary, &js_dir, &file, target).await;
    let rerun = match &first {
        Ok(_) => {
            eprintln!("importing the same {rows} rows again (every row already there)...");
            Some(run_import(binary, &js_dir, &file, target).await)
        }
        Err(_) => None,
    };
    async_nats::jetstream::new(client.clone())
        .delete_stream(&stream)
        .await
        .ok();
    let first = first?;
    let rerun = rerun.context("no re-run")??;
    if first.commits != expected_commits {
        notes.push(format!(
            "import: {} commits appended, {expected_commits} expected",
            first.commits
        ));
    }
    if rerun.commits != 0 {
        notes.push(format!(
            "import re-run appended {} commits (expected none)",
            rerun.commits
        ));
    }

    let lite_dir = dir.path().join("sqlite");
    std::fs::create_dir_all(&lite_dir)?;
    eprintln!("importing {rows} rows into the embedded SQLite log...");
    let (sqlite_rows, sqlite_commits) = match run_import(binary, &lite_dir, &file, None).await {
        Ok(run) => (
            Some(Throughput::new(run.rows, secs(run.seconds))),
            Some(Throughput::new(run.commits, secs(run.seconds))),
        ),
        Err(e) => {
            notes.push(format!("import into SQLite failed: {e:#}"));
            (None, None)
        }
    };
    Ok(ImportFigures {
        rows: first.rows,
        commits: first.commits,
        rejected: first.rejected + rerun.rejected,
        jetstream_rows: Throughput::new(first.rows, secs(first.seconds)),
        jetstream_commits: Throughput::new(first.commits, secs(first.seconds)),
        rerun_rows: Throughput::new(rerun.rows, secs(rerun.seconds)),
        sqlite_rows,
        sqlite_commits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_file_has_a_header_and_one_line_per_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        let commits = generate(&path, 10, "t").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 11);
        let fields = HEADER.split(',').count();
        assert!(
            lines.iter().all(|l| l.split(',').count() == fields),
            "{text}"
        );
        assert_eq!(commits, 6 * 11 + 2 * 8 + 2 * 4);
    }
}
