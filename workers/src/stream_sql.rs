//! The stream SQL engine's settings (every flag also an environment
//! variable), shared by the `stream-sql run` binary and `lakectl up`.

use std::path::Path;
use std::time::Duration;

use lakehouse_streamsql::runtime::{self, RuntimeConfig};

#[derive(Debug, Clone, clap::Args)]
pub struct StreamSqlArgs {
    /// Consumer group and checkpoint name.
    #[arg(
        long,
        env = "LAKEHOUSE_STREAM_SQL_APP_ID",
        default_value = "lakehouse_stream_sql"
    )]
    pub app_id: String,
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
    /// Forget checkpointed table state (needed when the file's tables changed).
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
        let mut config = RuntimeConfig::new(bootstrap, state_dir.join("stream-sql"));
        config.app_id = self.app_id.clone();
        config.dlq_topic = self.dlq_topic.clone();
        config.checkpoint_interval = Duration::from_millis(self.checkpoint_ms);
        config.reset_state = self.reset_state;
        config.threads = self.threads;
        config
    }
}
