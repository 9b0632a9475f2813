//! The command rate of 1, 2 and 3 `bianmin serve` replicas of one instance on this machine:
//! each count on a stream and scratch database of its own, the replicas sharing the instance's
//! secrets (signing key, intake-id secret, KEK directory), the load split evenly over their
//! HTTP edges. On a small machine this shows the overhead of several processes (leases,
//! cache checks, optimistic-concurrency retries), not a speed-up: the figure is for larger
//! machines.

use serde::Serialize;

use crate::city::City;
use crate::load::{self, Edge};
use crate::scratch::ScratchDb;
use crate::serve::{Serve, ServeSettings};
use crate::stats::Throughput;

/// The rate of one replica count.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaRate {
    /// `serve` processes.
    pub replicas: usize,
    /// Commands (intake included) over all of them, per second of wall time.
    pub commands: Throughput,
    /// Commands that failed.
    pub errors: u64,
}

/// Runs `requests` lifecycles through 1, 2 and 3 replicas in turn.
pub async fn measure(
    base: &ServeSettings,
    city: &City,
    pg_url: &str,
    tag: &str,
    requests: u64,
    in_flight: usize,
) -> anyhow::Result<Vec<ReplicaRate>> {
    let mut rates = Vec::new();
    for replicas in 1..=3usize {
        let run = format!("{tag}r{replicas}");
        let db = ScratchDb::create(pg_url, &run).await?;
        let outcome = one_count(base, city, &db, &run, replicas, requests, in_flight).await;
        db.drop_now().await?;
        rates.push(outcome?);
    }
    Ok(rates)
}

async fn one_count(
    base: &ServeSettings,
    city: &City,
    db: &ScratchDb,
    run: &str,
    replicas: usize,
    requests: u64,
    in_flight: usize,
) -> anyhow::Result<ReplicaRate> {
    let secrets = tempfile::tempdir()?;
    let settings = ServeSettings {
        database_url: db.url.clone(),
        stream: format!("BIANMIN_BENCH_{run}"),
        subject_prefix: format!("bmbench{run}"),
        shared_secrets: Some(secrets.path().to_path_buf()),
        ..base.clone()
    };
    // One after the other: the first creates the shared secrets.
    let mut engines = Vec::new();
    for _ in 0..replicas {
        engines.push(Serve::start(&settings).await?);
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(in_flight)
        .build()?;
    let edges: Vec<Edge> = engines
        .iter()
        .map(|engine| Edge::Http {
            client: client.clone(),
            base_url: engine.base_url.clone(),
        })
        .collect();
    let per = requests / replicas as u64;
    let started = std::time::Instant::now();
    let drives = edges.iter().enumerate().map(|(i, edge)| {
        let range = i as u64 * per..(i as u64 + 1) * per;
        load::drive(edge, city, run, range, (in_flight / replicas).max(1))
    });
    let outcomes = futures::future::join_all(drives).await;
    let elapsed = started.elapsed();
    for engine in engines {
        engine.stop().await?;
    }
    Ok(ReplicaRate {
        replicas,
        commands: Throughput::new(outcomes.iter().map(|o| o.commands).sum(), elapsed),
        errors: outcomes.iter().map(|o| o.error_count()).sum(),
    })
}
