//! The I/O shell of Bianmin and its composition root: intake over NATS and HTTP, the
//! supervisor, the projector runner and the other workers, and the `bianmin` CLI, over the
//! write path of crate `engine-write` and the event log of crate `engine-log` (opened from
//! the configuration in [`log_open`]).
//!
//! **Boundary:** the domain rules live in `engine-core`; this crate only loads state,
//! asks the core to decide, and records the result.

/// The workers under their long-standing paths, likewise.
pub use engine_workers::{lease, supervisor};
/// The write path's modules under their long-standing paths (`engine_service::commands`, …),
/// so the edges, workers and tools name them one way.
pub use engine_write::{cache, commands, contacts, intake_ids, metrics, stores};

pub mod app;
pub mod audit;
pub mod auth;
pub mod calendar;
pub mod cli_support;
pub mod config;
pub mod export;
pub mod http;
pub mod import;
pub mod json_keys;
pub mod log_open;
pub mod media;
pub mod nats;
pub mod nats_client;
pub mod notify;
pub mod openapi;
pub mod outbound;
pub mod policy_files;
pub mod privacy;
pub mod projector;
pub mod ratelimit;
pub mod read_models;
pub mod readiness;
pub mod reports;
pub mod stores_copy;
pub mod telemetry;
pub mod upward;
pub mod whatif;
