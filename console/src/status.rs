//! `lakectl status [--json]`: each component's state and endpoint.
//!
//! The JSON form is a stable interface for scripts (documented in the
//! README); fields are only ever added, and `version` changes if one is
//! removed or changes meaning.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use lakehouse::postgres::{connect_with_retry, redact_url};
use lakehouse::{kafka, Settings};
use serde::Serialize;

use lakehouse_workers::lake::inventory::{inventory, TopicInventory};
use lakehouse_workers::registry::{
    ComponentSnapshot, ComponentState as RegistryState, Counters, RegistryFile,
};

use crate::stack::required_topics;
use crate::state::StackFile;

pub const STATUS_VERSION: u32 = 1;
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

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
}

async fn warehouse_summary(url: &str) -> Vec<WarehouseTableStatus> {
    let Ok(mut conn) = connect_with_retry(url, PROBE_TIMEOUT).await else {
        return Vec::new();
    };
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND column_name = 'ingestion_time' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap_or_default();
    let mut out = Vec::new();
    for table in tables {
        let quoted = format!("\"{}\"", table.replace('"', "\"\""));
        let row: Option<(i64, Option<String>)> = sqlx::query_as(&format!(
            "SELECT count(*), to_char(max(ingestion_time) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM {quoted}"
        ))
                .fetch_one(&mut conn)
                .await
                .ok();
        if let Some((rows, last_update)) = row {
            out.push(WarehouseTableStatus {
                table,
                rows,
                last_update,
            });
        }
    }
    out
}

/// Probes every component; each probe gives up after a couple of seconds.
pub async fn collect(settings: &Settings) -> StatusReport {
    let stack = StackFile::read_live(&settings.state_dir);
    let mut components = BTreeMap::new();

    let bootstrap = settings.kafka_bootstrap();
    let broker_probe = {
        let bootstrap = bootstrap.clone();
        tokio::task::spawn_blocking(move || kafka::wait_until_ready(&bootstrap, PROBE_TIMEOUT))
            .await
            .expect("probe task")
    };
    let broker_process = stack.as_ref().and_then(|s| s.broker.clone());
    components.insert(
        "broker".to_string(),
        component(
            settings.runs_local_broker(),
            stack.is_some(),
            broker_process.as_ref(),
            bootstrap.clone(),
            broker_probe.map_err(|e| e.to_string()),
        ),
    );

    let url = settings.warehouse_url();
    let postgres_probe = match &url {
        Some(url) => connect_with_retry(url, PROBE_TIMEOUT)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        None => Err("the local cluster has not been created yet (run lakectl up)".to_string()),
    };
    let postgres_endpoint = url.as_deref().map(redact_url).unwrap_or_else(|| {
        format!(
            "postgres://127.0.0.1:{}/{}",
            settings.postgres.port, settings.postgres.database
        )
    });
    let postgres_process = stack.as_ref().and_then(|s| s.postgres.clone());
    components.insert(
        "postgres".to_string(),
        component(
            settings.runs_local_postgres(),
            stack.is_some(),
            postgres_process.as_ref(),
            postgres_endpoint,
            postgres_probe,
        ),
    );

    let broker_up = components["broker"].state == ComponentState::Running;
    let mut groups = Vec::new();
    let lag = match broker_up {
        true => {
            group_lag(
                &bootstrap,
                STREAM_SQL_GROUP,
                vec![settings.topics.transaction_log.clone()],
                &mut groups,
            )
            .await
        }
        false => None,
    };
    components.insert(
        "stream_sql".to_string(),
        worker_component(
            stack.as_ref().filter(|s| s.stream_sql),
            format!("consumer group {STREAM_SQL_GROUP}"),
            lag,
        ),
    );
    let lake = inventory(&settings.data_lake_dir).unwrap_or_default();
    let mut lake_topics: Vec<String> = lake.iter().map(|t| t.topic.clone()).collect();
    if !lake_topics.contains(&settings.topics.transaction_log) {
        lake_topics.push(settings.topics.transaction_log.clone());
    }
    let lake_lag = match broker_up {
        true => group_lag(&bootstrap, LAKE_SINK_GROUP, lake_topics, &mut groups).await,
        false => None,
    };
    components.insert(
        "lake_sink".to_string(),
        worker_component(
            stack.as_ref().filter(|s| s.lake_sink),
            format!(
                "consumer group {LAKE_SINK_GROUP} → {}",
                settings.data_lake_dir.display()
            ),
            lake_lag,
        ),
    );
    let warehouse = match (&url, components["postgres"].state) {
        (Some(url), ComponentState::Running) => warehouse_summary(url).await,
        _ => Vec::new(),
    };
    let table_topics: Vec<String> = warehouse.iter().map(|t| t.table.to_uppercase()).collect();
    let table_lag = match broker_up && !table_topics.is_empty() {
        true => group_lag(&bootstrap, TABLE_SINK_GROUP, table_topics, &mut groups).await,
        false => None,
    };
    components.insert(
        "table_sink".to_string(),
        worker_component(
            stack.as_ref().filter(|s| s.table_sink),
            format!("consumer group {TABLE_SINK_GROUP} → warehouse"),
            table_lag,
        ),
    );
    components.insert("api".to_string(), api_component(stack.as_ref()).await);
    // What the running stack's supervisor says: restarts, errors, counters.
    if let Some(registry) = stack
        .as_ref()
        .and_then(|_| RegistryFile::read(&settings.state_dir))
    {
        for (key, status) in components.iter_mut() {
            let name = key.replace('_', "-");
            let entry = registry.components.iter().find(|c| c.name == name);
            *status = status.clone().with_registry(entry);
        }
    }
    let topics = required_topics(settings)
        .into_iter()
        .map(|spec| {
            let (partitions, records) = if broker_up {
                (
                    kafka::partition_count(&bootstrap, &spec.name)
                        .ok()
                        .flatten(),
                    kafka::record_count(&bootstrap, &spec.name).ok(),
                )
            } else {
                (None, None)
            };
            TopicStatus {
                name: spec.name,
                partitions,
                records: records.filter(|_| partitions.is_some()),
            }
        })
        .collect();

    StatusReport {
        version: STATUS_VERSION,
        stack: StackSummary {
            running: stack.is_some(),
            supervisor_pid: stack.as_ref().map(|s| s.supervisor_pid),
            started_at: stack.as_ref().map(|s| s.started_at),
            state_dir: settings.state_dir.clone(),
        },
        components,
        topics,
        lake,
        warehouse,
        groups,
    }
}

