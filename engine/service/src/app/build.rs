//! The parts [`App::build_with_clock`](super::App::build_with_clock) assembles, one function
//! each: the read side (projections database, projector runtime, notifier), the
//! authenticator, the listener, and the start-up checks that refuse a bad configuration.

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::Datelike;
use engine_core::{Clock, Policy};
use engine_log::EventLog;
use schemas::event::{ReferenceDataRecorded, ReferenceKind};
use schemas::{Names, Timestamp};
use tokio::net::TcpListener;

use super::AppError;
use crate::audit::reference::ReferenceItem;
use crate::auth::Authenticator;
use crate::commands::CommandService;
use crate::config::Config;
use crate::contacts::ContactStore;
use crate::http::AppState;
use crate::metrics::Metrics;
use crate::notify::{DeliveryStore, Notifier, UnitChannels};
use crate::policy_files::{load_policy_with_sources, role_grants};
use crate::privacy::PrivacyLedger;
use crate::projector::{ProjectorRuntime, ProjectorSettings};
use crate::readiness::Readiness;

/// Warns for this year and the next when the loaded working-day calendar does not cover them.
pub(super) fn warn_uncovered_years(policy: &Policy, now: Timestamp) {
    for year in [now.year(), now.year() + 1] {
        if !policy.calendar().covers(year) {
            tracing::warn!(
                year,
                "the working-day calendar does not cover this year: only weekends count as \
                 non-working days; add the year's holiday schedule (policy.calendar_file)"
            );
        }
    }
}

/// What the read-model database gives a process, or why it waits for it.
pub(super) struct ReadSide {
    /// Readiness with the read-model parts set as far as known now.
    pub readiness: Readiness,
    /// The projections' gauges, registered when the projectors run here.
    pub gauges: Option<projections::metrics::Gauges>,
    /// The projector runtime, when the database answered and the projectors run here.
    pub projectors: Option<ProjectorRuntime>,
    /// The notifier and its delivery table, when enabled and the database answered.
    pub notifier: Option<(Notifier, DeliveryStore)>,
    /// The database did not answer: the read models are connected in the background.
    pub deferred: bool,
}

/// Everything the read side is built from.
pub(super) struct ReadSideParts<'a> {
    pub config: &'a Config,
    pub nats: &'a Option<async_nats::Client>,
    pub log: &'a EventLog,
    pub contacts: &'a ContactStore,
    pub names: &'a Names,
    pub metrics: &'a Metrics,
    pub policy: &'a Policy,
    pub units: &'a UnitChannels,
}

/// Connects the read-model database once (when the projectors or the notifier need it) and
/// builds the projector runtime and the notifier on it; an unreachable database is reported
/// in the readiness and left to the background ([`ReadSide::deferred`]).
pub(super) async fn open_read_side(parts: ReadSideParts<'_>) -> Result<ReadSide, AppError> {
    let ReadSideParts {
        config,
        nats,
        log,
        contacts,
        names,
        metrics,
        policy,
        units,
    } = parts;
    let readiness = Readiness::default();
    let gauges = match config.projections.enabled {
        true => Some(
            projections::metrics::Gauges::register(metrics.registry())
                .map_err(AppError::Projections)?,
        ),
        false => None,
    };
    let needs_database =
        config.projections.enabled || crate::read_models::notify_needs_database(config, nats);
    if !needs_database {
        return Ok(ReadSide {
            readiness,
            gauges,
            projectors: None,
            notifier: None,
            deferred: false,
        });
    }
    let projections = match crate::read_models::connect_once(&config.projections_url()).await {
        Ok(projections) => {
            projections.with_assessment(crate::read_models::assessment(config, policy))
        }
        Err(state) => {
            crate::read_models::report_missing(&readiness, config, nats, &state);
            tracing::warn!(error = %state,
                "projections database not reachable: serving intake and commands, \
                 connecting the read models in the background");
            return Ok(ReadSide {
                readiness,
                gauges,
                projectors: None,
                notifier: None,
                deferred: true,
            });
        }
    };
    let settings = ProjectorSettings::from_config(&config.projections);
    let projectors = config
        .projections
        .enabled
        .then(|| ProjectorRuntime::new(projections.clone(), log.clone(), settings));
    let notifier = crate::notify::build(
        &config.notify,
        log.clone(),
        contacts.clone(),
        &config.deliveries_url(),
        nats.clone().map(|client| (client, config.nats.replicas)),
        names,
        metrics.registry(),
        units.clone(),
    )
    .await
    .map_err(AppError::Notify)?;
    if projectors.is_some() {
        readiness.set(crate::read_models::PROJECTIONS, crate::readiness::OK);
    }
    if notifier.is_some() {
        readiness.set(crate::read_models::NOTIFICATIONS, crate::readiness::OK);
    }
    Ok(ReadSide {
        readiness,
        gauges,
        projectors,
        notifier,
        deferred: false,
    })
}

