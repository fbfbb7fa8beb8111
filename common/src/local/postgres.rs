//! A private PostgreSQL cluster built from the machine's server binaries.
//!
//! Layout of its folder: `data/` (the cluster, owned by the server's
//! account), `run/` (the Unix socket), `password` (the superuser's password,
//! readable by the stack's owner only).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rand::distributions::{Alphanumeric, DistString};

use super::process::{run_to_completion, RunAs, Supervised};
use super::{ports, LocalError};

/// Superuser created by `initdb`.
pub const SUPERUSER: &str = "lakehouse";

#[derive(Debug, Clone)]
pub struct PostgresSpec {
    pub bin_dir: PathBuf,
    /// Folder holding `data/`, `run/` and `password`.
    pub dir: PathBuf,
    pub port: u16,
    pub log_file: PathBuf,
    /// `false` turns off fsync: for throw-away test clusters only, it keeps
    /// everything safe against process crashes but not against power loss.
    pub durable: bool,
    pub ready_timeout: Duration,
}

#[derive(Debug)]
pub struct LocalPostgres {
    spec: PostgresSpec,
    run_as: Option<RunAs>,
    password: String,
    process: Supervised,
}

impl LocalPostgres {
    /// Creates the cluster on first use, starts the server and waits until
    /// it accepts connections.
    pub fn start(mut spec: PostgresSpec) -> Result<Self, LocalError> {
        if !ports::is_free(spec.port) {
            return Err(LocalError::PortTaken {
                component: "postgres",
                port: spec.port,
                hint: "--postgres-port / LAKEHOUSE_POSTGRES_PORT / postgres.port",
            });
        }
        spec.dir = std::path::absolute(&spec.dir)
            .map_err(LocalError::io("resolving the PostgreSQL folder"))?;
        let run_as = RunAs::for_postgres()?;
        let password = init_if_needed(&spec, run_as.as_ref())?;
        let process = spawn(&spec, run_as.as_ref())?;
        let mut server = Self {
            spec,
            run_as,
            password,
            process,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<(), LocalError> {
        let started = Instant::now();
        while started.elapsed() < self.spec.ready_timeout {
            if let Some(status) = self.process.exited() {
                return Err(self.process.start_failed(format!("exited with {status}")));
            }
            let ready = Command::new(self.spec.bin_dir.join("pg_isready"))
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.spec.port.to_string(),
                    "-t",
                    "1",
                ])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.process.stop(Duration::from_secs(10));
        Err(self.process.start_failed(format!(
            "not accepting connections on port {} after {:?}",
            self.spec.port, self.spec.ready_timeout
        )))
    }

    /// URL of `database` as the superuser.
    pub fn url(&self, database: &str) -> String {
        url_for(&self.password, self.spec.port, database)
    }

    pub fn port(&self) -> u16 {
        self.spec.port
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn log_file(&self) -> &Path {
        self.process.log_file()
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.process.exited()
    }

    /// Fast shutdown: open transactions are rolled back, the rest is kept.
    pub fn stop(&mut self) {
        self.process.stop(Duration::from_secs(30));
    }

    /// Kills the postmaster with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        self.process.kill();
        // Orphaned backends keep the shared memory segment; they exit on their own
        // once they notice the postmaster is gone, which a restart waits for.
    }

    /// Starts the server again after a stop or a kill; a killed server runs crash recovery.
    pub fn restart(&mut self) -> Result<(), LocalError> {
        self.process.stop(Duration::from_secs(30));
        let started = Instant::now();
        while !ports::is_free(self.spec.port) && started.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.process = spawn(&self.spec, self.run_as.as_ref())?;
        self.wait_ready()
    }
}

/// URL of a database in a local cluster whose superuser password is `password`.
fn url_for(password: &str, port: u16, database: &str) -> String {
    format!("postgres://{SUPERUSER}:{password}@127.0.0.1:{port}/{database}")
}

/// URL of a database in the local cluster kept in `dir`, for clients of a
/// running stack; `None` before the cluster has been created.
pub fn local_url(dir: &Path, port: u16, database: &str) -> Option<String> {
    let password = std::fs::read_to_string(dir.join("password")).ok()?;
    Some(url_for(password.trim(), port, database))
}

fn init_if_needed(spec: &PostgresSpec, run_as: Option<&RunAs>) -> Result<String, LocalError> {
    let data = spec.dir.join("data");
    let password_file = spec.dir.join("password");
    let run_dir = spec.dir.join("run");
    for dir in [&spec.dir, &run_dir] {
        std::fs::create_dir_all(dir)
            .map_err(LocalError::io(format!("creating {}", dir.display())))?;
    }
    if let Some(user) = run_as {
        user.ensure_traversable(&spec.dir)?;
        user.chown(&run_dir)?;
    }
    std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(LocalError::io("securing the socket folder"))?;

    if data.join("PG_VERSION").is_file() {
        return std::fs::read_to_string(&password_file)
            .map(|p| p.trim().to_string())
            .map_err(|e| LocalError::StartFailed {
                component: "postgres",
                reason: format!(
                    "the cluster in {} exists but its password file is unreadable ({e}); \
                     remove {} to start over",
                    data.display(),
                    spec.dir.display()
                ),
                log: spec.log_file.clone(),
                log_tail: String::new(),
            });
    }

    // A half-finished initdb leaves a non-empty folder without PG_VERSION.
    if data.exists() {
        std::fs::remove_dir_all(&data)
            .map_err(LocalError::io(format!("removing {}", data.display())))?;
    }
    std::fs::create_dir_all(&data)
        .map_err(LocalError::io(format!("creating {}", data.display())))?;
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
        .map_err(LocalError::io("securing the data folder"))?;
    let password = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
    let pwfile = spec.dir.join("initdb.pw");
    std::fs::write(&pwfile, &password)
        .map_err(LocalError::io("writing the initdb password file"))?;
    std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o600))
        .map_err(LocalError::io("securing the initdb password file"))?;
    if let Some(user) = run_as {
        user.chown(&data)?;
        user.chown(&pwfile)?;
    }
    let mut initdb = Command::new(spec.bin_dir.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", SUPERUSER, "-E", "UTF8", "--no-locale"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .args(["--auth-host=scram-sha-256", "--auth-local=trust"])
        .current_dir(&spec.dir);
    if !spec.durable {
        initdb.arg("--no-sync");
    }
    let outcome = run_to_completion(initdb, run_as, "initdb");
    let _ = std::fs::remove_file(&pwfile);
    outcome.map_err(|reason| LocalError::StartFailed {
        component: "postgres",
        reason,
        log: spec.log_file.clone(),
        log_tail: String::new(),
    })?;
    std::fs::write(&password_file, &password)
        .map_err(LocalError::io("writing the password file"))?;
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600))
        .map_err(LocalError::io("securing the password file"))?;
    Ok(password)
}

fn spawn(spec: &PostgresSpec, run_as: Option<&RunAs>) -> Result<Supervised, LocalError> {
    let mut cmd = Command::new(spec.bin_dir.join("postgres"));
    cmd.arg("-D")
        .arg(spec.dir.join("data"))
        .args(["-p", &spec.port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1"])
        .arg("-c")
        .arg(format!(
            "unix_socket_directories={}",
            spec.dir.join("run").display()
        ))
        .args(["-c", "max_connections=200"])
        .current_dir(&spec.dir);
    if !spec.durable {
        cmd.args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
    }
    // SIGINT is PostgreSQL's fast shutdown, also sent if our process dies.
    Supervised::spawn("postgres", cmd, &spec.log_file, Signal::SIGINT, run_as)
}
