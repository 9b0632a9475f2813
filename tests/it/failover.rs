//! The production topology under a crash: a 3-node NATS cluster (R3 streams), PostgreSQL and
//! three `bianmin serve` processes sharing the instance's secrets. Intakes and commands go to
//! all three, over HTTP and NATS; the process holding the leases of the supervisor and the
//! projectors is killed with -9; another takes them over within seconds. At the end nothing
//! acknowledged is lost, no reminder or notification was recorded twice, the read models
//! equal a clean rebuild, and `bianmin verify --all` passes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use engine_log::signing::{CommitSigner, Keyring, SigningConfig};
use engine_log::{EventLog, JetStreamConfig};
use schemas::{Event, RequestId};
use serde_json::{Value, json};
use tests::faults::{
    Acks, Api, INTAKE, LoadDriver, ServeOptions, ServeProcess, WORKER, check_log,
    check_projections, wait_projections_caught_up,
};
use tests::nats::NatsCluster;
use tests::pg::TestDb;
use uuid::Uuid;

/// Lease TTL of the replicas: a killed holder is replaced within ~1.3 TTL.
const TTL_MS: u64 = 2_000;
/// How soon the singletons must run again after the kill: the TTL and a third, the workers'
/// start and the probes, on two loaded cores.
const TAKEOVER_WITHIN: Duration = Duration::from_secs(15);
/// A catalogue item whose completion limit is one minute: its reminder is due at once.
const FAST_ITEM: &str = "tt-one-minute";
/// Requests left classified under [`FAST_ITEM`] before and after the kill.
const FAST_PER_PHASE: usize = 6;
/// Full lifecycles per replica and phase.
const LIFECYCLES: usize = 3;

/// The built-in catalogue with [`FAST_ITEM`] added (in the last category).
pub(super) fn catalogue() -> String {
    let builtin = include_str!("../../deploy/policy/catalogue.toml");
    let versioned = builtin.replacen("version = \"", "version = \"failover-", 1);
    format!(
        "{versioned}\n[[categories.items]]\nid = \"{FAST_ITEM}\"\nname = \"One-minute test item\"\n\
         departments = [\"urban-management\"]\nhandling_mode = \"referral\"\n\
         default_urgency = \"general\"\ncompletion = {{ amount = 1, unit = \"natural_minutes\" }}\n\
         escalation_chain = [\"street\", \"district\"]\n"
    )
}

/// The configuration every replica shares (names, replication, secrets, leases).
pub(super) fn shared_toml(stream: &str, secrets: &std::path::Path) -> String {
    let path = |name: &str| secrets.join(name).display().to_string();
    format!(
        "[nats]\nstream = \"{stream}\"\nsubject_prefix = \"{prefix}\"\nreplicas = 3\n\
         [leases]\nttl_ms = {TTL_MS}\n\
         [policy]\ncatalogue_file = \"{catalogue}\"\n\
         [signing]\nkey_file = \"{signing}\"\n\
         [intake_ids]\nkey_file = \"{intake}\"\n\
         [stores]\nkek_dir = \"{kek}\"\n\
         [notify]\npoll_interval_ms = 50\n",
        prefix = stream.to_lowercase(),
        catalogue = path("catalogue.toml"),
        signing = path("signing.key"),
        intake = path("intake-id.key"),
        kek = path("kek"),
    )
}

/// Intakes over NATS (the queue group picks a replica) and accept + classify under
/// [`FAST_ITEM`] over HTTP, spread over `apis`.
async fn fast_requests(
    client: &async_nats::Client,
    names: &schemas::Names,
    apis: &[Api],
    phase: &str,
    acks: &mut Acks,
) {
    for n in 0..FAST_PER_PHASE {
        let document = tests::faults::intake_document(&format!("FO-{phase}-{n}"), "13700000000");
        let mut headers = HeaderMap::new();
        headers.insert("X-Bianmin-Actor", INTAKE);
        let id = until(&format!("NATS intake {phase}-{n}"), || async {
            let reply = client
                .request_with_headers(
                    names.intake_subject("hotline"),
                    headers.clone(),
                    document.to_string().into(),
                )
                .await
                .ok()?;
            let body: Value = serde_json::from_slice(&reply.payload).ok()?;
            serde_json::from_value::<RequestId>(body["request_id"].clone()).ok()
        })
        .await;
        acks.intakes.insert(id);
        let api = &apis[n % apis.len()];
        for (action, body) in [
            ("accept", json!({})),
            (
                "classify",
                json!({"catalogue_item": FAST_ITEM, "request_type": "help"}),
            ),
        ] {
            let key = Uuid::now_v7();
            let path = format!("/api/v1/requests/{id}/{action}");
            until(&format!("{action} {id}"), || async {
                let reply = api.post(&path, Some(WORKER), &body, Some(key)).await.ok()?;
                assert!(
                    reply.status == 200 || reply.status >= 500 || reply.status == 409,
                    "{action}: {} {}",
                    reply.status,
                    reply.body
                );
                (reply.status == 200).then_some(())
            })
            .await;
            acks.commands.insert(key, id);
        }
    }
}

