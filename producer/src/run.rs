//! A producer run: generator threads paced to a steady rate, one shared
//! librdkafka producer, and delivery accounting from delivery reports. A
//! record the broker refused for a reason that passes (it was restarting,
//! its leader moved, the connection dropped) is sent again, for as long as
//! `message.timeout.ms` allows from its first send; only what still fails
//! then counts as failed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lakehouse::kafka::{self, client_config};
use lakehouse::topics::MALFORMED_HEADER;
use rand::Rng;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::generator::TransactionGenerator;
use crate::malformed::{damage, MalformedKind};

/// Which field, if any, becomes the record key.
/// How long a run waits for the broker to answer before saying there is none.
const BROKER_WAIT: Duration = Duration::from_secs(3);

/// How long a record may take to be delivered, its resends included
/// (`message.timeout.ms`).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// The pause before refused records are sent again.
const RESEND_DELAY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KeyMode {
    #[default]
    None,
    TransactionId,
    UserId,
}

/// What to produce and how fast.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    pub brokers: String,
    pub topic: String,
    /// Stop after this many records (valid and malformed together).
    pub count: Option<u64>,
    /// Records per second over all threads; unlimited when `None`.
    pub rate: Option<f64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    pub threads: u32,
    pub seed: u64,
    pub backdate_days: u32,
    /// Fraction of records damaged on purpose, 0.0 to 1.0.
    pub bad_ratio: f64,
    pub key: KeyMode,
}

impl ProduceOptions {
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic: topic.into(),
            count: None,
            rate: None,
            duration: None,
            threads: 1,
            seed: 0,
            backdate_days: 30,
            bad_ratio: 0.0,
            key: KeyMode::None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("invalid option --{option}: {reason}")]
    InvalidOption {
        option: &'static str,
        reason: String,
    },
    #[error(
        "topic {topic} does not exist on {brokers}; start the stack (lakectl up) or create it"
    )]
    MissingTopic { topic: String, brokers: String },
    #[error(
        "no Kafka broker answers at {brokers}; start the stack with `lakectl up`, or point --brokers (LAKEHOUSE_PRODUCE_BROKERS) at a running broker"
    )]
    NoBroker { brokers: String },
    #[error(transparent)]
    Kafka(#[from] lakehouse::kafka::KafkaError),
    #[error("cannot create the Kafka producer: {0}")]
    Client(#[from] KafkaError),
}

/// Counters of a run, updated live.
#[derive(Debug, Default)]
pub struct ProduceStats {
    /// Records handed to the client (valid and malformed).
    pub enqueued: AtomicU64,
    /// Of which damaged on purpose.
    pub malformed: AtomicU64,
    /// Acknowledged by the broker.
    pub delivered: AtomicU64,
    /// Reported failed by the client (after its retries and our resends).
    pub failed: AtomicU64,
    /// Sends again of records the broker refused for a passing reason.
    pub resent: AtomicU64,
    /// The first few delivery errors, for the summary.
    pub errors: Mutex<Vec<String>>,
}

const KEPT_ERRORS: usize = 10;

impl ProduceStats {
    fn record_error(&self, error: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut errors = self.errors.lock().expect("stats lock");
        if errors.len() < KEPT_ERRORS {
            errors.push(error);
        }
    }
}

/// A record refused for a passing reason, to send again.
struct Resend {
    topic: String,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Option<OwnedHeaders>,
    first_sent: Instant,
    /// Not sent again before this.
    due: Instant,
}

/// Records waiting to be sent again.
type ResendQueue = Mutex<VecDeque<Resend>>;

/// Whether the broker may take the record if it is sent again: it was
/// restarting (Tansu answers "Unknown broker error" while it starts), the
/// partition's leader was moving, or the connection failed.
fn is_passing(error: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        error.rdkafka_error_code(),
        Some(
            Unknown
                | BrokerTransportFailure
                | AllBrokersDown
                | UnknownTopicOrPartition
                | UnknownPartition
                | LeaderNotAvailable
                | NotLeaderForPartition
                | PreferredLeaderNotAvailable
                | RequestTimedOut
                | NetworkException
                | BrokerNotAvailable
                | NotEnoughReplicas
                | NotEnoughReplicasAfterAppend
        )
    )
}

