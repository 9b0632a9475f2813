//! The catalogue items' typed questions in the Open311 service definition, JSON and XML: after
//! the `grid` and `priority_lane` attributes, one attribute per question with its datatype,
//! `required`, `order`, the bilingual label and the choices as `values`.

use serde_json::Value;
use tests::app::Store;

use crate::open311::{get, get_xml, keys, spawn};

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
