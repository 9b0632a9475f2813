//! The lifecycle steps of an import row, each read and checked from its columns: the intake
//! document, the classification, the handling, the reply and the rating. Each step checks
//! what it can alone; [`super::row`]'s `check_order` checks the steps against each other.

use engine_core::Policy;
use schemas::intake::ResidentContact;
use schemas::{
    Channel, Datum, GeoPoint, GridPath, HandlingMode, IntakeDocument, Place, PriorityLane,
    ReplyOutcome, RequestKind, RequestType, Resolution, Satisfaction, Timestamp, Urgency,
};

use super::row::{ClassificationRow, Fields, HandlingRow, RatingRow, ReplyRow, RowError};
use crate::commands::{CommandError, validate_intake};

/// What a row's intake becomes: the document, its grid path, the place recorded with it
/// (point and address), and when it was received.
pub(super) type Intake = (IntakeDocument, GridPath, Option<Place>, Timestamp);

/// The intake document of the row, its grid path and place and when it was received, checked
/// as an intake is.
pub(super) fn intake(
    f: &Fields<'_>,
    external_id: String,
    policy: &Policy,
) -> Result<Intake, RowError> {
    let channel = Channel::parse(f.required("channel")?).ok_or_else(|| {
        f.error(
            "invalid_value",
            "channel",
            "must be one of hotline, window, online, grid_patrol, letters_visits, email",
        )
    })?;
    let received_at = f
        .time("received_at")?
        .ok_or_else(|| f.error("required", "received_at", "is required"))?;
    let location = GridPath {
        street: f.required("street")?.to_string(),
        community: f.required("community")?.to_string(),
        grid: f.required("grid")?.to_string(),
        micro_grid: None,
    };
    let contact = ResidentContact {
        name: f.text("contact_name"),
        phone: f.text("contact_phone"),
        id_number: f.text("contact_id_number"),
        address_detail: f.text("contact_address"),
    };
    let has_contact = contact.name.is_some()
        || contact.phone.is_some()
        || contact.id_number.is_some()
        || contact.address_detail.is_some();
    let anonymous = f.flag("anonymous")?.unwrap_or(!has_contact);
    let mut priority_lanes = Vec::new();
    for lane in f.list("priority_lanes") {
        let parsed: PriorityLane = serde_json::from_value(serde_json::Value::String(lane.clone()))
            .map_err(|_| {
                f.error(
                    "invalid_value",
                    "priority_lanes",
                    format!("`{lane}` is not one of elderly, military, disabled"),
                )
            })?;
        if !priority_lanes.contains(&parsed) {
            priority_lanes.push(parsed);
        }
    }
    let (service_code, answers) = super::answers::answers(f, policy)?;
    let document = IntakeDocument {
        channel,
        external_id,
        contact: (!anonymous && has_contact).then_some(contact),
        anonymous,
        confidential: f.flag("confidential")?.unwrap_or(false),
        no_reply_requested: f.flag("no_reply_requested")?.unwrap_or(false),
        location: Some(location.clone()),
        point: point(f)?,
        address: f.text("address"),
        text: f.required("text")?.to_string(),
        attachments: Vec::new(),
        priority_lanes,
        kind: f
            .code::<RequestKind>("kind", "service, dispute")?
            .unwrap_or_default(),
        raised_at: f.time("raised_at")?,
        // The item whose questions the `answer.<code>` columns answer (docs/import.md).
        service_code,
        answers,
    };
    let (_, place) = validate_intake(&document, policy, received_at).map_err(|e| match e {
        CommandError::Invalid {
            code,
            message,
            field,
        } => {
            let field = match field.as_deref() {
                Some("location") if code == "outside_jurisdiction" => "lat".to_string(),
                Some("location") => "grid".to_string(),
                Some("point") => "lat".to_string(),
                Some("contact") => "contact_name".to_string(),
                Some(other) => other.to_string(),
                None => "external_id".to_string(),
            };
            let message = if code == "unknown_reference" && field == "grid" {
                format!(
                    "{}/{}/{} is not a grid of the directory",
                    location.street, location.community, location.grid
                )
            } else {
                message
            };
            f.error(&code, &field, message)
        }
        other => f.error(&other.code(), "external_id", other.to_string()),
    })?;

    Ok((document, location, place, received_at))
}

