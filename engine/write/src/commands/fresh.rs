//! Whether a cached request state is current: other replicas append to the same log, so a
//! refusal, a no-op or a read decided on a cache entry is confirmed against the request's last
//! position in the log first ([`engine_log::EventLog::head`]).

use schemas::RequestId;

use super::{CommandError, CommandService};

impl CommandService {
    /// `refusal` when the state it was decided on is the request's latest (`fresh` from the
    /// log, or a cache entry at the log's head); otherwise a conflict, which the caller
    /// retries on a state loaded from the log: a refusal is never based on a state older
    /// than the log (another replica may have written since this one cached it).
    pub(super) async fn confirmed(
        &self,
        id: RequestId,
        position: u64,
        fresh: bool,
        refusal: CommandError,
    ) -> CommandError {
        if fresh {
            return refusal;
        }
        match self.is_current(id, position).await {
            Ok(true) => refusal,
            Ok(false) => CommandError::Conflict { request_id: id },
            Err(error) => error,
        }
    }

    /// Whether `position` is the request's last position in the log; forgets the cache entry
    /// when it is not.
    pub(super) async fn is_current(
        &self,
        id: RequestId,
        position: u64,
    ) -> Result<bool, CommandError> {
        let head = self.inner.log.head(id).await?;
        if head != position {
            tracing::debug!(request_id = %id, cached = position, head, "cached state behind the log");
            self.forget(id);
        }
        Ok(head == position)
    }
}
