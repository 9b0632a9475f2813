//! Calendar coverage as a fact: `/readyz` warns (degraded, 200) and `/metrics` counts the days
//! before the loaded calendar ends, a deadline counted into an uncovered year carries
//! `provisional` in its event and in the read API (on the SQLite store and on JetStream), and
//! the `bianmin calendar` commands load (validated, stored, recorded in the reference-data
//! history), show and list provisional deadlines.

use std::path::Path;
use tokio::process::Command;

use engine_log::EventLog;
use schemas::Event;
use serde_json::json;
use tests::app::{Store, TestApp, actors, external_id, intake_document, spawn_app};
use tests::faults::bianmin_binary;

use crate::e2e_supervision::{at, events, get_json, ok};

/// A 2027 file as a deployment adds it (dates for the test only, not the official notice).
/// Why the operator loads the 2027 calendar (recorded with the change).
const LOAD_REASON: &str = "国务院办公厅关于2027年部分节假日安排的通知";

const Y2027: &str = r#"
id = "cn-2027-test"
version = "2027.0"

[[years]]
year = 2027
holidays = [{ from = "2027-01-01", to = "2027-01-03", name = "New Year" }]
"#;

/// Intake, accept and classify as street vending (3 working days) now; returns the id.
async fn classified(app: &TestApp) -> String {
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id").to_string();
    ok(app, &id, "accept", actors::STATION, json!({})).await;
    ok(
        app,
        &id,
        "classify",
        actors::STATION,
        json!({"catalogue_item": "um-street-vending", "request_type": "complaint"}),
    )
    .await;
    id
}

async fn coverage_is_watched_and_deadlines_marked(store: Store) {
    let app = spawn_app(store).await;
    let (status, ready) = get_json(&app, "/readyz", actors::AUDITOR).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["parts"]["calendar"], "ok", "{ready}");
    assert_eq!(ready["status"], "ready", "{ready}");

    // A request stamped well inside the coverage carries no mark.
    let inside = classified(&app).await;
    let stamped = &events(&app, &inside, "request_classified").await[0]["data"]["deadlines"];
    assert!(stamped.get("provisional").is_none(), "{stamped}");

    // 10:00 on Tuesday 29 December 2026 in Beijing: 2 days left, inside the 30-day window.
    app.clock.set(at("2026-12-29T02:00:00Z"));
    let (status, ready) = get_json(&app, "/readyz", actors::AUDITOR).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "degraded", "{ready}");
    let part = ready["parts"]["calendar"].as_str().unwrap_or_default();
    assert!(part.contains("2026-12-31 (2 days left)"), "{ready}");
    let metrics = app
        .get("/metrics", actors::AUDITOR)
        .await
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("bianmin_calendar_coverage_days_left 2\n"),
        "{metrics}"
    );

    // Three working days from then run into 2027, which no loaded file covers.
    let id = classified(&app).await;
    let stamped = &events(&app, &id, "request_classified").await[0]["data"]["deadlines"];
    assert_eq!(stamped["provisional"], true, "{stamped}");
    assert_eq!(
        stamped["completion_due_at"], "2027-01-01T09:30:00Z",
        "{stamped}"
    );
    let (status, read) = get_json(&app, &format!("/api/v1/requests/{id}"), actors::AUDITOR).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["state"]["deadlines"]["provisional"], true, "{read}");
    // Referred at 17:00 on 31 December: the 4-working-hour sign-off runs into 2027.
    app.clock.set(at("2026-12-31T09:00:00Z"));
    ok(
        &app,
        &id,
        "refer",
        actors::STATION,
        json!({"lead_department": "urban-management"}),
    )
    .await;
    let referral = &events(&app, &id, "referred_to_department").await[0]["data"];
    assert_eq!(referral["provisional"], true, "{referral}");
    let early = &events(&app, &inside, "request_classified").await[0]["data"];
    assert!(early["deadlines"].get("provisional").is_none(), "{early}");
    app.teardown().await;
}

tests::on_both_stores!(coverage_is_watched_and_deadlines_marked);

/// Runs the `bianmin` binary on `data_dir` without blocking the test's runtime (the in-process
/// app's log connections must keep running while the process waits for their locks).
async fn bianmin(data_dir: &Path, args: &[&str]) -> (i32, String, String) {
    bianmin_with(data_dir, &[], args).await
}

