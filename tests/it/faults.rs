//! Fault injection against the real `bianmin serve` process, projectors running: `kill -9`
//! mid-load with restarts, nats-server stopped and restarted mid-load, a 3-node cluster losing
//! a node, upstream duplicates and retries, and the projections' PostgreSQL stopped (crash-like)
//! and restarted mid-load. After each: every acknowledged intake and command is in the log
//! exactly once, every hash chain verifies, `bianmin verify --all` passes on the same store,
//! the projectors reach the log head, and the read models equal a clean projection of the
//! whole log into a fresh database. Each test prints its figures.

use std::time::{Duration, Instant};

use engine_log::{EventLog, JetStreamConfig};
use tests::faults::{
    Api, LoadDriver, PrivatePostgres, ServeOptions, ServeProcess, after_fault,
    projections_caught_up,
};
use tests::nats::{NatsCluster, NatsServer};
use tests::pg::TestDb;

/// Lifecycles per test: 11 requests each (intake + 10 commands), so a few hundred requests.
const LIFECYCLES: usize = 30;
/// Lifecycles of the PostgreSQL scenario: enough load left after the (slower) stop to see the
/// engine go on acknowledging while the database is down.
const PG_LIFECYCLES: usize = 60;
/// Concurrent clients.
const CLIENTS: usize = 4;
/// Upper bound of one test's load phase.
const LOAD_DEADLINE: Duration = Duration::from_secs(50);
/// How long the projectors may take to reach the log head after the load.
const CATCH_UP: Duration = Duration::from_secs(30);
/// The clean projection of an embedded (SQLite) read-model database.
const CLEAN_SQLITE: &str = "sqlite::memory:";

/// `options` with the projectors explicitly on (whatever the default becomes).
fn projected(options: ServeOptions) -> ServeOptions {
    ServeOptions {
        extra_toml: format!("[projections]\nenabled = true\n{}", options.extra_toml),
        ..options
    }
}

fn stream_env(stream: &str) -> Vec<(String, String)> {
    vec![
        ("BIANMIN_NATS__STREAM".into(), stream.into()),
        ("BIANMIN_NATS__SUBJECT_PREFIX".into(), stream.to_lowercase()),
    ]
}

