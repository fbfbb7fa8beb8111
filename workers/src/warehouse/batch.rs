//! A batch of table changes on its way to PostgreSQL: decoded records,
//! deduplicated per key (last write wins, a tombstone deletes), dead
//! letters, and the positions the batch reaches; written in one transaction
//! with `UNNEST` arrays, one statement per table and kind.

use std::collections::{BTreeMap, HashMap};

use lakehouse_streamsql::codec::{decode_key, write_json};
use lakehouse_streamsql::json_rules;
use lakehouse_streamsql::types::SqlType;
use lakehouse_streamsql::value::Value;
use serde_json::Value as Json;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Postgres, Transaction};

use super::schema::{
    column_name, db_error, ident, WarehouseTable, COL_INGESTION_TIME, COL_WINDOW_END,
    COL_WINDOW_START, DEAD_LETTER_TABLE,
};
use crate::sink::{Record, SinkError, TopicPartition};

/// One change of a table's row: its key, and its values in catalog order
/// (`None`: a tombstone, the row is deleted).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: Vec<Value>,
    pub window_start: Option<i64>,
    pub values: Option<Vec<Value>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub reason: String,
}

/// Decodes a changelog record of `table`, with its raw key (for deduplication).
pub fn decode(table: &WarehouseTable, record: &Record<'_>) -> Result<(Vec<u8>, Row), String> {
    let key_bytes = record.key.ok_or("a table record without a key")?;
    let (key, window_start) = decode_key(
        table.key_format,
        &table.key_columns,
        key_bytes,
        table.window_size_ms.is_some(),
    )?;
    let Some(value) = record.value else {
        let tombstone = Row {
            key,
            window_start,
            values: None,
        };
        return Ok((key_bytes.to_vec(), tombstone));
    };
    let Json::Object(object) =
        serde_json::from_slice::<Json>(value).map_err(|e| format!("value is not JSON: {e}"))?
    else {
        return Err("value is not a JSON object".into());
    };
    let values = table
        .value_columns
        .iter()
        .map(|c| {
            let field = json_rules::lookup(&object, &c.name, &c.name.to_lowercase());
            json_rules::coerce(field, &c.ty).map_err(|e| format!("column {}: {e}", c.name))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let row = Row {
        key,
        window_start,
        values: Some(values),
    };
    Ok((key_bytes.to_vec(), row))
}

/// Changes staged since the last commit.
#[derive(Debug, Default)]
pub struct Batch {
    /// Per table, the latest change of each key.
    changes: Vec<HashMap<Vec<u8>, Row>>,
    pub dead_letters: Vec<DeadLetter>,
    /// Next offset per partition once the batch is committed.
    pub positions: BTreeMap<TopicPartition, i64>,
    pub records: usize,
}

impl Batch {
    pub fn new(tables: usize) -> Self {
        Self {
            changes: vec![HashMap::new(); tables],
            ..Self::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    pub fn stage(&mut self, table: usize, key: Vec<u8>, row: Row) {
        self.changes[table].insert(key, row);
    }

    pub fn clear(&mut self) {
        self.changes.iter_mut().for_each(HashMap::clear);
        self.dead_letters.clear();
        self.positions.clear();
        self.records = 0;
    }

    /// Upserts and deletes, table by table, then the dead letters, in `tx`.
    pub async fn write(
        &self,
        tables: &[WarehouseTable],
        tx: &mut Transaction<'_, Postgres>,
    ) -> Result<(), SinkError> {
        for (table, changes) in tables.iter().zip(&self.changes) {
            let (upserts, deletes): (Vec<&Row>, Vec<&Row>) =
                changes.values().partition(|r| r.values.is_some());
            if !upserts.is_empty() {
                let sql = upsert_sql(table);
                let query = bind_rows(sqlx::query(&sql), table, &upserts, true);
                query
                    .execute(&mut **tx)
                    .await
                    .map_err(db_error(format!("upsert into {}", table.name)))?;
            }
            if !deletes.is_empty() {
                let sql = delete_sql(table);
                let query = bind_rows(sqlx::query(&sql), table, &deletes, false);
                query
                    .execute(&mut **tx)
                    .await
                    .map_err(db_error(format!("delete from {}", table.name)))?;
            }
        }
        if !self.dead_letters.is_empty() {
            let d = &self.dead_letters;
            sqlx::query(&format!(
                "INSERT INTO {DEAD_LETTER_TABLE} (topic, partition, \"offset\", key, value, reason)
                 SELECT * FROM UNNEST($1::text[], $2::integer[], $3::bigint[], $4::bytea[], $5::bytea[], $6::text[])"
            ))
            .bind(d.iter().map(|x| x.topic.clone()).collect::<Vec<_>>())
            .bind(d.iter().map(|x| x.partition).collect::<Vec<_>>())
            .bind(d.iter().map(|x| x.offset).collect::<Vec<_>>())
            .bind(d.iter().map(|x| x.key.clone()).collect::<Vec<_>>())
            .bind(d.iter().map(|x| x.value.clone()).collect::<Vec<_>>())
            .bind(d.iter().map(|x| x.reason.clone()).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await
            .map_err(db_error("record dead letters"))?;
        }
        Ok(())
    }
}

fn array_type(ty: &SqlType) -> &'static str {
    match ty {
        SqlType::Boolean => "boolean[]",
        SqlType::Int => "integer[]",
        SqlType::Bigint => "bigint[]",
        SqlType::Double => "float8[]",
        SqlType::String | SqlType::Struct(_) => "text[]",
    }
}

type Parameter = (String, String, &'static str);

/// Parameters: key columns, (window start ms), then for upserts (window end ms)
/// and the values. Each is (column, expression over `u.cN`, array type).
fn parameters(table: &WarehouseTable, with_values: bool) -> Vec<Parameter> {
    fn push_typed(params: &mut Vec<Parameter>, name: String, ty: &SqlType) {
        let select = match ty {
            SqlType::Struct(_) => format!("u.c{}::jsonb", params.len()),
            _ => format!("u.c{}", params.len()),
        };
        params.push((name, select, array_type(ty)));
    }
    fn push_millis(params: &mut Vec<Parameter>, name: &str) {
        let select = format!("to_timestamp(u.c{} / 1000.0)", params.len());
        params.push((name.to_string(), select, "bigint[]"));
    }
    let mut params = Vec::new();
    for c in &table.key_columns {
        push_typed(&mut params, column_name(&c.name), &c.ty);
    }
    if table.window_size_ms.is_some() {
        push_millis(&mut params, COL_WINDOW_START);
        if with_values {
            push_millis(&mut params, COL_WINDOW_END);
        }
    }
    if with_values {
        for c in &table.value_columns {
            push_typed(&mut params, column_name(&c.name), &c.ty);
        }
    }
    params
}

fn unnest(params: &[Parameter]) -> String {
    let arrays: Vec<String> = params
        .iter()
        .enumerate()
        .map(|(i, (_, _, ty))| format!("${}::{ty}", i + 1))
        .collect();
    let aliases: Vec<String> = (0..params.len()).map(|i| format!("c{i}")).collect();
    format!("UNNEST({}) AS u({})", arrays.join(", "), aliases.join(", "))
}

pub fn upsert_sql(table: &WarehouseTable) -> String {
    let params = parameters(table, true);
    let columns: Vec<String> = params.iter().map(|(n, _, _)| ident(n)).collect();
    let selects: Vec<&str> = params.iter().map(|(_, s, _)| s.as_str()).collect();
    let key = table.primary_key();
    let updates: Vec<String> = params
        .iter()
        .map(|(n, _, _)| n)
        .filter(|n| !key.contains(n))
        .chain(std::iter::once(&COL_INGESTION_TIME.to_string()))
        .map(|n| format!("{0} = EXCLUDED.{0}", ident(n)))
        .collect();
    format!(
        "INSERT INTO {} ({}, {}) SELECT {}, now() FROM {} ON CONFLICT ({}) DO UPDATE SET {}",
        ident(&table.name),
        columns.join(", "),
        ident(COL_INGESTION_TIME),
        selects.join(", "),
        unnest(&params),
        key.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", "),
        updates.join(", ")
    )
}

pub fn delete_sql(table: &WarehouseTable) -> String {
    let params = parameters(table, false);
    let matches: Vec<String> = params
        .iter()
        .map(|(n, s, _)| format!("t.{} = {s}", ident(n)))
        .collect();
    format!(
        "DELETE FROM {} AS t USING {} WHERE {}",
        ident(&table.name),
        unnest(&params),
        matches.join(" AND ")
    )
}

type PgQuery<'q> = Query<'q, Postgres, PgArguments>;

/// Binds one array per parameter of [`parameters`].
fn bind_rows<'q>(
    mut query: PgQuery<'q>,
    table: &WarehouseTable,
    rows: &[&Row],
    with_values: bool,
) -> PgQuery<'q> {
    for (i, c) in table.key_columns.iter().enumerate() {
        query = bind_column(query, &c.ty, rows.iter().map(|r| &r.key[i]));
    }
    if let Some(size) = table.window_size_ms {
        let starts: Vec<i64> = rows
            .iter()
            .map(|r| r.window_start.unwrap_or_default())
            .collect();
        if with_values {
            let ends: Vec<i64> = starts.iter().map(|s| s + size).collect();
            query = query.bind(starts).bind(ends);
        } else {
            query = query.bind(starts);
        }
    }
    if with_values {
        for (i, c) in table.value_columns.iter().enumerate() {
            query = bind_column(
                query,
                &c.ty,
                rows.iter()
                    .map(|r| &r.values.as_ref().expect("upserts carry values")[i]),
            );
        }
    }
    query
}

fn bind_column<'q, 'v>(
    query: PgQuery<'q>,
    ty: &SqlType,
    values: impl Iterator<Item = &'v Value>,
) -> PgQuery<'q> {
    match ty {
        SqlType::Boolean => query.bind(
            values
                .map(|v| match v {
                    Value::Bool(b) => Some(*b),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        SqlType::Int => query.bind(
            values
                .map(|v| match v {
                    Value::Int(i) => i32::try_from(*i).ok(),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        SqlType::Bigint => query.bind(
            values
                .map(|v| match v {
                    Value::Int(i) => Some(*i),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        SqlType::Double => query.bind(
            values
                .map(|v| match v {
                    Value::Double(d) => Some(*d),
                    Value::Int(i) => Some(*i as f64),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        SqlType::String => query.bind(
            values
                .map(|v| match v {
                    Value::Str(s) => Some(s.to_string()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        SqlType::Struct(_) => query.bind(
            values
                .map(|v| {
                    (!v.is_null()).then(|| {
                        let mut out = Vec::new();
                        write_json(&mut out, v, ty);
                        String::from_utf8(out).expect("JSON is UTF-8")
                    })
                })
                .collect::<Vec<_>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakehouse_streamsql::plan::{Column, KeyFormat};
    use lakehouse_streamsql::types::SqlType;

    fn table(column: Column) -> WarehouseTable {
        WarehouseTable {
            relation: "T".into(),
            name: "t".into(),
            topic: "T".into(),
            key_format: KeyFormat::Kafka,
            key_columns: vec![Column::value("K", SqlType::String)],
            value_columns: vec![column],
            window_size_ms: None,
        }
    }

    fn decode_value(table: &WarehouseTable, value: &str) -> Result<Value, String> {
        let record = Record {
            topic: "T",
            partition: 0,
            offset: 0,
            timestamp_ms: None,
            key: Some(b"k"),
            value: Some(value.as_bytes()),
            source: None,
        };
        decode(table, &record).map(|(_, row)| row.values.expect("not a tombstone")[0].clone())
    }

    /// The shared rules' table, through the table sink's decoder.
    #[test]
    fn the_table_sink_reads_the_shared_case_table() {
        for case in json_rules::cases() {
            let table = table(Column::value("V", case.ty.clone()));
            let got = decode_value(&table, &format!(r#"{{"V":{}}}"#, case.json))
                .map(|v| json_rules::value_as_json(&v, &case.ty));
            case.check(got);
        }
        let table = table(Column::value("AMOUNT", SqlType::Double));
        for (record, expected) in json_rules::record_cases() {
            let value = decode_value(&table, record).unwrap();
            assert_eq!(
                json_rules::value_as_json(&value, &SqlType::Double),
                expected,
                "{record}"
            );
        }
    }
}
