//! The request states the command service decides on: the bounded cache, replays from the
//! log, the per-request locks, and the outcomes of commands recorded before (retries).

use std::sync::{Arc, Weak};

use engine_core::Request;
use schemas::{EventEnvelope, LoggedCommit, RequestId};
use uuid::Uuid;

use super::{CommandError, CommandOutcome, CommandService};
use crate::cache::{CachedRequest, RequestCache};
use engine_log::Binding;

impl CommandService {
    /// Refuses a command whose id this request recorded before unless it is the same command
    /// from the same sender. A commit written before bindings existed has none: its retries
    /// are recognised by id and request alone, as they were then.
    pub(super) async fn check_retry(
        &self,
        command_id: Uuid,
        binding: &Binding,
    ) -> Result<(), CommandError> {
        match self.inner.log.binding(command_id).await? {
            Some(bound) if bound != *binding => Err(CommandError::KeyReused { command_id }),
            _ => Ok(()),
        }
    }

    /// The outcome a command recorded earlier, read back from the log. The log answering
    /// "duplicate" for a commit this request does not hold means the id was used on another
    /// request (by a commit written before bindings existed).
    pub(super) async fn original_outcome(
        &self,
        id: RequestId,
        command_id: Uuid,
    ) -> Result<CommandOutcome, CommandError> {
        let commits = self.inner.log.load(id).await?;
        match commits
            .into_iter()
            .find(|c| c.commit.commit_id == command_id)
        {
            Some(LoggedCommit { position, commit }) => Ok(CommandOutcome {
                request_id: id,
                version: commit.last_version(),
                position,
                events: commit.events,
                duplicate: true,
            }),
            None => Err(CommandError::KeyReused { command_id }),
        }
    }

    /// The current state of a request: a cached state only when it is at the request's last
    /// position in the log (one cheap read, [`EventLog::head`]), else a fresh load.
    pub async fn load(&self, id: RequestId) -> Result<Request, CommandError> {
        if let Some(hit) = self.cached(id) {
            self.is_current(id, hit.position).await?;
        }
        let cached = self.state(id).await?;
        if cached.request.exists() {
            Ok(cached.request)
        } else {
            Err(CommandError::NotFound(id))
        }
    }

    /// Every event of a request, in order.
    pub async fn history(&self, id: RequestId) -> Result<Vec<EventEnvelope>, CommandError> {
        let commits = self.inner.log.load(id).await?;
        if commits.is_empty() {
            return Err(CommandError::NotFound(id));
        }
        Ok(commits.into_iter().flat_map(|c| c.commit.events).collect())
    }

    /// The cached state of `id`, or its replay from the log.
    pub(super) async fn state(&self, id: RequestId) -> Result<CachedRequest, CommandError> {
        if let Some(hit) = self.cached(id) {
            return Ok(hit);
        }
        // The head counts quarantined records too: the next append must name the request's
        // last stored record, while the state folds only the admitted ones.
        let (commits, head) = self.inner.log.load_with_head(id).await?;
        let mut entry = CachedRequest::empty(id);
        for LoggedCommit { position, commit } in commits {
            for envelope in &commit.events {
                entry.request.apply(envelope);
                entry.last_hash = envelope.hash.clone();
                entry.last_occurred_at = Some(envelope.occurred_at);
            }
            entry.commit_ids.insert(commit.commit_id, position);
        }
        entry.position = head;
        if entry.position > 0 {
            self.remember(id, entry.clone());
        }
        Ok(entry)
    }

    pub(super) fn cached(&self, id: RequestId) -> Option<CachedRequest> {
        self.cache().get(&id)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, RequestCache> {
        // A poisoned cache only means a panic elsewhere mid-update; entries are whole values.
        self.inner
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn remember(&self, id: RequestId, entry: CachedRequest) {
        self.cache().put(id, entry);
    }

    pub(super) fn forget(&self, id: RequestId) {
        self.cache().remove(&id);
    }

    pub(super) fn lock_for(&self, id: RequestId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .inner
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(lock) = locks.get(&id).and_then(Weak::upgrade) {
            return lock;
        }
        // Drop locks nobody holds any more, so the map stays as small as the work in flight.
        if locks.len() >= 1024 {
            locks.retain(|_, weak| weak.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(id, Arc::downgrade(&lock));
        lock
    }
}
