//! The cache of hot request states, so a busy request is not replayed from the log on every
//! command. Bounded ([`BoundedCache`], shared with the log's command bindings): it never holds
//! everything.

use std::collections::HashMap;

pub use engine_log::cache::BoundedCache;

use engine_core::Request;
use schemas::RequestId;
use uuid::Uuid;

/// One cached request: its state and what appending after it needs.
#[derive(Debug, Clone)]
pub struct CachedRequest {
    /// The state after every event up to `position`.
    pub request: Request,
    /// Global position of the request's last commit (0: none).
    pub position: u64,
    /// Hash of the request's last event (the next event's `prev_hash`).
    pub last_hash: String,
    /// When the request's last event occurred: a command decided as of an earlier instant
    /// is recorded no earlier than this, so a history never runs backwards.
    pub last_occurred_at: Option<schemas::Timestamp>,
    /// Ids of every commit of the request, with their positions: a retried command is
    /// recognised without reading the log.
    pub commit_ids: HashMap<Uuid, u64>,
}

impl CachedRequest {
    /// A request with no commits yet.
    pub fn empty(id: RequestId) -> CachedRequest {
        CachedRequest {
            request: Request::new(id),
            position: 0,
            last_hash: schemas::envelope::GENESIS_HASH.to_string(),
            last_occurred_at: None,
            commit_ids: HashMap::new(),
        }
    }
}

/// The bounded cache of request states.
pub type RequestCache = BoundedCache<RequestId, CachedRequest>;
