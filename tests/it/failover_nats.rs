//! The production topology when NATS nodes die: a 3-node cluster (R3 streams), PostgreSQL
//! and two `bianmin serve` replicas, the second started with a server list whose first seed
//! is down. Under a steady load over both replicas one node that follows the event stream is
//! killed and brought back, then the stream's leader. At the end nothing acknowledged is lost
//! or recorded twice, every history read answers, `bianmin verify --all` and `bianmin
//! projections rebuild` succeed, and the read models equal a clean rebuild.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use schemas::RequestId;
use tests::faults::{
    Acks, Api, LoadDriver, ServeOptions, ServeProcess, WORKER, check_log, check_projections,
    wait_projections_caught_up,
};
use tests::nats::NatsCluster;
use tests::pg::TestDb;
use uuid::Uuid;

use super::failover::{catalogue, instance_log, shared_toml, until};

/// Lifecycles in flight per replica.
const IN_FLIGHT: usize = 1;
/// Commands acknowledged between two steps of the fault sequence.
const PROGRESS: usize = 12;
/// How long the load may stall at one step (a leader election takes a few seconds).
const PROGRESS_WITHIN: Duration = Duration::from_secs(45);

/// The node names of the cluster (`n1`..), as `NatsCluster` names them.
fn node_index(name: &str) -> usize {
    name.trim_start_matches('n')
        .parse::<usize>()
        .expect("a node name n<k>")
        - 1
}

/// The node leading the event stream, by index, read from the stream's cluster info.
async fn stream_leader(client: &async_nats::Client, stream: &str) -> usize {
    let js = async_nats::jetstream::new(client.clone());
    until("the event stream's leader", || async {
        let mut stream = js.get_stream(stream).await.ok()?;
        let info = stream.info().await.ok()?;
        let leader = info.cluster.as_ref()?.leader.clone()?;
        Some(node_index(&leader))
    })
    .await
}

/// Waits until every stream of the cluster (the instance's streams and buckets) has a
/// leader and every replica of it is current: a node that came back has caught up, so the
/// cluster again tolerates the loss of one node.
async fn wait_all_current(client: &async_nats::Client) {
    let js = async_nats::jetstream::new(client.clone());
    until("every stream caught up on every node", || async {
        let mut names = js.stream_names();
        let mut all = Vec::new();
        while let Some(name) = names.next().await {
            all.push(name.ok()?);
        }
        for name in all {
            let info = js.get_stream(&name).await.ok()?.info().await.ok()?.clone();
            let cluster = info.cluster?;
            cluster.leader.as_ref()?;
            let caught_up = cluster.replicas.len() == 2
                && cluster
                    .replicas
                    .iter()
                    .all(|peer| peer.current && !peer.offline);
            if !caught_up {
                return None;
            }
        }
        Some(())
    })
    .await;
}

/// Runs lifecycles through every driver, [`IN_FLIGHT`] at a time each, until `stop`; each
/// worker returns the lifecycles that failed.
fn steady_load(
    drivers: &[LoadDriver],
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for driver in drivers {
        for _ in 0..IN_FLIGHT {
            let (driver, stop, next) = (driver.clone(), stop.clone(), next.clone());
            workers.push(tokio::spawn(async move {
                let mut errors = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if let Err(error) = driver.lifecycle(n, false).await {
                        errors.push(error);
                    }
                }
                errors
            }));
        }
    }
    workers
}

/// Commands acknowledged so far over every driver.
fn acknowledged(drivers: &[LoadDriver]) -> usize {
    drivers
        .iter()
        .map(|d| d.acks.lock().expect("acks").commands.len())
        .sum()
}