/// Runs `bianmin --data-dir <data_dir> <args>` on the embedded store with `envs` set; returns
/// the exit code, stdout and stderr.
pub(crate) async fn bianmin_with(
    data_dir: &Path,
    envs: &[(&str, &std::ffi::OsStr)],
    args: &[&str],
) -> (i32, String, String) {
    let output = Command::new(bianmin_binary())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .envs(envs.iter().copied())
        .env_remove("BIANMIN_NATS_URL")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("bianmin runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The calendar sources recorded in the reference-data history of the log in `data_dir`.
async fn recorded_calendars(data_dir: &Path) -> Vec<String> {
    let log = EventLog::open_sqlite(&data_dir.join("events.db"))
        .await
        .expect("log");
    let stream = schemas::envelope::reference_data_stream_id();
    let mut sources = Vec::new();
    for commit in log.load(stream).await.expect("load") {
        for envelope in commit.commit.events {
            if let Event::ReferenceDataRecorded(r) = envelope.event
                && r.kind == schemas::event::ReferenceKind::Calendar
            {
                let reason = r.reason.unwrap_or_default();
                let actor = envelope.actor.id;
                sources.push(format!("{} {} by {actor}: {reason}", r.version, r.source));
            }
        }
    }
    sources
}

#[tokio::test]
async fn the_calendar_commands_load_show_and_list_provisional_deadlines() {
    let app = spawn_app(Store::Sqlite).await;
    app.clock.set(at("2026-12-29T02:00:00Z"));
    let id = classified(&app).await;
    let dir = app.config.data_dir.clone();
    let mut app = app;
    app.stop().await;

    let (code, out, err) = bianmin(&dir, &["calendar", "show"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("covered to 2026-12-31"), "{out}");
    assert!(out.contains("cn@2026.1: 2025,2026"), "{out}");
    let (code, out, err) = bianmin(&dir, &["calendar", "provisional"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&id) && out.contains("covered_now=false"),
        "{out}"
    );

    // A file declaring a year already loaded is refused and stored nowhere.
    let files = tempfile::tempdir().expect("tempdir");
    let clash = files.path().join("clash.toml");
    std::fs::write(&clash, Y2027.replace("2027", "2026")).expect("write");
    let (code, out, err) = bianmin(
        &dir,
        &[
            "calendar",
            "load",
            clash.to_str().expect("path"),
            "--actor",
            "ops-zhang",
            "--reason",
            "a clash",
        ],
    )
    .await;
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("already declared"), "{err}");
    assert!(!dir.join("calendars/clash.toml").exists());

    let file = files.path().join("cn-2027.toml");
    std::fs::write(&file, Y2027).expect("write");
    let (code, out, err) = bianmin(
        &dir,
        &[
            "calendar",
            "load",
            file.to_str().expect("path"),
            "--actor",
            "ops-zhang",
            "--reason",
            LOAD_REASON,
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(dir.join("calendars/cn-2027.toml").exists(), "{out}");
    assert!(out.contains("covered to 2027-12-31"), "{out}");
    let recorded = recorded_calendars(&dir).await;
    assert!(
        recorded
            .last()
            .is_some_and(|r| r.starts_with("2025,2026,2027 ")
                && r.contains("cn-2027.toml")
                && r.ends_with(&format!("by ops-zhang: {LOAD_REASON}"))),
        "{recorded:?}"
    );
    // The request stamped before is still marked, and now covered: a re-stamp is due.
    let (code, out, err) = bianmin(&dir, &["calendar", "provisional"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&id) && out.contains("covered_now=true"),
        "{out}"
    );
    // Loading the same file again changes nothing in the history.
    let (code, out, err) = bianmin(
        &dir,
        &[
            "calendar",
            "load",
            file.to_str().expect("path"),
            "--actor",
            "ops-zhang",
            "--reason",
            LOAD_REASON,
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(recorded_calendars(&dir).await, recorded);
    app.teardown().await;
}

async fn a_loaded_year_restamps_provisional_deadlines_by_event(store: Store) {
    let app = tests::app::spawn_app_with(store, |config| {
        config.policy.calendar_dir = Some(config.data_dir.join("calendars"));
    })
    .await;
    app.clock.set(at("2026-12-29T02:00:00Z"));
    let id = classified(&app).await;
    let dir = app
        .config
        .policy
        .calendar_dir
        .clone()
        .expect("calendar dir");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("cn-2027.toml"), Y2027).expect("write");

    // The engine starts with the 2027 file, records the new calendar and re-stamps (in the
    // background, once it serves).
    let app = app.restart().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let restamped = loop {
        let restamped = events(&app, &id, "deadlines_restamped").await;
        if !restamped.is_empty() || std::time::Instant::now() > deadline {
            break restamped;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(restamped.len(), 1, "{restamped:?}");
    let data = &restamped[0]["data"];
    assert_eq!(data["previous"]["provisional"], true, "{data}");
    assert_eq!(
        data["previous"]["completion_due_at"],
        "2027-01-01T09:30:00Z"
    );
    assert!(data["deadlines"].get("provisional").is_none(), "{data}");
    // 12-30, 12-31, then the 2027 New Year holiday: Monday 4 January, 17:30.
    assert_eq!(
        data["deadlines"]["completion_due_at"],
        "2027-01-04T09:30:00Z"
    );
    assert!(
        data["reason"]
            .as_str()
            .is_some_and(|r| r.contains("2025,2026,2027")),
        "{data}"
    );
    assert_eq!(restamped[0]["actor"]["role"], "system", "{}", restamped[0]);
    let (status, read) = get_json(&app, &format!("/api/v1/requests/{id}"), actors::AUDITOR).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(
        read["state"]["deadlines"]["completion_due_at"], "2027-01-04T09:30:00Z",
        "{read}"
    );
    assert!(
        read["state"]["deadlines"].get("provisional").is_none(),
        "{read}"
    );
    let left = engine_service::calendar::provisional_requests(
        app.command_service.log(),
        app.command_service.policy(),
    )
    .await
    .expect("scan");
    assert!(left.is_empty(), "{left:?}");

    // Another start with the same calendar re-stamps nothing more.
    let app = app.restart().await;
    assert_eq!(events(&app, &id, "deadlines_restamped").await.len(), 1);
    app.teardown().await;
}

tests::on_both_stores!(a_loaded_year_restamps_provisional_deadlines_by_event);
