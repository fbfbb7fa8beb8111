//! Broker conformance: what the rest of the system relies on from the
//! broker, through librdkafka. Each test pins one behaviour; BROKER.md lists
//! them and what to avoid.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use lakehouse::kafka::client_config;
use lakehouse_testkit::{block_on, Broker, TestContext};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};

type TestProducer = ThreadedProducer<DefaultProducerContext>;

fn producer(bootstrap: &str) -> TestProducer {
    client_config(bootstrap)
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .expect("consumer")
}

/// Sends and waits for every delivery report; panics on a failed delivery.
fn send_all(producer: &TestProducer, records: Vec<BaseRecord<'_, str, str>>) {
    for record in records {
        producer.send(record).map_err(|(e, _)| e).expect("enqueue");
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("all records delivered");
}

/// Polls until `expected` messages arrived or the timeout passes.
fn consume(
    consumer: &BaseConsumer,
    expected: usize,
    timeout: Duration,
) -> Vec<rdkafka::message::OwnedMessage> {
    let started = Instant::now();
    let mut out = Vec::new();
    while out.len() < expected && started.elapsed() < timeout {
        if let Some(result) = consumer.poll(Duration::from_millis(200)) {
            out.push(result.expect("consume without error").detach());
        }
    }
    out
}

#[test]
fn keys_null_values_and_headers_round_trip() {
    let ctx = TestContext::new("keys_nulls_headers");
    let topic = ctx.create_topic("conformance", 1);
    let producer = producer(ctx.bootstrap());
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "source",
            value: Some("test"),
        })
        .insert(Header {
            key: "empty",
            value: None::<&str>,
        });
    send_all(
        &producer,
        vec![
            BaseRecord::to(&topic)
                .key("k1")
                .payload("{\"a\":1}")
                .headers(headers),
            BaseRecord::to(&topic).key("k1"), // tombstone: key, no value
            BaseRecord::to(&topic).payload("unkeyed"),
        ],
    );

    let consumer = consumer(ctx.bootstrap(), &ctx.topic_name("group"));
    consumer.subscribe(&[&topic]).unwrap();
    let messages = consume(&consumer, 3, Duration::from_secs(30));
    assert_eq!(messages.len(), 3, "all three records come back");

    let first = &messages[0];
    assert_eq!(first.key(), Some(&b"k1"[..]));
    assert_eq!(first.payload(), Some(&b"{\"a\":1}"[..]));
    let headers = first.headers().expect("headers survive");
    let got: BTreeMap<String, Option<Vec<u8>>> = headers
        .iter()
        .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
        .collect();
    assert_eq!(got.get("source"), Some(&Some(b"test".to_vec())));
    assert_eq!(
        got.get("empty"),
        Some(&None),
        "a null header value stays null"
    );

    assert_eq!(messages[1].key(), Some(&b"k1"[..]));
    assert_eq!(
        messages[1].payload(),
        None,
        "a tombstone keeps its null value"
    );
    assert_eq!(messages[2].key(), None, "an unkeyed record stays unkeyed");
    assert!(
        messages.iter().all(|m| m.timestamp().to_millis().is_some()),
        "record timestamps are set"
    );
}

#[test]
fn multi_partition_topics_keep_partition_and_order() {
    let ctx = TestContext::new("multi_partition");
    let topic = ctx.create_topic("conformance", 4);
    assert_eq!(
        lakehouse::kafka::partition_count(ctx.bootstrap(), &topic).unwrap(),
        Some(4)
    );
    let producer = producer(ctx.bootstrap());
    let payloads: Vec<String> = (0..40).map(|i| format!("{i}")).collect();
    send_all(
        &producer,
        payloads
            .iter()
            .enumerate()
            .map(|(i, p)| {
                BaseRecord::to(&topic)
                    .partition((i % 4) as i32)
                    .payload(p.as_str())
            })
            .collect(),
    );
    let marks = lakehouse::kafka::watermarks(ctx.bootstrap(), &topic).unwrap();
    assert_eq!(marks, vec![(0, 0, 10), (1, 0, 10), (2, 0, 10), (3, 0, 10)]);

    let consumer = consumer(ctx.bootstrap(), &ctx.topic_name("group"));
    consumer.subscribe(&[&topic]).unwrap();
    let messages = consume(&consumer, 40, Duration::from_secs(30));
    assert_eq!(messages.len(), 40);
    let mut per_partition: BTreeMap<i32, Vec<(i64, u32)>> = BTreeMap::new();
    for m in &messages {
        let value: u32 = std::str::from_utf8(m.payload().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            value % 4,
            m.partition() as u32,
            "records stay in the partition they were sent to"
        );
        per_partition
            .entry(m.partition())
            .or_default()
            .push((m.offset(), value));
    }
    for (partition, records) in per_partition {
        let offsets: Vec<i64> = records.iter().map(|(o, _)| *o).collect();
        assert_eq!(
            offsets,
            (0..10).collect::<Vec<_>>(),
            "partition {partition} offsets are dense"
        );
        assert!(
            records.windows(2).all(|w| w[0].1 < w[1].1),
            "order kept in partition {partition}"
        );
    }
}

