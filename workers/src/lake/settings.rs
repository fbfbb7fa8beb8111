//! The lake sink's command-line settings (every flag also an environment
//! variable), shared by the `lake-sink` binary and `lakectl up`.

use std::path::Path;
use std::time::Duration;

use clap::ValueEnum;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use parquet::schema::types::ColumnPath;

use super::schema::COL_RAW_JSON;
use super::sink::LakeSinkConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Codec {
    Zstd,
    Snappy,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Statistics {
    /// Column chunk and page statistics plus page indexes: readers prune row groups and pages.
    Page,
    /// Column chunk statistics only.
    Chunk,
    None,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LakeSinkArgs {
    /// Consumer group of the lake sink instances.
    #[arg(
        long,
        env = "LAKEHOUSE_LAKE_SINK_GROUP",
        default_value = "lakehouse_lake_sink"
    )]
    pub group_id: String,
    /// Parquet compression codec.
    #[arg(long, env = "LAKEHOUSE_LAKE_COMPRESSION", value_enum, default_value_t = Codec::Zstd)]
    pub compression: Codec,
    /// zstd level (1 = fastest).
    #[arg(long, env = "LAKEHOUSE_LAKE_ZSTD_LEVEL", default_value_t = 1)]
    pub zstd_level: i32,
    /// Rows per row group.
    #[arg(long, env = "LAKEHOUSE_LAKE_ROW_GROUP_ROWS", default_value_t = 65_536)]
    pub row_group_rows: usize,
    /// Statistics written for pruning.
    #[arg(long, env = "LAKEHOUSE_LAKE_STATISTICS", value_enum, default_value_t = Statistics::Page)]
    pub statistics: Statistics,
    /// Dictionary-encode columns (true/false). By default only without zstd:
    /// with zstd the files came out the same size without dictionaries and
    /// were written 15-20% faster; with snappy or no codec they doubled
    /// (BENCHMARKS.md).
    #[arg(long, env = "LAKEHOUSE_LAKE_DICTIONARY", action = clap::ArgAction::Set)]
    pub dictionary: Option<bool>,
    /// Rows per data page (at most): a reader that wants a few rows, or
    /// rows past an offset, decompresses only the pages holding them.
    #[arg(long, env = "LAKEHOUSE_LAKE_PAGE_ROWS", default_value_t = 4096)]
    pub page_rows: usize,
    /// Rotate a file after this many records.
    #[arg(
        long,
        env = "LAKEHOUSE_LAKE_MAX_FILE_RECORDS",
        default_value_t = 1_000_000
    )]
    pub max_file_records: u64,
    /// Rotate a file at this size, in MiB.
    #[arg(long, env = "LAKEHOUSE_LAKE_MAX_FILE_MIB", default_value_t = 128)]
    pub max_file_mib: u64,
    /// Rotate a partition's file after this many milliseconds without a record.
    #[arg(long, env = "LAKEHOUSE_LAKE_IDLE_MS", default_value_t = 2_000)]
    pub idle_ms: u64,
    /// Rotate a file after it has been open this many milliseconds.
    #[arg(long, env = "LAKEHOUSE_LAKE_MAX_FILE_AGE_MS", default_value_t = 10_000)]
    pub max_file_age_ms: u64,
    /// Consumer group session timeout: how long a silent instance keeps its
    /// partitions before the group hands them to the others.
    #[arg(
        long,
        env = "LAKEHOUSE_LAKE_SESSION_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub session_timeout_ms: u64,
    /// Memory for staged records and open row groups, in MiB, before consumption pauses.
    #[arg(long, env = "LAKEHOUSE_LAKE_MEMORY_MIB", default_value_t = 512)]
    pub memory_mib: usize,
}

impl LakeSinkArgs {
    /// The defaults, overridden by the environment variables only.
    pub fn from_env() -> Self {
        crate::cli::args_from_env()
    }

    pub fn writer_properties(&self) -> Result<WriterProperties, String> {
        let compression = match self.compression {
            Codec::Zstd => Compression::ZSTD(
                ZstdLevel::try_new(self.zstd_level).map_err(|e| format!("--zstd-level: {e}"))?,
            ),
            Codec::Snappy => Compression::SNAPPY,
            Codec::None => Compression::UNCOMPRESSED,
        };
        let statistics = match self.statistics {
            Statistics::Page => EnabledStatistics::Page,
            Statistics::Chunk => EnabledStatistics::Chunk,
            Statistics::None => EnabledStatistics::None,
        };
        if self.row_group_rows == 0 {
            return Err("--row-group-rows must be at least 1".into());
        }
        if self.page_rows == 0 {
            return Err("--page-rows must be at least 1".into());
        }
        Ok(WriterProperties::builder()
            .set_compression(compression)
            .set_dictionary_enabled(self.dictionary.unwrap_or(self.compression != Codec::Zstd))
            .set_statistics_enabled(statistics)
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_data_page_row_count_limit(self.page_rows)
            // Every raw record is unique and long: a dictionary and min/max
            // statistics would cost time and buy no pruning.
            .set_column_dictionary_enabled(ColumnPath::from(COL_RAW_JSON), false)
            .set_column_statistics_enabled(ColumnPath::from(COL_RAW_JSON), EnabledStatistics::None)
            .set_created_by(format!("lakehouse lake-sink {}", env!("CARGO_PKG_VERSION")))
            .build())
    }

    pub fn config(&self, lake_root: &Path) -> Result<LakeSinkConfig, String> {
        let mut config = LakeSinkConfig::new(lake_root, self.writer_properties()?);
        config.max_file_records = self.max_file_records.max(1);
        config.max_file_bytes = self.max_file_mib.max(1) << 20;
        config.idle_timeout = Duration::from_millis(self.idle_ms);
        config.max_file_age = Duration::from_millis(self.max_file_age_ms);
        config.memory_budget_bytes = self.memory_mib.max(16) << 20;
        Ok(config)
    }
}
