//! The catalogue items' typed questions: in the Open311 service definition (JSON and XML:
//! after the `grid` and `priority_lane` attributes, one attribute per question with its
//! datatype, `required`, `order`, the bilingual label and the choices as `values`), and their
//! answers at intake — native `answers` and Open311 `attribute[code]` — recorded typed on
//! `request_received`, or refused with the answer named and nothing recorded.

use serde_json::{Value, json};
use tests::app::{Store, TestApp, external_id, intake_document, spawn_app};

use crate::open311::{API_KEY, JURISDICTION, get, get_xml, keys, post_form, spawn};

#[tokio::test]
async fn the_service_definition_lists_the_items_questions() {
    let app = spawn(Store::Sqlite, None, false).await;
    let (status, def) = get(&app, "/open311/v2/services/um-streetlight.json").await;
    assert_eq!(status, 200, "{def}");
    let attrs = def["attributes"].as_array().expect("attributes");
    let codes: Vec<&str> = attrs
        .iter()
        .map(|a| a["code"].as_str().expect("code"))
        .collect();
    assert_eq!(
        codes,
        ["grid", "priority_lane", "pole_number", "lamp_state"]
    );
    let pole = &attrs[2];
    assert_eq!(pole["datatype"], "string");
    assert_eq!(pole["required"], true);
    assert_eq!(pole["order"], 3);
    assert_eq!(pole["variable"], true);
    assert_eq!(
        pole["description"],
        "灯杆编号 Pole number (on the pole's plate)"
    );
    assert_eq!(pole["values"], Value::Array(vec![]));
    let lamp = &attrs[3];
    assert_eq!(lamp["datatype"], "singlevaluelist");
    assert_eq!(lamp["required"], false);
    assert_eq!(lamp["order"], 4);
    let keys_of = |a: &Value| -> Vec<String> {
        a["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|v| v["key"].as_str().expect("key").to_owned())
            .collect()
    };
    assert_eq!(keys_of(lamp), ["off", "flickering", "on_by_day", "damaged"]);
    assert_eq!(lamp["values"][0]["name"], "不亮 Does not light");

    // Every datatype: number, multivaluelist, datetime and yes/no as a list of true / false.
    let (_, wages) = get(&app, "/open311/v2/services/ss-wage-arrears.json").await;
    let amount = &wages["attributes"][3];
    assert_eq!(
        (amount["code"].as_str(), amount["datatype"].as_str()),
        (Some("amount_owed"), Some("number"))
    );
    assert_eq!(amount["required"], true);
    let contract = &wages["attributes"][5];
    assert_eq!(contract["code"], "has_contract");
    assert_eq!(contract["datatype"], "singlevaluelist");
    assert_eq!(keys_of(contract), ["true", "false"]);
    let (_, noise) = get(&app, "/open311/v2/services/ps-living-noise.json").await;
    assert_eq!(noise["attributes"][3]["datatype"], "multivaluelist");
    assert_eq!(noise["attributes"][3]["code"], "noise_source");
    let (_, water) = get(&app, "/open311/v2/services/ut-water-outage.json").await;
    assert_eq!(water["attributes"][4]["datatype"], "datetime");

    // An item without questions keeps its two attributes.
    let (_, vending) = get(&app, "/open311/v2/services/um-street-vending.json").await;
    assert_eq!(
        vending["attributes"].as_array().expect("attributes").len(),
        2
    );

    // The XML document carries the same attributes with the spec's element names.
    let (status, xml) = get_xml(&app, "/open311/v2/services/um-streetlight.xml").await;
    assert_eq!(status, 200);
    let attributes = &xml.child("attributes").children;
    assert_eq!(attributes.len(), 4);
    let lamp_xml = &attributes[3];
    assert_eq!(lamp_xml.name, "attribute");
    assert_eq!(lamp_xml.child_names(), keys(lamp));
    assert_eq!(lamp_xml.child("code").text, "lamp_state");
    assert_eq!(lamp_xml.child("datatype").text, "singlevaluelist");
    assert_eq!(lamp_xml.child("order").text, "4");
    let values: Vec<&str> = lamp_xml
        .child("values")
        .children
        .iter()
        .map(|v| v.child("key").text.as_str())
        .collect();
    assert_eq!(values, ["off", "flickering", "on_by_day", "damaged"]);
    assert_eq!(attributes[2].child("required").text, "true");
}

/// A native intake document under `um-streetlight` with `answers`.
fn streetlight(answers: Value) -> Value {
    let mut doc = intake_document(&external_id());
    doc["text"] = json!("路灯不亮 The streetlight outside building 3 is out.");
    doc["service_code"] = json!("um-streetlight");
    doc["answers"] = answers;
    doc
}

async fn refused(app: &TestApp, doc: &Value, code: &str, field: &str) {
    let before = app.log_length().await;
    let (status, body) = app.intake(doc).await;
    assert_eq!(status, 400, "{doc}: {body}");
    assert_eq!(
        (body["code"].as_str(), body["field"].as_str()),
        (Some(code), Some(field)),
        "{body}"
    );
    assert_eq!(app.log_length().await, before, "nothing recorded for {doc}");
}

#[tokio::test]
async fn native_intake_records_valid_answers_and_refuses_bad_ones() {
    let app = spawn_app(Store::Sqlite).await;
    let (status, created) = app
        .intake(&streetlight(
            json!({"pole_number": "JD-0117", "lamp_state": "flickering"}),
        ))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id");
    let history = app.history(id).await;
    assert_eq!(history[0]["data"]["service_code"], "um-streetlight");
    assert_eq!(
        history[0]["data"]["answers"],
        json!({"pole_number": "JD-0117", "lamp_state": "flickering"})
    );

    // Typed answers of every kind under the wage-arrears item.
    let mut wages = intake_document(&external_id());
    wages["service_code"] = json!("ss-wage-arrears");
    wages["answers"] = json!({
        "employer_name": "宏达建筑公司", "amount_owed": 18600.5, "months_owed": 3, "has_contract": false
    });
    let (status, created) = app.intake(&wages).await;
    assert_eq!(status, 201, "{created}");
    let history = app
        .history(created["request_id"].as_str().expect("id"))
        .await;
    assert_eq!(history[0]["data"]["answers"]["amount_owed"], 18600.5);
    assert_eq!(history[0]["data"]["answers"]["has_contract"], false);

    // No service code: no answers, the event as before (no new keys).
    let (status, plain) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201);
    let history = app.history(plain["request_id"].as_str().expect("id")).await;
    let data = history[0]["data"].as_object().expect("data");
    assert!(
        !data.contains_key("answers") && !data.contains_key("service_code"),
        "{data:?}"
    );

    refused(
        &app,
        &streetlight(json!({"lamp_state": "off"})),
        "answer_required",
        "answers.pole_number",
    )
    .await;
    refused(
        &app,
        &streetlight(json!({"pole_number": 117})),
        "answer_invalid",
        "answers.pole_number",
    )
    .await;
    refused(
        &app,
        &streetlight(json!({"pole_number": "7", "lamp_state": "broken"})),
        "answer_invalid",
        "answers.lamp_state",
    )
    .await;
    refused(
        &app,
        &streetlight(json!({"pole_number": "7", "colour": "red"})),
        "unknown_question",
        "answers.colour",
    )
    .await;
    let mut no_item = streetlight(json!({"pole_number": "7"}));
    no_item
        .as_object_mut()
        .expect("object")
        .remove("service_code");
    let before = app.log_length().await;
    let (status, body) = app.intake(&no_item).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("service_code")),
        "{body}"
    );
    let mut unknown = streetlight(json!({}));
    unknown["service_code"] = json!("no-such-item");
    let (status, body) = app.intake(&unknown).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("unknown_reference")),
        "{body}"
    );
    assert_eq!(app.log_length().await, before);
}

