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

/// Publishes `payload` on `subject` until `inbox` receives a copy (within 30 s) and returns it.
/// Core NATS delivers at most once, and on a loaded machine a first copy can be lost, so a
/// single publish with a short wait is not a fair test of the permissions.
async fn first_delivery(
    publisher: &async_nats::Client,
    subject: &'static str,
    payload: &'static str,
    inbox: &mut async_nats::Subscriber,
) -> async_nats::Message {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            publisher
                .publish(subject, payload.into())
                .await
                .expect("published");
            publisher.flush().await.expect("flushed");
            if let Ok(next) = tokio::time::timeout(Duration::from_millis(500), inbox.next()).await {
                break next.expect("a message");
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{subject}: not delivered within 30 s"))
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
    let got = first_delivery(&engine, dispatch, "{\"request_id\":\"r1\"}", &mut inbox).await;
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
    let got = first_delivery(&engine, "bianmin.audit.digest.daily", "{}", &mut digests).await;
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
