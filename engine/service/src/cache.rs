//! A bounded cache of hot request states, so a busy request is not replayed from the log on
//! every command. Never holds all requests: past its capacity the least recently used
//! eighth is evicted in one sweep (amortised O(1) per insert).

use std::collections::HashMap;

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
            commit_ids: HashMap::new(),
        }
    }
}

/// The bounded cache.
#[derive(Debug)]
pub struct RequestCache {
    capacity: usize,
    clock: u64,
    entries: HashMap<RequestId, (u64, CachedRequest)>,
}

impl RequestCache {
    /// An empty cache holding at most `capacity` requests (at least 1).
    pub fn new(capacity: usize) -> RequestCache {
        RequestCache {
            capacity: capacity.max(1),
            clock: 0,
            entries: HashMap::new(),
        }
    }

    /// The cached state of `id`, marking it recently used.
    pub fn get(&mut self, id: &RequestId) -> Option<CachedRequest> {
        self.clock += 1;
        let tick = self.clock;
        self.entries.get_mut(id).map(|(used, entry)| {
            *used = tick;
            entry.clone()
        })
    }

    /// Stores the state of `id`.
    pub fn put(&mut self, id: RequestId, entry: CachedRequest) {
        self.clock += 1;
        self.entries.insert(id, (self.clock, entry));
        if self.entries.len() > self.capacity {
            self.evict();
        }
    }

    /// Forgets `id` (after a conflict: someone else wrote to it).
    pub fn remove(&mut self, id: &RequestId) {
        self.entries.remove(id);
    }

    /// Number of cached requests.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn evict(&mut self) {
        let n_evict = (self.capacity / 8).max(1).min(self.entries.len());
        let mut ages: Vec<u64> = self.entries.values().map(|(used, _)| *used).collect();
        ages.sort_unstable();
        let cutoff = ages[n_evict - 1];
        self.entries.retain(|_, (used, _)| *used > cutoff);
    }
}
