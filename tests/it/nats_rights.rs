//! Over NATS (the in-process engine on a real nats-server and JetStream log): a second intake
//! for the same ticket with another phone, over request-reply or the durable inbox, does not
//! replace the contact; a department not involved in a confidential request is refused a
//! command exactly as for a random id, without learning its stage.

use std::time::Duration;

use async_nats::jetstream;
use engine_service::contacts::StoredContact;
use engine_service::privacy;
use schemas::RequestId;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::nats_intake::{
    DEPARTMENT, Engine, ITEM, Store, eventually, intake_document, publish_to_inbox,
    stream_messages, unique,
};

const RESIDENT_PHONE: &str = "13811113333";
const IMPOSTOR_PHONE: &str = "13999991111";
const RESIDENT_INTAKE: &str = "hotline-1;intake_system";
const OTHER_INTAKE: &str = "other-intake;intake_system";
const WORKER: &str = "worker-1;station_worker;sq-0101";
const OTHER_HANDLER: &str = "handler-9;department_handler;hrss";

fn document(ticket: &str, phone: &str) -> Value {
    let mut document = intake_document("hotline", ticket);
    document["contact"]["phone"] = json!(phone);
    document
}

async fn intake(engine: &Engine, actor: &str, document: &Value) -> Value {
    let (error, body) = engine
        .request(
            engine.cfg.names.intake_subject("hotline"),
            Some(actor),
            document.to_string().into_bytes(),
        )
        .await;
    assert_eq!(error, None, "{body}");
    body
}

async fn stored_phone(engine: &Engine, request_id: RequestId) -> Option<String> {
    let service = &engine.service;
    let reference = privacy::contact_of(service.log(), request_id)
        .await
        .expect("the log answers")?;
    match service.contacts().get(&reference).await.expect("contacts") {
        Some(StoredContact::Present(contact)) => contact.phone,
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_intake_over_nats_for_the_same_ticket_does_not_replace_the_contact() {
    let engine = Engine::build(Store::JetStream).await;
    let (shutdown, task) = engine.serve().await;

    // Request-reply: the resident's intake, then another system's with another phone.
    let ticket = format!("HIJACK-{}", unique());
    let first = intake(&engine, RESIDENT_INTAKE, &document(&ticket, RESIDENT_PHONE)).await;
    assert_eq!(first["created"], json!(true), "{first}");
    let id: RequestId = serde_json::from_value(first["request_id"].clone()).expect("an id");
    let second = intake(&engine, OTHER_INTAKE, &document(&ticket, IMPOSTOR_PHONE)).await;
    assert_eq!(second["created"], json!(false), "{second}");
    assert_eq!(second["request_id"], first["request_id"]);
    assert_eq!(
        stored_phone(&engine, id).await.as_deref(),
        Some(RESIDENT_PHONE)
    );

    // The durable inbox is a path of its own: the same ticket published there with another
    // phone changes nothing either, nor does a second inbox document for an inbox request.
    let js = jetstream::new(engine.client.clone());
    engine_service::nats::inbox::ensure_streams(&js, &engine.cfg)
        .await
        .expect("inbox streams");
    let (stop_inbox, inbox) = engine.consume_inbox();
    let inbox_ticket = format!("HIJACK-INBOX-{}", unique());
    let inbox_subject = engine.cfg.names.inbox_subject("hotline");
    let publish = |ticket: String, phone: &'static str| {
        let js = js.clone();
        let subject = inbox_subject.clone();
        async move {
            publish_to_inbox(
                &js,
                subject,
                document(&ticket, phone).to_string().into_bytes(),
            )
            .await;
        }
    };
    publish(ticket.clone(), IMPOSTOR_PHONE).await;
    let inbox_stream = engine.cfg.names.inbox_stream();
    let drained = || async { stream_messages(&js, &inbox_stream).await == Some(0) };
    eventually(Duration::from_secs(15), "the inbox document", drained).await;
    publish(inbox_ticket.clone(), RESIDENT_PHONE).await;
    eventually(Duration::from_secs(15), "the inbox document", drained).await;
    publish(inbox_ticket.clone(), IMPOSTOR_PHONE).await;
    eventually(Duration::from_secs(15), "the inbox document", drained).await;

    assert_eq!(
        stored_phone(&engine, id).await.as_deref(),
        Some(RESIDENT_PHONE),
        "an inbox document does not replace a request-reply intake's contact"
    );
    assert_eq!(engine.event_kinds(id).await.len(), 1, "nothing recorded");
    let inbox_id = engine
        .service
        .intake_ids()
        .request_id(schemas::Channel::Hotline, &inbox_ticket);
    assert_eq!(engine.event_kinds(inbox_id).await.len(), 1);
    assert_eq!(
        stored_phone(&engine, inbox_id).await.as_deref(),
        Some(RESIDENT_PHONE),
        "a second inbox document does not replace the first one's contact"
    );

    stop_inbox.cancel();
    inbox.await.expect("inbox task");
    shutdown.cancel();
    task.await.expect("server task");
    engine.cleanup().await;
}

/// A command over NATS: the reply's error header and body.
async fn command(
    engine: &Engine,
    actor: &str,
    id: RequestId,
    command: Value,
) -> (Option<String>, Value) {
    let action = command["action"].as_str().expect("an action").to_string();
    let envelope = json!({"command_id": Uuid::now_v7(), "request_id": id, "command": command});
    engine
        .request(
            engine.cfg.names.cmd_subject(&action),
            Some(actor),
            envelope.to_string().into_bytes(),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uninvolved_department_is_refused_over_nats_as_for_a_random_id() {
    let engine = Engine::build(Store::JetStream).await;
    let (shutdown, task) = engine.serve().await;
    let mut confidential = document(&format!("CONF-{}", unique()), RESIDENT_PHONE);
    confidential["confidential"] = json!(true);
    let body = intake(&engine, RESIDENT_INTAKE, &confidential).await;
    let id: RequestId = serde_json::from_value(body["request_id"].clone()).expect("an id");
    let handler = format!("handler-1;department_handler;{DEPARTMENT}");
    for (actor, step) in [
        (WORKER, json!({"action": "accept"})),
        (
            WORKER,
            json!({"action": "classify", "catalogue_item": ITEM, "request_type": "help"}),
        ),
        (
            WORKER,
            json!({"action": "refer", "lead_department": DEPARTMENT}),
        ),
        (handler.as_str(), json!({"action": "sign_for"})),
    ] {
        engine.command(actor, id, step).await;
    }

    let before = engine
        .service
        .load(id)
        .await
        .expect("the request")
        .version();
    for step in [
        json!({"action": "sign_for"}),
        json!({"action": "start_handling"}),
        json!({"action": "contact_resident", "method": "phone"}),
    ] {
        let real = command(&engine, OTHER_HANDLER, id, step.clone()).await;
        let unknown = command(&engine, OTHER_HANDLER, Uuid::now_v7(), step.clone()).await;
        assert_eq!(
            real.0.as_deref(),
            Some("not_addressed_to_you"),
            "{step}: {}",
            real.1
        );
        assert_eq!(real, unknown, "{step}");
        assert!(!real.1.to_string().contains("signed_for"), "{}", real.1);
    }
    let after = engine
        .service
        .load(id)
        .await
        .expect("the request")
        .version();
    assert_eq!(after, before, "nothing appended");

    shutdown.cancel();
    task.await.expect("server task");
    engine.cleanup().await;
}
