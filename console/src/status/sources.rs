//! The four sources a status is read from, each on its own: the stack's
//! files (stack, registry, the API's port), the broker, PostgreSQL and the
//! lake folder. One source being slow or gone never holds up the others;
//! `StatusReport::assemble` puts their last readings together.

use std::collections::BTreeMap;
use std::time::Duration;

use lakehouse::postgres::{connect_with_retry, redact_url};
use lakehouse::{kafka, Settings};
use sqlx::PgConnection;

use lakehouse_workers::lake::inventory::inventory;
use lakehouse_workers::registry::RegistryFile;

use super::{
    ComponentState, ComponentStatus, GroupOffsets, StackSummary, TopicStatus, WarehouseTableStatus,
};
use crate::stack::required_topics;
use crate::state::{ManagedProcess, StackFile};

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Consumer group of the table sink (its default; `LAKEHOUSE_TABLE_SINK_GROUP` changes it).
const TABLE_SINK_GROUP: &str = "lakehouse_table_sink";

/// Consumer group of the lake sink (its default; `LAKEHOUSE_LAKE_SINK_GROUP` changes it).
const LAKE_SINK_GROUP: &str = "lakehouse_lake_sink";

/// Consumer group of the embedded stream SQL engine.
const STREAM_SQL_GROUP: &str = "lakehouse_stream_sql";

/// Where a reading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SourceKind {
    Stack,
    Broker,
    Postgres,
    Lake,
}

impl SourceKind {
    pub const ALL: [SourceKind; 4] = [
        SourceKind::Stack,
        SourceKind::Broker,
        SourceKind::Postgres,
        SourceKind::Lake,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Stack => "stack",
            SourceKind::Broker => "broker",
            SourceKind::Postgres => "postgres",
            SourceKind::Lake => "lake",
        }
    }
}

/// One source's reading.
#[derive(Debug, Clone)]
pub enum Reading {
    Stack(StackReading),
    Broker(BrokerReading),
    Postgres(PostgresReading),
    Lake(LakeReading),
}

impl Reading {
    pub fn kind(&self) -> SourceKind {
        match self {
            Reading::Stack(_) => SourceKind::Stack,
            Reading::Broker(_) => SourceKind::Broker,
            Reading::Postgres(_) => SourceKind::Postgres,
            Reading::Lake(_) => SourceKind::Lake,
        }
    }
}

/// The stack's own files: is a `lakectl up` running, what its registry
/// says, and the components it runs on its threads (their lag comes from
/// the broker's reading).
#[derive(Debug, Clone)]
pub struct StackReading {
    pub summary: StackSummary,
    /// `stream_sql`, `lake_sink`, `table_sink` and `api`.
    pub components: BTreeMap<String, ComponentStatus>,
    pub registry: Option<RegistryFile>,
}

#[derive(Debug, Clone)]
pub struct BrokerReading {
    pub broker: ComponentStatus,
    pub topics: Vec<TopicStatus>,
    pub groups: Vec<GroupOffsets>,
    /// Each worker's lag over its topics (`None` when a topic could not be read).
    pub lags: BTreeMap<String, Option<i64>>,
    /// The stream SQL engine's dead-letter topic and what it holds.
    pub stream_sql_dlq: TopicStatus,
}

#[derive(Debug, Clone)]
pub struct PostgresReading {
    pub postgres: ComponentStatus,
    pub warehouse: Vec<WarehouseTableStatus>,
}

#[derive(Debug, Clone)]
pub struct LakeReading {
    pub lake: Vec<lakehouse_workers::lake::inventory::TopicInventory>,
}

/// The topics whose lag the broker's reading reports, learnt from the
/// other sources' last readings: the lake's folders (the lake sink's
/// topics) and the warehouse's tables (the table sink's).
#[derive(Debug, Clone, Default)]
pub struct BrokerHints {
    pub lake_topics: Vec<String>,
    pub table_topics: Vec<String>,
}

impl BrokerHints {
    /// Learns what `reading` says about the topics.
    pub fn learn(&mut self, reading: &Reading) {
        match reading {
            Reading::Lake(lake) => {
                self.lake_topics = lake.lake.iter().map(|t| t.topic.clone()).collect()
            }
            Reading::Postgres(pg) => {
                self.table_topics = pg
                    .warehouse
                    .iter()
                    .map(|t| t.table.to_uppercase())
                    .collect()
            }
            _ => {}
        }
    }
}

