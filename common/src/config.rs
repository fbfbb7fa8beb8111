//! Configuration shared by every binary.
//!
//! Precedence: command-line flag > environment variable > `lakehouse.toml` >
//! built-in defaults. Flags and environment variables are both handled by
//! clap (`ConfigArgs`, flattened into each binary's CLI); the file and the
//! defaults by serde (`Settings`).

use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

/// Name of the optional configuration file looked up in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "lakehouse.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Resolved configuration of the whole stack.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Folder for the local stack's state: broker storage, PostgreSQL cluster, pid files.
    pub state_dir: PathBuf,
    /// Root of the Parquet data lake.
    pub data_lake_dir: PathBuf,
    /// Root of the log folders (one sub-folder per component).
    pub log_dir: PathBuf,
    pub kafka: KafkaSettings,
    pub postgres: PostgresSettings,
    pub topics: TopicSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSettings {
    /// Bootstrap servers of an external Kafka cluster; when set, no local broker is started.
    pub bootstrap: Option<String>,
    /// Port of the local broker.
    pub port: u16,
    /// Path of the `tansu` binary; looked up on PATH and in ~/.cargo/bin when unset.
    pub broker_bin: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresSettings {
    /// URL of an external PostgreSQL database; when set, no local cluster is started.
    pub url: Option<String>,
    /// Port of the local cluster.
    pub port: u16,
    /// Folder holding `initdb`, `postgres`, `pg_ctl`; found with `pg_config --bindir` when unset.
    pub bin_dir: Option<PathBuf>,
    /// Warehouse database created in the local cluster.
    pub database: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TopicSettings {
    pub transaction_log: String,
    /// Partitions of every topic the stack creates.
    pub partitions: i32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from(".lakehouse"),
            data_lake_dir: PathBuf::from("data_lake"),
            log_dir: PathBuf::from("log"),
            kafka: KafkaSettings::default(),
            postgres: PostgresSettings::default(),
            topics: TopicSettings::default(),
        }
    }
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            bootstrap: None,
            port: 9092,
            broker_bin: None,
        }
    }
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self {
            url: None,
            port: 15432,
            bin_dir: None,
            database: "lakehouse".to_string(),
        }
    }
}

impl Default for TopicSettings {
    fn default() -> Self {
        Self {
            transaction_log: crate::topics::TRANSACTION_LOG.to_string(),
            partitions: 3,
        }
    }
}

/// The configuration file.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigFileArg {
    /// Configuration file (TOML). Defaults to ./lakehouse.toml when it exists.
    #[arg(long, env = "LAKEHOUSE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Where the local stack keeps its state.
#[derive(Debug, Clone, Default, Args)]
pub struct StateDirArg {
    /// Folder for the local stack's state (broker data, PostgreSQL cluster, pid files).
    #[arg(long, env = "LAKEHOUSE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

/// The data lake's folder.
#[derive(Debug, Clone, Default, Args)]
pub struct LakeDirArg {
    /// Root folder of the Parquet data lake.
    #[arg(long, env = "LAKEHOUSE_DATA_LAKE_DIR")]
    pub data_lake_dir: Option<PathBuf>,
}

/// The log folders' root.
#[derive(Debug, Clone, Default, Args)]
pub struct LogDirArg {
    /// Root folder of the log files.
    #[arg(long, env = "LAKEHOUSE_LOG_DIR")]
    pub log_dir: Option<PathBuf>,
}

/// The broker.
#[derive(Debug, Clone, Default, Args)]
pub struct KafkaArgs {
    /// Bootstrap servers of an external Kafka; skips the local broker.
    #[arg(long, env = "LAKEHOUSE_KAFKA_BOOTSTRAP")]
    pub kafka_bootstrap: Option<String>,
    /// Port of the local broker.
    #[arg(long, env = "LAKEHOUSE_KAFKA_PORT")]
    pub kafka_port: Option<u16>,
}

/// The warehouse database.
#[derive(Debug, Clone, Default, Args)]
pub struct PostgresArgs {
    /// URL of an external PostgreSQL database; skips the local cluster.
    #[arg(long, env = "LAKEHOUSE_POSTGRES_URL")]
    pub postgres_url: Option<String>,
    /// Port of the local PostgreSQL cluster.
    #[arg(long, env = "LAKEHOUSE_POSTGRES_PORT")]
    pub postgres_port: Option<u16>,
}

/// The topics the stack creates.
#[derive(Debug, Clone, Default, Args)]
pub struct TopicArgs {
    /// Partitions of the topics the stack creates.
    #[arg(long, env = "LAKEHOUSE_PARTITIONS")]
    pub partitions: Option<i32>,
}

/// Every configuration flag, each also an environment variable, in groups:
/// a command flattens the groups it uses (so that its `--help` lists only
/// those) and leaves the others at their defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub file: ConfigFileArg,
    #[command(flatten)]
    pub state: StateDirArg,
    #[command(flatten)]
    pub lake: LakeDirArg,
    #[command(flatten)]
    pub log: LogDirArg,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    pub topics: TopicArgs,
}