/// Routes delivery reports into the run's counters, and refused records
/// that may yet be taken into the resend queue.
struct DeliveryCounter {
    stats: Arc<ProduceStats>,
    resends: Arc<ResendQueue>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    /// When the record was first sent.
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, first_sent: Box<Instant>) {
        match result {
            Ok(_) => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, message))
                if is_passing(error) && first_sent.elapsed() + RESEND_DELAY < DELIVERY_TIMEOUT =>
            {
                let message = message.detach();
                self.resends
                    .lock()
                    .expect("resend queue")
                    .push_back(Resend {
                        topic: message.topic().to_string(),
                        key: message.key().map(<[u8]>::to_vec),
                        payload: message.payload().map(<[u8]>::to_vec),
                        headers: message.headers().cloned(),
                        first_sent: *first_sent,
                        due: Instant::now() + RESEND_DELAY,
                    });
            }
            Err((error, _)) => self.stats.record_error(error.to_string()),
        }
    }
}

type CountingProducer = ThreadedProducer<DeliveryCounter>;

/// The outcome of a finished run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProduceSummary {
    pub seed: u64,
    pub enqueued: u64,
    pub delivered: u64,
    pub failed: u64,
    pub malformed: u64,
    /// Records still unacknowledged when the final flush gave up.
    pub undelivered: u64,
    /// Sends again of records the broker refused for a passing reason
    /// (each record is counted once in delivered or failed however often
    /// it was sent).
    pub resent: u64,
    pub elapsed_secs: f64,
    pub delivered_per_sec: f64,
    pub errors: Vec<String>,
}

/// A run in progress.
pub struct ProduceRun {
    options: ProduceOptions,
    stats: Arc<ProduceStats>,
    stop: Arc<AtomicBool>,
    producer: Arc<CountingProducer>,
    workers: Vec<JoinHandle<()>>,
    resends: Arc<ResendQueue>,
    started: Instant,
}

impl ProduceRun {
    /// Checks the options and the topic, then starts the generator threads.
    pub fn start(options: ProduceOptions) -> Result<Self, ProduceError> {
        validate(&options)?;
        if kafka::wait_until_ready(&options.brokers, BROKER_WAIT).is_err() {
            return Err(ProduceError::NoBroker {
                brokers: options.brokers.clone(),
            });
        }
        if kafka::partition_count(&options.brokers, &options.topic)?.is_none() {
            return Err(ProduceError::MissingTopic {
                topic: options.topic.clone(),
                brokers: options.brokers.clone(),
            });
        }
        let stats = Arc::new(ProduceStats::default());
        let resends = Arc::new(ResendQueue::default());
        let producer: CountingProducer = client_config(&options.brokers)
            .set("acks", "all")
            .set("enable.idempotence", "false")
            .set("linger.ms", "5")
            .set("batch.size", "1000000")
            .set("compression.type", "lz4")
            .set("queue.buffering.max.messages", "200000")
            .set(
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            )
            .create_with_context(DeliveryCounter {
                stats: Arc::clone(&stats),
                resends: Arc::clone(&resends),
            })?;
        let producer = Arc::new(producer);
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let workers = (0..options.threads)
            .map(|index| {
                let worker = Worker {
                    options: options.clone(),
                    thread_number: index as i32,
                    quota: share(options.count, options.threads, index),
                    rate: options.rate.map(|r| r / f64::from(options.threads)),
                    producer: Arc::clone(&producer),
                    stats: Arc::clone(&stats),
                    stop: Arc::clone(&stop),
                    resends: Arc::clone(&resends),
                    started,
                };
                std::thread::Builder::new()
                    .name(format!("producer-{}", index + 1))
                    .spawn(move || worker.run())
                    .expect("spawn a producer thread")
            })
            .collect();
        Ok(Self {
            options,
            stats,
            stop,
            producer,
            workers,
            resends,
            started,
        })
    }

