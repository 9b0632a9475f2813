//! Conformance of the live server to its own OpenAPI document, judged by a third party:
//! schemathesis (PyPI) generates valid and invalid requests for every operation from
//! `/openapi.json` and runs all its checks (no server error, documented status codes, content
//! types and response schemas, invalid data refused, valid data accepted, 405 with `Allow`
//! for unsupported methods, authentication not ignored, …) against `bianmin serve`, called with a
//! bearer token, on the embedded default
//! (SQLite log and read models in a temporary data dir). Fixed seed, bounded examples.
//!
//! schemathesis is installed by `scripts/services` under `target/tools/schemathesis`
//! (`BIANMIN_SCHEMATHESIS` names another directory); the test installs it there itself when
//! it is missing and skips only when there is no `python3`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tests::faults::{ServeOptions, ServeProcess};

/// Generated cases per operation and phase.
const MAX_EXAMPLES: &str = "25";
/// The seed, so that a failure reproduces.
const SEED: &str = "20260302";
/// The whole run's budget.
const DEADLINE: Duration = Duration::from_secs(240);
/// The notifications routes exist only with a notifier, so the server gets one: a webhook to
/// a loopback port nothing listens on (deliveries fail and are retried; nothing leaves the host).
const NOTIFY: &str = r#"
[[notify.webhooks]]
name = "closed-port"
url = "http://127.0.0.1:9/notify"
secret = "conformance"
"#;
/// Where a schema-valid request may still be refused (400) for what no schema can state:
/// an intake's location must name a grid of the server's policy (server state), and an Open311
/// list's `start_date` must not lie after its `end_date` (two parameters compared), a what-if
/// needs one of `profile` / `profile_name` and a period that is not reversed. Only these
/// operations, and only the "valid data accepted" check, also take 400 as an answer.
///
/// `min_position` is held at 0: a generated position far beyond the log is rightly answered
/// 503 `not_caught_up` after the read wait, which the run would count as a server error (the
/// wait and its bounds are tested in `read_your_writes`).
const CONFIG: &str = r#"
[parameters]
"query.min_position" = 0

[[operations]]
include-operation-id = ["intake", "open311_requests", "open311_requests_xml", "policy_whatif"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
"#;
/// The caller, by bearer token as in production (so `ignored_auth` checks the real scheme): the
/// system role may call every operation, so the checks reach the handlers. Its SHA-256 is in
/// [`TOKENS`].
const AUTHORIZATION: &str = "Authorization: Bearer schemathesis-conformance-token";
/// The token of [`AUTHORIZATION`], configured as the server stores it (hex SHA-256).
const TOKENS: &str = r#"
[[auth.tokens]]
id = "schemathesis"
role = "system"
token_sha256 = "4787adf8ee59b1d9c4e965093a61e3247ed7344a1c93e32b2127713ee8047890"
"#;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The directory holding the `schemathesis` package, installed there when missing.
fn schemathesis_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("BIANMIN_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/tools/schemathesis"));
    if dir.join("schemathesis").is_dir() {
        return Some(dir);
    }
    Command::new("python3").arg("--version").output().ok()?;
    eprintln!("schemathesis: installing into {}", dir.display());
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&dir)
        .arg("schemathesis")
        .status()
        .expect("pip runs");
    assert!(
        status.success(),
        "installing schemathesis failed: run scripts/services"
    );
    Some(dir)
}

#[tokio::test]
async fn the_live_server_conforms_to_its_openapi_document() {
    let Some(dir) = schemathesis_dir() else {
        eprintln!("SKIPPED: no python3 on PATH, so schemathesis cannot run");
        return;
    };
    let server = ServeProcess::start(ServeOptions {
        extra_toml: format!("{NOTIFY}{TOKENS}"),
        ..ServeOptions::default()
    })
    .await;
    let reports = tempfile::tempdir().expect("a report dir");
    std::fs::write(reports.path().join("schemathesis.toml"), CONFIG).expect("write the config");
    let mut command = tokio::process::Command::new("python3");
    command
        .env("PYTHONPATH", &dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_COLOR", "1")
        .current_dir(reports.path())
        .args([
            "-c",
            "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'st'; schemathesis()",
            "--config-file",
            "schemathesis.toml",
            "run",
        ])
        .arg(format!("{}/openapi.json", server.url()))
        .args(["--url", &server.url()])
        .args(["--checks", "all"])
        .args(["--seed", SEED])
        .args(["--max-examples", MAX_EXAMPLES])
        // One worker: with several, hypothesis parses lambda sources with `ast.parse` on
        // concurrent threads, which CPython 3.11 fails at ("AST constructor recursion depth
        // mismatch", a KeyError in its lambda cache) and reports as errors of the run. One
        // worker also keeps the run in one order, so the seed reproduces it.
        .args(["--workers", "1"])
        .args(["--header", AUTHORIZATION])
        .args(["--request-timeout", "15"])
        .args(["--generation-database", "none"])
        .args(["--no-color", "--output-truncate", "false"])
        .kill_on_drop(true);
    let output = tokio::time::timeout(DEADLINE, command.output())
        .await
        .expect("schemathesis finishes within its budget")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{stdout}\n{stderr}\n--- server log ---\n{}",
        server.tail(40)
    );
    eprintln!("{stdout}");
}
