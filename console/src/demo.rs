//! `lakectl up --demo`: a steady producer next to the stack, so that a new
//! user sees records flow through the console within seconds. It is one
//! more supervised job: a broker that is slow or away is waited out with
//! backoff, and Ctrl-C stops it with the rest.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lakehouse::Settings;
use lakehouse_producer::{ProduceOptions, ProduceRun, ProduceStats};
use lakehouse_workers::registry::Counters;
use lakehouse_workers::supervisor::{Failure, Job};

/// The job's name, as `lakectl status` shows it.
pub const NAME: &str = "producer";

/// Default records per second of the demo producer.
pub const DEFAULT_RATE: f64 = 20.0;

/// Sends generated transactions at `rate` per second until stopped.
pub fn producer_job(settings: &Settings, rate: f64) -> Job {
    let mut options = ProduceOptions::new(
        settings.kafka_bootstrap(),
        settings.topics.transaction_log.clone(),
    );
    options.rate = Some(rate);
    // Today's records: the console's lake view fills its newest partition.
    options.backdate_days = 0;
    let summary = format!("{rate} transactions/s into {} (--demo)", options.topic);
    // Counters survive restarts of the job: earlier runs' deliveries plus the current run's.
    let earlier = Arc::new(AtomicU64::new(0));
    let current: Arc<Mutex<Option<Arc<ProduceStats>>>> = Arc::default();
    let counters = {
        let (earlier, current) = (Arc::clone(&earlier), Arc::clone(&current));
        Arc::new(move || {
            let now = current
                .lock()
                .expect("demo stats")
                .as_ref()
                .map_or(0, |s| s.delivered.load(Ordering::Relaxed));
            let delivered = earlier.load(Ordering::Relaxed) + now;
            Counters {
                records_in: delivered,
                records_out: delivered,
                ..Counters::default()
            }
        })
    };
    Job {
        name: NAME,
        summary,
        counters: Some(counters),
        body: Arc::new(move |stop: &AtomicBool| {
            let mut options = options.clone();
            options.seed = rand::random();
            let run = ProduceRun::start(options).map_err(|e| Failure::transient(e.to_string()))?;
            *current.lock().expect("demo stats") = Some(Arc::clone(run.stats()));
            while !stop.load(Ordering::Relaxed) && !run.generation_finished() {
                std::thread::sleep(Duration::from_millis(100));
            }
            run.stop_flag().store(true, Ordering::Relaxed);
            let summary = run.finish();
            *current.lock().expect("demo stats") = None;
            earlier.fetch_add(summary.delivered, Ordering::Relaxed);
            if stop.load(Ordering::Relaxed) {
                Ok(())
            } else {
                Err(Failure::transient(format!(
                    "the demo producer stopped after {} records: {}",
                    summary.delivered,
                    summary
                        .errors
                        .first()
                        .map_or("no error reported", String::as_str)
                )))
            }
        }),
    }
}
