//! Logging: every component writes to `log/<component>/<component>.YYYY-MM-DD.log`
//! (daily rotation) and to stderr. `RUST_LOG` sets the level (default `info`);
//! `LAKEHOUSE_LOG_FORMAT=json` writes one JSON object per event (time,
//! level, target, fields, spans) instead of text, for a log collector.
//!
//! When several components share a process (`lakectl up` runs each worker
//! on threads of its own), a thread says which component it works for
//! ([`set_thread_component`]) and its events also go to that component's
//! folder, so that `log/api/` holds the API's log however it was started.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_appender::rolling::RollingFileAppender;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriter, MakeWriterExt};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

/// Keep it alive for the life of the process: dropping it flushes the file writers.
pub struct LogGuard {
    _file: Option<WorkerGuard>,
    components: Arc<Mutex<ComponentWriters>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        // Flushes every component's file.
        if let Ok(mut writers) = self.components.lock() {
            writers.guards.clear();
        }
    }
}

thread_local! {
    static THREAD_COMPONENT: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Events of this thread belong to `component` (its folder under `log/`).
/// Threads a component starts inherit nothing: call it on them too (a tokio
/// runtime's `on_thread_start`).
pub fn set_thread_component(component: &'static str) {
    THREAD_COMPONENT.with(|c| c.set(Some(component)));
}

/// The component this thread works for, if it said.
pub fn thread_component() -> Option<&'static str> {
    THREAD_COMPONENT.with(Cell::get)
}

/// Daily files kept per component; older ones are removed as days pass.
pub const KEPT_LOG_FILES: usize = 14;

/// The folder under `log/` of a component: where the original project's
/// users look (`log/consumer/` for the stream sink, `log/writer/` for the
/// table sink), else the component's own name.
pub fn log_folder(component: &str) -> &str {
    match component {
        "lake-sink" => "consumer",
        "table-sink" => "writer",
        other => other,
    }
}

fn daily_appender(log_dir: &Path, component: &str) -> std::io::Result<RollingFileAppender> {
    let folder = log_dir.join(log_folder(component));
    std::fs::create_dir_all(&folder)?;
    tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .max_log_files(KEPT_LOG_FILES)
        .filename_prefix(component)
        .filename_suffix("log")
        .build(&folder)
        .map_err(std::io::Error::other)
}

/// One file writer per component met so far, opened on its first event.
#[derive(Default)]
struct ComponentWriters {
    log_dir: PathBuf,
    /// The process's own component: its events are already in its file.
    own: String,
    writers: HashMap<&'static str, Option<NonBlocking>>,
    guards: Vec<WorkerGuard>,
}

impl ComponentWriters {
    fn writer(&mut self, component: &'static str) -> Option<NonBlocking> {
        if component == self.own {
            return None;
        }
        if let Some(writer) = self.writers.get(component) {
            return writer.clone();
        }
        let writer = match daily_appender(&self.log_dir, component) {
            Ok(appender) => {
                let (writer, guard) = tracing_appender::non_blocking(appender);
                self.guards.push(guard);
                Some(writer)
            }
            // Its events stay in the process's own log.
            Err(_) => None,
        };
        self.writers.insert(component, writer.clone());
        writer
    }
}

/// Writes an event to the file of the component its thread works for.
#[derive(Clone)]
struct ThreadComponentFiles(Arc<Mutex<ComponentWriters>>);

enum ComponentWriter {
    File(NonBlocking),
    None,
}

impl std::io::Write for ComponentWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::File(w) => w.write(buf),
            Self::None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::File(w) => w.flush(),
            Self::None => Ok(()),
        }
    }
}

impl<'a> fmt::MakeWriter<'a> for ThreadComponentFiles {
    type Writer = ComponentWriter;

    fn make_writer(&'a self) -> Self::Writer {
        let writer = thread_component().and_then(|component| {
            self.0
                .lock()
                .ok()
                .and_then(|mut writers| writers.writer(component))
        });
        writer.map_or(ComponentWriter::None, ComponentWriter::File)
    }
}

/// The environment variable that picks the log format: `text` (the
/// default) or `json`.
pub const LOG_FORMAT_ENV: &str = "LAKEHOUSE_LOG_FORMAT";

/// Whether `LAKEHOUSE_LOG_FORMAT` asks for JSON lines.
fn json_format() -> bool {
    std::env::var(LOG_FORMAT_ENV).is_ok_and(|f| f.eq_ignore_ascii_case("json"))
}

/// A formatting layer writing to `writer`: JSON lines with `json`, text
/// otherwise (coloured with `ansi`; the target with `target`).
fn formatted<S, W>(
    writer: W,
    json: bool,
    ansi: bool,
    target: bool,
) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    if json {
        fmt::layer().json().with_writer(writer).boxed()
    } else {
        fmt::layer()
            .with_writer(writer)
            .with_ansi(ansi)
            .with_target(target)
            .boxed()
    }
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
    let json = json_format();
    let stderr_layer = formatted(stderr_writer, json, std::io::stderr().is_terminal(), false);

    let components = Arc::new(Mutex::new(ComponentWriters {
        log_dir: log_dir.to_path_buf(),
        own: component.to_string(),
        ..Default::default()
    }));
    let component_layer = formatted(
        ThreadComponentFiles(Arc::clone(&components)),
        json,
        false,
        true,
    );
    let folder = log_dir.join(log_folder(component));
    match daily_appender(log_dir, component) {
        Ok(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let file_layer = formatted(writer, json, false, true);
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(stderr_layer)
                .with(file_layer)
                .with(component_layer)
                .try_init();
            LogGuard {
                _file: Some(guard),
                components,
            }
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
            LogGuard {
                _file: None,
                components,
            }
        }
    }
}
