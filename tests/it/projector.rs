//! The projectors inside the engine, on the embedded SQLite projections (SQLite log) and on
//! real PostgreSQL (JetStream log): a lifecycle over HTTP reaches the read API and the gauges,
//! roles see what the read rule allows, a rebuild while serving leaves exactly what a fresh
//! projection of the log holds, and a restarted projector resumes from its checkpoint.

use std::time::{Duration, Instant};

use engine_log::EventLog;
use engine_service::projector;
use projections::Projections;
use serde_json::{Value, json};
use tests::app::{
    Store, TestApp, actors, external_id, intake_document, spawn_app_with_projections,
};
use tests::pg::TestDb;

/// A far-future `now` at which every open request is overdue.
const LATER: &str = "2026-06-01T00:00:00Z";

/// Where the projections live for one test.
enum Db {
    /// SQLite in the app's data directory (the default).
    Embedded,
    /// A fresh PostgreSQL database.
    Pg(TestDb),
}

impl Db {
    async fn open(pg: bool) -> Db {
        if pg {
            Db::Pg(TestDb::create().await.expect("create test database"))
        } else {
            Db::Embedded
        }
    }

    fn url(&self) -> Option<String> {
        match self {
            Db::Embedded => None,
            Db::Pg(db) => Some(db.url.clone()),
        }
    }

    async fn close(self) {
        if let Db::Pg(db) = self {
            db.drop_db().await;
        }
    }
}

/// SQLite log + embedded projections, or JetStream log + PostgreSQL projections.
async fn spawn(pg: bool) -> (TestApp, Db) {
    let db = Db::open(pg).await;
    let store = if pg { Store::Nats } else { Store::Sqlite };
    (spawn_app_with_projections(store, db.url()).await, db)
}

macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                tokio::time::timeout(std::time::Duration::from_secs(120), super::$name(false))
                    .await
                    .expect("test timed out");
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                tokio::time::timeout(std::time::Duration::from_secs(120), super::$name(true))
                    .await
                    .expect("test timed out");
            }
        }
    };
}

/// A second handle on the app's projections database.
async fn projections_of(app: &TestApp) -> Projections {
    Projections::connect(&app.config.projections_url())
        .await
        .expect("projections database opens")
}

