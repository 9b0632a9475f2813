//! The Python integration example `deploy/examples/python/submit_and_follow.py` (nats-py)
//! against a real nats-server and a running `bianmin serve`: it submits an intake document
//! over request-reply, prints the answer, then follows the request's commits on the event
//! log with an ordered consumer while the test moves the request through its lifecycle over
//! HTTP. Every event the log holds for the request must have been printed, in order. The
//! example validates every answer and commit against the JSON Schemas (`schemas/json/v1`) and
//! exits with code 2 on a violation, which fails the test; a run against a tampered schema
//! shows that it does.
//!
//! nats-py and jsonschema come from `target/tools/py` (installed by `scripts/services`;
//! installed here with pip when missing). The tests are skipped, with a printed reason, only
//! when python3 is absent.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use engine_log::{EventLog, JetStreamConfig};
use tests::faults::{Api, ServeOptions, ServeProcess, lifecycle_commands};
use tokio::io::{AsyncBufReadExt, BufReader};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// What the example imports, and the pip packages that provide it.
const IMPORTS: &str = "import nats, nats.js.api, jsonschema";
const PACKAGES: [&str; 2] = ["nats-py", "jsonschema"];

fn python_with_packages(py_dir: &Path) -> Result<(), String> {
    let imports = || {
        std::process::Command::new("python3")
            .args(["-c", IMPORTS])
            .env("PYTHONPATH", py_dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if imports() {
        return Ok(());
    }
    let status = std::process::Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(py_dir)
        .args(PACKAGES)
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() && imports() {
        Ok(())
    } else {
        Err(format!(
            "{PACKAGES:?} are not importable from {} and pip could not install them (run scripts/services)",
            py_dir.display()
        ))
    }
}

/// The `PYTHONPATH` with nats-py and jsonschema, or `None` (skipped, with the reason printed)
/// when python3 is not installed.
pub(crate) fn python_for_the_example() -> Option<PathBuf> {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: python3 is not installed, the Python example cannot run");
        return None;
    }
    let py_dir = workspace().join("target/tools/py");
    python_with_packages(&py_dir).expect("nats-py and jsonschema for the example");
    Some(py_dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_submits_and_follows_a_request() {
    let Some(py_dir) = python_for_the_example() else {
        return;
    };

    let stream = format!("PY_{}", uuid::Uuid::now_v7().simple()).to_uppercase();
    let prefix = stream.to_lowercase();
    let nats_url = tests::nats::shared_nats_url();
    let engine = ServeProcess::start(ServeOptions {
        nats_url: Some(nats_url.clone()),
        env: vec![
            ("BIANMIN_NATS__STREAM".into(), stream.clone()),
            ("BIANMIN_NATS__SUBJECT_PREFIX".into(), prefix.clone()),
        ],
        ..ServeOptions::default()
    })
    .await;
    let example = Example {
        server: nats_url,
        login: Vec::new(),
        prefix,
        stream,
        py_dir,
    };
    let client = tests::nats::shared_nats().await;
    submit_and_follow(&engine, &example, client.clone()).await;
    a_reply_the_schemas_refuse_fails_the_example(&example).await;
    drop(engine);
    tests::nats::delete_stream(&client, &example.stream).await;
}

/// Runs the example against schemas that demand a field the intake reply lacks: it must say
/// so and exit with code 2 (so a real mismatch fails the tests above).
async fn a_reply_the_schemas_refuse_fails_the_example(example: &Example) {
    let schemas = tempfile::tempdir().expect("dir");
    let published = workspace().join("schemas/json/v1");
    for name in ["intake_reply", "error_reply", "commit"] {
        let file = format!("{name}.schema.json");
        let text = std::fs::read_to_string(published.join(&file)).expect("a published schema");
        let mut schema: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        if name == "intake_reply" {
            schema["required"]
                .as_array_mut()
                .expect("required")
                .push("not_in_the_reply".into());
        }
        std::fs::write(schemas.path().join(&file), schema.to_string()).expect("write");
    }
    let ticket = format!("PY-{}", uuid::Uuid::now_v7().simple());
    let script = workspace().join("deploy/examples/python/submit_and_follow.py");
    let run = tokio::process::Command::new("python3")
        .arg(&script)
        .args(["--server", &example.server, "--prefix", &example.prefix])
        .args(&example.login)
        .args(["--actor", "hotline-gateway;intake_system"])
        .args(["--external-id", &ticket, "--follow-seconds", "0"])
        .arg("--schemas")
        .arg(schemas.path())
        .env("PYTHONPATH", &example.py_dir)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the example exits within 60 s")
        .expect("python3 runs the example");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("schema violation: intake_reply") && stderr.contains("not_in_the_reply"),
        "{stderr}"
    );
}

/// How the example is run: its server, its login arguments, the instance's names.
struct Example {
    server: String,
    login: Vec<String>,
    prefix: String,
    stream: String,
    py_dir: PathBuf,
}

/// Runs the example against `engine`, moves the request through its lifecycle over HTTP, and
/// checks that the example printed every event the log (read through `log_client`) holds.
async fn submit_and_follow(
    engine: &ServeProcess,
    example: &Example,
    log_client: async_nats::Client,
) {
    let Example {
        server: nats_url,
        login,
        prefix,
        stream,
        py_dir,
    } = example;
    let ticket = format!("PY-{}", uuid::Uuid::now_v7().simple());
    let script = workspace().join("deploy/examples/python/submit_and_follow.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(&script)
        .args(["--server", nats_url, "--prefix", prefix, "--stream", stream])
        .args(login)
        .args(["--actor", "hotline-gateway;intake_system"])
        .args(["--external-id", &ticket, "--follow-seconds", "60"])
        .env("PYTHONPATH", py_dir)
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs the example");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut printed = Vec::new();
    let next_line = async |lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>| {
        tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the example prints within 30 s")
            .expect("stdout reads")
    };

    // 1. The intake answer.
    let first = next_line(&mut lines).await.expect("the intake answer");
    let answer = first
        .strip_prefix("intake reply: ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"));
    let answer: serde_json::Value = serde_json::from_str(answer).expect("JSON answer");
    assert_eq!(answer["created"], true, "{answer}");
    let request_id = answer["request_id"]
        .as_str()
        .expect("request_id")
        .to_string();
    assert_eq!(
        request_id,
        tests::instance_intake_ids(&engine.data_dir())
            .request_id(schemas::Channel::Hotline, &ticket)
            .to_string()
    );
    // 2. It follows the request; move it along over HTTP meanwhile.
    let follows = next_line(&mut lines).await.expect("the follow line");
    assert_eq!(follows, format!("following {prefix}.events.{request_id}"));
    let api = Api::new(engine.url());
    for (actor, action, body) in lifecycle_commands() {
        let reply = api
            .post(
                &format!("/api/v1/requests/{request_id}/{action}"),
                Some(actor),
                &body,
                None,
            )
            .await
            .expect("the engine answers");
        assert!(
            reply.status < 300,
            "{action}: {} {}",
            reply.status,
            reply.body
        );
    }
    // 3. It stops by itself once it has seen the archive.
    while let Some(line) = next_line(&mut lines).await {
        printed.push(line);
    }
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the example exits")
        .expect("exit status");
    assert!(status.success(), "{printed:#?}");
    assert_eq!(
        printed.last().map(String::as_str),
        Some("archived"),
        "{printed:#?}"
    );

    // Every event of the request, in log order, was printed with its position and version.
    let log = EventLog::connect_jetstream(
        log_client,
        JetStreamConfig {
            names: schemas::Names::new(prefix, stream).expect("valid names"),
            manage_stream: false,
            ..JetStreamConfig::default()
        },
    )
    .await
    .expect("the engine's log");
    let commits = log
        .load(request_id.parse().expect("a uuid"))
        .await
        .expect("the request's commits");
    let expected: Vec<String> = commits
        .iter()
        .flat_map(|c| {
            c.commit.events.iter().map(move |e| {
                format!(
                    "event position={} version={} type={}",
                    c.position,
                    e.version,
                    e.event.kind().as_str()
                )
            })
        })
        .collect();
    let seen: Vec<String> = printed
        .iter()
        .filter(|l| l.starts_with("event "))
        .map(|l| {
            l.split(" occurred_at=")
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(seen, expected);
    assert!(
        expected.len() >= 11,
        "intake and ten commands: {expected:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_runs_as_the_integrator_user_of_the_shipped_accounts() {
    let Some(py_dir) = python_for_the_example() else {
        return;
    };
    let server =
        crate::nats_auth::ConfiguredServer::with_shipped_accounts(tests::nats::free_port())
            .start()
            .await;
    let secrets = tempfile::tempdir().expect("dir");
    let password = crate::nats_auth::secret_file(secrets.path(), "pw", crate::nats_auth::PASSWORD);
    let engine = ServeProcess::start(ServeOptions {
        nats_url: Some(server.url()),
        env: crate::nats_auth::engine_login(&password),
        ..ServeOptions::default()
    })
    .await;
    let example = Example {
        server: server.url(),
        login: vec![
            "--user".into(),
            "integrator".into(),
            "--password-file".into(),
            password.display().to_string(),
        ],
        prefix: "bianmin".into(),
        stream: "BIANMIN_EVENTS".into(),
        py_dir,
    };
    let engine_client = async_nats::ConnectOptions::with_user_and_password(
        "engine".into(),
        crate::nats_auth::PASSWORD.into(),
    )
    .connect(server.url())
    .await
    .expect("the engine's login");
    submit_and_follow(&engine, &example, engine_client).await;
}
