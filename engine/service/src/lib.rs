//! The I/O shell of Bianmin and its composition root: the command service, intake over NATS
//! and HTTP, the supervisor, the projector runner, and the `bianmin` CLI, over the event log
//! of crate `engine-log` (opened from the configuration in [`log_open`]).
//!
//! **Boundary:** the domain rules live in `engine-core`; this crate only loads state,
//! asks the core to decide, and records the result.

pub mod app;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod calendar;
pub mod commands;
pub mod config;
pub mod contacts;
pub mod export;
pub mod http;
pub mod import;
pub mod intake_ids;
pub mod json_keys;
pub mod lease;
pub mod log_open;
pub mod media;
pub mod metrics;
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
pub mod stores;
pub mod stores_copy;
pub mod supervisor;
pub mod telemetry;
pub mod upward;
pub mod whatif;
