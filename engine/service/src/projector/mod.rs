//! The read models as the engine serves them: the projector runner of crate `engine-workers`
//! (re-exported here) and the read API behind the engine's authentication, who may read
//! what ([`read_api`]), the map ([`map`]), duplicate candidates ([`duplicates`]) and
//! read-your-writes waits ([`read_your_writes`]).

pub use engine_workers::projector::*;

pub mod duplicates;
mod map;
mod read_api;
pub mod read_your_writes;

pub use read_api::{read_model_access, read_router};