    pub fn options(&self) -> &ProduceOptions {
        &self.options
    }

    /// Live counters.
    pub fn stats(&self) -> &Arc<ProduceStats> {
        &self.stats
    }

    /// A handle that stops the run when set (e.g. from a Ctrl-C handler).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// True when every generator thread has finished its share.
    pub fn generation_finished(&self) -> bool {
        self.workers.iter().all(JoinHandle::is_finished)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits for the generator threads, then for outstanding deliveries
    /// and resends (at most the delivery timeout after the last send).
    pub fn finish(self) -> ProduceSummary {
        for worker in self.workers {
            let _ = worker.join();
        }
        let deadline = Instant::now() + DELIVERY_TIMEOUT + RESEND_DELAY;
        loop {
            let _ = self.producer.flush(RESEND_DELAY);
            let waiting = resend_due(&self.resends, &self.producer, &self.stats);
            if (waiting == 0 && self.producer.in_flight_count() == 0) || Instant::now() >= deadline
            {
                break;
            }
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let s = &self.stats;
        let delivered = s.delivered.load(Ordering::Relaxed);
        let enqueued = s.enqueued.load(Ordering::Relaxed);
        let failed = s.failed.load(Ordering::Relaxed);
        ProduceSummary {
            seed: self.options.seed,
            enqueued,
            delivered,
            failed,
            malformed: s.malformed.load(Ordering::Relaxed),
            undelivered: enqueued.saturating_sub(delivered + failed),
            resent: s.resent.load(Ordering::Relaxed),
            elapsed_secs: elapsed,
            delivered_per_sec: if elapsed > 0.0 {
                delivered as f64 / elapsed
            } else {
                0.0
            },
            errors: s.errors.lock().expect("stats lock").clone(),
        }
    }
}

/// Runs to completion on the calling thread.
pub fn produce(options: ProduceOptions) -> Result<ProduceSummary, ProduceError> {
    Ok(ProduceRun::start(options)?.finish())
}

fn validate(o: &ProduceOptions) -> Result<(), ProduceError> {
    let invalid = |option, reason: &str| {
        Err(ProduceError::InvalidOption {
            option,
            reason: reason.to_string(),
        })
    };
    if o.threads == 0 || o.threads > 255 {
        return invalid("threads", "must be between 1 and 255");
    }
    if let Some(rate) = o.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return invalid("rate", "must be a positive number of records per second");
        }
    }
    if !(0.0..=1.0).contains(&o.bad_ratio) {
        return invalid("bad-ratio", "must be between 0 and 1");
    }
    if o.topic.is_empty() {
        return invalid("topic", "must not be empty");
    }
    if o.count == Some(0) {
        return invalid("count", "must be at least 1");
    }
    Ok(())
}

/// Thread `index`'s share of `count` records.
fn share(count: Option<u64>, threads: u32, index: u32) -> Option<u64> {
    count.map(|c| c / u64::from(threads) + u64::from(u64::from(index) < c % u64::from(threads)))
}

struct Worker {
    options: ProduceOptions,
    thread_number: i32,
    quota: Option<u64>,
    rate: Option<f64>,
    producer: Arc<CountingProducer>,
    stats: Arc<ProduceStats>,
    stop: Arc<AtomicBool>,
    resends: Arc<ResendQueue>,
    started: Instant,
}

/// Sends again the refused records whose pause is over; returns how many
/// records wait to be sent again (sent now or later).
fn resend_due(queue: &ResendQueue, producer: &CountingProducer, stats: &ProduceStats) -> usize {
    let now = Instant::now();
    let (due, waiting) = {
        let mut queue = queue.lock().expect("resend queue");
        let waiting = queue.len();
        let (due, later): (VecDeque<Resend>, VecDeque<Resend>) =
            queue.drain(..).partition(|r| r.due <= now);
        *queue = later;
        (due, waiting)
    };
    for resend in due {
        let mut record = BaseRecord::with_opaque_to(&resend.topic, Box::new(resend.first_sent));
        if let Some(key) = &resend.key {
            record = record.key(key.as_slice());
        }
        if let Some(payload) = &resend.payload {
            record = record.payload(payload.as_slice());
        }
        if let Some(headers) = resend.headers {
            record = record.headers(headers);
        }
        stats.resent.fetch_add(1, Ordering::Relaxed);
        send_when_there_is_room(producer, record, stats);
    }
    waiting
}

