//! Test harness for Bianmin's integration tests: real nats-server processes, real PostgreSQL
//! databases, and the engine spawned in-process on port 0.

pub mod app;
pub mod faults;
pub mod forge;
pub mod nats;
pub mod pg;

use engine_service::intake_ids::IntakeIds;

/// The intake-id secret of stores the tests assemble themselves (in-process services, import
/// stores): tests that need a ticket's request id derive it with [`test_intake_ids`], never
/// from the public UUIDv5.
pub const TEST_INTAKE_SECRET: [u8; 32] = [0x5a; 32];

/// Intake ids under [`TEST_INTAKE_SECRET`].
pub fn test_intake_ids() -> IntakeIds {
    IntakeIds::from_secret(TEST_INTAKE_SECRET)
}

/// The request id of `channel` and `ticket` under [`TEST_INTAKE_SECRET`].
pub fn test_intake_id(channel: schemas::Channel, ticket: &str) -> schemas::RequestId {
    test_intake_ids().request_id(channel, ticket)
}

/// Writes [`TEST_INTAKE_SECRET`] as the intake-id secret of the data directory `data_dir`, so
/// a `bianmin` process started on it derives the same ids as the test.
pub fn write_test_intake_secret(data_dir: &std::path::Path) {
    std::fs::write(
        data_dir.join("intake-id.key"),
        format!("{}\n", hex::encode(TEST_INTAKE_SECRET)),
    )
    .expect("the intake-id secret is written");
}

/// The intake ids of the `bianmin` instance whose data directory is `data_dir` (its default
/// secret file, created there on first use as the engine does).
pub fn instance_intake_ids(data_dir: &std::path::Path) -> IntakeIds {
    IntakeIds::load_or_create(&data_dir.join("intake-id.key")).expect("the intake-id secret")
}

/// Runs each named `async fn(Store)` as two tests, `<name>::sqlite` and `<name>::nats`: the
/// one store matrix of the integration tests, so a behaviour is never checked on one log
/// store only by accident. `multi_thread:` before the names runs them on a two-worker runtime.
#[macro_export]
macro_rules! on_both_stores {
    (multi_thread: $($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::app::Store::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn nats() {
                    super::$name($crate::app::Store::Nats).await;
                }
            }
        )+
    };
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name($crate::app::Store::Sqlite).await;
                }

                #[tokio::test]
                async fn nats() {
                    super::$name($crate::app::Store::Nats).await;
                }
            }
        )+
    };
}
