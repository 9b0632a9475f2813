//! Reference-data changes with who, why and what (`bianmin policy record`,
//! `bianmin reference`): an operator edits the catalogue and records the change with a reason
//! before the engine starts; the history names the operator, keeps the reason, the content in
//! force and a unified diff of exactly the edited line; the engine's start-up then finds
//! nothing unrecorded; an unrecorded edit found at start-up is recorded as the engine's, saying
//! so; blank flags are refused; role grants never reach the stream.

use std::path::Path;

use engine_log::EventLog;
use engine_service::audit::reference::{self, ReferenceRecord};
use schemas::event::ReferenceKind;
use tests::faults::bianmin_binary;

use crate::calendar_coverage::bianmin_with;
use tokio::process::Command;

/// Runs `bianmin` on `data_dir` with the catalogue file `catalogue`.
async fn bianmin(data_dir: &Path, catalogue: &Path, args: &[&str]) -> (i32, String, String) {
    let env = [("BIANMIN_POLICY__CATALOGUE_FILE", catalogue.as_os_str())];
    bianmin_with(data_dir, &env, args).await
}

/// `bianmin policy record --actor <actor> --reason <reason>`.
async fn record(
    data_dir: &Path,
    catalogue: &Path,
    actor: &str,
    reason: &str,
) -> (i32, String, String) {
    let args = ["policy", "record", "--actor", actor, "--reason", reason];
    bianmin(data_dir, catalogue, &args).await
}

async fn catalogue_history(data_dir: &Path) -> Vec<ReferenceRecord> {
    let log = EventLog::open_sqlite(&data_dir.join("events.db"))
        .await
        .expect("log");
    reference::history(&log)
        .await
        .expect("history")
        .into_iter()
        .filter(|r| r.recorded.kind == ReferenceKind::Catalogue)
        .collect()
}

/// The built-in catalogue under `version`, street vending completed in `days` working days.
fn catalogue(version: &str, days: u32) -> String {
    let text = engine_core::catalogue::BUILTIN_CATALOGUE
        .replace("version = \"2026.4\"", &format!("version = \"{version}\""));
    let item = text.find("id = \"um-street-vending\"").expect("the item");
    let limit = text[item..].find("completion = ").expect("its limit") + item;
    let end = text[limit..].find('\n').unwrap() + limit;
    format!(
        "{}completion = {{ amount = {days}, unit = \"working_days\" }}{}",
        &text[..limit],
        &text[end..]
    )
}

#[tokio::test]
async fn an_operator_records_a_catalogue_change_with_reason_content_and_diff() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let file = dir.path().join("catalogue.toml");
    std::fs::write(&file, catalogue("local.1", 3)).unwrap();

    // Blank flags are refused and record nothing.
    let (code, out, err) = record(&data, &file, " ", "x").await;
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("--actor must not be blank"), "{err}");

    let (code, out, err) = record(&data, &file, "ops-zhang", "the district's own limits").await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("recorded Catalogue local.1"), "{out}");
    // Again: nothing changed.
    let (code, out, _) = record(&data, &file, "ops-zhang", "again").await;
    assert_eq!(
        (code, out.trim()),
        (0, "nothing changed since the last record")
    );

    // Street vending gets five days: one line differs.
    std::fs::write(&file, catalogue("local.2", 5)).unwrap();
    let reason = "区政府常务会议纪要 2026-41: five working days for street vending";
    let (code, out, err) = record(&data, &file, "ops-li", reason).await;
    assert_eq!(code, 0, "{out}{err}");
    let history = catalogue_history(&data).await;
    let [first, second] = &history[..] else {
        panic!("two catalogue records: {history:?}")
    };
    assert_eq!(
        (first.actor.id.as_str(), second.actor.id.as_str()),
        ("ops-zhang", "ops-li")
    );
    assert_eq!(second.recorded.reason.as_deref(), Some(reason));
    assert_eq!(
        second.recorded.content.as_deref(),
        Some(catalogue("local.2", 5).as_str())
    );
    let diff = second.recorded.diff.as_deref().expect("a diff");
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .collect();
    assert_eq!(
        changed,
        [
            "-version = \"local.1\"",
            "+version = \"local.2\"",
            "-completion = { amount = 3, unit = \"working_days\" }",
            "+completion = { amount = 5, unit = \"working_days\" }",
        ],
        "{diff}"
    );

    // The audit command shows who, why and the diff.
    let (code, out, err) = bianmin(&data, &file, &["reference"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("by ops-li (system)") && out.contains(&format!("why: {reason}")),
        "{out}"
    );
    assert!(out.contains("+completion = { amount = 5"), "{out}");

    // An edit nobody recorded: the engine's start-up records it as found.
    std::fs::write(&file, catalogue("local.3", 4)).unwrap();
    let (code, out, err) = bianmin(
        &data,
        &file,
        &[
            "calendar",
            "load",
            "/nonexistent.toml",
            "--actor",
            "ops-li",
            "--reason",
            "x",
        ],
    )
    .await;
    assert_ne!(code, 0, "a missing calendar file is refused: {out}{err}");
    let history = catalogue_history(&data).await;
    assert_eq!(history.len(), 2, "a refused load records nothing");
    let mut serve = Command::new(bianmin_binary())
        .args(["--data-dir"])
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0", "--no-supervisor"])
        .env("BIANMIN_POLICY__CATALOGUE_FILE", &file)
        .env_remove("BIANMIN_NATS_URL")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("serve starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let found = loop {
        let history = catalogue_history(&data).await;
        if history.len() == 3 {
            break history;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the start-up records the change"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    serve.kill().await.ok();
    assert_eq!(found[2].actor.id, "bianmin");
    assert!(
        found[2]
            .recorded
            .reason
            .as_deref()
            .unwrap()
            .contains("no operator recorded")
    );
    assert!(
        found[2]
            .recorded
            .diff
            .as_deref()
            .unwrap()
            .contains("+completion = { amount = 4")
    );
}
