//! JSON record values into typed rows, in ksqlDB's conventions: field names
//! match case-insensitively, fields a record leaves out are NULL, and a value
//! of another JSON type is coerced where ksqlDB coerces it (a number in a
//! string, a number or boolean read as VARCHAR).
//!
//! A record is parsed once per topic, straight into values of the types its
//! source streams read: no intermediate JSON tree, one allocation per text
//! value. A value that does not fit its type is recorded as such and fails
//! only the streams that read it. The rules themselves live in one place,
//! [`crate::json_rules`], shared with the lake and the warehouse: the direct
//! path handles the common cases and hands every other to it, so that both
//! paths give the same value or the same message.

use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::json_rules::{check_text, coerce};
use crate::plan::Column;
use crate::types::SqlType;
use crate::value::Value;

/// Why a record could not be decoded for a stream.
pub type DecodeError = String;

/// The top-level fields that the source streams of one topic read. A
/// record is parsed once into just these fields (case-insensitive names);
/// everything else in it is skipped without being built.
#[derive(Debug, Clone, Default)]
pub struct TopicFields {
    /// Lower-case names.
    names: Vec<String>,
    readers: Vec<FieldReader>,
}

/// How a top-level field is read.
#[derive(Debug, Clone)]
enum FieldReader {
    /// Every stream reads it as one type.
    Typed(TypeReader),
    /// Streams read it as different types: kept as JSON and coerced per stream.
    Json,
}

/// One field of a parsed record.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Field {
    #[default]
    Absent,
    Value(Value),
    /// The value does not fit the type every stream reads it as: the reason.
    Unfit(String),
    Json(Json),
}

impl TopicFields {
    /// The slot of a field read as `ty`, added on first use.
    pub fn slot(&mut self, name: &str, ty: &SqlType) -> usize {
        let lower = name.to_lowercase();
        match self.names.iter().position(|n| *n == lower) {
            Some(i) => {
                if matches!(&self.readers[i], FieldReader::Typed(r) if r.ty() != ty) {
                    self.readers[i] = FieldReader::Json;
                }
                i
            }
            None => {
                self.names.push(lower);
                self.readers
                    .push(FieldReader::Typed(TypeReader::new(ty.clone())));
                self.names.len() - 1
            }
        }
    }

    /// Parses a record value into the slots; fails when it is not a JSON object.
    pub fn parse(&self, bytes: Option<&[u8]>) -> Result<Vec<Field>, DecodeError> {
        let bytes = bytes.ok_or_else(|| "null value (a tombstone) on a stream".to_string())?;
        let text = std::str::from_utf8(bytes).map_err(|e| format!("value is not UTF-8: {e}"))?;
        let mut de = sonic_rs::Deserializer::from_str(text);
        let parsed = FieldsVisitor(self)
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v));
        parsed.map_err(|e| {
            let message = lakehouse::json::message(&e);
            match e.classify() {
                sonic_rs::error::Category::TypeUnmatched => {
                    format!("value is JSON but not an object ({message})")
                }
                _ => format!("value is not valid JSON: {message}"),
            }
        })
    }
}

struct FieldsVisitor<'a>(&'a TopicFields);

impl<'de> DeserializeSeed<'de> for FieldsVisitor<'_> {
    type Value = Vec<Field>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldsVisitor<'_> {
    type Value = Vec<Field>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let fields = self.0;
        let mut out = vec![Field::Absent; fields.names.len()];
        let mut next = 0;
        while let Some(slot) = map.next_key_seed(KeySlot(&fields.names, next))? {
            let Some(i) = slot else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            next = i + 1;
            out[i] = match &fields.readers[i] {
                FieldReader::Typed(reader) => match map.next_value_seed(reader)? {
                    Ok(value) => Field::Value(value),
                    Err(reason) => Field::Unfit(reason),
                },
                FieldReader::Json => Field::Json(map.next_value()?),
            };
        }
        Ok(out)
    }
}

/// Maps a key to its slot without allocating it, looking first where the
/// previous key's slot ends: producers write their fields in one order. The
/// names are distinct in lower case, so at most one matches.
struct KeySlot<'a>(&'a [String], usize);

impl<'de> DeserializeSeed<'de> for KeySlot<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySlot<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        let (names, from) = (self.0, self.1);
        Ok((0..names.len())
            .map(|i| (from + i) % names.len())
            .find(|&i| names[i].eq_ignore_ascii_case(key)))
    }
}

