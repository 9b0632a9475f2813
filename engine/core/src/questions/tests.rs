//! Answer validation: every type, required, wrong type, unknown question, choices.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

fn q(code: &str, kind: QuestionKind, required: bool) -> Question {
    Question {
        code: code.into(),
        kind,
        required,
        label_zh: "问".into(),
        label_en: "Q".into(),
        choices: if kind.has_choices() {
            ["morning", "night", "all_day"]
                .iter()
                .map(|c| Choice {
                    code: (*c).into(),
                    label_zh: "时".into(),
                    label_en: (*c).into(),
                })
                .collect()
        } else {
            vec![]
        },
        max_length: None,
        min: None,
        max: None,
    }
}

fn all() -> Vec<Question> {
    let mut amount = q("amount", QuestionKind::Number, false);
    amount.min = Some(0.0);
    amount.max = Some(1_000_000.0);
    let mut pole = q("pole_number", QuestionKind::Text, true);
    pole.max_length = Some(8);
    vec![
        pole,
        amount,
        q("when", QuestionKind::SingleChoice, false),
        q("times", QuestionKind::MultiChoice, false),
        q("since", QuestionKind::Date, false),
        q("contract", QuestionKind::YesNo, false),
    ]
}

fn answers(v: Value) -> BTreeMap<String, Value> {
    serde_json::from_value(v).expect("object")
}

fn refused(v: Value) -> (&'static str, String) {
    let e = validate_answers(&all(), &answers(v)).expect_err("refused");
    (e.code, e.field)
}

#[test]
fn every_type_accepted_and_normalised() {
    let got = validate_answers(
        &all(),
        &answers(json!({
            "pole_number": "A-1203", "amount": 12500.5, "when": "night",
            "times": ["all_day", "morning", "morning"], "since": "2026-02-28", "contract": false
        })),
    )
    .expect("valid");
    assert_eq!(got["pole_number"], "A-1203");
    assert_eq!(got["amount"], 12500.5);
    assert_eq!(got["when"], "night");
    assert_eq!(
        got["times"],
        json!(["morning", "all_day"]),
        "choice order, no repeats"
    );
    assert_eq!(got["since"], "2026-02-28");
    assert_eq!(got["contract"], false);
}

#[test]
fn optional_questions_may_be_absent_or_null() {
    let got = validate_answers(
        &all(),
        &answers(json!({"pole_number": "7", "amount": null})),
    )
    .expect("valid");
    assert_eq!(got.len(), 1);
}

#[test]
fn required_missing_or_null_is_refused() {
    let field = "answers.pole_number".to_string();
    assert_eq!(refused(json!({})), ("answer_required", field.clone()));
    assert_eq!(
        refused(json!({"pole_number": null})),
        ("answer_required", field)
    );
}

#[test]
fn wrong_types_are_refused_with_the_question_named() {
    let base = json!({"pole_number": "7"});
    for (code, bad) in [
        ("pole_number", json!(17)),
        ("pole_number", json!("   ")),
        ("pole_number", json!("123456789")),
        ("amount", json!("many")),
        ("amount", json!(-1)),
        ("amount", json!(2_000_000)),
        ("when", json!(["night"])),
        ("times", json!("night")),
        ("times", json!([])),
        ("since", json!("28/02/2026")),
        ("since", json!("2026-02-30")),
        ("contract", json!("maybe")),
    ] {
        let mut v = base.clone();
        v[code] = bad.clone();
        assert_eq!(
            refused(v),
            ("answer_invalid", format!("answers.{code}")),
            "{code} = {bad}"
        );
    }
}

#[test]
fn choice_not_in_the_list_is_refused() {
    assert_eq!(
        refused(json!({"pole_number": "7", "when": "noon"})),
        ("answer_invalid", "answers.when".into())
    );
    assert_eq!(
        refused(json!({"pole_number": "7", "times": ["night", "noon"]})),
        ("answer_invalid", "answers.times".into())
    );
}

#[test]
fn unknown_question_is_refused() {
    assert_eq!(
        refused(json!({"pole_number": "7", "colour": "red"})),
        ("unknown_question", "answers.colour".into())
    );
}

#[test]
fn form_text_becomes_typed_values() {
    let form: BTreeMap<String, Vec<String>> = [
        ("pole_number", vec!["A-7"]),
        ("amount", vec!["3000"]),
        ("times", vec!["night"]),
        ("contract", vec!["yes"]),
        ("since", vec!["2026-01-05"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    let got = validate_answers(&all(), &answers_from_form(&all(), &form)).expect("valid");
    assert_eq!(got["amount"], 3000.0);
    assert_eq!(got["times"], json!(["night"]));
    assert_eq!(got["contract"], true);
    let bad: BTreeMap<String, Vec<String>> = [
        ("pole_number".to_string(), vec!["7".to_string()]),
        ("amount".into(), vec!["lots".into()]),
    ]
    .into_iter()
    .collect();
    let e = validate_answers(&all(), &answers_from_form(&all(), &bad)).expect_err("refused");
    assert_eq!(
        (e.code, e.field.as_str()),
        ("answer_invalid", "answers.amount")
    );
}

#[test]
fn question_definitions_are_checked() {
    let mut dup = all();
    dup.push(q("amount", QuestionKind::Text, false));
    assert_eq!(
        validate_questions(&dup).expect_err("dup").0,
        "questions[6].code"
    );
    let reserved = vec![q("grid", QuestionKind::Text, false)];
    assert_eq!(
        validate_questions(&reserved).expect_err("reserved").0,
        "questions[0].code"
    );
    let mut no_choices = q("when", QuestionKind::SingleChoice, false);
    no_choices.choices.clear();
    assert_eq!(
        validate_questions(&[no_choices]).expect_err("choices").0,
        "questions[0].choices"
    );
    let mut stray = q("n", QuestionKind::Number, false);
    stray.max_length = Some(3);
    assert_eq!(
        validate_questions(&[stray]).expect_err("max_length").0,
        "questions[0].max_length"
    );
    assert!(validate_questions(&all()).is_ok());
}
