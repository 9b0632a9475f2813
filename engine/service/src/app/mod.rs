//! The composition root: builds every part from the [`Config`], binds the listener, and runs
//! the HTTP server together with background tasks until told to stop.
//!
//! Other parts (NATS intake, supervisor, projector) join through
//! [`App::spawn_background`]: each task gets a name and a [`CancellationToken`] to watch; if one
//! ends while the app is running, the app reports which one and why, and shuts down.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use engine_core::Clock;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::commands::CommandService;
use crate::config::Config;
use crate::http::{self, AppState, HttpLimits};
use crate::log_open::{open_intake_ids, open_log_with};
use crate::metrics::Metrics;
use crate::privacy::PrivacyLedger;
use crate::projector::ProjectorRuntime;
use crate::readiness::{LateRoutes, Readiness};
use engine_log::clock::SystemClock;

mod build;
mod error;
mod tasks;

pub use error::AppError;

pub use crate::lease::TaskError;

type Task = (String, BoxFuture<'static, Result<(), TaskError>>);

/// What one process of the engine runs; [`App::build`] adds exactly the tasks of its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `bianmin serve`: HTTP, the NATS edge (request-reply, inbox, upward link) when the log
    /// is on JetStream, projectors when `projections.enabled`, notifications, digests,
    /// retention and report schedules — and the deadline supervisor unless `supervisor` is
    /// false (`--no-supervisor`, when a separate `bianmin supervise` runs it).
    Serve {
        /// Run the deadline supervisor in this process.
        supervisor: bool,
    },
    /// `bianmin supervise`: the deadline supervisor next to a listener for probes and
    /// `/metrics`; no projectors and no NATS edge.
    Supervise,
}

impl Role {
    fn supervisor(self) -> bool {
        matches!(self, Role::Supervise | Role::Serve { supervisor: true })
    }

    fn nats_edge(self) -> bool {
        matches!(self, Role::Serve { .. })
    }
}