/// Reads one JSON value as a SQL type. The outer result is the parser's
/// (malformed JSON fails the whole record); the inner one says whether the
/// value fits the type.
#[derive(Debug, Clone)]
enum TypeReader {
    Scalar(SqlType),
    Struct(SqlType, Vec<StructField>),
    /// A struct with two field names that differ only in case: read through
    /// JSON, where [`lookup`] settles which key feeds which field.
    ViaJson(SqlType),
}

#[derive(Debug, Clone)]
struct StructField {
    name: String,
    lower: String,
    reader: TypeReader,
}

impl TypeReader {
    fn new(ty: SqlType) -> Self {
        let SqlType::Struct(fields) = &ty else {
            return TypeReader::Scalar(ty);
        };
        let ambiguous = fields
            .iter()
            .enumerate()
            .any(|(i, (a, _))| fields[..i].iter().any(|(b, _)| a.eq_ignore_ascii_case(b)));
        if ambiguous {
            return TypeReader::ViaJson(ty);
        }
        let fields = fields
            .iter()
            .map(|(name, fty)| StructField {
                name: name.clone(),
                lower: name.to_lowercase(),
                reader: TypeReader::new(fty.clone()),
            })
            .collect();
        TypeReader::Struct(ty, fields)
    }

    fn ty(&self) -> &SqlType {
        match self {
            TypeReader::Scalar(ty) | TypeReader::Struct(ty, _) | TypeReader::ViaJson(ty) => ty,
        }
    }

    /// The general rules, for whatever the direct path does not handle itself.
    fn coerce(&self, json: Json) -> Result<Value, String> {
        coerce(Some(&json), self.ty())
    }
}

impl<'de> DeserializeSeed<'de> for &TypeReader {
    type Value = Result<Value, String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &TypeReader {
    type Value = Result<Value, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(Value::Null))
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(self.coerce(Json::Bool(v)))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.coerce(Json::from(v)))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.coerce(Json::from(v)))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(self.coerce(Json::from(v)))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(match self {
            TypeReader::Scalar(SqlType::String) => check_text(v).map(|()| Value::str(v)),
            _ => self.coerce(Json::String(v.to_owned())),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(self.coerce(Json::deserialize(SeqAccessDeserializer::new(seq))?))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        match self {
            TypeReader::Struct(_, fields) => read_struct(fields, map),
            _ => Ok(self.coerce(Json::deserialize(MapAccessDeserializer::new(map))?)),
        }
    }
}

/// How a key matched a struct field, best first, as [`lookup`] prefers them:
/// the lower-case name, the name as declared, then any other case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum KeyMatch {
    Lower,
    Declared,
    /// The key itself: among such keys a JSON object map yields the first in key order.
    OtherCase(Box<str>),
}

fn read_struct<'de, A: MapAccess<'de>>(
    fields: &[StructField],
    mut map: A,
) -> Result<Result<Value, String>, A::Error> {
    let mut found: Vec<Option<(KeyMatch, Result<Value, String>)>> = vec![None; fields.len()];
    while let Some(key) = map.next_key_seed(KeyName)? {
        let matched = fields.iter().enumerate().find_map(|(i, f)| {
            if *key == *f.lower {
                Some((i, KeyMatch::Lower))
            } else if *key == *f.name {
                Some((i, KeyMatch::Declared))
            } else if key.eq_ignore_ascii_case(&f.name) {
                Some((i, KeyMatch::OtherCase(key.as_ref().into())))
            } else {
                None
            }
        });
        let Some((i, how)) = matched else {
            map.next_value::<IgnoredAny>()?;
            continue;
        };
        let value = map.next_value_seed(&fields[i].reader)?;
        // A repeated key keeps its last value, as a JSON object map does.
        if found[i].as_ref().is_none_or(|(best, _)| how <= *best) {
            found[i] = Some((how, value));
        }
    }
    let mut values = Vec::with_capacity(fields.len());
    for (field, found) in fields.iter().zip(found) {
        match found {
            None => values.push(Value::Null),
            Some((_, Ok(value))) => values.push(value),
            Some((_, Err(e))) => return Ok(Err(format!("field {}: {e}", field.name))),
        }
    }
    Ok(Ok(Value::Struct(values.into())))
}

/// A key, borrowed from the input unless it holds escapes (`Cow`'s own
/// `Deserialize` always copies).
struct KeyName;

