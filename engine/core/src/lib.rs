//! The pure domain core of Bianmin: the life of one resident request (诉求).
//!
//! **Invariant:** no I/O, no clock reads, no randomness. Time, ids and reference data
//! (catalogue, calendar, policy profile, directory of departments and grid nodes) arrive as
//! arguments. This crate cannot depend on tokio, sqlx or async-nats: purity is a build fact.
//!
//! # Layout
//! - [`request`]: the aggregate: state, `decide` (every rule) and `apply` (no rules).
//! - [`refusal`]: why a command was refused; stable codes.
//! - [`context`]: what a decision needs besides state and command (time, actor, policy).
//! - [`clock`]: the `Clock` trait and a manual clock for tests and simulation.
//! - [`calendar`]: the working-day calendar and deadline arithmetic.
//! - [`catalogue`]: service items and their limits.
//! - [`routing`]: routing rules (category or item × area → lead and assisting units).
//! - [`policy`]: policy profiles (limits per jurisdiction) and the composed [`policy::Policy`].
//! - [`supervision`]: what supervision must do for a request at a given time.

pub mod calendar;
pub mod catalogue;
pub mod clock;
pub mod context;
pub mod directory;
pub mod duplicates;
pub mod places;
pub mod policy;
pub mod questions;
pub mod refusal;
pub mod request;
pub mod routing;
pub mod supervision;
pub mod whatif;

pub use clock::{Clock, ManualClock};
pub use context::Context;
pub use policy::Policy;
pub use refusal::Refusal;
pub use request::{Request, Stage};