impl ConfigArgs {
    /// These flags, with those `other` sets over them (a subcommand's
    /// own flags over the top level's).
    pub fn overlaid_with(mut self, other: ConfigArgs) -> Self {
        fn over<T>(mine: &mut Option<T>, theirs: Option<T>) {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
        over(&mut self.file.config, other.file.config);
        over(&mut self.state.state_dir, other.state.state_dir);
        over(&mut self.lake.data_lake_dir, other.lake.data_lake_dir);
        over(&mut self.log.log_dir, other.log.log_dir);
        over(&mut self.kafka.kafka_bootstrap, other.kafka.kafka_bootstrap);
        over(&mut self.kafka.kafka_port, other.kafka.kafka_port);
        over(&mut self.postgres.postgres_url, other.postgres.postgres_url);
        over(
            &mut self.postgres.postgres_port,
            other.postgres.postgres_port,
        );
        over(&mut self.topics.partitions, other.topics.partitions);
        self
    }

    /// Resolves the configuration: these flags (or their environment
    /// variables) over the file over the defaults.
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let explicit = self.file.config.as_deref();
        let default_file = Path::new(DEFAULT_CONFIG_FILE);
        let mut settings = match explicit {
            Some(path) => Settings::from_file(path)?,
            None if default_file.exists() => Settings::from_file(default_file)?,
            None => Settings::default(),
        };
        self.apply_to(&mut settings);
        settings.validate()?;
        Ok(settings)
    }

    fn apply_to(&self, s: &mut Settings) {
        if let Some(v) = &self.state.state_dir {
            s.state_dir = v.clone();
        }
        if let Some(v) = &self.lake.data_lake_dir {
            s.data_lake_dir = v.clone();
        }
        if let Some(v) = &self.log.log_dir {
            s.log_dir = v.clone();
        }
        if let Some(v) = &self.kafka.kafka_bootstrap {
            s.kafka.bootstrap = Some(v.clone());
        }
        if let Some(v) = self.kafka.kafka_port {
            s.kafka.port = v;
        }
        if let Some(v) = &self.postgres.postgres_url {
            s.postgres.url = Some(v.clone());
        }
        if let Some(v) = self.postgres.postgres_port {
            s.postgres.port = v;
        }
        if let Some(v) = self.topics.partitions {
            s.topics.partitions = v;
        }
    }
}

impl Settings {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.topics.partitions < 1 {
            return Err(ConfigError::Invalid(format!(
                "topics.partitions must be at least 1, got {}",
                self.topics.partitions
            )));
        }
        if self.kafka.bootstrap.as_deref() == Some("") {
            return Err(ConfigError::Invalid(
                "kafka.bootstrap is empty; leave it unset to use the local broker".into(),
            ));
        }
        Ok(())
    }

    /// True when the stack must start its own broker.
    pub fn runs_local_broker(&self) -> bool {
        self.kafka.bootstrap.is_none()
    }

    /// True when the stack must start its own PostgreSQL cluster.
    pub fn runs_local_postgres(&self) -> bool {
        self.postgres.url.is_none()
    }

    /// Kafka bootstrap servers: the external cluster, or the local broker.
    pub fn kafka_bootstrap(&self) -> String {
        self.kafka
            .bootstrap
            .clone()
            .unwrap_or_else(|| format!("127.0.0.1:{}", self.kafka.port))
    }

    /// URL of the warehouse database: the external one, or the local
    /// cluster's (`None` until the local cluster has been created).
    pub fn warehouse_url(&self) -> Option<String> {
        match &self.postgres.url {
            Some(url) => Some(url.clone()),
            None => crate::local::postgres::local_url(
                &self.postgres_state_dir(),
                self.postgres.port,
                &self.postgres.database,
            ),
        }
    }

    /// Folder of the local broker's storage.
    pub fn broker_state_dir(&self) -> PathBuf {
        self.state_dir.join("broker")
    }

    /// Folder of the local PostgreSQL cluster (data folder, socket, password).
    pub fn postgres_state_dir(&self) -> PathBuf {
        self.state_dir.join("postgres")
    }

    /// Log folder of one component.
    pub fn component_log_dir(&self, component: &str) -> PathBuf {
        self.log_dir.join(crate::logging::log_folder(component))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: ConfigArgs,
    }

    #[test]
    fn defaults_when_nothing_is_given() {
        let s = Settings::default();
        assert_eq!(s.kafka_bootstrap(), "127.0.0.1:9092");
        assert!(s.runs_local_broker() && s.runs_local_postgres());
        assert_eq!(s.topics.transaction_log, "transaction_log");
    }

    #[test]
    fn file_overrides_defaults_and_keeps_the_rest() {
        let s = Settings::from_toml("[kafka]\nport = 19092\n[topics]\npartitions = 6\n").unwrap();
        assert_eq!(s.kafka.port, 19092);
        assert_eq!(s.topics.partitions, 6);
        assert_eq!(s.postgres.port, 15432);
    }

    #[test]
    fn unknown_keys_in_the_file_are_rejected() {
        let err = Settings::from_toml("[kafka]\nprot = 1\n").unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
    }

    #[test]
    fn flag_beats_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lakehouse.toml");
        std::fs::write(&file, "[kafka]\nport = 19092\nbootstrap = \"file:9092\"\n").unwrap();
        let cli = Cli::parse_from([
            "x",
            "--config",
            file.to_str().unwrap(),
            "--kafka-port",
            "29092",
        ]);
        let s = cli.config.resolve().unwrap();
        assert_eq!(s.kafka.port, 29092);
        assert_eq!(s.kafka.bootstrap.as_deref(), Some("file:9092"));
        assert!(!s.runs_local_broker());
    }

    #[test]
    fn invalid_partition_count_is_reported() {
        let mut s = Settings::default();
        s.topics.partitions = 0;
        assert!(s.validate().unwrap_err().to_string().contains("partitions"));
    }
}
