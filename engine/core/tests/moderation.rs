//! `moderate_public_text`: who may hide or redact a request's public text, the refusals, and
//! the public view it leaves (the latest moderation in force; the intake untouched).

mod harness;

use engine_core::Stage;
use engine_core::request::{MAX_REDACTED_TEXT_CHARS, PublicText};
use harness::*;
use schemas::command::{ModeratePublicText, ModerationAction};
use schemas::event::PublicTextModerated;
use schemas::{Command, Event};

fn moderate(moderation: ModerationAction, text: Option<&str>, reason: &str) -> Command {
    Command::ModeratePublicText(ModeratePublicText {
        moderation,
        redacted_text: text.map(String::from),
        reason: reason.into(),
    })
}

#[test]
fn a_redaction_then_a_hiding_change_the_public_view_only() {
    let mut h = at_stage(Stage::InProgress);
    assert_eq!(h.request.public_text(), PublicText::Original);
    assert!(h.request.public_attachments());
    let events = h.run(
        &supervisor(),
        moderate(
            ModerationAction::Redact,
            Some("  摊位占道 Stalls  "),
            " names a flat ",
        ),
    );
    assert_eq!(
        events,
        vec![Event::PublicTextModerated(PublicTextModerated {
            moderation: ModerationAction::Redact,
            redacted_text: Some("摊位占道 Stalls".into()),
            reason: "names a flat".into(),
        })]
    );
    assert_eq!(
        h.request.public_text(),
        PublicText::Redacted("摊位占道 Stalls")
    );
    assert!(!h.request.public_attachments());
    assert_eq!(h.stage(), Stage::InProgress, "no stage change");
    h.run(
        &station(),
        moderate(ModerationAction::Hide, None, "third party"),
    );
    assert_eq!(h.request.public_text(), PublicText::Hidden);
}

#[test]
fn moderation_stays_possible_after_archiving() {
    let mut h = at_stage(Stage::Archived);
    h.run(
        &supervisor(),
        moderate(ModerationAction::Hide, None, "published by mistake"),
    );
    assert_eq!(h.request.public_text(), PublicText::Hidden);
}

#[test]
fn bad_moderations_and_other_roles_are_refused() {
    let mut h = at_stage(Stage::InProgress);
    let cases = [
        (
            moderate(ModerationAction::Redact, None, "r"),
            "missing_field",
            "redacted_text",
        ),
        (
            moderate(ModerationAction::Redact, Some(" "), "r"),
            "missing_field",
            "redacted_text",
        ),
        (
            moderate(ModerationAction::Hide, Some("x"), "r"),
            "invalid_field",
            "redacted_text",
        ),
        (
            moderate(ModerationAction::Hide, None, " "),
            "missing_field",
            "reason",
        ),
        (
            moderate(ModerationAction::Hide, None, &"长".repeat(501)),
            "invalid_field",
            "reason",
        ),
        (
            moderate(
                ModerationAction::Redact,
                Some(&"字".repeat(MAX_REDACTED_TEXT_CHARS + 1)),
                "r",
            ),
            "invalid_field",
            "redacted_text",
        ),
    ];
    for (command, code, field) in cases {
        let refusal = h.refuse(&supervisor(), command, code);
        assert_eq!(refusal.field(), Some(field));
    }
    for actor in [
        intake(),
        dept("urban-management"),
        auditor(),
        higher(),
        system(),
    ] {
        h.refuse(
            &actor,
            moderate(ModerationAction::Hide, None, "r"),
            "not_permitted",
        );
    }
    assert_eq!(h.request.public_text(), PublicText::Original);
}
