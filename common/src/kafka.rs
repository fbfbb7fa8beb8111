//! Kafka helpers on top of librdkafka: client configuration, readiness,
//! topic creation and offsets for lag.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientConfig;

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("Kafka at {bootstrap} did not answer within {waited:?}: {last_error}")]
    Unreachable {
        bootstrap: String,
        waited: Duration,
        last_error: String,
    },
    #[error("cannot create topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
    #[error(transparent)]
    Client(#[from] rdkafka::error::KafkaError),
}

/// Base client configuration for every component.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        // The local broker listens on IPv4 loopback; avoid a slow IPv6 attempt first.
        .set("broker.address.family", "v4")
        .set("log_level", "3");
    config
}

/// A topic the system needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
}

impl TopicSpec {
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        Self {
            name: name.into(),
            partitions,
        }
    }
}

/// Waits until the broker answers a metadata request.
pub fn wait_until_ready(bootstrap: &str, timeout: Duration) -> Result<(), KafkaError> {
    let started = Instant::now();
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("socket.connection.setup.timeout.ms", "1000")
        .create()?;
    let mut last_error = String::from("no answer");
    while started.elapsed() < timeout {
        match consumer.fetch_metadata(None, Duration::from_millis(1000)) {
            Ok(metadata) if !metadata.brokers().is_empty() => return Ok(()),
            Ok(_) => last_error = "metadata lists no broker".into(),
            Err(e) => last_error = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(KafkaError::Unreachable {
        bootstrap: bootstrap.to_string(),
        waited: timeout,
        last_error,
    })
}

/// Creates the topics that do not exist yet; existing topics are left as they are.
pub async fn ensure_topics(bootstrap: &str, topics: &[TopicSpec]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create()?;
    let existing = existing_topics(bootstrap)?;
    let new_topics: Vec<NewTopic> = topics
        .iter()
        .filter(|t| !existing.contains(&t.name))
        .map(|t| NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(1)))
        .collect();
    if new_topics.is_empty() {
        return Ok(());
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(KafkaError::CreateTopic {
                    topic,
                    reason: code.to_string(),
                })
            }
        }
    }
    Ok(())
}

/// A partition's number and its low and high watermarks.
pub type Watermarks = (i32, i64, i64);

/// One connection to the broker for many readings (a status poll asks
/// for every topic's watermarks and every group's offsets): a client costs
/// a connection and a metadata round trip, so a reading that made its own
/// for each topic took seconds.
pub struct BrokerProbe {
    bootstrap: String,
    consumer: BaseConsumer,
    /// Partition count of every topic the broker knows.
    partitions: std::collections::BTreeMap<String, i32>,
}

