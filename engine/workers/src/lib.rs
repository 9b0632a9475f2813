//! The engine's background workers that follow the log and act on it, with the leases that
//! let exactly one replica run each.
//!
//! - [`lease`]: leased singleton workers (`Leases::run`): local on the embedded log, a
//!   JetStream key-value lease between replicas; a failing worker releases its lease and
//!   starts again after a backoff.
//! - [`supervisor`]: durable timers over the requests' deadlines, firing reminders, warnings,
//!   overdue marks and escalations as commands with deterministic ids.
//! - [`projector`]: the projector runner that keeps the read models of crate `projections`
//!   up to date from their checkpoints, and rebuilds them.
//!
//! **Boundary:** depends on `schemas`, `engine-core`, `engine-log`, `engine-write` and
//! `projections`; never on the HTTP or NATS edges or the configuration file (each worker
//! takes its own settings type, which the service's configuration embeds).

pub mod lease;
pub mod projector;
pub mod supervisor;
