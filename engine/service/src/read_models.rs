//! The read models (projections) and the notification delivery table, which live in the
//! projections database, joined without holding up start-up.
//!
//! `App::build` tries the database once, briefly ([`connect_once`]). When it answers, the
//! projectors, the read API and the notifier are set up at once, as before. When it does not,
//! [`run_late`] is the background task that keeps connecting with the projector's backoff,
//! reporting each failure to `/readyz`, and sets the same parts up when it succeeds; the
//! projectors then catch up from their checkpoints.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use engine_core::Clock;
use engine_core::policy::Policy;
use projections::Projections;
use projections::query::Assessment;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::TaskError;
use crate::config::Config;
use crate::contacts::ContactStore;
use crate::http::{AppState, HttpLimits};
use crate::lease::Leases;
use crate::projector::{self, ProjectorRuntime, ProjectorSettings};
use crate::readiness::{self, LateRoutes, Readiness};
use engine_log::EventLog;

/// The `/readyz` part of the read models.
pub const PROJECTIONS: &str = "projections";
/// The `/readyz` part of the resident notifications (their delivery table).
pub const NOTIFICATIONS: &str = "notifications";

/// Longest the start-up attempt waits for the projections database.
const FIRST_ATTEMPT: Duration = Duration::from_secs(5);

/// One bounded attempt to open the projections database (and migrate it).
pub async fn connect_once(url: &str) -> Result<Projections, String> {
    match tokio::time::timeout(FIRST_ATTEMPT, Projections::connect(url)).await {
        Ok(Ok(projections)) => Ok(projections),
        Ok(Err(error)) => Err(format!("unreachable: {error}")),
        Err(_elapsed) => Err(format!(
            "unreachable: no answer within {} s",
            FIRST_ATTEMPT.as_secs()
        )),
    }
}

/// What the rankings need to know of the deployment: the configured default weights, and
/// each department's assessment tier from the policy's directory.
pub fn assessment(config: &Config, policy: &Policy) -> Assessment {
    let directory = policy.directory();
    let tiers = directory
        .department_codes()
        .filter_map(|code| {
            let tier = directory.department_kind(code)?.assessment_tier();
            Some((code.to_owned(), tier.to_owned()))
        })
        .collect();
    Assessment {
        weights: config.projections.weights,
        tiers,
    }
}

/// Whether notifications would use the projections database (see `notify::build`): a
/// channels file may name unit webhooks even without NATS.
pub fn notify_needs_database(config: &Config, nats: &Option<async_nats::Client>) -> bool {
    config.notify.enabled
        && (nats.is_some()
            || !config.notify.webhooks.is_empty()
            || config.notify.channels_file.is_some())
}

/// Shows on `/readyz` that the parts needing the projections database are missing because
/// of `state` (`unreachable: …`).
pub fn report_missing(
    readiness: &Readiness,
    config: &Config,
    nats: &Option<async_nats::Client>,
    state: &str,
) {
    if config.projections.enabled {
        readiness.set(PROJECTIONS, state);
    }
    if notify_needs_database(config, nats) {
        readiness.set(
            NOTIFICATIONS,
            format!("waiting for the projections database: {state}"),
        );
    }
}

/// Everything the late set-up needs.
pub struct Late {
    /// The configuration.
    pub config: Config,
    /// The event log.
    pub log: EventLog,
    /// The contact store (the notifier reads phone numbers).
    pub contacts: ContactStore,
    /// The NATS client, when the log is on JetStream.
    pub nats: Option<async_nats::Client>,
    /// Where the notifier registers its metrics.
    pub registry: prometheus::Registry,
    /// The unit delivery channels in force.
    pub units: crate::notify::UnitChannels,
    /// The projection gauges, when the read models run here.
    pub gauges: Option<projections::metrics::Gauges>,
    /// The clock of the gauges.
    pub clock: Arc<dyn Clock>,
    /// The app state of the late routers.
    pub state: AppState,
    /// The limits of the late routers.
    pub limits: HttpLimits,
    /// Where the late routers go.
    pub routes: LateRoutes,
    /// Where Open311 finds the read models.
    pub open311: Option<Arc<OnceLock<Projections>>>,
    /// What `/readyz` shows.
    pub readiness: Readiness,
    /// The leases the projectors and the notifier run under.
    pub leases: Leases,
    /// Cancelled at shutdown.
    pub token: CancellationToken,
}

