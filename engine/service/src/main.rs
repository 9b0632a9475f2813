//! The `bianmin` binary: `serve` runs the engine, `config` prints the effective
//! configuration, `project` runs the read-model projectors on their own, `projections rebuild`
//! rebuilds read models from the log, `privacy` erases and sweeps resident contact data, and
//! `report` publishes, replays and resends periodic rate reports, and
//! the auditors' subcommands (`verify`, `history`,
//! `replay`, `digest`, `reference`, `upward`) read the event log directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use engine_service::app::{App, Role};
use engine_service::audit::cli::{AuditCommand, CliContext};
use engine_service::config::{Config, Overrides};
use engine_service::log_open::open_log;
use engine_service::privacy::PrivacyCommand;
use engine_service::projector::{self, ProjectorRuntime, ProjectorSettings};
use engine_service::reports::cli::{ReportCommand, ReportContext};
use engine_service::telemetry::{self, LogFormat};
use engine_service::upward::UpwardConfig;

/// Bianmin: an event-sourced work-order and referral engine for community service centres
/// and 12345 hotlines.
#[derive(Debug, Parser)]
#[command(
    name = "bianmin",
    version,
    about = "Bianmin 便民: event-sourced work orders and referrals for community service stations and 12345 hotlines",
    long_about = "Bianmin 便民: an event-sourced work-order and referral engine for community service \
stations and 12345 hotlines. `serve` runs the engine (HTTP API, NATS intake, supervisor, \
projectors); the other subcommands maintain read models, erase resident contact data, and let \
auditors verify, replay and inspect the event log. Configuration: defaults, then the TOML file \
(--config / BIANMIN_CONFIG), then BIANMIN_* environment variables (BIANMIN_SECTION__KEY; \
BIANMIN_NATS_URL and DATABASE_URL as shortcuts), then flags."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// TOML configuration file (also `BIANMIN_CONFIG`); see deploy/config/bianmin.example.toml.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log line format; the level filter comes from `RUST_LOG` (default `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty, env = "BIANMIN_LOG_FORMAT")]
    log_format: LogFormat,
    /// Directory of the embedded stores (overrides `data_dir`).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// NATS server URL: run the event log on JetStream (overrides `nats.url`).
    #[arg(long, global = true, value_name = "URL")]
    nats_url: Option<String>,
    /// PostgreSQL URL for projections (overrides `database_url`).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run the engine: HTTP API and background tasks, until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Print the effective configuration (all layers merged), secrets masked.
    Config(ServeArgs),
    /// Run the read-model projectors without the HTTP API, until SIGINT or SIGTERM (scale-out;
    /// safe next to `serve` and other `project` processes).
    Project(ProjectArgs),
    /// Run only the deadline supervisor (reminders, warnings, overdue marks, escalations) with
    /// /healthz, /readyz and /metrics on `--listen`, until SIGINT or SIGTERM. For a separate
    /// supervisor process next to `serve --no-supervisor` on a shared JetStream log; firings
    /// carry deterministic command ids, so a second supervisor duplicates nothing.
    Supervise(SuperviseArgs),
    /// Maintain the read models.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Resident privacy: erase a resident's contact data (crypto-shredding), show its status,
    /// run the retention sweep, list the privacy ledger.
    #[command(subcommand)]
    Privacy(PrivacyCommand),
    /// The engine's own stores: copy an embedded deployment's contact store and privacy
    /// ledger into PostgreSQL.
    #[command(subcommand)]
    Stores(engine_service::stores_copy::StoresCommand),
    /// Resident notifications: list the dead-letter list (notifications every attempt of
    /// which failed) and queue notifications again for the running `serve` to send.
    #[command(subcommand)]
    Notify(engine_service::notify::cli::NotifyCommand),
    /// Import historical requests from an older system (CSV or JSON Lines; columns in
    /// docs/import.md). Every row becomes the events of its lifecycle, decided by the same rules
    /// as live requests at the row's own timestamps; bad rows are reported with their line and
    /// nothing of them is written; re-running is harmless. Exit code 0: every row is in the log;
    /// 3: some rows were bad (the rest imported); 1: some rows could not be recorded.
    Import(engine_service::import::cli::ImportArgs),
    /// Export the request summary or the rates from the projections database as CSV.
    #[command(subcommand)]
    Export(engine_service::export::ExportCommand),
    /// Periodic rate reports upward: publish (and revise), replay against the log, resend
    /// with original ids, list.
    #[command(subcommand)]
    Report(ReportCommand),
    /// The working-day calendar: load a file (validated, stored in `policy.calendar_dir` and
    /// recorded in the reference-data history), show its coverage, list provisional deadlines.
    #[command(subcommand)]
    Calendar(engine_service::calendar::CalendarCommand),
    /// Policy and reference data: `whatif` folds a period under a proposed profile into a
    /// scratch projection and compares every rate and ranking with the recorded one; `record`
    /// records the reference data in force as an operator's change, with a reason.
    #[command(subcommand)]
    Policy(engine_service::whatif::cli::PolicyCommand),
    #[command(flatten)]
    Audit(AuditCommand),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (overrides `http.listen`; port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Policy profile: `community-station` or `city-hotline-12345` (overrides `policy.profile`).
    #[arg(long, value_name = "PROFILE")]
    policy_profile: Option<String>,
    /// Accept `X-Bianmin-Actor: <id>;<role>[;<unit>]` without a token. Development only.
    #[arg(long)]
    dev_identity: bool,
    /// Do not run the deadline supervisor in this process (a `bianmin supervise` process
    /// runs it).
    #[arg(long)]
    no_supervisor: bool,
}

