//! `stream-sql`: validates or runs a stream SQL statement file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use lakehouse::ConfigArgs;
use lakehouse_streamsql::runtime::{self, RuntimeConfig, RuntimeStats};

// Many small allocations per record; mimalloc measured ~20% faster than glibc's here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Embedded stream SQL: runs a ksqlDB-dialect statement file over Kafka.
#[derive(Debug, Parser)]
#[command(name = "stream-sql", version, about)]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the file and print the plan: every stream and table with its columns, types, key and topic.
    Check {
        /// Statement file (e.g. producer/ksql_queries.sql).
        file: PathBuf,
        /// Print the catalog as JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Run the engine until SIGTERM or Ctrl-C.
    Run {
        file: PathBuf,
        /// Consumer group and checkpoint name.
        #[arg(
            long,
            env = "LAKEHOUSE_STREAM_SQL_APP_ID",
            default_value = "lakehouse_stream_sql"
        )]
        app_id: String,
        /// Topic for records that cannot be decoded.
        #[arg(long, env = "LAKEHOUSE_STREAM_SQL_DLQ_TOPIC", default_value = runtime::DEFAULT_DLQ_TOPIC)]
        dlq_topic: String,
        /// Milliseconds between checkpoints.
        #[arg(
            long,
            env = "LAKEHOUSE_STREAM_SQL_CHECKPOINT_MS",
            default_value_t = 500
        )]
        checkpoint_ms: u64,
        /// Forget checkpointed table state (needed when the file's tables changed).
        #[arg(long, env = "LAKEHOUSE_STREAM_SQL_RESET_STATE")]
        reset_state: bool,
        /// Threads per batch: 2 pipelines decoding and streams with the
        /// tables (about 1.5x one thread, BENCHMARKS.md); 1 runs them in turn.
        #[arg(long, env = "LAKEHOUSE_STREAM_SQL_THREADS", default_value_t = 2)]
        threads: usize,
    },
}

fn main() {
    lakehouse_workers::cli::exit_on_error(run(Cli::parse()));
}

fn run(cli: Cli) -> Result<()> {
    let settings = cli.config.resolve()?;
    match cli.command {
        Command::Check { file, json } => {
            let plan = lakehouse_streamsql::load_file(&file)?;
            println!("{}", lakehouse_streamsql::plan::check_report(&plan, json));
            Ok(())
        }
        Command::Run {
            file,
            app_id,
            dlq_topic,
            checkpoint_ms,
            reset_state,
            threads,
        } => {
            let _logs = lakehouse::logging::init("stream-sql", &settings.log_dir, None);
            let plan = Arc::new(lakehouse_streamsql::load_file(&file)?);
            let mut config = RuntimeConfig::new(
                settings.kafka_bootstrap(),
                settings.state_dir.join("stream-sql"),
            );
            config.app_id = app_id;
            config.dlq_topic = dlq_topic;
            config.checkpoint_interval = Duration::from_millis(checkpoint_ms);
            config.reset_state = reset_state;
            config.threads = threads;
            let stop = lakehouse_workers::cli::stop_on_signals()?;
            tracing::info!("running {} on {}", file.display(), config.bootstrap);
            let stats = RuntimeStats::default();
            let counters =
                runtime::run(plan, &config, &stop, &stats).context("stream SQL stopped")?;
            tracing::info!(?counters, "stream SQL stopped");
            Ok(())
        }
    }
}