/// The row's `lat` / `lon` (both or neither) in its `datum` (`wgs84` unless said).
fn point(f: &Fields<'_>) -> Result<Option<GeoPoint>, RowError> {
    let degrees = |column: &str| -> Result<Option<f64>, RowError> {
        f.get(column)
            .map(|v| {
                v.trim().parse::<f64>().map_err(|_| {
                    f.error(
                        "invalid_value",
                        column,
                        format!("`{v}` is not a number of degrees"),
                    )
                })
            })
            .transpose()
    };
    let datum = f
        .code::<Datum>("datum", "wgs84, gcj02")?
        .unwrap_or_default();
    match (degrees("lat")?, degrees("lon")?) {
        (Some(lat), Some(lon)) => Ok(Some(GeoPoint { lat, lon, datum })),
        (None, None) => Ok(None),
        _ => Err(f.error("required", "lon", "lat and lon are given together")),
    }
}

/// The classification (`catalogue_item`, `classified_at`, type and urgency), if any.
pub(super) fn classification(
    f: &Fields<'_>,
    policy: &Policy,
) -> Result<Option<ClassificationRow>, RowError> {
    let classified_at = f.time("classified_at")?;
    Ok(match (f.get("catalogue_item"), classified_at) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(f.error(
                "required",
                "catalogue_item",
                "is required when classified_at is given",
            ));
        }
        (Some(_), None) => {
            return Err(f.error(
                "required",
                "classified_at",
                "is required when catalogue_item is given",
            ));
        }
        (Some(item_id), Some(at)) => {
            let Some(item) = policy.catalogue().item(item_id) else {
                return Err(f.error(
                    "unknown_reference",
                    "catalogue_item",
                    format!("`{item_id}` is not an item of the service catalogue"),
                ));
            };
            if let Some(category) = f.get("category")
                && category != item.category
            {
                return Err(f.error(
                    "invalid_value",
                    "category",
                    format!(
                        "`{category}` is not the category of item `{item_id}` (`{}`)",
                        item.category
                    ),
                ));
            }
            Some(ClassificationRow {
                catalogue_item: item_id.to_string(),
                request_type: f
                    .code::<RequestType>(
                        "request_type",
                        "consultation, help, complaint, report, suggestion, praise, other",
                    )?
                    .unwrap_or(RequestType::Other),
                urgency: f
                    .code::<Urgency>("urgency", "emergency, time_critical, general, complex")?,
                at,
            })
        }
    })
}

/// How the request was handled (mode, department, assisting units, referral and sign-off),
/// if handling started; the mode and department default to the catalogue item's.
pub(super) fn handling(
    f: &Fields<'_>,
    policy: &Policy,
    classification: Option<&ClassificationRow>,
    replied_at: Option<Timestamp>,
    contacted_at: Option<Timestamp>,
) -> Result<Option<HandlingRow>, RowError> {
    let referred_at = f.time("referred_at")?;
    let signed_for_at = f.time("signed_for_at")?;
    Ok(match classification {
        None => {
            for column in ["handling", "department", "referred_at", "signed_for_at"] {
                if f.get(column).is_some() {
                    return Err(f.error(
                        "lifecycle_order",
                        column,
                        "is given but the request was never classified (classified_at)",
                    ));
                }
            }
            None
        }
        Some(cl) => {
            let item = policy.catalogue().item(&cl.catalogue_item);
            let mode = f
                .code::<HandlingMode>("handling", "direct, proxy, referral")?
                .or(item.map(|i| i.handling_mode))
                .unwrap_or(HandlingMode::Direct);
            let department = f
                .text("department")
                .or_else(|| item.and_then(|i| i.departments.first().cloned()));
            let assisting = f.list("assisting_departments");
            let started =
                referred_at.is_some() || signed_for_at.is_some() || contacted_at.is_some();
            if !started && replied_at.is_none() {
                None
            } else {
                let department = match (mode, department) {
                    (HandlingMode::Direct, d) => d.unwrap_or_default(),
                    (_, Some(d)) => d,
                    (_, None) => {
                        return Err(f.error(
                            "required",
                            "department",
                            "is required for proxy and referral handling (the item names none)",
                        ));
                    }
                };
                if mode != HandlingMode::Referral && signed_for_at.is_some() {
                    return Err(f.error(
                        "lifecycle_order",
                        "signed_for_at",
                        "only a referral is signed for",
                    ));
                }
                Some(HandlingRow {
                    mode,
                    department,
                    assisting,
                    override_reason: f.text("override_reason"),
                    at: referred_at.unwrap_or(cl.at),
                    signed_for_at,
                })
            }
        }
    })
}