#[derive(Debug, Args)]
struct SuperviseArgs {
    /// Address for /healthz, /readyz and /metrics (overrides `http.listen`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

#[derive(Debug, Args)]
struct ProjectArgs {
    /// Run only this projector (`requests` or `assessment`); all when absent.
    #[arg(long, value_name = "NAME")]
    projector: Option<String>,
}

#[derive(Debug, Subcommand)]
enum ProjectionsCommand {
    /// Replay the log from the start into fresh tables and swap them in without stopping reads.
    Rebuild(ProjectArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.global.log_format);
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Commands::Serve(args) => {
            let role = Role::Serve {
                supervisor: !args.no_supervisor,
            };
            run_app(load_config(&cli.global, Some(&args))?, role).await?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Config(args) => {
            print!("{}", load_config(&cli.global, Some(&args))?.masked_toml());
            Ok(ExitCode::SUCCESS)
        }
        Commands::Supervise(args) => {
            let serve_args = ServeArgs {
                listen: args.listen,
                policy_profile: None,
                dev_identity: false,
                no_supervisor: false,
            };
            run_app(
                load_config(&cli.global, Some(&serve_args))?,
                Role::Supervise,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Project(args) => {
            project(load_config(&cli.global, None)?, args.projector.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Projections(ProjectionsCommand::Rebuild(args)) => {
            rebuild(load_config(&cli.global, None)?, args.projector.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Notify(command) => {
            let config = load_config(&cli.global, None)?;
            Ok(command.run(&config.deliveries_url()).await?)
        }
        Commands::Privacy(command) => {
            let config = load_config(&cli.global, None)?;
            Ok(command.run(&config, &config.privacy).await?)
        }
        Commands::Stores(command) => {
            command.run(&load_config(&cli.global, None)?).await?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Import(args) => {
            let config = load_config(&cli.global, None)?;
            Ok(args.run(&config).await?)
        }
        Commands::Export(command) => {
            let config = load_config(&cli.global, None)?;
            let now = engine_core::Clock::now(&engine_log::clock::SystemClock);
            Ok(command.run(&config, now).await?)
        }
        Commands::Report(command) => {
            let config = load_config(&cli.global, None)?;
            let (log, nats) = open_log(&config).await.context("opening the event log")?;
            let policy = engine_service::policy_files::load_policy(&config.policy)?;
            let context = ReportContext {
                log,
                nats,
                link: config.reports.link(&config.names()?, config.nats.replicas),
                directory: policy.directory().clone(),
                now: engine_core::Clock::now(&engine_log::clock::SystemClock),
            };
            Ok(engine_service::reports::cli::run(command, &context).await?)
        }
        Commands::Calendar(command) => {
            let config = load_config(&cli.global, None)?;
            let now = engine_core::Clock::now(&engine_log::clock::SystemClock);
            command.run(&config, now).await?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Policy(command) => {
            let config = load_config(&cli.global, None)?;
            let now = engine_core::Clock::now(&engine_log::clock::SystemClock);
            Ok(command.run(&config, now).await?)
        }
        Commands::Audit(command) => {
            let config = load_config(&cli.global, None)?;
            let (log, nats) = open_log(&config).await.context("opening the event log")?;
            let context = CliContext {
                log,
                nats,
                projections_url: config.database_url.clone(),
                upward: UpwardConfig {
                    names: config.names()?,
                    ..UpwardConfig::default()
                },
                anchor_file: config.digest.anchor_file.clone(),
            };
            Ok(engine_service::audit::cli::run(command, &context).await?)
        }
    }
}

fn load_config(global: &GlobalArgs, serve: Option<&ServeArgs>) -> anyhow::Result<Config> {
    let overrides = Overrides {
        listen: serve.and_then(|s| s.listen),
        data_dir: global.data_dir.clone(),
        nats_url: global.nats_url.clone(),
        database_url: global.database_url.clone(),
        policy_profile: serve.and_then(|s| s.policy_profile.clone()),
        dev_identity: serve.is_some_and(|s| s.dev_identity),
    };
    Config::load(global.config.as_deref(), &overrides).context("loading configuration")
}

/// `bianmin serve` and `bianmin supervise`: the app of `role`, until SIGINT or SIGTERM.
async fn run_app(config: Config, role: Role) -> anyhow::Result<()> {
    let app = App::build(config, role)
        .await
        .with_context(|| format!("starting bianmin ({role:?})"))?;
    tracing::info!(port = app.port(), ?role, "bianmin started");
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}

/// `bianmin project`: the projectors of `only` (or all), each in its own task.
async fn project(config: Config, only: Option<&str>) -> anyhow::Result<()> {
    let names = projector::selected_projectors(only)?;
    let wait = std::time::Duration::from_secs(config.nats.startup_wait_secs);
    let (log, _nats) = engine_service::log_open::open_log_waiting(&config, false, wait)
        .await
        .context("opening the event log")?;
    let settings = ProjectorSettings::from_config(&config.projections);
    let token = tokio_util::sync::CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.cancel();
    });
    let Some(projections) =
        projector::connect_with_retry(&config.projections_url(), settings, &token, |_| {}).await
    else {
        return Ok(());
    };
    let runtime = ProjectorRuntime::new(projections, log, settings);
    let mut tasks = tokio::task::JoinSet::new();
    for name in names {
        let (runtime, token) = (runtime.clone(), token.clone());
        tasks.spawn(async move { (name, runtime.run(name, token).await) });
    }
    tracing::info!("projecting; stop with SIGINT or SIGTERM");
    while let Some(ended) = tasks.join_next().await {
        let (name, result) = ended.context("projector task")?;
        result.with_context(|| format!("projector {name}"))?;
    }
    Ok(())
}

/// `bianmin projections rebuild`: the selected projectors rebuilt together from one read of
/// the log, with one progress bar, and swapped in together.
async fn rebuild(config: Config, only: Option<&str>) -> anyhow::Result<()> {
    use indicatif::{ProgressBar, ProgressStyle};
    let names = projector::selected_projectors(only)?;
    let (log, _nats) = open_log(&config).await.context("opening the event log")?;
    let projections = projections::Projections::connect(&config.projections_url())
        .await
        .context("opening the projections database")?;
    let style = ProgressStyle::with_template(
        "{prefix:>10} [{elapsed_precise}] {wide_bar} {pos}/{len} commits ({per_sec}, ETA {eta})",
    )
    .context("progress style")?;
    let bar = ProgressBar::new(log.last_position().await?)
        .with_style(style)
        .with_prefix("rebuild");
    let rebuilt = projector::rebuild_all(
        &projections,
        &log,
        &names,
        config.projections.batch_max,
        |done, head| {
            bar.set_length(head);
            bar.set_position(done);
        },
    )
    .await
    .with_context(|| format!("rebuilding {}", names.join(", ")))?;
    bar.finish();
    for (name, position) in rebuilt {
        println!("{name}: rebuilt and swapped in at log position {position}");
    }
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
