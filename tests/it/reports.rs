//! Periodic rate reports upward against real stores: a month's report published from a seeded
//! simulation, feedback recorded, a correction turned into revision 2 with its diff and reason;
//! both revisions recomputed from the log and compared byte for byte with the stored bytes;
//! resend to a test subscriber on the shared nats-server compared by ids and order; and, on a
//! running engine with a JetStream log, the live publisher, NATS and HTTP feedback, the HTTP
//! list, and schedules that publish once across a restart.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use engine_core::Policy;
use engine_service::audit::verify;
use engine_service::reports::compute::{self, ReportPeriod, ReportSpec, canonical_bytes};
use engine_service::reports::link::{self, LinkConfig, Outbound};
use engine_service::reports::schedule::{Every, Schedule};
use engine_service::reports::store::{self, FeedbackDocument, PublishOutcome};
use engine_service::reports::{ReportError, cli};
use futures::StreamExt;
use schemas::event::{ReportFeedbackKind, ReportLevel};
use schemas::{Actor, Event, Role, Timestamp};
use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, intake_document, spawn_app_with};
use uuid::Uuid;

use crate::audit::{Rig, all_commits, nats, randomized_run, supervisor, unique};

fn at(month: u32, day: u32, hour: u32) -> Timestamp {
    Utc.with_ymd_and_hms(2026, month, day, hour, 0, 0)
        .single()
        .expect("instant")
}

fn street_march() -> ReportSpec {
    ReportSpec {
        level: ReportLevel::Street,
        unit: "jd-01".into(),
        period: ReportPeriod::parse("2026-03").expect("period"),
    }
}

fn publisher() -> Actor {
    Actor {
        id: "jd-01-office".into(),
        role: Role::Supervisor,
        unit: Some("jd-01".into()),
    }
}

fn higher() -> Actor {
    Actor {
        id: "district-yc".into(),
        role: Role::HigherLevel,
        unit: Some("yc".into()),
    }
}

fn published(outcome: PublishOutcome) -> Box<store::Revision> {
    match outcome {
        PublishOutcome::Published { revision } => revision,
        other => panic!("expected a publication, got {other:?}"),
    }
}

/// The stored bytes of a revision's figures, read raw from the log (not through the types).
async fn stored_figures(log: &engine_log::EventLog, report: Uuid, revision: u32) -> Vec<u8> {
    for (_, raw) in log.load_raw(report).await.expect("raw commits") {
        let commit: Value = serde_json::from_slice(&raw).expect("stored JSON");
        for e in commit["events"].as_array().expect("events") {
            if e["type"] == "rate_report_published" && e["data"]["revision"] == json!(revision) {
                return serde_json::to_vec(&e["data"]["figures"]).expect("bytes");
            }
        }
    }
    panic!("revision {revision} of {report} not stored")
}

/// Collects `n` outbound report messages (message id header, body) from `sub`.
async fn collect(sub: &mut async_nats::Subscriber, n: usize) -> Vec<(String, Outbound)> {
    let mut out = Vec::new();
    while out.len() < n {
        let message = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} report messages in 10 s", out.len()))
            .expect("subscription open");
        if message.subject.as_str().ends_with(".reports.feedback") {
            continue;
        }
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_string())
            .expect("a Nats-Msg-Id header");
        let body: Outbound = serde_json::from_slice(&message.payload).expect("an outbound message");
        out.push((id, body));
    }
    out
}

