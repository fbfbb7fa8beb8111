//! Writing the engine's results to the broker: derived records with their
//! source position, dead letters with their reason, and the flush that a
//! checkpoint waits for. Shared by the running engine and the catch-up of
//! new and rebuilt statements.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use lakehouse::kafka::client_config;
use lakehouse::topics::SourcePosition;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message};

use crate::engine::{BatchOutput, InputRecord};
use crate::plan::Plan;
use crate::runtime::RuntimeError;
use crate::SOURCE_HEADER;

pub struct DeliveryTracker {
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failures.fetch_add(1, Ordering::Relaxed);
            *self.last_error.lock().expect("lock") = Some(e.to_string());
        }
    }
}

pub type OutputProducer = ThreadedProducer<DeliveryTracker>;

/// The producer of derived records and dead letters.
pub fn producer(bootstrap: &str) -> Result<OutputProducer, KafkaError> {
    client_config(bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "false")
        // Large batches: the output fans out to many topics, and fewer,
        // bigger produce requests are what the broker handles best.
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "500000")
        .set("message.timeout.ms", "600000")
        .create_with_context(DeliveryTracker {
            failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
        })
}

/// Waits until the broker acknowledged everything sent; fails if anything
/// was refused, so that no checkpoint moves past a lost record.
pub fn flush(producer: &OutputProducer) -> Result<(), RuntimeError> {
    producer
        .flush(Duration::from_secs(120))
        .map_err(|e| RuntimeError::Delivery(e.to_string()))?;
    if producer.context().failures.load(Ordering::Relaxed) > 0 {
        let e = producer
            .context()
            .last_error
            .lock()
            .expect("lock")
            .clone()
            .unwrap_or_default();
        return Err(RuntimeError::Delivery(e));
    }
    Ok(())
}

/// Where one batch's results go.
pub struct Emitter<'a> {
    pub producer: &'a OutputProducer,
    pub plan: &'a Plan,
    /// Partition count of each output topic.
    pub partitions_of: &'a HashMap<String, i32>,
    pub dlq_topic: &'a str,
}

/// How many records one input gave.
pub struct Emitted {
    pub outputs: usize,
    pub dead: usize,
}

impl Emitter<'_> {
    /// Sends input `i`'s derived records whose relation `keep_output`
    /// accepts and its dead letters whose stream `keep_dead` accepts.
    pub fn send_results(
        &self,
        input: &InputRecord<'_>,
        message: &BorrowedMessage<'_>,
        results: &BatchOutput,
        i: usize,
        keep_output: impl Fn(usize) -> bool,
        keep_dead: impl Fn(&str) -> bool,
    ) -> Result<Emitted, RuntimeError> {
        let source = SourcePosition::new(input.topic, input.partition, input.offset).to_string();
        let mut emitted = Emitted {
            outputs: 0,
            dead: 0,
        };
        for out in results.outputs(i).filter(|o| keep_output(o.relation)) {
            let relation = &self.plan.relations[out.relation];
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&relation.topic)
                .timestamp(out.timestamp)
                .headers(OwnedHeaders::new().insert(Header {
                    key: SOURCE_HEADER,
                    value: Some(&source),
                }));
            if let Some(k) = &out.key {
                record = record.key(k.as_slice());
            }
            if let Some(v) = &out.value {
                record = record.payload(v.as_slice());
            }
            if let Some(p) = out.partition {
                let n = self
                    .partitions_of
                    .get(&relation.topic)
                    .copied()
                    .unwrap_or(1);
                record = record.partition(p.rem_euclid(n));
            }
            send(self.producer, record)?;
            emitted.outputs += 1;
        }
        for d in results.dead(i).iter().filter(|d| keep_dead(&d.stream)) {
            let mut headers = OwnedHeaders::new()
                .insert(Header {
                    key: SOURCE_HEADER,
                    value: Some(&source),
                })
                .insert(Header {
                    key: "x-lakehouse-dlq-stream",
                    value: Some(&d.stream),
                })
                .insert(Header {
                    key: "x-lakehouse-dlq-reason",
                    value: Some(&d.reason),
                });
            if let Some(h) = message.headers() {
                for h in h.iter() {
                    headers = headers.insert(Header {
                        key: h.key,
                        value: h.value,
                    });
                }
            }
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(self.dlq_topic)
                .headers(headers)
                .timestamp(input.timestamp);
            if let Some(k) = input.key {
                record = record.key(k);
            }
            if let Some(v) = input.value {
                record = record.payload(v);
            }
            send(self.producer, record)?;
            emitted.dead += 1;
        }
        Ok(emitted)
    }

    /// Deletes `key` from a table's topic (a tombstone).
    pub fn send_tombstone(&self, topic: &str, key: &[u8]) -> Result<(), RuntimeError> {
        send(
            self.producer,
            BaseRecord::<'_, [u8], [u8]>::to(topic).key(key),
        )
    }
}

/// The input records of a batch of messages.
pub fn inputs<'a>(batch: &'a [BorrowedMessage<'a>]) -> Vec<InputRecord<'a>> {
    batch
        .iter()
        .map(|m| InputRecord {
            topic: m.topic(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp: m.timestamp().to_millis().unwrap_or(0),
            key: m.key(),
            value: m.payload(),
        })
        .collect()
}

fn send(
    producer: &OutputProducer,
    mut record: BaseRecord<'_, [u8], [u8]>,
) -> Result<(), RuntimeError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(RuntimeError::Client(e)),
        }
    }
}
