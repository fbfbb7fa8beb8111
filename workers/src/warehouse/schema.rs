//! The warehouse's tables, derived from the stream SQL catalog (SYSTEM.md
//! section 5): one table per stream-SQL table, named in lower case, its key
//! columns (windowed tables: plus `windowstart`) as the primary key, the
//! value columns with real SQL types, and `ingestion_time`.
//!
//! On start the sink creates what is missing and adds columns the file
//! gained; a change it cannot apply without losing or corrupting data (a
//! column's type, the key) stops it with a message saying what differs.

use lakehouse_streamsql::plan::{Column, KeyFormat, Plan};
use lakehouse_streamsql::types::SqlType;
use sqlx::PgConnection;

use crate::sink::SinkError;

/// Window bounds of windowed tables, from the record key.
pub const COL_WINDOW_START: &str = "windowstart";
pub const COL_WINDOW_END: &str = "windowend";
pub const COL_INGESTION_TIME: &str = "ingestion_time";
/// Consumed positions, committed with the rows.
pub const OFFSETS_TABLE: &str = "lakehouse_sink_offsets";
/// Records the table sink could not apply, with the reason and origin.
pub const DEAD_LETTER_TABLE: &str = "lakehouse_sink_dead_letters";

/// A table of the warehouse and the changelog topic that feeds it.
#[derive(Debug, Clone)]
pub struct WarehouseTable {
    /// The stream-SQL name (upper case).
    pub relation: String,
    pub name: String,
    pub topic: String,
    pub key_format: KeyFormat,
    pub key_columns: Vec<Column>,
    pub value_columns: Vec<Column>,
    /// Window size in milliseconds (windowed tables).
    pub window_size_ms: Option<i64>,
}

impl WarehouseTable {
    /// Column names in insert order: keys, window bounds, values.
    pub fn column_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .key_columns
            .iter()
            .map(|c| column_name(&c.name))
            .collect();
        if self.window_size_ms.is_some() {
            names.push(COL_WINDOW_START.into());
            names.push(COL_WINDOW_END.into());
        }
        names.extend(self.value_columns.iter().map(|c| column_name(&c.name)));
        names
    }

    pub fn primary_key(&self) -> Vec<String> {
        let mut key: Vec<String> = self
            .key_columns
            .iter()
            .map(|c| column_name(&c.name))
            .collect();
        if self.window_size_ms.is_some() {
            key.push(COL_WINDOW_START.into());
        }
        key
    }

    /// Every column with its PostgreSQL type, as `information_schema` names it.
    pub fn typed_columns(&self) -> Vec<(String, &'static str)> {
        let mut out: Vec<(String, &'static str)> = self
            .key_columns
            .iter()
            .map(|c| (column_name(&c.name), pg_type(&c.ty)))
            .collect();
        if self.window_size_ms.is_some() {
            out.push((COL_WINDOW_START.into(), "timestamp with time zone"));
            out.push((COL_WINDOW_END.into(), "timestamp with time zone"));
        }
        out.extend(
            self.value_columns
                .iter()
                .map(|c| (column_name(&c.name), pg_type(&c.ty))),
        );
        out.push((COL_INGESTION_TIME.into(), "timestamp with time zone"));
        out
    }
}

/// Every table of the catalog.
pub fn warehouse_tables(plan: &Plan) -> Vec<WarehouseTable> {
    plan.tables()
        .map(|r| WarehouseTable {
            relation: r.name.clone(),
            name: r.name.to_lowercase(),
            topic: r.topic.clone(),
            key_format: r.key_format,
            key_columns: r.key_columns().cloned().collect(),
            value_columns: r.value_columns().cloned().collect(),
            window_size_ms: r.window.map(|w| match w {
                lakehouse_streamsql::ast::WindowDef::Tumbling { size_ms, .. }
                | lakehouse_streamsql::ast::WindowDef::Hopping { size_ms, .. } => size_ms,
            }),
        })
        .collect()
}

pub fn column_name(sql_name: &str) -> String {
    sql_name.to_lowercase()
}

