//! Auditors' tools against real stores: hash-chain verification on a clean randomized run and
//! after tampering behind the engine's back (an SQLite row edited with sqlx; a forged commit
//! published to a JetStream request subject by a rogue client), daily digests recomputed and
//! published over NATS, history/as-of states against incremental states, and a month-slice
//! replay against the rates the live projection showed at the end of that month.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use chrono::{TimeZone, Utc};
use engine_core::{Clock, ManualClock, Policy, Request};
use engine_log::{EventLog, JetStreamConfig};
use engine_service::audit::digest::{self, DigestConfig};
use engine_service::audit::replay::{self, ReplaySpec};
use engine_service::audit::timeline::{history_with_states, render, state_as_of};
use engine_service::audit::{anchor, as_of, verify};
use engine_service::commands::{CommandRequest, CommandService};
use engine_service::contacts::ContactStore;
use engine_service::metrics::Metrics;
use futures::StreamExt;
use projections::Projections;
use projections::query::{Filter, Period, StatsQuery};
use schemas::envelope::hash_of_raw;
use schemas::{Actor, Command, EventEnvelope, LoggedCommit, RequestId, Role, Timestamp};
use serde_json::{Value, json};
use uuid::Uuid;

/// A grid and catalogue item the test policy knows.
const STREET: &str = "jd-01";
const COMMUNITY: &str = "sq-0101";
const GRID: &str = "wg-010101";
const ITEM: &str = "um-streetlight";

/// A command service over a fresh log with a manual clock.
pub(crate) struct Rig {
    pub service: CommandService,
    pub clock: Arc<ManualClock>,
    pub db_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

pub(crate) fn unique() -> String {
    Uuid::now_v7().simple().to_string()
}

pub(crate) async fn nats() -> async_nats::Client {
    let url = std::env::var("BIANMIN_TEST_NATS_URL").unwrap_or_else(|_| "127.0.0.1:4222".into());
    async_nats::connect(url)
        .await
        .expect("the shared nats-server runs on 127.0.0.1:4222")
}

impl Rig {
    pub(crate) async fn sqlite(start: Timestamp) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("events.db");
        let log = EventLog::open_sqlite(&db_path).await.expect("sqlite log");
        Rig::over(log, start, dir, db_path).await
    }

    async fn jetstream(
        client: async_nats::Client,
        stream: &str,
        prefix: &str,
        start: Timestamp,
    ) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = JetStreamConfig {
            names: schemas::Names::new(prefix, stream).expect("valid names"),
            ..JetStreamConfig::default()
        };
        let log = EventLog::connect_jetstream(client, cfg)
            .await
            .expect("jetstream log");
        let path = dir.path().join("unused");
        Rig::over(log, start, dir, path).await
    }

    async fn over(
        log: EventLog,
        start: Timestamp,
        dir: tempfile::TempDir,
        db_path: std::path::PathBuf,
    ) -> Rig {
        let clock = Arc::new(ManualClock::new(start));
        let contacts = ContactStore::in_memory(clock.clone())
            .await
            .expect("contact store");
        let service = CommandService::new(
            log,
            Arc::new(Policy::for_tests()),
            clock.clone(),
            contacts,
            Metrics::new(),
            tests::test_intake_ids(),
        );
        Rig {
            service,
            clock,
            db_path,
            _dir: dir,
        }
    }

    pub(crate) fn log(&self) -> &EventLog {
        self.service.log()
    }

    /// A new request received now; returns its id.
    pub(crate) async fn receive(&self, external_id: &str) -> RequestId {
        let document = serde_json::from_value(json!({
            "channel": "hotline",
            "external_id": external_id,
            "contact": {"name": "王芳", "phone": "13800000000"},
            "location": {"street": STREET, "community": COMMUNITY, "grid": GRID},
            "text": "小区门口路灯不亮已经一周",
        }))
        .expect("intake document");
        let who = actor("hotline-gateway", Role::IntakeSystem, None);
        self.service
            .intake(document, who)
            .await
            .expect("intake")
            .request_id
    }

    /// Runs a command now; `Ok(true)` when recorded, `Ok(false)` when refused.
    pub(crate) async fn run(&self, id: RequestId, who: Actor, command: Value) -> bool {
        let command: Command = serde_json::from_value(command).expect("a valid command");
        self.service
            .execute(CommandRequest {
                request_id: id,
                command_id: Uuid::now_v7(),
                correlation_id: None,
                actor: who,
                command,
            })
            .await
            .is_ok()
    }

    pub(crate) async fn events(&self, id: RequestId) -> Vec<EventEnvelope> {
        as_of::events(self.log(), id).await.expect("events")
    }
}

