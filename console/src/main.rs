//! `lakectl`: the lakehouse console and command line.

use lakectl::{produce, status, ui, users};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use lakehouse::local::process::is_alive;
use lakehouse::{
    ConfigArgs, ConfigFileArg, KafkaArgs, LakeDirArg, LogDirArg, PostgresArgs, Settings,
    StateDirArg,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::level_filters::LevelFilter;

use lakectl::stack::Stack;
use lakectl::state::StackFile;

// Many small allocations per record; mimalloc measured ~20% faster than glibc's here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The lakehouse console: starts the single-machine stack, shows its state,
/// runs the producer. Without a command, opens the console on the configured stack.
#[derive(Debug, Parser)]
#[command(name = "lakectl", version)]
struct Cli {
    /// The console's configuration (each command takes the flags it uses).
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    refresh: RefreshArg,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, clap::Args)]
struct RefreshArg {
    /// How often the console reads the stack's status, in milliseconds.
    #[arg(long, env = "LAKEHOUSE_CONSOLE_REFRESH_MS", default_value_t = 2000)]
    refresh_ms: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the single-machine stack (broker, PostgreSQL, topics, warehouse schema), then the console.
    Up {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        refresh: RefreshArg,
        /// Do not open the console; run until Ctrl-C, SIGTERM or `lakectl down`.
        #[arg(long, env = "LAKEHOUSE_HEADLESS")]
        headless: bool,
        /// Stream SQL statement file to run.
        #[arg(
            long,
            env = "LAKEHOUSE_SQL",
            default_value = "producer/ksql_queries.sql"
        )]
        sql: PathBuf,
        /// Also run a steady producer, so that records flow at once.
        #[arg(long, env = "LAKEHOUSE_DEMO")]
        demo: bool,
        /// Records per second of the --demo producer.
        #[arg(long, env = "LAKEHOUSE_DEMO_RATE", default_value_t = lakectl::demo::DEFAULT_RATE)]
        demo_rate: f64,
        #[command(flatten)]
        metrics: lakehouse_workers::metrics_http::MetricsArgs,
        /// The stream SQL engine's settings (--reset-state recomputes every
        /// table from the start of its input, after a change of the file's tables).
        #[command(flatten)]
        stream_sql: lakehouse_workers::stream_sql::StreamSqlArgs,
    },
    /// Open psql on the warehouse (the stack's own credentials); arguments go
    /// to psql, e.g. `lakectl psql -c 'SELECT count(*) FROM users'`.
    Psql {
        #[command(flatten)]
        file: ConfigFileArg,
        #[command(flatten)]
        state: StateDirArg,
        #[command(flatten)]
        postgres: PostgresArgs,
        /// Arguments passed to psql as they are.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Validate a stream SQL file, print its plan (streams, tables, columns, keys, topics) and what it would change in the running state.
    #[command(name = "stream-sql")]
    StreamSql {
        #[command(subcommand)]
        command: StreamSqlCommand,
    },
    /// Stop the stack that `lakectl up` started.
    Down {
        #[command(flatten)]
        file: ConfigFileArg,
        #[command(flatten)]
        state: StateDirArg,
    },
    /// Each component's state and endpoint.
    Status {
        #[command(flatten)]
        config: ConfigArgs,
        /// Machine-readable output (a stable interface, see the README).
        #[arg(long)]
        json: bool,
    },
    /// Send generated transactions to the broker.
    Produce {
        #[command(flatten)]
        file: ConfigFileArg,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        log: LogDirArg,
        #[command(flatten)]
        args: produce::ProduceArgs,
    },
    /// Users of the API (the first admin comes from here; there is no default password).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// One purge run over the lake: removes ingestion_date= partitions older
    /// than the retention (never today's); --dry-run lists them instead.
    Purge {
        #[command(flatten)]
        file: ConfigFileArg,
        #[command(flatten)]
        lake: LakeDirArg,
        #[command(flatten)]
        log: LogDirArg,
        #[command(flatten)]
        args: lakehouse_workers::purge::PurgeArgs,
    },
    /// The API's full-text search index over the lake.
    Search {
        #[command(subcommand)]
        command: SearchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SearchCommand {
    /// Rebuild the index from scratch: by the running API server if there
    /// is one (this waits until it is done), else here.
    Reindex {
        #[command(flatten)]
        file: ConfigFileArg,
        #[command(flatten)]
        state: StateDirArg,
        #[command(flatten)]
        lake: LakeDirArg,
        /// Longest wait for a running server's rebuild, in seconds.
        #[arg(long, env = "LAKEHOUSE_REINDEX_TIMEOUT_SECS", default_value_t = 3600)]
        timeout_secs: u64,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from standard input with
    /// --password-stdin; otherwise a random one is generated and printed once.
    Add {
        #[command(flatten)]
        file: ConfigFileArg,
        #[command(flatten)]
        state: StateDirArg,
        #[command(flatten)]
        postgres: PostgresArgs,
        /// User name: 1 to 64 letters, digits or . _ @ -
        name: String,
        /// Give the user every permission (and the admin endpoints).
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum StreamSqlCommand {
    /// Validate the file and print the plan, then what `lakectl up` on it would do to the engine's checkpointed state: which statements keep their state, which are built or rebuilt from the start of the input, which stop.
    Check {
        /// Statement file (e.g. producer/ksql_queries.sql).
        file: PathBuf,
        /// The catalog as JSON (without the checkpoint comparison).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        app: lakehouse_workers::stream_sql::AppIdArg,
        #[command(flatten)]
        new_statements: lakehouse_workers::stream_sql::NewStatementsArg,
        #[command(flatten)]
        file_arg: ConfigFileArg,
        #[command(flatten)]
        state: StateDirArg,
    },
}

fn main() {
    let cli = Cli::parse();
    // The console and `up` keep running; every other command prints and ends.
    if !matches!(cli.command, None | Some(Command::Up { .. })) {
        lakehouse_workers::cli::exit_quietly_on_closed_pipe();
    }
    lakehouse_workers::cli::exit_on_error(run(cli));
}

/// The configuration flags a command took, over the top level's.
fn command_config(command: &Option<Command>) -> ConfigArgs {
    let part = ConfigArgs::default;
    match command {
        None => part(),
        Some(Command::StreamSql {
            command: StreamSqlCommand::Check {
                file_arg, state, ..
            },
        }) => ConfigArgs {
            file: file_arg.clone(),
            state: state.clone(),
            ..part()
        },
        Some(Command::Up { config, .. } | Command::Status { config, .. }) => config.clone(),
        Some(Command::Down { file, state }) => ConfigArgs {
            file: file.clone(),
            state: state.clone(),
            ..part()
        },
        Some(Command::Psql {
            file,
            state,
            postgres,
            ..
        })
        | Some(Command::User {
            command:
                UserCommand::Add {
                    file,
                    state,
                    postgres,
                    ..
                },
        }) => ConfigArgs {
            file: file.clone(),
            state: state.clone(),
            postgres: postgres.clone(),
            ..part()
        },
        Some(Command::Produce {
            file, kafka, log, ..
        }) => ConfigArgs {
            file: file.clone(),
            kafka: kafka.clone(),
            log: log.clone(),
            ..part()
        },
        Some(Command::Purge {
            file, lake, log, ..
        }) => ConfigArgs {
            file: file.clone(),
            lake: lake.clone(),
            log: log.clone(),
            ..part()
        },
        Some(Command::Search {
            command: SearchCommand::Reindex {
                file, state, lake, ..
            },
        }) => ConfigArgs {
            file: file.clone(),
            state: state.clone(),
            lake: lake.clone(),
            ..part()
        },
    }
}

fn run(cli: Cli) -> Result<()> {
    let settings = cli
        .config
        .clone()
        .overlaid_with(command_config(&cli.command))
        .resolve()?;
    let console_on_screen = matches!(
        cli.command,
        None | Some(Command::Up {
            headless: false,
            ..
        })
    );
    // The console owns the screen; other commands print their own progress.
    let stderr_level = if console_on_screen {
        LevelFilter::OFF
    } else {
        LevelFilter::WARN
    };
    // A producer run logs where the original project's producer did.
    let component = if matches!(cli.command, Some(Command::Produce { .. })) {
        "producer"
    } else {
        "lakectl"
    };
    let _logs = lakehouse::logging::init(component, &settings.log_dir, Some(stderr_level));
    let refresh_ms = match &cli.command {
        Some(Command::Up { refresh, .. }) => refresh.refresh_ms,
        _ => cli.refresh.refresh_ms,
    };
    let refresh = Duration::from_millis(refresh_ms.max(100));
    match cli.command {
        None => ui::run(
            &settings,
            refresh,
            &std::env::var_os("LAKEHOUSE_SQL")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("producer/ksql_queries.sql")),
            "q: quit (the stack keeps running)",
            || Ok(()),
        ),
        Some(Command::Up {
            headless,
            sql,
            demo,
            demo_rate,
            metrics,
            stream_sql,
            ..
        }) => {
            if demo && !(demo_rate.is_finite() && demo_rate > 0.0) {
                anyhow::bail!("--demo-rate must be a positive number of records per second");
            }
            let options = UpOptions {
                headless,
                sql,
                stream_sql,
                demo_rate: demo.then_some(demo_rate),
                metrics_listen: metrics.stack_listen(),
            };
            up(&settings, &options, refresh)
        }
        Some(Command::StreamSql {
            command:
                StreamSqlCommand::Check {
                    file,
                    json,
                    app,
                    new_statements,
                    ..
                },
        }) => {
            let plan = lakehouse_streamsql::load_file(&file)?;
            println!(
                "{}",
                lakehouse_workers::stream_sql::check_report(
                    &plan,
                    json,
                    &settings.state_dir,
                    &app,
                    &new_statements
                )
            );
            Ok(())
        }
        Some(Command::Down { .. }) => down(&settings),
        Some(Command::Psql { args, .. }) => psql(&settings, &args),
        Some(Command::Status { json, .. }) => {
            let report = runtime()?.block_on(status::collect(&settings));
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", status::render_text(&report));
            }
            Ok(())
        }
        Some(Command::Produce { args, .. }) => produce::run(&args, &settings),
        Some(Command::User {
            command:
                UserCommand::Add {
                    name,
                    admin,
                    password_stdin,
                    ..
                },
        }) => runtime()?.block_on(users::add(&settings, &name, admin, password_stdin)),
        Some(Command::Search {
            command: SearchCommand::Reindex { timeout_secs, .. },
        }) => {
            let outcome = lakectl::search::reindex(&settings, Duration::from_secs(timeout_secs))?;
            println!("{outcome}");
            Ok(())
        }
        Some(Command::Purge { args, .. }) => {
            let policy = args.policy()?;
            let unknown = policy.unknown_topics(&settings.data_lake_dir);
            if !unknown.is_empty() {
                anyhow::bail!(
                    "--retention names topics the lake does not hold: {} (the lake holds: {})",
                    unknown.join(", "),
                    lakehouse::lake::topic_names(&settings.data_lake_dir)
                        .unwrap_or_default()
                        .join(", ")
                );
            }
            let report = lakehouse_workers::purge::run_and_record(
                &settings.data_lake_dir,
                &settings.log_dir,
                &policy,
                args.dry_run,
            )?;
            print!("{}", lakehouse_workers::purge::render(&report));
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// What `lakectl up` was asked for.
struct UpOptions {
    headless: bool,
    sql: PathBuf,
    stream_sql: lakehouse_workers::stream_sql::StreamSqlArgs,
    demo_rate: Option<f64>,
    metrics_listen: std::net::SocketAddr,
}

fn up(settings: &Settings, options: &UpOptions, refresh: Duration) -> Result<()> {
    let (headless, sql) = (options.headless, options.sql.as_path());
    println!(
        "Starting the lakehouse stack (state in {})",
        settings.state_dir.display()
    );
    let runtime = runtime()?;
    let mut stack = Stack::start(
        settings,
        &runtime,
        sql,
        &options.stream_sql,
        options.metrics_listen,
    )?;
    if let Some(rate) = options.demo_rate {
        stack.start_demo_producer(rate);
    }
    tracing::info!("stack started");
    let outcome = if headless {
        println!("Stack is up. Ctrl-C or `lakectl down` stops it; `lakectl status` shows it.");
        wait_for_signal(&mut stack)
    } else {
        ui::run(settings, refresh, sql, "q: quit and stop the stack", || {
            stack.check_components()
        })
    };
    println!("Stopping the lakehouse stack");
    stack.shutdown();
    tracing::info!("stack stopped");
    outcome
}

fn wait_for_signal(stack: &mut Stack) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    while !stop.load(Ordering::Relaxed) {
        stack.check_components()?;
        std::thread::sleep(Duration::from_millis(300));
    }
    Ok(())
}

fn down(settings: &Settings) -> Result<()> {
    let Some(stack) = StackFile::read_live(&settings.state_dir) else {
        println!("No stack is running from {}.", settings.state_dir.display());
        StackFile::remove(&settings.state_dir);
        return Ok(());
    };
    let supervisor = Pid::from_raw(stack.supervisor_pid as i32);
    kill(supervisor, Signal::SIGTERM).context("signalling `lakectl up`")?;
    let started = Instant::now();
    while is_alive(stack.supervisor_pid) {
        if started.elapsed() > Duration::from_secs(90) {
            // Its children carry a parent-death signal and stop with it.
            let _ = kill(supervisor, Signal::SIGKILL);
            println!(
                "`lakectl up` (pid {}) did not stop in 90s; killed it",
                stack.supervisor_pid
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for process in [&stack.broker, &stack.postgres].into_iter().flatten() {
        while is_alive(process.pid) && started.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    println!("Stack stopped (was pid {}).", stack.supervisor_pid);
    Ok(())
}

/// Runs psql on the warehouse URL with its password (which `status` masks),
/// so a user never copies a secret around.
fn psql(settings: &Settings, args: &[std::ffi::OsString]) -> Result<()> {
    let url = settings.warehouse_url().context(
        "no warehouse yet: run `lakectl up` first, or set --postgres-url / LAKEHOUSE_POSTGRES_URL",
    )?;
    let program =
        lakehouse::local::tools::find_postgres_bin_dir(settings.postgres.bin_dir.as_deref())
            .map(|dir| dir.join("psql"))
            .ok()
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("psql"));
    let status = std::process::Command::new(&program)
        .arg(&url)
        .args(args)
        .status()
        .with_context(|| format!("cannot run {}", program.display()))?;
    std::process::exit(status.code().unwrap_or(1));
}
