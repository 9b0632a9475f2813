//! The background tasks a role adds to the [`App`]: the supervisor, the NATS edge (intake,
//! commands, inbox, upward link), the read models that connect late, audit digests and
//! retention, rate reports and their schedules, and the projectors. Each joins through
//! [`App::spawn_background`].

use super::*;

impl App {
    /// The deadline supervisor.
    pub(super) fn add_supervisor(&mut self) {
        let supervisor = crate::supervisor::run(
            self.commands.clone(),
            crate::supervisor::SupervisorConfig::default(),
            self.shutdown.clone(),
        );
        self.spawn_background("supervisor", async move { Ok(supervisor.await?) });
    }

    /// On JetStream: request-reply intake and commands, the durable inbox and the upward link.
    pub(super) fn add_nats_edge(&mut self) {
        let Some(client) = self.nats.clone() else {
            return;
        };
        let (service, token) = (self.commands.clone(), self.shutdown.clone());
        let api = crate::nats::NatsApiConfig {
            inbox_replicas: self.config.nats.replicas,
            ..crate::nats::NatsApiConfig::new(self.names.clone())
        };
        let intake = crate::nats::run_intake(
            service.clone(),
            (*self.auth).clone(),
            client.clone(),
            api.clone(),
            token.clone(),
        );
        self.spawn_background("nats-intake", async move { Ok(intake.await?) });
        let inbox =
            crate::nats::inbox::run_inbox(service.clone(), client.clone(), api, token.clone());
        self.spawn_background("nats-inbox", async move { Ok(inbox.await?) });
        let upward = crate::upward::run(service, client, self.upward_config(), token);
        self.spawn_background("upward", async move { Ok(upward.await?) });
    }

    /// The upward link's settings for this instance.
    pub fn upward_config(&self) -> crate::upward::UpwardConfig {
        crate::upward::UpwardConfig {
            names: self.names.clone(),
            replicas: self.config.nats.replicas,
        }
    }

    /// Every NATS name of this instance.
    pub fn names(&self) -> &schemas::Names {
        &self.names
    }

    /// The background task that connects the projections database and then starts what
    /// needs it (see [`crate::read_models::run_late`]); it takes the gauges.
    pub(super) fn add_late_read_models(
        &mut self,
        gauges: Option<projections::metrics::Gauges>,
        clock: Arc<dyn Clock>,
        readiness: Readiness,
    ) -> Option<projections::metrics::Gauges> {
        let late = crate::read_models::Late {
            config: self.config.clone(),
            log: self.commands.log().clone(),
            contacts: self.commands.contacts().clone(),
            nats: self.nats.clone(),
            registry: self.commands.metrics().registry().clone(),
            units: self.units.clone(),
            gauges,
            clock,
            state: self.state.clone(),
            limits: http_limits(&self.config),
            routes: self.late_routes.clone(),
            open311: self.open311.as_ref().map(|o| o.projections_slot()),
            readiness,
            token: self.shutdown.clone(),
        };
        self.spawn_background("read-models", crate::read_models::run_late(late));
        None
    }

    /// The daily digest of the log and the retention sweep of resident contact keys.
    pub(super) fn add_audit_and_privacy_tasks(&mut self, clock: Arc<dyn Clock>) {
        let log = self.commands.log().clone();
        let digest_config = crate::audit::digest::DigestConfig {
            names: self.names.clone(),
            ..self.config.digest.clone()
        };
        let digest = crate::audit::digest::run(
            log.clone(),
            self.nats.clone(),
            clock.clone(),
            digest_config,
            self.shutdown.clone(),
        );
        self.spawn_background("digest", async move { Ok(digest.await?) });
        let retention = crate::privacy::retention::run(
            log,
            self.commands.contacts().clone(),
            self.privacy.clone(),
            clock,
            self.config.privacy.retention,
            self.config.stores.kek_rotation_days,
            self.shutdown.clone(),
        );
        self.spawn_background("retention", retention);
    }

    /// The rate-report schedules and, on NATS, the report link (live publisher, feedback).
    pub(super) fn add_report_tasks(&mut self, clock: Arc<dyn Clock>) {
        let log = self.commands.log().clone();
        let reports = self.config.reports.clone();
        if let Some(client) = self.nats.clone() {
            let link = crate::reports::link::run(
                log.clone(),
                client,
                reports.link(&self.names, self.config.nats.replicas),
                clock.clone(),
                crate::clock::IdSource,
                self.shutdown.clone(),
            );
            self.spawn_background("report-link", async move { Ok(link.await?) });
        }
        // Without schedules the task has nothing to wait for and returns at once, which the
        // app would take for a failed task: run it only when there is a schedule.
        if reports.schedules.is_empty() {
            return;
        }
        let schedules = crate::reports::schedule::run(
            log,
            self.commands.policy().directory().clone(),
            clock,
            reports,
            self.shutdown.clone(),
        );
        self.spawn_background("report-schedules", async move { Ok(schedules.await?) });
    }

    /// One background task per projector and one refreshing the gauges.
    pub(super) fn add_projectors(
        &mut self,
        runtime: ProjectorRuntime,
        gauges: projections::metrics::Gauges,
        clock: Arc<dyn Clock>,
    ) {
        for name in projections::Projections::projector_names() {
            let (runtime, token) = (runtime.clone(), self.shutdown.clone());
            self.spawn_background(format!("projector-{name}"), async move {
                Ok(runtime.run(name, token).await?)
            });
        }
        let (gauge_runtime, token) = (runtime.clone(), self.shutdown.clone());
        self.spawn_background("projection-gauges", async move {
            Ok(gauge_runtime.run_gauges(gauges, clock, token).await?)
        });
        self.projectors = Some(runtime);
    }
}