/// Waits until `more` commands beyond those acknowledged now are acknowledged, within
/// [`PROGRESS_WITHIN`]; panics with the replicas' last output otherwise.
async fn progress(drivers: &[LoadDriver], more: usize, what: &str, replicas: &[&ServeProcess]) {
    let target = acknowledged(drivers) + more;
    let deadline = Instant::now() + PROGRESS_WITHIN;
    while acknowledged(drivers) < target {
        if Instant::now() > deadline {
            let mut kept = Vec::new();
            for (i, replica) in replicas.iter().enumerate() {
                let path = std::env::temp_dir().join(format!("failover-nats-replica-{i}.log"));
                let _ = std::fs::write(&path, replica.output());
                kept.push(path.display().to_string());
            }
            panic!(
                "{what}: no progress within {PROGRESS_WITHIN:?}; the replicas' output: {kept:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads the history of every request acknowledged so far through every api; returns the
/// failed reads (request, status or error).
async fn history_failures(apis: &[Api], drivers: &[LoadDriver]) -> Vec<String> {
    let ids: BTreeSet<RequestId> = drivers
        .iter()
        .flat_map(|d| d.acks.lock().expect("acks").intakes.clone())
        .collect();
    let mut failures = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let api = &apis[n % apis.len()];
        match api
            .get(&format!("/api/v1/requests/{id}/history"), Some(WORKER))
            .await
        {
            Ok(reply) if reply.status == 200 && reply.body.as_array().is_some() => {}
            Ok(reply) => failures.push(format!("{id}: {} {}", reply.status, reply.body)),
            Err(error) => failures.push(format!("{id}: {error}")),
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_nodes_dying_mid_load_lose_nothing_and_every_read_answers() {
    let started = Instant::now();
    let mut cluster = NatsCluster::start_current(3).await;
    let (db, clean) = (
        TestDb::create().await.expect("db"),
        TestDb::create().await.expect("db"),
    );
    let secrets = tempfile::tempdir().expect("secrets");
    std::fs::write(secrets.path().join("catalogue.toml"), catalogue()).expect("catalogue");
    let stream = format!("FN_{}", Uuid::now_v7().simple()).to_uppercase();
    let names = schemas::Names::new(&stream.to_lowercase(), &stream).expect("names");
    let options = ServeOptions {
        nats_url: Some(cluster.urls().join(",")),
        database_url: Some(db.url.clone()),
        env: Vec::new(),
        extra_toml: shared_toml(&stream, secrets.path()),
    };
    // The first replica creates the streams and the secrets with every node up; the second
    // starts while the first seed of its server list is down.
    let mut first = ServeProcess::start(options.clone()).await;
    let client = cluster.client().await;
    cluster.nodes[0].stop();
    let mut second = ServeProcess::start(options.clone()).await;
    cluster.nodes[0].restart().await;
    wait_all_current(&client).await;
    let apis = vec![Api::new(first.url()), Api::new(second.url())];

    let deadline = Instant::now() + Duration::from_secs(240);
    let drivers: Vec<LoadDriver> = apis
        .iter()
        .map(|api| LoadDriver::new(api.clone(), deadline))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let load = steady_load(&drivers, stop.clone());
    let events = names.events_stream();

    progress(&drivers, PROGRESS, "load under way", &[&first, &second]).await;
    let leader = stream_leader(&client, events).await;
    let follower = (leader + 1) % 3;
    cluster.nodes[follower].stop();
    progress(
        &drivers,
        PROGRESS,
        "progress with a follower down",
        &[&first, &second],
    )
    .await;
    let follower_down = history_failures(&apis, &drivers).await;
    cluster.nodes[follower].restart().await;
    wait_all_current(&client).await;
    progress(
        &drivers,
        PROGRESS,
        "progress after the follower came back",
        &[&first, &second],
    )
    .await;

    let leader = stream_leader(&client, events).await;
    cluster.nodes[leader].stop();
    let killed = Instant::now();
    let new_leader = stream_leader(&client, events).await;
    println!(
        "leader n{} killed after {:?}; n{} leads {:?} later",
        leader + 1,
        killed.duration_since(started),
        new_leader + 1,
        killed.elapsed()
    );
    assert_ne!(new_leader, leader, "a new leader is elected");
    progress(
        &drivers,
        PROGRESS,
        "progress with the old leader down",
        &[&first, &second],
    )
    .await;
    let resumed = killed.elapsed();
    let leader_down = history_failures(&apis, &drivers).await;
    cluster.nodes[leader].restart().await;
    wait_all_current(&client).await;

    stop.store(true, Ordering::SeqCst);
    let errors: Vec<String> = futures::future::join_all(load)
        .await
        .into_iter()
        .flat_map(|done| done.expect("a load worker"))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        follower_down.is_empty(),
        "with a follower down: {follower_down:?}"
    );
    assert!(
        leader_down.is_empty(),
        "with the old leader down: {leader_down:?}\n{}\n{}",
        first.tail(40),
        second.tail(40)
    );
    let after = history_failures(&apis, &drivers).await;
    assert!(after.is_empty(), "after both nodes came back: {after:?}");

    let log = instance_log(&cluster, &names, secrets.path()).await;
    let mut total = Acks::default();
    for driver in &drivers {
        let acks = std::mem::take(&mut *driver.acks.lock().expect("acks"));
        total.intakes.extend(acks.intakes);
        total.commands.extend(acks.commands);
        total.retries += acks.retries;
        total.completed += acks.completed;
    }
    let figures = check_log(&log, &total).await;
    assert_eq!(
        (figures.found, figures.lost, figures.duplicates),
        (figures.acknowledged, 0, 0),
        "{figures}"
    );
    assert_eq!(total.completed as usize, total.intakes.len());

    wait_projections_caught_up(&apis[1], Duration::from_secs(60)).await;
    let projections = check_projections(&db.url, &log, &clean.url).await;
    assert!(
        projections.ok(),
        "{projections}\n{}",
        projections.differences.join("\n")
    );
    for _ in 0..2 {
        let verified = first.verify_all().await;
        assert!(
            verified.success && verified.stdout.contains("OK"),
            "{verified}"
        );
    }
    first.kill9();
    second.kill9();
    let rebuilt = first.run(&["projections", "rebuild"]).await;
    assert!(rebuilt.success, "projections rebuild: {rebuilt}");
    let projections = check_projections(&db.url, &log, &clean.url).await;
    assert!(
        projections.ok(),
        "after rebuild: {projections}\n{}",
        projections.differences.join("\n")
    );
    println!(
        "failover_nats: {figures}; the load resumed {resumed:?} after the leader was killed; \
         {projections}; {:?} in all",
        started.elapsed()
    );
    db.drop_db().await;
    clean.drop_db().await;
}
