//! The answer columns of an import row: `answer.<question code>`, one column per typed
//! question of the row's `catalogue_item`, read as a spreadsheet user writes them and checked
//! by the same rule as live intake ([`engine_core::questions::validate_answers`]).
//!
//! Values: text and dates as written, numbers as numbers, yes/no as the import's booleans
//! (`true/false`, `yes/no`, `1/0`, `是/否`), a single choice as its code, a multiple choice as
//! codes separated by `;` (a JSON Lines list too). A row without answer columns records no
//! answers and is not checked against the item's questions: the old system asked none.

use std::collections::BTreeMap;

use engine_core::Policy;
use engine_core::questions::{QuestionKind, answers_from_form, validate_answers};
use serde_json::Value;

use super::row::{ANSWER_PREFIX, Fields, RowError};

/// The row's service code and checked answers, as the intake document carries them: `None`
/// and no answers when the row has no answer column.
pub(super) type Answers = (Option<String>, BTreeMap<String, Value>);

/// Reads and checks the answer columns of the row against the questions of its
/// `catalogue_item`; a refusal names the answer's column (`answer.<code>`).
pub(super) fn answers(f: &Fields<'_>, policy: &Policy) -> Result<Answers, RowError> {
    let written = f.answers();
    let Some(first) = written.keys().next() else {
        return Ok((None, BTreeMap::new()));
    };
    let column = |code: &str| format!("{ANSWER_PREFIX}{code}");
    let code = f.get("catalogue_item").ok_or_else(|| {
        f.error(
            "required",
            "catalogue_item",
            format!(
                "is required with {}: answers belong to a catalogue item's questions",
                column(first)
            ),
        )
    })?;
    let item = policy.catalogue().item(code).ok_or_else(|| {
        f.error(
            "unknown_reference",
            "catalogue_item",
            format!("`{code}` is not an item of the catalogue"),
        )
    })?;
    let form: BTreeMap<String, Vec<String>> = written
        .iter()
        .map(|(code, value)| {
            let kind = item
                .questions
                .iter()
                .find(|q| q.code == *code)
                .map(|q| q.kind);
            (code.to_string(), form_values(kind, value))
        })
        .collect();
    let checked = validate_answers(&item.questions, &answers_from_form(&item.questions, &form))
        .map_err(|e| {
            let code = e.field.strip_prefix("answers.").unwrap_or(&e.field);
            f.error(e.code, &column(code), e.reason.clone())
        })?;
    Ok((Some(item.id.clone()), checked))
}

/// A written value as the form values [`answers_from_form`] reads: a multiple choice split
/// at `;`, a yes/no in the import's boolean words made `true`/`false`, others as written.
fn form_values(kind: Option<QuestionKind>, value: &str) -> Vec<String> {
    match kind {
        Some(QuestionKind::MultiChoice) => value
            .split([';', '；'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        Some(QuestionKind::YesNo) => {
            let word = match value.to_lowercase().as_str() {
                "true" | "yes" | "y" | "1" | "是" => "true".to_string(),
                "false" | "no" | "n" | "0" | "否" => "false".to_string(),
                _ => value.to_string(),
            };
            vec![word]
        }
        _ => vec![value.to_string()],
    }
}
