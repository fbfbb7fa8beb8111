//! `GET /health` (each dependency's state) and `GET /metrics` (Prometheus).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::SharedState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when every dependency is up, else `degraded`.
    pub status: String,
    pub dependencies: BTreeMap<String, DependencyState>,
    /// access_log entries written, spooled (PostgreSQL away) and lost.
    pub audit: AuditState,
    /// The full-text index: records it holds, and what the indexer did since start.
    pub search: SearchState,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchState {
    pub records: u64,
    pub files_indexed: u64,
    pub files_removed: u64,
    pub commits: u64,
    /// Files that could not be read (tried again on the next comparison).
    pub errors: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DependencyState {
    /// `up` or `down`.
    pub state: String,
    pub latency_ms: Option<f64>,
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditState {
    pub written: u64,
    pub spooled: u64,
    pub dropped: u64,
}

/// The server's dependencies, each checked now; 503 when one is down.
#[utoipa::path(get, path = "/health", tag = "service",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<SharedState>) -> impl IntoResponse {
    let mut dependencies = BTreeMap::new();
    let started = Instant::now();
    let postgres = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool),
    )
    .await;
    dependencies.insert(
        "postgres".to_string(),
        match postgres {
            Ok(Ok(_)) => DependencyState {
                state: "up".into(),
                latency_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
                detail: None,
            },
            Ok(Err(e)) => down(e.to_string()),
            Err(_) => down("no answer within 2 s".into()),
        },
    );
    dependencies.insert(
        "lake".to_string(),
        match state.lake.datasets() {
            Ok(datasets) => DependencyState {
                state: "up".into(),
                latency_ms: None,
                detail: Some(format!("{} datasets", datasets.len())),
            },
            Err(e) => down(e.message),
        },
    );
    let healthy = dependencies.values().all(|d| d.state == "up");
    let search = state.search.clone();
    let records = tokio::task::spawn_blocking(move || search.records())
        .await
        .unwrap_or(0);
    let stats = &state.search.stats;
    let counters = &state.audit.counters;
    let body = Health {
        status: if healthy { "ok" } else { "degraded" }.into(),
        dependencies,
        audit: AuditState {
            written: counters.written.load(Ordering::Relaxed),
            spooled: counters.spooled.load(Ordering::Relaxed),
            dropped: counters.dropped.load(Ordering::Relaxed),
        },
        search: SearchState {
            records,
            files_indexed: stats.files_indexed.load(Ordering::Relaxed),
            files_removed: stats.files_removed.load(Ordering::Relaxed),
            commits: stats.commits.load(Ordering::Relaxed),
            errors: stats.errors.load(Ordering::Relaxed),
        },
    };
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

fn down(detail: String) -> DependencyState {
    DependencyState {
        state: "down".into(),
        latency_ms: None,
        detail: Some(detail),
    }
}

/// Prometheus metrics of the server, in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn prometheus(State(state): State<SharedState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.http_metrics.render(),
    )
}
