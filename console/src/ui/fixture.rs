//! A fixed stack for tests and the console's benchmark: every component in a
//! known state, `streams` lake streams and consumer groups over
//! `partitions` partitions in all.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use lakehouse::kafka::PartitionOffsets;
use lakehouse_workers::lake::inventory::{DateInventory, TopicInventory};
use lakehouse_workers::registry::{
    ComponentSnapshot, ComponentState as RegistryState, Counters, RegistryFile,
};

use crate::status::sources::{BrokerReading, LakeReading, PostgresReading, StackReading};
use crate::status::{
    ComponentState, ComponentStatus, GroupOffsets, Reading, StackSummary, TopicStatus,
    WarehouseTableStatus,
};

pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

/// What the supervisor's registry says of a component.
fn registered(name: &str, state: RegistryState, records: [u64; 2]) -> ComponentSnapshot {
    ComponentSnapshot {
        name: name.into(),
        state,
        restarts: 0,
        last_error: None,
        last_error_at: None,
        counters: Counters {
            records_in: records[0],
            records_out: records[1],
            latency_p95_ms: name.ends_with("sink").then_some(750),
            ..Default::default()
        },
    }
}

fn component(state: ComponentState, endpoint: &str) -> ComponentStatus {
    ComponentStatus {
        state,
        managed: true,
        pid: Some(4242),
        endpoint: endpoint.into(),
        log_file: None,
        detail: None,
        lag: None,
        restarts: None,
        last_error: None,
        last_error_at: None,
        counters: None,
    }
}

/// Each source's reading `step` readings after `start()` (one every 2 s):
/// the lake sink consumes 100 records a step and is restarting, the table
/// sink stopped at step 3, the API is down.
pub fn readings(step: i64, streams: usize, partitions: usize) -> Vec<Reading> {
    let step_records = step as u64;
    let running = RegistryState::Running { since: start() };
    let mut lake_sink = registered(
        "lake-sink",
        RegistryState::Restarting {
            attempt: 2,
            next_attempt_at: start() + Duration::seconds(9),
        },
        [100 * step_records; 2],
    );
    lake_sink.restarts = 2;
    lake_sink.last_error = Some("broker timed out".into());
    lake_sink.last_error_at = Some(start() + Duration::seconds(3));
    let registry = RegistryFile {
        written_at: start() + Duration::seconds(2 * step),
        components: vec![
            registered("broker", running.clone(), [0, 0]),
            registered("postgres", running.clone(), [0, 0]),
            registered(
                "stream-sql",
                running.clone(),
                [100 * step_records, 1800 * step_records],
            ),
            lake_sink,
            registered("table-sink", running.clone(), [0, 0]),
            registered("api", running, [0, 0]),
        ],
    };
    let mut stack_components = BTreeMap::new();
    for (name, group) in [
        ("stream_sql", "lakehouse_stream_sql"),
        ("lake_sink", "lakehouse_lake_sink"),
        ("table_sink", "lakehouse_table_sink"),
    ] {
        stack_components.insert(
            name.to_string(),
            component(ComponentState::Running, &format!("consumer group {group}")),
        );
    }
    let mut api = component(ComponentState::Unreachable, "http://127.0.0.1:8080");
    api.detail = Some("connection refused".into());
    stack_components.insert("api".into(), api);
    let stack = StackReading {
        summary: StackSummary {
            running: true,
            supervisor_pid: Some(4000),
            started_at: Some(start()),
            state_dir: PathBuf::from(".lakehouse"),
            metrics: Some("http://127.0.0.1:9464/metrics".into()),
        },
        components: stack_components,
        registry: Some(registry),
    };

    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    let lake = (0..streams)
        .map(|i| TopicInventory {
            topic: if i == 0 {
                "transaction_log".into()
            } else {
                format!("TRANSACTIONS_STREAM_{i:02}")
            },
            partitions: 2,
            files: 6,
            rows: 1000 * (i as u64 + 1),
            bytes: 52_000 * (i as u64 + 1),
            oldest_date: Some(day(29)),
            newest_date: Some(day(30)),
            newest_file_age_secs: Some(4),
            dead_letters: if i == 0 { 3 } else { 0 },
            dates: vec![
                DateInventory {
                    date: day(29),
                    files: 3,
                    rows: 400 * (i as u64 + 1),
                    bytes: 20_000 * (i as u64 + 1),
                },
                DateInventory {
                    date: day(30),
                    files: 3,
                    rows: 600 * (i as u64 + 1),
                    bytes: 32_000 * (i as u64 + 1),
                },
            ],
        })
        .collect();
    let warehouse = vec![
        WarehouseTableStatus {
            table: "transactions_by_status".into(),
            rows: 5,
            last_update: Some("2026-12-01T11:59:58Z".into()),
            dead_letters: 2,
        },
        WarehouseTableStatus {
            table: "spent_per_user".into(),
            rows: 1200,
            last_update: None,
            dead_letters: 0,
        },
    ];
    let per_topic = 3;
    let topics = partitions.div_ceil(per_topic).max(1);
    let groups = (0..topics)
        .map(|t| {
            let (group, moving) = if t % 2 == 0 {
                ("lakehouse_lake_sink", true)
            } else {
                ("lakehouse_table_sink", false)
            };
            GroupOffsets {
                group: group.into(),
                topic: if t == 0 {
                    "transaction_log".into()
                } else {
                    format!("TOPIC_{t:02}")
                },
                partitions: (0..per_topic.min(partitions - t * per_topic))
                    .map(|p| {
                        let end = 1000 + 150 * step;
                        let committed = if moving {
                            1000 + 100 * step
                        } else {
                            1000 + 150 * step.min(3)
                        };
                        PartitionOffsets {
                            partition: p as i32,
                            low: 0,
                            end,
                            committed: Some(committed),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    let lags = [("stream_sql", 0), ("lake_sink", 150), ("table_sink", 40)]
        .into_iter()
        .map(|(name, lag)| (name.to_string(), Some(lag)))
        .collect();
    vec![
        Reading::Stack(stack),
        Reading::Broker(BrokerReading {
            broker: component(ComponentState::Running, "127.0.0.1:9092"),
            topics: vec![TopicStatus {
                name: "transaction_log".into(),
                partitions: Some(3),
                records: Some(1450),
            }],
            groups,
            lags,
            stream_sql_dlq: TopicStatus {
                name: "stream_sql_dlq".into(),
                partitions: Some(1),
                records: Some(4),
            },
        }),
        Reading::Postgres(PostgresReading {
            postgres: component(
                ComponentState::Running,
                "postgres://lakehouse@127.0.0.1:5432/lakehouse",
            ),
            warehouse,
        }),
        Reading::Lake(LakeReading { lake }),
    ]
}

/// Gives `app` every source's reading of `step`, as the collectors would at `at`.
pub fn feed(
    app: &mut crate::ui::app::App,
    step: i64,
    streams: usize,
    partitions: usize,
    at: DateTime<Utc>,
) {
    for reading in readings(step, streams, partitions) {
        let action = crate::ui::app::Action::Reading(reading.kind(), Ok(Box::new(reading)), at);
        crate::ui::app::update(app, action, at);
    }
}