fn assignment_of(consumer: &BaseConsumer) -> BTreeSet<i32> {
    consumer
        .assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Polls both consumers until `done` holds for their assignments.
fn poll_until(
    consumers: &[&BaseConsumer],
    timeout: Duration,
    done: impl Fn(&[BTreeSet<i32>]) -> bool,
) -> Vec<BTreeSet<i32>> {
    let started = Instant::now();
    loop {
        for c in consumers {
            let _ = c.poll(Duration::from_millis(100));
        }
        let assignments: Vec<_> = consumers.iter().map(|c| assignment_of(c)).collect();
        if done(&assignments) || started.elapsed() > timeout {
            return assignments;
        }
    }
}

#[test]
fn consumer_group_with_two_members_rebalances() {
    let ctx = TestContext::new("group_rebalance");
    let topic = ctx.create_topic("conformance", 4);
    let group = ctx.topic_name("group");
    let all: BTreeSet<i32> = (0..4).collect();

    let first = consumer(ctx.bootstrap(), &group);
    first.subscribe(&[&topic]).unwrap();
    let alone = poll_until(&[&first], Duration::from_secs(30), |a| a[0] == all);
    assert_eq!(alone[0], all, "a single member owns every partition");

    let second = consumer(ctx.bootstrap(), &group);
    second.subscribe(&[&topic]).unwrap();
    let shared = poll_until(&[&first, &second], Duration::from_secs(60), |a| {
        !a[0].is_empty() && !a[1].is_empty() && a[0].union(&a[1]).count() == 4
    });
    assert!(
        !shared[0].is_empty() && !shared[1].is_empty(),
        "both members get work: {shared:?}"
    );
    assert!(
        shared[0].is_disjoint(&shared[1]),
        "no partition is owned twice: {shared:?}"
    );
    assert_eq!(
        shared[0]
            .union(&shared[1])
            .copied()
            .collect::<BTreeSet<_>>(),
        all
    );

    drop(second); // leaves the group
    let back = poll_until(&[&first], Duration::from_secs(60), |a| a[0] == all);
    assert_eq!(
        back[0], all,
        "the remaining member takes every partition back"
    );
}

#[test]
fn committed_offsets_survive_a_consumer_restart_and_give_lag() {
    let ctx = TestContext::new("offset_commit");
    let topic = ctx.create_topic("conformance", 1);
    let group = ctx.topic_name("group");
    let producer = producer(ctx.bootstrap());
    let payloads: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    send_all(
        &producer,
        payloads
            .iter()
            .map(|p| BaseRecord::to(&topic).payload(p.as_str()))
            .collect(),
    );

    {
        let c = consumer(ctx.bootstrap(), &group);
        c.subscribe(&[&topic]).unwrap();
        let first_half = consume(&c, 12, Duration::from_secs(30));
        assert_eq!(first_half.len(), 12);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(12))
            .unwrap();
        c.commit(&tpl, CommitMode::Sync).expect("commit");
    }

    // A process that is not a member reads the group's committed offset and the watermark.
    let observer = consumer(ctx.bootstrap(), &group);
    let mut query = TopicPartitionList::new();
    query.add_partition(&topic, 0);
    let committed = observer
        .committed_offsets(query, Duration::from_secs(10))
        .unwrap();
    let offset = committed.find_partition(&topic, 0).unwrap().offset();
    assert_eq!(offset, Offset::Offset(12));
    let (_, high) = observer
        .fetch_watermarks(&topic, 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!(high, 20);
    assert_eq!(high - 12, 8, "lag = high watermark - committed offset");
    drop(observer);

    let resumed = consumer(ctx.bootstrap(), &group);
    resumed.subscribe(&[&topic]).unwrap();
    let rest = consume(&resumed, 8, Duration::from_secs(30));
    let values: Vec<&str> = rest
        .iter()
        .map(|m| std::str::from_utf8(m.payload().unwrap()).unwrap())
        .collect();
    assert_eq!(
        values,
        (12..20)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
}

#[test]
fn data_and_offsets_survive_a_broker_kill_with_sqlite_storage() {
    let mut broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "durable_topic";
    block_on(lakehouse::kafka::ensure_topics(
        &bootstrap,
        &[lakehouse::kafka::TopicSpec::new(topic, 2)],
    ))
    .unwrap();
    {
        let producer = producer(&bootstrap);
        let payloads: Vec<String> = (0..500).map(|i| i.to_string()).collect();
        send_all(
            &producer,
            payloads
                .iter()
                .map(|p| BaseRecord::to(topic).key(p.as_str()).payload(p.as_str()))
                .collect(),
        );
        let c = consumer(&bootstrap, "durable_group");
        c.subscribe(&[topic]).unwrap();
        let got = consume(&c, 500, Duration::from_secs(30));
        assert_eq!(got.len(), 500);
        c.commit_consumer_state(CommitMode::Sync).unwrap();
    }

    broker.kill();
    broker.restart();

    assert_eq!(
        lakehouse::kafka::record_count(&bootstrap, topic).unwrap(),
        500
    );
    let reader = consumer(&bootstrap, "fresh_group_after_restart");
    reader.subscribe(&[topic]).unwrap();
    let got = consume(&reader, 500, Duration::from_secs(30));
    let values: BTreeSet<u32> = got
        .iter()
        .map(|m| {
            std::str::from_utf8(m.payload().unwrap())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(
        values,
        (0..500).collect(),
        "every acknowledged record survived the kill"
    );

    let group = consumer(&bootstrap, "durable_group");
    let mut query = TopicPartitionList::new();
    query.add_partition(topic, 0);
    query.add_partition(topic, 1);
    let committed = group
        .committed_offsets(query, Duration::from_secs(10))
        .unwrap();
    let total: i64 = committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            other => panic!("committed offset lost after restart: {other:?}"),
        })
        .sum();
    assert_eq!(total, 500, "committed offsets survived the kill");
}

/// Tansu does not auto-create topics: producing to a missing topic fails
/// (BROKER.md). The stack therefore creates every topic explicitly.
#[test]
fn producing_to_a_missing_topic_fails_instead_of_creating_it() {
    let ctx = TestContext::new("missing_topic");
    let topic = ctx.topic_name("never_created");
    let producer: rdkafka::producer::FutureProducer = client_config(ctx.bootstrap())
        .set("message.timeout.ms", "3000")
        .create()
        .unwrap();
    let delivery = block_on(producer.send(
        rdkafka::producer::FutureRecord::<str, str>::to(&topic).payload("x"),
        Duration::from_secs(0),
    ));
    assert!(
        delivery.is_err(),
        "delivery to a missing topic must fail, got {delivery:?}"
    );
    let exists = lakehouse::kafka::partition_count(ctx.bootstrap(), &topic).unwrap();
    assert_eq!(exists, None, "the broker must not have created {topic}");
}

/// Tansu's own SQL files (as shipped in tansu-storage 0.6.0, in cargo's
/// registry since `cargo install tansu` built it).
fn tansu_sql_dir() -> std::path::PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let registry = cargo_home.join("registry").join("src");
    std::fs::read_dir(&registry)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (install Tansu with scripts/install-prereqs.sh)",
                registry.display()
            )
        })
        .flatten()
        .map(|index| index.path().join("tansu-storage-0.6.0/src/sql"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| panic!("no tansu-storage-0.6.0 source under {}", registry.display()))
}