/// Reads one source.
pub async fn read(
    kind: SourceKind,
    settings: &Settings,
    hints: &BrokerHints,
) -> Result<Reading, String> {
    match kind {
        SourceKind::Stack => Ok(Reading::Stack(read_stack(settings).await)),
        SourceKind::Broker => Ok(Reading::Broker(read_broker(settings, hints).await)),
        SourceKind::Postgres => read_postgres(settings).await.map(Reading::Postgres),
        SourceKind::Lake => {
            let dir = settings.data_lake_dir.clone();
            let lake = tokio::task::spawn_blocking(move || inventory(&dir))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("reading the lake: {e}"))?;
            Ok(Reading::Lake(LakeReading { lake }))
        }
    }
}

async fn read_stack(settings: &Settings) -> StackReading {
    let stack = StackFile::read_live(&settings.state_dir);
    let mut components = BTreeMap::new();
    components.insert(
        "stream_sql".to_string(),
        worker_component(
            stack.as_ref().filter(|s| s.stream_sql),
            format!("consumer group {STREAM_SQL_GROUP}"),
        ),
    );
    components.insert(
        "lake_sink".to_string(),
        worker_component(
            stack.as_ref().filter(|s| s.lake_sink),
            format!(
                "consumer group {LAKE_SINK_GROUP} → {}",
                settings.data_lake_dir.display()
            ),
        ),
    );
    components.insert(
        "table_sink".to_string(),
        worker_component(
            stack.as_ref().filter(|s| s.table_sink),
            format!("consumer group {TABLE_SINK_GROUP} → warehouse"),
        ),
    );
    components.insert("api".to_string(), api_component(stack.as_ref()).await);
    if let Some(stack) = stack.as_ref().filter(|s| s.demo_producer) {
        components.insert(
            crate::demo::NAME.to_string(),
            worker_component(
                Some(stack),
                format!(
                    "steady producer (--demo) → {}",
                    settings.topics.transaction_log
                ),
            ),
        );
    }
    let registry = stack
        .as_ref()
        .and_then(|_| RegistryFile::read(&settings.state_dir));
    StackReading {
        summary: StackSummary {
            running: stack.is_some(),
            supervisor_pid: stack.as_ref().map(|s| s.supervisor_pid),
            started_at: stack.as_ref().map(|s| s.started_at),
            state_dir: settings.state_dir.clone(),
            metrics: stack.as_ref().and_then(|s| s.metrics.clone()),
        },
        components,
        registry,
    }
}

