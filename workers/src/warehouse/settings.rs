//! The table sink's command-line settings (every flag also an environment
//! variable), shared by the `table-sink` binary and `lakectl up`.

use std::time::Duration;

use super::sink::TableSinkConfig;
use crate::sink::runner::Assignment;

#[derive(Debug, Clone, clap::Args)]
pub struct TableSinkArgs {
    /// Consumer group; also names the offsets stored in PostgreSQL.
    #[arg(
        long,
        env = "LAKEHOUSE_TABLE_SINK_GROUP",
        default_value = "lakehouse_table_sink"
    )]
    pub group_id: String,
    /// Commit when a batch holds this many records.
    #[arg(
        long,
        env = "LAKEHOUSE_TABLE_SINK_BATCH_RECORDS",
        default_value_t = 20_000
    )]
    pub batch_records: usize,
    /// Commit when the oldest record of a batch waited this long.
    #[arg(long, env = "LAKEHOUSE_TABLE_SINK_BATCH_MS", default_value_t = 200)]
    pub batch_ms: u64,
    /// Records staged while PostgreSQL is away before consumption pauses.
    #[arg(
        long,
        env = "LAKEHOUSE_TABLE_SINK_MAX_STAGED",
        default_value_t = 200_000
    )]
    pub max_staged_records: usize,
    /// `all-partitions`: one instance reads every partition, with no group
    /// rebalances on restart (the default: the warehouse is written by one
    /// writer, and a second instance would be fenced by the stored offsets);
    /// `group`: instances share the partitions through the consumer group.
    #[arg(long, env = "LAKEHOUSE_TABLE_SINK_ASSIGNMENT", value_enum, default_value_t = Assignment::AllPartitions)]
    pub assignment: Assignment,
    /// Consumer group session timeout.
    #[arg(
        long,
        env = "LAKEHOUSE_TABLE_SINK_SESSION_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub session_timeout_ms: u64,
}

impl TableSinkArgs {
    /// The defaults, overridden by the environment variables only.
    pub fn from_env() -> Self {
        crate::cli::args_from_env()
    }

    pub fn config(&self, postgres_url: &str) -> TableSinkConfig {
        let mut config = TableSinkConfig::new(postgres_url, &self.group_id);
        config.batch_records = self.batch_records.max(1);
        config.max_batch_age = Duration::from_millis(self.batch_ms);
        config.max_staged_records = self.max_staged_records.max(config.batch_records);
        config
    }
}
