//! `lakectl search reindex`: rebuilds the API's search index from the lake.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lakehouse::Settings;
use lakehouse_api::search::indexer::Indexer;
use lakehouse_api::search::{SearchError, SearchIndex};
use lakehouse_api::settings::ApiSettings;

/// Rebuilds here when no server holds the index; otherwise asks the
/// running server to (a request file it watches) and waits for it.
pub fn reindex(settings: &Settings, timeout: Duration) -> Result<String> {
    let dir = SearchIndex::dir_in(&ApiSettings::state_dir_of(settings));
    let index = Arc::new(SearchIndex::open(&dir).context("opening the search index")?);
    let started = Instant::now();
    match Indexer::new(index.clone(), &settings.data_lake_dir) {
        Ok(mut indexer) => {
            let (files, _) = indexer.rebuild().context("rebuilding the search index")?;
            Ok(format!(
                "search index rebuilt: {files} files, {} records, in {:.1} s",
                index.records(),
                started.elapsed().as_secs_f64()
            ))
        }
        Err(SearchError::Busy) => {
            let request = SearchIndex::reindex_request(&dir);
            std::fs::write(&request, b"")
                .with_context(|| format!("cannot write {}", request.display()))?;
            let progress = indicatif::ProgressBar::new_spinner()
                .with_message("the running API server is rebuilding the search index");
            while request.exists() {
                if started.elapsed() > timeout {
                    bail!(
                        "the server has not finished rebuilding after {} s; {} is still there",
                        timeout.as_secs(),
                        request.display()
                    );
                }
                progress.tick();
                std::thread::sleep(Duration::from_millis(200));
            }
            progress.finish_and_clear();
            index.reader.reload().ok();
            Ok(format!(
                "search index rebuilt by the running server: {} records, in {:.1} s",
                index.records(),
                started.elapsed().as_secs_f64()
            ))
        }
        Err(e) => Err(e).context("opening the search index for writing"),
    }
}
