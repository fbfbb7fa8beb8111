//! `lakectl status [--json]`: each component's state and endpoint.
//!
//! The JSON form is a stable interface for scripts (documented in the
//! README); fields are only ever added, and `version` changes if one is
//! removed or changes meaning.

pub mod sources;
mod text;

use std::collections::BTreeMap;
use std::path::PathBuf;

use lakehouse::{kafka, Settings};
use serde::Serialize;

use lakehouse_workers::lake::inventory::TopicInventory;
use lakehouse_workers::registry::{ComponentSnapshot, ComponentState as RegistryState, Counters};

pub use sources::{BrokerHints, Reading, SourceKind};
pub use text::render_text;

pub const STATUS_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ComponentState {
    /// Answers requests.
    Running,
    /// Not started (no `lakectl up` running for a local component).
    Stopped,
    /// Should be there but does not answer.
    Unreachable,
    /// Failed on something worth waiting out (a slow broker, PostgreSQL
    /// away); started again with backoff. `restarts` and `detail` say more.
    Restarting,
    /// Stopped by an error no restart fixes (`detail`); the rest runs on.
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComponentStatus {
    pub state: ComponentState,
    /// `true` when `lakectl up` runs it locally, `false` for an external service.
    pub managed: bool,
    pub pid: Option<u32>,
    /// Kafka bootstrap address, or PostgreSQL URL with the password hidden.
    pub endpoint: String,
    pub log_file: Option<PathBuf>,
    /// Why it is not running, when known.
    pub detail: Option<String>,
    /// Records not yet processed (consumers only): high watermark − committed offset.
    pub lag: Option<i64>,
    /// Times `lakectl up` restarted it (supervised components).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u32>,
    /// The last error it failed with, and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Records in and out, bytes written and dead letters since `up` (workers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counters: Option<Counters>,
}

impl ComponentStatus {
    /// Adds what the stack's registry says of the component: restarts, the
    /// last error, counters, and a restarting or failed state.
    fn with_registry(mut self, entry: Option<&ComponentSnapshot>) -> Self {
        let Some(entry) = entry else {
            return self;
        };
        self.restarts = Some(entry.restarts);
        self.last_error = entry.last_error.clone();
        self.last_error_at = entry.last_error_at;
        if entry.counters != Counters::default() {
            self.counters = Some(entry.counters.clone());
        }
        match &entry.state {
            RegistryState::Restarting {
                attempt,
                next_attempt_at,
            } => {
                self.state = ComponentState::Restarting;
                self.detail = Some(format!(
                    "restart {attempt} at {}: {}",
                    next_attempt_at.format("%H:%M:%S"),
                    entry.last_error.as_deref().unwrap_or("failed")
                ));
            }
            RegistryState::Failed { .. } => {
                self.state = ComponentState::Failed;
                self.detail = entry.last_error.clone();
            }
            _ => {}
        }
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TopicStatus {
    pub name: String,
    pub partitions: Option<i32>,
    pub records: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackSummary {
    /// A `lakectl up` process is supervising the stack.
    pub running: bool,
    pub supervisor_pid: Option<u32>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub state_dir: PathBuf,
    /// Prometheus metrics of every supervised component (`/health` next to it).
    pub metrics: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub version: u32,
    pub stack: StackSummary,
    pub components: BTreeMap<String, ComponentStatus>,
    pub topics: Vec<TopicStatus>,
    /// What the data lake holds, per topic folder.
    pub lake: Vec<TopicInventory>,
    /// The warehouse tables the table sink keeps (those with `ingestion_time`).
    pub warehouse: Vec<WarehouseTableStatus>,
    /// Each consumer group's position on each partition of its topics.
    pub groups: Vec<GroupOffsets>,
    /// The stream SQL engine's dead letters: the records of its dead-letter
    /// topic (`records` is null until the broker is read and the topic exists).
    pub stream_sql_dlq: Option<TopicStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupOffsets {
    pub group: String,
    pub topic: String,
    pub partitions: Vec<kafka::PartitionOffsets>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WarehouseTableStatus {
    pub table: String,
    pub rows: i64,
    /// The newest `ingestion_time` (RFC 3339, UTC): when the sink last wrote the table.
    pub last_update: Option<String>,
    /// Records of the table's topic the sink could not write (in
    /// `lakehouse_sink_dead_letters`, with the reason).
    pub dead_letters: u64,
}

/// The last reading of each source (none yet for a source not read).
#[derive(Debug, Clone, Default)]
pub struct Readings {
    pub stack: Option<sources::StackReading>,
    pub broker: Option<sources::BrokerReading>,
    pub postgres: Option<sources::PostgresReading>,
    pub lake: Option<sources::LakeReading>,
}

impl Readings {
    pub fn store(&mut self, reading: Reading) {
        match reading {
            Reading::Stack(r) => self.stack = Some(r),
            Reading::Broker(r) => self.broker = Some(r),
            Reading::Postgres(r) => self.postgres = Some(r),
            Reading::Lake(r) => self.lake = Some(r),
        }
    }
}

impl StatusReport {
    /// The status the readings make together: each component from its
    /// source, the workers' lag from the broker's, and the registry's word
    /// (restarts, errors, counters) over all of them. A component whose
    /// source has not been read is left out.
    pub fn assemble(readings: &Readings) -> StatusReport {
        let mut components = BTreeMap::new();
        if let Some(broker) = &readings.broker {
            components.insert("broker".to_string(), broker.broker.clone());
        }
        if let Some(postgres) = &readings.postgres {
            components.insert("postgres".to_string(), postgres.postgres.clone());
        }
        if let Some(stack) = &readings.stack {
            for (name, status) in &stack.components {
                let mut status = status.clone();
                status.lag = readings
                    .broker
                    .as_ref()
                    .and_then(|b| b.lags.get(name).copied().flatten());
                components.insert(name.clone(), status);
            }
        }
        if let Some(registry) = readings.stack.as_ref().and_then(|s| s.registry.as_ref()) {
            for (key, status) in components.iter_mut() {
                let name = key.replace('_', "-");
                let entry = registry.components.iter().find(|c| c.name == name);
                *status = status.clone().with_registry(entry);
            }
        }
        StatusReport {
            version: STATUS_VERSION,
            stack: match &readings.stack {
                Some(stack) => stack.summary.clone(),
                None => StackSummary {
                    running: false,
                    supervisor_pid: None,
                    started_at: None,
                    state_dir: PathBuf::new(),
                    metrics: None,
                },
            },
            components,
            topics: readings
                .broker
                .as_ref()
                .map(|b| b.topics.clone())
                .unwrap_or_default(),
            lake: readings
                .lake
                .as_ref()
                .map(|l| l.lake.clone())
                .unwrap_or_default(),
            warehouse: readings
                .postgres
                .as_ref()
                .map(|p| p.warehouse.clone())
                .unwrap_or_default(),
            groups: readings
                .broker
                .as_ref()
                .map(|b| b.groups.clone())
                .unwrap_or_default(),
            stream_sql_dlq: readings.broker.as_ref().map(|b| b.stream_sql_dlq.clone()),
        }
    }
}

/// Reads every source once: the stack, PostgreSQL and the lake together,
/// then the broker with the topics they name. A source that fails leaves
/// its part empty and says why on stderr.
pub async fn collect(settings: &Settings) -> StatusReport {
    let no_hints = BrokerHints::default();
    let (stack, postgres, lake) = tokio::join!(
        sources::read(SourceKind::Stack, settings, &no_hints),
        sources::read(SourceKind::Postgres, settings, &no_hints),
        sources::read(SourceKind::Lake, settings, &no_hints),
    );
    let mut readings = Readings::default();
    let mut hints = BrokerHints::default();
    for reading in [stack, postgres, lake] {
        match reading {
            Ok(reading) => {
                hints.learn(&reading);
                readings.store(reading);
            }
            Err(e) => eprintln!("lakectl status: {e}"),
        }
    }
    match sources::read(SourceKind::Broker, settings, &hints).await {
        Ok(reading) => readings.store(reading),
        Err(e) => eprintln!("lakectl status: {e}"),
    }
    StatusReport::assemble(&readings)
}
