//! The server as a supervised job: built here from its settings, run by the
//! `lakehouse-api` binary and on a thread of `lakectl up` alike, restarted
//! with backoff when it fails.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lakehouse_workers::supervisor::{Failure, Job};

use crate::ApiSettings;

pub fn job(settings: ApiSettings) -> Job {
    let summary = format!(
        "http://{} (docs at /docs), lake {}",
        settings.listen,
        settings.data_lake_dir.display()
    );
    Job {
        name: "api",
        summary,
        counters: None,
        body: Arc::new(move |stop: &AtomicBool| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("api")
                .on_thread_start(|| lakehouse::logging::set_thread_component("api"))
                .build()
                .map_err(|e| Failure::transient(format!("cannot start the API runtime: {e}")))?;
            let stopped = async {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            let result = runtime.block_on(crate::run(settings.clone(), stopped));
            // Connections still draining do not hold the supervisor up.
            runtime.shutdown_timeout(Duration::from_secs(1));
            result.map_err(|e| Failure::transient(format!("{e:#}")))
        }),
    }
}
