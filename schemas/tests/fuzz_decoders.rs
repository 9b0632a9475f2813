//! Bounded fuzzing of every decoder of outside input in the wire contract: intake documents,
//! command envelopes, HTTP command bodies and stored commits. Random bytes and structurally
//! mutated valid documents must produce a value or a `DecodeError`, never a panic or a hang.

use proptest::prelude::*;
use schemas::*;
use serde_json::{Value, json};

fn valid_intake() -> Value {
    serde_json::from_str(include_str!("../examples/v1/intake_document.json")).unwrap()
}

fn valid_commit() -> Value {
    serde_json::from_str(include_str!(
        "../examples/v1/commit_request_received_v1.json"
    ))
    .unwrap()
}

/// Arbitrary JSON values, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces one field (at the top or one level down) of `base` with `value`.
fn mutate(mut base: Value, path: &[&str], value: Value) -> Value {
    let mut cursor = &mut base;
    for key in &path[..path.len() - 1] {
        cursor = &mut cursor[*key];
    }
    cursor[path[path.len() - 1]] = value;
    base
}

fn decode_everything(bytes: &[u8]) {
    let _ = serde_json::from_slice::<IntakeDocument>(bytes);
    let _ = serde_json::from_slice::<CommandEnvelope>(bytes);
    let _ = Commit::from_bytes(bytes);
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        for kind in CommandKind::ALL {
            let _ = Command::from_action_body(kind.as_str(), value.clone());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes);
    }

    #[test]
    fn random_json_never_panics(value in any_json()) {
        decode_everything(&serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn mutated_intake_documents_decode_or_fail_cleanly(
        field in prop::sample::select(vec!["channel", "external_id", "contact", "location",
            "text", "attachments", "priority_lanes", "kind", "raised_at", "anonymous"]),
        value in any_json(),
    ) {
        let document = mutate(valid_intake(), &[field], value);
        let _ = serde_json::from_value::<IntakeDocument>(document);
    }

    #[test]
    fn mutated_commits_decode_or_fail_cleanly(
        field in prop::sample::select(vec!["type", "schema_version", "data", "version",
            "actor", "occurred_at", "event_id", "hash"]),
        value in any_json(),
    ) {
        let mut commit = valid_commit();
        commit["events"][0] = mutate(commit["events"][0].clone(), &[field], value);
        let _ = Commit::from_raw(commit);
    }

    #[test]
    fn mutated_v1_payloads_fail_cleanly_in_the_upcaster(grid in ".{0,40}", raised in ".{0,30}") {
        let mut commit = valid_commit();
        commit["events"][0]["data"]["grid"] = json!(grid);
        commit["events"][0]["data"]["raised_at"] = json!(raised);
        let _ = Commit::from_raw(commit);
    }
}

#[test]
fn deeply_nested_documents_are_refused_not_overflowing_the_stack() {
    let depth = 100_000;
    let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    decode_everything(text.as_bytes());
    let nested = format!(
        "{{\"action\":\"accept\",\"note\":{}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert!(serde_json::from_str::<Command>(&nested).is_err());
}

#[test]
fn invalid_utf8_is_a_decode_error() {
    let bytes = b"{\"channel\":\"hotline\",\"external_id\":\"\xff\xfe\"}";
    assert!(serde_json::from_slice::<IntakeDocument>(bytes).is_err());
    assert!(Commit::from_bytes(bytes).is_err());
}