/// Records of `topics` the consumer group has not committed yet; each
/// topic's partitions are added to `groups`.
async fn group_lag(
    bootstrap: &str,
    group: &'static str,
    topics: Vec<String>,
    groups: &mut Vec<GroupOffsets>,
) -> Option<i64> {
    let bootstrap = bootstrap.to_string();
    let found = tokio::task::spawn_blocking(move || {
        topics
            .into_iter()
            .map(|topic| {
                let partitions =
                    kafka::group_offsets(&bootstrap, group, &topic, PROBE_TIMEOUT).ok();
                (topic, partitions)
            })
            .collect::<Vec<_>>()
    })
    .await
    .ok()?;
    let mut total = Some(0);
    for (topic, partitions) in found {
        match partitions {
            Some(partitions) => {
                total = total.map(|t| t + partitions.iter().map(|p| p.lag()).sum::<i64>());
                groups.push(GroupOffsets {
                    group: group.to_string(),
                    topic,
                    partitions,
                });
            }
            None => total = None,
        }
    }
    total
}

/// The API server (a thread of `lakectl up`): running when its port answers.
async fn api_component(stack: Option<&StackFile>) -> ComponentStatus {
    let url = stack.and_then(|s| s.api.clone());
    let mut status = worker_component(
        stack.filter(|s| s.api.is_some()),
        url.clone().unwrap_or_else(|| "not started".to_string()),
        None,
    );
    if let Some(url) = url {
        let address = url.trim_start_matches("http://").to_string();
        let probe =
            tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(address)).await;
        if !matches!(probe, Ok(Ok(_))) {
            status.state = ComponentState::Unreachable;
            status.detail = Some(format!(
                "nothing answers at {url} (starting, or waiting for PostgreSQL)"
            ));
        }
    }
    status
}

/// A worker that runs on a thread of `lakectl up` (present when the stack file says so).
fn worker_component(
    running_in: Option<&StackFile>,
    endpoint: String,
    lag: Option<i64>,
) -> ComponentStatus {
    ComponentStatus {
        state: if running_in.is_some() {
            ComponentState::Running
        } else {
            ComponentState::Stopped
        },
        managed: true,
        pid: running_in.map(|s| s.supervisor_pid),
        endpoint,
        log_file: None,
        detail: running_in
            .is_none()
            .then(|| "runs inside `lakectl up`".to_string()),
        lag,
        restarts: None,
        last_error: None,
        last_error_at: None,
        counters: None,
    }
}

