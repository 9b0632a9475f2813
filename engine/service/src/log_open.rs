//! Opening the event log a configuration names: JetStream when `nats.url` is set (through
//! [`crate::nats_client::connect`], waiting at start-up for NATS and JetStream), else the
//! embedded SQLite log; signing every commit appended through it with the instance key
//! ([`engine_log::signing`]); and the intake-id index over it ([`open_intake_ids`]). The
//! serving app and every tool open them here.

use std::sync::Arc;
use std::time::Duration;

use crate::app::AppError;
use crate::config::Config;
use engine_log::backoff::{Attempt, Backoff, Retries};
use engine_log::{EventLog, JetStreamConfig};

/// Opens the event log the config names (JetStream when `nats.url` is set, else SQLite) for
/// a tool: one attempt to reach NATS, and an existing JetStream stream is used as it is.
pub async fn open_log(config: &Config) -> Result<(EventLog, Option<async_nats::Client>), AppError> {
    open_log_with(config, false).await
}

/// Opens the event log; with `manage_stream` (`bianmin serve`, `supervise`, `import`) the
/// JetStream stream is created or updated to the configuration, otherwise it must already
/// exist and is left as it is, so a reading tool never rescales or reconfigures a production
/// stream. With `manage_stream` start-up also waits (bounded by `nats.startup_wait_secs`) for
/// a NATS server that refuses connections or a JetStream that is not available yet.
pub async fn open_log_with(
    config: &Config,
    manage_stream: bool,
) -> Result<(EventLog, Option<async_nats::Client>), AppError> {
    let wait = match manage_stream {
        true => Duration::from_secs(config.nats.startup_wait_secs),
        false => Duration::ZERO,
    };
    open_log_waiting(config, manage_stream, wait).await
}

/// Opens the event log as [`open_log_with`] does, waiting up to `wait` for NATS and
/// JetStream (`bianmin project` waits like `serve` but leaves the stream as it is).
pub async fn open_log_waiting(
    config: &Config,
    manage_stream: bool,
    wait: Duration,
) -> Result<(EventLog, Option<async_nats::Client>), AppError> {
    let (log, nats) = open_store(config, manage_stream, wait).await?;
    let signing = &config.signing;
    let key_file = engine_log::signing::signing_key_path(signing, &config.data_dir);
    let signer =
        engine_log::signing::CommitSigner::load_or_create(&key_file).map_err(AppError::Signing)?;
    let keyring =
        engine_log::signing::Keyring::load(signing, &config.data_dir).map_err(AppError::Signing)?;
    tracing::debug!(key_id = signer.key_id(), "commits are signed");
    let log = log.signed_by(Arc::new(signer), keyring);
    if let Some(began) = log.find_signing_start().await? {
        tracing::debug!(position = began, "commit signing began");
    }
    Ok((log, nats))
}

/// Opens the store of the event log the config names, unsigned.
async fn open_store(
    config: &Config,
    manage_stream: bool,
    wait: Duration,
) -> Result<(EventLog, Option<async_nats::Client>), AppError> {
    if config.nats.url.is_none() {
        return Ok((EventLog::open_sqlite(&config.events_db()).await?, None));
    }
    let started = tokio::time::Instant::now();
    let client = crate::nats_client::connect(&config.nats, wait).await?;
    let cfg = JetStreamConfig {
        names: config.names().map_err(|e| AppError::Config(Box::new(e)))?,
        replicas: config.nats.replicas,
        manage_stream,
        ..JetStreamConfig::default()
    };
    let left = wait.saturating_sub(started.elapsed());
    let log = connect_jetstream_patiently(&client, cfg, left).await?;
    Ok((log, Some(client)))
}

/// Connects the JetStream log, retrying with [`Backoff::startup`] delays for up to `wait`
/// while the server answers "unavailable" (JetStream not ready, a cluster still electing the
/// meta or stream leader). Any other error, or one still there after `wait`, is returned.
async fn connect_jetstream_patiently(
    client: &async_nats::Client,
    cfg: JetStreamConfig,
    wait: Duration,
) -> Result<EventLog, AppError> {
    Backoff::startup()
        .patiently("event log", wait, Retries::Warn, || async {
            match EventLog::connect_jetstream(client.clone(), cfg.clone()).await {
                Ok(log) => Attempt::Done(log),
                Err(error) if error.is_retryable() => Attempt::Transient(error),
                Err(error) => Attempt::Failed(error),
            }
        })
        .await
        .map_err(AppError::from)
}

/// The instance's intake-id secret (`intake_ids.key_file`, created on first use), with
/// legacy lookups on when `log` holds requests received under the old public ids.
pub async fn open_intake_ids(
    config: &Config,
    log: &engine_log::EventLog,
) -> Result<crate::intake_ids::IntakeIds, AppError> {
    let path = config.intake_ids.key_path(&config.data_dir);
    let ids = crate::intake_ids::IntakeIds::load_or_create(&path).map_err(AppError::IntakeIds)?;
    let legacy = crate::intake_ids::log_holds_legacy_ids(log).await?;
    if legacy {
        tracing::info!(
            "the log holds requests under legacy intake ids: retried tickets are looked up under both"
        );
    }
    Ok(ids.with_legacy(legacy))
}
