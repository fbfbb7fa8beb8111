//! API 2's reader of the warehouse: the stream-SQL tables the table sink
//! keeps in PostgreSQL (each has an `ingestion_time` column and a primary
//! key), paged in key order. Names come only from the catalog, never from
//! the request, before they are quoted into SQL.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::error::ApiError;

/// Tables of the lakehouse's own bookkeeping, never served as warehouse tables.
const INTERNAL_PREFIX: &str = "lakehouse_";

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WarehouseColumn {
    pub name: String,
    /// The PostgreSQL type.
    pub data_type: String,
}

#[derive(Debug, Clone)]
pub struct WarehouseTable {
    pub name: String,
    pub columns: Vec<WarehouseColumn>,
    pub key: Vec<String>,
}

/// Every warehouse table, by name.
pub async fn tables(pool: &PgPool) -> Result<Vec<WarehouseTable>, ApiError> {
    let rows: Vec<(String, String, String, Option<i32>)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text, c.data_type::text,
                (SELECT k.ordinal_position::int FROM information_schema.key_column_usage k
                 JOIN information_schema.table_constraints t
                   ON t.constraint_name = k.constraint_name AND t.table_schema = k.table_schema
                 WHERE t.constraint_type = 'PRIMARY KEY' AND k.table_schema = c.table_schema
                   AND k.table_name = c.table_name AND k.column_name = c.column_name)
         FROM information_schema.columns c
         WHERE c.table_schema = current_schema()
           AND c.table_name IN (SELECT table_name FROM information_schema.columns
                                WHERE table_schema = current_schema()
                                  AND column_name = 'ingestion_time')
         ORDER BY c.table_name, c.ordinal_position",
    )
    .fetch_all(pool)
    .await?;
    let mut tables: Vec<WarehouseTable> = Vec::new();
    let mut keys: Vec<Vec<(i32, String)>> = Vec::new();
    for (table, column, data_type, key_position) in rows {
        if table.starts_with(INTERNAL_PREFIX) {
            continue;
        }
        if tables.last().map(|t| t.name != table).unwrap_or(true) {
            tables.push(WarehouseTable {
                name: table.clone(),
                columns: Vec::new(),
                key: Vec::new(),
            });
            keys.push(Vec::new());
        }
        let current = tables.last_mut().expect("pushed");
        if let Some(position) = key_position {
            keys.last_mut()
                .expect("pushed")
                .push((position, column.clone()));
        }
        current.columns.push(WarehouseColumn {
            name: column,
            data_type,
        });
    }
    for (table, mut key) in tables.iter_mut().zip(keys) {
        key.sort();
        table.key = key.into_iter().map(|(_, c)| c).collect();
    }
    Ok(tables)
}

pub async fn table(pool: &PgPool, name: &str) -> Result<WarehouseTable, ApiError> {
    tables(pool)
        .await?
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| ApiError::not_found(format!("there is no warehouse table {name:?}")))
}

/// A quoted identifier (names come from the catalog, never from a request).
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Rows and newest update of a table.
pub async fn stats(
    pool: &PgPool,
    table: &WarehouseTable,
) -> Result<(i64, Option<DateTime<Utc>>), ApiError> {
    let (rows, newest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(&format!(
        "SELECT count(*), max(ingestion_time) FROM {}",
        quote(&table.name)
    ))
    .fetch_one(pool)
    .await?;
    Ok((rows, newest))
}

/// One page as a JSON array of row objects (PostgreSQL builds the JSON, so
/// every type keeps its own rendering), in primary-key order.
pub async fn page(
    pool: &PgPool,
    table: &WarehouseTable,
    fields: &[String],
    limit: u64,
    offset: u64,
) -> Result<(i64, serde_json::Value), ApiError> {
    let order: Vec<String> = if table.key.is_empty() {
        table.columns.iter().map(|c| quote(&c.name)).collect()
    } else {
        table.key.iter().map(|c| quote(c)).collect()
    };
    let projection: Vec<String> = fields.iter().map(|f| quote(f)).collect();
    let name = quote(&table.name);
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {name}"))
        .fetch_one(pool)
        .await?;
    let rows: Option<serde_json::Value> = sqlx::query_scalar(&format!(
        "SELECT json_agg(page) FROM (SELECT {} FROM {name} ORDER BY {} LIMIT $1 OFFSET $2) page",
        projection.join(", "),
        order.join(", ")
    ))
    .bind(limit as i64)
    .bind(offset as i64)
    .fetch_one(pool)
    .await?;
    Ok((
        total,
        rows.unwrap_or_else(|| serde_json::Value::Array(Vec::new())),
    ))
}
