//! The raw limits of the servers, measured first in every run so that the engine's figures can
//! be given as ratios to them:
//! - (a) JetStream appends with `Nats-Expected-Last-Subject-Sequence` (optimistic concurrency per
//!   subject, as the event log appends) across many subjects, 256 in flight, 256-byte payloads:
//!   the ceiling of the command path;
//! - (b) an ordered consumer replaying that stream from the start: the ceiling of log replay;
//! - (c) batched PostgreSQL upserts, 500 rows per transaction: the ceiling of projections.

use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, consumer, message::PublishMessage, stream};
use futures::StreamExt;
use serde::Serialize;
use sqlx::Connection;

use crate::stats::{Latency, Samples, Throughput};

/// Payload size of the raw appends (a typical commit is a few hundred bytes).
pub const PAYLOAD_BYTES: usize = 256;
/// Appends in flight at once.
pub const IN_FLIGHT: usize = 256;
/// Appends per subject, one after the other (a request sees about this many commits).
pub const APPENDS_PER_SUBJECT: usize = 8;
/// Rows per PostgreSQL transaction.
pub const UPSERT_BATCH: usize = 500;

/// The three raw limits.
#[derive(Debug, Clone, Serialize)]
pub struct RawLimits {
    /// (a) OCC appends to JetStream.
    pub occ_append: Throughput,
    /// Latency of one OCC append under that load.
    pub occ_append_latency: Option<Latency>,
    /// Appends refused for a wrong expected sequence (must be 0: each subject has one writer).
    pub occ_conflicts: u64,
    /// (b) ordered-consumer replay of the stream.
    pub replay: Throughput,
    /// (c) batched PostgreSQL upserts, rows per second.
    pub pg_upsert: Throughput,
}

