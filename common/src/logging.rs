//! Logging: every component writes to `log/<component>/<component>.log.YYYY-MM-DD`
//! (daily rotation) and to stderr. `RUST_LOG` sets the level (default `info`).

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// Keep it alive for the life of the process: dropping it flushes the file writer.
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

/// Initialises logging for `component`. When the log folder cannot be
/// created, logs go to stderr only and a warning says why.
pub fn init(component: &str, log_dir: &Path, stderr_level: Option<&str>) -> LogGuard {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr_filter = match stderr_level {
        Some(level) => EnvFilter::new(level),
        None => filter(),
    };
    let stderr_layer = fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(stderr_filter);

    let folder = log_dir.join(component);
    let file_setup = std::fs::create_dir_all(&folder).and_then(|_| {
        tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix(component)
            .filename_suffix("log")
            .build(&folder)
            .map_err(std::io::Error::other)
    });
    match file_setup {
        Ok(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let file_layer = fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_filter(filter());
            let _ = tracing_subscriber::registry()
                .with(stderr_layer)
                .with(file_layer)
                .try_init();
            LogGuard { _file: Some(guard) }
        }
        Err(e) => {
            let _ = tracing_subscriber::registry().with(stderr_layer).try_init();
            tracing::warn!(
                "cannot write logs under {}: {e}; logging to stderr only",
                folder.display()
            );
            LogGuard { _file: None }
        }
    }
}