pub(crate) fn actor(id: &str, role: Role, unit: Option<&str>) -> Actor {
    Actor {
        id: id.into(),
        role,
        unit: unit.map(str::to_string),
    }
}

pub(crate) fn supervisor() -> Actor {
    actor("sup-1", Role::Supervisor, Some(COMMUNITY))
}

/// A small deterministic generator (xorshift), so failures reproduce from the seed.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub(crate) fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// The steps a request may go through, in order (a random prefix of them is run, with random
/// skips and random outcomes).
fn script(rng: &mut Rng) -> Vec<Value> {
    let mut steps = vec![
        json!({"action": "accept", "note": "首问负责"}),
        json!({"action": "classify", "catalogue_item": ITEM, "request_type": "help"}),
        json!({"action": "handle_directly"}),
        json!({"action": "contact_resident", "method": "phone"}),
    ];
    if rng.chance(50) {
        steps.push(json!({"action": "note_progress", "note": "已联系供电所"}));
    }
    if rng.chance(30) {
        steps
            .push(json!({"action": "report_upward", "level": "district", "summary": "需区级协调"}));
    }
    steps.push(json!({"action": "start_handling"}));
    let outcome = if rng.chance(80) {
        "resolved"
    } else {
        "partially_resolved"
    };
    steps.push(json!({"action": "reply", "outcome": outcome, "content": "路灯已修复"}));
    steps.push(json!({"action": "review_reply", "approved": true}));
    steps.push(json!({"action": "record_callback", "reached": true}));
    let satisfaction = ["satisfied", "basically_satisfied", "dissatisfied"][rng.below(3) as usize];
    let resolution = if satisfaction == "dissatisfied" {
        "unresolved"
    } else {
        "resolved"
    };
    steps.push(json!({"action": "rate", "satisfaction": satisfaction, "resolution": resolution, "comment": "谢谢"}));
    steps.push(json!({"action": "archive"}));
    let keep = 1 + rng.below(steps.len() as u64) as usize;
    steps.truncate(keep.max(if rng.chance(60) { steps.len() } else { 1 }));
    steps
}

/// Drives `n` requests received from `start` over `span`, their steps interleaved in time
/// order (minutes to days apart). Returns the request ids.
pub(crate) async fn randomized_run(
    rig: &Rig,
    seed: u64,
    n: usize,
    start: Timestamp,
    span: chrono::Duration,
) -> Vec<RequestId> {
    let mut rng = Rng(seed | 1);
    let mut schedule: Vec<(Timestamp, usize, usize)> = Vec::new();
    let mut scripts = Vec::new();
    for i in 0..n {
        let received =
            start + chrono::Duration::seconds(rng.below(span.num_seconds().max(1) as u64) as i64);
        let steps = script(&mut rng);
        schedule.push((received, i, 0));
        let mut at = received;
        for k in 1..=steps.len() {
            at += chrono::Duration::minutes(5 + rng.below(60 * 48) as i64);
            schedule.push((at, i, k));
        }
        scripts.push(steps);
    }
    schedule.sort();
    let mut ids = vec![Uuid::nil(); n];
    for (at, i, k) in schedule {
        rig.clock.set(at);
        if k == 0 {
            ids[i] = rig.receive(&format!("R-{seed}-{i}")).await;
        } else {
            let _ = rig
                .run(ids[i], supervisor(), scripts[i][k - 1].clone())
                .await;
        }
    }
    // A correction on some rated requests: the history shows both.
    for id in ids.iter().take(n / 3) {
        let events = rig.events(*id).await;
        if let Some(rated) = events.iter().find(|e| e.event.kind().as_str() == "rated") {
            let _ = rig
                .run(
                    *id,
                    supervisor(),
                    json!({"action": "correct", "event_id": rated.event_id, "reason": "录入错误"}),
                )
                .await;
        }
    }
    ids
}

