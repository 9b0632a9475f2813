//! Worker leases on the shared nats-server: one holder at a time, a standby that takes over
//! when the holder dies (after the TTL) or shuts down (at once), and a holder whose lease is
//! taken from it stopping its worker.

use std::time::Duration;

use engine_service::lease::{LeaseConfig, Leases};
use tests::nats::{shared_nats, unique_log_config};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const TTL_MS: u64 = 900;
/// Long enough for any takeover of a [`TTL_MS`] lease on a loaded machine.
const WITHIN: Duration = Duration::from_secs(10);

/// A replica's leases on the shared server under the test's own names.
async fn replica(names: &schemas::Names) -> Leases {
    Leases::new(
        &LeaseConfig { ttl_ms: TTL_MS },
        Some((shared_nats().await, 1)),
        names,
        &prometheus::Registry::new(),
    )
    .expect("leases")
}

/// Runs worker `w` under `leases`: each start reports `tag` on `started`, each stop (its token
/// cancelled) on `stopped`.
fn spawn_worker(
    leases: &Leases,
    tag: &'static str,
    started: mpsc::UnboundedSender<&'static str>,
    stopped: mpsc::UnboundedSender<&'static str>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let leases = leases.clone();
    tokio::spawn(async move {
        leases
            .run("w", shutdown, move |token| {
                let (started, stopped) = (started.clone(), stopped.clone());
                async move {
                    let _ = started.send(tag);
                    token.cancelled().await;
                    let _ = stopped.send(tag);
                    Ok(())
                }
            })
            .await
            .expect("the worker ends cleanly");
    })
}

async fn next(rx: &mut mpsc::UnboundedReceiver<&'static str>, what: &str) -> &'static str {
    tokio::time::timeout(WITHIN, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {WITHIN:?}"))
        .expect("channel open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_holder_runs_the_worker_and_a_standby_takes_over_when_it_dies_or_leaves() {
    let names = unique_log_config().names;
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (stopped_tx, mut stopped) = mpsc::unbounded_channel();
    let (a, b) = (replica(&names).await, replica(&names).await);
    assert_ne!(a.holder(), b.holder());
    let (a_stop, b_stop) = (CancellationToken::new(), CancellationToken::new());
    let a_run = spawn_worker(&a, "a", started_tx.clone(), stopped_tx.clone(), a_stop);
    assert_eq!(next(&mut started, "a starts").await, "a");
    assert_eq!(a.held(), ["w"]);
    let b_run = spawn_worker(
        &b,
        "b",
        started_tx.clone(),
        stopped_tx.clone(),
        b_stop.clone(),
    );
    // B stands by for more than a whole TTL while A renews.
    let quiet = tokio::time::timeout(Duration::from_millis(3 * TTL_MS), started.recv()).await;
    assert!(quiet.is_err(), "a second holder started: {quiet:?}");
    assert!(b.held().is_empty());

    // A dies (no release): B takes over once A's entry expires.
    a_run.abort();
    let _ = a_run.await;
    assert_eq!(next(&mut started, "b takes over").await, "b");
    assert_eq!(b.held(), ["w"]);

    // B leaves gracefully: it releases, and a new replica takes over without waiting a TTL.
    let c = replica(&names).await;
    let c_run = spawn_worker(&c, "c", started_tx, stopped_tx, CancellationToken::new());
    b_stop.cancel();
    assert_eq!(next(&mut stopped, "b stops").await, "b");
    b_run.await.expect("b's run ends");
    let left = tokio::time::Instant::now();
    assert_eq!(next(&mut started, "c takes over").await, "c");
    assert!(
        left.elapsed() < Duration::from_millis(TTL_MS),
        "took {:?}",
        left.elapsed()
    );

    // Someone else writes C's lease: C stops its worker at its next renewal.
    let js = async_nats::jetstream::new(shared_nats().await);
    let bucket = js
        .get_key_value(names.leases_bucket())
        .await
        .expect("bucket");
    bucket.put("w", "intruder".into()).await.expect("overwrite");
    assert_eq!(next(&mut stopped, "c stops").await, "c");
    // The held set is updated by C's lease task, which may run just after the worker stopped.
    let gave_up = tokio::time::Instant::now() + Duration::from_millis(TTL_MS);
    while !c.held().is_empty() {
        assert!(
            tokio::time::Instant::now() < gave_up,
            "c still holds {:?}",
            c.held()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c_run.abort();
    let _ = js.delete_stream(names.leases_bucket_stream()).await;
}

#[tokio::test]
async fn without_nats_the_lease_is_local_and_always_held() {
    let leases = Leases::local();
    assert!(leases.is_local());
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (stopped_tx, mut stopped) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let run = spawn_worker(&leases, "local", started_tx, stopped_tx, shutdown.clone());
    assert_eq!(next(&mut started, "starts").await, "local");
    assert_eq!(leases.held(), ["w"]);
    shutdown.cancel();
    assert_eq!(next(&mut stopped, "stops").await, "local");
    run.await.expect("ends");
    assert!(leases.held().is_empty());
}

/// A worker that fails releases its lease, is listed as failing, and runs again after the
/// backoff, on both kinds of lease: the process goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_worker_is_started_again_and_listed_as_failing() {
    let names = unique_log_config().names;
    for leases in [Leases::local(), replica(&names).await] {
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (started_tx, mut started) = mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        let run = {
            let (leases, runs, shutdown) = (leases.clone(), runs.clone(), shutdown.clone());
            tokio::spawn(async move {
                leases
                    .run("flaky", shutdown, move |token| {
                        let (runs, started) = (runs.clone(), started_tx.clone());
                        async move {
                            let n = runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let _ = started.send("run");
                            if n == 0 {
                                return Err("the server went away".into());
                            }
                            token.cancelled().await;
                            Ok(())
                        }
                    })
                    .await
            })
        };
        next(&mut started, "first run").await;
        next(&mut started, "second run after the failure").await;
        let failing = leases.failing();
        assert_eq!(
            failing.get("flaky").map(String::as_str),
            Some("the server went away"),
            "{failing:?}"
        );
        assert_eq!(leases.held(), ["flaky"]);
        shutdown.cancel();
        run.await.expect("joins").expect("ends cleanly at shutdown");
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
