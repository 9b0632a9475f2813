//! Reading older event versions as the current one. Applied on read only; stored events
//! are never rewritten (their hashes cover the bytes as written).
//!
//! The one real example so far: `request_received` v1 carried the location as a single
//! slash-separated string `"grid": "street/community/grid[/micro_grid]"` and no
//! `accept_due_at`. v2 has a structured `location` and the accept deadline. Reading v1:
//! split the path, and take `accept_due_at` as 24 hours after `raised_at` (the station
//! rule v1 events were written under).

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use crate::error::DecodeError;
use crate::event::EventKind;

/// Upcasts one raw envelope (`{..., "type", "schema_version", "data"}`) in place to the
/// current version of its type.
pub fn upcast_envelope(envelope: &mut Value) -> Result<(), DecodeError> {
    let type_name = envelope
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| DecodeError::Malformed {
            field: Some("type".into()),
            message: "event envelope without a type".into(),
        })?
        .to_string();
    let kind = EventKind::parse(&type_name).ok_or_else(|| DecodeError::UnknownType {
        type_name: type_name.clone(),
    })?;
    let version = envelope
        .get("schema_version")
        .and_then(Value::as_u64)
        .ok_or_else(|| DecodeError::Malformed {
            field: Some("schema_version".into()),
            message: "event envelope without a schema_version".into(),
        })?;
    let current = u64::from(kind.current_version());
    if version == 0 || version > current {
        return Err(DecodeError::UnsupportedVersion { type_name, version });
    }
    let mut version = version;
    while version < current {
        let data = envelope
            .get_mut("data")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| DecodeError::Malformed {
                field: Some("data".into()),
                message: "event without data".into(),
            })?;
        match (kind, version) {
            (EventKind::RequestReceived, 1) => request_received_v1_to_v2(data)?,
            _ => return Err(DecodeError::UnsupportedVersion { type_name, version }),
        }
        version += 1;
    }
    envelope["schema_version"] = json!(current);
    Ok(())
}

fn request_received_v1_to_v2(data: &mut Map<String, Value>) -> Result<(), DecodeError> {
    let malformed = |field: &str, message: &str| DecodeError::Malformed {
        field: Some(field.into()),
        message: message.into(),
    };
    let grid = data
        .remove("grid")
        .and_then(|g| g.as_str().map(str::to_string))
        .ok_or_else(|| malformed("grid", "v1 request_received needs a grid path string"))?;
    let parts: Vec<&str> = grid.split('/').collect();
    if !(3..=4).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
        return Err(malformed(
            "grid",
            "expected street/community/grid[/micro_grid]",
        ));
    }
    let mut location = json!({"street": parts[0], "community": parts[1], "grid": parts[2]});
    if let Some(micro) = parts.get(3) {
        location["micro_grid"] = json!(micro);
    }
    data.insert("location".into(), location);
    let raised_at: DateTime<Utc> = data
        .get("raised_at")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| malformed("raised_at", "v1 request_received needs raised_at"))?;
    let due = raised_at + Duration::hours(24);
    data.insert(
        "accept_due_at".into(),
        serde_json::to_value(due).expect("timestamps serialise"),
    );
    Ok(())
}
