//! What every worker binary does at its edges: settings from the
//! environment alone, a stop flag raised by SIGTERM or Ctrl-C, and an exit
//! status with the error's whole chain.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Args, Command, FromArgMatches};

/// The stream SQL file whose catalog a sink follows.
#[derive(Debug, Clone, Args)]
pub struct SqlFileArg {
    /// The stream SQL file (its streams land in the lake, its tables in the warehouse).
    #[arg(
        long = "sql",
        env = "LAKEHOUSE_SQL",
        default_value = "producer/ksql_queries.sql"
    )]
    pub path: PathBuf,
}

impl SqlFileArg {
    pub fn load(&self) -> Result<lakehouse_streamsql::Plan, lakehouse_streamsql::LoadError> {
        lakehouse_streamsql::load_file(&self.path)
    }
}

/// A flattened settings group with only its defaults and environment
/// variables applied (for `lakectl up`, which runs workers on threads).
pub fn args_from_env<A: Args + FromArgMatches>() -> A {
    let matches = A::augment_args(Command::new("worker")).get_matches_from(["worker"]);
    A::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Set when the process receives SIGTERM or SIGINT: the worker finishes what
/// it holds (checkpoint, files, batch) and returns.
pub fn stop_on_signals() -> std::io::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    Ok(stop)
}

/// Runs a worker binary's one job until SIGTERM or Ctrl-C, restarting it
/// with backoff after failures a restart can fix (a slow or absent broker or
/// PostgreSQL); an error no restart fixes ends the process with its message.
pub fn supervise(
    job: crate::supervisor::Job,
    metrics: &crate::metrics_http::MetricsArgs,
) -> anyhow::Result<()> {
    let stop = stop_on_signals()?;
    tracing::info!("{}: {}", job.name, job.summary);
    let registry = crate::registry::Registry::default();
    let _metrics = serve_metrics(metrics, &registry)?;
    let backoff = crate::supervisor::Backoff::default();
    let result = crate::supervisor::run_one(&job, &stop, &backoff, &registry);
    tracing::info!(component = ?registry.get(job.name), "{} stopped", job.name);
    result.map_err(|failure| anyhow::anyhow!("{} stopped: {failure}", job.name))
}

/// Runs the job built from the statement file at `path` until SIGTERM or
/// Ctrl-C, as [`supervise`] does, and follows the file: when it changes,
/// the job is built again from the new file (`build` is told it is a
/// change) and replaces the running one, which first finishes what it
/// holds. A file that does not plan, or a job that cannot be built from
/// it, is refused with the reason in the log and the registry's
/// `last_error`, and the running job goes on.
pub fn supervise_following(
    path: &std::path::Path,
    build: impl Fn(Arc<lakehouse_streamsql::Plan>, bool) -> anyhow::Result<crate::supervisor::Job>,
    metrics: &crate::metrics_http::MetricsArgs,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::sync::atomic::Ordering;

    use crate::registry::ComponentState;

    let mut file = crate::statement_file::FollowedFile::read(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let plan = lakehouse_streamsql::load(file.text())
        .with_context(|| format!("{} does not plan", path.display()))?;
    let job = build(Arc::new(plan), false)?;
    let name = job.name;
    let stop = stop_on_signals()?;
    tracing::info!(component = name, file = %path.display(), "{}: {}", name, job.summary);
    let registry = crate::registry::Registry::default();
    let _metrics = serve_metrics(metrics, &registry)?;
    let mut workers =
        crate::supervisor::Supervisor::new(registry.clone(), crate::supervisor::Backoff::default());
    workers.start(job);
    loop {
        if stop.load(Ordering::Relaxed) {
            workers.stop_all(&mut |_| {});
            tracing::info!(component = name, "{name} stopped");
            return Ok(());
        }
        workers.check();
        if let Some(failed) = registry
            .get(name)
            .filter(|c| matches!(c.state, ComponentState::Failed { .. }))
        {
            workers.stop_all(&mut |_| {});
            let error = failed.last_error.unwrap_or_default();
            return Err(anyhow::anyhow!("{name} stopped: {error}"));
        }
        if let Some(text) = file.changed() {
            let rebuilt = lakehouse_streamsql::load(text)
                .map_err(anyhow::Error::from)
                .and_then(|plan| build(Arc::new(plan), true));
            match rebuilt {
                Ok(job) => {
                    tracing::info!(component = name, file = %path.display(), "the statement file changed; running it: {}", job.summary);
                    workers.replace(job);
                }
                Err(e) => {
                    let message = format!(
                        "{} changed but is refused ({e:#}); still running the previous file",
                        path.display()
                    );
                    tracing::error!(component = name, "{message}");
                    registry.record_error(name, &message);
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The metrics and health endpoint over `registry`, where `--metrics-listen` asks for one.
fn serve_metrics(
    metrics: &crate::metrics_http::MetricsArgs,
    registry: &crate::registry::Registry,
) -> anyhow::Result<Option<crate::metrics_http::MetricsServer>> {
    metrics
        .metrics_listen
        .map(|listen| {
            crate::metrics_http::MetricsServer::start(listen, registry.clone())
                .map_err(|e| anyhow::anyhow!("cannot serve metrics on {listen}: {e}"))
        })
        .transpose()
}

/// Prints the error chain and exits 1, or returns.
pub fn exit_on_error(result: anyhow::Result<()>) {
    if let Err(e) = result {
        eprintln!("error: {}", error_chain(&e));
        std::process::exit(1);
    }
}

/// An error and its causes, each said once: a cause whose text is already
/// in what precedes it (a message that quotes its source, librdkafka's
/// errors that repeat their code as their cause) is not repeated.
pub fn error_chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// A one-shot command whose output goes into a pipe closed early (`|
/// head`) ends there quietly, as other command-line tools do, instead of
/// panicking in `println!`: SIGPIPE gets its default action back (Rust
/// ignores it). Not for servers, which should outlive a closed log pipe.
pub fn exit_quietly_on_closed_pipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: restores the default disposition before any other thread
    // exists; no handler code runs.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let io = std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "No such file or directory (os error 2)",
        );
        let quoted = anyhow::Error::new(io)
            .context("cannot read x.toml: No such file or directory (os error 2)");
        assert_eq!(
            error_chain(&quoted),
            "cannot read x.toml: No such file or directory (os error 2)"
        );
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let plain = anyhow::Error::new(io).context("cannot read x.toml");
        assert_eq!(error_chain(&plain), "cannot read x.toml: gone");
    }
}
