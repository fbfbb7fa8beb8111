//! API 2's business metrics over the lake's flattened transactions
//! (`read` on `lake/TRANSACTIONS_FLAT`).

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::lake::{encode, metrics, METRICS_DATASET};
use crate::permissions::{Permission, Resource};
use crate::query_params::{positive, ApiQuery};
use crate::state::SharedState;

fn require(caller: &Caller) -> ApiResult<()> {
    caller
        .grants
        .require(&Resource::lake(METRICS_DATASET), Permission::Read)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecentQuery {
    /// The window, in minutes back from now (default 5, at most 10080).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 10080)]
    pub minutes: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SpentRecently {
    pub minutes: u64,
    pub since: DateTime<Utc>,
    /// Sum of `amount` of the transactions that landed since then.
    pub total_spent: f64,
    pub transactions: i64,
}

/// Total spent in the last minutes, by ingestion time.
#[utoipa::path(get, path = "/api/v2/metrics/spent-recently", tag = "metrics",
    security(("bearer" = [])), params(RecentQuery),
    responses(
        (status = 200, body = SpentRecently),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn spent_recently(
    State(state): State<SharedState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<RecentQuery>,
) -> ApiResult<Json<SpentRecently>> {
    require(&caller)?;
    let minutes = positive("minutes", query.minutes.as_deref(), 5, 10_080)?;
    let since = Utc::now() - chrono::Duration::minutes(minutes as i64);
    let (total_spent, transactions) = metrics::spent_since(&state.lake, since).await?;
    Ok(Json(SpentRecently {
        minutes,
        since,
        total_spent,
        transactions,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// How many rows, largest first (default 10, at most 10000).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 10000)]
    pub limit: Option<String>,
}

impl LimitQuery {
    /// The checked limit (400 naming `limit` when it is not 1 to 10000).
    fn checked_limit(&self) -> Result<usize, crate::error::ApiError> {
        Ok(positive("limit", self.limit.as_deref(), 10, 10_000)? as usize)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MetricRows {
    pub dataset: String,
    #[schema(value_type = Vec<Object>)]
    pub rows: serde_json::Value,
}

fn rows(batches: &[arrow_array::RecordBatch]) -> ApiResult<MetricRows> {
    let json = encode::json_array(batches)?;
    Ok(MetricRows {
        dataset: METRICS_DATASET.to_string(),
        rows: serde_json::from_slice(&json).map_err(crate::error::ApiError::internal)?,
    })
}

/// Total spent and transaction count per user and transaction type, largest first.
#[utoipa::path(get, path = "/api/v2/metrics/spent-per-user-type", tag = "metrics",
    security(("bearer" = [])), params(LimitQuery),
    responses(
        (status = 200, body = MetricRows),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn spent_per_user_type(
    State(state): State<SharedState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> ApiResult<Json<MetricRows>> {
    require(&caller)?;
    Ok(Json(rows(
        &metrics::spent_per_user_type(&state.lake, query.checked_limit()?).await?,
    )?))
}

/// Products by total quantity sold, largest first.
#[utoipa::path(get, path = "/api/v2/metrics/top-products", tag = "metrics",
    security(("bearer" = [])), params(LimitQuery),
    responses(
        (status = 200, body = MetricRows),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn top_products(
    State(state): State<SharedState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> ApiResult<Json<MetricRows>> {
    require(&caller)?;
    Ok(Json(rows(
        &metrics::top_products(&state.lake, query.checked_limit()?).await?,
    )?))
}