/// The reply and its review, if the request was replied.
pub(super) fn reply(
    f: &Fields<'_>,
    replied_at: Option<Timestamp>,
) -> Result<Option<ReplyRow>, RowError> {
    let reply = match (replied_at, f.get("outcome")) {
        (None, None) if f.get("reply_plan").is_some() => {
            return Err(f.error(
                "lifecycle_order",
                "reply_plan",
                "is given but the request was never replied (replied_at)",
            ));
        }
        (None, None) => None,
        (Some(_), None) => {
            return Err(f.error(
                "required",
                "outcome",
                "is required when replied_at is given",
            ));
        }
        (None, Some(_)) => {
            return Err(f.error(
                "required",
                "replied_at",
                "is required when outcome is given",
            ));
        }
        (Some(at), Some(_)) => {
            let outcome = f
                .code::<ReplyOutcome>(
                    "outcome",
                    "resolved, partially_resolved, explained_cannot_solve_now, not_ours_explained",
                )?
                .unwrap_or(ReplyOutcome::Resolved);
            if outcome == ReplyOutcome::Terminated {
                return Err(f.error(
                    "invalid_value",
                    "outcome",
                    "`terminated` is recorded only by an approved termination, not imported",
                ));
            }
            let plan = f.text("reply_plan");
            if outcome == ReplyOutcome::ExplainedCannotSolveNow && plan.is_none() {
                return Err(f.error(
                    "required",
                    "reply_plan",
                    "is required when outcome is explained_cannot_solve_now",
                ));
            }
            Some(ReplyRow {
                outcome,
                plan,
                content: f.text("reply_text").unwrap_or_else(|| {
                    format!(
                        "办理结果 / result: {}",
                        f.get("outcome").unwrap_or_default()
                    )
                }),
                at,
                reviewed_at: f.time("reviewed_at")?.unwrap_or(at),
            })
        }
    };
    if reply.is_none() && f.get("reviewed_at").is_some() {
        return Err(f.error(
            "lifecycle_order",
            "reviewed_at",
            "is given but the request was never replied (replied_at)",
        ));
    }
    Ok(reply)
}

/// The resident's rating, if the request was rated.
pub(super) fn rating(f: &Fields<'_>) -> Result<Option<RatingRow>, RowError> {
    let rated_at = f.time("rated_at")?;
    Ok(match rated_at {
        None => {
            for column in ["satisfaction", "resolution"] {
                if f.get(column).is_some() {
                    return Err(f.error(
                        "required",
                        "rated_at",
                        format!("is required when {column} is given"),
                    ));
                }
            }
            None
        }
        Some(at) => Some(RatingRow {
            satisfaction: f
                .code::<Satisfaction>(
                    "satisfaction",
                    "satisfied, basically_satisfied, dissatisfied",
                )?
                .ok_or_else(|| {
                    f.error(
                        "required",
                        "satisfaction",
                        "is required when rated_at is given",
                    )
                })?,
            resolution: f
                .code::<Resolution>("resolution", "resolved, partially_resolved, unresolved")?
                .ok_or_else(|| {
                    f.error(
                        "required",
                        "resolution",
                        "is required when rated_at is given",
                    )
                })?,
            comment: f.text("rating_comment"),
            at,
        }),
    })
}