/// Polls `/api/v1/health/projections` until every projector's checkpoint is the log head.
async fn wait_caught_up(app: &TestApp) -> Value {
    let head = app
        .command_service
        .log()
        .last_position()
        .await
        .expect("head");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get_json(app, "/api/v1/health/projections", actors::AUDITOR).await;
        if status == 200 {
            let projectors = body["projectors"].as_array().expect("projectors").clone();
            assert_eq!(projectors.len(), Projections::projector_names().len());
            if projectors
                .iter()
                .all(|p| p["checkpoint"] == head && p["lag_events"] == 0)
            {
                return body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "projectors did not reach head {head}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Takes a request through intake, acceptance, classification and referral; returns its id.
async fn open_request(app: &TestApp) -> String {
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id").to_string();
    for (action, actor, body) in [
        ("accept", actors::STATION, json!({})),
        (
            "classify",
            actors::STATION,
            json!({"catalogue_item": "um-street-vending", "request_type": "complaint"}),
        ),
        (
            "refer",
            actors::STATION,
            json!({"lead_department": "urban-management"}),
        ),
    ] {
        app.clock.advance(chrono::Duration::minutes(10));
        let (status, answer) = app.command(&id, action, actor, &body).await;
        assert_eq!(status, 200, "{action}: {answer}");
    }
    id
}

/// Takes an open request (from [`open_request`]) on to its archive.
async fn finish_request(app: &TestApp, id: &str) {
    for (action, actor, body) in [
        ("sign_for", actors::URBAN, json!({})),
        (
            "contact_resident",
            actors::URBAN,
            json!({"method": "phone"}),
        ),
        ("start_handling", actors::URBAN, json!({})),
        (
            "reply",
            actors::URBAN,
            json!({"outcome": "resolved", "content": "Vendors moved to the night market lot."}),
        ),
        (
            "review_reply",
            actors::SUPERVISOR,
            json!({"approved": true}),
        ),
        (
            "rate",
            actors::STATION,
            json!({"satisfaction": "satisfied", "resolution": "resolved"}),
        ),
        ("archive", actors::STATION, json!({})),
    ] {
        app.clock.advance(chrono::Duration::minutes(10));
        let (status, answer) = app.command(id, action, actor, &body).await;
        assert_eq!(status, 200, "{action}: {answer}");
    }
}

async fn get_json(app: &TestApp, path: &str, actor: &str) -> (u16, Value) {
    let response = app.get(path, actor).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sum of `received` over every stats row (as the dashboard).
async fn received_total(app: &TestApp) -> i64 {
    let (status, stats) = get_json(
        app,
        &format!("/api/v1/stats?period=month&now={LATER}"),
        actors::DASHBOARD,
    )
    .await;
    assert_eq!(status, 200, "{stats}");
    stats["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|row| row["counts"]["received"].as_i64().expect("received"))
        .sum()
}

/// Every table of every projector of `p`.
async fn snapshot(p: &Projections) -> Vec<(String, Vec<Vec<Option<String>>>)> {
    let mut all = Vec::new();
    for name in Projections::projector_names() {
        all.extend(p.snapshot(name).await.expect("snapshot"));
    }
    all
}

/// The whole log projected from scratch into a fresh database of the same kind.
async fn fresh_projection(
    log: &EventLog,
    pg: bool,
) -> (Vec<(String, Vec<Vec<Option<String>>>)>, Db) {
    let (url, db) = if pg {
        let db = TestDb::create().await.expect("scratch database");
        (db.url.clone(), Db::Pg(db))
    } else {
        ("sqlite::memory:".to_string(), Db::Embedded)
    };
    let scratch = Projections::connect(&url).await.expect("scratch opens");
    let mut from = 1;
    loop {
        let batch = log.read_from(from, 200).await.expect("log reads");
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        for name in Projections::projector_names() {
            scratch.apply(name, &batch).await.expect("scratch applies");
        }
    }
    (snapshot(&scratch).await, db)
}

async fn lifecycle_is_projected_and_served_by_role(pg: bool) {
    // Arrange: one request archived, one left open with the department.
    let (app, db) = spawn(pg).await;
    let done = open_request(&app).await;
    finish_request(&app, &done).await;
    let open = open_request(&app).await;

    // Act
    let health = wait_caught_up(&app).await;

    // Assert: health, stats, overdue.
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(received_total(&app).await, 2);
    let (status, overdue) = get_json(
        &app,
        &format!("/api/v1/overdue?now={LATER}"),
        actors::SUPERVISOR,
    )
    .await;
    assert_eq!(status, 200, "{overdue}");
    let ids: Vec<&str> = overdue["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["request_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, vec![open.as_str()], "only the open request is overdue");

    // Roles: the dashboard reads aggregates, not requests or lists.
    let (status, _) = get_json(&app, "/api/v1/rankings/departments", actors::DASHBOARD).await;
    assert_eq!(status, 200);
    for path in [
        format!("/api/v1/requests/{open}"),
        format!("/api/v1/requests/{open}/history"),
        format!("/api/v1/overdue?now={LATER}"),
        "/api/v1/requests".to_string(),
    ] {
        let (status, body) = get_json(&app, &path, actors::DASHBOARD).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["code"], "forbidden", "{path}");
    }
    // Unauthenticated reads are refused.
    let anonymous = app
        .client
        .get(format!("{}/api/v1/stats", app.address))
        .send()
        .await
        .expect("answers");
    assert_eq!(anonymous.status().as_u16(), 401);
    // The station worker reads its community's lists, not others'.
    let (status, body) = get_json(
        &app,
        &format!("/api/v1/overdue?community=sq-0101&now={LATER}"),
        actors::STATION,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().expect("items").len(), 1);
    let (status, _) = get_json(&app, "/api/v1/overdue?community=sq-0999", actors::STATION).await;
    assert_eq!(status, 403);
    // The department reads its own inbox, not another's.
    let (status, inbox) = get_json(
        &app,
        "/api/v1/worklists/departments/urban-management",
        actors::URBAN,
    )
    .await;
    assert_eq!(status, 200, "{inbox}");
    assert_eq!(inbox["items"][0]["request_id"], open.as_str());
    let (status, _) = get_json(
        &app,
        "/api/v1/worklists/departments/urban-management",
        actors::WATER,
    )
    .await;
    assert_eq!(status, 403);
    // The intake route on the same path still takes POSTs.
    let (status, _) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201);

    // Gauges on /metrics: the lag drops to 0 and the backlog counts the two open requests.
    wait_caught_up(&app).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = app
            .get("/metrics", actors::AUDITOR)
            .await
            .text()
            .await
            .expect("text");
        if text.contains("bianmin_projection_lag_events{projector=\"requests\"} 0")
            && text.contains("bianmin_projection_lag_events{projector=\"assessment\"} 0")
            && text.contains("bianmin_backlog_requests 2")
        {
            assert!(text.contains("bianmin_projection_lag_seconds{projector=\"requests\"}"));
            assert!(text.contains("bianmin_overdue_requests"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "gauges never showed the head:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // As-of reads and the history with states.
    let (status, v2) = get_json(
        &app,
        &format!("/api/v1/requests/{done}?version=2"),
        actors::AUDITOR,
    )
    .await;
    assert_eq!(status, 200, "{v2}");
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["stage"], "accepted");
    let history = app.history(&done).await;
    let at = history[2]["recorded_at"].as_str().expect("recorded_at");
    let (status, then) = get_json(
        &app,
        &format!("/api/v1/requests/{done}?as_of={at}"),
        actors::AUDITOR,
    )
    .await;
    assert_eq!(status, 200, "{then}");
    assert_eq!(then["version"], 3);
    let (status, bad) = get_json(
        &app,
        &format!("/api/v1/requests/{done}?version=two"),
        actors::AUDITOR,
    )
    .await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("malformed")));
    let (status, steps) = get_json(
        &app,
        &format!("/api/v1/requests/{done}/history?with_state=true"),
        actors::AUDITOR,
    )
    .await;
    assert_eq!(status, 200);
    let steps = steps.as_array().expect("steps");
    assert_eq!(steps.len(), history.len());
    assert_eq!(
        steps.last().expect("last")["state_after"]["stage"],
        "archived",
        "{:?}",
        steps.last()
    );

    app.teardown().await;
    db.close().await;
}
both!(lifecycle_is_projected_and_served_by_role);

async fn a_rebuild_while_serving_equals_a_fresh_projection(pg: bool) {
    // Arrange: a few requests projected live.
    let (app, db) = spawn(pg).await;
    for _ in 0..3 {
        let id = open_request(&app).await;
        finish_request(&app, &id).await;
    }
    wait_caught_up(&app).await;
    let live = projections_of(&app).await;
    let before = snapshot(&live).await;

    // Act: rebuild both projectors while commands and reads go on.
    let log = app.command_service.log().clone();
    let rebuilding = {
        let (live, log) = (live.clone(), log.clone());
        tokio::spawn(async move {
            let mut positions = Vec::new();
            for name in Projections::projector_names() {
                let calls = std::sync::atomic::AtomicU64::new(0);
                let position = projector::rebuild(&live, &log, name, 7, |done, head| {
                    assert!(done <= head);
                    calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                })
                .await
                .expect("rebuild");
                assert!(calls.into_inner() > 1, "progress reported per batch");
                positions.push(position);
            }
            positions
        })
    };
    let mut during = Vec::new();
    while !rebuilding.is_finished() || during.len() < 2 {
        during.push(open_request(&app).await);
        assert!(received_total(&app).await >= 3, "reads go on");
    }
    let positions = rebuilding.await.expect("rebuild task");
    wait_caught_up(&app).await;

    // Assert: nothing lost, nothing doubled.
    assert!(positions.iter().all(|p| *p > 0));
    assert_eq!(received_total(&app).await, 3 + during.len() as i64);
    let after = snapshot(&live).await;
    let (expected, scratch) = fresh_projection(&log, pg).await;
    assert_eq!(after, expected, "rebuilt tables equal a fresh projection");
    assert_ne!(
        before, after,
        "the requests made during the rebuild are there"
    );

    app.teardown().await;
    scratch.close().await;
    db.close().await;
}
both!(a_rebuild_while_serving_equals_a_fresh_projection);

async fn a_restarted_projector_resumes_from_its_checkpoint(pg: bool) {
    // Arrange: two requests projected, then the engine runs a while without projectors.
    let (app, db) = spawn(pg).await;
    for _ in 0..2 {
        let id = open_request(&app).await;
        finish_request(&app, &id).await;
    }
    wait_caught_up(&app).await;
    let p = projections_of(&app).await;
    let checkpoint = p.checkpoint("requests").await.expect("checkpoint");
    let app = app
        .restart_with(|config| config.projections.enabled = false)
        .await;
    let late = open_request(&app).await;
    finish_request(&app, &late).await;
    open_request(&app).await;
    let head = app
        .command_service
        .log()
        .last_position()
        .await
        .expect("head");
    assert!(head > checkpoint);
    assert_eq!(
        p.checkpoint("requests").await.expect("checkpoint"),
        checkpoint,
        "nothing projects while the projectors are off"
    );

    // Act
    let app = app
        .restart_with(|config| config.projections.enabled = true)
        .await;
    wait_caught_up(&app).await;

    // Assert: exact counts, tables equal to a projection from scratch.
    assert_eq!(received_total(&app).await, 4);
    let (status, all) = get_json(&app, "/api/v1/requests?limit=100", actors::AUDITOR).await;
    assert_eq!(status, 200);
    assert_eq!(all["items"].as_array().expect("items").len(), 4);
    let log = app.command_service.log().clone();
    let (expected, scratch) = fresh_projection(&log, pg).await;
    assert_eq!(snapshot(&p).await, expected);

    app.teardown().await;
    scratch.close().await;
    db.close().await;
}
both!(a_restarted_projector_resumes_from_its_checkpoint);

/// The projector loop pauses while its database is gone and catches up exactly once when it
/// is back (PostgreSQL database renamed away and back under a running engine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_pause_while_postgres_is_unreachable_and_catch_up_once() {
    tokio::time::timeout(Duration::from_secs(120), pause_and_catch_up())
        .await
        .expect("test timed out");
}

async fn pause_and_catch_up() {
    let db = TestDb::create().await.expect("db");
    let app = spawn_app_with_projections(Store::Sqlite, Some(db.url.clone())).await;
    let id = open_request(&app).await;
    wait_caught_up(&app).await;

    // Cut the engine off: terminate its connections and refuse new ones.
    let name = db.url.rsplit('/').next().expect("name").to_string();
    let admin = format!("{}/postgres", tests::pg::server_url().trim_end_matches('/'));
    let admin_pool = sqlx::PgPool::connect(&admin).await.expect("admin");
    let set_allow = |allow: bool| format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {allow}");
    sqlx::query(sqlx::AssertSqlSafe(set_allow(false)))
        .execute(&admin_pool)
        .await
        .expect("refuse connections");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    )))
    .execute(&admin_pool)
    .await
    .expect("terminate");
    finish_request(&app, &id).await;
    open_request(&app).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get_json(&app, "/api/v1/health/projections", actors::AUDITOR).await;
        if status == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "health never noticed: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Bring it back; the projector catches up by itself.
    sqlx::query(sqlx::AssertSqlSafe(set_allow(true)))
        .execute(&admin_pool)
        .await
        .expect("allow connections");
    wait_caught_up(&app).await;
    assert_eq!(received_total(&app).await, 2);
    let p = projections_of(&app).await;
    let log = app.command_service.log().clone();
    let (expected, scratch) = fresh_projection(&log, true).await;
    assert_eq!(snapshot(&p).await, expected);

    app.teardown().await;
    scratch.close().await;
    admin_pool.close().await;
    db.drop_db().await;
}