/// The authenticator of `[auth]`, warning about skipped tokens and the development identity.
pub(super) fn authenticator(config: &Config) -> Arc<Authenticator> {
    for id in Authenticator::invalid(&config.auth.tokens) {
        tracing::warn!(token_id = %id, "auth token skipped: token_sha256 is not 64 hex digits");
    }
    let auth = Arc::new(Authenticator::new(
        &config.auth.tokens,
        config.auth.dev_identity,
    ));
    if auth.dev_identity() {
        tracing::warn!(
            "dev identity is ON: any caller may act as anyone via X-Bianmin-Actor; never use in production"
        );
    }
    auth
}

/// The HTTP listener on `http.listen`, and the address it got (port 0 picks one).
pub(super) async fn bind(config: &Config) -> Result<(TcpListener, SocketAddr), AppError> {
    let address = config.http.listen;
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| AppError::Bind { address, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| AppError::Bind { address, source })?;
    Ok((listener, bound))
}

/// Refuses a rate-report schedule that names an unknown unit or period, naming its key.
pub(super) fn validate_schedules(config: &Config, policy: &Policy) -> Result<(), AppError> {
    for schedule in &config.reports.schedules {
        schedule
            .validate(policy.directory())
            .map_err(|source| AppError::Schedule {
                field: match &source {
                    crate::reports::ReportError::Invalid { field, .. } => field.clone(),
                    _ => "reports.schedules".to_string(),
                },
                source,
            })?;
    }
    Ok(())
}

/// The configured names of every stream and subject, once the data directory exists.
pub(super) fn prepare(config: &Config) -> Result<Names, AppError> {
    let names = config.names().map_err(|e| AppError::Config(Box::new(e)))?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| AppError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    Ok(names)
}

/// The policy, the units' delivery channels, and every reference-data item to record.
pub(crate) fn load_reference_data(
    config: &Config,
) -> Result<(Arc<Policy>, UnitChannels, Vec<ReferenceItem>), AppError> {
    let (policy, mut reference) = load_policy_with_sources(&config.policy)?;
    reference.push(role_grants(config));
    let (units, units_item) = crate::notify::channels::load(
        config.notify.channels_file.as_deref(),
        policy.directory(),
        &config.notify.channel_secrets,
    )
    .map_err(|e| AppError::Notify(crate::notify::NotifyError::Config(e)))?;
    reference.extend(units_item);
    Ok((Arc::new(policy), units, reference))
}

/// The privacy ledger and the contact store where `[stores]` puts them.
pub(super) async fn open_stores(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<(PrivacyLedger, ContactStore), AppError> {
    let stores = config.stores_location();
    let privacy = PrivacyLedger::open(&stores)
        .await
        .map_err(AppError::Privacy)?;
    let contacts = ContactStore::open(&stores, clock).await?;
    tracing::info!(
        backend = contacts.backend_name(),
        "contact store and privacy ledger open"
    );
    Ok((privacy, contacts))
}

/// Why provisional deadlines are re-stamped at start-up: a calendar change just recorded may
/// cover them (the pass runs in the background once the app runs, since it reads the log).
pub(super) fn restamp_reason(recorded: &[ReferenceDataRecorded]) -> Option<String> {
    recorded
        .iter()
        .find(|change| change.kind == ReferenceKind::Calendar)
        .map(|calendar| format!("calendar {} ({})", calendar.version, calendar.source))
}

/// The state every HTTP route shares.
pub(super) fn app_state(
    config: &Config,
    media: crate::media::MediaStore,
    commands: &CommandService,
    auth: &Arc<Authenticator>,
    readiness: &Readiness,
    leases: &crate::lease::Leases,
) -> AppState {
    AppState {
        media: crate::media::http::MediaState {
            store: media,
            config: Arc::new(config.media.clone()),
            client: reqwest::Client::new(),
        },
        commands: commands.clone(),
        auth: auth.clone(),
        readiness: readiness.clone(),
        calendar_warn_days: config.policy.calendar_warn_days,
        leases: leases.clone(),
        lookup_rate_limit: config.http.lookup_rate_limit,
        read_models: Arc::default(),
    }
}
