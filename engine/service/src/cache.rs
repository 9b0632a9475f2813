//! Bounded caches: hot request states, so a busy request is not replayed from the log on
//! every command, and command bindings (see [`crate::log::Binding`]), so a retried command is
//! checked without a round trip. Never holds everything: past its capacity the least recently
//! used eighth is evicted in one sweep (amortised O(1) per insert).

use std::collections::HashMap;
use std::hash::Hash;

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

/// A bounded least-recently-used cache of cloneable values.
#[derive(Debug)]
pub struct BoundedCache<K, V> {
    capacity: usize,
    clock: u64,
    entries: HashMap<K, (u64, V)>,
}

impl<K: Eq + Hash, V: Clone> BoundedCache<K, V> {
    /// An empty cache holding at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> BoundedCache<K, V> {
        BoundedCache {
            capacity: capacity.max(1),
            clock: 0,
            entries: HashMap::new(),
        }
    }

    /// The cached value of `id`, marking it recently used.
    pub fn get(&mut self, id: &K) -> Option<V> {
        self.clock += 1;
        let tick = self.clock;
        self.entries.get_mut(id).map(|(used, entry)| {
            *used = tick;
            entry.clone()
        })
    }

    /// Stores the value of `id`.
    pub fn put(&mut self, id: K, entry: V) {
        self.clock += 1;
        self.entries.insert(id, (self.clock, entry));
        if self.entries.len() > self.capacity {
            self.evict();
        }
    }

    /// Forgets `id` (a request after a conflict: someone else wrote to it).
    pub fn remove(&mut self, id: &K) {
        self.entries.remove(id);
    }

    /// Number of cached entries.
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
