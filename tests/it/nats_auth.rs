//! Logging in to NATS: private nats-servers run the shipped `deploy/nats/accounts.conf`
//! (its placeholder hashes replaced with bcrypt hashes made here), and the real `bianmin`
//! processes log in as the engine's user with the password from a file; the other roles
//! cannot write the event log; a wrong password is refused without being printed; tokens
//! and nkeys work; a list of seeds and a server that comes up late are followed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use projections::Projections;
use serde_json::json;
use tests::faults::{Api, INTAKE, ServeOptions, ServeProcess, bianmin_binary, intake_document};
use tests::nats::{free_port, nats_server_binary};

/// The password of every role of the shipped accounts file in these tests: it has the
/// characters a URL must escape, so userinfo decoding is exercised too.
pub(crate) const PASSWORD: &str = "s3cret/p@ss:word";
const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

/// A nats-server with JetStream on a chosen loopback port, from a config file written into
/// its temporary directory; killed on drop.
pub(crate) struct ConfiguredServer {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl ConfiguredServer {
    /// Writes the config (`listen`, `jetstream` and then `auth`) for `port`, without starting.
    fn prepare(port: u16, auth: &str) -> ConfiguredServer {
        let dir = tempfile::tempdir().expect("a temporary dir");
        let conf = format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\" }}\n{auth}\n",
            dir.path().join("store").display()
        );
        std::fs::write(dir.path().join("nats-server.conf"), conf).expect("write the config");
        ConfiguredServer {
            dir,
            port,
            child: None,
        }
    }

    /// The shipped `accounts.conf`, every role's password `PASSWORD` (bcrypt), included the
    /// way `deploy/nats/nats-server.conf` includes it.
    pub(crate) fn with_shipped_accounts(port: u16) -> ConfiguredServer {
        let server = ConfiguredServer::prepare(port, "include ./accounts.conf");
        let shipped = std::fs::read_to_string(repo_file("deploy/nats/accounts.conf"))
            .expect("deploy/nats/accounts.conf");
        let mut accounts = String::new();
        let mut rest = shipped.as_str();
        while let Some(at) = rest.find("$2a$11$REPLACE_WITH_BCRYPT_HASH_") {
            let end = at + rest[at..].find('"').expect("a quoted placeholder");
            accounts.push_str(&rest[..at]);
            accounts.push_str(&bcrypt_hash(PASSWORD));
            rest = &rest[end..];
        }
        accounts.push_str(rest);
        assert!(accounts.contains("user: engine") && !accounts.contains("REPLACE_WITH"));
        std::fs::write(server.dir.path().join("accounts.conf"), accounts).expect("write");
        server
    }

