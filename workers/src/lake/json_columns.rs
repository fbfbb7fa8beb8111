//! JSON objects decoded straight into Arrow columns, following the landed
//! topic's schema, in one pass and without a copy per value: the parser's
//! string slices are appended to the column buffers as they are read.
//!
//! A record either lands whole or not at all: when a value does not fit its
//! column, every column is cut back to the rows before it and the record is
//! refused with the reason. Values follow the rules every JSON reader shares
//! ([`lakehouse_streamsql::json_rules`]): the common cases are appended
//! directly, every other value goes through the rules themselves, so that
//! the lake takes exactly what stream SQL and the warehouse take.

use std::fmt;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray, StructArray,
};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Fields, SchemaRef};
use lakehouse_streamsql::json_rules;
use lakehouse_streamsql::types::SqlType;
use lakehouse_streamsql::value::Value as SqlValue;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value as Json;

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

    /// Top-level fields a row must have, with a value: a record without one
    /// is refused (`missing field`). Names the schema lacks are ignored.
    pub fn require(&mut self, names: &[&str]) {
        for (field, required) in self.root.fields.iter().zip(&mut self.root.required) {
            *required = names.iter().any(|n| n.eq_ignore_ascii_case(field.name()));
        }
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
    /// Fields a row must hold a value for ([`JsonColumns::require`]).
    required: Vec<bool>,
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
            required: vec![false; fields.len()],
        })
    }

    fn truncate(&mut self, rows: usize) {
        for child in &mut self.children {
            child.truncate(rows);
        }
    }

    /// The field named `name` (in any case), looked up from where the
    /// previous one was: producers write their fields in one order.
    fn field_index(&self, name: &str, after: usize) -> Option<usize> {
        let n = self.fields.len();
        let mut order = (0..n).map(|i| (after + i) % n);
        order
            .clone()
            .find(|&i| self.fields[i].name() == name)
            .or_else(|| order.find(|&i| self.fields[i].name().eq_ignore_ascii_case(name)))
    }

    /// The SQL type whose rules fill this struct.
    fn sql_type(&self) -> SqlType {
        SqlType::Struct(
            self.fields
                .iter()
                .zip(&self.children)
                .map(|(f, c)| (f.name().clone(), c.sql_type()))
                .collect(),
        )
    }
}

impl Column {
    /// Rows held.
    fn len(&self) -> usize {
        match self {
            Column::Boolean(c) => c.values.len(),
            Column::Int32(c) => c.values.len(),
            Column::Int64(c) => c.values.len(),
            Column::Float64(c) => c.values.len(),
            Column::Utf8 { ends, .. } => ends.len(),
            Column::Struct(_, validity) => validity.valid.len(),
        }
    }

    /// Whether the last row holds a value.
    fn last_is_valid(&self) -> bool {
        let validity = match self {
            Column::Boolean(c) => &c.validity,
            Column::Int32(c) => &c.validity,
            Column::Int64(c) => &c.validity,
            Column::Float64(c) => &c.validity,
            Column::Utf8 { validity, .. } | Column::Struct(_, validity) => validity,
        };
        validity.valid.last().copied().unwrap_or(false)
    }

    /// The SQL type whose rules fill this column.
    fn sql_type(&self) -> SqlType {
        match self {
            Column::Boolean(_) => SqlType::Boolean,
            Column::Int32(_) => SqlType::Int,
            Column::Int64(_) => SqlType::Bigint,
            Column::Float64(_) => SqlType::Double,
            Column::Utf8 { .. } => SqlType::String,
            Column::Struct(column, _) => column.sql_type(),
        }
    }

    fn push_str(&mut self, text: &str) -> Result<(), String> {
        let Column::Utf8 {
            ends,
            data,
            validity,
        } = self
        else {
            unreachable!("push_str on a text column only");
        };
        json_rules::check_text(text)?;
        data.extend_from_slice(text.as_bytes());
        let end = i32::try_from(data.len()).map_err(|_| "more than 2 GiB of text in one batch")?;
        ends.push(end);
        validity.push(true);
        Ok(())
    }

