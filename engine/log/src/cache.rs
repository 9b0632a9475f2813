//! A bounded least-recently-used cache: past its capacity the least recently used eighth is
//! evicted in one sweep (amortised O(1) per insert). The log's command bindings and the command
//! service's request states both use it, so neither holds everything.

use std::collections::HashMap;
use std::hash::Hash;

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
