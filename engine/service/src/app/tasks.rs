//! The background tasks a role adds to the [`App`]: the supervisor, the NATS edge (intake,
//! commands, inbox, upward link), the read models that connect late, audit digests and
//! retention, rate reports and their schedules, and the projectors. The workers that must
//! run once per instance join through [`App::spawn_leased`] (one lease each, see
//! [`crate::lease`]); the rest (request-reply intake and commands on queue groups, the inbox
//! on its shared durable consumer, the projection gauges) through [`App::spawn_background`]
//! in every replica.

use super::*;

impl App {
    /// The deadline supervisor.
    pub(super) fn add_supervisor(&mut self) {
        let commands = self.commands.clone();
        self.spawn_leased("supervisor", move |token| {
            let supervisor = crate::supervisor::run(
                commands.clone(),
                crate::supervisor::SupervisorConfig::default(),
                token,
            );
            async move { Ok(supervisor.await?) }
        });
    }

    /// The re-stamp pass after a calendar change this start recorded: reads the whole log for
    /// provisional deadlines the calendar now covers and re-stamps them by commands, while the
    /// engine already serves (on a log of millions of commits the pass takes a while); then
    /// idles until shutdown.
    pub(super) fn add_restamp(&mut self, reason: String) {
        let (commands, token) = (self.commands.clone(), self.shutdown.clone());
        self.spawn_background("restamp", async move {
            match crate::calendar::restamp_covered(&commands, &reason).await {
                Ok(ids) => {
                    tracing::info!(requests = ids.len(), %reason, "provisional deadlines re-stamped")
                }
                Err(error) => tracing::warn!(%error, "provisional deadlines not re-stamped"),
            }
            token.cancelled().await;
            Ok(())
        });
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
        let inbox = crate::nats::inbox::run_inbox(service.clone(), client.clone(), api, token);
        self.spawn_background("nats-inbox", async move { Ok(inbox.await?) });
        let config = self.upward_config();
        self.spawn_leased("upward", move |token| {
            let upward = crate::upward::run(service.clone(), client.clone(), config.clone(), token);
            async move { Ok(upward.await?) }
        });
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
            leases: self.leases.clone(),
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
        let (digest_log, nats, digest_clock) = (log.clone(), self.nats.clone(), clock.clone());
        self.spawn_leased("digest", move |token| {
            let digest = crate::audit::digest::run(
                digest_log.clone(),
                nats.clone(),
                digest_clock.clone(),
                digest_config.clone(),
                token,
            );
            async move { Ok(digest.await?) }
        });
        let (contacts, ledger) = (self.commands.contacts().clone(), self.privacy.clone());
        let media = self.state.media.store.clone();
        let (retention, kek_days) = (
            self.config.privacy.retention,
            self.config.stores.kek_rotation_days,
        );
        self.spawn_leased("retention", move |token| {
            crate::privacy::retention::run(
                log.clone(),
                contacts.clone(),
                ledger.clone(),
                media.clone(),
                clock.clone(),
                retention,
                kek_days,
                token,
            )
        });
    }

    /// The rate-report schedules and, on NATS, the report link (live publisher, feedback).
    pub(super) fn add_report_tasks(&mut self, clock: Arc<dyn Clock>) {
        let log = self.commands.log().clone();
        let reports = self.config.reports.clone();
        if let Some(client) = self.nats.clone() {
            let (log, clock) = (log.clone(), clock.clone());
            let link = reports.link(&self.names, self.config.nats.replicas);
            self.spawn_leased("report-link", move |token| {
                let link = crate::reports::link::run(
                    log.clone(),
                    client.clone(),
                    link.clone(),
                    clock.clone(),
                    engine_log::clock::IdSource,
                    token,
                );
                async move { Ok(link.await?) }
            });
        }
        // Without schedules the task has nothing to wait for and returns at once, which the
        // app would take for a failed task: run it only when there is a schedule.
        if reports.schedules.is_empty() {
            return;
        }
        let directory = self.commands.policy().directory().clone();
        self.spawn_leased("report-schedules", move |token| {
            let schedules = crate::reports::schedule::run(
                log.clone(),
                directory.clone(),
                clock.clone(),
                reports.clone(),
                token,
            );
            async move { Ok(schedules.await?) }
        });
    }

    /// One background task per projector and one refreshing the gauges.
    pub(super) fn add_projectors(
        &mut self,
        runtime: ProjectorRuntime,
        gauges: projections::metrics::Gauges,
        clock: Arc<dyn Clock>,
    ) {
        for name in projections::Projections::projector_names() {
            let runtime = runtime.clone();
            self.spawn_leased(crate::read_models::projector_worker(name), move |token| {
                let runtime = runtime.clone();
                async move { Ok(runtime.run(name, token).await?) }
            });
        }
        let (gauge_runtime, token) = (runtime.clone(), self.shutdown.clone());
        self.spawn_background("projection-gauges", async move {
            Ok(gauge_runtime.run_gauges(gauges, clock, token).await?)
        });
        self.projectors = Some(runtime);
    }
}
