//! `GET /api/v2/datasets/{name}` (a page of records) and
//! `GET /api/v2/datasets/{name}/versions` (the ingestion dates held).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::lake::encode::{self, Format};
use crate::lake::page::{self, DatasetQuery};
use crate::lake::page_read;
use crate::permissions::{Permission, Resource};
use crate::query_params::ApiQuery;
use crate::state::SharedState;

/// A page of a dataset (the JSON form; CSV and NDJSON carry the same rows).
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetPage {
    pub dataset: String,
    /// The page number; absent when the page was asked for by cursor.
    pub page: Option<u64>,
    pub page_size: u64,
    /// Rows matching the filters, over all pages.
    pub total: u64,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Versions {
    pub dataset: String,
    #[schema(value_type = Vec<String>, format = Date)]
    pub versions: Vec<NaiveDate>,
}

/// The dataset a caller may read, by the name in the path.
fn readable(state: &SharedState, caller: &Caller, name: &str) -> ApiResult<String> {
    let resolved = state.lake.resolve(name);
    // Without read on the name asked for, the caller learns nothing about
    // whether it exists.
    let dataset = match resolved {
        Ok(dataset) => dataset,
        Err(e) => {
            if crate::lake::catalog::is_dataset_name(name) {
                caller
                    .grants
                    .require(&Resource::lake(name), Permission::Read)?;
            }
            return Err(e);
        }
    };
    caller
        .grants
        .require(&Resource::lake(&dataset), Permission::Read)?;
    Ok(dataset)
}

/// A page of records in a stable order (Kafka partition, then offset),
/// filtered and projected, with the total. `Accept: text/csv` or
/// `application/x-ndjson` gives the same rows in those formats.
#[utoipa::path(get, path = "/api/v2/datasets/{name}", tag = "lake", security(("bearer" = [])),
    params(("name" = String, Path, description = "Dataset (stream folder) name"), DatasetQuery),
    responses(
        (status = 200, body = DatasetPage, content(
            (DatasetPage = "application/json"),
            (String = "application/x-ndjson"),
            (String = "text/csv"))),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn page(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<DatasetQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let dataset = readable(&state, &caller, &name)?;
    let schema = state
        .lake
        .schema(&dataset)
        .await?
        .unwrap_or_else(|| std::sync::Arc::new(arrow_schema::Schema::empty()));
    let request = query.check(&schema)?;
    let result = page_read::read_page(&state.lake, &dataset, &request).await?;
    let format = Format::from_headers(&headers);
    let body = match format {
        Format::Ndjson => encode::ndjson(&result.batches)?,
        Format::Csv => {
            let columns: Vec<String> = match &request.fields {
                Some(fields) => fields.clone(),
                None => schema.fields().iter().map(|f| f.name().clone()).collect(),
            };
            encode::csv(&result.batches, &columns)?
        }
        Format::Json => {
            let records = encode::json_array(&result.batches)?;
            let header = serde_json::json!({
                "dataset": dataset,
                "page": match request.position { page::Position::Page(n) => Some(n), _ => None },
                "page_size": request.page_size,
                "total": result.total,
                "next_cursor": result.next_cursor,
            });
            encode::object_with_rows(header, "records", &records)?
        }
    };
    let mut response = ([(header::CONTENT_TYPE, format.content_type())], body).into_response();
    if let Ok(total) = result.total.to_string().parse() {
        response.headers_mut().insert("x-total-count", total);
    }
    Ok(response)
}

/// The ingestion dates a dataset holds: each is a `version` of it.
#[utoipa::path(get, path = "/api/v2/datasets/{name}/versions", tag = "lake",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Dataset (stream folder) name")),
    responses(
        (status = 200, body = Versions),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn versions(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Versions>> {
    let dataset = readable(&state, &caller, &name)?;
    let versions = page::versions(&state.lake, &dataset)?;
    Ok(Json(Versions { dataset, versions }))
}