/// A built, bound, not yet running engine.
pub struct App {
    config: Config,
    names: schemas::Names,
    listener: TcpListener,
    address: SocketAddr,
    commands: CommandService,
    nats: Option<async_nats::Client>,
    auth: Arc<Authenticator>,
    projectors: Option<ProjectorRuntime>,
    privacy: PrivacyLedger,
    notify: Option<crate::notify::DeliveryStore>,
    leases: crate::lease::Leases,
    units: crate::notify::UnitChannels,
    open311: Option<crate::http::open311::Open311State>,
    late_routes: LateRoutes,
    state: AppState,
    shutdown: CancellationToken,
    tasks: Vec<Task>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Records the reference data `config` puts in force (catalogue, profile, calendars,
/// directory, grid polygons, role grants, unit channels) as `by`'s change: what
/// `bianmin policy record` does before a restart, so the change is the operator's, with a
/// reason, and the engine finds nothing unrecorded when it starts.
pub async fn record_reference_data(
    config: &Config,
    by: &crate::audit::reference::Attribution,
    now: schemas::Timestamp,
) -> Result<Vec<schemas::event::ReferenceDataRecorded>, AppError> {
    build::prepare(config)?;
    let (_, _, reference) = build::load_reference_data(config)?;
    let (log, _nats) = open_log_with(config, true).await?;
    crate::audit::reference::record(&log, &reference, by, now)
        .await
        .map_err(AppError::Reference)
}

impl App {
    /// Builds every part and task of `role` on the system clock and binds the listener.
    pub async fn build(config: Config, role: Role) -> Result<App, AppError> {
        App::build_with_clock(config, role, Arc::new(SystemClock)).await
    }

    /// Builds every part and task of `role` on `clock` (tests pass a `ManualClock`) and binds
    /// the listener. `main` and the test harness both build through here.
    pub async fn build_with_clock(
        mut config: Config,
        role: Role,
        clock: Arc<dyn Clock>,
    ) -> Result<App, AppError> {
        if role == Role::Supervise {
            config.projections.enabled = false;
        }
        let names = build::prepare(&config)?;
        let (policy, units, reference) = build::load_reference_data(&config)?;
        let (log, nats) = open_log_with(&config, true).await?;
        tracing::info!(log = %log.describe(), "event log open");
        build::warn_uncovered_years(&policy, clock.now());
        let engine = crate::audit::reference::Attribution::engine();
        let recorded = crate::audit::reference::record(&log, &reference, &engine, clock.now())
            .await
            .map_err(AppError::Reference)?;
        for change in &recorded {
            tracing::info!(kind = ?change.kind, version = %change.version, source = %change.source, "reference data recorded");
        }
        let (privacy, contacts) = build::open_stores(&config, clock.clone()).await?;
        let metrics = Metrics::new();
        let leases = crate::lease::Leases::new(
            &config.leases,
            nats.clone().map(|client| (client, config.nats.replicas)),
            &names,
            metrics.registry(),
        )
        .map_err(AppError::Leases)?;
        let build::ReadSide {
            readiness,
            gauges,
            projectors,
            notifier,
            deferred,
        } = build::open_read_side(build::ReadSideParts {
            config: &config,
            nats: &nats,
            log: &log,
            contacts: &contacts,
            names: &names,
            metrics: &metrics,
            policy: &policy,
            units: &units,
        })
        .await?;
        let intake_ids = open_intake_ids(&config, &log).await?;
        let commands = CommandService::with_cache_capacity(
            log,
            policy,
            clock.clone(),
            contacts,
            metrics,
            intake_ids,
            config.cache.requests_max,
        );
        let restamp = build::restamp_reason(&recorded);
        let auth = build::authenticator(&config);
        let (listener, address) = build::bind(&config).await?;
        let media = crate::media::open(&config, &names, nats.clone()).await?;
        tracing::info!(backend = media.backend_name(), "media store open");
        let state = build::app_state(&config, media, &commands, &auth, &readiness, &leases);
        if let Some(runtime) = &projectors {
            let _ = state.read_models.set(runtime.projections().clone());
        }
        let open311 = config
            .open311
            .enabled
            .then(|| open311_state(&config, &projectors));
        let mut app = App {
            config,
            names,
            listener,
            address,
            commands,
            nats,
            auth,
            projectors: None,
            privacy,
            notify: None,
            leases,
            units,
            open311,
            late_routes: LateRoutes::new(readiness.clone()),
            state,
            shutdown: CancellationToken::new(),
            tasks: Vec::new(),
        };
        let gauges = match deferred {
            true => app.add_late_read_models(gauges, clock.clone(), readiness),
            false => gauges,
        };
        if let Some((notifier, store)) = notifier {
            app.spawn_leased("notify", move |token| {
                let notifier = notifier.clone();
                async move { Ok(notifier.run(token).await?) }
            });
            app.notify = Some(store);
        }
        build::validate_schedules(&app.config, app.commands.policy())?;
        if let Some(reason) = restamp {
            app.add_restamp(reason);
        }
        app.add_audit_and_privacy_tasks(clock.clone());
        app.add_report_tasks(clock.clone());
        if let (Some(runtime), Some(gauges)) = (projectors, gauges) {
            app.add_projectors(runtime, gauges, clock);
        }
        if role.nats_edge() {
            app.add_nats_edge();
        }
        if role.supervisor() {
            app.add_supervisor();
        } else {
            tracing::info!("supervisor off in this process");
        }
        Ok(app)
    }

    /// The projector runtime, when projections run in this app.
    pub fn projectors(&self) -> Option<&ProjectorRuntime> {
        self.projectors.as_ref()
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The command service (shared with background tasks).
    pub fn commands(&self) -> &CommandService {
        &self.commands
    }

    /// The NATS client, when the log runs on JetStream.
    pub fn nats(&self) -> Option<&async_nats::Client> {
        self.nats.as_ref()
    }

    /// Who is asking (shared with the NATS intake).
    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    /// The configuration the app was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Cancelled when the app shuts down; background tasks should watch it and return.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Adds a background task, started by [`App::run_until_stopped`]. It should return when
    /// [`App::shutdown_token`] is cancelled; one still running after the drain timeout is
    /// aborted.
    pub fn spawn_background<F>(&mut self, name: impl Into<String>, task: F)
    where
        F: Future<Output = Result<(), TaskError>> + Send + 'static,
    {
        self.tasks.push((name.into(), Box::pin(task)));
    }

    /// Adds a background task that runs `work` only while this process holds the lease of
    /// `worker` (see [`crate::lease::Leases::run`]): `work` is called anew, with a token
    /// cancelled when the lease is lost or at shutdown, each time the lease is taken.
    pub fn spawn_leased<F, Fut>(&mut self, worker: impl Into<String>, work: F)
    where
        F: FnMut(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), TaskError>> + Send + 'static,
    {
        let worker = worker.into();
        let (leases, token, name) = (self.leases.clone(), self.shutdown.clone(), worker.clone());
        self.spawn_background(name, async move { leases.run(&worker, token, work).await });
    }

    /// The worker leases of this process.
    pub fn leases(&self) -> &crate::lease::Leases {
        &self.leases
    }

    /// Serves until `shutdown` completes or a background task ends, then stops accepting,
    /// lets in-flight requests finish (bounded by `http.drain_timeout_ms`) and returns.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let App {
            config,
            listener,
            address,
            projectors,
            privacy,
            notify,
            open311,
            late_routes,
            state,
            shutdown: token,
            tasks,
            ..
        } = self;
        let limits = http_limits(&config);
        let mut router = http::router(state.clone(), limits);
        if let Some(runtime) = &projectors {
            router = router.merge(crate::projector::read_router(
                runtime,
                state.clone(),
                limits,
            ));
        }
        if let Some(open311) = open311 {
            router = router
                .merge(crate::http::open311::router(open311, limits).with_state(state.clone()));
        }
        if let Some(store) = notify {
            router = router.merge(crate::notify::http::router(store).with_state(state.clone()));
        }
        router = router
            .merge(
                crate::privacy::http::router(crate::privacy::http::PrivacyState {
                    ledger: privacy,
                    config: Arc::new(config.privacy.clone()),
                })
                .with_state(state.clone()),
            )
            .fallback(move |request: axum::extract::Request| late_routes.clone().answer(request))
            .layer(axum::middleware::from_fn_with_state(
                crate::ratelimit::IntakeRateLimiter::new(config.http.intake_rate_limit),
                crate::ratelimit::limit_intake,
            ));
        let router = crate::http::edge::wrap(router, limits);
        let drain = Duration::from_millis(config.http.drain_timeout_ms);
        let server_token = token.clone();
        let mut server = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(server_token.cancelled_owned())
            .await
        });
        tracing::info!(%address, "serving HTTP");
        let mut background = JoinSet::new();
        for (name, task) in tasks {
            background.spawn(async move { (name, task.await) });
        }
        let mut outcome = Ok(());
        tokio::select! {
            () = shutdown => tracing::info!("shutdown requested"),
            result = &mut server => {
                outcome = Err(match result {
                    Ok(Err(error)) => AppError::Serve(error),
                    Ok(Ok(())) => AppError::Serve(std::io::Error::other("server stopped")),
                    Err(error) => AppError::Serve(std::io::Error::other(error.to_string())),
                });
            }
            Some(ended) = background.join_next(), if !background.is_empty() => {
                let (name, reason) = match ended {
                    Ok((name, Ok(()))) => (name, "returned".to_string()),
                    Ok((name, Err(error))) => (name, error.to_string()),
                    Err(error) => ("<unknown>".to_string(), error.to_string()),
                };
                tracing::error!(task = %name, %reason, "background task ended; shutting down");
                outcome = Err(AppError::TaskEnded { name, reason });
            }
        }
        token.cancel();
        let deadline = tokio::time::Instant::now() + drain;
        if !server.is_finished()
            && tokio::time::timeout_at(deadline, &mut server)
                .await
                .is_err()
        {
            tracing::warn!("drain timeout: aborting open connections");
            server.abort();
        }
        while let Ok(Some(ended)) = tokio::time::timeout_at(deadline, background.join_next()).await
        {
            if let Ok((name, Err(error))) = ended {
                tracing::warn!(task = %name, %error, "background task failed during shutdown");
            }
        }
        background.abort_all();
        tracing::info!("stopped");
        outcome
    }
}

/// The HTTP limits of the configuration.
fn http_limits(config: &Config) -> HttpLimits {
    HttpLimits {
        body_limit_bytes: config.http.body_limit_bytes,
        request_timeout: Duration::from_millis(config.http.request_timeout_ms),
        concurrency_limit: config.http.concurrency_limit,
        media_body_limit_bytes: crate::media::http::body_limit(&config.media),
    }
}

/// The Open311 routes' state, reading request lists from the projectors' database when it is
/// open (or, later, when the read models connect).
fn open311_state(
    config: &Config,
    projectors: &Option<ProjectorRuntime>,
) -> crate::http::open311::Open311State {
    let directory = config
        .policy
        .directory_file
        .as_ref()
        .and_then(|path| std::fs::read_to_string(path).ok());
    crate::http::open311::Open311State::new(
        &config.open311,
        directory.as_deref(),
        projectors.as_ref().map(|r| r.projections().clone()),
    )
    .with_rate_limit(config.http.intake_rate_limit)
}
