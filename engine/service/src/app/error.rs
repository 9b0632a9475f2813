//! Why the app could not start or stopped abnormally: one variant per part that can fail,
//! each keeping its cause.

use std::net::SocketAddr;

use crate::contacts::ContactError;
use engine_log::LogError;

/// Why the app could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration names no valid instance (prefix, stream).
    #[error("configuration: {0}")]
    Config(#[source] Box<crate::config::ConfigError>),
    /// The commit signing key or the trusted keys could not be loaded.
    #[error("commit signing: {0}")]
    Signing(#[source] engine_log::signing::SigningError),
    /// The intake-id secret could not be read or created.
    #[error("intake-id secret: {0}")]
    IntakeIds(#[source] engine_log::signing::SigningError),
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// NATS could not be reached or refused the login.
    #[error(transparent)]
    Nats(#[from] crate::nats_client::NatsConnectError),
    /// The event log could not be opened.
    #[error("event log: {0}")]
    Log(#[from] LogError),
    /// The contact store could not be opened.
    #[error("contact store: {0}")]
    Contacts(#[from] ContactError),
    /// The projections' gauges could not be registered.
    #[error("projections: {0}")]
    Projections(#[source] prometheus::Error),
    /// The lease gauge could not be registered.
    #[error("leases: {0}")]
    Leases(#[source] prometheus::Error),
    /// The policy names no built-in profile.
    #[error("policy: {0}")]
    Policy(String),
    /// A reference-data file could not be read.
    #[error("policy: cannot read {path}: {source}")]
    PolicyFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The reference data do not parse or do not fit together.
    #[error("policy: {0}")]
    PolicyInvalid(#[source] engine_core::policy::LoadError),
    /// The reference data in force could not be recorded in the log.
    #[error("recording reference data: {0}")]
    Reference(#[source] crate::audit::AuditError),
    /// The privacy ledger could not be opened.
    #[error("privacy ledger: {0}")]
    Privacy(#[source] crate::privacy::PrivacyError),
    /// The media store could not be opened.
    #[error("media store: {0}")]
    Media(#[source] crate::media::MediaError),
    /// The resident notifier could not be set up (templates, delivery table).
    #[error("notifications: {0}")]
    Notify(#[source] crate::notify::NotifyError),
    /// A rate-report schedule names a day, time or unit that cannot be (refused at start-up,
    /// not left to the schedule worker, which starts again after a failure).
    #[error("{field}: {source}")]
    Schedule {
        /// The configuration key at fault (e.g. `reports.schedules.day`).
        field: String,
        /// What is wrong with it.
        #[source]
        source: crate::reports::ReportError,
    },
    /// The listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Serve(std::io::Error),
    /// A background task ended while the app was running.
    #[error("background task `{name}` ended: {reason}")]
    TaskEnded {
        /// The task.
        name: String,
        /// Why (its error, or that it returned).
        reason: String,
    },
}
