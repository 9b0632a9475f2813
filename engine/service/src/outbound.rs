//! The one outbound NATS link the upward-report link ([`crate::upward`]) and the rate-report
//! link ([`crate::reports::link`]) are built on: messages derived from log commits, published
//! through JetStream with a stable `Nats-Msg-Id` and the log position they came from, retried
//! with the one backoff policy until stored, and resumed after a restart from the position
//! of the last live (not replayed) message in the stream.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use futures::StreamExt as _;
use futures::stream::BoxStream;
use schemas::LoggedCommit;
use tokio_util::sync::CancellationToken;

use engine_log::LogError;
use engine_log::backoff::Backoff;

/// Header naming the log position a published message was derived from.
pub const POSITION_HEADER: &str = "Bianmin-Position";
/// Header marking a re-publication (`true`): receivers deduplicate by message id.
pub const REPLAY_HEADER: &str = "Bianmin-Replay";
/// Most stored messages [`sent_through`] walks back over (replayed ones) to find where it was.
const RESUME_WALK_MAX: u64 = 10_000;

/// Publishes a message derived from the commit at log `position` through JetStream with
/// `Nats-Msg-Id` = `message_id`, the [`POSITION_HEADER`] (and [`REPLAY_HEADER`] when
/// `replayed`), and waits for its acknowledgement.
pub async fn publish_logged(
    js: &jetstream::Context,
    subject: String,
    message_id: &str,
    position: u64,
    replayed: bool,
    payload: Vec<u8>,
) -> Result<(), jetstream::context::PublishError> {
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, message_id);
    headers.insert(POSITION_HEADER, position.to_string().as_str());
    if replayed {
        headers.insert(REPLAY_HEADER, "true");
    }
    js.publish_with_headers(subject, headers, payload.into())
        .await?
        .await?;
    Ok(())
}

/// The log position the live publisher has published through (0: nothing yet), read from the
/// last live message in `stream`.
pub async fn sent_through(
    stream: &stream::Stream,
) -> Result<u64, jetstream::context::RequestError> {
    let info = stream.get_info().await?;
    let (first, mut seq) = (info.state.first_sequence, info.state.last_sequence);
    let mut walked = 0;
    while seq >= first.max(1) && seq > 0 && walked < RESUME_WALK_MAX {
        match stream.get_raw_message(seq).await {
            Ok(message) => {
                let replayed = message.headers.get(REPLAY_HEADER).is_some();
                if !replayed && let Some(p) = message.headers.get(POSITION_HEADER) {
                    return Ok(p.as_str().parse().unwrap_or(0));
                }
            }
            // A gap (deleted message) is skipped.
            Err(error) => tracing::debug!(%error, seq, "outbound stream message not readable"),
        }
        seq -= 1;
        walked += 1;
    }
    Ok(0)
}

/// The next commit of a followed log, or `None` once `shutdown` is cancelled or the follow
/// ends; a failed read is logged (as `what`) and the follow goes on.
pub async fn next_commit(
    commits: &mut BoxStream<'static, Result<LoggedCommit, LogError>>,
    shutdown: &CancellationToken,
    what: &str,
) -> Option<LoggedCommit> {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            item = commits.next() => match item {
                Some(Ok(logged)) => return Some(logged),
                Some(Err(error)) => tracing::warn!(%error, "following the log for {what} failed"),
                None => return None,
            },
        }
    }
}

/// Calls `attempt` until it succeeds, sleeping the link backoff between failures (each
/// logged with `message_id`). `false` when `shutdown` was cancelled first.
pub async fn until_stored<E, F, Fut>(
    mut attempt: F,
    message_id: &str,
    shutdown: &CancellationToken,
) -> bool
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
{
    let mut backoff = Backoff::link();
    loop {
        match attempt().await {
            Ok(()) => return true,
            Err(error) => {
                tracing::warn!(%error, message_id, "outbound publish failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        }
    }
}