/// Every commit in the log.
pub(crate) async fn all_commits(log: &EventLog) -> Vec<LoggedCommit> {
    let mut out = Vec::new();
    loop {
        let batch = log
            .read_from(out.last().map_or(1, |c: &LoggedCommit| c.position + 1), 500)
            .await
            .expect("read");
        let done = batch.len() < 500;
        out.extend(batch);
        if done {
            return out;
        }
    }
}

fn march(day: u32, hour: u32) -> Timestamp {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0)
        .single()
        .expect("instant")
}

/// Edits one stored SQLite row behind the log's back.
async fn edit_sqlite_row(path: &std::path::Path, position: u64, edit: impl Fn(&mut Value)) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open sqlite");
    let payload: Vec<u8> = sqlx::query_scalar("SELECT payload FROM commits WHERE position = ?")
        .bind(position as i64)
        .fetch_one(&pool)
        .await
        .expect("row");
    let mut value: Value = serde_json::from_slice(&payload).expect("json");
    edit(&mut value);
    sqlx::query("UPDATE commits SET payload = ? WHERE position = ?")
        .bind(serde_json::to_vec(&value).expect("json"))
        .bind(position as i64)
        .execute(&pool)
        .await
        .expect("update");
    pool.close().await;
}

#[tokio::test]
async fn verify_holds_on_a_clean_run_and_catches_edited_sqlite_rows() {
    let rig = Rig::sqlite(march(2, 1)).await;
    let ids = randomized_run(&rig, 11, 12, march(2, 1), chrono::Duration::days(5)).await;
    let commits = all_commits(rig.log()).await;
    let n_events: u64 = commits.iter().map(|c| c.commit.events.len() as u64).sum();

    let clean = verify::verify_all(rig.log(), None).await.expect("verify");
    assert!(clean.ok(), "{:?}", clean.broken);
    assert_eq!(clean.events_verified, n_events);
    assert_eq!(clean.requests, ids.len());

    // Edit the text of a mid-history event of one request (a commit that is not its last).
    let victim = ids
        .iter()
        .copied()
        .find(|id| {
            commits
                .iter()
                .filter(|c| c.commit.request_id == *id)
                .count()
                >= 3
        })
        .expect("a long request");
    let target = commits
        .iter()
        .filter(|c| c.commit.request_id == victim)
        .nth(1)
        .expect("second commit")
        .clone();
    let version = target.commit.events[0].version;
    edit_sqlite_row(&rig.db_path, target.position, |v| {
        v["events"][0]["occurred_at"] = json!("2026-01-01T00:00:00Z");
    })
    .await;
    let report = verify::verify_request(rig.log(), victim)
        .await
        .expect("verify");
    let broken = report.broken.expect("the edit is caught");
    assert_eq!(
        (broken.position, broken.version),
        (target.position, Some(version)),
        "{broken:?}"
    );
    assert_eq!(broken.event_id, Some(target.commit.events[0].event_id));
    let all = verify::verify_all(rig.log(), None)
        .await
        .expect("verify all");
    assert_eq!(all.broken.len(), 1, "{:?}", all.broken);
    assert_eq!(all.broken[0].request_id, victim);

    // A careful forger also recomputes the edited event's hash: the next link breaks.
    edit_sqlite_row(&rig.db_path, target.position, |v| {
        let rehash = hash_of_raw(&v["events"][0]);
        v["events"][0]["hash"] = json!(rehash);
    })
    .await;
    let broken = verify::verify_request(rig.log(), victim)
        .await
        .expect("verify")
        .broken
        .expect("caught");
    assert_eq!(broken.version, Some(version + 1), "{broken:?}");
    assert!(broken.what.contains("prev_hash"), "{broken:?}");
    let next_position = commits
        .iter()
        .find(|c| {
            c.commit
                .events
                .iter()
                .any(|e| e.request_id == victim && e.version == version + 1)
        })
        .expect("next event")
        .position;
    assert_eq!(broken.position, next_position);
}

