//! The write path of Bianmin: everything between "a caller asks for a command" and "its
//! events are on the log".
//!
//! - [`commands`]: the command service: loads a request's state (the [`cache`] first, then
//!   the log), asks `engine-core` to decide, and records the outcome through the log's one
//!   sealed-commit writer; idempotency, optimistic concurrency and retries on conflict.
//! - [`contacts`]: the encrypted contact store (residents' personal data kept off the log),
//!   on SQLite files or PostgreSQL, with its key-encryption keys ([`contacts::kek`]).
//! - [`stores`]: where the contact store, privacy ledger and delivery table live.
//! - [`intake_ids`]: the keyed index from a channel's external id to the request it created.
//! - [`metrics`]: the process's Prometheus registry and the command path's collectors.
//!
//! **Boundary:** depends on `schemas`, `engine-core` and `engine-log` only. Nothing here
//! knows HTTP, NATS request-reply, the configuration file or any background worker; the
//! edges and workers call into this crate, never the reverse.

pub mod cache;
pub mod commands;
pub mod contacts;
pub mod intake_ids;
pub mod metrics;
pub mod stores;
