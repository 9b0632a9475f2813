//! The wire contract of Bianmin: everything that crosses a process boundary.
//!
//! Commands (what upstream systems and staff ask for), events (the facts the engine
//! records), the envelopes around them, and the intake document hotlines send. Every
//! type here serialises to stable, versioned JSON: snake_case names, RFC 3339 UTC
//! timestamps, UUIDs as strings. JSON Schema files generated from these types are
//! committed under `schemas/json/` and checked by `cargo test`.
//!
//! This crate holds no logic and does no I/O beyond serde. It is the only stable API of
//! the workspace; everything else may change freely.
//!
//! # Layout
//! - [`types`]: value types shared by commands and events (grid path, actor, ratings, ...).
//! - [`command`]: the commands of the request workflow, one struct per action.
//! - [`event`]: the events, past-tense facts, one struct per event type.
//! - [`envelope`]: [`EventEnvelope`], [`CommandEnvelope`] and [`Commit`] (one log message).
//! - [`intake`]: the intake document upstream systems submit.
//! - [`upcast`]: reading older event versions as the current one.
//! - [`error`]: [`DecodeError`] and the structured [`ErrorBody`] every edge returns.
//! - [`json_schema`]: generation of the published JSON Schema files.
//! - [`local_time`]: the one local time zone (UTC+8) periods and days are cut in.
//! - [`names`]: every NATS subject, stream, consumer and queue group of an instance.
//! - [`links`]: linked and merged requests (`link_duplicate`, `merge_into`, back-references).
//! - [`media`]: stored attachments (`attach_media`, `media_attached`).
//! - [`participants`]: assignment to a person, assisting units' parts, callback outcomes.

pub mod command;
pub mod envelope;
pub mod error;
pub mod event;
pub mod intake;
pub mod json_schema;
pub mod links;
pub mod local_time;
pub mod media;
pub mod moderation;
pub mod names;
pub mod participants;
pub mod place;
pub mod supervision;
pub mod types;
pub mod upcast;
pub mod upward;

pub use command::{Command, CommandKind};
pub use envelope::{CommandEnvelope, Commit, CommitHeader, EventEnvelope, LoggedCommit};
pub use error::{DecodeError, ErrorBody};
pub use event::{Event, EventKind};
pub use intake::IntakeDocument;
pub use links::LinkRelation;
pub use names::Names;
pub use participants::{AssignmentKind, CallbackOutcome};
pub use place::{Datum, GeoPoint, Place};
pub use types::*;