async fn read_broker(settings: &Settings, hints: &BrokerHints) -> BrokerReading {
    let stack = StackFile::read_live(&settings.state_dir);
    let bootstrap = settings.kafka_bootstrap();
    let mut lake_topics = hints.lake_topics.clone();
    if !lake_topics.contains(&settings.topics.transaction_log) {
        lake_topics.push(settings.topics.transaction_log.clone());
    }
    let workers = [
        (
            "stream_sql",
            STREAM_SQL_GROUP,
            vec![settings.topics.transaction_log.clone()],
        ),
        ("lake_sink", LAKE_SINK_GROUP, lake_topics),
        ("table_sink", TABLE_SINK_GROUP, hints.table_topics.clone()),
    ];
    let specs = required_topics(settings);
    let dlq_topic = stack
        .as_ref()
        .and_then(|s| s.stream_sql_dlq.clone())
        .unwrap_or_else(|| lakehouse_streamsql::runtime::DEFAULT_DLQ_TOPIC.to_string());
    let unread = |name: &str| TopicStatus {
        name: name.to_string(),
        partitions: None,
        records: None,
    };
    let dlq_unread = unread(&dlq_topic);
    // Every reading on one connection: a client per topic took seconds.
    let read = {
        let bootstrap = bootstrap.clone();
        tokio::task::spawn_blocking(move || {
            let probe = kafka::BrokerProbe::connect_within(&bootstrap, PROBE_TIMEOUT)
                .map_err(|e| e.to_string())?;
            let mut groups = Vec::new();
            let mut lags = BTreeMap::new();
            for (worker, group, topics) in workers {
                if topics.is_empty() {
                    continue;
                }
                let lag = match probe.group_offsets(group, &topics, PROBE_TIMEOUT) {
                    Ok(found) => {
                        let mut total = 0;
                        for (topic, partitions) in found {
                            total += partitions.iter().map(|p| p.lag()).sum::<i64>();
                            groups.push(GroupOffsets {
                                group: group.to_string(),
                                topic,
                                partitions,
                            });
                        }
                        Some(total)
                    }
                    Err(_) => None,
                };
                lags.insert(worker.to_string(), lag);
            }
            let held = |name: String| {
                let partitions = probe.partition_count(&name);
                let records = probe
                    .watermarks(&name)
                    .ok()
                    .map(|marks| marks.iter().map(|(_, low, high)| high - low).sum());
                TopicStatus {
                    name,
                    partitions,
                    records: records.filter(|_| partitions.is_some()),
                }
            };
            let topics = specs
                .into_iter()
                .map(|spec| held(spec.name))
                .collect::<Vec<_>>();
            let dlq = held(dlq_topic);
            Ok::<_, String>((groups, lags, topics, dlq))
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
    };
    let (probe, (groups, lags, topics, stream_sql_dlq)) = match read {
        Ok(found) => (Ok(()), found),
        Err(e) => {
            let topics = required_topics(settings)
                .iter()
                .map(|spec| unread(&spec.name))
                .collect();
            (Err(e), (Vec::new(), BTreeMap::new(), topics, dlq_unread))
        }
    };
    let broker = component(
        settings.runs_local_broker(),
        stack.is_some(),
        stack.as_ref().and_then(|s| s.broker.as_ref()),
        bootstrap,
        probe,
    );
    BrokerReading {
        broker,
        topics,
        groups,
        lags,
        stream_sql_dlq,
    }
}

async fn read_postgres(settings: &Settings) -> Result<PostgresReading, String> {
    let stack = StackFile::read_live(&settings.state_dir);
    let url = settings.warehouse_url();
    let connection = match &url {
        Some(url) => connect_with_retry(url, PROBE_TIMEOUT)
            .await
            .map_err(|e| e.to_string()),
        None => Err("the local cluster has not been created yet (run lakectl up)".to_string()),
    };
    let endpoint = url.as_deref().map(redact_url).unwrap_or_else(|| {
        format!(
            "postgres://127.0.0.1:{}/{}",
            settings.postgres.port, settings.postgres.database
        )
    });
    let (probe, warehouse) = match connection {
        Ok(mut conn) => (Ok(()), warehouse_summary(&mut conn).await?),
        Err(e) => (Err(e), Vec::new()),
    };
    let postgres = component(
        settings.runs_local_postgres(),
        stack.is_some(),
        stack.as_ref().and_then(|s| s.postgres.as_ref()),
        endpoint,
        probe,
    );
    Ok(PostgresReading {
        postgres,
        warehouse,
    })
}

/// The tables the table sink keeps (those with `ingestion_time`), their
/// rows, last write and the dead letters of their topics.
async fn warehouse_summary(conn: &mut PgConnection) -> Result<Vec<WarehouseTableStatus>, String> {
    let failed = |e: sqlx::Error| format!("reading the warehouse: {e}");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND column_name = 'ingestion_time' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(failed)?;
    let dead_letter_table = lakehouse_workers::warehouse::schema::DEAD_LETTER_TABLE;
    let has_dead_letters: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(dead_letter_table)
        .fetch_one(&mut *conn)
        .await
        .map_err(failed)?;
    let dead_letters: BTreeMap<String, i64> = match has_dead_letters {
        true => sqlx::query_as::<_, (String, i64)>(&format!(
            "SELECT upper(topic), count(*) FROM {dead_letter_table} GROUP BY 1"
        ))
        .fetch_all(&mut *conn)
        .await
        .map_err(failed)?
        .into_iter()
        .collect(),
        false => BTreeMap::new(),
    };
    let mut out = Vec::new();
    for table in tables {
        let quoted = format!("\"{}\"", table.replace('"', "\"\""));
        let (rows, last_update): (i64, Option<String>) = sqlx::query_as(&format!(
            "SELECT count(*), to_char(max(ingestion_time) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM {quoted}"
        ))
        .fetch_one(&mut *conn)
        .await
        .map_err(failed)?;
        out.push(WarehouseTableStatus {
            dead_letters: dead_letters
                .get(&table.to_uppercase())
                .copied()
                .unwrap_or(0) as u64,
            table,
            rows,
            last_update,
        });
    }
    Ok(out)
}

/// The API server (a thread of `lakectl up`): running when its port answers.
async fn api_component(stack: Option<&StackFile>) -> ComponentStatus {
    let url = stack.and_then(|s| s.api.clone());
    let mut status = worker_component(
        stack.filter(|s| s.api.is_some()),
        url.clone().unwrap_or_else(|| "not started".to_string()),
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
fn worker_component(running_in: Option<&StackFile>, endpoint: String) -> ComponentStatus {
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
        lag: None,
        restarts: None,
        last_error: None,
        last_error_at: None,
        counters: None,
    }
}

/// A service `lakectl up` may run as its own process (or an external one).
fn component(
    managed: bool,
    stack_running: bool,
    process: Option<&ManagedProcess>,
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
