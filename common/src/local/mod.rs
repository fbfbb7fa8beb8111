//! The single-machine stack's own processes: the Tansu broker and a private
//! PostgreSQL cluster, run as supervised children of the process that
//! started them.

pub mod broker;
pub mod broker_storage;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod tools;

use std::path::PathBuf;

/// Why a local component could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{component}: port {port} on 127.0.0.1 is already in use; stop what uses it or choose another port ({hint})")]
    PortTaken {
        component: &'static str,
        port: u16,
        hint: &'static str,
    },
    #[error("{what} not found. {hint}")]
    MissingTool { what: String, hint: String },
    #[error("{component} failed to start: {reason}\n--- last lines of {log} ---\n{log_tail}")]
    StartFailed {
        component: &'static str,
        reason: String,
        log: PathBuf,
        log_tail: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl LocalError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| LocalError::Io { context, source }
    }
}
