//! One registry of every worker's live state and counters: the supervisor
//! writes each component's state (running, restarting with its attempt and
//! last error, failed), the workers' own stats feed the counters, and a
//! snapshot is what `lakectl status`, the console and the API read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A worker's counters at one moment, summed over its restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Records read from its input.
    pub records_in: u64,
    /// Records (rows, output records) it wrote.
    pub records_out: u64,
    /// Bytes it wrote, where it knows them.
    pub bytes_out: u64,
    /// Records it dead-lettered.
    pub dead_letters: u64,
    /// Consumers: records in its assigned partitions not yet landed and
    /// committed (high watermark minus committed offset, from the client's
    /// statistics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<i64>,
    /// Sinks: age of the newest record of the last durable write (its
    /// record timestamp to the moment it was durable), milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<i64>,
    /// Sinks: the 95th percentile of every record's landing latency (record
    /// timestamp to durable) over the last minute, milliseconds, to the
    /// upper bound of its histogram bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p95_ms: Option<i64>,
}

/// Reads a worker's counters from its own stats.
pub type CounterSource = Arc<dyn Fn() -> Counters + Send + Sync>;

/// Where a supervised component stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ComponentState {
    Starting,
    Running {
        since: DateTime<Utc>,
    },
    /// Failed with an error worth waiting out; started again at `next_attempt_at`.
    Restarting {
        attempt: u32,
        next_attempt_at: DateTime<Utc>,
    },
    /// Stopped by an error no restart can fix; the rest of the stack goes on.
    Failed {
        since: DateTime<Utc>,
    },
    Stopped,
}

/// What the registry says of one component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentSnapshot {
    pub name: String,
    #[serde(flatten)]
    pub state: ComponentState,
    /// Restarts since the stack started.
    pub restarts: u32,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub counters: Counters,
}

struct Entry {
    state: ComponentState,
    restarts: u32,
    last_error: Option<(DateTime<Utc>, String)>,
    counters: Option<CounterSource>,
}

/// The registry, shared by the supervisor and whoever reports on it.
#[derive(Default, Clone)]
pub struct Registry {
    entries: Arc<Mutex<BTreeMap<String, Entry>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.snapshot()).finish()
    }
}

impl Registry {
    fn with<R>(&self, name: &str, f: impl FnOnce(&mut Entry) -> R) -> R {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.entry(name.to_string()).or_insert_with(|| Entry {
            state: ComponentState::Starting,
            restarts: 0,
            last_error: None,
            counters: None,
        });
        f(entry)
    }

    /// Adds a component, with where its counters come from.
    pub fn register(&self, name: &str, counters: Option<CounterSource>) {
        self.with(name, |e| e.counters = counters);
    }

    pub fn set_state(&self, name: &str, state: ComponentState) {
        self.with(name, |e| e.state = state);
    }

    pub fn record_error(&self, name: &str, error: &str) {
        self.with(name, |e| {
            e.last_error = Some((Utc::now(), error.to_string()))
        });
    }

    /// Records that `name` failed with `error` and starts again, attempt
    /// `attempt`, after `delay`.
    pub fn restarting(&self, name: &str, error: &str, attempt: u32, delay: std::time::Duration) {
        self.record_error(name, error);
        self.set_state(
            name,
            ComponentState::Restarting {
                attempt,
                next_attempt_at: Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default(),
            },
        );
    }

    pub fn count_restart(&self, name: &str) {
        self.with(name, |e| e.restarts += 1);
    }

    pub fn get(&self, name: &str) -> Option<ComponentSnapshot> {
        self.snapshot().into_iter().find(|c| c.name == name)
    }

    /// Every component, by name.
    pub fn snapshot(&self) -> Vec<ComponentSnapshot> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .map(|(name, e)| ComponentSnapshot {
                name: name.clone(),
                state: e.state.clone(),
                restarts: e.restarts,
                last_error: e.last_error.as_ref().map(|(_, m)| m.clone()),
                last_error_at: e.last_error.as_ref().map(|(t, _)| *t),
                counters: e.counters.as_ref().map(|c| c()).unwrap_or_default(),
            })
            .collect()
    }

    /// Writes the snapshot to `path` (written aside, then renamed), for
    /// readers in other processes.
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        let snapshot = RegistryFile {
            written_at: Utc::now(),
            components: self.snapshot(),
        };
        let json = serde_json::to_vec_pretty(&snapshot).map_err(std::io::Error::other)?;
        let aside = path.with_extension("json.tmp");
        std::fs::write(&aside, json)?;
        std::fs::rename(&aside, path)
    }
}

/// The registry as written to disk by a running stack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistryFile {
    pub written_at: DateTime<Utc>,
    pub components: Vec<ComponentSnapshot>,
}

impl RegistryFile {
    /// Where a stack with state folder `state_dir` writes it.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("components.json")
    }

    pub fn read(state_dir: &Path) -> Option<RegistryFile> {
        let bytes = std::fs::read(Self::path(state_dir)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_carry_state_errors_restarts_and_counters() {
        let registry = Registry::default();
        let stats = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let source = Arc::clone(&stats);
        registry.register(
            "lake-sink",
            Some(Arc::new(move || Counters {
                records_in: source.load(std::sync::atomic::Ordering::Relaxed),
                ..Counters::default()
            })),
        );
        stats.store(42, std::sync::atomic::Ordering::Relaxed);
        registry.record_error("lake-sink", "broker timed out");
        registry.count_restart("lake-sink");
        let next = Utc::now();
        registry.set_state(
            "lake-sink",
            ComponentState::Restarting {
                attempt: 1,
                next_attempt_at: next,
            },
        );
        let snapshot = registry.get("lake-sink").unwrap();
        assert_eq!(snapshot.counters.records_in, 42);
        assert_eq!(snapshot.restarts, 1);
        assert_eq!(snapshot.last_error.as_deref(), Some("broker timed out"));

        let dir = tempfile::tempdir().unwrap();
        registry.write_to(&RegistryFile::path(dir.path())).unwrap();
        let read = RegistryFile::read(dir.path()).unwrap();
        assert_eq!(read.components, vec![snapshot]);
        let json = std::fs::read_to_string(RegistryFile::path(dir.path())).unwrap();
        assert!(json.contains("\"state\": \"restarting\""), "{json}");
    }
}