#[tokio::test]
async fn verify_catches_a_forged_commit_on_jetstream() {
    let client = nats().await;
    let id = unique();
    let (stream, prefix) = (format!("TAUD_{id}"), format!("taud{id}"));
    let rig = Rig::jetstream(client.clone(), &stream, &prefix, march(2, 1)).await;
    let ids = randomized_run(&rig, 23, 4, march(2, 1), chrono::Duration::days(2)).await;
    let clean = verify::verify_all(rig.log(), None).await.expect("verify");
    assert!(clean.ok(), "{:?}", clean.broken);

    // A rogue client rewrites history: it publishes a new version of the request's first
    // accepted event (sealed properly, chained to the genesis event) as the next message on
    // the request's subject, with the right expected sequence so JetStream takes it.
    let victim = ids[0];
    let raw = rig.log().load_raw(victim).await.expect("raw");
    let last_position = raw.last().expect("records").0;
    let mut forged: Value = serde_json::from_slice(&raw[1].1).expect("json");
    forged["commit_id"] = json!(Uuid::now_v7());
    forged["events"][0]["actor"]["id"] = json!("someone-else");
    let rehash = hash_of_raw(&forged["events"][0]);
    forged["events"][0]["hash"] = json!(rehash);
    let mut headers = HeaderMap::new();
    headers.insert(
        "Nats-Expected-Last-Subject-Sequence",
        last_position.to_string().as_str(),
    );
    let js = async_nats::jetstream::new(client.clone());
    let ack = js
        .publish_with_headers(
            format!("{prefix}.events.{victim}"),
            headers,
            serde_json::to_vec(&forged).expect("json").into(),
        )
        .await
        .expect("publish")
        .await
        .expect("JetStream stores the forgery");

    let report = verify::verify_request(rig.log(), victim)
        .await
        .expect("verify");
    let broken = report.broken.expect("the forgery is caught");
    assert_eq!(broken.position, ack.sequence);
    assert!(broken.what.contains("version"), "{broken:?}");
    let all = verify::verify_all(rig.log(), None)
        .await
        .expect("verify all");
    assert_eq!(
        all.broken
            .iter()
            .map(|b| (b.request_id, b.position))
            .collect::<Vec<_>>(),
        vec![(victim, ack.sequence)]
    );
    let _ = js.delete_stream(&stream).await;
}

