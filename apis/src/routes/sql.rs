//! `POST /api/v2/sql`: one read-only SELECT over the caller's datasets.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::json_body::ApiJson;
use crate::lake::encode::{self, Format};
use crate::lake::sql;
use crate::state::SharedState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    /// One SELECT; datasets are tables by their names, in any case
    /// (e.g. `SELECT status, count(*) FROM transactions_flat GROUP BY status`).
    pub query: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SqlResponse {
    pub columns: Vec<String>,
    pub row_count: usize,
    /// True when the row cap cut the result.
    pub truncated: bool,
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Value>,
}

/// Runs one read-only SELECT over the datasets the caller may read, with a
/// row cap and a time limit. `Accept: text/csv` or `application/x-ndjson`
/// gives the rows in those formats.
#[utoipa::path(post, path = "/api/v2/sql", tag = "lake", security(("bearer" = [])),
    request_body = SqlRequest,
    responses(
        (status = 200, body = SqlResponse),
        (status = 400, description = "Not one SELECT, or it does not plan (the message gives the line)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 503, description = "Over the time limit", body = ErrorBody)))]
pub async fn query(
    State(state): State<SharedState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SqlRequest>,
) -> ApiResult<Response> {
    let settings = &state.settings;
    let result = sql::run(
        &state.lake,
        &caller.grants,
        &request.query,
        settings.sql_max_rows,
        settings.sql_timeout,
    )
    .await?;
    let format = Format::from_headers(&headers);
    let body = match format {
        Format::Csv => encode::csv(&result.batches, &result.columns)?,
        Format::Ndjson => encode::ndjson(&result.batches)?,
        Format::Json => {
            let records = encode::json_array(&result.batches)?;
            let header = serde_json::json!({
                "columns": result.columns,
                "row_count": result.rows,
                "truncated": result.truncated,
            });
            encode::object_with_rows(header, "rows", &records)?
        }
    };
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}
