//! The wire contract holds: committed JSON Schemas match the code, golden examples decode,
//! unknown fields are refused, and old event versions are read through the upcaster.

use schemas::*;
use serde_json::json;

#[test]
fn committed_json_schemas_match_the_code() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(json_schema::DIR);
    for (name, generated) in json_schema::all() {
        let committed = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(
            committed == generated,
            "{name} is stale: run `cargo run -p schemas --bin gen-schemas` and commit the result"
        );
    }
}

#[test]
fn command_bodies_refuse_unknown_fields_and_name_the_field() {
    let error = Command::from_action_body("refer", json!({"lead_department": "x", "colour": 1}))
        .unwrap_err();
    assert_eq!(error.code(), "malformed");
    assert_eq!(error.field(), Some("colour"));
}

#[test]
fn command_bodies_report_missing_fields() {
    let error = Command::from_action_body("reply", json!({"outcome": "resolved"})).unwrap_err();
    assert_eq!(error.field(), Some("content"));
}

#[test]
fn command_bodies_refuse_unknown_actions_and_non_objects() {
    assert_eq!(
        Command::from_action_body("explode", json!({}))
            .unwrap_err()
            .code(),
        "unknown_type"
    );
    assert_eq!(
        Command::from_action_body("accept", json!([1]))
            .unwrap_err()
            .code(),
        "malformed"
    );
    assert_eq!(
        Command::from_action_body("accept", json!({"action": "archive"}))
            .unwrap_err()
            .field(),
        Some("action")
    );
}

#[test]
fn every_command_kind_round_trips_its_wire_name() {
    for kind in CommandKind::ALL {
        assert_eq!(CommandKind::parse(kind.as_str()), Some(*kind));
        let tagged = serde_json::to_value(kind).unwrap();
        assert_eq!(tagged, json!(kind.as_str()));
    }
    for kind in EventKind::ALL {
        assert_eq!(EventKind::parse(kind.as_str()), Some(*kind));
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
    }
}

#[test]
fn intake_document_golden_example_decodes() {
    let text = include_str!("../examples/v1/intake_document.json");
    let document: IntakeDocument = serde_json::from_str(text).unwrap();
    assert_eq!(document.channel, Channel::Hotline);
    assert_eq!(
        document.location.map(|l| l.community).as_deref(),
        Some("sq-101")
    );
    assert_eq!(document.priority_lanes, vec![PriorityLane::Elderly]);
}

#[test]
fn intake_document_with_only_a_point_decodes_and_a_bad_datum_is_refused() {
    let text = r#"{"channel":"online","external_id":"app-1","anonymous":true,
        "point":{"lat":34.7551,"lon":117.5152,"datum":"gcj02"},"address":"文化路 12 号","text":"路灯不亮"}"#;
    let document: IntakeDocument = serde_json::from_str(text).unwrap();
    assert_eq!(document.location, None);
    let point = document.point.unwrap();
    assert_eq!(
        (point.lat, point.lon, point.datum),
        (34.7551, 117.5152, schemas::Datum::Gcj02)
    );
    assert_eq!(document.address.as_deref(), Some("文化路 12 号"));
    let bad = text.replace("gcj02", "bd09");
    let err = serde_json::from_str::<IntakeDocument>(&bad).unwrap_err();
    assert!(err.to_string().contains("unknown variant `bd09`"), "{err}");
}

#[test]
fn request_received_without_place_still_reads_and_writes_no_place() {
    let text = include_str!("../examples/v1/commit_request_received_v1.json");
    let commit = Commit::from_bytes(text.as_bytes()).unwrap();
    let Event::RequestReceived(received) = &commit.events[0].event else {
        panic!("the example's first event is request_received");
    };
    assert_eq!(received.place, None);
    let written = serde_json::to_value(received).unwrap();
    assert!(written.get("place").is_none(), "{written}");
}

#[test]
fn request_received_v1_is_read_as_v2() {
    // Arrange: a commit as written by schema version 1 of request_received.
    let text = include_str!("../examples/v1/commit_request_received_v1.json");
    let raw: serde_json::Value = serde_json::from_str(text).unwrap();
    let stored_hash = raw["events"][0]["hash"].as_str().unwrap().to_string();

    // Act
    let commit = Commit::from_bytes(text.as_bytes()).unwrap();

    // Assert: the location is structured, the accept deadline derived, version now 2.
    let envelope = &commit.events[0];
    assert_eq!(envelope.schema_version, 2);
    let Event::RequestReceived(received) = &envelope.event else {
        panic!("wrong event")
    };
    assert_eq!(received.location.street, "jd-01");
    assert_eq!(received.location.grid, "wg-101-1");
    assert_eq!(received.location.micro_grid.as_deref(), Some("wwg-3"));
    assert_eq!(
        received.accept_due_at.to_rfc3339(),
        "2026-03-03T09:30:00+00:00"
    );
    // The hash still verifies over the bytes as written, not the upcast form.
    assert_eq!(envelope::hash_of_raw(&raw["events"][0]), stored_hash);
}

#[test]
fn newer_or_unknown_event_versions_are_refused_not_guessed() {
    let text = include_str!("../examples/v1/commit_request_received_v1.json");
    let mut raw: serde_json::Value = serde_json::from_str(text).unwrap();
    raw["events"][0]["schema_version"] = json!(9);
    let error = Commit::from_raw(raw.clone()).unwrap_err();
    assert_eq!(error.code(), "unsupported_version");
    raw["events"][0]["type"] = json!("request_teleported");
    assert_eq!(Commit::from_raw(raw).unwrap_err().code(), "unknown_type");
}

#[test]
fn sealing_chains_hashes_and_editing_breaks_them() {
    let text = include_str!("../examples/v1/commit_request_received_v1.json");
    let commit = Commit::from_bytes(text.as_bytes()).unwrap();
    let sealed = commit.events[0].clone().seal();
    assert_eq!(sealed.computed_hash(), sealed.hash);
    let mut edited = sealed.clone();
    edited.actor.id = "someone-else".into();
    assert_ne!(edited.computed_hash(), sealed.hash);
}

#[test]
fn request_received_without_answers_reads_and_writes_as_before() {
    // An event recorded before intake answers existed reads with none, and sealing it again
    // yields the same canonical form (no new keys), so its hash is unchanged.
    let text = include_str!("../examples/v1/commit_request_received_v1.json");
    let commit = Commit::from_bytes(text.as_bytes()).unwrap();
    let Event::RequestReceived(received) = &commit.events[0].event else {
        panic!("wrong event")
    };
    assert!(received.service_code.is_none() && received.answers.is_empty());
    let data = serde_json::to_value(&commit.events[0].event).unwrap();
    assert!(data["data"].get("answers").is_none() && data["data"].get("service_code").is_none());

    // With answers they travel under `data` and decode back typed.
    let mut with = received.clone();
    with.service_code = Some("um-streetlight".into());
    with.answers = serde_json::from_value(json!({"pole_number": "JD-0117"})).unwrap();
    let value = serde_json::to_value(Event::RequestReceived(with.clone())).unwrap();
    assert_eq!(value["data"]["answers"], json!({"pole_number": "JD-0117"}));
    let back: Event = serde_json::from_value(value).unwrap();
    assert_eq!(back, Event::RequestReceived(with));
}
