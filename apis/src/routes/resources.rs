//! `GET /api/v2/resources`: the lake's datasets and the warehouse's tables
//! the caller may read, with what each holds.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::lake::inventory::{dataset_inventory, DatasetInventory};
use crate::lake::page::describe;
use crate::permissions::{Permission, Resource};
use crate::state::SharedState;
use crate::warehouse::{self, WarehouseColumn};

#[derive(Debug, Serialize, ToSchema)]
pub struct Column {
    pub name: String,
    /// string, integer, double, boolean, date, timestamp...
    pub data_type: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LakeResource {
    pub name: String,
    /// The resource permissions name: `lake/<name>`.
    pub resource: String,
    pub columns: Vec<Column>,
    #[serde(flatten)]
    pub inventory: DatasetInventory,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WarehouseResource {
    pub name: String,
    /// `warehouse/<name>`.
    pub resource: String,
    pub key: Vec<String>,
    pub columns: Vec<WarehouseColumn>,
    pub rows: i64,
    /// Newest `ingestion_time` of its rows.
    pub last_update: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Resources {
    pub lake: Vec<LakeResource>,
    pub warehouse: Vec<WarehouseResource>,
}

/// Every dataset and warehouse table the caller may read.
#[utoipa::path(get, path = "/api/v2/resources", tag = "lake", security(("bearer" = [])),
    responses((status = 200, body = Resources), (status = 401, body = ErrorBody)))]
pub async fn resources(
    State(state): State<SharedState>,
    caller: Caller,
) -> ApiResult<Json<Resources>> {
    let mut lake = Vec::new();
    for name in state.lake.datasets()? {
        let resource = Resource::lake(&name);
        if !caller.grants.has(&resource, Permission::Read) {
            continue;
        }
        let columns = match state.lake.schema(&name).await? {
            Some(schema) => describe(&schema)
                .into_iter()
                .map(|(name, data_type)| Column { name, data_type })
                .collect(),
            None => Vec::new(),
        };
        let inventory = dataset_inventory(&state.lake, &name)?;
        lake.push(LakeResource {
            resource: resource.as_str().to_string(),
            name,
            columns,
            inventory,
        });
    }
    let mut tables = Vec::new();
    for table in warehouse::tables(&state.pool).await? {
        let resource = Resource::warehouse(&table.name);
        if !caller.grants.has(&resource, Permission::Read) {
            continue;
        }
        let (rows, last_update) = warehouse::stats(&state.pool, &table).await?;
        tables.push(WarehouseResource {
            resource: resource.as_str().to_string(),
            name: table.name,
            key: table.key,
            columns: table.columns,
            rows,
            last_update,
        });
    }
    Ok(Json(Resources {
        lake,
        warehouse: tables,
    }))
}
