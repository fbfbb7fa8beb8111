//! JSON values in and out, and table keys, in ksqlDB's conventions.

use std::io::Write;

use serde_json::Value as Json;

use crate::plan::{Column, KeyFormat};
use crate::types::SqlType;
use crate::value::Value;

/// Writes one value as JSON; struct field names come from the type.
pub fn write_json(out: &mut Vec<u8>, v: &Value, ty: &SqlType) {
    match (v, ty) {
        (Value::Null, _) => out.extend_from_slice(b"null"),
        (Value::Bool(b), _) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        (Value::Int(i), _) => {
            let _ = write!(out, "{i}");
        }
        (Value::Double(d), _) if d.is_finite() => {
            let _ = serde_json::to_writer(&mut *out, d);
        }
        (Value::Double(_), _) => out.extend_from_slice(b"null"),
        (Value::Str(s), _) => write_json_str(out, s),
        (Value::Struct(values), SqlType::Struct(fields)) => {
            out.push(b'{');
            for (i, ((name, fty), fv)) in fields.iter().zip(values.iter()).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, name);
                out.push(b':');
                write_json(out, fv, fty);
            }
            out.push(b'}');
        }
        (Value::Struct(_), _) => out.extend_from_slice(b"null"),
    }
}

/// Writes a JSON string. Most text needs no escape and is copied as it is;
/// the rest goes through serde_json's escaping.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Writes `{"NAME": value, ...}` for the chosen columns.
pub fn write_object<'a>(out: &mut Vec<u8>, columns: impl Iterator<Item = (&'a Column, &'a Value)>) {
    out.push(b'{');
    for (i, (c, v)) in columns.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut *out, &c.name);
        out.push(b':');
        write_json(out, v, &c.ty);
    }
    out.push(b'}');
}

/// A JSON object layout computed once per relation: the `"NAME":` prefix
/// of every written column, so that writing a row only encodes values.
#[derive(Debug, Clone)]
pub struct ObjectLayout {
    fields: Vec<(usize, Vec<u8>, SqlType)>,
}

impl ObjectLayout {
    /// Columns for which `include` holds, in order.
    pub fn new(columns: &[Column], include: impl Fn(&Column) -> bool) -> Self {
        let fields = columns
            .iter()
            .enumerate()
            .filter(|(_, c)| include(c))
            .map(|(i, c)| {
                let mut prefix = serde_json::to_vec(&c.name).expect("a name serialises");
                prefix.push(b':');
                (i, prefix, c.ty.clone())
            })
            .collect();
        Self { fields }
    }

    /// Writes `{"NAME": value, ...}` from a full row of the relation.
    pub fn write(&self, out: &mut Vec<u8>, row: &[Value]) {
        out.push(b'{');
        for (n, (i, prefix, ty)) in self.fields.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(prefix);
            write_json(out, &row[*i], ty);
        }
        out.push(b'}');
    }
}

/// Serialises a table key; `window_start` is appended as 8 big-endian bytes
/// (Kafka Streams' time-windowed key layout). `None` when a key value is NULL.
pub fn encode_key(
    format: KeyFormat,
    columns: &[Column],
    values: &[Value],
    window_start: Option<i64>,
) -> Option<Vec<u8>> {
    if values.iter().any(Value::is_null) {
        return None;
    }
    let mut out = Vec::with_capacity(32);
    match format {
        KeyFormat::None => return None,
        KeyFormat::Kafka => match (&values[0], &columns[0].ty) {
            (Value::Str(s), _) => out.extend_from_slice(s.as_bytes()),
            (Value::Int(i), SqlType::Int) => out.extend_from_slice(&(*i as i32).to_be_bytes()),
            (Value::Int(i), _) => out.extend_from_slice(&i.to_be_bytes()),
            (Value::Double(d), _) => out.extend_from_slice(&d.to_bits().to_be_bytes()),
            (Value::Bool(b), _) => out.push(*b as u8),
            _ => return None,
        },
        KeyFormat::Json if values.len() == 1 => write_json(&mut out, &values[0], &columns[0].ty),
        KeyFormat::Json => write_object(&mut out, columns.iter().zip(values.iter())),
    }
    if let Some(start) = window_start {
        out.extend_from_slice(&start.to_be_bytes());
    }
    Some(out)
}

