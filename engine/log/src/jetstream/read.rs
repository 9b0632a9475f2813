//! Reads of the JetStream log.
//!
//! A request's history is read with message gets on its subject from the stream leader
//! (`$JS.API.STREAM.MSG.GET` with a start sequence, one round trip per commit): no consumer
//! is created, so a history read costs the meta leader nothing and does not fail while the
//! cluster elects one. Ranges of the whole log (verify, rebuild, catch-up) use an ephemeral
//! pull consumer, which the meta leader creates.
//!
//! Either read rides out an election — of the stream's leader for gets, of the meta leader
//! for a consumer's creation — by trying again with [`Backoff::read`] delays for up to
//! [`READ_PATIENCE`]; only then is the log reported unavailable. A get never goes to a
//! replica (direct get), which may lag behind the leader.

use std::time::Duration;

use async_nats::jetstream::{consumer, stream};
use futures::StreamExt;
use schemas::RequestId;
use stream::LastRawMessageErrorKind;

use super::JetStreamLog;
use super::transient_api_error;
use crate::LogError;
use crate::backoff::{Attempt, Backoff, Retries};

/// How long a read keeps trying through an election before the log is unavailable: a
/// JetStream leader election normally takes a few seconds.
pub(super) const READ_PATIENCE: Duration = Duration::from_secs(20);
/// How long an ephemeral read consumer lives after its reader vanished (normally it is
/// deleted right after use; this bounds leaks when the delete is lost).
const READ_CONSUMER_INACTIVE: Duration = Duration::from_secs(30);
/// Messages asked for per pull request while reading ranges.
const FETCH_BATCH_LEN: usize = 512;
/// Pull rounds in a row that may bring nothing before a read gives up.
const READ_ROUNDS_MAX: u32 = 8;

/// Runs `attempt` until it is done or fails for good, retrying transient failures with
/// [`Backoff::read`] delays for up to [`READ_PATIENCE`]; a transient failure that outlasts
/// it is reported as it is (the log unavailable).
async fn patiently<T, F, Fut>(what: &str, attempt: F) -> Result<T, LogError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Attempt<T, LogError>>,
{
    Backoff::read()
        .patiently(what, READ_PATIENCE, Retries::Quiet, attempt)
        .await
}

impl JetStreamLog {
    /// See [`crate::EventLog::load_raw`]: the request's commits, one get per commit.
    pub(crate) async fn load_raw(
        &self,
        request_id: RequestId,
    ) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        let subject = self.subject(request_id);
        let mut records = Vec::new();
        let mut next = 1;
        loop {
            let got = patiently("history read", || async {
                match self
                    .shared
                    .stream
                    .get_first_raw_message_by_subject(&subject, next)
                    .await
                {
                    Ok(message) => Attempt::Done(Some(message)),
                    Err(e) => match e.kind() {
                        LastRawMessageErrorKind::NoMessageFound => Attempt::Done(None),
                        LastRawMessageErrorKind::InvalidSubject => Attempt::Failed(
                            LogError::Refused(format!("history read of {subject}: {e}")),
                        ),
                        LastRawMessageErrorKind::JetStream(api) if !transient_api_error(&api) => {
                            Attempt::Failed(LogError::Unavailable(format!("history read: {e}")))
                        }
                        _ => {
                            Attempt::Transient(LogError::Unavailable(format!("history read: {e}")))
                        }
                    },
                }
            })
            .await?;
            let Some(message) = got else {
                return Ok(records);
            };
            next = message.sequence + 1;
            records.push((message.sequence, message.payload.to_vec()));
        }
    }

    /// Up to `max` raw records with position >= `from`.
    pub(crate) async fn read_raw_from(
        &self,
        from: u64,
        max: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        let deliver_policy = consumer::DeliverPolicy::ByStartSequence {
            start_sequence: from,
        };
        self.read_with_consumer(deliver_policy, max).await
    }

    /// Reads with an ephemeral, unacknowledged pull consumer, then deletes it. Reads the
    /// records pending when the consumer was created (a consistent snapshot; at most `max`):
    /// the count comes with the creation answer, so a read costs two round trips.
    async fn read_with_consumer(
        &self,
        deliver_policy: consumer::DeliverPolicy,
        max: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        let config = consumer::pull::Config {
            deliver_policy,
            ack_policy: consumer::AckPolicy::None,
            replay_policy: consumer::ReplayPolicy::Instant,
            inactive_threshold: READ_CONSUMER_INACTIVE,
            memory_storage: true,
            num_replicas: 1,
            ..Default::default()
        };
        let reader = patiently("create read consumer", || async {
            match self.shared.stream.create_consumer(config.clone()).await {
                Ok(reader) => Attempt::Done(reader),
                Err(e) => match e.kind() {
                    stream::ConsumerErrorKind::JetStream(api) if !transient_api_error(&api) => {
                        Attempt::Failed(LogError::Unavailable(format!("create read consumer: {e}")))
                    }
                    _ => Attempt::Transient(LogError::Unavailable(format!(
                        "create read consumer: {e}"
                    ))),
                },
            }
        })
        .await?;
        let pending = reader.cached_info().num_pending;
        let count = usize::try_from(pending).unwrap_or(usize::MAX).min(max);
        let result = drain(&reader, count).await;
        let name = reader.cached_info().name.clone();
        let stream = self.shared.stream.clone();
        tokio::spawn(async move {
            if let Err(error) = stream.delete_consumer(&name).await {
                tracing::debug!(%error, consumer = %name, "read consumer not deleted; it expires");
            }
        });
        result
    }
}

