//! The exhaustive stage × command table: every command kind, issued with a valid sample by a
//! suitable actor, against a request standing in every stage, is accepted or refused exactly
//! as `TABLE` says; `docs/state-machine.md` holds the same table.

mod harness;

use engine_core::Stage;
use harness::*;
use schemas::CommandKind;

/// One row per command kind (declaration order), one cell per stage (`Stage::ALL` order):
/// `ok` = accepted, `-` = refused `wrong_stage`, anything else = the refusal code.
const TABLE: &[(&str, [&str; 20])] = &include!("state_machine_table.in");

fn observed() -> Vec<(String, Vec<String>)> {
    let stages: Vec<_> = Stage::ALL.iter().map(|s| (*s, at_stage(*s))).collect();
    CommandKind::ALL
        .iter()
        .map(|kind| {
            let cells = stages
                .iter()
                .map(|(_, h)| {
                    let mut h = h.clone();
                    let (actor, command, now) = sample(*kind, &h);
                    h.now = now;
                    let before = h.events.len();
                    match h.try_run(&actor, command) {
                        Ok(events) => {
                            assert!(
                                !events.is_empty(),
                                "{} accepted without events",
                                kind.as_str()
                            );
                            "ok".to_string()
                        }
                        Err(r) => {
                            assert_eq!(h.events.len(), before);
                            if r.code() == "wrong_stage" {
                                "-".to_string()
                            } else {
                                r.code().to_string()
                            }
                        }
                    }
                })
                .collect();
            (kind.as_str().to_string(), cells)
        })
        .collect()
}

fn render(rows: &[(String, Vec<String>)]) -> String {
    let mut out = String::from("| command |");
    for s in Stage::ALL {
        out.push_str(&format!(" {} |", s.as_str()));
    }
    out.push_str("\n|---|");
    for _ in Stage::ALL {
        out.push_str("---|");
    }
    out.push('\n');
    for (kind, cells) in rows {
        out.push_str(&format!("| `{kind}` |"));
        for c in cells {
            out.push_str(&format!(" {c} |"));
        }
        out.push('\n');
    }
    out
}

#[test]
fn every_stage_and_command_behaves_as_the_table_says() {
    let observed = observed();
    let expected: Vec<(String, Vec<String>)> = TABLE
        .iter()
        .map(|(k, cells)| (k.to_string(), cells.iter().map(|c| c.to_string()).collect()))
        .collect();
    assert_eq!(
        expected.len(),
        CommandKind::ALL.len(),
        "one row per command kind"
    );
    for ((ek, ec), (ok, oc)) in expected.iter().zip(&observed) {
        assert_eq!(ek, ok, "row order follows CommandKind::ALL");
        for (i, (e, o)) in ec.iter().zip(oc).enumerate() {
            assert_eq!(e, o, "`{ek}` in stage {}", Stage::ALL[i].as_str());
        }
    }
}

#[test]
fn the_documented_table_is_the_tested_table() {
    let expected: Vec<(String, Vec<String>)> = TABLE
        .iter()
        .map(|(k, cells)| (k.to_string(), cells.iter().map(|c| c.to_string()).collect()))
        .collect();
    let rendered = render(&expected);
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/state-machine.md"
    ))
    .expect("docs/state-machine.md exists");
    assert!(
        doc.contains(&rendered),
        "docs/state-machine.md must contain the table exactly as rendered from TABLE:\n{rendered}"
    );
}

#[test]
fn dump_observed_table() {
    // Writes the observed table for review when the rules change (not an assertion).
    if std::env::var_os("DUMP_STATE_TABLE").is_some() {
        let rows = observed();
        let mut data = String::from("[\n");
        for (k, cells) in &rows {
            let quoted: Vec<String> = cells.iter().map(|c| format!("{c:?}")).collect();
            data.push_str(&format!("    ({k:?}, [{}]),\n", quoted.join(", ")));
        }
        data.push(']');
        println!("{data}\n\n{}", render(&rows));
    }
}