/// Connects the projections database (retrying until `token` is cancelled), then runs what
/// depends on it: the projectors and their gauges, the read API, Open311 request lists and
/// the notifier. Returns when `token` is cancelled, or with the error of a part that failed.
pub async fn run_late(late: Late) -> Result<(), TaskError> {
    let parts = |state: &str| report_missing(&late.readiness, &late.config, &late.nats, state);
    let settings = ProjectorSettings::from_config(&late.config.projections);
    let url = late.config.projections_url();
    let connected = projector::connect_with_retry(&url, settings, &late.token, |error| {
        parts(&format!("unreachable: {error}"))
    })
    .await;
    let Some(projections) = connected else {
        return Ok(());
    };
    let projections =
        projections.with_assessment(assessment(&late.config, late.state.commands.policy()));
    tracing::info!("projections database reachable; read models starting");
    let mut tasks: JoinSet<Result<(), TaskError>> = JoinSet::new();
    if late.config.projections.enabled {
        let runtime = ProjectorRuntime::new(projections.clone(), late.log.clone(), settings);
        late.routes.add(projector::read_router(
            &runtime,
            late.state.clone(),
            late.limits,
        ));
        if let Some(slot) = &late.open311 {
            let _ = slot.set(projections.clone());
        }
        let _ = late.state.read_models.set(projections.clone());
        let spawn = (&late.leases, &late.token);
        spawn_projectors(&mut tasks, &runtime, late.gauges, late.clock, spawn);
        late.readiness.set(PROJECTIONS, readiness::OK);
    }
    let notifier = crate::notify::build(
        &late.config.notify,
        late.log,
        late.contacts,
        &late.config.deliveries_url(),
        late.nats.map(|client| (client, late.config.nats.replicas)),
        &late.config.names()?,
        &late.registry,
        late.units,
    )
    .await?;
    if let Some((notifier, store)) = notifier {
        late.routes
            .add(crate::notify::http::router(store).with_state(late.state.clone()));
        let (leases, token) = (late.leases.clone(), late.token.clone());
        tasks.spawn(async move {
            leases
                .run("notify", token, move |token| {
                    let notifier = notifier.clone();
                    async move { Ok(notifier.run(token).await?) }
                })
                .await
        });
        late.readiness.set(NOTIFICATIONS, readiness::OK);
    }
    while let Some(ended) = tasks.join_next().await {
        ended??;
    }
    late.token.cancelled().await;
    Ok(())
}

/// The lease name of the projector `name`: `projector-<name>`.
pub fn projector_worker(name: &str) -> String {
    format!("projector-{name}")
}

/// One task per projector, each under its lease, and one refreshing the gauges (in every
/// replica), into `tasks`.
pub fn spawn_projectors(
    tasks: &mut JoinSet<Result<(), TaskError>>,
    runtime: &ProjectorRuntime,
    gauges: Option<projections::metrics::Gauges>,
    clock: Arc<dyn Clock>,
    (leases, token): (&Leases, &CancellationToken),
) {
    for name in Projections::projector_names() {
        let (runtime, leases, token) = (runtime.clone(), leases.clone(), token.clone());
        tasks.spawn(async move {
            leases
                .run(&projector_worker(name), token, move |token| {
                    let runtime = runtime.clone();
                    async move { Ok(runtime.run(name, token).await?) }
                })
                .await
        });
    }
    if let Some(gauges) = gauges {
        let (runtime, token) = (runtime.clone(), token.clone());
        tasks.spawn(async move { Ok(runtime.run_gauges(gauges, clock, token).await?) });
    }
}

#[cfg(test)]
mod tests {
    use engine_core::directory::DepartmentKind;

    #[test]
    fn every_kind_of_unit_is_ranked_in_a_tier_the_read_models_know() {
        for kind in DepartmentKind::ALL {
            assert!(
                projections::query::TIERS.contains(&kind.assessment_tier()),
                "{kind:?}"
            );
        }
    }
}
