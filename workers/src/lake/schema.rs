//! Which topics land in the lake, and with which Arrow schema, derived from
//! the stream SQL catalog: every derived stream's topic with its columns,
//! and every source topic (e.g. `transaction_log`) with the union of the
//! columns its source streams declare plus the record's full JSON.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use lakehouse_streamsql::ast::RelationKind;
use lakehouse_streamsql::plan::Plan;
use lakehouse_streamsql::types::SqlType;

/// Lineage columns appended to every landed row (names shared with the lake's readers).
pub use lakehouse::lake::{
    COL_INGESTION_TIME, COL_OFFSET, COL_PARTITION, COL_RAW_JSON, COL_SOURCE, COL_TIMESTAMP,
    COL_TOPIC,
};

/// How a topic's records are checked before they land.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// The transaction message of SYSTEM.md section 2: the schema's types,
    /// and its required fields present (`transaction::REQUIRED_FIELDS`).
    /// Values are never checked against the classic producer's lists.
    Transaction,
    /// The JSON value must decode into the schema's types.
    SchemaTypes,
}

/// A topic the lake sink lands, and how.
#[derive(Debug, Clone)]
pub struct LandedTopic {
    pub topic: String,
    /// Names of the catalog's streams over this topic.
    pub streams: Vec<String>,
    /// A source topic: keeps its raw JSON, has no source position.
    pub is_source: bool,
    pub validation: Validation,
    /// Columns decoded from the JSON value.
    pub value_schema: SchemaRef,
    /// Value columns plus lineage columns: the Parquet file schema.
    pub file_schema: SchemaRef,
}

/// Every stream topic of the catalog, in catalog order, each once.
pub fn landed_topics(plan: &Plan) -> Vec<LandedTopic> {
    let mut landed: Vec<(LandedTopic, Vec<Field>)> = Vec::new();
    for relation in plan
        .relations
        .iter()
        .filter(|r| r.kind == RelationKind::Stream)
    {
        let position = landed.iter().position(|(t, _)| t.topic == relation.topic);
        let (entry, fields) = match position {
            Some(i) => &mut landed[i],
            None => {
                let is_source = relation.is_source;
                let validation =
                    if is_source && relation.topic == lakehouse::topics::TRANSACTION_LOG {
                        Validation::Transaction
                    } else {
                        Validation::SchemaTypes
                    };
                landed.push((
                    LandedTopic {
                        topic: relation.topic.clone(),
                        streams: Vec::new(),
                        is_source,
                        validation,
                        value_schema: Arc::new(Schema::empty()),
                        file_schema: Arc::new(Schema::empty()),
                    },
                    Vec::new(),
                ));
                landed.last_mut().expect("just pushed")
            }
        };
        entry.streams.push(relation.name.clone());
        // Key columns travel in the record key, not in the JSON value.
        for column in relation.value_columns() {
            // Source topics hold producers' JSON, whose field names ksqlDB matches
            // case-insensitively; real producers write them in lower case.
            let name = if entry.is_source {
                column.name.to_lowercase()
            } else {
                column.name.clone()
            };
            if !fields.iter().any(|f| f.name() == &name) {
                fields.push(Field::new(
                    name,
                    arrow_type(&column.ty, entry.is_source),
                    true,
                ));
            }
        }
    }
    landed
        .into_iter()
        .map(|(mut topic, fields)| {
            let mut file_fields = fields.clone();
            if topic.is_source {
                file_fields.push(Field::new(COL_RAW_JSON, DataType::Utf8, false));
            } else {
                file_fields.push(Field::new(COL_SOURCE, DataType::Utf8, true));
            }
            file_fields.extend(lineage_fields());
            topic.value_schema = Arc::new(Schema::new(fields));
            topic.file_schema = Arc::new(Schema::new(file_fields));
            topic
        })
        .collect()
}

fn lineage_fields() -> [Field; 5] {
    [
        Field::new(COL_TOPIC, DataType::Utf8, false),
        Field::new(COL_PARTITION, DataType::Int32, false),
        Field::new(COL_OFFSET, DataType::Int64, false),
        Field::new(
            COL_TIMESTAMP,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new(
            COL_INGESTION_TIME,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]
}

/// The Arrow type of a SQL type; struct field names follow the same case rule as columns.
pub fn arrow_type(ty: &SqlType, lower_case_names: bool) -> DataType {
    match ty {
        SqlType::Boolean => DataType::Boolean,
        SqlType::Int => DataType::Int32,
        SqlType::Bigint => DataType::Int64,
        SqlType::Double => DataType::Float64,
        SqlType::String => DataType::Utf8,
        SqlType::Struct(fields) => DataType::Struct(Fields::from(
            fields
                .iter()
                .map(|(name, ty)| {
                    let name = if lower_case_names {
                        name.to_lowercase()
                    } else {
                        name.clone()
                    };
                    Field::new(name, arrow_type(ty, lower_case_names), true)
                })
                .collect::<Vec<_>>(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQL: &str = "
        CREATE STREAM raw (transaction_id VARCHAR, amount DOUBLE,
            location STRUCT<city VARCHAR, country VARCHAR>)
            WITH (KAFKA_TOPIC='transaction_log', VALUE_FORMAT='JSON');
        CREATE STREAM narrow (transaction_id VARCHAR, quantity INT)
            WITH (KAFKA_TOPIC='transaction_log', VALUE_FORMAT='JSON');
        CREATE STREAM big AS SELECT transaction_id, amount * 2 AS doubled FROM raw WHERE amount > 500 EMIT CHANGES;
        CREATE TABLE totals AS SELECT transaction_id, COUNT(*) AS n FROM raw GROUP BY transaction_id EMIT CHANGES;
    ";

    #[test]
    fn source_topics_land_once_with_the_union_of_their_streams_columns() {
        let plan = lakehouse_streamsql::load(SQL).unwrap();
        let topics = landed_topics(&plan);
        assert_eq!(topics.len(), 2, "tables do not land in the stream lake");
        let raw = &topics[0];
        assert_eq!(raw.topic, "transaction_log");
        assert_eq!(raw.streams, ["RAW", "NARROW"]);
        assert_eq!(raw.validation, Validation::Transaction);
        let names: Vec<&str> = raw
            .file_schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(
            names,
            [
                "transaction_id",
                "amount",
                "location",
                "quantity",
                COL_RAW_JSON,
                COL_TOPIC,
                COL_PARTITION,
                COL_OFFSET,
                COL_TIMESTAMP,
                COL_INGESTION_TIME
            ]
        );
        assert!(
            matches!(raw.value_schema.field(2).data_type(), DataType::Struct(f) if f[0].name() == "city")
        );

        let big = &topics[1];
        assert_eq!(big.topic, "BIG");
        assert!(!big.is_source);
        assert_eq!(big.value_schema.field(0).name(), "TRANSACTION_ID");
        assert_eq!(big.value_schema.field(1).data_type(), &DataType::Float64);
        assert!(big.file_schema.field_with_name(COL_SOURCE).is_ok());
    }
}
