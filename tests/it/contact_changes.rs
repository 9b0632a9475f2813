//! The contact a request was received with changes only by an explicit command: a second
//! intake for the same ticket (another intake system, another phone) is answered as a
//! duplicate and leaves the stored contact, and therefore notifications, with the resident.

use engine_service::contacts::StoredContact;
use engine_service::privacy;
use serde_json::{Value, json};
use tests::app::{Store, TestApp, external_id, spawn_app_with};
use uuid::Uuid;

const RESIDENT_PHONE: &str = "13811112222";
const IMPOSTOR_PHONE: &str = "13999990000";

fn intake(ticket: &str, phone: &str, anonymous: bool) -> Value {
    json!({
        "channel": "hotline",
        "external_id": ticket,
        "anonymous": anonymous,
        "contact": { "name": "Li Lei", "phone": phone },
        "location": { "street": "jd-01", "community": "sq-0101", "grid": "wg-010102" },
        "text": "The streetlight outside building 5 has been out for a week.",
    })
}

async fn stored_phone(app: &TestApp, request_id: Uuid) -> Option<String> {
    let service = &app.command_service;
    let reference = privacy::contact_of(service.log(), request_id)
        .await
        .expect("the log answers")?;
    match service.contacts().get(&reference).await.expect("contacts") {
        Some(StoredContact::Present(contact)) => contact.phone,
        _ => None,
    }
}

async fn post(app: &TestApp, actor: &str, body: &Value) -> (u16, Value) {
    let response = app.post("/api/v1/requests", actor, body).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_intake_for_the_same_ticket_does_not_replace_the_contact() {
    let app = spawn_app_with(Store::Nats, |config| {
        config.privacy.contact_readers = vec!["audit-dpo".into()];
    })
    .await;
    let ticket = format!("hijack-{}", external_id());
    let (status, first) = post(
        &app,
        "hotline-1;intake_system",
        &intake(&ticket, RESIDENT_PHONE, false),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    let id: Uuid = serde_json::from_value(first["request_id"].clone()).expect("an id");

    let (status, second) = post(
        &app,
        "other-intake;intake_system",
        &intake(&ticket, IMPOSTOR_PHONE, false),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["created"], false);
    assert_eq!(
        stored_phone(&app, id).await.as_deref(),
        Some(RESIDENT_PHONE)
    );
    let response = app
        .get(
            &format!("/api/v1/requests/{id}/contact?purpose=check"),
            "audit-dpo;auditor",
        )
        .await;
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["contact"]["phone"], RESIDENT_PHONE, "{body}");

    // Rights before facts: who may not read contact data gets the same answer for this
    // request as for one that does not exist.
    for actor in [
        "audit-1;auditor",
        "urban-1;department_handler;urban-management",
    ] {
        let mut answers = Vec::new();
        for request in [id, Uuid::now_v7()] {
            let response = app
                .get(
                    &format!("/api/v1/requests/{request}/contact?purpose=check"),
                    actor,
                )
                .await;
            let status = response.status().as_u16();
            answers.push((status, response.text().await.expect("a body")));
        }
        assert_eq!(answers[0].0, 403, "{actor}: {answers:?}");
        assert_eq!(answers[0], answers[1], "{actor}");
    }

    // A request received anonymously gains no contact from a later intake either.
    let ticket = format!("hijack-{}", external_id());
    let (status, first) = post(
        &app,
        "hotline-1;intake_system",
        &intake(&ticket, RESIDENT_PHONE, true),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    let id: Uuid = serde_json::from_value(first["request_id"].clone()).expect("an id");
    let (status, _) = post(
        &app,
        "other-intake;intake_system",
        &intake(&ticket, IMPOSTOR_PHONE, false),
    )
    .await;
    assert_eq!(status, 200);
    let derived = schemas::ContactRef(Uuid::new_v5(
        &engine_service::commands::CONTACT_NAMESPACE,
        id.as_bytes(),
    ));
    assert_eq!(
        app.command_service
            .contacts()
            .get(&derived)
            .await
            .expect("contacts"),
        None,
        "the impostor's contact is not kept under the request's reference"
    );
    app.teardown().await;
}
