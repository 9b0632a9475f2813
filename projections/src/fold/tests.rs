//! The fold's compatibility with states stored by earlier versions.

use super::*;

#[test]
fn a_state_stored_before_pauses_were_folded_reads_as_not_paused() {
    let old = serde_json::json!({
        "request_id": Uuid::from_u128(1), "stage": "in_progress", "kind": "service",
        "channel": "hotline_12345",
        "location": {"street": "jd", "community": "sq", "grid": "g"},
        "anonymous": false, "received_at": "2026-03-01T00:00:00Z",
        "accept_due_at": "2026-03-02T00:00:00Z", "accepted_at": null, "declined_at": null,
        "owner": null, "classifications": [], "due_moves": [], "lead_department": null,
        "referred_at": null, "signed_at": null, "engaged_at": null, "first_contact_at": null,
        "replied_at": null, "reply_outcome": null, "open": true, "ratings": [],
        "archived_at": null, "overdue": false, "reopen_count": 0, "referral_returns": 0,
        "escalation_level": null, "referrals": [], "last_position": 7
    });
    let state: RequestState = serde_json::from_value(old).expect("old state decodes");
    assert_eq!(state.paused_since, None);
    assert_eq!(state.summary().paused_since, None);
    assert_eq!(state.marks, SupervisionMarks::default());
}
