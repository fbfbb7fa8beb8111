//! `stream-sql`: validates or runs a stream SQL statement file.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use clap::{Parser, Subcommand};
use lakehouse::ConfigArgs;
use lakehouse_workers::stream_sql::StreamSqlArgs;

// Many small allocations per record; mimalloc measured ~20% faster than glibc's here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Embedded stream SQL: runs a ksqlDB-dialect statement file over Kafka.
#[derive(Debug, Parser)]
#[command(name = "stream-sql", version)]
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
        /// Statement file (e.g. producer/ksql_queries.sql).
        file: PathBuf,
        #[command(flatten)]
        engine: StreamSqlArgs,
        #[command(flatten)]
        metrics: lakehouse_workers::metrics_http::MetricsArgs,
    },
}

fn main() {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Check { .. }) {
        lakehouse_workers::cli::exit_quietly_on_closed_pipe();
    }
    lakehouse_workers::cli::exit_on_error(run(cli));
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
            engine,
            metrics,
        } => {
            let _logs = lakehouse::logging::init("stream-sql", &settings.log_dir, None);
            let plan = Arc::new(lakehouse_streamsql::load_file(&file)?);
            tracing::info!(
                "running {} on {}",
                file.display(),
                settings.kafka_bootstrap()
            );
            let job = lakehouse_workers::jobs::stream_sql(&settings, plan, &engine);
            lakehouse_workers::cli::supervise(job, &metrics)
        }
    }
}
