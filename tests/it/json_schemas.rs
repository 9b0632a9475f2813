//! The published JSON Schemas refuse what the engine refuses: each intake document the
//! engine's `validate_intake` refuses for a limit a schema can express is also refused by
//! `schemas/json/v1/intake_document.schema.json`, checked with the PyPI `jsonschema`
//! validator integrators use (the Python example's packages).

use std::path::Path;

use engine_core::Policy;
use serde_json::{Value, json};

/// Which of `documents` the published schema `name` accepts, by Python's `jsonschema`.
fn accepted_by_schema(py_dir: &Path, name: &str, documents: &[Value]) -> Vec<bool> {
    let dir = tempfile::tempdir().expect("dir");
    let input = dir.path().join("documents.json");
    std::fs::write(&input, Value::from(documents.to_vec()).to_string()).expect("write");
    let schema = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas/json/v1")
        .join(format!("{name}.schema.json"));
    let program = "import json, sys, jsonschema\n\
        schema = json.load(open(sys.argv[1], encoding='utf-8'))\n\
        cls = jsonschema.validators.validator_for(schema)\n\
        cls.check_schema(schema)\n\
        v = cls(schema)\n\
        print(json.dumps([v.is_valid(d) for d in json.load(open(sys.argv[2], encoding='utf-8'))]))";
    let output = std::process::Command::new("python3")
        .args(["-c", program])
        .arg(&schema)
        .arg(&input)
        .env("PYTHONPATH", py_dir)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON list of booleans")
}

fn document(change: impl FnOnce(&mut Value)) -> Value {
    let mut document = json!({
        "channel": "hotline",
        "external_id": "HL-2026-000123",
        "contact": {"name": "王芳", "phone": "13800001111"},
        "location": {"street": "jd-01", "community": "sq-0101", "grid": "wg-010101"},
        "text": "小区北门路灯已坏三天",
    });
    change(&mut document);
    document
}

#[test]
fn the_intake_schema_refuses_what_the_engine_refuses() {
    let Some(py_dir) = crate::python_example::python_for_the_example() else {
        return;
    };
    let long = |n: usize| "x".repeat(n);
    let refused = [
        (
            "empty external_id",
            document(|d| d["external_id"] = json!("")),
        ),
        (
            "external_id over 128",
            document(|d| d["external_id"] = json!(long(129))),
        ),
        (
            "control character",
            document(|d| d["external_id"] = json!("HL\u{7}1")),
        ),
        ("empty text", document(|d| d["text"] = json!(""))),
        ("blank text", document(|d| d["text"] = json!(" \t\n "))),
        (
            "text over 10000",
            document(|d| d["text"] = json!(long(10_001))),
        ),
        (
            "no contact",
            document(|d| d.as_object_mut().unwrap().retain(|k, _| k != "contact")),
        ),
        (
            "blank contact",
            document(|d| d["contact"] = json!({"name": "  "})),
        ),
        (
            "contact over 256",
            document(|d| d["contact"]["name"] = json!(long(257))),
        ),
        (
            "grid code over 64",
            document(|d| d["location"]["grid"] = json!(long(65))),
        ),
        (
            "street code over 64",
            document(|d| d["location"]["street"] = json!("街".repeat(65))),
        ),
        (
            "blank attachment uri",
            document(|d| d["attachments"] = json!([{"uri": " "}])),
        ),
        (
            "attachment uri over 2048",
            document(|d| d["attachments"] = json!([{"uri": long(2049)}])),
        ),
        (
            "21 attachments",
            document(|d| d["attachments"] = json!(vec![json!({"uri": "s3://a"}); 21])),
        ),
        (
            "neither location nor point",
            document(|d| d.as_object_mut().unwrap().retain(|k, _| k != "location")),
        ),
        (
            "latitude over 90",
            document(|d| d["point"] = json!({"lat": 90.5, "lon": 117.51})),
        ),
        (
            "longitude under -180",
            document(|d| d["point"] = json!({"lat": 34.755, "lon": -180.5})),
        ),
        (
            "unknown datum",
            document(|d| d["point"] = json!({"lat": 34.755, "lon": 117.51, "datum": "bd09"})),
        ),
        ("blank address", document(|d| d["address"] = json!("  "))),
        (
            "address over 512",
            document(|d| d["address"] = json!(long(513))),
        ),
    ];
    let policy = Policy::for_tests();
    // Any fixed instant: none of the documents carries a `raised_at`.
    let now = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 2, 9, 0, 0).unwrap();
    let engine_refuses = |value: &Value| match serde_json::from_value(value.clone()) {
        Ok(document) => engine_service::commands::validate_intake(&document, &policy, now).is_err(),
        Err(_) => true,
    };
    let documents: Vec<Value> = refused.iter().map(|(_, d)| d.clone()).collect();
    let verdicts = accepted_by_schema(&py_dir, "intake_document", &documents);
    for ((why, value), accepted) in refused.iter().zip(verdicts) {
        assert!(engine_refuses(value), "the engine accepts: {why}");
        assert!(
            !accepted,
            "the schema accepts what the engine refuses: {why}"
        );
    }
    // The limits themselves are accepted by both.
    let at_the_limits = document(|d| {
        d["external_id"] = json!(long(128));
        d["location"]["micro_grid"] = json!("微".repeat(64));
        d["attachments"] = json!([{"uri": long(2048)}]);
    });
    assert_eq!(
        accepted_by_schema(
            &py_dir,
            "intake_document",
            std::slice::from_ref(&at_the_limits)
        ),
        vec![true]
    );
    let mut known_grid = at_the_limits.clone();
    known_grid["location"]
        .as_object_mut()
        .expect("location")
        .remove("micro_grid");
    assert!(!engine_refuses(&known_grid), "{known_grid}");
    // A point instead of the grid path, and an address at its limit: accepted by both.
    let point_only = document(|d| {
        d.as_object_mut().unwrap().remove("location");
        d["point"] = json!({"lat": 34.7536, "lon": 117.5161, "datum": "gcj02"});
        d["address"] = json!(long(512));
    });
    assert_eq!(
        accepted_by_schema(
            &py_dir,
            "intake_document",
            std::slice::from_ref(&point_only)
        ),
        vec![true]
    );
    assert!(!engine_refuses(&point_only), "{point_only}");
}
