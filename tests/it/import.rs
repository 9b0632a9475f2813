//! `bianmin import`: a file of good rows and bad rows of every kind, on the embedded SQLite
//! store and on JetStream + PostgreSQL. Good rows land exactly once with their own
//! timestamps, bad rows are reported with line, field and code and leave nothing in the log,
//! a re-run changes nothing, an interrupted row is completed, a request written by live
//! intake is left alone, the projections show the imported requests, and every hash chain
//! verifies. The `bianmin import` binary's exit codes and JSON report are checked too.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use engine_core::{Clock, ManualClock, Policy, Request};
use engine_log::EventLog;
use engine_service::audit::verify;
use engine_service::commands::CommandService;
use engine_service::contacts::ContactStore;
use engine_service::import::plan::{decide_steps, plan_row};
use engine_service::import::row::{RawRow, parse_row};
use engine_service::import::{ImportOptions, ImportReport, Importer};
use projections::Projections;
use projections::query::{Filter, ListQuery, RequestList};
use schemas::{Channel, RequestId};
use tests::app::{Store, start_time};
use tests::faults::bianmin_binary;

pub(crate) const HEADER: &str = "external_id,channel,received_at,street,community,grid,text,contact_name,\
contact_phone,accepted_at,catalogue_item,classified_at,handling,department,referred_at,\
signed_for_at,contacted_at,replied_at,outcome,reviewed_at,rated_at,satisfaction,resolution,\
archived_at";

/// A distinctive phone number: it must reach the contact store and never the log.
const PHONE: &str = "13700009876";

/// Line 2: a referral through its whole life, with a contact (11 commits).
fn row_referral(ticket: &str) -> String {
    format!(
        "{ticket},hotline,2026-02-02 09:12,jd-01,sq-0101,wg-010101,小区北门路灯已坏三天,王芳,{PHONE},\
         2026-02-02 09:20,um-streetlight,2026-02-02 09:35,referral,urban-management,\
         2026-02-02 09:40,2026-02-02 11:00,2026-02-02 14:00,2026-02-04 16:00,resolved,\
         2026-02-04 17:00,2026-02-05 10:00,satisfied,resolved,2026-02-05 10:30"
    )
}

/// An anonymous consultation answered directly (8 commits).
pub(crate) fn row_direct(ticket: &str) -> String {
    format!(
        "{ticket},hotline,2026-02-03T08:05:00+08:00,jd-01,sq-0102,wg-010201,咨询婚姻登记材料,,,\
         2026-02-03 08:10,ca-marriage-consultation,2026-02-03 08:12,,,,,,2026-02-03 08:30,\
         resolved,,2026-02-03 09:00,basically_satisfied,resolved,2026-02-03 09:10"
    )
}

/// An anonymous complaint referred and still open (4 commits).
fn row_open(ticket: &str) -> String {
    format!(
        "{ticket},hotline,2026-02-10 21:40,jd-01,sq-0101,wg-010102,夜间施工噪音,,,\
         2026-02-10 21:45,um-construction-noise-night,2026-02-10 21:50,,,2026-02-10 21:55,\
         ,,,,,,,,"
    )
}