#[tokio::test]
async fn daily_digests_are_recorded_once_published_and_recomputable() {
    let client = nats().await;
    let prefix = format!("tdig{}", unique());
    let outside = tempfile::tempdir().expect("a directory outside the data directory");
    let anchor_file = outside.path().join("digests.jsonl");
    let cfg = DigestConfig {
        names: schemas::Names::for_prefix(&prefix).expect("valid names"),
        grace_secs: 60,
        poll_secs: 1,
        anchor_file: Some(anchor_file.clone()),
    };
    let mut published = client
        .subscribe(format!("{prefix}.audit.digest.>"))
        .await
        .expect("subscribe");
    client.flush().await.expect("flush");

    let rig = Rig::sqlite(march(2, 1)).await;
    randomized_run(&rig, 5, 8, march(2, 1), chrono::Duration::days(3)).await;
    let last_day = digest::day_of(rig.clock.now());
    let first_day = digest::day_of(march(2, 1));

    // Nothing is closed while the first day is still running.
    let none = digest::record_closed_days(rig.log(), Some(&client), &cfg, march(2, 2))
        .await
        .expect("digest");
    assert!(none.is_empty(), "{none:?}");

    let now = digest::end_of(last_day) + chrono::Duration::seconds(61);
    let written = digest::record_closed_days(rig.log(), Some(&client), &cfg, now)
        .await
        .expect("digest");
    let expected_days = (last_day - first_day).num_days() as usize + 1;
    assert_eq!(written.len(), expected_days);
    let commits = all_commits(rig.log()).await;
    let request_events: u64 = commits
        .iter()
        .filter(|c| c.commit.request_id != schemas::envelope::digest_stream_id())
        .map(|c| c.commit.events.len() as u64)
        .sum();
    assert_eq!(
        written.iter().map(|d| d.n_events).sum::<u64>(),
        request_events
    );
    for pair in written.windows(2) {
        assert_eq!(pair[1].prev_root, pair[0].merkle_root);
    }
    // Each day's root is the Merkle root of that day's event hashes, in log order.
    for d in &written {
        let day = digest::parse_day(&d.day).expect("day");
        let hashes: Vec<String> = commits
            .iter()
            .filter(|c| c.commit.request_id != schemas::envelope::digest_stream_id())
            .filter(|c| digest::day_of(c.commit.events[0].recorded_at) == day)
            .flat_map(|c| c.commit.events.iter().map(|e| e.hash.clone()))
            .collect();
        assert_eq!(d.merkle_root, digest::merkle_root(&hashes), "day {}", d.day);
    }

    // Recorded once: a second call (or a second engine) adds nothing.
    let again = digest::record_closed_days(rig.log(), Some(&client), &cfg, now)
        .await
        .expect("digest");
    assert!(again.is_empty());
    let checks = digest::verify_digests(rig.log())
        .await
        .expect("verify digests");
    assert_eq!(checks.len(), expected_days);
    assert!(checks.iter().all(|c| c.ok()), "{checks:?}");
    // Anchored outside too, once per day, and the log matches every anchor.
    let anchored = anchor::check(rig.log(), &anchor_file)
        .await
        .expect("anchors");
    assert_eq!(anchored.len(), expected_days, "{anchored:?}");
    assert!(anchored.iter().all(|c| c.problem.is_none()), "{anchored:?}");

    // Published: one message per day, with the day's commit id as message id.
    let mut seen = Vec::new();
    while seen.len() < expected_days {
        let message = tokio::time::timeout(Duration::from_secs(5), published.next())
            .await
            .expect("a digest message within 5 s")
            .expect("subscription open");
        let body: schemas::event::DailyDigestRecorded =
            serde_json::from_slice(&message.payload).expect("digest json");
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.as_str().to_string());
        assert_eq!(
            id,
            Some(digest::digest_commit_id(digest::parse_day(&body.day).expect("day")).to_string())
        );
        seen.push(body);
    }
    assert_eq!(seen, written);

    // A rehashed edit of a stored event (which keeps its own chain link consistent) changes
    // that day's recomputed root.
    let target = commits
        .iter()
        .find(|c| c.commit.request_id != schemas::envelope::digest_stream_id())
        .expect("commit");
    edit_sqlite_row(&rig.db_path, target.position, |v| {
        v["events"][0]["actor"]["id"] = json!("forged");
        let rehash = hash_of_raw(&v["events"][0]);
        v["events"][0]["hash"] = json!(rehash);
    })
    .await;
    let checks = digest::verify_digests(rig.log())
        .await
        .expect("verify digests");
    let bad: Vec<_> = checks
        .iter()
        .filter(|c| !c.ok())
        .map(|c| c.recorded.day.clone())
        .collect();
    assert_eq!(bad, vec![first_day.format("%Y-%m-%d").to_string()]);

    // The rewrite goes on to the log's own digest record of that day, so the digests in the
    // log agree with it again: only the anchor outside the data directory still knows.
    let day = first_day.format("%Y-%m-%d").to_string();
    let new_root = checks[0].recomputed.merkle_root.clone();
    let digest_record = all_commits(rig.log())
        .await
        .into_iter()
        .find(|c| {
            c.commit.request_id == schemas::envelope::digest_stream_id()
                && matches!(&c.commit.events[0].event,
                    schemas::Event::DailyDigestRecorded(d) if d.day == day)
        })
        .expect("the day's digest record");
    edit_sqlite_row(&rig.db_path, digest_record.position, |v| {
        v["events"][0]["data"]["merkle_root"] = json!(new_root);
        let rehash = hash_of_raw(&v["events"][0]);
        v["events"][0]["hash"] = json!(rehash);
    })
    .await;
    let in_log = digest::verify_digests(rig.log())
        .await
        .expect("verify digests");
    assert!(
        in_log[0].ok(),
        "the rewritten log agrees with itself: {:?}",
        in_log[0]
    );
    let anchored = anchor::check(rig.log(), &anchor_file)
        .await
        .expect("anchors");
    let broken: Vec<&str> = anchored
        .iter()
        .filter(|c| c.problem.is_some())
        .map(|c| c.day.as_str())
        .collect();
    assert_eq!(broken, [day.as_str()], "{anchored:?}");
}

