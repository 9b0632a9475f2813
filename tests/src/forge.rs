//! What a rogue client with publish rights on the event subjects can write: records built from
//! a request's stored commits, correctly chained and hashed, but not by the engine.

use schemas::envelope::hash_of_raw;
use serde_json::{Value, json};
use uuid::Uuid;

/// The request's next commit as a forger writes it: the last event of `last` (a stored
/// commit's raw JSON) copied as the next version, chained to its hash, re-hashed, with a new
/// commit id and no signature.
pub fn next_commit(last: &Value) -> Value {
    let mut commit = last.clone();
    commit["commit_id"] = json!(Uuid::now_v7());
    if let Some(object) = commit.as_object_mut() {
        object.remove("signature");
    }
    let tail = last["events"]
        .as_array()
        .and_then(|events| events.last())
        .expect("a stored commit holds events")
        .clone();
    let mut event = tail.clone();
    event["event_id"] = json!(Uuid::now_v7());
    event["version"] = json!(tail["version"].as_u64().expect("a version") + 1);
    event["prev_hash"] = tail["hash"].clone();
    if let Some(object) = event.as_object_mut() {
        object.remove("hash");
    }
    let hash = hash_of_raw(&event);
    event["hash"] = json!(hash);
    commit["events"] = json!([event]);
    commit
}
