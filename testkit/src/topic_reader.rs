//! Reads a whole topic back, as an independent consumer, for assertions.

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use lakehouse::kafka::{client_config, watermarks};
use lakehouse::topics::SOURCE_HEADER;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::Message;

#[derive(Debug, Clone)]
pub struct TopicRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// The `x-lakehouse-source` header.
    pub source: Option<String>,
    /// Every header, as (name, value).
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp: i64,
    pub partition: i32,
    pub offset: i64,
    /// `topic:partition:offset`.
    pub position: String,
}

/// Everything in a topic, each partition in offset order.
pub fn read_topic(bootstrap: &str, topic: &str) -> Vec<TopicRecord> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set(
            "group.id",
            format!("test-reader-{topic}-{}", rand::random::<u32>()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let marks = watermarks(bootstrap, topic).unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let total: i64 = marks.iter().map(|(_, l, h)| h - l).sum();
    let mut out: Vec<TopicRecord> = Vec::new();
    let started = Instant::now();
    while (out.len() as i64) < total {
        if started.elapsed() > Duration::from_secs(60) {
            let mut per_partition: BTreeMap<i32, usize> = BTreeMap::new();
            for r in &out {
                *per_partition.entry(r.partition).or_default() += 1;
            }
            panic!(
                "reading {topic} timed out after {} of {total}: {per_partition:?}, watermarks {marks:?}",
                out.len()
            );
        }
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            let headers: Vec<(String, Vec<u8>)> = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default();
            let source = headers
                .iter()
                .find(|(k, _)| k == SOURCE_HEADER)
                .map(|(_, v)| String::from_utf8_lossy(v).to_string());
            out.push(TopicRecord {
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                source,
                headers,
                timestamp: m.timestamp().to_millis().unwrap(),
                partition: m.partition(),
                offset: m.offset(),
                position: format!("{}:{}:{}", m.topic(), m.partition(), m.offset()),
            });
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}

/// Sends SIGTERM, as a supervisor stopping a worker would.
pub fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}
