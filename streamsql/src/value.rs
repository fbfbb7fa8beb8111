//! Runtime values. Strings and structs are reference-counted so that
//! projecting a column is a cheap clone.

use std::cmp::Ordering;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    /// INT and BIGINT (the column type says which).
    Int(i64),
    Double(f64),
    Str(Arc<str>),
    Struct(Arc<[Value]>),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Double(d) => Some(*d),
            _ => None,
        }
    }

    /// SQL comparison; `None` when either side is NULL or the types differ.
    pub fn sql_cmp(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (a, b) => match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) => x.partial_cmp(&y),
                _ => None,
            },
        }
    }

    /// A stable byte encoding, used for state keys and checkpoints.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.push(0),
            Value::Bool(b) => out.extend([1, *b as u8]),
            Value::Int(i) => {
                out.push(2);
                out.extend(i.to_be_bytes());
            }
            Value::Double(d) => {
                out.push(3);
                out.extend(d.to_bits().to_be_bytes());
            }
            Value::Str(s) => {
                out.push(4);
                out.extend((s.len() as u32).to_be_bytes());
                out.extend(s.as_bytes());
            }
            Value::Struct(fields) => {
                out.push(5);
                out.extend((fields.len() as u32).to_be_bytes());
                for f in fields.iter() {
                    f.encode(out);
                }
            }
        }
    }

    /// Inverse of [`Value::encode`]; returns the value and the bytes it used.
    pub fn decode(bytes: &[u8]) -> Option<(Value, usize)> {
        let tag = *bytes.first()?;
        let rest = &bytes[1..];
        let word = |n: usize| rest.get(..n);
        Some(match tag {
            0 => (Value::Null, 1),
            1 => (Value::Bool(*rest.first()? != 0), 2),
            2 => (Value::Int(i64::from_be_bytes(word(8)?.try_into().ok()?)), 9),
            3 => (
                Value::Double(f64::from_bits(u64::from_be_bytes(
                    word(8)?.try_into().ok()?,
                ))),
                9,
            ),
            4 => {
                let len = u32::from_be_bytes(word(4)?.try_into().ok()?) as usize;
                let s = std::str::from_utf8(rest.get(4..4 + len)?).ok()?;
                (Value::str(s), 5 + len)
            }
            5 => {
                let n = u32::from_be_bytes(word(4)?.try_into().ok()?) as usize;
                let mut used = 5;
                let mut fields = Vec::with_capacity(n);
                for _ in 0..n {
                    let (v, len) = Value::decode(&bytes[used..])?;
                    fields.push(v);
                    used += len;
                }
                (Value::Struct(fields.into()), used)
            }
            _ => return None,
        })
    }
}

/// Encodes a list of values (a group key, an accumulator list).
pub fn encode_values(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 12);
    for v in values {
        v.encode(&mut out);
    }
    out
}

pub fn decode_values(mut bytes: &[u8]) -> Option<Vec<Value>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (v, used) = Value::decode(bytes)?;
        out.push(v);
        bytes = &bytes[used..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        let values = vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(-5),
            Value::Double(1.25),
            Value::str("héllo"),
            Value::Struct(vec![Value::str("a"), Value::Int(1)].into()),
        ];
        assert_eq!(decode_values(&encode_values(&values)).unwrap(), values);
    }

    #[test]
    fn comparisons_follow_sql() {
        assert_eq!(
            Value::Int(2).sql_cmp(&Value::Double(1.5)),
            Some(Ordering::Greater)
        );
        assert_eq!(Value::Null.sql_cmp(&Value::Int(1)), None);
    }
}
