//! Finding, and on first use installing, the programs the local stack runs:
//! the Tansu broker (from crates.io) and PostgreSQL's server binaries (Debian).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::LocalError;

pub const TANSU_VERSION: &str = "0.6.0";
pub const TANSU_INSTALL_COMMAND: &str =
    "cargo install tansu --version 0.6.0 --locked --features libsql,dynostore";
pub const POSTGRES_INSTALL_COMMAND: &str = "apt-get update && apt-get install -y postgresql-15";

/// The `tansu` binary: the configured path, else PATH, else ~/.cargo/bin.
pub fn find_tansu(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = configured {
        return path.is_file().then(|| path.to_path_buf());
    }
    find_on_path("tansu").or_else(|| {
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        let candidate = cargo_home.join("bin").join("tansu");
        candidate.is_file().then_some(candidate)
    })
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// Installs Tansu with cargo, passing each line cargo prints to `on_line`.
pub fn install_tansu(mut on_line: impl FnMut(&str)) -> Result<PathBuf, LocalError> {
    let mut child = Command::new("cargo")
        .args(TANSU_INSTALL_COMMAND.split_whitespace().skip(1))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LocalError::MissingTool {
            what: format!("the Tansu broker (and cargo to install it: {e})"),
            hint: format!("Install it with: {TANSU_INSTALL_COMMAND}"),
        })?;
    let mut last_lines = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            on_line(line.trim());
            last_lines.push(line);
            if last_lines.len() > 20 {
                last_lines.remove(0);
            }
        }
    }
    let status = child
        .wait()
        .map_err(LocalError::io("waiting for cargo install"))?;
    if !status.success() {
        return Err(LocalError::MissingTool {
            what: "the Tansu broker".into(),
            hint: format!(
                "Installing it failed ({status}). Run this and retry:\n  {TANSU_INSTALL_COMMAND}\n{}",
                last_lines.join("\n")
            ),
        });
    }
    find_tansu(None).ok_or_else(|| LocalError::MissingTool {
        what: "the Tansu broker after installing it".into(),
        hint: "Add ~/.cargo/bin to PATH or set kafka.broker_bin in lakehouse.toml.".into(),
    })
}

/// The folder with PostgreSQL's server binaries (`initdb`, `postgres`).
pub fn find_postgres_bin_dir(configured: Option<&Path>) -> Result<PathBuf, LocalError> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = configured {
        return if has_server(dir) {
            Ok(dir.to_path_buf())
        } else {
            Err(LocalError::MissingTool {
                what: format!("PostgreSQL server binaries in {}", dir.display()),
                hint: "Fix postgres.bin_dir in lakehouse.toml or unset it.".into(),
            })
        };
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|d| has_server(d)) {
        return Ok(dir);
    }
    // Debian installs each major version side by side; take the newest.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, dir)| dir)
        .ok_or_else(|| LocalError::MissingTool {
            what: "PostgreSQL server binaries (initdb, postgres)".into(),
            hint: format!("Install them with: {POSTGRES_INSTALL_COMMAND}"),
        })
}

/// Installs PostgreSQL 15 with apt when we are root; passes output lines to `on_line`.
pub fn install_postgres(mut on_line: impl FnMut(&str)) -> Result<PathBuf, LocalError> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err(LocalError::MissingTool {
            what: "PostgreSQL server binaries (initdb, postgres)".into(),
            hint: format!("Install them as root with: {POSTGRES_INSTALL_COMMAND}"),
        });
    }
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("({POSTGRES_INSTALL_COMMAND}) 2>&1"))
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(LocalError::io("running apt-get"))?;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            on_line(line.trim());
        }
    }
    let status = child
        .wait()
        .map_err(LocalError::io("waiting for apt-get"))?;
    if !status.success() {
        return Err(LocalError::MissingTool {
            what: "PostgreSQL server binaries".into(),
            hint: format!("Installing them failed ({status}). Run this and retry:\n  {POSTGRES_INSTALL_COMMAND}"),
        });
    }
    find_postgres_bin_dir(None)
}