/// Hands `record` to the client, waiting while its queue is full (the
/// broker is behind); a record the client refuses outright counts as failed.
fn send_when_there_is_room(
    producer: &CountingProducer,
    mut record: BaseRecord<'_, [u8], [u8], Box<Instant>>,
    stats: &ProduceStats,
) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((error, _)) => {
                stats.record_error(error.to_string());
                return;
            }
        }
    }
}

impl Worker {
    fn run(self) {
        let o = &self.options;
        let mut generator = TransactionGenerator::new(o.seed, self.thread_number, o.backdate_days);
        let mut sent: u64 = 0;
        loop {
            if self.stop.load(Ordering::Relaxed)
                || self.quota.is_some_and(|q| sent >= q)
                || o.duration.is_some_and(|d| self.started.elapsed() >= d)
            {
                break;
            }
            if let Some(rate) = self.rate {
                // Record n is due at n / rate seconds: steady, never a catch-up burst
                // larger than what fell behind.
                let due = self.started + Duration::from_secs_f64(sent as f64 / rate);
                // A record due at the end of the run is not part of it:
                // `--duration 2s --rate 50` sends 100.
                if o.duration.is_some_and(|d| due >= self.started + d) {
                    break;
                }
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            let transaction = generator.next_transaction(chrono::Utc::now());
            let key = match o.key {
                KeyMode::None => None,
                KeyMode::TransactionId => Some(transaction.transaction_id.clone()),
                KeyMode::UserId => Some(transaction.user_id.clone()),
            };
            let bad = o.bad_ratio > 0.0 && generator.rng().gen_bool(o.bad_ratio);
            let (payload, kind) = if bad {
                let kind =
                    MalformedKind::ALL[generator.rng().gen_range(0..MalformedKind::ALL.len())];
                (damage(&transaction, kind, generator.rng()), Some(kind))
            } else {
                (serde_json::to_vec(&transaction).expect("serialise"), None)
            };
            self.send(&payload, key.as_deref(), kind);
            sent += 1;
        }
    }

    fn send(&self, payload: &[u8], key: Option<&str>, kind: Option<MalformedKind>) {
        let mut record = BaseRecord::with_opaque_to(&self.options.topic, Box::new(Instant::now()))
            .payload(payload);
        if let Some(key) = key {
            record = record.key(key.as_bytes());
        }
        if let Some(kind) = kind {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: MALFORMED_HEADER,
                value: Some(kind.name()),
            }));
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.enqueued.fetch_add(1, Ordering::Relaxed);
        send_when_there_is_room(&self.producer, record, &self.stats);
        resend_due(&self.resends, &self.producer, &self.stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_count() {
        for count in [1, 7, 10_000, 10_001] {
            for threads in 1..=5 {
                let total: u64 = (0..threads)
                    .map(|i| share(Some(count), threads, i).unwrap())
                    .sum();
                assert_eq!(total, count);
            }
        }
        assert_eq!(share(None, 3, 0), None);
    }

    #[test]
    fn bad_options_name_the_option() {
        let mut o = ProduceOptions::new("x", "t");
        o.bad_ratio = 1.5;
        assert!(validate(&o)
            .unwrap_err()
            .to_string()
            .contains("--bad-ratio"));
        let mut o = ProduceOptions::new("x", "t");
        o.rate = Some(0.0);
        assert!(validate(&o).unwrap_err().to_string().contains("--rate"));
        let mut o = ProduceOptions::new("x", "t");
        o.threads = 0;
        assert!(validate(&o).unwrap_err().to_string().contains("--threads"));
    }
}