async fn projections_keep_up_with_a_burst_of_intakes(pg: bool) {
    // Arrange
    let (app, db) = spawn(pg).await;
    wait_caught_up(&app).await;
    let p = projections_of(&app).await;

    // Act: 120 intakes, 4 at a time.
    let ids: Vec<String> = (0..120).map(|_| external_id()).collect();
    let app_ref = &app;
    for chunk in ids.chunks(4) {
        let answers = futures::future::join_all(
            chunk
                .iter()
                .map(|id| async move { app_ref.intake(&intake_document(id)).await }),
        )
        .await;
        assert!(answers.iter().all(|(status, _)| *status == 201));
    }
    let head = app
        .command_service
        .log()
        .last_position()
        .await
        .expect("head");
    let written = Instant::now();

    // Assert: the live projector reaches the head soon after the last append.
    loop {
        if p.checkpoint("requests").await.expect("checkpoint") >= head {
            break;
        }
        assert!(
            written.elapsed() < Duration::from_secs(2),
            "the requests projector lags more than 2 s behind the last append"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let lag = written.elapsed();
    assert!(lag < Duration::from_secs(2), "caught up in {lag:?}");
    wait_caught_up(&app).await;
    assert_eq!(received_total(&app).await, 120);

    app.teardown().await;
    db.close().await;
}
both!(projections_keep_up_with_a_burst_of_intakes);
