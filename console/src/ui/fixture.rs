//! A fixed stack for tests and the console's benchmark: every component in a
//! known state, `streams` lake streams and consumer groups over
//! `partitions` partitions in all.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use lakehouse::kafka::PartitionOffsets;
use lakehouse_workers::lake::inventory::{DateInventory, TopicInventory};
use lakehouse_workers::registry::Counters;

use crate::status::{
    ComponentState, ComponentStatus, GroupOffsets, StackSummary, StatusReport, TopicStatus,
    WarehouseTableStatus, STATUS_VERSION,
};

pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

fn worker(
    state: ComponentState,
    group: &str,
    lag: i64,
    records: Option<[u64; 2]>,
) -> ComponentStatus {
    let mut status = component(state, &format!("consumer group {group}"));
    status.lag = Some(lag);
    status.counters = records.map(|[records_in, records_out]| Counters {
        records_in,
        records_out,
        ..Default::default()
    });
    status
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
        restarts: Some(0),
        last_error: None,
        last_error_at: None,
        counters: None,
    }
}

/// The stack's status `step` readings after `start()` (one every 2 s):
/// the lake sink consumes 100 records a step, the table sink stopped at
/// step 3, the API is down.
pub fn report(step: i64, streams: usize, partitions: usize) -> StatusReport {
    let mut components = BTreeMap::new();
    components.insert(
        "broker".into(),
        component(ComponentState::Running, "127.0.0.1:9092"),
    );
    components.insert(
        "postgres".into(),
        component(
            ComponentState::Running,
            "postgres://lakehouse@127.0.0.1:5432/lakehouse",
        ),
    );
    let step_records = step as u64;
    components.insert(
        "stream_sql".into(),
        worker(
            ComponentState::Running,
            "lakehouse_stream_sql",
            0,
            Some([100 * step_records, 1800 * step_records]),
        ),
    );
    let mut lake_sink = worker(
        ComponentState::Restarting,
        "lakehouse_lake_sink",
        150,
        Some([100 * step_records, 100 * step_records]),
    );
    lake_sink.restarts = Some(2);
    lake_sink.last_error = Some("broker timed out".into());
    lake_sink.last_error_at = Some(start() + Duration::seconds(3));
    lake_sink.detail = Some("restart 2 at 12:00:09: broker timed out".into());
    components.insert("lake_sink".into(), lake_sink);
    components.insert(
        "table_sink".into(),
        worker(ComponentState::Running, "lakehouse_table_sink", 40, None),
    );
    let mut api = component(ComponentState::Unreachable, "http://127.0.0.1:8080");
    api.detail = Some("connection refused".into());
    components.insert("api".into(), api);

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
        },
        WarehouseTableStatus {
            table: "spent_per_user".into(),
            rows: 1200,
            last_update: None,
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
    StatusReport {
        version: STATUS_VERSION,
        stack: StackSummary {
            running: true,
            supervisor_pid: Some(4000),
            started_at: Some(start()),
            state_dir: PathBuf::from(".lakehouse"),
        },
        components,
        topics: vec![TopicStatus {
            name: "transaction_log".into(),
            partitions: Some(3),
            records: Some(1450),
        }],
        lake,
        warehouse,
        groups,
    }
}
