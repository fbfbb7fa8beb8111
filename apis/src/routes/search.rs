//! `GET /api/v2/search`: full-text search over the lake's records, from the
//! index the indexer keeps current as files land.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::permissions::{Permission, Resource};
use crate::query_params::{date, positive, ApiQuery};
use crate::search::query::{SearchPage, SearchQueryError, SearchRequest};
use crate::state::SharedState;

const MAX_QUERY_CHARS: usize = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words or whole values (`TXN-…` ids, cities, statuses); all must
    /// match. Quotes make a phrase; `field:`-free tantivy syntax (`a OR b`,
    /// `-word`) works too.
    pub q: Option<String>,
    /// Only records of ingestion dates from this one (YYYY-MM-DD).
    pub since: Option<String>,
    /// Only this dataset (`TRANSACTIONS_FLAT` or `lake/TRANSACTIONS_FLAT`).
    pub resource: Option<String>,
    /// Page number, from 1.
    #[param(value_type = Option<u64>, minimum = 1)]
    pub page: Option<String>,
    /// Hits per page (default 20, at most 100).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 100)]
    pub page_size: Option<String>,
}

/// Records matching a query, best first, grouped by dataset and file, among
/// the datasets the caller may read.
#[utoipa::path(get, path = "/api/v2/search", tag = "lake", security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, body = SearchPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn search(
    State(state): State<SharedState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Json<SearchPage>> {
    let text = query.q.as_deref().map(str::trim).unwrap_or_default();
    if text.is_empty() {
        return Err(ApiError::bad_parameter("q", "a search needs words: q=..."));
    }
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::bad_parameter(
            "q",
            format!("at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    let since = date("since", query.since.as_deref())?;
    let page = positive("page", query.page.as_deref(), 1, 10_000)? as usize;
    let page_size = positive("page_size", query.page_size.as_deref(), 20, 100)? as usize;
    let datasets = state.lake.datasets()?;
    let resource = match query.resource.as_deref() {
        Some(name) => {
            let name = name.strip_prefix("lake/").unwrap_or(name);
            let dataset = state.lake.resolve(name)?;
            caller
                .grants
                .require(&Resource::lake(&dataset), Permission::Read)?;
            Some(dataset)
        }
        None => None,
    };
    let readable = match caller.grants.is_admin {
        true => None,
        false => Some(
            datasets
                .into_iter()
                .filter(|d| caller.grants.has(&Resource::lake(d), Permission::Read))
                .collect(),
        ),
    };
    let index = state.search.clone();
    let text = text.to_string();
    let found = tokio::task::spawn_blocking(move || {
        index.search(&SearchRequest {
            query: &text,
            readable,
            resource,
            since,
            page,
            page_size,
        })
    })
    .await
    .map_err(ApiError::internal)?;
    match found {
        Ok(page) => Ok(Json(page)),
        Err(SearchQueryError::Bad(bad)) => Err(ApiError::bad_parameter(
            "q",
            format!("cannot read the query: {bad}"),
        )),
        Err(SearchQueryError::Index(e)) => Err(ApiError::internal(e)),
    }
}
