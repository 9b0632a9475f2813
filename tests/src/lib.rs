//! Test harness for Bianmin's integration tests: real nats-server processes, real PostgreSQL
//! databases, and the engine spawned in-process on port 0.

pub mod app;
pub mod faults;
pub mod forge;
pub mod nats;
pub mod pg;