    fn spawn(&mut self) {
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(self.dir.path().join("nats-server.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
    }

    /// Starts the server and waits until it accepts TCP connections.
    pub(crate) async fn start(mut self) -> ConfiguredServer {
        self.spawn();
        let deadline = Instant::now() + DEADLINE;
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "nats-server did not start");
            tokio::time::sleep(POLL).await;
        }
        self
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for ConfiguredServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// A bcrypt hash in the `$2a$` form nats-server documents, at the lowest cost (fast tests).
fn bcrypt_hash(password: &str) -> String {
    bcrypt::hash_with_result(password, 4)
        .expect("bcrypt")
        .format_for_version(bcrypt::Version::TwoA)
}

/// A file holding `secret` with the newline an editor adds.
pub(crate) fn secret_file(dir: &Path, name: &str, secret: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{secret}\n")).expect("write a secret file");
    path
}

/// Environment logging in as the engine's user with the password from `file`.
pub(crate) fn engine_login(file: &Path) -> Vec<(String, String)> {
    vec![
        ("BIANMIN_NATS__USER".into(), "engine".into()),
        (
            "BIANMIN_NATS__PASSWORD_FILE".into(),
            file.display().to_string(),
        ),
    ]
}

/// Submits one intake over HTTP and checks it is accepted.
async fn intake_goes_through(serve: &ServeProcess, external_id: &str) {
    let reply = Api::new(serve.url())
        .post(
            "/api/v1/requests",
            Some(INTAKE),
            &intake_document(external_id, "13800000000"),
            None,
        )
        .await
        .expect("answered");
    assert!((200..300).contains(&reply.status), "intake: {reply:?}");
}

/// A child `bianmin` process, killed on drop.
struct Tool(Child);

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bianmin(data_dir: &Path, nats_url: &str, env: &[(String, String)]) -> Command {
    let mut command = Command::new(bianmin_binary());
    command
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--nats-url")
        .arg(nats_url)
        .env("RUST_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null());
    command
}

#[tokio::test]
async fn serve_project_and_supervise_log_in_as_the_engine_with_a_password_file() {
    let server = ConfiguredServer::with_shipped_accounts(free_port())
        .start()
        .await;
    let secrets = tempfile::tempdir().expect("dir");
    let mut env = engine_login(&secret_file(secrets.path(), "engine.pw", PASSWORD));
    // Every process of one instance signs with the instance's one key.
    env.push((
        "BIANMIN_SIGNING__KEY_FILE".into(),
        secrets.path().join("signing.key").display().to_string(),
    ));
    let serve = ServeProcess::start(ServeOptions {
        nats_url: Some(server.url()),
        env: env.clone(),
        ..ServeOptions::default()
    })
    .await;
    intake_goes_through(&serve, "AUTH-1").await;
    assert!(!serve.output().contains(PASSWORD), "{}", serve.tail(40));

    // `project` into a database of its own catches up with the log.
    let work = tempfile::tempdir().expect("dir");
    let db = format!("sqlite://{}?mode=rwc", work.path().join("p.db").display());
    let _project = Tool(
        bianmin(&work.path().join("project"), &server.url(), &env)
            .arg("--database-url")
            .arg(&db)
            .arg("project")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("bianmin project starts"),
    );
    let deadline = Instant::now() + DEADLINE;
    loop {
        let checkpoint = match Projections::connect(&db).await {
            Ok(projections) => projections.checkpoint("requests").await.unwrap_or(0),
            Err(_) => 0,
        };
        if checkpoint > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "bianmin project did not project");
        tokio::time::sleep(POLL).await;
    }

    // `supervise` opens the log and answers /readyz.
    let port = free_port();
    let mut supervise = Tool(
        bianmin(&work.path().join("supervise"), &server.url(), &env)
            .args(["supervise", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("bianmin supervise starts"),
    );
    let deadline = Instant::now() + DEADLINE;
    loop {
        let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            supervise.0.try_wait().expect("status").is_none(),
            "supervise exited"
        );
        assert!(Instant::now() < deadline, "bianmin supervise not ready");
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test]
async fn userinfo_in_the_url_logs_in_and_a_wrong_password_is_refused_unprinted() {
    let server = ConfiguredServer::with_shipped_accounts(free_port())
        .start()
        .await;
    let escaped = "s3cret%2Fp%40ss%3Aword";
    let serve = ServeProcess::start(ServeOptions {
        nats_url: Some(format!("nats://engine:{escaped}@127.0.0.1:{}", server.port)),
        ..ServeOptions::default()
    })
    .await;
    intake_goes_through(&serve, "AUTH-URL").await;
    let output = serve.output();
    assert!(!output.contains(escaped) && !output.contains(PASSWORD));

    let work = tempfile::tempdir().expect("dir");
    let wrong = "WrongHorseBatteryStaple";
    let wrong_file = secret_file(work.path(), "wrong.pw", wrong);
    for (url, env) in [
        (
            format!("nats://engine:{wrong}@127.0.0.1:{}", server.port),
            vec![],
        ),
        (server.url(), engine_login(&wrong_file)),
    ] {
        let out = bianmin(&work.path().join("data"), &url, &env)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .output()
            .expect("bianmin runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{text}");
        assert!(text.contains("authorization violation"), "{text}");
        assert!(!text.contains(wrong), "the password was printed: {text}");
    }

    // `bianmin config` masks the password of the URL and of the environment.
    let out = bianmin(
        &work.path().join("data"),
        &format!("nats://engine:{wrong}@127.0.0.1:{}", server.port),
        &[("BIANMIN_NATS__PASSWORD".into(), "AnotherSecret99".into())],
    )
    .arg("config")
    .output()
    .expect("bianmin config runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("engine:****@") && text.contains("password = \"****\""));
    assert!(
        !text.contains(wrong) && !text.contains("AnotherSecret99"),
        "{text}"
    );
}

/// Collects the server's error messages of a client (permission violations arrive there).
pub(crate) async fn client_as(
    server: &ConfiguredServer,
    user: &str,
) -> (
    async_nats::Client,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let (errors, received) = tokio::sync::mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::with_user_and_password(user.into(), PASSWORD.into())
        .event_callback(move |event| {
            let errors = errors.clone();
            async move {
                if let async_nats::Event::ServerError(error) = event {
                    let _ = errors.send(error.to_string());
                }
            }
        })
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("{user} logs in: {e}"));
    (client, received)
}

#[tokio::test]
async fn intake_and_staff_cannot_write_the_event_log_or_the_stream_api() {
    let server = ConfiguredServer::with_shipped_accounts(free_port())
        .start()
        .await;
    let (engine, _) = client_as(&server, "engine").await;
    let js = async_nats::jetstream::new(engine);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "BIANMIN_EVENTS".into(),
        subjects: vec!["bianmin.events.>".into()],
        ..Default::default()
    })
    .await
    .expect("the engine creates the stream");
    for user in ["intake", "staff", "integrator"] {
        let (client, mut errors) = client_as(&server, user).await;
        for subject in [
            "bianmin.events.request.x",
            "$JS.API.STREAM.CREATE.MINE",
            "$JS.API.STREAM.DELETE.BIANMIN_EVENTS",
            "$JS.API.STREAM.PURGE.BIANMIN_EVENTS",
        ] {
            client
                .publish(subject, json!({}).to_string().into())
                .await
                .expect("queued");
            client.flush().await.expect("flushed");
            let error = tokio::time::timeout(Duration::from_secs(5), errors.recv())
                .await
                .unwrap_or_else(|_| panic!("{user} → {subject}: no violation reported"))
                .expect("a server error");
            assert!(
                error.to_lowercase().contains("permissions violation") && error.contains(subject),
                "{user} → {subject}: {error}"
            );
        }
    }
    let mut stream = js.get_stream("BIANMIN_EVENTS").await.expect("still there");
    assert_eq!(stream.info().await.expect("info").state.messages, 0);
}

