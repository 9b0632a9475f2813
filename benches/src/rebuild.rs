//! Rebuilding every projection from the event log with the projections crate's own rebuild
//! (shadow tables, then one swap), all projectors in one pass over the log, fed by one ordered
//! consumer over the engine's JetStream stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use projections::Projections;
use schemas::{CommandKind, Commit, LoggedCommit};
use tokio::sync::Mutex;

use crate::stats::Throughput;

/// Commits handed to the rebuild per batch.
const BATCH: usize = 500;

/// A batch of decoded commits, or why reading stopped.
type Read = anyhow::Result<Vec<LoggedCommit>>;

/// Decoded batches read ahead of the rebuild by a task of their own.
const READ_AHEAD: usize = 16;

/// Reads the stream in order from any position. A task of its own reads and decodes ahead
/// (on another core than the rebuild's writes) while the requested positions follow on; any
/// other position restarts it there.
struct Source {
    stream: jetstream::stream::Stream,
    head: u64,
    next: u64,
    ahead: Option<(
        tokio::sync::mpsc::Receiver<Read>,
        tokio::task::JoinHandle<()>,
    )>,
    events: Arc<AtomicU64>,
    supervisor: Arc<AtomicU64>,
}

impl Drop for Source {
    fn drop(&mut self) {
        if let Some((_, task)) = self.ahead.take() {
            task.abort();
        }
    }
}

impl Source {
    async fn batch(&mut self, from: u64) -> anyhow::Result<Vec<LoggedCommit>> {
        if from > self.head {
            return Ok(Vec::new());
        }
        if self.ahead.is_none() || self.next != from {
            if let Some((_, task)) = self.ahead.take() {
                task.abort();
            }
            let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
            let task = tokio::spawn(read_ahead(
                self.stream.clone(),
                from,
                self.head,
                tx,
                self.events.clone(),
                self.supervisor.clone(),
            ));
            self.ahead = Some((rx, task));
        }
        let Some((rx, _)) = self.ahead.as_mut() else {
            return Ok(Vec::new());
        };
        let batch = rx
            .recv()
            .await
            .ok_or_else(|| anyhow::anyhow!("the rebuild reader ended"))??;
        if let Some(last) = batch.last() {
            self.next = last.position + 1;
        }
        Ok(batch)
    }
}

/// Reads the stream from `from` to `head` with one ordered consumer, decoding each commit, and
/// sends batches of [`BATCH`] commits (the last one shorter) to `out`.
async fn read_ahead(
    stream: jetstream::stream::Stream,
    from: u64,
    head: u64,
    out: tokio::sync::mpsc::Sender<Read>,
    events: Arc<AtomicU64>,
    supervisor: Arc<AtomicU64>,
) {
    let read = async {
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from,
                },
                ..Default::default()
            })
            .await
            .context("creating the rebuild consumer")?;
        let mut messages = consumer
            .messages()
            .await
            .context("starting the rebuild consumer")?;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
                .await
                .context("the rebuild consumer stalled")?
                .ok_or_else(|| anyhow::anyhow!("the rebuild consumer ended"))?
                .map_err(|e| anyhow::anyhow!("rebuild consumer: {e}"))?;
            let position = message
                .info()
                .map_err(|e| anyhow::anyhow!("message info: {e}"))?
                .stream_sequence;
            let commit = Commit::from_bytes(&message.payload)
                .map_err(|e| anyhow::anyhow!("position {position} does not decode: {e}"))?;
            events.fetch_add(commit.events.len() as u64, Ordering::Relaxed);
            if matches!(
                commit.command,
                CommandKind::Remind
                    | CommandKind::Warn
                    | CommandKind::MarkOverdue
                    | CommandKind::Escalate
            ) {
                supervisor.fetch_add(1, Ordering::Relaxed);
            }
            batch.push(LoggedCommit { position, commit });
            let end = position >= head;
            if batch.len() >= BATCH || end {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if out.send(Ok(full)).await.is_err() || end {
                    return Ok(());
                }
            }
        }
    };
    if let Err(error) = read.await {
        let _ = out.send(Err(error)).await;
    }
}

/// The rebuild of every projector in one pass over the log.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    /// Events in the log, per second of the whole rebuild (every projector, one pass).
    pub events: Throughput,
    /// The pass: the projectors it rebuilt (joined with ` + `) and its events per second.
    pub per_projector: Vec<(String, Throughput)>,
    /// Commits the supervisor wrote (reminders, warnings, overdue marks, escalations).
    pub supervisor_commits: u64,
}

/// Rebuilds every projector of `database_url` from the stream `stream_name`, reading and
/// decoding the log once for all of them.
pub async fn rebuild_all(
    client: &async_nats::Client,
    stream_name: &str,
    database_url: &str,
) -> anyhow::Result<Rebuilt> {
    let js = jetstream::new(client.clone());
    let mut stream = js
        .get_stream(stream_name)
        .await
        .context("opening the engine's stream")?;
    let head = stream
        .info()
        .await
        .context("reading the stream head")?
        .state
        .last_sequence;
    let projections = Projections::connect(database_url)
        .await
        .context("connecting projections")?;
    let names = Projections::projector_names();
    let events = Arc::new(AtomicU64::new(0));
    let supervisor = Arc::new(AtomicU64::new(0));
    let source = Arc::new(Mutex::new(Source {
        stream: stream.clone(),
        head,
        next: 0,
        ahead: None,
        events: events.clone(),
        supervisor: supervisor.clone(),
    }));
    let started = Instant::now();
    projections
        .rebuild_projectors(
            names,
            head,
            |from| {
                let source = source.clone();
                async move {
                    source
                        .lock()
                        .await
                        .batch(from)
                        .await
                        .map_err(|e| format!("{e:#}"))
                }
            },
            |_, _| {},
        )
        .await
        .with_context(|| format!("rebuilding projectors {}", names.join(", ")))?;
    let elapsed = started.elapsed();
    let events = Throughput::new(events.load(Ordering::Relaxed), elapsed);
    Ok(Rebuilt {
        per_projector: vec![(names.join(" + "), events)],
        events,
        supervisor_commits: supervisor.load(Ordering::Relaxed),
    })
}