#[tokio::test]
async fn history_and_as_of_states_agree_with_incremental_states() {
    for seed in [3u64, 77, 1234] {
        let rig = Rig::sqlite(march(2, 1)).await;
        let ids = randomized_run(&rig, seed, 6, march(2, 1), chrono::Duration::days(2)).await;
        for id in ids {
            let events = rig.events(id).await;
            let steps = history_with_states(&events);
            assert_eq!(steps.len(), events.len());
            // Incremental fold vs rebuild from scratch at every version and every instant.
            let mut incremental = Request::new(id);
            for (k, step) in steps.iter().enumerate() {
                incremental.apply(&step.envelope);
                assert_eq!(step.state_after, incremental, "seed {seed} step {k}");
                assert_eq!(
                    state_as_of(id, &events, None, Some(k as u64 + 1)),
                    incremental
                );
                let at = step.envelope.recorded_at;
                let through = events.iter().filter(|e| e.recorded_at <= at).count();
                assert_eq!(
                    state_as_of(id, &events, Some(at), None),
                    steps[through - 1].state_after,
                    "seed {seed} as of {at}"
                );
                let just_before = at - chrono::Duration::milliseconds(1);
                let before = events
                    .iter()
                    .filter(|e| e.recorded_at <= just_before)
                    .count();
                let expected = if before == 0 {
                    Request::new(id)
                } else {
                    steps[before - 1].state_after.clone()
                };
                assert_eq!(state_as_of(id, &events, Some(just_before), None), expected);
            }
            // The last step is the request the command service loads.
            let loaded = rig.service.load(id).await.expect("load");
            assert_eq!(steps.last().expect("a step").state_after, loaded);
            // Corrections show on the corrected event.
            for step in &steps {
                if let schemas::Event::EventCorrected(c) = &step.envelope.event {
                    let corrected = steps
                        .iter()
                        .find(|s| s.envelope.event_id == c.event_id)
                        .expect("corrected event");
                    assert_eq!(corrected.corrected_by, Some(step.envelope.event_id));
                }
            }
            let text = render(&steps);
            assert!(
                !text.contains("13800000000") && !text.contains("王芳"),
                "contact data printed:\n{text}"
            );
            for e in &events {
                assert!(
                    text.contains(e.event.kind().as_str()),
                    "{} missing:\n{text}",
                    e.event.kind().as_str()
                );
            }
            let via_log = as_of::history(rig.log(), id)
                .await
                .expect("history")
                .expect("exists");
            assert_eq!(via_log.len(), steps.len());
        }
        assert!(
            as_of::history(rig.log(), Uuid::now_v7())
                .await
                .expect("history")
                .is_none()
        );
    }
}

