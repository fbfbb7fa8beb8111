//! Carries out what the console's `update` asked for, reporting back as
//! actions on the console's channel: a producer run (progress four times a
//! second, then its summary), purge runs and log tails on threads of their
//! own; the log folders' listing (one directory read) in place.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use lakehouse::Settings;
use lakehouse_producer::{ProduceOptions, ProduceRun};
use lakehouse_workers::purge::{self, PurgeArgs};

use super::actions::{Effect, ProducerRequest};
use super::app::Action;

pub struct Runner {
    settings: Settings,
    sender: Sender<Action>,
    /// The running producer's stop flag.
    producer_stop: Option<Arc<AtomicBool>>,
}

impl Runner {
    pub fn new(settings: Settings, sender: Sender<Action>) -> Self {
        Self {
            settings,
            sender,
            producer_stop: None,
        }
    }

    pub fn run(&mut self, effect: Effect) {
        match effect {
            Effect::StartProducer(request) => self.start_producer(request),
            Effect::StopProducer => self.stop(),
            Effect::PurgeDryRun => self.purge(true),
            Effect::Purge => self.purge(false),
            Effect::ListLogs => {
                let folders = super::logs::folders(&self.settings.log_dir);
                let _ = self.sender.send(Action::LogFolders(folders));
            }
            Effect::ListLakeFiles(stream, date) => {
                let (root, sender) = (self.settings.data_lake_dir.clone(), self.sender.clone());
                std::thread::Builder::new()
                    .name("console-lake-files".into())
                    .spawn(move || {
                        let files = super::lake_files::list(&root, &stream, date);
                        let _ = sender.send(Action::LakeFiles(stream, date, files));
                    })
                    .expect("spawn the console's lake lister");
            }
            Effect::TailLog(component) => {
                let (dir, sender) = (self.settings.log_dir.clone(), self.sender.clone());
                std::thread::Builder::new()
                    .name("console-log-tail".into())
                    .spawn(move || {
                        let lines = super::logs::tail(&dir, &component, super::logs::TAIL_LINES);
                        let _ = sender.send(Action::LogTail(component, lines));
                    })
                    .expect("spawn the console's log reader");
            }
        }
    }

    /// Stops what runs (the producer), e.g. when the console closes.
    pub fn stop(&mut self) {
        if let Some(stop) = &self.producer_stop {
            stop.store(true, Ordering::Relaxed);
        }
    }

    fn start_producer(&mut self, request: ProducerRequest) {
        let mut options = ProduceOptions::new(
            self.settings.kafka_bootstrap(),
            self.settings.topics.transaction_log.clone(),
        );
        options.count = Some(request.count);
        options.rate = request.rate;
        options.bad_ratio = request.bad_ratio;
        options.seed = rand::random();
        let stop = Arc::new(AtomicBool::new(false));
        self.producer_stop = Some(Arc::clone(&stop));
        let sender = self.sender.clone();
        std::thread::Builder::new()
            .name("console-producer".into())
            .spawn(move || {
                let run = match ProduceRun::start(options) {
                    Ok(run) => run,
                    Err(e) => {
                        let _ = sender.send(Action::ProducerDone(format!("could not start: {e}")));
                        return;
                    }
                };
                let stats = Arc::clone(run.stats());
                let progress = || {
                    Action::ProducerProgress(
                        stats.delivered.load(Ordering::Relaxed),
                        stats.failed.load(Ordering::Relaxed),
                    )
                };
                while !run.generation_finished() {
                    if stop.load(Ordering::Relaxed) {
                        run.stop_flag().store(true, Ordering::Relaxed);
                    }
                    let _ = sender.send(progress());
                    std::thread::sleep(Duration::from_millis(250));
                }
                let summary = run.finish();
                let _ = sender.send(Action::ProducerProgress(summary.delivered, summary.failed));
                let _ = sender.send(Action::ProducerDone(format!(
                    "{} delivered, {} failed, {} malformed on purpose, {:.0}/s",
                    summary.delivered, summary.failed, summary.malformed, summary.delivered_per_sec
                )));
            })
            .expect("spawn the console's producer");
    }

    fn purge(&self, dry_run: bool) {
        let (lake, logs, sender) = (
            self.settings.data_lake_dir.clone(),
            self.settings.log_dir.clone(),
            self.sender.clone(),
        );
        std::thread::Builder::new()
            .name("console-purge".into())
            .spawn(move || {
                let result = PurgeArgs::from_env()
                    .policy()
                    .map_err(|e| e.to_string())
                    .and_then(|policy| {
                        purge::run_and_record(&lake, &logs, &policy, dry_run)
                            .map_err(|e| e.to_string())
                    });
                let action = match (dry_run, result) {
                    (true, Ok(report)) => {
                        Action::PurgePlanned(Ok((purge::render(&report), report.partitions.len())))
                    }
                    (true, Err(e)) => Action::PurgePlanned(Err(e)),
                    (false, result) => Action::Purged(result.map(|r| purge::render(&r))),
                };
                let _ = sender.send(action);
            })
            .expect("spawn the console's purge");
    }
}
