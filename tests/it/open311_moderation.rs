//! Public-text moderation (`moderate_public_text`): a redaction replaces the description in
//! the Open311 answers and hides the media, a hiding removes both; the resident's original
//! words stay in the log for auditors; roles that may not moderate are refused (403) and bad
//! moderations (400/422) record nothing.

use serde_json::{Value, json};
use tests::app::{Store, actors};

use crate::open311::{API_KEY, JURISDICTION, get, post_form, spawn};

const WORDS: &str = "3号楼502室的张某每晚放音乐 Flat 502 plays music every night";

fn form() -> String {
    serde_urlencoded::to_string([
        ("api_key", API_KEY),
        ("jurisdiction_id", JURISDICTION),
        ("service_code", "um-street-vending"),
        ("address_string", "兴国路 12 号"),
        ("description", WORDS),
        ("media_url", "https://example.org/photo-502.jpg"),
        ("attribute[grid]", "wg-010102"),
    ])
    .expect("form")
}

fn one(list: &Value) -> &Value {
    &list[0]
}

#[tokio::test]
async fn moderation_changes_what_open311_publishes_and_keeps_the_original() {
    let app = spawn(Store::Sqlite, None, false).await;
    let (status, created) = post_form(&app, form()).await;
    assert_eq!(status, 201, "{created}");
    let id = created[0]["service_request_id"]
        .as_str()
        .expect("id")
        .to_string();
    let path = format!("/open311/v2/requests/{id}.json");
    let (_, before) = get(&app, &path).await;
    assert_eq!(one(&before)["description"], WORDS);
    assert_eq!(
        one(&before)["media_url"],
        "https://example.org/photo-502.jpg"
    );

    // Roles that may not moderate: refused before anything is recorded.
    let redact = json!({"moderation": "redact", "redacted_text": "夜间音乐扰民 Music at night", "reason": "names a neighbour"});
    let length = app.log_length().await;
    for actor in [actors::URBAN, actors::INTAKE, actors::AUDITOR] {
        let (status, body) = app
            .command(&id, "moderate_public_text", actor, &redact)
            .await;
        assert_eq!(status, 403, "{actor}: {body}");
        assert_eq!(body["code"], "not_permitted", "{body}");
    }
    // Bad moderations: field named, nothing recorded.
    for (body, code, field) in [
        (
            json!({"moderation": "redact", "reason": "x"}),
            "missing_field",
            "redacted_text",
        ),
        (
            json!({"moderation": "hide", "redacted_text": "y", "reason": "x"}),
            "invalid_field",
            "redacted_text",
        ),
        (
            json!({"moderation": "hide", "reason": "  "}),
            "missing_field",
            "reason",
        ),
    ] {
        let (status, answer) = app
            .command(&id, "moderate_public_text", actors::SUPERVISOR, &body)
            .await;
        assert_eq!(
            (status, answer["code"].as_str(), answer["field"].as_str()),
            (422, Some(code), Some(field)),
            "{answer}"
        );
    }
    assert_eq!(app.log_length().await, length);

    // A supervisor redacts: the redacted text is published, the media is not.
    let (status, body) = app
        .command(&id, "moderate_public_text", actors::SUPERVISOR, &redact)
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, redacted) = get(&app, &path).await;
    assert_eq!(one(&redacted)["description"], "夜间音乐扰民 Music at night");
    assert!(one(&redacted)["media_url"].is_null(), "{redacted}");
    let (_, list) = get(
        &app,
        &format!("/open311/v2/requests.json?service_request_id={id}"),
    )
    .await;
    let listed = list.as_array().expect("list");
    assert!(listed.iter().all(|r| r["description"] != WORDS), "{list}");

    // The station hides it: no description, no media.
    let hide = json!({"moderation": "hide", "reason": "personal data of a third party"});
    let (status, body) = app
        .command(&id, "moderate_public_text", actors::STATION, &hide)
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, hidden) = get(&app, &path).await;
    assert!(one(&hidden)["description"].is_null(), "{hidden}");
    assert!(one(&hidden)["media_url"].is_null(), "{hidden}");
    let xml = app
        .client
        .get(format!("{}/open311/v2/requests/{id}.xml", app.address))
        .send()
        .await
        .expect("xml")
        .text()
        .await
        .expect("text");
    // Neither the words nor the photo link survive (the id itself may contain any digits).
    for secret in ["502室", "Flat 502", "photo-502"] {
        assert!(!xml.contains(secret), "{secret}: {xml}");
    }

    // Auditors still read the resident's own words and every moderation with its reason.
    let history = app.history(&id).await;
    assert!(
        history[0]["data"]["text"]
            .as_str()
            .expect("text")
            .contains(WORDS)
    );
    let moderations: Vec<&Value> = history
        .iter()
        .filter(|e| e["type"] == "public_text_moderated")
        .collect();
    assert_eq!(moderations.len(), 2);
    assert_eq!(
        moderations[1]["data"],
        json!({"moderation": "hide", "reason": "personal data of a third party"})
    );
}