/// The test file: good rows on lines 2, 4 and 9; every other line is bad in its own way.
pub(crate) fn file(prefix: &str) -> (String, Vec<String>) {
    let good = [
        format!("{prefix}-A"),
        format!("{prefix}-B"),
        format!("{prefix}-C"),
    ];
    let lines = [
        HEADER.to_string(),
        // 2: good
        row_referral(&good[0]),
        // 3: a date that does not exist
        row_direct(&format!("{prefix}-bad-date"))
            .replace("2026-02-03T08:05:00+08:00", "2026-02-30 09:00"),
        // 4: good
        row_direct(&good[1]),
        // 5: an item the catalogue does not have
        row_direct(&format!("{prefix}-bad-item"))
            .replace("ca-marriage-consultation", "no-such-item"),
        // 6: a grid the directory does not have
        row_direct(&format!("{prefix}-bad-grid")).replace("wg-010201", "wg-999999"),
        // 7: replied before it was classified
        row_direct(&format!("{prefix}-bad-order")).replace("2026-02-03 08:30", "2026-02-03 08:00"),
        // 8: a malformed CSV line (more fields than the header)
        format!(
            "{},extra,fields",
            row_direct(&format!("{prefix}-malformed"))
        ),
        // 9: good
        row_open(&good[2]),
        // 10: archived while the callback is due: the core refuses (callback_pending)
        row_direct(&format!("{prefix}-bad-archive"))
            .replace(",2026-02-03 09:00,basically_satisfied,resolved,", ",,,,"),
        // 11: the same ticket as line 2 again
        row_referral(&good[0]),
    ];
    (lines.join("\n") + "\n", good.to_vec())
}

/// (line, field, code) of every bad row, in line order.
pub(crate) const EXPECTED_BAD: [(u64, Option<&str>, &str); 7] = [
    (3, Some("received_at"), "invalid_value"),
    (5, Some("catalogue_item"), "unknown_reference"),
    (6, Some("grid"), "unknown_reference"),
    (7, Some("replied_at"), "lifecycle_order"),
    (8, None, "malformed_line"),
    (10, Some("archived_at"), "callback_pending"),
    (11, Some("external_id"), "duplicate_row"),
];

pub(crate) fn bad_rows(report: &ImportReport) -> Vec<(u64, Option<&str>, &str)> {
    report
        .errors
        .iter()
        .map(|e| (e.line, e.field.as_deref(), e.code.as_str()))
        .collect()
}

/// The stores an import writes to, without a running engine: the event log (SQLite file, or
/// a stream of its own on the shared nats-server), the contact store, the built-in policy, a
/// manual clock, and a projections database (SQLite, or PostgreSQL with JetStream).
pub(crate) struct Stores {
    pub log: EventLog,
    pub contacts: ContactStore,
    pub policy: Arc<Policy>,
    pub clock: Arc<ManualClock>,
    pub projections_url: String,
    pub dir: tempfile::TempDir,
    db: Option<tests::pg::TestDb>,
    stream: Option<(async_nats::Client, String)>,
}

impl Stores {
    pub async fn open(store: Store) -> Stores {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::new(start_time()));
        let (log, stream, db, projections_url) = match store {
            Store::Sqlite => (
                EventLog::open_sqlite(&dir.path().join("events.db"))
                    .await
                    .expect("sqlite log"),
                None,
                None,
                format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display()),
            ),
            Store::Nats => {
                let client = tests::nats::shared_nats().await;
                let cfg = tests::nats::unique_log_config();
                let stream = cfg.names.events_stream().to_string();
                let log = EventLog::connect_jetstream(client.clone(), cfg)
                    .await
                    .expect("jetstream log");
                let db = tests::pg::TestDb::create().await.expect("test database");
                let url = db.url.clone();
                (log, Some((client, stream)), Some(db), url)
            }
        };
        // `bianmin import` run on this directory keys ids with the same secret.
        tests::write_test_intake_secret(dir.path());
        let contacts = ContactStore::open_sqlite(&dir.path().join("contacts.db"), clock.clone())
            .await
            .expect("contact store");
        let policy = engine_service::policy_files::load_policy(
            &engine_service::config::Config::default().policy,
        )
        .expect("the built-in policy");
        Stores {
            log,
            contacts,
            policy: Arc::new(policy),
            clock,
            projections_url,
            dir,
            db,
            stream,
        }
    }

    pub fn importer(&self) -> Importer {
        Importer::new(
            self.log.clone(),
            self.contacts.clone(),
            self.policy.clone(),
            self.clock.clone(),
            tests::test_intake_ids(),
        )
    }

    /// The command service live intake and commands go through, on the same stores.
    pub fn service(&self) -> CommandService {
        CommandService::new(
            self.log.clone(),
            self.policy.clone(),
            self.clock.clone(),
            self.contacts.clone(),
            engine_service::metrics::Metrics::new(),
            tests::test_intake_ids(),
        )
    }

    /// The read models, rebuilt from the whole log.
    pub async fn project(&self) -> Projections {
        let projections = Projections::connect(&self.projections_url)
            .await
            .expect("projections database");
        engine_service::projector::rebuild_all(
            &projections,
            &self.log,
            projections::PROJECTORS,
            500,
            |_, _| {},
        )
        .await
        .expect("the projections rebuild");
        projections
    }

    pub async fn close(self) {
        if let Some((client, stream)) = &self.stream {
            tests::nats::delete_stream(client, stream).await;
        }
        if let Some(db) = self.db {
            db.drop_db().await;
        }
    }
}

