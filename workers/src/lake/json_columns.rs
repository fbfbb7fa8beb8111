//! JSON objects decoded straight into Arrow columns, following the landed
//! topic's schema, in one pass and without a copy per value: the parser's
//! string slices are appended to the column buffers as they are read.
//!
//! A record either lands whole or not at all: when a value does not fit its
//! column, every column is cut back to the rows before it and the record is
//! refused with the reason. Fields the schema does not name are skipped, and
//! fields a record leaves out are null, as ksqlDB reads JSON values.

use std::fmt;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray, StructArray,
};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Fields, SchemaRef};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Serialize;

mod serialize;

/// Columns being filled from JSON objects.
#[derive(Debug)]
pub struct JsonColumns {
    root: StructColumn,
    rows: usize,
}

impl JsonColumns {
    /// Empty columns for `schema`. Every type the catalog produces is supported;
    /// any other type is refused here rather than mid-stream.
    pub fn new(schema: &SchemaRef) -> Result<Self, ArrowError> {
        Ok(Self {
            root: StructColumn::new(schema.fields())?,
            rows: 0,
        })
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one JSON object as a row, or leaves the columns as they were
    /// and says why the value does not fit.
    pub fn push(&mut self, json: &[u8]) -> Result<(), String> {
        // Checked whole here, skipped fields included: a source topic's values
        // are kept as received in a column that must hold UTF-8.
        let text = std::str::from_utf8(json).map_err(|e| format!("value is not UTF-8: {e}"))?;
        let mut deserializer = sonic_rs::Deserializer::from_str(text);
        let decoded = deserializer
            .deserialize_map(ObjectVisitor(&mut self.root))
            .and_then(|()| deserializer.end())
            .map_err(|e| lakehouse::json::message(&e));
        self.end_row(decoded)
    }

    /// Appends a value already decoded, by the rules of [`JsonColumns::push`]
    /// (its fields by name, each value as its JSON would be read), or leaves
    /// the columns as they were and says why it does not fit.
    pub fn push_decoded<T: Serialize>(&mut self, value: &T) -> Result<(), String> {
        let appended = value
            .serialize(serialize::RowSerializer(&mut self.root))
            .map_err(|e| e.0);
        self.end_row(appended)
    }

    /// Counts the row just appended, or cuts every column back to the rows before it.
    fn end_row(&mut self, appended: Result<(), String>) -> Result<(), String> {
        match appended {
            Ok(()) => self.rows += 1,
            Err(_) => self.root.truncate(self.rows),
        }
        appended
    }

    /// The rows so far as arrays, one per schema field; the columns start empty again.
    pub fn finish(&mut self) -> Result<Vec<ArrayRef>, ArrowError> {
        let rows = std::mem::take(&mut self.rows);
        self.root
            .children
            .iter_mut()
            .map(|c| c.finish(rows))
            .collect()
    }
}

/// Which rows are null; nothing allocated while every row has a value.
#[derive(Debug, Default)]
struct Validity {
    valid: Vec<bool>,
    nulls: usize,
}

impl Validity {
    fn push(&mut self, valid: bool) {
        self.valid.push(valid);
        self.nulls += usize::from(!valid);
    }

    fn truncate(&mut self, rows: usize) {
        for &valid in &self.valid[rows.min(self.valid.len())..] {
            self.nulls -= usize::from(!valid);
        }
        self.valid.truncate(rows);
    }

    fn finish(&mut self) -> Option<NullBuffer> {
        let valid = std::mem::take(&mut self.valid);
        let nulls = std::mem::take(&mut self.nulls);
        (nulls > 0).then(|| NullBuffer::new(BooleanBuffer::from(valid)))
    }
}

/// Fixed-width values with their validity; a null row holds `T::default()`.
#[derive(Debug, Default)]
struct Primitive<T> {
    values: Vec<T>,
    validity: Validity,
}

impl<T: Default> Primitive<T> {
    fn push(&mut self, value: T) {
        self.values.push(value);
        self.validity.push(true);
    }

    fn push_null(&mut self) {
        self.values.push(T::default());
        self.validity.push(false);
    }

    fn truncate(&mut self, rows: usize) {
        self.values.truncate(rows);
        self.validity.truncate(rows);
    }