/// The engine's log opened for checking, with the engine's stream configuration: opening
/// updates the stream, so a different replica count would rescale it under the engine.
/// Retried for a while: just after a node restart the JetStream API may time out.
async fn jetstream_log(client: async_nats::Client, stream: &str, replicas: usize) -> EventLog {
    let config = JetStreamConfig {
        names: schemas::Names::new(&stream.to_lowercase(), stream).expect("valid names"),
        replicas,
        ..JetStreamConfig::default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match EventLog::connect_jetstream(client.clone(), config.clone()).await {
            Ok(log) => return log,
            Err(error) if Instant::now() < deadline => {
                println!("opening the log for checking: {error}; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => panic!("open the log for checking: {error}"),
        }
    }
}

async fn sqlite_log(engine: &ServeProcess) -> EventLog {
    EventLog::open_sqlite(&engine.data_dir().join("events.db"))
        .await
        .expect("open the log")
}

/// Intakes and commands acknowledged so far.
fn acked(driver: &LoadDriver) -> usize {
    let acks = driver.acks.lock().expect("acks");
    acks.intakes.len() + acks.commands.len()
}

/// Waits until the load has made at least `n` acknowledgements (or the deadline passes).
async fn until_acked(driver: &LoadDriver, n: usize, deadline: Instant) {
    while Instant::now() < deadline && acked(driver) < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_load_and_restart_loses_and_duplicates_nothing() {
    let mut engine = ServeProcess::start(projected(ServeOptions::default())).await;
    let deadline = Instant::now() + LOAD_DEADLINE;
    let driver = LoadDriver::new(Api::new(engine.url()), deadline);
    let load = {
        let driver = driver.clone();
        tokio::spawn(async move { driver.run(LIFECYCLES, CLIENTS, false).await })
    };
    for round in 1..=3 {
        until_acked(&driver, round * 60, deadline).await;
        engine.kill9();
        tokio::time::sleep(Duration::from_millis(100)).await;
        engine.restart().await;
    }
    let errors = load.await.expect("load task");
    assert!(errors.is_empty(), "lifecycles failed: {errors:?}");

    let log = sqlite_log(&engine).await;
    let acks = std::mem::take(&mut *driver.acks.lock().expect("acks"));
    let after = after_fault(&mut engine, &log, &acks, CLEAN_SQLITE, CATCH_UP).await;
    println!("kill -9 x3 ({} starts): {after}", engine.starts());
    assert_eq!(acks.completed, LIFECYCLES as u64);
    after.assert_clean(LIFECYCLES * 11, LIFECYCLES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart_mid_load_reports_not_ready_and_loses_nothing() {
    let mut nats = NatsServer::start().await;
    let stream = format!("FT_{}", uuid::Uuid::now_v7().simple());
    // JetStream log with the read models in PostgreSQL: the production layout.
    let live = TestDb::create().await.expect("a projections database");
    let clean = TestDb::create().await.expect("a clean database");
    let mut engine = ServeProcess::start(projected(ServeOptions {
        nats_url: Some(nats.url()),
        database_url: Some(live.url.clone()),
        env: stream_env(&stream),
        ..ServeOptions::default()
    }))
    .await;
    let api = Api::new(engine.url());
    let deadline = Instant::now() + LOAD_DEADLINE;
    let driver = LoadDriver::new(api.clone(), deadline);
    let load = {
        let driver = driver.clone();
        tokio::spawn(async move { driver.run(LIFECYCLES, CLIENTS, false).await })
    };
    until_acked(&driver, 80, deadline).await;
    nats.stop();
    // While NATS is down the engine must say so.
    let mut saw_not_ready = false;
    let probe_until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < probe_until {
        if let Ok(reply) = api.get("/readyz", None).await
            && reply.status == 503
        {
            saw_not_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.restart().await;
    let errors = load.await.expect("load task");
    assert!(saw_not_ready, "readyz never reported the log unavailable");
    assert!(errors.is_empty(), "lifecycles failed: {errors:?}");

    let log = jetstream_log(nats.client().await, &stream, 1).await;
    let acks = std::mem::take(&mut *driver.acks.lock().expect("acks"));
    let after = after_fault(&mut engine, &log, &acks, &clean.url, CATCH_UP).await;
    println!("nats-server restart: {after}");
    live.drop_db().await;
    clean.drop_db().await;
    after.assert_clean(LIFECYCLES * 11, LIFECYCLES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_killed_and_restarted_mid_load_loses_nothing() {
    let mut cluster = NatsCluster::start(3).await;
    let stream = format!("FT_{}", uuid::Uuid::now_v7().simple());
    let mut env = stream_env(&stream);
    env.push(("BIANMIN_NATS__REPLICAS".into(), "3".into()));
    // The engine connects through node 1; node 3 is killed (a follower or the stream leader,
    // whichever it is).
    let mut engine = ServeProcess::start(projected(ServeOptions {
        nats_url: Some(cluster.urls()[0].clone()),
        env,
        ..ServeOptions::default()
    }))
    .await;
    let deadline = Instant::now() + LOAD_DEADLINE;
    let driver = LoadDriver::new(Api::new(engine.url()), deadline);
    let load = {
        let driver = driver.clone();
        tokio::spawn(async move { driver.run(LIFECYCLES, CLIENTS, false).await })
    };
    until_acked(&driver, 80, deadline).await;
    cluster.nodes[2].stop();
    until_acked(&driver, 180, deadline).await;
    cluster.nodes[2].restart().await;
    let errors = load.await.expect("load task");
    assert!(errors.is_empty(), "lifecycles failed: {errors:?}");

    let log = jetstream_log(cluster.client().await, &stream, 3).await;
    let acks = std::mem::take(&mut *driver.acks.lock().expect("acks"));
    let after = after_fault(&mut engine, &log, &acks, CLEAN_SQLITE, CATCH_UP).await;
    println!("3-node cluster, node killed and restarted: {after}");
    after.assert_clean(LIFECYCLES * 11, LIFECYCLES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_duplicates_and_retries_under_load_record_everything_once() {
    let mut engine = ServeProcess::start(projected(ServeOptions::default())).await;
    let deadline = Instant::now() + LOAD_DEADLINE;
    let driver = LoadDriver::new(Api::new(engine.url()), deadline);
    // Every intake and every command is sent twice: same ticket id, same command id.
    let errors = driver.run(LIFECYCLES, CLIENTS * 2, true).await;
    assert!(errors.is_empty(), "lifecycles failed: {errors:?}");
    let log = sqlite_log(&engine).await;
    let acks = std::mem::take(&mut *driver.acks.lock().expect("acks"));
    let after = after_fault(&mut engine, &log, &acks, CLEAN_SQLITE, CATCH_UP).await;
    println!("duplicate deliveries: {after}");
    after.assert_clean(LIFECYCLES * 11, LIFECYCLES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_restarted_mid_load_projections_pause_then_catch_up_once() {
    // A PostgreSQL of this test's own: the shared server is never stopped.
    let mut pg = PrivatePostgres::start().await;
    let live = pg.create_database("bianmin").await;
    let clean = pg.create_database("clean").await;
    let mut engine = ServeProcess::start(projected(ServeOptions {
        database_url: Some(live),
        ..ServeOptions::default()
    }))
    .await;
    let api = Api::new(engine.url());
    let deadline = Instant::now() + LOAD_DEADLINE;
    let driver = LoadDriver::new(api.clone(), deadline);
    let load = {
        let driver = driver.clone();
        tokio::spawn(async move { driver.run(PG_LIFECYCLES, CLIENTS, false).await })
    };
    until_acked(&driver, 60, deadline).await;
    pg.stop().await;
    let acked_at_stop = acked(&driver);
    let stopped_at = Instant::now();

    // While PostgreSQL is down the projection health says the projectors are not caught up.
    let probe_until = Instant::now() + Duration::from_secs(15);
    let mut paused = None;
    while paused.is_none() && Instant::now() < probe_until {
        match api
            .get(
                "/api/v1/health/projections",
                Some(tests::faults::SUPERVISOR),
            )
            .await
        {
            Ok(reply) if !projections_caught_up(&reply) => paused = Some(reply),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    // ... and the engine keeps recording: the log is not in PostgreSQL.
    while !load.is_finished() && acked(&driver) < acked_at_stop + 120 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let acked_while_down = acked(&driver) - acked_at_stop;
    let down_for = stopped_at.elapsed();
    let ready = api.get("/readyz", None).await.map(|r| r.status);
    pg.restart().await;
    let errors = load.await.expect("load task");
    let paused = paused.expect("the projection health never reported the projectors behind");
    assert!(errors.is_empty(), "lifecycles failed: {errors:?}");
    assert!(
        acked_while_down >= 120,
        "only {acked_while_down} acknowledgements in {down_for:?} while PostgreSQL was down"
    );
    assert_eq!(
        ready,
        Ok(200),
        "readyz while only the projections database was down"
    );

    let log = sqlite_log(&engine).await;
    let acks = std::mem::take(&mut *driver.acks.lock().expect("acks"));
    let after = after_fault(&mut engine, &log, &acks, &clean, CATCH_UP).await;
    // The projectors' own account of the outage (a projector blocked waiting for a connection
    // until the server is back logs no failure, so this is reported, not required).
    let output = engine.output();
    let (pauses, resumes) = (
        output.matches("projector paused").count(),
        output.matches("projector resumed").count(),
    );
    println!(
        "PostgreSQL stopped and restarted: {after}; while down: {acked_while_down} acknowledged in {down_for:?}, \
         readyz {ready:?}, projection health {} {}; projector log: {pauses} retries, {resumes} resumptions",
        paused.status, paused.body
    );
    after.assert_clean(PG_LIFECYCLES * 11, PG_LIFECYCLES);
}
