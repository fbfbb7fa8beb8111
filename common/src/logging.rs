//! Logging: every component writes to `log/<component>/<component>.YYYY-MM-DD.log`
//! (daily rotation) and to stderr. `RUST_LOG` sets the level (default `info`).

use std::io::IsTerminal;
use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

/// Keep it alive for the life of the process: dropping it flushes the file writer.
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

/// Initialises logging for `component`. Both destinations get what
/// `RUST_LOG` asks for (default `info`); with `stderr_level`, stderr gets
/// only that level and above (an interactive command keeps its screen
/// readable). When the log folder cannot be created, logs go to stderr only
/// and a warning says why.
pub fn init(component: &str, log_dir: &Path, stderr_level: Option<LevelFilter>) -> LogGuard {
    // One global filter and a level-limited writer rather than per-layer
    // filters: per-layer filters lost events here once `log` records from
    // librdkafka had passed through the same thread.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr_writer = match stderr_level.map(LevelFilter::into_level) {
        None => BoxMakeWriter::new(std::io::stderr),
        Some(Some(level)) => BoxMakeWriter::new(std::io::stderr.with_max_level(level)),
        Some(None) => BoxMakeWriter::new(std::io::sink),
    };
    let stderr_layer = fmt::layer()
        .with_writer(stderr_writer)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);

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
            let file_layer = fmt::layer().with_writer(writer).with_ansi(false);
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(stderr_layer)
                .with(file_layer)
                .try_init();
            LogGuard { _file: Some(guard) }
        }
        Err(e) => {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(stderr_layer)
                .try_init();
            tracing::warn!(
                "cannot write logs under {}: {e}; logging to stderr only",
                folder.display()
            );
            LogGuard { _file: None }
        }
    }
}