/// Rates of one month as a projection shows them at `now`.
async fn month_rates(
    p: &Projections,
    month: &str,
    now: Timestamp,
) -> Vec<projections::query::RateRow> {
    p.stats(&StatsQuery {
        period: Period::Month,
        group_by: vec![],
        filter: Filter {
            from: Some(month.into()),
            to: Some(month.into()),
            ..Filter::default()
        },
        now,
    })
    .await
    .expect("stats")
}

#[tokio::test]
async fn a_month_slice_replay_reproduces_the_live_rates_at_month_end() {
    let start = Utc
        .with_ymd_and_hms(2026, 2, 20, 1, 0, 0)
        .single()
        .expect("instant");
    let rig = Rig::sqlite(start).await;
    randomized_run(&rig, 99, 30, start, chrono::Duration::days(45)).await;
    let from = Utc
        .with_ymd_and_hms(2026, 2, 28, 16, 0, 0)
        .single()
        .expect("1 March, Beijing");
    let to = Utc
        .with_ymd_and_hms(2026, 3, 31, 16, 0, 0)
        .single()
        .expect("1 April, Beijing");
    let commits = all_commits(rig.log()).await;
    assert!(
        commits.iter().any(|c| c.commit.events[0].recorded_at >= to),
        "the run goes past the month"
    );

    // The live projection at the moment the month ended: every commit recorded before it.
    let dir = tempfile::tempdir().expect("dir");
    let live = Projections::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("live.db").display()
    ))
    .await
    .expect("live projections");
    let until_then: Vec<LoggedCommit> = commits
        .iter()
        .filter(|c| c.commit.events[0].recorded_at < to)
        .cloned()
        .collect();
    for name in Projections::projector_names() {
        live.apply(name, &until_then).await.expect("apply");
    }
    let live_rates = month_rates(&live, "2026-03", to).await;
    assert_eq!(live_rates.len(), 1, "{live_rates:?}");
    assert!(
        live_rates[0].counts.received > 0 && live_rates[0].counts.completed > 0,
        "{live_rates:?}"
    );

    let spec = ReplaySpec {
        from,
        to,
        filter: vec![],
        period: Period::Month,
        group_by: vec![],
    };
    let report = replay::replay(rig.log(), &spec, None, None)
        .await
        .expect("replay on sqlite");
    assert_eq!(report.rates, live_rates);
    assert_eq!(report.requests as i64, live_rates[0].counts.received);

    let pg = std::env::var("BIANMIN_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let on_pg = replay::replay(rig.log(), &spec, Some(&pg), None)
        .await
        .expect("replay on a postgres scratch schema");
    assert_eq!(on_pg.rates, live_rates);

    // Filters narrow the same way on both sides.
    let spec = ReplaySpec {
        filter: replay::parse_filter(&format!("community={COMMUNITY}")).expect("filter"),
        ..spec
    };
    assert_eq!(
        replay::replay(rig.log(), &spec, None, None)
            .await
            .expect("replay")
            .rates,
        live_rates
    );
    let spec = ReplaySpec {
        filter: replay::parse_filter("community=nowhere").expect("filter"),
        ..spec
    };
    assert!(
        replay::replay(rig.log(), &spec, None, None)
            .await
            .expect("replay")
            .rates
            .is_empty()
    );
}

