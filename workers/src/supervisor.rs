//! Keeps workers running: a worker that fails because a dependency is slow
//! or away (the broker timing out, PostgreSQL restarting) is started again
//! with exponential backoff, for as long as it takes; only a failure no
//! restart can fix (a schema conflict, a checkpoint that does not fit the
//! statement file) stops that one worker, with its message, while the
//! others go on. Every state change goes to the [`Registry`].
//!
//! `lakectl up` supervises every worker on threads of its own process; each
//! worker binary supervises its one worker the same way ([`run_one`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::registry::{ComponentState, CounterSource, Registry};

/// Why a worker stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub message: String,
    /// No restart can fix it: the worker stays stopped.
    pub permanent: bool,
}

impl Failure {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }
}

/// A worker's body: runs until `stop` is raised (then returns `Ok`) or it fails.
pub type JobBody = dyn Fn(&AtomicBool) -> Result<(), Failure> + Send + Sync;

/// A worker, built from its settings (`crate::jobs`), ready to be run.
#[derive(Clone)]
pub struct Job {
    pub name: &'static str,
    /// One line saying what it does, for the start-up summary.
    pub summary: String,
    pub body: Arc<JobBody>,
    pub counters: Option<CounterSource>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.name)
            .field("summary", &self.summary)
            .finish()
    }
}

/// How long to wait before each restart.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// A run this long counts as healthy: the next failure starts the delays over.
    pub healthy_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            healthy_after: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay before restart number `attempt` (from 1): doubling, capped.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// Restart bookkeeping for one component (a worker thread or a child process).
#[derive(Debug, Clone, Default)]
pub struct RestartSchedule {
    /// Consecutive failures.
    pub attempt: u32,
    started_at: Option<Instant>,
    next_start: Option<Instant>,
}

impl RestartSchedule {
    /// Marks a start now.
    pub fn started(&mut self, now: Instant) {
        self.started_at = Some(now);
        self.next_start = None;
    }

    /// Records a failure at `now` and returns the delay before the next start.
    pub fn failed(&mut self, now: Instant, backoff: &Backoff) -> Duration {
        let healthy = self
            .started_at
            .is_some_and(|t| now.duration_since(t) >= backoff.healthy_after);
        self.attempt = if healthy { 1 } else { self.attempt + 1 };
        let delay = backoff.delay(self.attempt);
        self.next_start = Some(now + delay);
        delay
    }

    /// Whether a restart is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.next_start.is_some_and(|t| now >= t)
    }

    /// Whether a failure was recorded and its restart has not happened yet.
    pub fn is_pending(&self) -> bool {
        self.next_start.is_some()
    }
}

struct Supervised {
    job: Job,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), Failure>>>,
    schedule: RestartSchedule,
    failed: bool,
}

impl Supervised {
    fn spawn(&mut self, registry: &Registry) {
        let (body, stop) = (Arc::clone(&self.job.body), Arc::clone(&self.stop));
        let name = self.job.name;
        self.thread = Some(
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    lakehouse::logging::set_thread_component(name);
                    body(&stop)
                })
                .expect("spawn a worker thread"),
        );
        self.schedule.started(Instant::now());
        registry.set_state(self.job.name, ComponentState::Running { since: Utc::now() });
    }

    /// The failure of a worker whose thread has ended.
    fn ended(&mut self) -> Option<Failure> {
        if !self.thread.as_ref().is_some_and(JoinHandle::is_finished) {
            return None;
        }
        Some(match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(failure))) => failure,
            Some(Err(_)) => Failure::transient("it panicked"),
            _ => Failure::transient("it stopped on its own"),
        })
    }
}

/// Workers on threads of this process, kept running.
pub struct Supervisor {
    workers: Vec<Supervised>,
    registry: Registry,
    backoff: Backoff,
}

