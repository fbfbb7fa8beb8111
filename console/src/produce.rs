//! `lakectl produce`: runs the producer with a progress bar and a summary.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use lakehouse::Settings;
use lakehouse_producer::{KeyMode, ProduceOptions, ProduceRun, ProduceSummary};

#[derive(Debug, Clone, Args)]
pub struct ProduceArgs {
    /// Number of records to send (valid and malformed together); unbounded when unset.
    #[arg(long, env = "LAKEHOUSE_PRODUCE_COUNT")]
    pub count: Option<u64>,
    /// Records per second, steady (over all threads); as fast as possible when unset.
    #[arg(long, env = "LAKEHOUSE_PRODUCE_RATE", allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Stop after this long (e.g. 30s, 5m).
    #[arg(long, env = "LAKEHOUSE_PRODUCE_DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Producer threads; each writes its own `thread` number and `message_number` sequence.
    #[arg(long, env = "LAKEHOUSE_PRODUCE_THREADS", default_value_t = 1)]
    pub threads: u32,
    /// Random seed: the same seed gives the same records (time fields aside). Random when unset.
    #[arg(long, env = "LAKEHOUSE_PRODUCE_SEED")]
    pub seed: Option<u64>,
    /// Back-date `timestamp` by up to this many days, as the classic producer does (0: now).
    #[arg(long, env = "LAKEHOUSE_PRODUCE_BACKDATE_DAYS", default_value_t = 30)]
    pub backdate_days: u32,
    /// Fraction of records damaged on purpose (truncated JSON, wrong types, missing
    /// fields, oversized values, non-UTF-8, non-objects), 0 to 1.
    #[arg(long, env = "LAKEHOUSE_PRODUCE_BAD_RATIO", default_value_t = 0.0)]
    pub bad_ratio: f64,
    /// Target topic (default: topics.transaction_log of the configuration).
    #[arg(long, env = "LAKEHOUSE_PRODUCE_TOPIC")]
    pub topic: Option<String>,
    /// Kafka bootstrap servers (default: the configured broker).
    #[arg(long, env = "LAKEHOUSE_PRODUCE_BROKERS")]
    pub brokers: Option<String>,
    /// Record key.
    #[arg(long, env = "LAKEHOUSE_PRODUCE_KEY", value_enum, default_value_t = KeyMode::None)]
    pub key: KeyMode,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

impl ProduceArgs {
    pub fn options(&self, settings: &Settings) -> ProduceOptions {
        let mut o = ProduceOptions::new(
            self.brokers
                .clone()
                .unwrap_or_else(|| settings.kafka_bootstrap()),
            self.topic
                .clone()
                .unwrap_or_else(|| settings.topics.transaction_log.clone()),
        );
        o.count = self.count;
        o.rate = self.rate;
        o.duration = self.duration;
        o.threads = self.threads;
        o.seed = self.seed.unwrap_or_else(rand::random);
        o.backdate_days = self.backdate_days;
        o.bad_ratio = self.bad_ratio;
        o.key = self.key;
        o
    }
}

pub fn run(args: &ProduceArgs, settings: &Settings) -> Result<()> {
    let options = args.options(settings);
    tracing::info!(
        topic = %options.topic,
        brokers = %options.brokers,
        count = ?options.count,
        rate = ?options.rate,
        duration = ?options.duration,
        threads = options.threads,
        bad_ratio = options.bad_ratio,
        seed = options.seed,
        "producer run starting"
    );
    let run = ProduceRun::start(options)?;
    let interrupted = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&interrupted))?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&interrupted))?;

    let bar = match run.options().count {
        Some(count) => {
            let bar = ProgressBar::new(count);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} delivered  {rate}  eta {eta}  {msg}",
                )
                .expect("valid template")
                .with_key("rate", whole_rate),
            );
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {pos} delivered  {rate}  {elapsed}  {msg}")
                    .expect("valid template")
                    .with_key("rate", whole_rate),
            );
            bar
        }
    };
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let stats = Arc::clone(run.stats());
    while !run.generation_finished() {
        if interrupted.load(Ordering::Relaxed) {
            run.stop_flag().store(true, Ordering::Relaxed);
            bar.set_message("stopping…");
        }
        update(&bar, &stats);
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.set_message("waiting for the last acknowledgements");
    let summary = run.finish();
    tracing::info!(
        enqueued = summary.enqueued,
        delivered = summary.delivered,
        failed = summary.failed,
        undelivered = summary.undelivered,
        resent = summary.resent,
        malformed = summary.malformed,
        elapsed_secs = summary.elapsed_secs,
        "producer run finished"
    );
    bar.set_position(summary.delivered + summary.failed);
    bar.finish_and_clear();
    print_summary(&summary, args.json);
    if summary.failed > 0 || summary.undelivered > 0 {
        bail!(
            "{} records failed and {} were not acknowledged",
            summary.failed,
            summary.undelivered
        );
    }
    Ok(())
}

/// The delivery rate in whole records per second (indicatif's own
/// `{per_sec}` shows four decimals).
fn whole_rate(state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write) {
    let _ = write!(out, "{:.0} records/s", state.per_sec());
}

fn update(bar: &ProgressBar, stats: &lakehouse_producer::ProduceStats) {
    let delivered = stats.delivered.load(Ordering::Relaxed);
    let failed = stats.failed.load(Ordering::Relaxed);
    bar.set_position(delivered + failed);
    if failed > 0 {
        bar.set_message(format!("{failed} failed"));
    }
}

fn print_summary(s: &ProduceSummary, json: bool) {
    if json {
        println!("{}", serde_json::to_string(s).expect("summary serialises"));
        return;
    }
    // The words are the --json summary's names.
    println!(
        "enqueued {} in {:.1}s: delivered {} ({:.0} delivered_per_sec), failed {}, undelivered {}, malformed {} (on purpose), resent {}, seed {}",
        s.enqueued, s.elapsed_secs, s.delivered, s.delivered_per_sec, s.failed, s.undelivered, s.malformed, s.resent, s.seed
    );
    for error in &s.errors {
        println!("  delivery error: {error}");
    }
}
