//! Auditors' tools: hash-chain verification, daily digests, request histories and time
//! travel, replay of a log slice through the projections, and recorded reference data.
//!
//! Everything here reads the event log as it is stored; nothing trusts a snapshot or a read
//! model. The pieces:
//! - [`verify`]: recomputes each request's hash chain over the raw stored bytes;
//! - [`digest`]: one Merkle root per day (Asia/Shanghai), recorded and published to NATS;
//! - [`timeline`]: a request's history with the state after every step, and its state as of a
//!   time or version, rebuilt from the events;
//! - [`as_of`]: the same over the log, for the HTTP handlers;
//! - [`replay`]: a slice of the log replayed into a scratch database, with its rates;
//! - [`reference`]: catalogue, policy, calendar, directory and role-grant versions, recorded;
//! - [`http`]: the audit endpoints as an axum router;
//! - [`cli`]: the `verify`, `history`, `replay`, `digest` and `upward replay` subcommands.

pub mod anchor;
pub mod as_of;
pub mod cli;
pub mod digest;
pub mod http;
pub mod quarantine;
pub mod reference;
pub mod replay;
pub mod timeline;
pub mod verify;

pub use http::router;

use schemas::{Actor, Role};

use engine_log::LogError;

/// Why an audit operation failed (the tamper findings themselves are reports, not errors).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// NATS failed (publish, subscribe, JetStream API).
    #[error("nats: {0}")]
    Nats(String),
    /// The scratch projection database failed.
    #[error("projections: {0}")]
    Projections(String),
    /// The command service refused or failed a command.
    #[error("command: {0}")]
    Command(String),
    /// An argument does not parse or makes no sense (a filter, a day, a time range).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// Writing output failed.
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
}

/// The actor the engine records its own audit facts as.
pub(crate) fn engine_actor(id: &str) -> Actor {
    Actor {
        id: id.to_string(),
        role: Role::System,
        unit: None,
    }
}