fn component(
    managed: bool,
    stack_running: bool,
    process: Option<&crate::state::ManagedProcess>,
    endpoint: String,
    probe: Result<(), String>,
) -> ComponentStatus {
    let (state, detail) = match probe {
        Ok(()) => (ComponentState::Running, None),
        Err(_) if managed && !stack_running => (
            ComponentState::Stopped,
            Some("no `lakectl up` is running".to_string()),
        ),
        Err(e) => (ComponentState::Unreachable, Some(e)),
    };
    ComponentStatus {
        state,
        managed,
        pid: process.map(|p| p.pid),
        endpoint,
        log_file: process.map(|p| p.log_file.clone()),
        detail,
        lag: None,
        restarts: None,
        last_error: None,
        last_error_at: None,
        counters: None,
    }
}

/// Consumer group of the table sink (its default; `LAKEHOUSE_TABLE_SINK_GROUP` changes it).
const TABLE_SINK_GROUP: &str = "lakehouse_table_sink";

/// Consumer group of the lake sink (its default; `LAKEHOUSE_LAKE_SINK_GROUP` changes it).
const LAKE_SINK_GROUP: &str = "lakehouse_lake_sink";

/// Consumer group of the embedded stream SQL engine.
const STREAM_SQL_GROUP: &str = "lakehouse_stream_sql";

/// The human-readable form.
pub fn render_text(report: &StatusReport) -> String {
    let mut out = String::new();
    match (report.stack.supervisor_pid, report.stack.started_at) {
        (Some(pid), Some(since)) => out.push_str(&format!(
            "stack: running (lakectl up pid {pid}, since {})\n",
            since.format("%Y-%m-%d %H:%M:%S UTC")
        )),
        _ => out.push_str("stack: not running (start it with `lakectl up`)\n"),
    }
    for (name, c) in &report.components {
        let state = match c.state {
            ComponentState::Running => "running",
            ComponentState::Stopped => "stopped",
            ComponentState::Unreachable => "UNREACHABLE",
            ComponentState::Restarting => "RESTARTING",
            ComponentState::Failed => "FAILED",
        };
        let origin = if c.managed { "local" } else { "external" };
        let pid = c.pid.map(|p| format!("pid {p}")).unwrap_or_default();
        let lag = c.lag.map(|l| format!("  (lag {l})")).unwrap_or_default();
        out.push_str(&format!(
            "  {name:<10} {state:<12} {origin:<9} {pid:<10} {}{lag}\n",
            c.endpoint
        ));
        let explained = matches!(
            c.state,
            ComponentState::Unreachable | ComponentState::Restarting | ComponentState::Failed
        );
        if let (true, Some(detail)) = (explained, &c.detail) {
            out.push_str(&format!("            {detail}\n"));
        }
        if let Some(restarts) = c.restarts.filter(|r| *r > 0) {
            out.push_str(&format!("            restarted {restarts} times\n"));
        }
        if let Some(n) = &c.counters {
            out.push_str(&format!(
                "            {} records in, {} out, {} dead letters since up\n",
                n.records_in, n.records_out, n.dead_letters
            ));
        }
    }
    for t in &report.topics {
        match (t.partitions, t.records) {
            (Some(p), Some(r)) => out.push_str(&format!(
                "  topic     {}: {p} partitions, {r} records\n",
                t.name
            )),
            _ => out.push_str(&format!("  topic     {}: unavailable\n", t.name)),
        }
    }
    for t in &report.warehouse {
        let when = t.last_update.as_deref().unwrap_or("never");
        out.push_str(&format!(
            "  warehouse {}: {} rows, last update {when}\n",
            t.table, t.rows
        ));
    }
    if report.lake.is_empty() {
        out.push_str("  lake      empty\n");
    }
    for t in &report.lake {
        let newest = t.newest_date.map(|d| d.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "  lake      {}: {} rows in {} files ({} bytes), {} date partitions up to {newest}, {} dead letters\n",
            t.topic, t.rows, t.files, t.bytes, t.partitions, t.dead_letters
        ));
    }
    out
}
