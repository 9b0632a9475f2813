//! Command bindings: every command id recorded through [`super::EventLog::append_bound`] is
//! bound, forever, to one request and one command (a digest of the command and who sent it).
//!
//! The binding is what makes an idempotency key permanent. The log's own idempotency by
//! `commit_id` only answers "this commit is already here"; on JetStream it rests on the
//! server's duplicate window (`Nats-Msg-Id`, 2 minutes) and, past it, on reading the request's
//! own subject, so an id reused on *another* request after the window would be accepted a
//! second time, and nothing in the log says which command body an id was first used for.
//!
//! Where bindings are kept:
//! - SQLite: the table `command_bindings` in the log's own database, written in the same
//!   transaction as the commit (group commit included), so a binding exists exactly when
//!   its commit does.
//! - JetStream: the key-value bucket [`schemas::Names::commands_bucket`] (`<PREFIX>_COMMANDS`,
//!   file storage, the log's replica count), key = command id, written with `create` (refused
//!   when the key exists) **before** the commit is published. A crash between the two leaves
//!   a binding without a commit: a retry of the same command finds the binding its own and
//!   publishes; any other request or body finds the id taken. The other order would let a
//!   crash after the publish leave a commit whose id a second request could still bind.
//!   Bindings are read back from the bucket's stream leader (never a direct get, which a
//!   lagging replica may serve).
//!
//! Bindings never change, so every process keeps the ones it read or wrote in a bounded
//! cache ([`BindingCache`]): a retried command is checked without a round trip.

use std::sync::Mutex;

use schemas::RequestId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cache::BoundedCache;

/// Bindings one process keeps in memory (about 200 bytes each).
pub const BINDING_CACHE_MAX: usize = 50_000;

/// What a command id is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// The request the id was first used on.
    pub request_id: RequestId,
    /// SHA-256 (hex) of the canonical JSON of the command the id was first used for (see
    /// `commands::binding`).
    pub digest: String,
}

impl Binding {
    /// The stored form (JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("bindings always serialise")
    }

    /// Reads the stored form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Binding, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// The bindings this process has read or written, at most [`BINDING_CACHE_MAX`]; an entry
/// is never stale because a binding never changes.
#[derive(Debug)]
pub struct BindingCache {
    entries: Mutex<BoundedCache<Uuid, Binding>>,
}

impl Default for BindingCache {
    fn default() -> BindingCache {
        BindingCache {
            entries: Mutex::new(BoundedCache::new(BINDING_CACHE_MAX)),
        }
    }
}

impl BindingCache {
    /// The cached binding of `command_id`.
    pub fn get(&self, command_id: Uuid) -> Option<Binding> {
        self.lock().get(&command_id)
    }

    /// Remembers that `command_id` is bound to `binding`.
    pub fn put(&self, command_id: Uuid, binding: Binding) {
        self.lock().put(command_id, binding);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BoundedCache<Uuid, Binding>> {
        // A poisoned lock only means a panic elsewhere mid-update; entries are whole values.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