    /// The values and nulls so far; the next batch's buffer is reserved at this one's size.
    fn take(&mut self, rows: usize) -> (Vec<T>, Option<NullBuffer>) {
        let values = std::mem::replace(&mut self.values, Vec::with_capacity(rows));
        (values, self.validity.finish())
    }
}

#[derive(Debug)]
enum Column {
    Boolean(Primitive<bool>),
    Int32(Primitive<i32>),
    Int64(Primitive<i64>),
    Float64(Primitive<f64>),
    Utf8 {
        /// End of each row's bytes in `data`; the first row starts at 0.
        ends: Vec<i32>,
        data: Vec<u8>,
        validity: Validity,
    },
    Struct(StructColumn, Validity),
}

impl Column {
    fn new(data_type: &DataType) -> Result<Self, ArrowError> {
        Ok(match data_type {
            DataType::Boolean => Column::Boolean(Primitive::default()),
            DataType::Int32 => Column::Int32(Primitive::default()),
            DataType::Int64 => Column::Int64(Primitive::default()),
            DataType::Float64 => Column::Float64(Primitive::default()),
            DataType::Utf8 => Column::Utf8 {
                ends: Vec::new(),
                data: Vec::new(),
                validity: Validity::default(),
            },
            DataType::Struct(fields) => {
                Column::Struct(StructColumn::new(fields)?, Validity::default())
            }
            other => {
                return Err(ArrowError::NotYetImplemented(format!(
                    "landing JSON into {other} columns"
                )))
            }
        })
    }

    fn push_null(&mut self) {
        match self {
            Column::Boolean(column) => column.push_null(),
            Column::Int32(column) => column.push_null(),
            Column::Int64(column) => column.push_null(),
            Column::Float64(column) => column.push_null(),
            Column::Utf8 {
                ends,
                data,
                validity,
            } => {
                ends.push(data.len() as i32);
                validity.push(false);
            }
            Column::Struct(column, validity) => {
                for child in &mut column.children {
                    child.push_null();
                }
                validity.push(false);
            }
        }
    }

    fn truncate(&mut self, rows: usize) {
        match self {
            Column::Boolean(column) => column.truncate(rows),
            Column::Int32(column) => column.truncate(rows),
            Column::Int64(column) => column.truncate(rows),
            Column::Float64(column) => column.truncate(rows),
            Column::Utf8 {
                ends,
                data,
                validity,
            } => {
                ends.truncate(rows);
                data.truncate(ends.last().map_or(0, |&end| end as usize));
                validity.truncate(rows);
            }
            Column::Struct(column, validity) => {
                column.truncate(rows);
                validity.truncate(rows);
            }
        }
    }

    fn finish(&mut self, rows: usize) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Column::Boolean(column) => {
                let (values, nulls) = column.take(rows);
                Arc::new(BooleanArray::new(BooleanBuffer::from(values), nulls))
            }
            Column::Int32(column) => {
                let (values, nulls) = column.take(rows);
                Arc::new(Int32Array::try_new(ScalarBuffer::from(values), nulls)?)
            }
            Column::Int64(column) => {
                let (values, nulls) = column.take(rows);
                Arc::new(Int64Array::try_new(ScalarBuffer::from(values), nulls)?)
            }
            Column::Float64(column) => {
                let (values, nulls) = column.take(rows);
                Arc::new(Float64Array::try_new(ScalarBuffer::from(values), nulls)?)
            }
            Column::Utf8 {
                ends,
                data,
                validity,
            } => {
                let bytes = data.len();
                let mut offsets = Vec::with_capacity(ends.len() + 1);
                offsets.push(0);
                offsets.append(ends);
                let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
                let data = Buffer::from_vec(std::mem::replace(data, Vec::with_capacity(bytes)));
                // SAFETY: the offsets rise from 0 to the end of `data`, and every
                // row's bytes came from a `&str`, so each slice is UTF-8.
                Arc::new(unsafe { StringArray::new_unchecked(offsets, data, validity.finish()) })
            }
            Column::Struct(column, validity) => {
                let children = column
                    .children
                    .iter_mut()
                    .map(|c| c.finish(rows))
                    .collect::<Result<Vec<_>, _>>()?;
                Arc::new(StructArray::try_new(
                    column.fields.clone(),
                    children,
                    validity.finish(),
                )?)
            }
        })
    }

    fn expected(&self) -> &'static str {
        match self {
            Column::Boolean(..) => "a boolean",
            Column::Int32(..) => "a 32-bit integer (INT)",
            Column::Int64(..) => "a 64-bit integer (BIGINT)",
            Column::Float64(..) => "a number (DOUBLE)",
            Column::Utf8 { .. } => "a string (VARCHAR)",
            Column::Struct(..) => "an object (STRUCT)",
        }
    }
}