pub(crate) fn request_id(ticket: &str) -> RequestId {
    tests::test_intake_id(Channel::Hotline, ticket)
}

async fn commits_of(log: &EventLog, ticket: &str) -> usize {
    log.load(request_id(ticket))
        .await
        .expect("the log reads")
        .len()
}

async fn good_and_bad_rows(store: Store) {
    let stores = Stores::open(store).await;
    let dir = &stores.dir;
    let prefix = format!("IMP-{}", uuid::Uuid::now_v7().simple());
    let (text, good) = file(&prefix);
    let path = dir.path().join("history.csv");
    std::fs::write(&path, text).expect("write the file");
    let log = stores.log.clone();
    let importer = stores.importer();
    let mut options = ImportOptions::new(&path);
    options.concurrency = 4;

    let first = importer.run(&options, None).await.expect("the import runs");
    assert_eq!(first.rows, 10, "{first:#?}");
    assert_eq!(first.imported, 3, "{first:#?}");
    assert_eq!(first.bad, 7, "{first:#?}");
    assert_eq!(first.failed, 0, "{first:#?}");
    assert_eq!(first.commits, 11 + 8 + 4);
    assert_eq!(bad_rows(&first), EXPECTED_BAD.to_vec());
    assert_eq!(first.exit_code(), 3);
    // Good rows landed exactly once, with the lifecycle the row describes.
    assert_eq!(commits_of(&log, &good[0]).await, 11);
    assert_eq!(commits_of(&log, &good[1]).await, 8);
    assert_eq!(commits_of(&log, &good[2]).await, 4);
    // Bad rows left nothing: not even the receive of a row refused at its last step.
    for bad in [
        "bad-date",
        "bad-item",
        "bad-grid",
        "bad-order",
        "malformed",
        "bad-archive",
    ] {
        assert_eq!(
            commits_of(&log, &format!("{prefix}-{bad}")).await,
            0,
            "{bad}"
        );
    }
    // The events carry the row's own times, not the import's.
    let history = log.load(request_id(&good[0])).await.expect("load");
    let received = &history[0].commit.events[0];
    assert_eq!(
        received.occurred_at.to_rfc3339(),
        "2026-02-02T01:12:00+00:00"
    );
    let archived = history
        .last()
        .expect("archive")
        .commit
        .events
        .last()
        .expect("event");
    assert_eq!(
        archived.occurred_at.to_rfc3339(),
        "2026-02-05T02:30:00+00:00"
    );
    assert_eq!(archived.recorded_at, stores.clock.now());
    // The contact went to the contact store, never into the log.
    let raw = log.load_raw(request_id(&good[0])).await.expect("raw");
    assert!(
        raw.iter()
            .all(|(_, bytes)| !String::from_utf8_lossy(bytes).contains(PHONE))
    );
    let contact_ref = schemas::ContactRef(uuid::Uuid::new_v5(
        &engine_service::commands::CONTACT_NAMESPACE,
        request_id(&good[0]).as_bytes(),
    ));
    let stored = stores
        .contacts
        .get(&contact_ref)
        .await
        .expect("contact store reads");
    assert!(stored.is_some(), "the contact is stored");

    // A re-run changes nothing.
    let head = log.last_position().await.expect("head");
    let second = importer
        .run(&options, None)
        .await
        .expect("the import runs again");
    assert_eq!(second.imported, 0, "{second:#?}");
    assert_eq!(second.already_imported, 3, "{second:#?}");
    assert_eq!(second.commits, 0);
    assert_eq!(bad_rows(&second), EXPECTED_BAD.to_vec());
    assert_eq!(log.last_position().await.expect("head"), head);

    // The projections show the imported requests with their historical times.
    let projections = stores.project().await;
    let page = projections
        .requests(&ListQuery {
            list: RequestList::All,
            filter: Filter::default(),
            since_position: None,
            limit: 100,
            cursor: None,
            now: stores.clock.now(),
        })
        .await
        .expect("the request list");
    let summary = |ticket: &str| {
        let id = request_id(ticket).to_string();
        page.items
            .iter()
            .find(|s| s.request_id == id)
            .unwrap_or_else(|| panic!("{ticket} is in the projections"))
            .clone()
    };
    assert_eq!(page.items.len(), 3);
    let a = summary(&good[0]);
    assert_eq!(a.stage, "archived");
    assert_eq!(a.lead_department.as_deref(), Some("urban-management"));
    assert_eq!(a.satisfaction.as_deref(), Some("satisfied"));
    assert_eq!(a.received_month, "2026-02");
    assert_eq!(summary(&good[1]).stage, "archived");
    let c = summary(&good[2]);
    assert!(c.open);
    assert_eq!(
        c.catalogue_item.as_deref(),
        Some("um-construction-noise-night")
    );

    // Every chain verifies.
    let verified = verify::verify_all(&log, None).await.expect("verify");
    assert!(verified.ok(), "{verified:?}");
    assert!(verified.requests >= 3);
    stores.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_and_bad_rows_on_sqlite() {
    good_and_bad_rows(Store::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_and_bad_rows_on_jetstream_and_postgres() {
    good_and_bad_rows(Store::Nats).await;
}

/// A run that stopped after some of a row's commits is completed by the next run; a request
/// that live intake created is reported and left as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_rows_are_completed_and_live_requests_left_alone() {
    for store in Store::BOTH {
        let stores = Stores::open(store).await;
        let log = stores.log.clone();
        let prefix = format!("RES-{}", uuid::Uuid::now_v7().simple());
        let (half, live) = (format!("{prefix}-half"), format!("{prefix}-live"));
        let text = format!("{HEADER}\n{}\n{}\n", row_referral(&half), row_direct(&live));
        let path = stores.dir.path().join("rows.csv");
        std::fs::write(&path, &text).expect("write");

        // Write the first three commits of the first row, as an interrupted run would.
        let policy = stores.policy.clone();
        let mut values = std::collections::HashMap::new();
        let header: Vec<&str> = HEADER.split(',').collect();
        let line = row_referral(&half);
        for (column, value) in header.iter().zip(line.split(',')) {
            if !value.is_empty() {
                values.insert(column.to_string(), value.to_string());
            }
        }
        let raw = RawRow { line: 2, values };
        let row = parse_row(&raw, &policy, stores.clock.now()).expect("a good row");
        let plan = plan_row(row, "import", request_id(&half));
        let decided = decide_steps(
            &plan,
            Request::new(plan.request_id),
            schemas::envelope::GENESIS_HASH.to_string(),
            &plan.steps,
            &policy,
            stores.clock.now(),
            &engine_log::clock::IdSource,
        )
        .expect("decided");
        let mut expected = 0;
        for commit in &decided.commits[..3] {
            expected = log.append(commit, expected).await.expect("append").position;
        }
        // The second ticket arrives live first.
        let document: schemas::IntakeDocument = serde_json::from_value(serde_json::json!({
            "channel": "hotline", "external_id": live, "anonymous": true,
            "location": {"street": "jd-01", "community": "sq-0102", "grid": "wg-010201"},
            "text": "live request",
        }))
        .expect("an intake document");
        let intake_actor = schemas::Actor {
            id: "platform".into(),
            role: schemas::Role::IntakeSystem,
            unit: None,
        };
        let outcome = stores
            .service()
            .intake(document, intake_actor)
            .await
            .expect("live intake");
        assert!(outcome.created);

        let report = stores
            .importer()
            .run(&ImportOptions::new(&path), None)
            .await
            .expect("runs");
        assert_eq!(report.completed, 1, "{store:?} {report:#?}");
        assert_eq!(report.commits, 8, "{store:?}: the eight missing commits");
        assert_eq!(report.skipped_existing, 1, "{store:?} {report:#?}");
        assert_eq!(report.skipped[0].line, 3);
        assert_eq!(report.exit_code(), 0);
        assert_eq!(commits_of(&log, &half).await, 11);
        assert_eq!(
            commits_of(&log, &live).await,
            1,
            "the live request is untouched"
        );
        let verified = verify::verify_all(&log, None).await.expect("verify");
        assert!(verified.ok(), "{store:?}: {verified:?}");
        stores.close().await;
    }
}

fn run_cli(data_dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(bianmin_binary())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("bianmin runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The binary: JSON Lines with a malformed line, the printed `line N: field X` errors, the
/// `--report` file and the exit codes (3 with bad rows, 0 when all rows are in the log);
/// `--dry-run` writes nothing.
#[test]
fn the_cli_reports_bad_lines_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let path = dir.path().join("rows.jsonl");
    let lines = [
        r#"{"external_id":"J-1","channel":"hotline","received_at":"2026-01-05 09:00","street":"jd-01","community":"sq-0101","grid":"wg-010101","text":"路灯坏了","accepted_at":"2026-01-05 09:10","catalogue_item":"um-streetlight","classified_at":"2026-01-05 09:20"}"#,
        r#"{"external_id":"J-2","channel":"hotline","received_at":"#,
        "",
        r#"{"external_id":"J-3","channel":"hotline","received_at":"2026-01-05 10:00","street":"jd-01","community":"sq-0101","grid":"wg-010101","text":"x","urgency":"soon","accepted_at":"2026-01-05 10:01","catalogue_item":"um-streetlight","classified_at":"2026-01-05 10:02"}"#,
        r#"{"external_id":"J-4","channel":"fax","received_at":"2026-01-05 10:00","street":"jd-01","community":"sq-0101","grid":"wg-010101","text":"x"}"#,
    ];
    std::fs::write(&path, lines.join("\n")).expect("write");
    let path_str = path.to_str().expect("utf-8 path");
    let report_path = dir.path().join("report.json");

    let (code, _, _) = run_cli(&data, &["import", path_str, "--dry-run"]);
    assert_eq!(code, 3);
    let (_, stdout, _) = run_cli(&data, &["verify", "--all"]);
    assert!(
        stdout.contains(" 0 records"),
        "a dry run writes nothing: {stdout}"
    );

    let (code, stdout, stderr) = run_cli(
        &data,
        &[
            "import",
            path_str,
            "--report",
            report_path.to_str().expect("path"),
        ],
    );
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(stderr.contains("line 2: "), "{stderr}");
    assert!(stderr.contains("line 4: field urgency: "), "{stderr}");
    assert!(stderr.contains("line 5: field channel: "), "{stderr}");
    assert!(stdout.contains("1 imported"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).expect("report")).expect("json");
    assert_eq!(report["imported"], 1);
    assert_eq!(report["bad"], 3);
    let lines: Vec<u64> = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, [2, 4, 5]);
    assert_eq!(report["errors"][0]["code"], "malformed_line");

    // The good row alone: exit 0, already imported.
    std::fs::write(&path, lines_of_first()).expect("write");
    let (code, stdout, _) = run_cli(&data, &["import", path_str]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("1 already imported"), "{stdout}");
    let (code, stdout, _) = run_cli(&data, &["verify", "--all"]);
    assert_eq!(code, 0, "{stdout}");
}

fn lines_of_first() -> String {
    r#"{"external_id":"J-1","channel":"hotline","received_at":"2026-01-05 09:00","street":"jd-01","community":"sq-0101","grid":"wg-010101","text":"路灯坏了","accepted_at":"2026-01-05 09:10","catalogue_item":"um-streetlight","classified_at":"2026-01-05 09:20"}"#.to_string() + "\n"
}

/// The example files shipped in `deploy/import/` import cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_files_import() {
    let stores = Stores::open(Store::Sqlite).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/import");
    for name in ["example.csv", "example.jsonl"] {
        let report = stores
            .importer()
            .run(&ImportOptions::new(root.join(name)), None)
            .await
            .expect("runs");
        assert_eq!(
            (report.rows, report.imported, report.bad),
            (5, 5, 0),
            "{name}: {report:#?}"
        );
    }
    stores.close().await;
}

/// `bianmin import` next to a running `bianmin serve` on the same stores (the embedded SQLite
/// files, then a JetStream stream): the engine's own projectors pick the imported commits up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_next_to_a_running_engine() {
    use tests::faults::{Api, ServeOptions, ServeProcess, wait_projections_caught_up};
    for nats in [false, true] {
        let stream = format!("IMPSERVE_{}", uuid::Uuid::now_v7().simple()).to_uppercase();
        let env: Vec<(String, String)> = if nats {
            vec![
                ("BIANMIN_NATS__STREAM".into(), stream.clone()),
                ("BIANMIN_NATS__SUBJECT_PREFIX".into(), stream.to_lowercase()),
            ]
        } else {
            Vec::new()
        };
        let nats_url = tests::nats::shared_nats_url();
        let engine = ServeProcess::start(ServeOptions {
            nats_url: nats.then(|| nats_url.clone()),
            env: env.clone(),
            extra_toml: "[projections]\nenabled = true\n".into(),
            ..ServeOptions::default()
        })
        .await;
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/import/example.csv");
        let mut command = Command::new(bianmin_binary());
        command.arg("--data-dir").arg(engine.data_dir());
        if nats {
            command.arg("--nats-url").arg(&nats_url);
        }
        let output = command
            .envs(env)
            .env("RUST_LOG", "warn")
            .arg("import")
            .arg(&example)
            .output()
            .expect("bianmin import runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "nats {nats}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("5 imported"), "{stdout}");
        let api = Api::new(engine.url());
        wait_projections_caught_up(&api, Duration::from_secs(60)).await;
        let projections = Projections::connect(&engine.projections_url())
            .await
            .expect("the engine's projections");
        let page = projections
            .requests(&ListQuery {
                list: RequestList::All,
                filter: Filter::default(),
                since_position: None,
                limit: 100,
                cursor: None,
                now: tests::app::start_time(),
            })
            .await
            .expect("the request list");
        let ids: std::collections::BTreeSet<String> =
            page.items.iter().map(|s| s.request_id.clone()).collect();
        for ticket in [
            "12345-2025-000101",
            "12345-2025-000102",
            "12345-2025-000140",
        ] {
            assert!(
                ids.contains(
                    &tests::instance_intake_ids(&engine.data_dir())
                        .request_id(Channel::Hotline, ticket)
                        .to_string()
                ),
                "nats {nats}: {ticket}"
            );
        }
        assert_eq!(ids.len(), 5, "nats {nats}");
        drop(engine);
        if nats {
            tests::nats::delete_stream(&tests::nats::shared_nats().await, &stream).await;
        }
    }
}
