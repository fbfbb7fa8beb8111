//! What every handler shares.

use std::sync::Arc;

use sqlx::PgPool;

use crate::audit::AuditLog;
use crate::http_metrics::HttpMetrics;
use crate::lake::Lake;
use crate::rate_limit::RateLimits;
use crate::settings::ApiSettings;

pub struct AppState {
    pub ml_jobs: crate::ml::jobs::Jobs,
    pub ml_models: Arc<crate::ml::store::ModelStore>,
    pub search: Arc<crate::search::SearchIndex>,
    pub repush: crate::repush::runner::Repush,
    pub settings: ApiSettings,
    pub pool: PgPool,
    pub lake: Lake,
    pub audit: AuditLog,
    pub limits: RateLimits,
    pub http_metrics: HttpMetrics,
    /// Held by the API's purge while it runs: one at a time.
    pub purge_lock: tokio::sync::Mutex<()>,
}

pub type SharedState = Arc<AppState>;
