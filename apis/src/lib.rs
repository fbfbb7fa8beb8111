//! The lakehouse's HTTP server (SYSTEM.md section 6): API 1 (products) and
//! API 2 (the data lake and the warehouse) on axum over hyper, with
//! identity, permissions, an audit trail, OpenAPI and offline docs.

pub mod audit;
pub mod auth;
pub mod docs;
pub mod error;
pub mod http_metrics;
pub mod job;
pub mod json_body;
pub mod lake;
pub mod middleware;
pub mod ml;
pub mod permissions;
pub mod query_params;
pub mod rate_limit;
pub mod repush;
pub mod routes;
pub mod search;
pub mod server;
pub mod settings;
pub mod state;
pub mod warehouse;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

pub use job::job;
pub use settings::{ApiArgs, ApiSettings};

use crate::http_metrics::HttpMetrics;
use crate::lake::Lake;
use crate::rate_limit::RateLimits;
use crate::search::indexer::Indexer;
use crate::search::{SearchError, SearchIndex};
use crate::state::AppState;

/// Applies the access-control schema and API 1's catalogue (idempotent).
pub async fn apply_schema(pool: &PgPool) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    lakehouse::postgres::apply_user_schema(&mut conn).await?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query("SELECT pg_advisory_xact_lock(7418830002)")
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(routes::products::PRODUCTS_SQL)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(repush::store::SCHEMA_SQL)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Waits for PostgreSQL (with backoff, for as long as it takes) and applies the schema.
async fn connect(settings: &ApiSettings) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = settings
        .postgres_url
        .parse()
        .context("invalid PostgreSQL URL")?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .min_connections(2)
        // A request waits this long for PostgreSQL before its 503.
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(options.disable_statement_logging());
    let mut wait = Duration::from_millis(200);
    loop {
        match apply_schema(&pool).await {
            Ok(()) => return Ok(pool),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?wait, "PostgreSQL not ready");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Runs the server until `shutdown` completes, then drains requests and
/// the audit queue.
pub async fn run(settings: ApiSettings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let address = listener.local_addr()?;
    let pool = connect(&settings).await?;
    let lake = Lake::open(&settings.data_lake_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (audit, audit_writer) = audit::writer::start(
        pool.clone(),
        &settings.state_dir,
        settings.audit_spool_bytes,
    );
    let search = Arc::new(
        SearchIndex::open(&SearchIndex::dir_in(&settings.state_dir))
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let stop_indexing = Arc::new(AtomicBool::new(false));
    let indexing = spawn_indexer(
        search.clone(),
        settings.data_lake_dir.clone(),
        stop_indexing.clone(),
    );
    let state = Arc::new(AppState {
        ml_jobs: Default::default(),
        ml_models: Arc::new(ml::store::ModelStore::new(&settings.state_dir)),
        search,
        repush: repush::runner::Repush::new(&settings.kafka_bootstrap),
        http_metrics: HttpMetrics::new(audit.counters.clone()),
        limits: RateLimits::new(settings.rate_limit_per_second),
        audit,
        lake,
        pool,
        settings,
        purge_lock: tokio::sync::Mutex::new(()),
    });
    let forget = {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                state.limits.forget_idle();
            }
        })
    };
    // Jobs a previous server left running go on from where they stopped.
    repush::runner::resume_all(&state);
    let router = routes::router(state.clone());
    tracing::info!(url = %format!("http://{address}"), "lakehouse API listening");
    server::serve(listener, router, state.settings.header_timeout, shutdown).await;
    forget.abort();
    state.repush.stop();
    stop_indexing.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || indexing.join()).await;
    audit_writer.shutdown().await;
    tracing::info!("lakehouse API stopped");
    Ok(())
}

/// The search indexer on a thread of its own, started again after a
/// failure; it commits what it holds when `stop` is set. If another server
/// on the same state folder holds the index, this one only searches it.
fn spawn_indexer(
    index: Arc<SearchIndex>,
    lake: std::path::PathBuf,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("search-indexer".into())
        .spawn(move || {
            lakehouse::logging::set_thread_component("api");
            let mut wait = Duration::from_secs(1);
            while !stop.load(Ordering::Relaxed) {
                let outcome = Indexer::new(index.clone(), &lake).and_then(|i| i.run(&stop));
                match outcome {
                    Ok(()) => return,
                    Err(SearchError::Busy) => {
                        tracing::warn!(
                            "the search index is kept by another server; searching it only"
                        );
                        return;
                    }
                    Err(e) => {
                        tracing::error!(retry_in = ?wait, "search indexer failed: {e}");
                        let until = std::time::Instant::now() + wait;
                        while std::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        wait = (wait * 2).min(Duration::from_secs(60));
                    }
                }
            }
        })
        .expect("spawn the search indexer")
}