/// The first `n` messages stored in JetStream stream `stream` (message id header, body),
/// waiting up to 10 s for them.
async fn stored_messages(
    client: &async_nats::Client,
    stream: &str,
    n: u64,
) -> Vec<(String, Outbound)> {
    let js = async_nats::jetstream::new(client.clone());
    for _ in 0..100 {
        if let Ok(mut s) = js.get_stream(stream).await
            && s.info().await.unwrap().state.messages >= n
        {
            let mut out = Vec::new();
            for seq in 1..=n {
                let m = s.get_raw_message(seq).await.unwrap();
                let id = m
                    .headers
                    .get(async_nats::header::NATS_MESSAGE_ID)
                    .expect("a Nats-Msg-Id header")
                    .as_str()
                    .to_string();
                out.push((id, serde_json::from_slice(&m.payload).unwrap()));
            }
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} messages stored in {stream} within 10 s")
}

#[tokio::test]
async fn a_month_report_is_revised_replayed_byte_for_byte_and_resent_in_order() {
    let rig = Rig::sqlite(at(3, 2, 1)).await;
    let ids = randomized_run(&rig, 4242, 24, at(3, 2, 1), chrono::Duration::days(20)).await;
    let directory = Policy::for_tests().directory().clone();
    let log = rig.log();
    rig.clock.set(at(4, 1, 1));
    let spec = street_march();
    let as_of = at(4, 1, 1);

    // Revision 1.
    let rev1 = published(
        store::publish(log, &directory, &spec, as_of, &publisher(), None, false)
            .await
            .expect("publish"),
    );
    let p1 = &rev1.published;
    assert_eq!((p1.revision, p1.supersedes), (1, None));
    assert_eq!(p1.report_id, spec.report_id());
    assert_eq!(p1.log_position + 1, log.last_position().await.unwrap());
    assert_eq!(p1.figures["totals"]["counts"]["received"], json!(ids.len()));
    assert_eq!(p1.figures_sha256, compute::figures_sha256(&p1.figures));
    assert_eq!(rev1.published_by, publisher());
    // Backlog and overdue as the projections' own backlog query counts them at that position.
    let scratch = tempfile::tempdir().unwrap();
    let check = projections::Projections::connect(&format!(
        "sqlite://{}?mode=rwc",
        scratch.path().join("check.sqlite").display()
    ))
    .await
    .unwrap();
    let upto: Vec<_> = all_commits(log)
        .await
        .into_iter()
        .filter(|c| c.position <= p1.log_position)
        .collect();
    for projector in projections::Projections::projector_names() {
        check.apply(projector, &upto).await.unwrap();
    }
    let (open, overdue) = check.backlog(as_of).await.unwrap();
    assert!(open > 0, "the simulation leaves some requests open");
    assert_eq!(
        p1.figures["backlog"],
        json!({"open": open, "overdue": overdue})
    );
    assert_eq!(p1.figures["overdue_cases"]["total"], json!(overdue));
    // April has no requests: its report counts none.
    let april = ReportSpec {
        period: ReportPeriod::parse("2026-04").unwrap(),
        ..spec.clone()
    };
    let f = compute::compute(log, log.last_position().await.unwrap(), &april, as_of)
        .await
        .unwrap();
    assert_eq!(f["totals"]["counts"]["received"], json!(0));

    // Nothing changed: nothing is published.
    let again = store::publish(
        log,
        &directory,
        &spec,
        as_of,
        &publisher(),
        Some("x"),
        false,
    )
    .await
    .unwrap();
    assert!(
        matches!(again, PublishOutcome::Unchanged { revision: 1, .. }),
        "{again:?}"
    );

    // Bad input is refused with its field and records nothing.
    let before = log.last_position().await.unwrap();
    let bad_unit = ReportSpec {
        unit: "jd-99".into(),
        ..spec.clone()
    };
    let e = store::publish(log, &directory, &bad_unit, as_of, &publisher(), None, false)
        .await
        .unwrap_err();
    assert_eq!(e.body().field.as_deref(), Some("unit"));
    let doc = |kind, comments: &str, message_id: Option<&str>| FeedbackDocument {
        report_id: Some(p1.report_id),
        revision: None,
        kind,
        comments: comments.into(),
        message_id: message_id.map(str::to_string),
    };
    let e = store::record_feedback(
        log,
        doc(ReportFeedbackKind::Questioned, " ", None),
        &higher(),
        as_of,
        Uuid::now_v7(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.body().field.as_deref(), Some("comments"));
    let mut unknown = doc(ReportFeedbackKind::Received, "", None);
    unknown.report_id = Some(Uuid::now_v7());
    let e = store::record_feedback(log, unknown, &higher(), as_of, Uuid::now_v7())
        .await
        .unwrap_err();
    assert!(matches!(e, ReportError::NotFound(_)), "{e:?}");
    let mut no_rev = doc(ReportFeedbackKind::Received, "", None);
    no_rev.revision = Some(7);
    let e = store::record_feedback(log, no_rev, &higher(), as_of, Uuid::now_v7())
        .await
        .unwrap_err();
    assert_eq!(e.body().field.as_deref(), Some("revision"));
    assert_eq!(log.last_position().await.unwrap(), before);

    // Feedback: received, then questioned; a resent document is recorded once.
    let received = store::record_feedback(
        log,
        doc(ReportFeedbackKind::Received, "", Some("d-1")),
        &higher(),
        as_of,
        Uuid::now_v7(),
    )
    .await
    .unwrap();
    assert!(!received.duplicate);
    let resent = store::record_feedback(
        log,
        doc(ReportFeedbackKind::Received, "", Some("d-1")),
        &higher(),
        as_of,
        Uuid::now_v7(),
    )
    .await
    .unwrap();
    assert!(resent.duplicate);
    assert_eq!(resent.event_id, received.event_id);
    let questioned = store::record_feedback(
        log,
        doc(
            ReportFeedbackKind::Questioned,
            "满意率与热线数据不符，请核实",
            Some("d-2"),
        ),
        &higher(),
        as_of,
        Uuid::now_v7(),
    )
    .await
    .unwrap();
    assert_eq!(questioned.revision, 1);

    // A correction of a counted rating after publication.
    let mut corrected = None;
    for id in &ids {
        let events = rig.events(*id).await;
        let neutralised: Vec<Uuid> = events
            .iter()
            .filter_map(|e| match &e.event {
                Event::EventCorrected(c) => Some(c.event_id),
                _ => None,
            })
            .collect();
        if let Some(rated) = events
            .iter()
            .find(|e| matches!(e.event, Event::Rated(_)) && !neutralised.contains(&e.event_id))
        {
            assert!(
                rig.run(*id, supervisor(), json!({"action": "correct", "event_id": rated.event_id, "reason": "回访录入错误"}))
                    .await
            );
            corrected = Some(*id);
            break;
        }
    }
    assert!(
        corrected.is_some(),
        "the simulation rated at least one request"
    );

    // Revision 2 needs a reason, then says what changed.
    let e = store::publish(log, &directory, &spec, as_of, &publisher(), None, false)
        .await
        .unwrap_err();
    assert_eq!(e.body().field.as_deref(), Some("reason"));
    let rev2 = published(
        store::publish(
            log,
            &directory,
            &spec,
            as_of,
            &publisher(),
            Some("更正一条回访评价"),
            false,
        )
        .await
        .unwrap(),
    );
    let p2 = &rev2.published;
    assert_eq!((p2.revision, p2.supersedes), (2, Some(1)));
    assert_eq!(p2.reason.as_deref(), Some("更正一条回访评价"));
    assert_ne!(p2.message_id, p1.message_id);
    let rated = p2
        .changes
        .iter()
        .find(|c| c.path == "/totals/counts/rated")
        .expect("the rated count changed");
    assert_eq!(
        rated.from.as_i64().unwrap() - 1,
        rated.to.as_i64().unwrap(),
        "{rated:?}"
    );
    // Revision 1 is still as sent.
    let record = store::load(log, p1.report_id).await.unwrap().unwrap();
    assert_eq!(record.revisions.len(), 2);
    assert_eq!(record.revisions[0].published, *p1);
    assert_eq!(record.feedback.len(), 2);
    assert_eq!(record.status(), None, "no feedback on revision 2 yet");

    // Replay: both revisions recompute to the stored bytes; revision 1 names the correction.
    let replay = store::replay(log, p1.report_id, None).await.unwrap();
    assert!(replay.identical(), "{replay:#?}");
    assert_eq!(replay.revisions.len(), 2);
    assert_eq!(replay.revisions[0].later_changes, p2.changes);
    assert!(replay.revisions[1].later_changes.is_empty());
    for (rev, position) in [(1, p1.log_position), (2, p2.log_position)] {
        let recomputed = compute::compute(log, position, &spec, as_of).await.unwrap();
        assert_eq!(
            canonical_bytes(&recomputed),
            stored_figures(log, p1.report_id, rev).await,
            "revision {rev} byte for byte"
        );
    }
    // A figure edited in the stored event would not replay identical.
    let mut forged = p1.figures.clone();
    forged["totals"]["counts"]["received"] = json!(999);
    assert_ne!(
        canonical_bytes(&forged),
        stored_figures(log, p1.report_id, 1).await
    );

    // Every chain in the log, report streams included, verifies.
    let verified = verify::verify_all(log, None).await.unwrap();
    assert!(verified.broken.is_empty(), "{:?}", verified.broken);

    // Resend to a subscriber: original ids, log order.
    let client = nats().await;
    let link_cfg = LinkConfig {
        names: schemas::Names::for_prefix(&format!("r{}", unique())).expect("valid names"),
        replicas: 1,
    };
    let mut sub = client
        .subscribe(format!("{}.reports.>", link_cfg.names.prefix()))
        .await
        .unwrap();
    client.flush().await.unwrap();
    let sent = link::resend(log, &client, &link_cfg, at(3, 1, 0), None)
        .await
        .unwrap();
    let expected: Vec<String> = [
        p1.message_id,
        received.event_id,
        questioned.event_id,
        p2.message_id,
    ]
    .iter()
    .map(Uuid::to_string)
    .collect();
    let got = collect(&mut sub, expected.len()).await;
    let got_ids: Vec<String> = got.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(got_ids, expected);
    assert_eq!(
        sent.iter()
            .map(|m| m.message_id().to_string())
            .collect::<Vec<_>>(),
        expected
    );
    match &got[0].1 {
        Outbound::Report {
            figures,
            figures_sha256,
            revision,
            ..
        } => {
            assert_eq!(*revision, 1);
            assert_eq!(figures_sha256, &p1.figures_sha256);
            assert_eq!(
                canonical_bytes(figures),
                stored_figures(log, p1.report_id, 1).await
            );
        }
        other => panic!("expected the report first, got {other:?}"),
    }
    // Resending again stores nothing new (JetStream deduplicates on the original ids).
    link::resend(
        log,
        &client,
        &link_cfg,
        at(3, 1, 0),
        Some(ReportLevel::Street),
    )
    .await
    .unwrap();
    let js = async_nats::jetstream::new(client.clone());
    let mut stream = js
        .get_stream(&link_cfg.names.reports_stream())
        .await
        .unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 4);
    // A level with nothing: nothing resent.
    assert!(
        link::resend(
            log,
            &client,
            &link_cfg,
            at(3, 1, 0),
            Some(ReportLevel::City)
        )
        .await
        .unwrap()
        .is_empty()
    );
    js.delete_stream(&link_cfg.names.reports_stream())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_cli_publishes_replays_and_refuses_bad_periods() {
    let rig = Rig::sqlite(at(3, 2, 1)).await;
    randomized_run(&rig, 77, 8, at(3, 2, 1), chrono::Duration::days(5)).await;
    let ctx = cli::ReportContext {
        log: rig.log().clone(),
        nats: None,
        link: engine_service::reports::schedule::ReportsConfig::default()
            .link(&schemas::Names::default(), 1),
        directory: Policy::for_tests().directory().clone(),
        now: at(3, 20, 1),
    };
    let publish = |level, unit: &str, period: &str| {
        cli::ReportCommand::Publish(cli::PublishArgs {
            level,
            unit: unit.into(),
            period: period.into(),
            reason: None,
            by: "report-cli".into(),
            json: false,
        })
    };
    let week = publish(ReportLevel::Street, "jd-01", "2026-W10");
    let (out, code) = cli::execute(week, &ctx).await.unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    assert!(out.contains("revision 1"), "{out}");
    let id = compute::report_id(ReportLevel::Street, "jd-01", "2026-W10");
    let (out, code) = cli::execute(
        cli::ReportCommand::Replay {
            report: id,
            revision: None,
            json: false,
        },
        &ctx,
    )
    .await
    .unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS, "{out}");
    assert!(out.contains("IDENTICAL"), "{out}");
    let range = publish(ReportLevel::District, "yc", "2026-03-01..2026-03-10");
    let (out, _) = cli::execute(range, &ctx).await.unwrap();
    assert!(out.contains("revision 1"), "{out}");
    let bad = publish(ReportLevel::Street, "jd-01", "2026-3");
    let e = cli::execute(bad, &ctx).await.unwrap_err();
    assert_eq!(e.body().field.as_deref(), Some("period"));
    let e = cli::execute(publish(ReportLevel::District, "xx", "2026-03"), &ctx)
        .await
        .unwrap_err();
    assert_eq!(e.body().field.as_deref(), Some("unit"));
    let (out, _) = cli::execute(
        cli::ReportCommand::List {
            level: None,
            json: false,
        },
        &ctx,
    )
    .await
    .unwrap();
    assert_eq!(out.lines().count(), 2, "{out}");
}

/// `report publish --json` over NATS: stdout is exactly one JSON document (the delivery note
/// goes to stderr).
#[tokio::test]
async fn publish_json_prints_one_json_document_when_sent_over_nats() {
    let rig = Rig::sqlite(at(3, 2, 1)).await;
    randomized_run(&rig, 78, 4, at(3, 2, 1), chrono::Duration::days(5)).await;
    let client = nats().await;
    let link = engine_service::reports::schedule::ReportsConfig::default().link(
        &schemas::Names::for_prefix(&format!("r{}", unique())).expect("valid names"),
        1,
    );
    let ctx = cli::ReportContext {
        log: rig.log().clone(),
        nats: Some(client.clone()),
        link: link.clone(),
        directory: Policy::for_tests().directory().clone(),
        now: at(3, 20, 1),
    };
    let publish = cli::ReportCommand::Publish(cli::PublishArgs {
        level: ReportLevel::Street,
        unit: "jd-01".into(),
        period: "2026-W10".into(),
        reason: None,
        by: "report-cli".into(),
        json: true,
    });
    let (out, code) = cli::execute(publish, &ctx).await.unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let document: Value = serde_json::from_str(&out).expect("stdout is one JSON document");
    assert!(document.is_object(), "{out}");
    let js = async_nats::jetstream::new(client);
    let stream = js
        .get_stream(link.names.reports_stream())
        .await
        .expect("the revision was sent: its stream exists");
    assert_eq!(stream.cached_info().state.messages, 1);
    js.delete_stream(link.names.reports_stream()).await.ok();
}

async fn wait_for_reports(app: &TestApp, n: usize) -> Value {
    for _ in 0..100 {
        let list: Value = app
            .get("/api/v1/reports", actors::DASHBOARD)
            .await
            .json()
            .await
            .unwrap();
        if list.as_array().is_some_and(|a| a.len() >= n) {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} reports listed in 10 s")
}

#[tokio::test]
async fn a_running_engine_sends_reports_takes_feedback_and_fires_schedules_once() {
    let schedule = Schedule {
        level: ReportLevel::Street,
        units: vec![],
        every: Every::Month,
        day: 1,
        at: "09:00".into(),
    };
    let app = spawn_app_with(Store::Nats, |c| {
        c.reports.schedules = vec![schedule.clone()];
        c.reports.poll_secs = 1;
    })
    .await;
    let prefix = app.config.nats.subject_prefix.clone();
    let client = nats().await;
    let mut sub = client
        .subscribe(format!("{prefix}.reports.>"))
        .await
        .unwrap();
    client.flush().await.unwrap();
    let (status, _) = app.intake(&intake_document(&unique())).await;
    assert_eq!(status, 201);

    // The schedule (1st of the month, 09:00) owes February's report of every street at once.
    let list = wait_for_reports(&app, 3).await;
    let periods: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["period"].as_str().unwrap())
        .collect();
    assert_eq!(periods, ["2026-02"; 3]);
    // They may have gone out before the subscription: read them from the stream.
    let scheduled = stored_messages(&client, &app.names().reports_stream(), 3).await;
    // One fold served every street: the same log position; each replays identical.
    let mut positions = Vec::new();
    for (id, m) in &scheduled {
        assert_eq!(id, &m.message_id().to_string());
        let Outbound::Report {
            report_id,
            log_position,
            published_by,
            ..
        } = m
        else {
            panic!("a report, not {m:?}");
        };
        assert_eq!(published_by.id, "report-schedule");
        positions.push(*log_position);
        let replay = store::replay(app.command_service.log(), *report_id, None)
            .await
            .unwrap();
        assert!(replay.identical(), "{replay:?}");
    }
    assert!(positions.windows(2).all(|w| w[0] == w[1]), "{positions:?}");

    // A March report published from the log (as `bianmin report publish` does) is sent live.
    app.clock.set(at(3, 2, 6));
    let directory = Policy::for_tests().directory().clone();
    let log = app.command_service.log();
    let rev = published(
        store::publish(
            log,
            &directory,
            &street_march(),
            at(3, 2, 6),
            &publisher(),
            None,
            false,
        )
        .await
        .unwrap(),
    );
    // Skip the scheduled ones if the subscription saw them go out too.
    let earlier: Vec<&String> = scheduled.iter().map(|(id, _)| id).collect();
    let mut live = collect(&mut sub, 1).await;
    while earlier.contains(&&live[0].0) {
        live = collect(&mut sub, 1).await;
    }
    assert_eq!(live[0].0, rev.published.message_id.to_string());
    assert_eq!(
        live[0].1.subject(&LinkConfig {
            names: app.names(),
            replicas: 1,
        }),
        format!("{prefix}.reports.street.jd-01")
    );
    let report = rev.published.report_id;
    assert_eq!(
        rev.published.figures["totals"]["counts"]["received"],
        json!(1)
    );

    // Feedback over NATS (request-reply); a malformed one gets a structured error.
    let reply = client
        .request(
            format!("{prefix}.reports.feedback"),
            serde_json::to_vec(
                &json!({"report_id": report, "kind": "received", "message_id": "n-1"}),
            )
            .unwrap()
            .into(),
        )
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(body["revision"], json!(1), "{body}");
    assert_eq!(body["duplicate"], json!(false));
    let reply = client
        .request(
            format!("{prefix}.reports.feedback"),
            "{\"kind\":\"maybe\"}".into(),
        )
        .await
        .unwrap();
    // The same error reply as every other NATS subject: `{"error": {code, message, field}}`.
    let body: engine_service::nats::ErrorDocument =
        serde_json::from_slice(&reply.payload).expect("the error reply");
    assert_eq!(body.error.code, "malformed", "{body:?}");
    assert_eq!(
        reply
            .headers
            .as_ref()
            .and_then(|h| h.get("Bianmin-Error"))
            .map(|v| v.as_str()),
        Some("malformed")
    );
    // An unknown report: not_found, wrapped the same way.
    let reply = client
        .request(
            format!("{prefix}.reports.feedback"),
            serde_json::to_vec(&json!({"report_id": Uuid::now_v7(), "kind": "received"}))
                .unwrap()
                .into(),
        )
        .await
        .unwrap();
    let body: engine_service::nats::ErrorDocument =
        serde_json::from_slice(&reply.payload).expect("the error reply");
    assert_eq!(body.error.code, "not_found", "{body:?}");
    // The recorded feedback goes out on the feedback log with its event id.
    let fb = collect(&mut sub, 1).await;
    assert!(matches!(
        fb[0].1,
        Outbound::Feedback {
            kind: ReportFeedbackKind::Received,
            ..
        }
    ));

    // Feedback over HTTP: only the higher level; bad bodies are structured errors.
    let path = format!("/api/v1/reports/{report}/feedback");
    let r = app
        .post(&path, actors::STATION, &json!({"kind": "accepted"}))
        .await;
    assert_eq!(r.status(), 403);
    let higher_actor = "district-yc;higher_level;yc";
    let r = app
        .post(&path, higher_actor, &json!({"kind": "returned"}))
        .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["field"], json!("comments"), "{e}");
    let r = app
        .post(
            &path,
            higher_actor,
            &json!({"kind": "accepted", "comments": "同意"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post(
            &format!("/api/v1/reports/{}/feedback", Uuid::now_v7()),
            higher_actor,
            &json!({"kind": "accepted"}),
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = app.get("/api/v1/reports/not-a-uuid", actors::AUDITOR).await;
    assert_eq!(r.status(), 400);
    let r = app.get("/api/v1/reports", actors::STATION).await;
    assert_eq!(r.status(), 403);

    // The API shows the revision and its feedback.
    let r = app
        .get(&format!("/api/v1/reports/{report}"), actors::AUDITOR)
        .await;
    assert_eq!(r.status(), 200);
    let shown: Value = r.json().await.unwrap();
    assert_eq!(
        shown["revisions"][0]["figures_sha256"],
        json!(rev.published.figures_sha256)
    );
    let kinds: Vec<&str> = shown["feedback"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["received", "accepted"]);
    let list = wait_for_reports(&app, 4).await;
    let march = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["report_id"] == json!(report))
        .unwrap();
    assert_eq!(march["status"], json!("accepted"));
    // Feedback appended after the list was read shows on the next read.
    let r = app
        .post(
            &path,
            higher_actor,
            &json!({"kind": "questioned", "comments": "请补充超期原因"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let list: Value = app
        .get("/api/v1/reports", actors::DASHBOARD)
        .await
        .json()
        .await
        .unwrap();
    let march = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["report_id"] == json!(report))
        .unwrap();
    assert_eq!(march["status"], json!("questioned"));
    assert_eq!(march["feedback"].as_array().unwrap().len(), 3);
    let r = app
        .get("/api/v1/reports?level=planet", actors::AUDITOR)
        .await;
    assert_eq!(r.status(), 400);

    // The dashboard page has the reports panel and its script reads the list.
    let page = app
        .get("/dashboard", actors::DASHBOARD)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"reports\""),
        "the dashboard has a reports table"
    );
    let script = app
        .get("/dashboard/dashboard.js", actors::DASHBOARD)
        .await
        .text()
        .await
        .unwrap();
    assert!(script.contains("reports: \"/api/v1/reports\","));

    // A restart does not publish the scheduled reports again.
    let app = app.restart().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let list = wait_for_reports(&app, 4).await;
    assert_eq!(list.as_array().unwrap().len(), 4);
    for r in list.as_array().unwrap() {
        assert_eq!(r["revisions"].as_array().unwrap().len(), 1, "{r}");
    }
    let verified = verify::verify_all(app.command_service.log(), None)
        .await
        .unwrap();
    assert!(verified.broken.is_empty(), "{:?}", verified.broken);
    app.teardown().await;
}

#[tokio::test]
async fn an_engine_without_schedules_keeps_running() {
    let app = tests::app::spawn_app(Store::Sqlite).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = app.get("/api/v1/reports", actors::AUDITOR).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!([]));
    app.teardown().await;
}

/// Runs `bianmin --data-dir <dir> report <args>`; returns the exit code and stdout.
fn bianmin_report(data_dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let output = std::process::Command::new(tests::faults::bianmin_binary())
        .arg("--data-dir")
        .arg(data_dir)
        .arg("report")
        .args(args)
        .env_remove("BIANMIN_NATS_URL")
        .env_remove("DATABASE_URL")
        .env_remove("BIANMIN_CONFIG")
        .output()
        .expect("bianmin runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn a_figure_edited_behind_the_logs_back_fails_replay_and_verify() {
    let rig = Rig::sqlite(at(3, 2, 1)).await;
    randomized_run(&rig, 9001, 6, at(3, 2, 1), chrono::Duration::days(3)).await;
    let directory = Policy::for_tests().directory().clone();
    let log = rig.log();
    let rev = published(
        store::publish(
            log,
            &directory,
            &street_march(),
            at(3, 20, 1),
            &publisher(),
            None,
            false,
        )
        .await
        .unwrap(),
    );
    let id = rev.published.report_id.to_string();
    let dir = rig.db_path.parent().expect("data dir").to_path_buf();

    // The binary replays the untouched report as identical.
    let (code, out) = bianmin_report(&dir, &["replay", &id]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("IDENTICAL"), "{out}");
    let (code, _) = bianmin_report(&dir, &["replay", &Uuid::now_v7().to_string()]);
    assert_eq!(code, 2, "an unknown report");

    // Edit the sent figure in the stored commit.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", rig.db_path.display()))
        .await
        .unwrap();
    let payload: Vec<u8> = sqlx::query_scalar("SELECT payload FROM commits WHERE position = ?")
        .bind(rev.position as i64)
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut commit: Value = serde_json::from_slice(&payload).unwrap();
    commit["events"][0]["data"]["figures"]["totals"]["counts"]["received"] = json!(999);
    sqlx::query("UPDATE commits SET payload = ? WHERE position = ?")
        .bind(serde_json::to_vec(&commit).unwrap())
        .bind(rev.position as i64)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    // The edited record no longer matches its hash: every reader skips it (quarantine), so
    // the report's only revision is gone from replay and the CLI, and verify names it.
    let replay = store::replay(log, rev.published.report_id, None).await;
    assert!(
        matches!(replay, Err(ReportError::NotFound(_))),
        "{replay:?}"
    );
    let (code, out) = bianmin_report(&dir, &["replay", &id]);
    assert_ne!(code, 0, "{out}");
    let quarantined = engine_service::audit::quarantine::list(log).await.unwrap();
    assert!(
        quarantined
            .iter()
            .any(|q| q.position == rev.position && q.reason.contains("stored hash does not match")),
        "{quarantined:?}"
    );
    let verified = verify::verify_all(log, None).await.unwrap();
    assert!(
        verified.broken.iter().any(|b| b.position == rev.position),
        "{:?}",
        verified.broken
    );
}

#[tokio::test]
async fn live_projections_on_postgres_skip_report_streams_and_agree_with_the_report() {
    let db = tests::pg::TestDb::create().await.expect("a test database");
    let app = tests::app::spawn_app_with_projections(Store::Sqlite, Some(db.url.clone())).await;
    for _ in 0..2 {
        let (status, _) = app.intake(&intake_document(&unique())).await;
        assert_eq!(status, 201);
    }
    let directory = Policy::for_tests().directory().clone();
    let log = app.command_service.log();
    let as_of = at(3, 2, 6);
    let rev = published(
        store::publish(
            log,
            &directory,
            &street_march(),
            as_of,
            &publisher(),
            None,
            false,
        )
        .await
        .unwrap(),
    );
    // Every projector passes the report's commit without error.
    let head = log.last_position().await.unwrap();
    assert_eq!(head, rev.position);
    let mut caught_up = false;
    for _ in 0..200 {
        let health: Value = app
            .get("/api/v1/health/projections", actors::DASHBOARD)
            .await
            .json()
            .await
            .unwrap();
        let ps = health["projectors"].as_array().cloned().unwrap_or_default();
        if !ps.is_empty() && ps.iter().all(|p| p["checkpoint"] == json!(head)) {
            assert!(ps.iter().all(|p| p["last_error"].is_null()), "{health}");
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(caught_up, "projectors reached the report's commit");
    // The live read model shows the same counts the report sent (same instant, same period).
    let stats: Value = app
        .get(
            "/api/v1/stats?period=month&from=2026-03&to=2026-03&street=jd-01&now=2026-03-02T06:00:00Z",
            actors::DASHBOARD,
        )
        .await
        .json()
        .await
        .unwrap();
    let items = stats["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{stats}");
    assert_eq!(items[0]["counts"]["received"], json!(2));
    assert_eq!(
        items[0]["counts"], rev.published.figures["totals"]["counts"],
        "dashboard and report agree"
    );
    app.teardown().await;
    db.drop_db().await;
}

#[test]
fn serve_refuses_a_bad_schedule_naming_its_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bianmin.toml");
    std::fs::write(
        &config,
        "[http]\nlisten = \"127.0.0.1:0\"\n[[reports.schedules]]\nlevel = \"street\"\nevery = \"month\"\nday = 31\nat = \"09:00\"\n",
    )
    .expect("config written");
    let mut child = std::process::Command::new(tests::faults::bianmin_binary())
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("BIANMIN_NATS_URL")
        .env_remove("DATABASE_URL")
        .env_remove("BIANMIN_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("bianmin starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve kept running with a bad schedule");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("reports.schedules.day"), "{stderr}");
}