/// Runs (a), (b) and (c). `appends` is the number of JetStream appends, `rows` the number of
/// PostgreSQL upserts. The stream `<tag>` is created here and deleted before returning.
pub async fn measure(
    client: &async_nats::Client,
    pg_url: &str,
    tag: &str,
    appends: usize,
    rows: usize,
) -> anyhow::Result<RawLimits> {
    let js = jetstream::new(client.clone());
    let stream_name = format!("BIANMIN_BENCH_RAW_{tag}");
    let subject_root = format!("bmbenchraw{tag}");
    js.create_stream(stream::Config {
        name: stream_name.clone(),
        subjects: vec![format!("{subject_root}.>")],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .context("creating the raw benchmark stream")?;

    let result = async {
        let (occ_append, latency, conflicts) = occ_appends(&js, &subject_root, appends).await?;
        let replay = ordered_replay(&js, &stream_name, appends as u64).await?;
        let pg_upsert = pg_upserts(pg_url, rows).await?;
        Ok(RawLimits {
            occ_append,
            occ_append_latency: latency,
            occ_conflicts: conflicts,
            replay,
            pg_upsert,
        })
    }
    .await;
    js.delete_stream(&stream_name).await.ok();
    result
}

/// (a): `total` appends over `total / APPENDS_PER_SUBJECT` subjects; each subject is written by
/// one chain that names the sequence of its previous append; `IN_FLIGHT` chains run at once.
async fn occ_appends(
    js: &jetstream::Context,
    subject_root: &str,
    total: usize,
) -> anyhow::Result<(Throughput, Option<Latency>, u64)> {
    let subjects = total.div_ceil(APPENDS_PER_SUBJECT).max(1);
    let payload = bytes::Bytes::from(vec![b'x'; PAYLOAD_BYTES]);
    let started = Instant::now();
    let mut chains = futures::stream::iter(0..subjects)
        .map(|s| {
            let js = js.clone();
            let payload = payload.clone();
            let subject = format!("{subject_root}.req.{s}");
            async move {
                let mut samples = Samples::with_capacity(APPENDS_PER_SUBJECT);
                let mut expected = 0u64;
                let mut conflicts = 0u64;
                let mut done = 0u64;
                for k in 0..APPENDS_PER_SUBJECT {
                    if s * APPENDS_PER_SUBJECT + k >= total {
                        break;
                    }
                    let t = Instant::now();
                    let publish = PublishMessage::build()
                        .payload(payload.clone())
                        .message_id(format!("{s}-{k}"))
                        .expected_last_subject_sequence(expected);
                    let ack = js.send_publish(subject.clone(), publish).await?.await;
                    match ack {
                        Ok(ack) => {
                            expected = ack.sequence;
                            done += 1;
                            samples.push(t.elapsed());
                        }
                        Err(e) if e.to_string().contains("wrong last sequence") => conflicts += 1,
                        Err(e) => return Err(anyhow::Error::new(e)),
                    }
                }
                anyhow::Ok((done, samples, conflicts))
            }
        })
        .buffer_unordered(IN_FLIGHT);
    let mut samples = Samples::with_capacity(total);
    let (mut done, mut conflicts) = (0u64, 0u64);
    while let Some(chain) = chains.next().await {
        let (d, s, c) = chain.context("raw OCC append")?;
        done += d;
        conflicts += c;
        samples.extend(s);
    }
    Ok((
        Throughput::new(done, started.elapsed()),
        samples.summary(),
        conflicts,
    ))
}

/// (b): an ordered consumer reads the whole stream from its first message.
async fn ordered_replay(
    js: &jetstream::Context,
    stream_name: &str,
    expected: u64,
) -> anyhow::Result<Throughput> {
    let stream = js
        .get_stream(stream_name)
        .await
        .context("opening the raw stream")?;
    let started = Instant::now();
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .context("creating the ordered consumer")?;
    let mut messages = consumer
        .messages()
        .await
        .context("starting the ordered consumer")?;
    let mut read = 0u64;
    let mut bytes = 0usize;
    let deadline = Duration::from_secs(600);
    while read < expected {
        let next = tokio::time::timeout(deadline, messages.next())
            .await
            .context("ordered replay stalled")?;
        let Some(message) = next else { break };
        let message = message.context("ordered replay")?;
        bytes += message.payload.len();
        read += 1;
    }
    anyhow::ensure!(
        read == expected,
        "replay read {read} of {expected} messages"
    );
    anyhow::ensure!(
        bytes == read as usize * PAYLOAD_BYTES,
        "replay payloads are incomplete"
    );
    Ok(Throughput::new(read, started.elapsed()))
}

/// (c): `rows` upserts into a five-column table keyed by request id, `UPSERT_BATCH` rows per
/// transaction as one `INSERT .. SELECT FROM UNNEST .. ON CONFLICT DO UPDATE`; about one
/// row in eight is an insert, the rest update a row written earlier (as projections do).
async fn pg_upserts(pg_url: &str, rows: usize) -> anyhow::Result<Throughput> {
    let mut conn = crate::scratch::connect(pg_url).await?;
    sqlx::query(
        "CREATE TABLE bench_raw_upsert (
            request_id uuid PRIMARY KEY,
            status text NOT NULL,
            department text NOT NULL,
            version bigint NOT NULL,
            updated_at timestamptz NOT NULL)",
    )
    .execute(&mut conn)
    .await
    .context("creating the raw upsert table")?;
    let keys = (rows / APPENDS_PER_SUBJECT).max(UPSERT_BATCH);
    let statuses = [
        "received",
        "accepted",
        "classified",
        "referred",
        "handling",
        "replied",
        "rated",
    ];
    let base = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH + chrono::Duration::days(20_000);
    let started = Instant::now();
    let mut written = 0usize;
    while written < rows {
        let n = UPSERT_BATCH.min(rows - written);
        let mut ids = Vec::with_capacity(n);
        let mut status = Vec::with_capacity(n);
        let mut department = Vec::with_capacity(n);
        let mut version = Vec::with_capacity(n);
        let mut updated = Vec::with_capacity(n);
        for i in written..written + n {
            let key = i % keys;
            let round = i / keys;
            ids.push(uuid::Uuid::from_u128(key as u128 + 1));
            status.push(statuses[round % statuses.len()].to_string());
            department.push(format!("dept-{}", key % 40));
            version.push(round as i64 + 1);
            updated.push(base + chrono::Duration::seconds(i as i64));
        }
        let mut tx = conn.begin().await?;
        sqlx::query(
            "INSERT INTO bench_raw_upsert (request_id, status, department, version, updated_at)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[])
             ON CONFLICT (request_id) DO UPDATE SET status = EXCLUDED.status,
                department = EXCLUDED.department, version = EXCLUDED.version,
                updated_at = EXCLUDED.updated_at",
        )
        .bind(&ids)
        .bind(&status)
        .bind(&department)
        .bind(&version)
        .bind(&updated)
        .execute(&mut *tx)
        .await
        .context("raw upsert batch")?;
        tx.commit().await?;
        written += n;
    }
    let elapsed = started.elapsed();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM bench_raw_upsert")
        .fetch_one(&mut conn)
        .await?;
    anyhow::ensure!(
        stored as usize == keys.min(rows),
        "upsert table holds {stored} rows"
    );
    sqlx::query("DROP TABLE bench_raw_upsert")
        .execute(&mut conn)
        .await
        .ok();
    conn.close().await.ok();
    Ok(Throughput::new(rows as u64, elapsed))
}