/// The PostgreSQL type of a SQL type, spelled as `information_schema.columns.data_type` does.
pub fn pg_type(ty: &SqlType) -> &'static str {
    match ty {
        SqlType::Boolean => "boolean",
        SqlType::Int => "integer",
        SqlType::Bigint => "bigint",
        SqlType::Double => "double precision",
        SqlType::String => "text",
        SqlType::Struct(_) => "jsonb",
    }
}

/// A quoted identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates the sink's own tables and every warehouse table, adds missing
/// columns, and refuses changes it cannot apply safely.
pub async fn migrate(
    conn: &mut PgConnection,
    tables: &[WarehouseTable],
) -> Result<Vec<String>, SinkError> {
    let mut changes = Vec::new();
    let ddl = format!(
        "CREATE TABLE IF NOT EXISTS {OFFSETS_TABLE} (
            consumer_group text NOT NULL,
            topic text NOT NULL,
            partition integer NOT NULL,
            next_offset bigint NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (consumer_group, topic, partition));
        CREATE TABLE IF NOT EXISTS {DEAD_LETTER_TABLE} (
            id bigserial PRIMARY KEY,
            topic text NOT NULL,
            partition integer NOT NULL,
            \"offset\" bigint NOT NULL,
            key bytea,
            value bytea,
            reason text NOT NULL,
            dead_lettered_at timestamptz NOT NULL DEFAULT now())"
    );
    sqlx::raw_sql(&ddl)
        .execute(&mut *conn)
        .await
        .map_err(db_error("create the sink's tables"))?;
    for table in tables {
        let existing: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(&table.name)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error(format!("read the columns of {}", table.name)))?;
        if existing.is_empty() {
            let columns: Vec<String> = table
                .typed_columns()
                .iter()
                .map(|(name, ty)| {
                    let not_null = if table.primary_key().contains(name) {
                        " NOT NULL"
                    } else {
                        ""
                    };
                    format!("{} {ty}{not_null}", ident(name))
                })
                .collect();
            let pk: Vec<String> = table.primary_key().iter().map(|c| ident(c)).collect();
            let sql = format!(
                "CREATE TABLE {} ({}, PRIMARY KEY ({}))",
                ident(&table.name),
                columns.join(", "),
                pk.join(", ")
            );
            sqlx::raw_sql(&sql)
                .execute(&mut *conn)
                .await
                .map_err(db_error(format!("create {}", table.name)))?;
            changes.push(format!("created table {}", table.name));
            continue;
        }
        let primary_key: Vec<String> = sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = to_regclass(quote_ident($1)) AND i.indisprimary
             ORDER BY array_position(i.indkey::int2[], a.attnum)",
        )
        .bind(&table.name)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error(format!("read the key of {}", table.name)))?;
        if primary_key != table.primary_key() {
            return Err(SinkError::Schema(format!(
                "table {} has the key ({}) in the warehouse but ({}) in the SQL file; \
                 the sink will not re-key existing rows: drop or migrate the table by hand",
                table.name,
                primary_key.join(", "),
                table.primary_key().join(", ")
            )));
        }
        for (name, ty) in table.typed_columns() {
            match existing.iter().find(|(n, _)| *n == name) {
                Some((_, current)) if current != ty => {
                    return Err(SinkError::Schema(format!(
                        "column {}.{name} is {current} in the warehouse but {ty} in the SQL file; \
                         the sink will not convert existing rows: migrate the column by hand",
                        table.name
                    )))
                }
                Some(_) => {}
                None => {
                    let sql = format!(
                        "ALTER TABLE {} ADD COLUMN {} {ty}",
                        ident(&table.name),
                        ident(&name)
                    );
                    sqlx::raw_sql(&sql)
                        .execute(&mut *conn)
                        .await
                        .map_err(db_error(format!("add {name} to {}", table.name)))?;
                    changes.push(format!("added column {}.{name} {ty}", table.name));
                }
            }
        }
    }
    Ok(changes)
}

pub fn db_error(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> SinkError {
    let context = context.into();
    move |e| SinkError::Storage(format!("cannot {context}: {e}"))
}