/// The fields of an object, in schema order.
#[derive(Debug)]
struct StructColumn {
    fields: Fields,
    children: Vec<Column>,
    /// Which fields the object being read has set.
    seen: Vec<bool>,
    /// The name each field was last found by when appended from a decoded
    /// value: serde's field names are `'static`, so one pointer comparison
    /// finds the field again (`serialize.rs`).
    static_names: Vec<Option<&'static str>>,
}

impl StructColumn {
    fn new(fields: &Fields) -> Result<Self, ArrowError> {
        Ok(Self {
            fields: fields.clone(),
            children: fields
                .iter()
                .map(|f| Column::new(f.data_type()))
                .collect::<Result<_, _>>()?,
            seen: vec![false; fields.len()],
            static_names: vec![None; fields.len()],
        })
    }

    fn truncate(&mut self, rows: usize) {
        for child in &mut self.children {
            child.truncate(rows);
        }
    }

    /// The field named `name`, looked up from where the previous one was:
    /// producers write their fields in one order.
    fn field_index(&self, name: &str, after: usize) -> Option<usize> {
        let n = self.fields.len();
        (0..n)
            .map(|i| (after + i) % n)
            .find(|&i| self.fields[i].name() == name)
    }
}

/// Reads an object into a struct column's children.
struct ObjectVisitor<'c>(&'c mut StructColumn);

impl<'de> Visitor<'de> for ObjectVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let column = self.0;
        column.seen.fill(false);
        let mut next = 0;
        while let Some(name) = map.next_key_seed(FieldName)? {
            let Some(i) = column.field_index(name.as_ref(), next) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if std::mem::replace(&mut column.seen[i], true) {
                return Err(de::Error::custom(format_args!(
                    "field {name} appears twice"
                )));
            }
            map.next_value_seed(Value(&mut column.children[i]))
                .map_err(|e| de::Error::custom(format_args!("field {name}: {e}")))?;
            next = i + 1;
        }
        for (child, seen) in column.children.iter_mut().zip(&column.seen) {
            if !seen {
                child.push_null();
            }
        }
        Ok(())
    }
}

/// A field name, borrowed from the input unless it holds escapes.
struct FieldName;

impl<'de> DeserializeSeed<'de> for FieldName {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = std::borrow::Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(v.into())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(v.to_owned().into())
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// One value into one column.
struct Value<'c>(&'c mut Column);

