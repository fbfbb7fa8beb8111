//! Supervised child processes.
//!
//! Each child gets a parent-death signal, so that a supervisor killed with
//! kill -9 (or a test process that panics) never leaves a broker or a
//! PostgreSQL server running. The signal is tied to the *thread* that
//! spawned the child: spawn from a thread that lives as long as the child
//! should (the main thread, or a dedicated one).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{Gid, Pid, Uid, User};

use super::LocalError;

/// An unprivileged account to run a server under when we are root
/// (PostgreSQL refuses to run as root).
#[derive(Debug, Clone)]
pub struct RunAs {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
}

impl RunAs {
    /// `Some(postgres account)` when running as root, `None` otherwise.
    pub fn for_postgres() -> Result<Option<RunAs>, LocalError> {
        if !Uid::effective().is_root() {
            return Ok(None);
        }
        let user = User::from_name("postgres")
            .map_err(|e| LocalError::io("looking up the postgres account")(e.into()))?
            .ok_or_else(|| LocalError::MissingTool {
                what: "an unprivileged 'postgres' account (PostgreSQL refuses to run as root)".into(),
                hint: "Install Debian's postgresql-15 package, which creates it, or run as a non-root user.".into(),
            })?;
        Ok(Some(RunAs {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
        }))
    }

    /// Gives the account ownership of `path`.
    pub fn chown(&self, path: &Path) -> Result<(), LocalError> {
        std::os::unix::fs::chown(path, Some(self.uid.as_raw()), Some(self.gid.as_raw())).map_err(
            LocalError::io(format!("chown {} to {}", path.display(), self.name)),
        )
    }

    /// Makes every ancestor of `path` traversable (o+x) so the account can
    /// reach a folder inside a root-only directory such as a `mktemp -d`.
    pub fn ensure_traversable(&self, path: &Path) -> Result<(), LocalError> {
        use std::os::unix::fs::PermissionsExt;
        let absolute = std::path::absolute(path).map_err(LocalError::io("resolving a path"))?;
        for ancestor in absolute.ancestors().skip(1) {
            let Ok(meta) = std::fs::metadata(ancestor) else {
                continue;
            };
            let mode = meta.permissions().mode();
            if mode & 0o001 == 0 {
                tracing::warn!(
                    "making {} traversable (o+x) so that the {} account can reach its data",
                    ancestor.display(),
                    self.name
                );
                std::fs::set_permissions(ancestor, std::fs::Permissions::from_mode(mode | 0o001))
                    .map_err(LocalError::io(format!("chmod o+x {}", ancestor.display())))?;
            }
        }
        Ok(())
    }
}

/// Runs a command to completion as `run_as`, returning its combined output on failure.
pub fn run_to_completion(
    mut cmd: Command,
    run_as: Option<&RunAs>,
    what: &str,
) -> Result<(), String> {
    if let Some(user) = run_as {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A running child process with its log file.
#[derive(Debug)]
pub struct Supervised {
    name: &'static str,
    child: Child,
    log_file: PathBuf,
    stop_signal: Signal,
}

impl Supervised {
    /// Starts `cmd` with stdout and stderr appended to `log_file`.
    pub fn spawn(
        name: &'static str,
        mut cmd: Command,
        log_file: &Path,
        stop_signal: Signal,
        run_as: Option<&RunAs>,
    ) -> Result<Self, LocalError> {
        if let Some(parent) = log_file.parent() {
            std::fs::create_dir_all(parent)
                .map_err(LocalError::io(format!("creating {}", parent.display())))?;
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_file)
            .map_err(LocalError::io(format!("opening {}", log_file.display())))?;
        let log_err = log
            .try_clone()
            .map_err(LocalError::io("duplicating a log handle"))?;
        if let Some(user) = run_as {
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        let death_signal = stop_signal;
        // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(death_signal).map_err(std::io::Error::from)
            });
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(LocalError::io(format!("starting {name}")))?;
        Ok(Self {
            name,
            child,
            log_file: log_file.to_path_buf(),
            stop_signal,
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// The exit status when the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Asks the process to stop, then kills it if it has not stopped within `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, self.stop_signal);
        let started = Instant::now();
        while started.elapsed() < grace {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::warn!("{} did not stop within {grace:?}; killing it", self.name);
        self.kill();
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last `lines` lines of the log file, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_of_file(&self.log_file, lines)
    }

    /// An error for a start that went wrong, with the log's tail.
    pub fn start_failed(&self, reason: impl Into<String>) -> LocalError {
        LocalError::StartFailed {
            component: self.name,
            reason: reason.into(),
            log: self.log_file.clone(),
            log_tail: self.log_tail(20),
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(20));
    }
}

/// The last `lines` lines of a text file (reads at most its last 64 KiB).
pub fn tail_of_file(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    let mut buf = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// True when a process with this pid exists and has not exited. A zombie
/// (exited, not yet reaped by its parent) counts as gone.
pub fn is_alive(pid: u32) -> bool {
    if kill(Pid::from_raw(pid as i32), None).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may contain spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z"),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_is_not_alive() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        std::thread::sleep(Duration::from_millis(200)); // exited, not reaped
        assert!(!is_alive(pid));
        child.wait().unwrap();
        assert!(is_alive(std::process::id()));
    }
}