    /// Appends a value the rules produced for this column's type.
    fn push_value(&mut self, value: &SqlValue) -> Result<(), String> {
        match (self, value) {
            (column, SqlValue::Null) => column.push_null(),
            (Column::Boolean(c), SqlValue::Bool(b)) => c.push(*b),
            (Column::Int32(c), SqlValue::Int(i)) => {
                c.push(i32::try_from(*i).map_err(|_| format!("{i} is out of range for INT"))?)
            }
            (Column::Int64(c), SqlValue::Int(i)) => c.push(*i),
            (Column::Float64(c), SqlValue::Double(d)) => c.push(*d),
            (column @ Column::Utf8 { .. }, SqlValue::Str(s)) => column.push_str(s)?,
            (Column::Struct(column, validity), SqlValue::Struct(values)) => {
                for (child, value) in column.children.iter_mut().zip(values.iter()) {
                    child.push_value(value)?;
                }
                validity.push(true);
            }
            (column, value) => {
                return Err(format!(
                    "the rules gave {value:?} for a {} column",
                    column.sql_type()
                ))
            }
        }
        Ok(())
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
                map.next_value_seed(json_rules::SkipChecked)
                    .map_err(|e| de::Error::custom(format_args!("field {name}: {e}")))?;
                continue;
            };
            let child = &mut column.children[i];
            if std::mem::replace(&mut column.seen[i], true) {
                // A repeated field: the last value counts, as in every reader.
                let rows = child.len() - 1;
                child.truncate(rows);
            }
            let field = column.fields[i].name();
            map.next_value_seed(Value(child))
                .map_err(|e| de::Error::custom(format_args!("field {field}: {e}")))?;
            next = i + 1;
        }
        for ((child, seen), (required, field)) in column
            .children
            .iter_mut()
            .zip(&column.seen)
            .zip(column.required.iter().zip(column.fields.iter()))
        {
            if !seen {
                if *required {
                    return Err(de::Error::custom(format_args!(
                        "missing field `{}`",
                        field.name()
                    )));
                }
                child.push_null();
            } else if *required && !child.last_is_valid() {
                return Err(de::Error::custom(format_args!(
                    "field {}: null in a required field",
                    field.name()
                )));
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

/// One value into one column: the common cases directly, every other
/// through the shared rules.
struct Value<'c>(&'c mut Column);

impl Value<'_> {
    fn by_the_rules<E: de::Error>(self, json: Json) -> Result<(), E> {
        let value = json_rules::coerce(Some(&json), &self.0.sql_type()).map_err(E::custom)?;
        self.0.push_value(&value).map_err(E::custom)
    }
}

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
            _ => self.by_the_rules(Json::Bool(v)),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        match self.0 {
            Column::Int32(column) if i32::try_from(v).is_ok() => column.push(v as i32),
            Column::Int64(column) => column.push(v),
            Column::Float64(column) => column.push(v as f64),
            _ => return self.by_the_rules(Json::from(v)),
        }
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => self.by_the_rules(Json::from(v)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        match self.0 {
            Column::Float64(column) => {
                column.push(v);
                Ok(())
            }
            _ => match serde_json::Number::from_f64(v) {
                Some(n) => self.by_the_rules(Json::Number(n)),
                None => Err(E::custom(format_args!("{v} is not a finite number"))),
            },
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        match self.0 {
            column @ Column::Utf8 { .. } => column.push_str(v).map_err(E::custom),
            _ => self.by_the_rules(Json::String(v.to_owned())),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        match self.0 {
            Column::Struct(column, validity) => {
                ObjectVisitor(column).visit_map(map)?;
                validity.push(true);
                Ok(())
            }
            _ => self.by_the_rules(Json::deserialize(MapAccessDeserializer::new(map))?),
        }
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.by_the_rules(Json::deserialize(SeqAccessDeserializer::new(seq))?)
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
            (
                &br#"{"id":"x","location":{"city":"Oslo","country":{}}}"#[..],
                "field location: field country: expected VARCHAR, found an object {}",
            ),
            (
                br#"{"id":"x","n":99999999999}"#,
                "field n: 99999999999 is out of range for INT",
            ),
            (
                br#"{"id":"x","amount":"lots"}"#,
                "field amount: expected DOUBLE, found a string \"lots\"",
            ),
            (
                br#"{"id":"x","n":1.5}"#,
                "field n: expected INT, found a number 1.5",
            ),
            (
                br#"{"id":"x","ok":"yes"}"#,
                "field ok: expected BOOLEAN, found a string \"yes\"",
            ),
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

    /// A cell of a landed column as the case table writes it.
    fn cell_as_json(array: &dyn Array, row: usize) -> serde_json::Value {
        use serde_json::Value as Json;
        if array.is_null(row) {
            return Json::Null;
        }
        match array.data_type() {
            DataType::Boolean => Json::Bool(array.as_boolean().value(row)),
            DataType::Int32 => Json::from(array.as_primitive::<Int32Type>().value(row)),
            DataType::Int64 => Json::from(array.as_primitive::<Int64Type>().value(row)),
            DataType::Float64 => Json::from(array.as_primitive::<Float64Type>().value(row)),
            DataType::Utf8 => Json::from(array.as_string::<i32>().value(row)),
            DataType::Struct(fields) => {
                let array = array.as_struct();
                Json::Object(
                    fields
                        .iter()
                        .zip(array.columns())
                        .map(|(f, c)| (f.name().to_uppercase(), cell_as_json(c, row)))
                        .collect(),
                )
            }
            other => panic!("no such column type here: {other}"),
        }
    }

    /// The shared rules' table, through the lake's columns (a derived
    /// topic's upper-case names, read as any case).
    #[test]
    fn the_lake_reads_the_shared_case_table() {
        use lakehouse_streamsql::json_rules::{cases, record_cases};
        for case in cases() {
            let arrow = crate::lake::schema::arrow_type(&case.ty, false);
            let schema = Arc::new(Schema::new(vec![Field::new("V", arrow, true)]));
            let mut columns = JsonColumns::new(&schema).unwrap();
            let got = columns
                .push(format!(r#"{{"v":{}}}"#, case.json).as_bytes())
                .map(|()| {
                    let batch = RecordBatch::try_new(schema, columns.finish().unwrap()).unwrap();
                    cell_as_json(batch.column(0), 0)
                });
            case.check(got);
        }
        let schema = Arc::new(Schema::new(vec![Field::new(
            "AMOUNT",
            DataType::Float64,
            true,
        )]));
        for (record, expected) in record_cases() {
            let mut columns = JsonColumns::new(&schema).unwrap();
            columns.push(record.as_bytes()).unwrap();
            let batch =
                RecordBatch::try_new(Arc::clone(&schema), columns.finish().unwrap()).unwrap();
            assert_eq!(cell_as_json(batch.column(0), 0), expected, "{record}");
        }
    }

    #[test]
    fn an_oversized_text_is_refused_even_in_a_field_no_column_reads() {
        let mut columns = JsonColumns::new(&schema()).unwrap();
        let big = "x".repeat(json_rules::MAX_TEXT_BYTES + 1);
        let record = format!(r#"{{"id":"a","notes":{{"deep":["{big}"]}}}}"#);
        let error = columns.push(record.as_bytes()).unwrap_err();
        assert!(
            error.starts_with("field notes: oversized text value"),
            "{error}"
        );
        columns
            .push(br#"{"id":"b","notes":{"deep":["short",1,null,true]}}"#)
            .unwrap();
        assert_eq!(columns.len(), 1);
    }

    #[test]
    fn required_fields_must_be_present_and_set() {
        let mut columns = JsonColumns::new(&schema()).unwrap();
        columns.require(&["id", "amount", "not_in_the_schema"]);
        columns.push(br#"{"id":"a","amount":1}"#).unwrap();
        let missing = columns.push(br#"{"amount":1}"#).unwrap_err();
        assert!(missing.starts_with("missing field `id`"), "{missing}");
        let null = columns.push(br#"{"id":null,"amount":1}"#).unwrap_err();
        assert!(
            null.starts_with("field id: null in a required field"),
            "{null}"
        );
        columns
            .push(br#"{"ID":"b","Amount":"2.5","n":"4"}"#)
            .unwrap();
        let batch = batch(&mut columns);
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(1).as_primitive::<Float64Type>().value(1), 2.5);
        assert_eq!(batch.column(2).as_primitive::<Int32Type>().value(1), 4);
    }
}