/// The inverse of [`encode_key`], for records written by this engine or by
/// ksqlDB: the key columns' values, and the window start (milliseconds) of a
/// windowed key, which ends in 8 big-endian bytes.
pub fn decode_key(
    format: KeyFormat,
    columns: &[Column],
    bytes: &[u8],
    windowed: bool,
) -> Result<(Vec<Value>, Option<i64>), String> {
    let (key, window_start) = if windowed {
        let split = bytes.len().checked_sub(8).ok_or_else(|| {
            format!(
                "a windowed key needs 8 bytes of window start, got {}",
                bytes.len()
            )
        })?;
        let start = i64::from_be_bytes(bytes[split..].try_into().expect("8 bytes"));
        (&bytes[..split], Some(start))
    } else {
        (bytes, None)
    };
    let values = match format {
        KeyFormat::None => Vec::new(),
        KeyFormat::Kafka => {
            let column = columns.first().ok_or("a KAFKA key needs one key column")?;
            let fixed = |n: usize| -> Result<[u8; 8], String> {
                if key.len() != n {
                    return Err(format!(
                        "a {} key is {n} bytes, got {}",
                        column.ty,
                        key.len()
                    ));
                }
                let mut buf = [0u8; 8];
                buf[8 - n..].copy_from_slice(key);
                Ok(buf)
            };
            vec![match &column.ty {
                SqlType::String => Value::str(
                    std::str::from_utf8(key).map_err(|e| format!("key is not UTF-8: {e}"))?,
                ),
                SqlType::Int => Value::Int(i64::from(i32::from_be_bytes(
                    fixed(4)?[4..].try_into().expect("4 bytes"),
                ))),
                SqlType::Bigint => Value::Int(i64::from_be_bytes(fixed(8)?)),
                SqlType::Double => Value::Double(f64::from_bits(u64::from_be_bytes(fixed(8)?))),
                SqlType::Boolean => Value::Bool(fixed(1)?[7] != 0),
                SqlType::Struct(_) => return Err("a KAFKA key cannot be a STRUCT".into()),
            }]
        }
        KeyFormat::Json => {
            let json: Json =
                serde_json::from_slice(key).map_err(|e| format!("key is not JSON: {e}"))?;
            match (&json, columns) {
                (Json::Object(map), [_, _, ..]) => columns
                    .iter()
                    .map(|c| {
                        let field = crate::json_rules::lookup(map, &c.name, &c.name.to_lowercase());
                        crate::json_rules::coerce(field, &c.ty)
                            .map_err(|e| format!("key column {}: {e}", c.name))
                    })
                    .collect::<Result<_, _>>()?,
                (_, [column]) => vec![crate::json_rules::coerce(Some(&json), &column.ty)
                    .map_err(|e| format!("key: {e}"))?],
                _ => return Err("a JSON key of several columns must be an object".into()),
            }
        }
    };
    if values.iter().any(Value::is_null) {
        return Err("a key column is null".into());
    }
    Ok((values, window_start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode_to_what_was_encoded() {
        let cases: Vec<(KeyFormat, Vec<Column>, Vec<Value>)> = vec![
            (
                KeyFormat::Kafka,
                vec![Column::value("K", SqlType::String)],
                vec![Value::str("purchase")],
            ),
            (
                KeyFormat::Kafka,
                vec![Column::value("K", SqlType::Int)],
                vec![Value::Int(-7)],
            ),
            (
                KeyFormat::Kafka,
                vec![Column::value("K", SqlType::Bigint)],
                vec![Value::Int(1 << 40)],
            ),
            (
                KeyFormat::Kafka,
                vec![Column::value("K", SqlType::Double)],
                vec![Value::Double(2.5)],
            ),
            (
                KeyFormat::Json,
                vec![Column::value("K", SqlType::String)],
                vec![Value::str("a\"b")],
            ),
            (
                KeyFormat::Json,
                vec![
                    Column::value("A", SqlType::String),
                    Column::value("B", SqlType::Int),
                ],
                vec![Value::str("x"), Value::Int(3)],
            ),
        ];
        for (format, columns, values) in cases {
            for window in [None, Some(1_790_000_060_000)] {
                let bytes = encode_key(format, &columns, &values, window).unwrap();
                let decoded = decode_key(format, &columns, &bytes, window.is_some()).unwrap();
                assert_eq!(decoded, (values.clone(), window), "{format:?} {columns:?}");
            }
        }
        let string_key = [Column::value("K", SqlType::String)];
        assert!(decode_key(KeyFormat::Kafka, &string_key, b"abc", true)
            .unwrap_err()
            .contains("8 bytes"));
        assert!(decode_key(
            KeyFormat::Kafka,
            &[Column::value("K", SqlType::Int)],
            b"abc",
            false
        )
        .unwrap_err()
        .contains("4 bytes"));
        assert!(
            decode_key(KeyFormat::Json, &string_key, b"{not json", false)
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(decode_key(KeyFormat::Json, &string_key, b"null", false)
            .unwrap_err()
            .contains("null"));
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for s in [
            "",
            "plain",
            "café ✓",
            "quote \" back \\ slash",
            "tab\tnew\nline\u{1}",
            "\u{7f}",
        ] {
            let mut out = Vec::new();
            write_json_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn keys_in_both_formats() {
        let s = [Column::value("K", SqlType::String)];
        let i = [Column::value("N", SqlType::Int)];
        let si = [
            Column::value("K", SqlType::String),
            Column::value("N", SqlType::Int),
        ];
        assert_eq!(
            encode_key(KeyFormat::Kafka, &s, &[Value::str("abc")], None).unwrap(),
            b"abc"
        );
        assert_eq!(
            encode_key(KeyFormat::Kafka, &i, &[Value::Int(1)], None).unwrap(),
            vec![0, 0, 0, 1]
        );
        let windowed = encode_key(KeyFormat::Kafka, &s, &[Value::str("a")], Some(60_000)).unwrap();
        assert_eq!(&windowed[..1], b"a");
        assert_eq!(
            i64::from_be_bytes(windowed[1..].try_into().unwrap()),
            60_000
        );
        assert_eq!(
            encode_key(KeyFormat::Json, &s, &[Value::str("a")], None).unwrap(),
            br#""a""#
        );
        assert_eq!(
            encode_key(
                KeyFormat::Json,
                &si,
                &[Value::str("a"), Value::Int(2)],
                None
            )
            .unwrap(),
            br#"{"K":"a","N":2}"#
        );
        assert_eq!(encode_key(KeyFormat::Kafka, &s, &[Value::Null], None), None);
    }
}