impl<'de> DeserializeSeed<'de> for KeyName {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyName {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.to_owned().into())
    }
}

/// A source stream's decoder: each column read from its slot of the
/// topic's parsed fields (JSON names usually lower case, columns upper case).
#[derive(Debug, Clone)]
pub struct RowDecoder {
    /// (name, slot, type, key column)
    columns: Vec<(String, usize, SqlType, bool)>,
}

impl RowDecoder {
    pub fn new(columns: &[Column], fields: &mut TopicFields) -> Self {
        Self {
            columns: columns
                .iter()
                .map(|c| {
                    let slot = if c.key {
                        0
                    } else {
                        fields.slot(&c.name, &c.ty)
                    };
                    (c.name.clone(), slot, c.ty.clone(), c.key)
                })
                .collect(),
        }
    }

    /// Maps parsed fields to a row; a KEY column comes from the record key.
    pub fn decode(&self, fields: &[Field], key: Option<&[u8]>) -> Result<Vec<Value>, DecodeError> {
        let mut row = Vec::with_capacity(self.columns.len());
        for (name, slot, ty, is_key) in &self.columns {
            if *is_key {
                row.push(match key {
                    Some(k) => Value::str(&String::from_utf8_lossy(k)),
                    None => Value::Null,
                });
                continue;
            }
            row.push(match &fields[*slot] {
                Field::Absent => Value::Null,
                Field::Value(value) => value.clone(),
                Field::Unfit(reason) => return Err(format!("column {name}: {reason}")),
                Field::Json(json) => {
                    coerce(Some(json), ty).map_err(|e| format!("column {name}: {e}"))?
                }
            });
        }
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_is_case_insensitive_and_typed() {
        let columns = vec![
            Column::value("AMOUNT", SqlType::Double),
            Column::value("QUANTITY", SqlType::Int),
            Column::value(
                "LOCATION",
                SqlType::Struct(vec![("CITY".into(), SqlType::String)]),
            ),
            Column::value("MISSING", SqlType::String),
        ];
        let mut fields = TopicFields::default();
        let decoder = RowDecoder::new(&columns, &mut fields);
        let obj = fields
            .parse(Some(br#"{"amount": 12, "Quantity": 3, "other": [1, {"x": 2}], "location": {"city": "Paris"}}"#))
            .unwrap();
        let row = decoder.decode(&obj, None).unwrap();
        assert_eq!(row[0], Value::Double(12.0));
        assert_eq!(row[1], Value::Int(3));
        assert_eq!(row[2], Value::Struct(vec![Value::str("Paris")].into()));
        assert_eq!(row[3], Value::Null);
    }

    #[test]
    fn bad_values_are_explained() {
        let mut fields = TopicFields::default();
        let decoder = RowDecoder::new(&[Column::value("QUANTITY", SqlType::Int)], &mut fields);
        let parse_value = |v: Option<&[u8]>| fields.parse(v);
        let obj = parse_value(Some(br#"{"quantity": "three"}"#)).unwrap();
        assert!(decoder
            .decode(&obj, None)
            .unwrap_err()
            .contains("column QUANTITY: expected INT"));
        let obj = parse_value(Some(br#"{"quantity": 9007199254740993}"#)).unwrap();
        assert!(decoder
            .decode(&obj, None)
            .unwrap_err()
            .contains("out of range"));
        assert!(parse_value(Some(b"{\"quantity\": 1} trailing"))
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(parse_value(Some(b"[1,2]"))
            .unwrap_err()
            .contains("not an object"));
        assert!(parse_value(Some(b"{\"a\":"))
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(parse_value(Some(&[0xff, 0xfe]))
            .unwrap_err()
            .contains("UTF-8"));
        assert!(parse_value(None).unwrap_err().contains("tombstone"));
    }

    /// Every column type against every kind of JSON value, including the
    /// ones the direct path hands over: both paths give the same answer.
    #[test]
    fn the_direct_path_agrees_with_the_json_rules() {
        let city = SqlType::Struct(vec![
            ("CITY".into(), SqlType::String),
            ("ZIP".into(), SqlType::Int),
        ]);
        let types = [
            SqlType::String,
            SqlType::Int,
            SqlType::Bigint,
            SqlType::Double,
            SqlType::Boolean,
            city.clone(),
            SqlType::Struct(vec![("A".into(), city)]),
            SqlType::Struct(vec![
                ("X".into(), SqlType::Int),
                ("x".into(), SqlType::String),
            ]),
        ];
        let values = [
            "null",
            "true",
            "false",
            "0",
            "-7",
            "12",
            "2147483648",
            "9223372036854775808",
            "1.5",
            "-2.25e3",
            "1e308",
            r#""""#,
            r#""42""#,
            r#"" 42 ""#,
            r#""1.5""#,
            r#""TRUE""#,
            r#""caf\u00e9""#,
            "[1,2]",
            r#"{"city":"Paris","zip":75001}"#,
            r#"{"CITY":"Rome","City":"Milan","zip":"00100"}"#,
            r#"{"City":"b","CiTy":"a","ZIP":1,"zip":2}"#,
            r#"{"city":"x","city":"y","zip":"no"}"#,
            r#"{"a":{"city":"Oslo","zip":1}}"#,
            r#"{"a":{"zip":2.5}}"#,
            r#"{"X":1,"x":"one"}"#,
            r#"{"x":2}"#,
        ];
        for ty in &types {
            let mut fields = TopicFields::default();
            let decoder = RowDecoder::new(&[Column::value("V", ty.clone())], &mut fields);
            for value in values {
                let record = format!(r#"{{"v":{value}}}"#);
                let direct = decoder.decode(&fields.parse(Some(record.as_bytes())).unwrap(), None);
                let json: Json = serde_json::from_str(value).unwrap();
                let rules = coerce(Some(&json), ty)
                    .map(|v| vec![v])
                    .map_err(|e| format!("column V: {e}"));
                assert_eq!(direct, rules, "{value} as {ty}");
            }
        }
    }

    /// The shared rules' table, through the engine's direct path.
    #[test]
    fn the_engine_reads_the_shared_case_table() {
        use crate::json_rules::{cases, record_cases, value_as_json};
        for case in cases() {
            let mut fields = TopicFields::default();
            let decoder = RowDecoder::new(&[Column::value("V", case.ty.clone())], &mut fields);
            let record = format!(r#"{{"v":{}}}"#, case.json);
            let got = decoder
                .decode(&fields.parse(Some(record.as_bytes())).unwrap(), None)
                .map(|row| value_as_json(&row[0], &case.ty));
            case.check(got);
        }
        for (record, expected) in record_cases() {
            let mut fields = TopicFields::default();
            let decoder = RowDecoder::new(&[Column::value("AMOUNT", SqlType::Double)], &mut fields);
            let row = decoder
                .decode(&fields.parse(Some(record.as_bytes())).unwrap(), None)
                .unwrap();
            assert_eq!(
                value_as_json(&row[0], &SqlType::Double),
                expected,
                "{record}"
            );
        }
    }

    #[test]
    fn streams_that_read_a_field_as_different_types_each_get_theirs() {
        let mut fields = TopicFields::default();
        let as_text = RowDecoder::new(&[Column::value("N", SqlType::String)], &mut fields);
        let as_number = RowDecoder::new(&[Column::value("N", SqlType::Int)], &mut fields);
        let parsed = fields.parse(Some(br#"{"n": 7}"#)).unwrap();
        assert_eq!(as_text.decode(&parsed, None).unwrap(), [Value::str("7")]);
        assert_eq!(as_number.decode(&parsed, None).unwrap(), [Value::Int(7)]);
        let parsed = fields.parse(Some(br#"{"n": "seven"}"#)).unwrap();
        assert_eq!(
            as_text.decode(&parsed, None).unwrap(),
            [Value::str("seven")]
        );
        assert!(as_number.decode(&parsed, None).is_err());
    }

    #[test]
    fn a_value_that_does_not_fit_fails_only_the_streams_that_read_it() {
        let mut fields = TopicFields::default();
        let reads_n = RowDecoder::new(&[Column::value("N", SqlType::Int)], &mut fields);
        let reads_s = RowDecoder::new(&[Column::value("S", SqlType::String)], &mut fields);
        let parsed = fields
            .parse(Some(br#"{"n": {"deep": [1]}, "s": "ok"}"#))
            .unwrap();
        assert_eq!(
            reads_n.decode(&parsed, None).unwrap_err(),
            r#"column N: expected INT, found an object {"deep":[1]}"#
        );
        assert_eq!(reads_s.decode(&parsed, None).unwrap(), [Value::str("ok")]);
    }
}