impl<'de> DeserializeSeed<'de> for Value<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Value<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} or null", self.0.expected())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.push_null();
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        match self.0 {
            Column::Boolean(column) => {
                column.push(v);
                Ok(())
            }
            _ => Err(de::Error::invalid_type(de::Unexpected::Bool(v), &self)),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        match self.0 {
            Column::Int32(column) => {
                let Ok(v) = i32::try_from(v) else {
                    return Err(de::Error::invalid_value(
                        de::Unexpected::Signed(v),
                        &"a 32-bit integer (INT) or null",
                    ));
                };
                column.push(v);
            }
            Column::Int64(column) => column.push(v),
            Column::Float64(column) => column.push(v as f64),
            _ => return Err(de::Error::invalid_type(de::Unexpected::Signed(v), &self)),
        }
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => Err(de::Error::invalid_value(de::Unexpected::Unsigned(v), &self)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        match self.0 {
            Column::Float64(column) => {
                column.push(v);
                Ok(())
            }
            _ => Err(de::Error::invalid_type(de::Unexpected::Float(v), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        match self.0 {
            Column::Utf8 {
                ends,
                data,
                validity,
            } => {
                data.extend_from_slice(v.as_bytes());
                let end = i32::try_from(data.len())
                    .map_err(|_| de::Error::custom("more than 2 GiB of text in one batch"))?;
                ends.push(end);
                validity.push(true);
                Ok(())
            }
            _ => Err(de::Error::invalid_type(de::Unexpected::Str(v), &self)),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        match self.0 {
            Column::Struct(column, validity) => {
                ObjectVisitor(column).visit_map(map)?;
                validity.push(true);
                Ok(())
            }
            _ => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
        }
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _seq: A) -> Result<(), A::Error> {
        Err(de::Error::invalid_type(de::Unexpected::Seq, &self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int32Type, Int64Type};
    use arrow_array::{Array, RecordBatch};
    use arrow_schema::{Field, Schema};

    fn schema() -> SchemaRef {
        let location = Fields::from(vec![
            Field::new("city", DataType::Utf8, true),
            Field::new("country", DataType::Utf8, true),
        ]);
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
            Field::new("n", DataType::Int32, true),
            Field::new("big", DataType::Int64, true),
            Field::new("ok", DataType::Boolean, true),
            Field::new("location", DataType::Struct(location), true),
        ]))
    }

    fn batch(columns: &mut JsonColumns) -> RecordBatch {
        RecordBatch::try_new(schema(), columns.finish().unwrap()).unwrap()
    }

    #[test]
    fn objects_fill_typed_columns_and_missing_fields_are_null() {
        let mut columns = JsonColumns::new(&schema()).unwrap();
        columns
            .push(br#"{"id":"a\"1","amount":12,"n":-3,"big":9007199254740993,"ok":true,"location":{"country":"UK","city":"London"},"extra":[1,{"x":2}]}"#)
            .unwrap();
        columns
            .push(br#"{"location":null,"amount":1.25,"id":null}"#)
            .unwrap();
        columns
            .push(br#" {"location":{"city":"Paris"}, "ok":false} "#)
            .unwrap();
        let batch = batch(&mut columns);
        assert_eq!(batch.num_rows(), 3);
        let id = batch.column(0).as_string::<i32>();
        assert_eq!(id.value(0), "a\"1");
        assert!(id.is_null(1) && id.is_null(2));
        let amount = batch.column(1).as_primitive::<Float64Type>();
        assert_eq!((amount.value(0), amount.value(1)), (12.0, 1.25));
        assert!(amount.is_null(2));
        assert_eq!(batch.column(2).as_primitive::<Int32Type>().value(0), -3);
        assert_eq!(
            batch.column(3).as_primitive::<Int64Type>().value(0),
            9_007_199_254_740_993
        );
        let ok = batch.column(4).as_boolean();
        assert!(ok.value(0) && ok.is_null(1) && !ok.value(2));
        let location = batch.column(5).as_struct();
        assert!(location.is_valid(0) && location.is_null(1) && location.is_valid(2));
        let city = location.column(0).as_string::<i32>();
        let country = location.column(1).as_string::<i32>();
        assert_eq!((city.value(0), country.value(0)), ("London", "UK"));
        assert_eq!(city.value(2), "Paris");
        assert!(country.is_null(2));
        assert!(columns.is_empty(), "finishing starts a new batch");
    }

    #[test]
    fn a_value_that_does_not_fit_leaves_no_trace() {
        let mut columns = JsonColumns::new(&schema()).unwrap();
        columns
            .push(br#"{"id":"keep","n":1,"location":{"city":"Rome"}}"#)
            .unwrap();
        let refusals = [
            (&br#"{"id":"x","location":{"city":"Oslo","country":7}}"#[..], "field location: field country: invalid type: integer `7`, expected a string (VARCHAR) or null"),
            (br#"{"id":"x","n":99999999999}"#, "field n: invalid value: integer `99999999999`, expected a 32-bit integer (INT) or null"),
            (br#"{"id":"x","amount":"lots"}"#, "field amount: invalid type: string \"lots\", expected a number (DOUBLE) or null"),
            (br#"{"id":"x","n":1.5}"#, "field n: invalid type: floating point `1.5`, expected a 32-bit integer (INT) or null"),
            (br#"{"id":"x","id":"y"}"#, "field id appears twice"),
            (br#"{"id":"x","ok":"yes"}"#, "field ok: invalid type: string \"yes\", expected a boolean or null"),
            (br#"{"id":"x","amou"#, "EOF while parsing"),
            (b"42", "invalid type: integer `42`, expected a JSON object"),
            (br#"{"id":"x"} {"id":"y"}"#, "trailing characters"),
        ];
        for (json, reason) in refusals {
            let error = columns.push(json).unwrap_err();
            assert!(
                error.contains(reason),
                "{}: {error}",
                String::from_utf8_lossy(json)
            );
        }
        columns.push(br#"{"id":"also kept","amount":2}"#).unwrap();
        let batch = batch(&mut columns);
        assert_eq!(batch.num_rows(), 2);
        let id = batch.column(0).as_string::<i32>();
        assert_eq!((id.value(0), id.value(1)), ("keep", "also kept"));
        let city = batch.column(5).as_struct().column(0).as_string::<i32>();
        assert_eq!(city.len(), 2);
        assert_eq!(city.value(0), "Rome");
        assert!(city.is_null(1));
        assert_eq!(batch.column(2).as_primitive::<Int32Type>().null_count(), 1);
    }

    /// The raw topic's columns as the product's statement file declares them.
    fn raw_topic_schema() -> SchemaRef {
        let sql = concat!(env!("CARGO_MANIFEST_DIR"), "/../producer/ksql_queries.sql");
        let plan = lakehouse_streamsql::load_file(std::path::Path::new(sql)).unwrap();
        crate::lake::landed_topics(&plan)
            .into_iter()
            .find(|t| t.topic == "transaction_log")
            .unwrap()
            .value_schema
    }

    #[test]
    fn a_decoded_transaction_fills_the_columns_as_its_json_does() {
        use lakehouse::transaction::Transaction;
        let mut generator = lakehouse_producer::TransactionGenerator::new(5, 2, 30);
        let now = chrono::Utc::now();
        let mut values: Vec<Vec<u8>> = (0..500)
            .map(|_| serde_json::to_vec(&generator.next_transaction(now)).unwrap())
            .collect();
        // Escapes, nulls, integers where doubles go, and optional fields left out.
        let mut edge: serde_json::Value = serde_json::from_slice(&values[0]).unwrap();
        edge["amount"] = 12.into();
        edge["customer_rating"] = serde_json::Value::Null;
        edge.as_object_mut().unwrap().remove("discount_code");
        let escape_first = |text: &str| {
            let mut chars = text.chars();
            let first = chars.next().unwrap();
            format!("\\u{:04x}{}", first as u32, chars.as_str())
        };
        let mut edge_json = serde_json::to_string(&edge).unwrap();
        for field in [&edge["user_name"], &edge["location"]["city"]] {
            let text = field.as_str().unwrap();
            edge_json = edge_json.replacen(
                &format!("\"{text}\""),
                &format!("\"{}\"", escape_first(text)),
                1,
            );
        }
        assert!(edge_json.contains("\\u00"), "{edge_json}");
        values.push(edge_json.into_bytes());
        let schema = raw_topic_schema();
        let mut from_json = JsonColumns::new(&schema).unwrap();
        let mut from_decoded = JsonColumns::new(&schema).unwrap();
        let mut checked = 0;
        for value in &values {
            let Ok(transaction) = Transaction::read_strict(value) else {
                continue;
            };
            checked += 1;
            from_json.push(value).unwrap();
            from_decoded.push_decoded(&transaction).unwrap();
        }
        assert_eq!(
            checked,
            values.len(),
            "every value above is a valid transaction"
        );
        let rows = |columns: &mut JsonColumns| {
            RecordBatch::try_new(Arc::clone(&schema), columns.finish().unwrap()).unwrap()
        };
        assert_eq!(rows(&mut from_json), rows(&mut from_decoded));
    }

    #[test]
    fn a_decoded_value_that_does_not_fit_is_refused_like_its_json() {
        #[derive(serde::Serialize)]
        struct Location<'a> {
            city: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Row<'a> {
            id: &'a str,
            n: i64,
            location: Location<'a>,
        }
        let mut columns = JsonColumns::new(&schema()).unwrap();
        columns
            .push_decoded(&Row {
                id: "a",
                n: 1,
                location: Location { city: "x" },
            })
            .unwrap();
        let too_big = Row {
            id: "b",
            n: 1 << 40,
            location: Location { city: "y" },
        };
        let decoded = columns.push_decoded(&too_big).unwrap_err();
        let json = columns
            .push(
                &serde_json::to_vec(
                    &serde_json::json!({"id": "b", "n": 1_i64 << 40, "location": {"city": "y"}}),
                )
                .unwrap(),
            )
            .unwrap_err();
        assert!(decoded.starts_with("field n: "), "{decoded}");
        assert!(json.starts_with(&decoded), "{json} / {decoded}");
        let batch = batch(&mut columns);
        assert_eq!(batch.num_rows(), 1, "the refused rows left no trace");
        assert_eq!(
            batch
                .column(5)
                .as_struct()
                .column(0)
                .as_string::<i32>()
                .value(0),
            "x"
        );
    }
}