/// Polls `attempt` until it answers, within 30 s.
pub(super) async fn until<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: no answer within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The leases `api`'s process holds, from `/readyz`.
pub(super) async fn held(api: &Api) -> BTreeSet<String> {
    match api.get("/readyz", None).await {
        Ok(reply) => reply.body["leases"]["held"]
            .as_array()
            .map(|held| {
                held.iter()
                    .filter_map(|w| w.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        Err(_) => BTreeSet::new(),
    }
}

/// The supervisor and every projector.
pub(super) fn singletons() -> BTreeSet<String> {
    let mut all: BTreeSet<String> = projections::Projections::projector_names()
        .iter()
        .map(|name| engine_service::read_models::projector_worker(name))
        .collect();
    all.insert("supervisor".to_string());
    all
}

/// One load driver per api.
pub(super) fn drivers_for(apis: &[Api], deadline: Instant) -> Vec<LoadDriver> {
    apis.iter()
        .map(|api| LoadDriver::new(api.clone(), deadline))
        .collect()
}

/// Runs `LIFECYCLES` full lifecycles through each of `drivers` at once.
pub(super) async fn lifecycles(drivers: Vec<LoadDriver>) -> Vec<LoadDriver> {
    let runs = drivers
        .iter()
        .map(|driver| driver.run(LIFECYCLES, 2, false));
    let errors: Vec<String> = futures::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    drivers
}

/// The JetStream log of the instance, trusting its key.
pub(super) async fn instance_log(
    cluster: &NatsCluster,
    names: &schemas::Names,
    secrets: &std::path::Path,
) -> EventLog {
    let config = JetStreamConfig {
        names: names.clone(),
        replicas: 3,
        manage_stream: false,
        ..JetStreamConfig::default()
    };
    let signer = CommitSigner::load(&secrets.join("signing.key")).expect("the instance's key");
    let keyring = Keyring::load(&SigningConfig::default(), secrets).expect("keyring");
    EventLog::connect_jetstream(cluster.client().await, config)
        .await
        .expect("the log")
        .signed_by(Arc::new(signer), keyring)
}

/// Reminders by (request, due instant), and how many times each was recorded.
async fn reminders(log: &EventLog) -> BTreeMap<(RequestId, String), usize> {
    let mut out = BTreeMap::new();
    log.scan(1, |logged| {
        for envelope in &logged.commit.events {
            if let Event::ReminderSent(sent) = &envelope.event {
                *out.entry((envelope.request_id, sent.due_at.to_string()))
                    .or_insert(0) += 1;
            }
        }
    })
    .await
    .expect("scan");
    out
}

/// Every `Nats-Msg-Id` in the notify stream, with its count.
async fn notification_ids(
    client: &async_nats::Client,
    names: &schemas::Names,
) -> BTreeMap<String, usize> {
    let js = async_nats::jetstream::new(client.clone());
    let mut out = BTreeMap::new();
    let Ok(mut stream) = js.get_stream(names.notify_stream()).await else {
        return out;
    };
    let state = stream
        .info()
        .await
        .expect("notify stream info")
        .state
        .clone();
    for seq in state.first_sequence.max(1)..=state.last_sequence {
        if let Ok(message) = stream.get_raw_message(seq).await {
            let id = message
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.as_str().to_string())
                .unwrap_or_default();
            *out.entry(id).or_insert(0) += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_lease_holder_loses_nothing_and_fires_nothing_twice() {
    let started = Instant::now();
    let cluster = NatsCluster::start_current(3).await;
    let (db, clean) = (
        TestDb::create().await.expect("db"),
        TestDb::create().await.expect("db"),
    );
    let secrets = tempfile::tempdir().expect("secrets");
    std::fs::write(secrets.path().join("catalogue.toml"), catalogue()).expect("catalogue");
    let stream = format!("FO_{}", Uuid::now_v7().simple()).to_uppercase();
    let names = schemas::Names::new(&stream.to_lowercase(), &stream).expect("names");
    let options = ServeOptions {
        nats_url: Some(cluster.urls().join(",")),
        database_url: Some(db.url.clone()),
        env: Vec::new(),
        extra_toml: shared_toml(&stream, secrets.path()),
    };
    // One at a time: the first creates the shared secrets, and takes every lease.
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(ServeProcess::start(options.clone()).await);
    }
    let apis: Vec<Api> = replicas.iter().map(|r| Api::new(r.url())).collect();
    let holder = until("a holder of every singleton", || async {
        for (i, api) in apis.iter().enumerate() {
            if held(api).await.is_superset(&singletons()) {
                return Some(i);
            }
        }
        None
    })
    .await;
    let client = cluster.client().await;
    let deadline = Instant::now() + Duration::from_secs(60);

    // Phase 1: all three replicas.
    let mut fast = Acks::default();
    fast_requests(&client, &names, &apis, "a", &mut fast).await;
    let mut drivers = lifecycles(drivers_for(&apis, deadline)).await;

    // The holder dies mid-load (lifecycles through the other two under way); one of the two
    // takes over.
    let survivors: Vec<Api> = (0..3)
        .filter(|i| *i != holder)
        .map(|i| apis[i].clone())
        .collect();
    let phase_b = drivers_for(&survivors, deadline);
    let running = tokio::spawn(lifecycles(phase_b.clone()));
    until("the second phase under way", || async {
        let recorded: usize = phase_b
            .iter()
            .map(|d| d.acks.lock().expect("acks").commands.len())
            .sum();
        (recorded >= 4).then_some(())
    })
    .await;
    replicas[holder].kill9();
    let killed = Instant::now();
    let takeover = {
        let survivors = survivors.clone();
        tokio::spawn(async move {
            until("the singletons taken over", || async {
                let mut all = BTreeSet::new();
                for api in &survivors {
                    all.extend(held(api).await);
                }
                all.is_superset(&singletons()).then(|| killed.elapsed())
            })
            .await
        })
    };
    fast_requests(&client, &names, &survivors, "b", &mut fast).await;
    drivers.extend(running.await.expect("the second phase"));
    let took = takeover.await.expect("takeover");
    let lease_lines = || {
        let lines: Vec<String> = (0..3)
            .filter(|i| *i != holder)
            .flat_map(|i| {
                replicas[i]
                    .output()
                    .lines()
                    .filter(|l| l.contains("lease"))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        lines.join("\n")
    };
    assert!(
        took < TAKEOVER_WITHIN,
        "took over after {took:?}:\n{}",
        lease_lines()
    );

    // Every fast request is reminded exactly once, across the handover.
    let log = instance_log(&cluster, &names, secrets.path()).await;
    let reminded = until("every fast request reminded", || async {
        let reminded = reminders(&log).await;
        (reminded.len() >= 2 * FAST_PER_PHASE).then_some(reminded)
    })
    .await;
    assert!(reminded.values().all(|n| *n == 1), "{reminded:?}");
    let survivor = survivors[0].clone();
    wait_projections_caught_up(&survivor, Duration::from_secs(30)).await;
    for (i, replica) in replicas.iter_mut().enumerate() {
        if i != holder {
            replica.kill9();
        }
    }

    let all_acks: Vec<Acks> = drivers
        .iter()
        .map(|d| std::mem::take(&mut *d.acks.lock().expect("acks")))
        .collect();
    for acks in all_acks {
        let figures = check_log(&log, &acks).await;
        assert_eq!(
            (figures.found, figures.lost, figures.duplicates),
            (figures.acknowledged, 0, 0),
            "{figures}"
        );
    }
    let figures = check_log(&log, &fast).await;
    assert_eq!(
        (figures.found, figures.lost, figures.duplicates),
        (figures.acknowledged, 0, 0),
        "{figures}"
    );
    let notifications = notification_ids(&client, &names).await;
    assert!(!notifications.is_empty());
    assert!(notifications.values().all(|n| *n == 1), "{notifications:?}");
    let projections = check_projections(&db.url, &log, &clean.url).await;
    assert!(
        projections.ok(),
        "{projections}\n{}",
        projections.differences.join("\n")
    );
    let verified = replicas[holder].verify_all().await;
    assert!(
        verified.success && verified.stdout.contains("OK"),
        "{verified}"
    );
    println!(
        "failover: took over in {took:?}; {figures}; {projections}; {verified}; {:?} in all",
        started.elapsed()
    );
    db.drop_db().await;
    clean.drop_db().await;
}
