//! Unit users of the shipped `deploy/nats/accounts.conf` on a private nats-server: a
//! department's user receives what the engine publishes on its own unit subjects, and the
//! server refuses its subscriptions to another unit's subjects or to every unit's, and any
//! publish; the auditor user reads the digests and may publish nothing.

use std::time::Duration;

use futures::StreamExt;
use tests::nats::free_port;

use crate::nats_auth::{ConfiguredServer, client_as};

/// The server's next error for a client, which must be a permissions violation naming `subject`.
async fn violation(errors: &mut tokio::sync::mpsc::UnboundedReceiver<String>, subject: &str) {
    let error = tokio::time::timeout(Duration::from_secs(5), errors.recv())
        .await
        .unwrap_or_else(|_| panic!("{subject}: no violation reported"))
        .expect("a server error");
    assert!(
        error.to_lowercase().contains("permissions violation") && error.contains(subject),
        "{subject}: {error}"
    );
}

#[tokio::test]
async fn a_department_user_reads_its_own_unit_subjects_only() {
    let server = ConfiguredServer::with_shipped_accounts(free_port())
        .start()
        .await;
    let (engine, _) = client_as(&server, "engine").await;
    let (urban, mut errors) = client_as(&server, "dept_urban_management").await;

    let own = "bianmin.units.department.urban-management.>";
    let mut inbox = urban.subscribe(own).await.expect("its own subjects");
    urban.flush().await.expect("flushed");
    let dispatch = "bianmin.units.department.urban-management.dispatch";
    engine
        .publish(dispatch, "{\"request_id\":\"r1\"}".into())
        .await
        .expect("published");
    engine.flush().await.expect("flushed");
    let got = tokio::time::timeout(Duration::from_secs(5), inbox.next())
        .await
        .expect("delivered in time")
        .expect("a message");
    assert_eq!(got.subject.as_str(), dispatch);

    for subject in [
        "bianmin.units.department.sanitation.>",
        "bianmin.units.station.sq-0101.dispatch",
        "bianmin.units.>",
    ] {
        let _refused = urban.subscribe(subject).await.expect("queued");
        urban.flush().await.expect("flushed");
        violation(&mut errors, subject).await;
    }
    let subject = "bianmin.units.department.sanitation.dispatch";
    urban.publish(subject, "{}".into()).await.expect("queued");
    urban.flush().await.expect("flushed");
    violation(&mut errors, subject).await;
}

#[tokio::test]
async fn the_auditor_user_reads_digests_and_publishes_nothing() {
    let server = ConfiguredServer::with_shipped_accounts(free_port())
        .start()
        .await;
    let (engine, _) = client_as(&server, "engine").await;
    let (auditor, mut errors) = client_as(&server, "auditor").await;

    let mut digests = auditor
        .subscribe("bianmin.audit.digest.>")
        .await
        .expect("the digest subjects");
    auditor.flush().await.expect("flushed");
    engine
        .publish("bianmin.audit.digest.daily", "{}".into())
        .await
        .expect("published");
    engine.flush().await.expect("flushed");
    let got = tokio::time::timeout(Duration::from_secs(5), digests.next())
        .await
        .expect("delivered in time")
        .expect("a message");
    assert_eq!(got.subject.as_str(), "bianmin.audit.digest.daily");

    for subject in [
        "bianmin.cmd.accept",
        "bianmin.events.forged",
        "$JS.API.INFO",
    ] {
        auditor.publish(subject, "{}".into()).await.expect("queued");
        auditor.flush().await.expect("flushed");
        violation(&mut errors, subject).await;
    }
}
