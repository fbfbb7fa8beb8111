//! The local Kafka-compatible broker: Tansu with SQLite storage.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::broker_storage;
use super::process::Supervised;
use super::{ports, LocalError};
use crate::kafka;

/// Where and how to run the broker.
#[derive(Debug, Clone)]
pub struct BrokerSpec {
    pub binary: PathBuf,
    /// Holds `tansu.db`, the broker's SQLite storage.
    pub data_dir: PathBuf,
    pub port: u16,
    pub log_file: PathBuf,
    pub ready_timeout: Duration,
}

/// A running broker.
#[derive(Debug)]
pub struct LocalBroker {
    spec: BrokerSpec,
    process: Supervised,
}

impl LocalBroker {
    /// Starts the broker and waits until it answers metadata requests.
    pub fn start(spec: BrokerSpec) -> Result<Self, LocalError> {
        if !ports::is_free(spec.port) {
            return Err(LocalError::PortTaken {
                component: "broker",
                port: spec.port,
                hint: "--kafka-port / LAKEHOUSE_KAFKA_PORT / kafka.port",
            });
        }
        std::fs::create_dir_all(&spec.data_dir).map_err(LocalError::io(format!(
            "creating {}",
            spec.data_dir.display()
        )))?;
        let process = Self::spawn(&spec)?;
        let mut broker = Self { spec, process };
        broker.wait_ready()?;
        broker.index_storage()?;
        Ok(broker)
    }

    fn spawn(spec: &BrokerSpec) -> Result<Supervised, LocalError> {
        let listener = format!("tcp://127.0.0.1:{}", spec.port);
        let mut cmd = Command::new(&spec.binary);
        cmd.arg("broker")
            .args(["--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            // Tansu resolves a sqlite:// URL against its working directory.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&spec.data_dir)
            .env_remove("STORAGE_ENGINE")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env(
                "RUST_LOG",
                std::env::var("LAKEHOUSE_BROKER_LOG").unwrap_or_else(|_| "warn".into()),
            );
        Supervised::spawn("broker", cmd, &spec.log_file, Signal::SIGTERM, None)
    }

    fn wait_ready(&mut self) -> Result<(), LocalError> {
        let started = Instant::now();
        let bootstrap = self.bootstrap();
        while started.elapsed() < self.spec.ready_timeout {
            if let Some(status) = self.process.exited() {
                return Err(self.process.start_failed(format!("exited with {status}")));
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.spec.port)).is_ok() {
                let remaining = self.spec.ready_timeout.saturating_sub(started.elapsed());
                return kafka::wait_until_ready(&bootstrap, remaining.max(Duration::from_secs(1)))
                    .map_err(|e| {
                        self.process.stop(Duration::from_secs(5));
                        self.process.start_failed(e.to_string())
                    });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.process.stop(Duration::from_secs(5));
        Err(self.process.start_failed(format!(
            "not listening on port {} after {:?}",
            self.spec.port, self.spec.ready_timeout
        )))
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.spec.port)
    }

    pub fn port(&self) -> u16 {
        self.spec.port
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn data_dir(&self) -> &Path {
        &self.spec.data_dir
    }

    pub fn log_file(&self) -> &Path {
        self.process.log_file()
    }

    /// The exit status if the broker has died.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.process.exited()
    }

    /// Stops the broker gracefully.
    pub fn stop(&mut self) {
        self.process.stop(Duration::from_secs(20));
    }

    /// Kills the broker with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the broker again on the same port and storage after a stop or a kill.
    pub fn restart(&mut self) -> Result<(), LocalError> {
        self.process.stop(Duration::from_secs(20));
        let started = Instant::now();
        while !ports::is_free(self.spec.port) && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.process = Self::spawn(&self.spec)?;
        self.wait_ready()?;
        self.index_storage()
    }

    /// The broker's SQLite file.
    pub fn database(&self) -> PathBuf {
        self.spec.data_dir.join("tansu.db")
    }

    /// Adds the indexes Tansu's schema lacks (`broker_storage`), idempotently.
    fn index_storage(&mut self) -> Result<(), LocalError> {
        match broker_storage::ensure_indexes(&self.database(), self.spec.ready_timeout) {
            Ok(created) => {
                for name in created {
                    tracing::info!("broker storage: created index {name}");
                }
                Ok(())
            }
            Err(e) => {
                self.process.stop(Duration::from_secs(5));
                Err(self.process.start_failed(e.to_string()))
            }
        }
    }
}
