//! A private lakehouse project for tests: the real `lakectl` binary on free
//! ports with its own state folder.
#![allow(dead_code)]

pub mod terminal;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lakehouse::local::ports;
use lakehouse_testkit::ScratchDir;
use serde_json::Value;

pub struct Project {
    pub dir: ScratchDir,
    pub kafka_port: u16,
    pub postgres_port: u16,
    pub api_port: u16,
    pub metrics_port: u16,
    /// Extra environment for every lakectl call (e.g. external services).
    pub env: Vec<(&'static str, String)>,
}

impl Project {
    pub fn new(name: &str) -> Self {
        Self {
            dir: ScratchDir::new(name),
            kafka_port: ports::free_port(),
            postgres_port: ports::free_port(),
            api_port: ports::free_port(),
            metrics_port: ports::free_port(),
            env: Vec::new(),
        }
    }

    pub fn lakectl(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakectl"));
        cmd.current_dir(self.dir.path())
            .env("LAKEHOUSE_KAFKA_PORT", self.kafka_port.to_string())
            .env("LAKEHOUSE_POSTGRES_PORT", self.postgres_port.to_string())
            .env(
                "LAKEHOUSE_API_LISTEN",
                format!("127.0.0.1:{}", self.api_port),
            )
            .env(
                "LAKEHOUSE_METRICS_LISTEN",
                format!("127.0.0.1:{}", self.metrics_port),
            )
            .env_remove("LAKEHOUSE_KAFKA_BOOTSTRAP")
            .env_remove("LAKEHOUSE_POSTGRES_URL")
            .env(
                "LAKEHOUSE_SQL",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../producer/ksql_queries.sql"),
            )
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.lakectl().args(args).output().expect("run lakectl")
    }

    pub fn up(&self) -> Child {
        self.up_with(&[])
    }

    /// `lakectl up --headless ARGS`, once every component runs.
    pub fn up_with(&self, args: &[&str]) -> Child {
        let child = self
            .lakectl()
            .args(["up", "--headless"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn lakectl up");
        self.wait_for(|s| s["stack"]["running"] == true && all_running(s));
        child
    }

    pub fn status(&self) -> Value {
        let out = self.run(&["status", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status --json is JSON")
    }

    pub fn wait_for(&self, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let status = self.status();
            if done(&status) {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "timed out; last status {status:#}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

pub fn all_running(status: &Value) -> bool {
    status["components"]["broker"]["state"] == "running"
        && status["components"]["postgres"]["state"] == "running"
        && status["components"]["api"]["state"] == "running"
}
