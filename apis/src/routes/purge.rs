//! Retention from the API (admin): `POST /api/v2/purge` runs the purge
//! library the `lake-purge` worker and `lakectl purge` run, and records
//! the run with theirs; `GET /api/v2/purge/runs` lists the recorded runs.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use lakehouse_workers::purge::{self, PurgeArgs, PurgeReport, RetentionPolicy};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json_body::ApiJson;
use crate::query_params::{positive, ApiQuery};
use crate::state::SharedState;

/// Longest retention accepted, in days (a century).
const MAX_RETENTION_DAYS: u32 = 36_500;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// `true`: list what would be removed and remove nothing.
    pub dry_run: bool,
    /// Days to keep: today and this many days before it stay. Default: the
    /// purge worker's (`LAKEHOUSE_RETENTION_DAYS`, 30).
    #[schema(minimum = 0, maximum = 36500)]
    pub retention_days: Option<u32>,
    /// Days to keep per topic, over `retention_days`, e.g.
    /// `{"transaction_log": 7}`. Default: the worker's
    /// (`LAKEHOUSE_RETENTION_OVERRIDES`).
    pub retention: Option<BTreeMap<String, u32>>,
}

impl PurgeRequest {
    fn policy(&self) -> ApiResult<RetentionPolicy> {
        let defaults = PurgeArgs::from_env()
            .policy()
            .map_err(|e| ApiError::internal(format!("the purge worker's settings: {e}")))?;
        let mut policy = match self.retention_days {
            Some(days) if days > MAX_RETENTION_DAYS => {
                return Err(ApiError::bad_parameter(
                    "retention_days",
                    format!("at most {MAX_RETENTION_DAYS} days"),
                ))
            }
            Some(days) => RetentionPolicy {
                default_days: days,
                per_topic: defaults.per_topic,
            },
            None => defaults,
        };
        for (topic, days) in self.retention.iter().flatten() {
            let parameter = format!("retention.{topic}");
            if topic.trim().is_empty() || topic.contains(['/', '\\']) || topic.starts_with('.') {
                return Err(ApiError::bad_parameter(
                    "retention",
                    format!("{topic:?} is not a topic name"),
                ));
            }
            if *days > MAX_RETENTION_DAYS {
                return Err(ApiError::bad_parameter(
                    &parameter,
                    format!("at most {MAX_RETENTION_DAYS} days"),
                ));
            }
            policy.per_topic.insert(topic.clone(), *days);
        }
        Ok(policy)
    }
}

/// Runs a purge (admin only): whole `ingestion_date=` partitions older than
/// the retention go, data and dead letters alike; today's never does. A dry
/// run removes nothing. The run is recorded in `log/purge/purge-runs.jsonl`.
#[utoipa::path(post, path = "/api/v2/purge", tag = "lake", security(("bearer" = [])),
    request_body = PurgeRequest,
    responses(
        (status = 200, description = "What the run removed, or would remove", body = PurgeReport),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "Another purge from the API is under way", body = ErrorBody)))]
pub async fn run(
    State(state): State<SharedState>,
    caller: Caller,
    ApiJson(request): ApiJson<PurgeRequest>,
) -> ApiResult<Json<PurgeReport>> {
    caller.grants.require_admin()?;
    let policy = request.policy()?;
    // A retention for a topic the lake does not hold would apply to nothing.
    for topic in request.retention.iter().flat_map(|r| r.keys()) {
        if !lakehouse::lake::topic_dir(&state.settings.data_lake_dir, topic).is_dir() {
            return Err(ApiError::bad_parameter(
                &format!("retention.{topic}"),
                format!("the lake holds no topic {topic:?}"),
            ));
        }
    }
    let _one_at_a_time = state.purge_lock.try_lock().map_err(|_| {
        ApiError::conflict("a purge from the API is under way; try again when it ends")
    })?;
    let lake = state.settings.data_lake_dir.clone();
    let log_dir = state.settings.log_dir.clone();
    let dry_run = request.dry_run;
    let report = tokio::task::spawn_blocking(move || {
        purge::run_and_record(&lake, &log_dir, &policy, dry_run)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(Json(report))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Runs to return, newest first (default 20, at most 1000).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

/// The recorded purge runs (admin only), newest first: the worker's
/// schedule, `lakectl purge` and the API's alike.
#[utoipa::path(get, path = "/api/v2/purge/runs", tag = "lake", security(("bearer" = [])),
    params(RunsQuery),
    responses(
        (status = 200, body = Vec<PurgeReport>),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn runs(
    State(state): State<SharedState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> ApiResult<Json<Vec<PurgeReport>>> {
    caller.grants.require_admin()?;
    let limit = positive("limit", query.limit.as_deref(), 20, 1000)? as usize;
    let log_dir = state.settings.log_dir.clone();
    let mut runs = tokio::task::spawn_blocking(move || purge::recent_runs(&log_dir, limit))
        .await
        .map_err(ApiError::internal)?;
    runs.reverse();
    Ok(Json(runs))
}
