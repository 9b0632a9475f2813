//! Time travel over the log: a request's history with states, and the request as it stood at a
//! past time or version, read from the stored events (never from a snapshot or a read model).
//! These are what `GET /api/v1/requests/{id}?as_of=&version=` and `/history` call.

use engine_core::Request;
use schemas::{EventEnvelope, RequestId};

use super::AuditError;
use super::timeline::{AsOf, Step, history_with_states, state_as_of};
use engine_log::EventLog;

/// Every event of a request, in version order (empty when the request does not exist).
pub async fn events(
    log: &EventLog,
    request_id: RequestId,
) -> Result<Vec<EventEnvelope>, AuditError> {
    Ok(log
        .load(request_id)
        .await?
        .into_iter()
        .flat_map(|c| c.commit.events)
        .collect())
}

/// A request's history with the state after each step (`None` when it does not exist).
pub async fn history(
    log: &EventLog,
    request_id: RequestId,
) -> Result<Option<Vec<Step>>, AuditError> {
    let events = events(log, request_id).await?;
    Ok((!events.is_empty()).then(|| history_with_states(&events)))
}

/// The request as it stood at `at` (`None` when it does not exist at all; a request that
/// existed later but not yet at `at` comes back with version 0).
pub async fn request_as_of(
    log: &EventLog,
    request_id: RequestId,
    at: AsOf,
) -> Result<Option<Request>, AuditError> {
    let events = events(log, request_id).await?;
    if events.is_empty() {
        return Ok(None);
    }
    Ok(Some(state_as_of(request_id, &events, at.as_of, at.version)))
}
