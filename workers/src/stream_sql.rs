//! The stream SQL engine's settings (every flag also an environment
//! variable), shared by the `stream-sql run` binary and `lakectl up`.

use std::path::Path;
use std::time::Duration;

use lakehouse_streamsql::runtime::{self, RuntimeConfig, StartFrom};
use lakehouse_streamsql::{statements, Plan};

/// Which engine's checkpoint: its consumer group and checkpoint name.
#[derive(Debug, Clone, clap::Args)]
pub struct AppIdArg {
    /// Consumer group and checkpoint name.
    #[arg(
        long,
        env = "LAKEHOUSE_STREAM_SQL_APP_ID",
        default_value = "lakehouse_stream_sql"
    )]
    pub app_id: String,
}

/// Where statements new to the checkpoint start.
#[derive(Debug, Clone, clap::Args)]
pub struct NewStatementsArg {
    /// Where a statement new to the checkpoint starts: earliest (built from
    /// the start of its input) or latest (only what arrives from now on, as
    /// ksqlDB's auto.offset.reset=latest). A changed table is rebuilt from
    /// the start of its input either way.
    #[arg(
        long,
        env = "LAKEHOUSE_STREAM_SQL_NEW_STATEMENTS_FROM",
        default_value = "earliest",
        value_parser = clap::builder::TypedValueParser::map(
            clap::builder::PossibleValuesParser::new(["earliest", "latest"]),
            |s| s.parse::<StartFrom>().expect("one of the possible values")
        )
    )]
    pub new_statements_from: StartFrom,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StreamSqlArgs {
    #[command(flatten)]
    pub app: AppIdArg,
    #[command(flatten)]
    pub new_statements: NewStatementsArg,
    /// Topic for records that cannot be decoded.
    #[arg(long, env = "LAKEHOUSE_STREAM_SQL_DLQ_TOPIC", default_value = runtime::DEFAULT_DLQ_TOPIC)]
    pub dlq_topic: String,
    /// Milliseconds between checkpoints.
    #[arg(
        long,
        env = "LAKEHOUSE_STREAM_SQL_CHECKPOINT_MS",
        default_value_t = 500
    )]
    pub checkpoint_ms: u64,
    /// Forget every statement's checkpointed state and position and
    /// recompute the whole file from the start of the input (a changed file
    /// does not need it: each statement keeps or rebuilds its own state).
    #[arg(long, env = "LAKEHOUSE_STREAM_SQL_RESET_STATE")]
    pub reset_state: bool,
    /// Threads per batch: 2 pipelines decoding and streams with the
    /// tables (about 1.5x one thread, BENCHMARKS.md); 1 runs them in turn.
    #[arg(long, env = "LAKEHOUSE_STREAM_SQL_THREADS", default_value_t = 2)]
    pub threads: usize,
}

impl StreamSqlArgs {
    pub fn from_env() -> Self {
        crate::cli::args_from_env()
    }

    /// The engine's configuration against `bootstrap`, checkpointing under `state_dir`.
    pub fn config(&self, bootstrap: &str, state_dir: &Path) -> RuntimeConfig {
        let mut config = RuntimeConfig::new(bootstrap, engine_state_dir(state_dir));
        config.app_id = self.app.app_id.clone();
        config.dlq_topic = self.dlq_topic.clone();
        config.checkpoint_interval = Duration::from_millis(self.checkpoint_ms);
        config.reset_state = self.reset_state;
        config.threads = self.threads;
        config.new_statements_from = self.new_statements.new_statements_from;
        config
    }
}

/// Where the engine keeps its checkpoints under the stack's state folder.
pub fn engine_state_dir(state_dir: &Path) -> std::path::PathBuf {
    state_dir.join("stream-sql")
}

/// What `stream-sql check` prints: the plan and, in text, what starting
/// on it would do to the checkpoint of engine `app` under `state_dir`
/// (which statements keep their state, which are built or rebuilt, which
/// stop). Nothing is changed.
pub fn check_report(
    plan: &Plan,
    json: bool,
    state_dir: &Path,
    app: &AppIdArg,
    new_statements: &NewStatementsArg,
) -> String {
    let report = lakehouse_streamsql::plan::check_report(plan, json);
    if json {
        return report;
    }
    let mut config = RuntimeConfig::new("", engine_state_dir(state_dir));
    config.app_id = app.app_id.clone();
    let path = runtime::checkpoint_path(&config);
    let against = match runtime::pending_changes(&config, plan) {
        Ok(changes) if changes.is_empty() => format!(
            "no checkpoint with positions at {}: every statement starts from the beginning\n",
            path.display()
        ),
        Ok(changes) => format!(
            "{}: {}",
            path.display(),
            statements::describe_changes(&changes, new_statements.new_statements_from)
        ),
        Err(e) => format!("{}: cannot be read ({e})\n", path.display()),
    };
    format!("{report}\n{against}")
}
