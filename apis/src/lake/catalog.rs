//! The lake's datasets as DataFusion tables: one listing table per stream
//! folder over its Hive partitions (`ingestion_date` as a DATE column, so
//! folders that cannot match a filter are never opened), Parquet footers
//! and page indexes cached across queries, and the folder listing cached
//! for at most a second so that new files show up within about a second.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_schema::{DataType, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use lakehouse::lake::{COL_INGESTION_DATE, DATA_EXTENSION};

use crate::error::ApiError;
use crate::lake::data_files::FileCounts;

/// How long a folder listing is trusted.
const LISTING_TTL: Duration = Duration::from_secs(1);
/// How long a dataset's inferred schema is trusted (a stream may gain columns).
const SCHEMA_TTL: Duration = Duration::from_secs(5);

pub struct Lake {
    root: PathBuf,
    runtime: Arc<RuntimeEnv>,
    tables: Mutex<HashMap<String, CachedTable>>,
    counts: FileCounts,
}

struct CachedTable {
    table: Arc<ListingTable>,
    loaded: Instant,
}

/// A dataset name is a folder name of letters, digits and underscores; this
/// keeps every name and version parameter inside the lake.
pub fn is_dataset_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.starts_with('_')
}

impl Lake {
    pub fn open(root: &Path) -> Result<Self, ApiError> {
        let root = std::fs::create_dir_all(root)
            .and_then(|()| root.canonicalize())
            .map_err(|e| ApiError::internal(format!("data lake {}: {e}", root.display())))?;
        let caches = CacheManagerConfig::default().with_list_files_cache_ttl(Some(LISTING_TTL));
        let runtime = RuntimeEnvBuilder::new()
            .with_cache_manager(caches)
            .build_arc()
            .map_err(ApiError::internal)?;
        runtime.register_object_store(
            super::store::url().as_ref(),
            Arc::new(super::store::LakeStore::new(root.clone())),
        );
        Ok(Self {
            root,
            runtime,
            tables: Mutex::new(HashMap::new()),
            counts: FileCounts::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Row counts known per file (footers, and matches of page filters).
    pub fn counts(&self) -> &FileCounts {
        &self.counts
    }

    /// A fresh query context with no tables: each query registers only what
    /// its caller may read. Footer and listing caches are shared.
    pub fn context(&self) -> SessionContext {
        let mut config = SessionConfig::new()
            .with_target_partitions(2)
            .with_information_schema(false);
        let options = config.options_mut();
        options.execution.parquet.pushdown_filters = true;
        options.execution.parquet.reorder_filters = true;
        options.execution.parquet.enable_page_index = true;
        options.execution.parquet.pruning = true;
        options.execution.collect_statistics = true;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(self.runtime.clone())
            .with_default_features()
            .build();
        SessionContext::new_with_state(state)
    }

    /// Every dataset folder, sorted. Symlinks and bookkeeping folders are not datasets.
    pub fn datasets(&self) -> Result<Vec<String>, ApiError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) => return Err(ApiError::internal(e)),
        };
        let mut names = Vec::new();
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if !kind.is_dir() {
                continue;
            }
            if let Some(name) = entry.file_name().to_str().filter(|n| is_dataset_name(n)) {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The folder a client's name refers to (exact, else case-insensitive);
    /// 404 naming it when there is none.
    pub fn resolve(&self, name: &str) -> Result<String, ApiError> {
        let missing = || ApiError::not_found(format!("there is no dataset {name:?} in the lake"));
        if !is_dataset_name(name) {
            return Err(missing());
        }
        let datasets = self.datasets()?;
        if datasets.iter().any(|d| d == name) {
            return Ok(name.to_string());
        }
        datasets
            .into_iter()
            .find(|d| d.eq_ignore_ascii_case(name))
            .ok_or_else(missing)
    }

    pub fn dataset_dir(&self, dataset: &str) -> PathBuf {
        lakehouse::lake::topic_dir(&self.root, dataset)
    }

    /// The table over a resolved dataset; `None` while it has no file yet.
    pub async fn table(&self, dataset: &str) -> Result<Option<Arc<ListingTable>>, ApiError> {
        if let Some(cached) = self.tables.lock().expect("lake tables").get(dataset) {
            if cached.loaded.elapsed() < SCHEMA_TTL {
                return Ok(Some(cached.table.clone()));
            }
        }
        let Some(table) = self.load_table(dataset).await? else {
            return Ok(None);
        };
        self.tables.lock().expect("lake tables").insert(
            dataset.to_string(),
            CachedTable {
                table: table.clone(),
                loaded: Instant::now(),
            },
        );
        Ok(Some(table))
    }

    pub async fn schema(&self, dataset: &str) -> Result<Option<SchemaRef>, ApiError> {
        Ok(self.table(dataset).await?.map(|t| t.schema()))
    }

    async fn load_table(&self, dataset: &str) -> Result<Option<Arc<ListingTable>>, ApiError> {
        let dir = self.dataset_dir(dataset);
        let url =
            ListingTableUrl::parse(format!("{}/", dir.display())).map_err(ApiError::internal)?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(format!(".{DATA_EXTENSION}"))
            .with_table_partition_cols(vec![(COL_INGESTION_DATE.to_string(), DataType::Date32)]);
        let state = self.context().state();
        let schema = match options.infer_schema(&state, &url).await {
            Ok(schema) => schema,
            // No file yet: nothing to read.
            Err(e)
                if e.to_string().contains("No files found") || e.to_string().contains("empty") =>
            {
                return Ok(None)
            }
            Err(e) => return Err(ApiError::internal(e)),
        };
        if schema.fields().is_empty() {
            return Ok(None);
        }
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema);
        // Statistics gathered once per file for every query, not per table.
        let table = ListingTable::try_new(config)
            .map_err(ApiError::internal)?
            .with_cache(state.runtime_env().cache_manager.get_file_statistic_cache());
        Ok(Some(Arc::new(table)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_outside_the_lake_are_not_datasets() {
        assert!(is_dataset_name("TRANSACTIONS_FLAT") && is_dataset_name("transaction_log"));
        for bad in [
            "..", "../etc", "/etc", "_dlq", "a/b", "%2e%2e", "", ".hidden",
        ] {
            assert!(!is_dataset_name(bad), "{bad}");
        }
    }
}