/// Pulls `count` records from `reader` (they exist: the stream denies deletes).
///
/// A pull round that fails or brings nothing is tried again, up to [`READ_ROUNDS_MAX`]
/// times in a row with the [`Backoff::read`] delays: on a clustered (R3) stream the consumer a
/// read just created may not answer its first pulls yet (`503`, no responders), and with
/// `AckPolicy::None` a round that failed delivered nothing that a later round repeats.
async fn drain(
    reader: &consumer::PullConsumer,
    count: usize,
) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
    let mut records = Vec::with_capacity(count.min(FETCH_BATCH_LEN));
    let mut backoff = Backoff::read();
    let mut failed_rounds = 0;
    while records.len() < count {
        let before = records.len();
        let round = pull_round(reader, count, &mut records).await;
        if records.len() > before {
            failed_rounds = 0;
            backoff.reset();
            continue;
        }
        failed_rounds += 1;
        if failed_rounds >= READ_ROUNDS_MAX {
            return Err(round.err().unwrap_or_else(|| {
                // Nothing arrived although records are pending: report rather than spin.
                LogError::Unavailable(format!("read stopped after {before} of {count} records"))
            }));
        }
        tracing::debug!(error = ?round.err(), read = before, of = count, "pull round brought nothing; trying again");
        tokio::time::sleep(backoff.next_delay()).await;
    }
    Ok(records)
}

/// One fetch of at most [`FETCH_BATCH_LEN`] records into `records`, stopping at `count`.
async fn pull_round(
    reader: &consumer::PullConsumer,
    count: usize,
    records: &mut Vec<(u64, Vec<u8>)>,
) -> Result<(), LogError> {
    let want = (count - records.len()).min(FETCH_BATCH_LEN);
    let mut batch = reader
        .fetch()
        .max_messages(want)
        .messages()
        .await
        .map_err(|e| LogError::Unavailable(format!("fetch: {e}")))?;
    while let Some(message) = batch.next().await {
        let message = message.map_err(|e| LogError::Unavailable(format!("fetch: {e}")))?;
        let position = message
            .info()
            .map_err(|e| LogError::Unavailable(format!("message metadata: {e}")))?
            .stream_sequence;
        records.push((position, message.payload.to_vec()));
        if records.len() >= count {
            break;
        }
    }
    Ok(())
}
