//! What every handler shares.

use std::sync::Arc;

use sqlx::PgPool;

use crate::audit::AuditLog;
use crate::http_metrics::HttpMetrics;
use crate::lake::Lake;
use crate::rate_limit::RateLimits;
use crate::settings::ApiSettings;

pub struct AppState {
    pub settings: ApiSettings,
    pub pool: PgPool,
    pub lake: Lake,
    pub audit: AuditLog,
    pub limits: RateLimits,
    pub http_metrics: HttpMetrics,
}

pub type SharedState = Arc<AppState>;