#[tokio::test]
async fn reference_data_is_recorded_only_when_it_changes_and_chains() {
    use engine_service::audit::reference::{self, Attribution, ReferenceItem};
    use schemas::event::ReferenceKind;

    let rig = Rig::sqlite(march(2, 1)).await;
    let admin = Attribution::operator("ops-1", "the 2026 limits");
    let item = |kind, version: &str, content: &str| ReferenceItem {
        kind,
        version: version.into(),
        content: content.as_bytes().to_vec(),
        source: "builtin".into(),
    };
    let first = vec![
        item(
            ReferenceKind::PolicyProfile,
            "community-station@2026.1",
            "limits v1\nreply within 5 days\n",
        ),
        item(ReferenceKind::Calendar, "cn-2026", "holidays"),
        item(ReferenceKind::RoleGrants, "grants", "token-hash-abc"),
    ];
    let t1 = march(2, 1);
    assert_eq!(
        reference::record(rig.log(), &first, &admin, t1)
            .await
            .expect("record")
            .len(),
        3
    );
    // A restart with the same data records nothing.
    assert!(
        reference::record(rig.log(), &first, &admin, march(2, 2))
            .await
            .expect("record")
            .is_empty()
    );
    // A new policy version, by another operator with another reason: only that one, with
    // its content and the diff from the last.
    let t3 = march(3, 1);
    let v2 = "limits v2\nreply within 3 days\n";
    let second = vec![
        item(ReferenceKind::PolicyProfile, "community-station@2026.2", v2),
        item(ReferenceKind::Calendar, "cn-2026", "holidays"),
        item(ReferenceKind::RoleGrants, "grants", "token-hash-abc"),
    ];
    let shorter = Attribution::operator("ops-2", "council decision 2026-7: three days");
    let changed = reference::record(rig.log(), &second, &shorter, t3)
        .await
        .expect("record");
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].sha256, reference::sha256_hex(v2.as_bytes()));

    let history = reference::history(rig.log()).await.expect("history");
    assert_eq!(history.len(), 4);
    assert!(
        history[..3]
            .iter()
            .all(|r| r.actor == admin.actor
                && r.recorded.reason.as_deref() == Some("the 2026 limits"))
    );
    let last = &history[3];
    assert_eq!(last.actor.id, "ops-2");
    assert_eq!(last.recorded.reason, shorter.reason);
    assert_eq!(last.recorded.content.as_deref(), Some(v2));
    let diff = last.recorded.diff.as_deref().expect("a diff");
    assert!(
        diff.contains("-reply within 5 days") && diff.contains("+reply within 3 days"),
        "{diff}"
    );
    assert!(diff.contains("community-station@2026.1") && diff.contains("community-station@2026.2"));
    assert!(
        history[0].recorded.diff.is_none(),
        "nothing before the first"
    );
    // Credential hashes are never kept: neither content nor diff, on the event or the stream.
    let grants = history
        .iter()
        .find(|r| r.recorded.kind == ReferenceKind::RoleGrants)
        .unwrap();
    assert!(grants.recorded.content.is_none() && grants.recorded.diff.is_none());
    for commit in rig
        .log()
        .load(schemas::envelope::reference_data_stream_id())
        .await
        .unwrap()
    {
        let bytes = serde_json::to_string(&commit.commit).unwrap();
        assert!(!bytes.contains("token-hash-abc"), "{bytes}");
    }
    let at = |t| {
        reference::in_force(&history, ReferenceKind::PolicyProfile, t)
            .map(|r| r.recorded.version.clone())
    };
    assert_eq!(
        at(march(2, 12)),
        Some("community-station@2026.1".to_string())
    );
    assert_eq!(
        at(march(3, 2)),
        Some("community-station@2026.2".to_string())
    );
    assert_eq!(at(march(1, 1)), None);
    let chain = verify::verify_request(rig.log(), schemas::envelope::reference_data_stream_id())
        .await
        .expect("verify");
    assert!(chain.ok() && chain.events_verified == 4, "{chain:?}");
}