impl Supervisor {
    pub fn new(registry: Registry, backoff: Backoff) -> Self {
        Self {
            workers: Vec::new(),
            registry,
            backoff,
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Starts a job and keeps it running.
    pub fn start(&mut self, job: Job) {
        self.registry.register(job.name, job.counters.clone());
        let mut worker = Supervised {
            job,
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
            schedule: RestartSchedule::default(),
            failed: false,
        };
        worker.spawn(&self.registry);
        self.workers.push(worker);
    }

    /// Stops the worker of `job`'s name (it finishes what it holds) and
    /// runs `job` in its place; starts it if there was none.
    pub fn replace(&mut self, job: Job) {
        let Some(worker) = self.workers.iter_mut().find(|w| w.job.name == job.name) else {
            return self.start(job);
        };
        worker.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = worker.thread.take() {
            let _ = thread.join();
        }
        self.registry.register(job.name, job.counters.clone());
        worker.job = job;
        worker.stop = Arc::new(AtomicBool::new(false));
        worker.schedule = RestartSchedule::default();
        worker.failed = false;
        worker.spawn(&self.registry);
    }

    pub fn has(&self, name: &str) -> bool {
        self.workers.iter().any(|w| w.job.name == name)
    }

    /// Notices workers that ended, schedules their restarts, and starts those
    /// that are due. Call it often (every few hundred milliseconds).
    pub fn check(&mut self) {
        let now = Instant::now();
        for worker in &mut self.workers {
            let name = worker.job.name;
            if let Some(failure) = worker.ended() {
                if failure.permanent {
                    tracing::error!(component = name, error = %failure, "stopped and will not be restarted");
                    worker.failed = true;
                    self.registry.record_error(name, &failure.message);
                    self.registry
                        .set_state(name, ComponentState::Failed { since: Utc::now() });
                } else {
                    let delay = worker.schedule.failed(now, &self.backoff);
                    let attempt = worker.schedule.attempt;
                    tracing::warn!(component = name, error = %failure, attempt, delay_ms = delay.as_millis() as u64, "failed; restarting with backoff");
                    self.registry
                        .restarting(name, &failure.message, attempt, delay);
                }
            }
            if worker.thread.is_none() && !worker.failed && worker.schedule.due(now) {
                tracing::info!(component = name, "restarting from its durable position");
                self.registry.count_restart(name);
                worker.spawn(&self.registry);
            }
        }
    }

    /// Stops every worker, last started first; each finishes what it holds.
    pub fn stop_all(&mut self, on_stopped: &mut dyn FnMut(&str)) {
        for worker in &self.workers {
            worker.stop.store(true, Ordering::Relaxed);
        }
        while let Some(mut worker) = self.workers.pop() {
            if let Some(thread) = worker.thread.take() {
                let _ = thread.join();
            }
            self.registry
                .set_state(worker.job.name, ComponentState::Stopped);
            on_stopped(worker.job.name);
        }
    }
}

/// Runs one job on this thread until `stop` is raised, restarting it after
/// transient failures as [`Supervisor`] does; returns a permanent failure.
pub fn run_one(
    job: &Job,
    stop: &AtomicBool,
    backoff: &Backoff,
    registry: &Registry,
) -> Result<(), Failure> {
    registry.register(job.name, job.counters.clone());
    let mut schedule = RestartSchedule::default();
    loop {
        schedule.started(Instant::now());
        registry.set_state(job.name, ComponentState::Running { since: Utc::now() });
        let failure = match (job.body)(stop) {
            Ok(()) if stop.load(Ordering::Relaxed) => {
                registry.set_state(job.name, ComponentState::Stopped);
                return Ok(());
            }
            Ok(()) => Failure::transient("it stopped on its own"),
            Err(failure) => failure,
        };
        registry.record_error(job.name, &failure.message);
        if failure.permanent || stop.load(Ordering::Relaxed) {
            registry.set_state(job.name, ComponentState::Failed { since: Utc::now() });
            return Err(failure);
        }
        let delay = schedule.failed(Instant::now(), backoff);
        tracing::warn!(
            "{} failed ({failure}); restart {} in {delay:?}",
            job.name,
            schedule.attempt
        );
        let until = Instant::now() + delay;
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        registry.count_restart(job.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn quick() -> Backoff {
        Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(40),
            healthy_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let backoff = Backoff::default();
        let delays: Vec<u64> = (1..=7).map(|a| backoff.delay(a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff.delay(1000), Duration::from_secs(30));
    }

    #[test]
    fn a_healthy_run_starts_the_delays_over() {
        let backoff = Backoff::default();
        let mut schedule = RestartSchedule::default();
        let t0 = Instant::now();
        schedule.started(t0);
        assert_eq!(schedule.failed(t0, &backoff), Duration::from_secs(1));
        schedule.started(t0);
        assert_eq!(schedule.failed(t0, &backoff), Duration::from_secs(2));
        schedule.started(t0);
        let later = t0 + Duration::from_secs(120);
        assert_eq!(schedule.failed(later, &backoff), Duration::from_secs(1));
        assert!(!schedule.due(later) && schedule.due(later + Duration::from_secs(1)));
    }

    fn job(
        name: &'static str,
        body: impl Fn(&AtomicBool) -> Result<(), Failure> + Send + Sync + 'static,
    ) -> Job {
        Job {
            name,
            summary: String::new(),
            body: Arc::new(body),
            counters: None,
        }
    }

    #[test]
    fn transient_failures_are_restarted_and_a_permanent_one_stops_only_its_worker() {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&runs);
        let flaky = job("flaky", move |stop| {
            if counted.fetch_add(1, Ordering::SeqCst) < 3 {
                return Err(Failure::transient("broker timed out"));
            }
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(())
        });
        let broken = job("broken", |_| Err(Failure::permanent("schema conflict")));
        let mut supervisor = Supervisor::new(Registry::default(), quick());
        supervisor.start(flaky);
        supervisor.start(broken);
        let deadline = Instant::now() + Duration::from_secs(10);
        while runs.load(Ordering::SeqCst) < 4 && Instant::now() < deadline {
            supervisor.check();
            std::thread::sleep(Duration::from_millis(5));
        }
        supervisor.check();
        let registry = supervisor.registry().clone();
        let flaky = registry.get("flaky").unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        assert_eq!(flaky.restarts, 3);
        assert!(
            matches!(flaky.state, ComponentState::Running { .. }),
            "{flaky:?}"
        );
        assert_eq!(flaky.last_error.as_deref(), Some("broker timed out"));
        let broken = registry.get("broken").unwrap();
        assert!(
            matches!(broken.state, ComponentState::Failed { .. }),
            "{broken:?}"
        );
        assert_eq!(broken.restarts, 0);
        let mut stopped = Vec::new();
        supervisor.stop_all(&mut |name| stopped.push(name.to_string()));
        assert_eq!(stopped, ["broken", "flaky"]);
        assert!(matches!(
            registry.get("flaky").unwrap().state,
            ComponentState::Stopped
        ));
    }

    #[test]
    fn run_one_waits_out_transient_failures_and_returns_a_permanent_one() {
        let runs = AtomicU32::new(0);
        let registry = Registry::default();
        let stop = AtomicBool::new(false);
        let flaky_then_broken = Job {
            name: "w",
            summary: String::new(),
            body: Arc::new(move |_: &AtomicBool| {
                if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(Failure::transient("slow"))
                } else {
                    Err(Failure::permanent("bad file"))
                }
            }),
            counters: None,
        };
        let result = run_one(&flaky_then_broken, &stop, &quick(), &registry);
        assert_eq!(result, Err(Failure::permanent("bad file")));
        assert_eq!(registry.get("w").unwrap().restarts, 2);
    }
}
