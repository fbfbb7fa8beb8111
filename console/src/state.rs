//! What `lakectl up` leaves in the state folder for `down` and `status`:
//! an exclusive lock held for the stack's lifetime, and `stack.json`
//! describing what runs where.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

const LOCK_FILE: &str = "lakectl.lock";
const STACK_FILE: &str = "stack.json";

/// One process the stack started.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManagedProcess {
    pub pid: u32,
    pub endpoint: String,
    pub log_file: PathBuf,
}

/// Contents of `stack.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StackFile {
    /// The `lakectl up` process that supervises the stack.
    pub supervisor_pid: u32,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub broker: Option<ManagedProcess>,
    pub postgres: Option<ManagedProcess>,
    /// The stream SQL engine runs inside the supervisor.
    #[serde(default)]
    pub stream_sql: bool,
    /// The topic the stream SQL engine writes its dead letters to.
    #[serde(default)]
    pub stream_sql_dlq: Option<String>,
    /// Whether the lake sink runs inside the supervisor.
    #[serde(default)]
    pub lake_sink: bool,
    /// Whether the table sink runs inside the supervisor.
    #[serde(default)]
    pub table_sink: bool,
    /// URL of the API server, which runs inside the supervisor.
    #[serde(default)]
    pub api: Option<String>,
    /// Whether the demo producer (`lakectl up --demo`) runs inside the supervisor.
    #[serde(default)]
    pub demo_producer: bool,
    /// The stack's Prometheus metrics (`/health` next to it).
    #[serde(default)]
    pub metrics: Option<String>,
}

impl StackFile {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(STACK_FILE)
    }

    /// The stack file if one exists and its supervisor is still alive.
    pub fn read_live(state_dir: &Path) -> Option<StackFile> {
        let text = std::fs::read_to_string(Self::path(state_dir)).ok()?;
        let file: StackFile = serde_json::from_str(&text).ok()?;
        lakehouse::local::process::is_alive(file.supervisor_pid).then_some(file)
    }

    pub fn write(&self, state_dir: &Path) -> Result<()> {
        let path = Self::path(state_dir);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    pub fn remove(state_dir: &Path) {
        let _ = std::fs::remove_file(Self::path(state_dir));
    }
}

/// Held by the `up` process: a second `up` on the same state folder fails
/// fast, and the kernel releases it however the process ends.
pub struct StackLock {
    _lock: Flock<File>,
}

impl StackLock {
    pub fn acquire(state_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("creating the state folder {}", state_dir.display()))?;
        let path = state_dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Self { _lock: lock }),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                let owner = StackFile::read_live(state_dir)
                    .map(|s| format!(" (pid {})", s.supervisor_pid))
                    .unwrap_or_default();
                bail!(
                    "a stack is already running from {}{owner}; `lakectl down` stops it",
                    state_dir.display()
                )
            }
            Err((_, e)) => Err(e).with_context(|| format!("locking {}", path.display())),
        }
    }
}