/// How long one metadata or watermark request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl BrokerProbe {
    /// Connects and reads the topics' metadata (which also proves the broker answers).
    pub fn connect(bootstrap: &str) -> Result<Self, KafkaError> {
        Self::connect_within(bootstrap, REQUEST_TIMEOUT)
    }

    /// The same, giving up after `timeout` (a status poll of a broker that is down).
    pub fn connect_within(bootstrap: &str, timeout: Duration) -> Result<Self, KafkaError> {
        let consumer: BaseConsumer = client_config(bootstrap)
            .set("socket.connection.setup.timeout.ms", "1000")
            .create()?;
        let metadata = consumer.fetch_metadata(None, timeout)?;
        let partitions = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| (t.name().to_string(), t.partitions().len() as i32))
            .collect();
        Ok(Self {
            bootstrap: bootstrap.to_string(),
            consumer,
            partitions,
        })
    }

    pub fn topics(&self) -> Vec<String> {
        self.partitions.keys().cloned().collect()
    }

    /// `None` when the topic does not exist.
    pub fn partition_count(&self, topic: &str) -> Option<i32> {
        self.partitions.get(topic).copied()
    }

    /// Low and high watermark of every partition of a topic (none for a missing topic).
    pub fn watermarks(&self, topic: &str) -> Result<Vec<(i32, i64, i64)>, KafkaError> {
        (0..self.partition_count(topic).unwrap_or(0))
            .map(|p| {
                let (low, high) = self.consumer.fetch_watermarks(topic, p, REQUEST_TIMEOUT)?;
                Ok((p, low, high))
            })
            .collect()
    }

    /// Each partition of each topic with the committed offset of `group`,
    /// read in one request.
    pub fn group_offsets(
        &self,
        group: &str,
        topics: &[String],
        timeout: Duration,
    ) -> Result<Vec<(String, Vec<PartitionOffsets>)>, KafkaError> {
        let marks: Vec<(String, Vec<Watermarks>)> = topics
            .iter()
            .map(|t| Ok((t.clone(), self.watermarks(t)?)))
            .collect::<Result<_, KafkaError>>()?;
        let mut partitions = rdkafka::TopicPartitionList::new();
        for (topic, marks) in &marks {
            for (p, _, _) in marks {
                partitions.add_partition(topic, *p);
            }
        }
        let committed = if partitions.count() == 0 {
            partitions
        } else {
            let reader: BaseConsumer = client_config(&self.bootstrap)
                .set("group.id", group)
                .create()?;
            reader.committed_offsets(partitions, timeout)?
        };
        Ok(marks
            .into_iter()
            .map(|(topic, marks)| {
                let offsets = marks
                    .iter()
                    .map(|&(partition, low, end)| PartitionOffsets {
                        partition,
                        low,
                        end,
                        committed: match committed
                            .find_partition(&topic, partition)
                            .map(|e| e.offset())
                        {
                            Some(rdkafka::Offset::Offset(o)) => Some(o),
                            _ => None,
                        },
                    })
                    .collect();
                (topic, offsets)
            })
            .collect())
    }
}

/// Names of the topics the broker knows.
pub fn existing_topics(bootstrap: &str) -> Result<Vec<String>, KafkaError> {
    Ok(BrokerProbe::connect(bootstrap)?.topics())
}

/// Number of partitions of a topic, or `None` when it does not exist.
pub fn partition_count(bootstrap: &str, topic: &str) -> Result<Option<i32>, KafkaError> {
    Ok(BrokerProbe::connect(bootstrap)?.partition_count(topic))
}

/// Low and high watermark of every partition of a topic.
pub fn watermarks(bootstrap: &str, topic: &str) -> Result<Vec<(i32, i64, i64)>, KafkaError> {
    BrokerProbe::connect(bootstrap)?.watermarks(topic)
}

/// Total number of records currently in a topic (sum of high − low watermarks).
pub fn record_count(bootstrap: &str, topic: &str) -> Result<i64, KafkaError> {
    Ok(watermarks(bootstrap, topic)?
        .iter()
        .map(|(_, low, high)| high - low)
        .sum())
}

/// One partition of a topic as a consumer group stands on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionOffsets {
    pub partition: i32,
    /// First offset still held (low watermark).
    pub low: i64,
    /// Next offset to be written (high watermark).
    pub end: i64,
    /// The group's committed offset; `None` when it committed nothing yet.
    pub committed: Option<i64>,
}

impl PartitionOffsets {
    /// Records not yet committed: end − committed, or the whole partition
    /// when nothing is committed.
    pub fn lag(&self) -> i64 {
        match self.committed {
            Some(offset) => (self.end - offset).max(0),
            None => self.end - self.low,
        }
    }
}

/// Each partition of `topic` with the committed offset of group `group`.
pub fn group_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<PartitionOffsets>, KafkaError> {
    let mut found =
        BrokerProbe::connect(bootstrap)?.group_offsets(group, &[topic.to_string()], timeout)?;
    Ok(found.pop().map(|(_, offsets)| offsets).unwrap_or_default())
}

/// Records of `topic` that consumer group `group` has not committed yet:
/// the sum over partitions of [`PartitionOffsets::lag`].
pub fn consumer_lag(
    bootstrap: &str,
    group: &str,
    topic: &str,
    timeout: Duration,
) -> Result<i64, KafkaError> {
    Ok(group_offsets(bootstrap, group, topic, timeout)?
        .iter()
        .map(PartitionOffsets::lag)
        .sum())
}