#[tokio::test]
async fn a_token_file_and_an_nkey_seed_file_log_in() {
    let secrets = tempfile::tempdir().expect("dir");
    let token = "tok-9f8e7d6c";
    let server = ConfiguredServer::prepare(
        free_port(),
        &format!("authorization {{ token: \"{}\" }}", bcrypt_hash(token)),
    )
    .start()
    .await;
    let serve = ServeProcess::start(ServeOptions {
        nats_url: Some(server.url()),
        env: vec![(
            "BIANMIN_NATS__TOKEN_FILE".into(),
            secret_file(secrets.path(), "token", token)
                .display()
                .to_string(),
        )],
        ..ServeOptions::default()
    })
    .await;
    intake_goes_through(&serve, "AUTH-TOKEN").await;
    drop(serve);

    let key = nkeys::KeyPair::new_user();
    let seed = key.seed().expect("a seed");
    let server = ConfiguredServer::prepare(
        free_port(),
        &format!(
            "authorization {{ users: [ {{ nkey: {} }} ] }}",
            key.public_key()
        ),
    )
    .start()
    .await;
    let serve = ServeProcess::start(ServeOptions {
        nats_url: Some(server.url()),
        env: vec![(
            "BIANMIN_NATS__NKEY_SEED_FILE".into(),
            secret_file(secrets.path(), "seed", &seed)
                .display()
                .to_string(),
        )],
        ..ServeOptions::default()
    })
    .await;
    intake_goes_through(&serve, "AUTH-NKEY").await;
    assert!(!serve.output().contains(&seed));
}

#[tokio::test]
async fn serve_reaches_the_second_seed_when_the_first_is_closed() {
    let server = ConfiguredServer::with_shipped_accounts(free_port())
        .start()
        .await;
    let secrets = tempfile::tempdir().expect("dir");
    let closed = free_port();
    let serve = ServeProcess::start(ServeOptions {
        nats_url: Some(format!("nats://127.0.0.1:{closed},{}", server.url())),
        env: engine_login(&secret_file(secrets.path(), "engine.pw", PASSWORD)),
        ..ServeOptions::default()
    })
    .await;
    intake_goes_through(&serve, "AUTH-SEEDS").await;
}

#[tokio::test]
async fn serve_waits_for_a_nats_server_that_starts_two_seconds_later() {
    let port = free_port();
    let mut server = ConfiguredServer::with_shipped_accounts(port);
    let secrets = tempfile::tempdir().expect("dir");
    let env = engine_login(&secret_file(secrets.path(), "engine.pw", PASSWORD));
    let url = server.url();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        server.spawn();
        server
    });
    let started = Instant::now();
    let serve = ServeProcess::start(ServeOptions {
        nats_url: Some(url),
        env,
        ..ServeOptions::default()
    })
    .await;
    let _server = late.await.expect("the server task");
    assert!(started.elapsed() >= Duration::from_secs(2));
    intake_goes_through(&serve, "AUTH-LATE").await;
    assert!(
        serve.output().contains("NATS: not available yet; retrying"),
        "{}",
        serve.tail(40)
    );
}
