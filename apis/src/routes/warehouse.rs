//! `GET /api/v2/warehouse/{table}`: a page of a warehouse table.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::lake::page::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::permissions::{Permission, Resource};
use crate::query_params::{positive, ApiQuery};
use crate::state::SharedState;
use crate::warehouse;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WarehouseQuery {
    /// Page number, from 1.
    #[param(value_type = Option<u64>, minimum = 1)]
    pub page: Option<String>,
    /// Rows per page (default 10, at most 1000).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    pub page_size: Option<String>,
    /// Columns to return, comma-separated (default: all).
    pub fields: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WarehousePage {
    pub table: String,
    pub page: u64,
    pub page_size: u64,
    pub total: i64,
    #[schema(value_type = Vec<Object>)]
    pub rows: serde_json::Value,
}

/// A page of a warehouse table in primary-key order, with the total.
#[utoipa::path(get, path = "/api/v2/warehouse/{table}", tag = "warehouse",
    security(("bearer" = [])),
    params(("table" = String, Path, description = "Warehouse table (lower case)"), WarehouseQuery),
    responses(
        (status = 200, body = WarehousePage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn page(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<WarehouseQuery>,
) -> ApiResult<Json<WarehousePage>> {
    let valid_name = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid_name {
        caller
            .grants
            .require(&Resource::warehouse(&name), Permission::Read)?;
    } else {
        return Err(ApiError::not_found(format!(
            "there is no warehouse table {name:?}"
        )));
    }
    let page = positive("page", query.page.as_deref(), 1, 10_000_000)?;
    let page_size = positive(
        "page_size",
        query.page_size.as_deref(),
        DEFAULT_PAGE_SIZE,
        MAX_PAGE_SIZE,
    )?;
    let table = warehouse::table(&state.pool, &name).await?;
    let fields: Vec<String> = match query.fields.as_deref() {
        None => table.columns.iter().map(|c| c.name.clone()).collect(),
        Some(list) => {
            let mut fields = Vec::new();
            for field in list.split(',').map(str::trim) {
                let column = table
                    .columns
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(field))
                    .ok_or_else(|| {
                        ApiError::bad_parameter(
                            "fields",
                            format!("table {name} has no column {field:?}"),
                        )
                    })?;
                if !fields.contains(&column.name) {
                    fields.push(column.name.clone());
                }
            }
            fields
        }
    };
    let (total, rows) = warehouse::page(
        &state.pool,
        &table,
        &fields,
        page_size,
        (page - 1) * page_size,
    )
    .await?;
    Ok(Json(WarehousePage {
        table: name,
        page,
        page_size,
        total,
        rows,
    }))
}