fn open311_form(extra: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = [
        ("api_key", API_KEY),
        ("jurisdiction_id", JURISDICTION),
        ("service_code", "ps-living-noise"),
        ("address_string", "兴国路 12 号"),
        (
            "description",
            "楼上每晚音响很吵 Loud music upstairs every night",
        ),
        ("attribute[grid]", "wg-010102"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    pairs.push(("attribute[floor]".into(), "5".into()));
    serde_urlencoded::to_string(&pairs).expect("form")
}

#[tokio::test]
async fn open311_attributes_answer_the_items_questions() {
    let app = spawn(Store::Sqlite, None, false).await;
    let (status, created) = post_form(
        &app,
        open311_form(&[
            ("attribute[time_of_day]", "night"),
            ("attribute[noise_source][]", "music"),
            ("attribute[noise_source][]", "square_dancing"),
        ]),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created[0]["service_request_id"].as_str().expect("id");
    let history = app.history(id).await;
    let data = &history[0]["data"];
    assert_eq!(data["service_code"], "ps-living-noise");
    assert_eq!(
        data["answers"],
        json!({"time_of_day": "night", "noise_source": ["music", "square_dancing"]})
    );
    // An attribute the item does not ask stays a marked line of the text, as before.
    let text = data["text"].as_str().expect("text");
    assert!(
        text.contains("floor=5") && !text.contains("time_of_day"),
        "{text}"
    );

    // A required question unanswered, or a value not among the choices: 400, nothing recorded.
    let before = app.log_length().await;
    for (form, field) in [
        (open311_form(&[]), "answers.time_of_day"),
        (
            open311_form(&[("attribute[time_of_day]", "noon")]),
            "answers.time_of_day",
        ),
        (
            open311_form(&[
                ("attribute[time_of_day]", "night"),
                ("attribute[noise_source][]", "drums"),
            ]),
            "answers.noise_source",
        ),
    ] {
        let (status, body) = post_form(&app, form).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body[0]["code"], 400);
        let description = body[0]["description"].as_str().expect("description");
        assert!(description.contains(field), "{description}");
    }
    assert_eq!(app.log_length().await, before);
}