/// Every query Tansu runs per produced batch, per fetched partition and
/// record, per list-offsets and per offset commit or fetch searches an
/// index: none scans a table whose size grows with the data.
#[test]
fn the_brokers_per_record_queries_use_indexes() {
    use lakehouse::local::broker_storage::{ensure_indexes, query_plan};
    let broker = Broker::start();
    let ctx = TestContext::with_bootstrap("plans", broker.bootstrap());
    let topic = ctx.create_topic("plans", 1);
    let producer = producer(&broker.bootstrap());
    send_all(
        &producer,
        (0..50)
            .map(|i| {
                BaseRecord::to(&topic)
                    .payload("v")
                    .key("k")
                    .headers(OwnedHeaders::new().insert(Header {
                        key: "x-lakehouse-source",
                        value: Some(&format!("t:0:{i}")),
                    }))
            })
            .collect(),
    );
    // Made when the broker started; a second pass over the same file finds nothing to do.
    assert_eq!(
        ensure_indexes(&broker.database(), Duration::from_secs(5)).unwrap(),
        Vec::<&str>::new()
    );
    let conn = rusqlite::Connection::open(broker.database()).unwrap();
    let dir = tansu_sql_dir();
    let per_request = [
        "record_insert.sql",
        "header_insert.sql",
        "watermark_select_no_update.sql",
        "watermark_update.sql",
        "record_fetch.sql",
        "header_fetch.sql",
        "watermark_select.sql",
        "list_earliest_offset.sql",
        "list_latest_offset_committed.sql",
        "list_latest_offset_uncommitted.sql",
        "list_latest_offset_timestamp.sql",
        "consumer_offset_insert.sql",
        "consumer_offset_select.sql",
        "consumer_offset_select_by_group.sql",
        "topition_select.sql",
    ];
    for file in per_request {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let sql: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        let plan = query_plan(&conn, &sql).unwrap_or_else(|e| panic!("{file}: {e}"));
        // Scans of a query's own intermediate results (CTEs, subqueries) are fine.
        let table_scans: Vec<&String> = plan
            .iter()
            .filter(|step| {
                step.starts_with("SCAN ") && !step.contains("subquery") && *step != "SCAN sized"
            })
            .collect();
        assert!(table_scans.is_empty(), "{file} scans a table: {plan:#?}");
        if file == "header_fetch.sql" {
            assert!(
                plan.iter()
                    .any(|s| s.contains("USING INDEX lakehouse_header_topition_offset")),
                "{plan:#?}"
            );
        }
    }
}
