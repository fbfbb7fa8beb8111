//! The one set of rules by which a JSON value becomes a column of a SQL
//! type, shared by every reader of JSON records: the stream SQL decoder, the
//! lake sink and the table sink. They follow ksqlDB's JSON format:
//!
//! - field names match case-insensitively; a field a record leaves out, or
//!   sets to `null`, is NULL; fields no column names are skipped; when a
//!   record repeats a field, the last value counts;
//! - a number or a boolean read as VARCHAR is its JSON text; a string read as
//!   INT, BIGINT or DOUBLE is parsed (surrounding spaces ignored); `"true"` or
//!   `"false"` (any case) read as BOOLEAN is that boolean;
//! - an INT must fit 32 bits and a BIGINT 64 (a fraction is not an integer);
//! - a text value over [`MAX_TEXT_BYTES`] is refused as oversized.
//!
//! Anything else (an object for a number, an array for a string...) does not
//! fit, and the reader dead-letters the record with the reason. The lake,
//! which keeps whole source records, also refuses an oversized text in a
//! field no column reads ([`SkipChecked`]); stream SQL fails only the
//! streams that read a value that does not fit. One edge is not shared: when
//! a struct repeats a field in different cases (`{"City": .., "city": ..}`),
//! stream SQL prefers the lower-case key, the lake takes the last. The values a
//! producer happens to send (names, cities, currencies) are never checked
//! here: they are data. [`cases`] is the table every reader is tested against.

use serde_json::Value as Json;

use crate::types::SqlType;
use crate::value::Value;

/// The largest text value a column takes: far beyond any real field (names,
/// ids, addresses), small enough that one record cannot swell a batch.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Refuses a text value over [`MAX_TEXT_BYTES`].
pub fn check_text(text: &str) -> Result<(), String> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "oversized text value: {} bytes, the limit is {MAX_TEXT_BYTES}",
            text.len()
        ));
    }
    Ok(())
}

/// Skips a JSON value no column reads, refusing it when it holds a text over
/// [`MAX_TEXT_BYTES`] anywhere: a reader that keeps whole records (the raw
/// lake's `raw_json`) takes none that holds an oversized value.
pub struct SkipChecked;

impl<'de> serde::de::DeserializeSeed<'de> for SkipChecked {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for SkipChecked {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        check_text(v).map_err(E::custom)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(SkipChecked)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            map.next_value_seed(SkipChecked)?;
        }
        Ok(())
    }
}

/// The JSON kind of a value, as messages name it.
pub fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// The field of `object` that a column named `name` reads: its lower-case
/// name, the name as declared, then any other case.
pub fn lookup<'a>(
    object: &'a serde_json::Map<String, Json>,
    name: &str,
    lower: &str,
) -> Option<&'a Json> {
    object.get(lower).or_else(|| object.get(name)).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// A JSON value as a SQL type, or why it is not one. `None` (the field is
/// absent) and JSON `null` are NULL.
pub fn coerce(field: Option<&Json>, ty: &SqlType) -> Result<Value, String> {
    let Some(v) = field else {
        return Ok(Value::Null);
    };
    let wrong = || {
        format!(
            "expected {ty}, found {} {}",
            json_kind(v),
            truncate(&v.to_string())
        )
    };
    Ok(match (ty, v) {
        (_, Json::Null) => Value::Null,
        (SqlType::String, Json::String(s)) => {
            check_text(s)?;
            Value::str(s)
        }
        (SqlType::String, Json::Number(n)) => Value::str(&n.to_string()),
        (SqlType::String, Json::Bool(b)) => Value::str(if *b { "true" } else { "false" }),
        (SqlType::Int, Json::Number(n)) => {
            let i = n.as_i64().ok_or_else(wrong)?;
            i32::try_from(i).map_err(|_| format!("{i} is out of range for INT"))?;
            Value::Int(i)
        }
        (SqlType::Bigint, Json::Number(n)) => {
            Value::Int(n.as_i64().ok_or_else(|| format!("{n} is not a BIGINT"))?)
        }
        (SqlType::Int | SqlType::Bigint, Json::String(s)) => {
            let i: i64 = s.trim().parse().map_err(|_| wrong())?;
            if *ty == SqlType::Int {
                i32::try_from(i).map_err(|_| format!("{i} is out of range for INT"))?;
            }
            Value::Int(i)
        }
        (SqlType::Double, Json::Number(n)) => {
            Value::Double(n.as_f64().filter(|d| d.is_finite()).ok_or_else(wrong)?)
        }
        (SqlType::Double, Json::String(s)) => Value::Double(
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|d| d.is_finite())
                .ok_or_else(wrong)?,
        ),
        (SqlType::Boolean, Json::Bool(b)) => Value::Bool(*b),
        (SqlType::Boolean, Json::String(s))
            if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
        {
            Value::Bool(s.eq_ignore_ascii_case("true"))
        }
        (SqlType::Struct(fields), Json::Object(map)) => {
            let mut out = Vec::with_capacity(fields.len());
            for (name, fty) in fields {
                let field = lookup(map, name, &name.to_lowercase());
                out.push(coerce(field, fty).map_err(|e| format!("field {name}: {e}"))?);
            }
            Value::Struct(out.into())
        }
        _ => return Err(wrong()),
    })
}

/// A value's text cut to about 60 bytes for a message.
pub fn truncate(s: &str) -> String {
    if s.len() <= 60 {
        s.to_string()
    } else {
        let cut = (0..=60).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        format!("{}… ({} bytes)", &s[..cut], s.len())
    }
}

/// One line of the rules' table: a JSON value read as a type, and what every
/// reader must make of it.
#[derive(Debug, Clone)]
pub struct RuleCase {
    pub ty: SqlType,
    /// The field's JSON text.
    pub json: String,
    /// The value as JSON (struct field names in upper case), or a piece of
    /// the reason it is refused.
    pub expected: Result<Json, &'static str>,
}

/// The table of [`coerce`]'s rules, which every reader's tests replay
/// through its own path (`{"v": <json>}` read as a column `V` of the type).
pub fn cases() -> Vec<RuleCase> {
    use serde_json::json;
    let city = SqlType::Struct(vec![
        ("CITY".into(), SqlType::String),
        ("ZIP".into(), SqlType::Int),
    ]);
    let ok = |ty: &SqlType, json: &str, expected: Json| RuleCase {
        ty: ty.clone(),
        json: json.to_string(),
        expected: Ok(expected),
    };
    let refused = |ty: &SqlType, json: &str, reason: &'static str| RuleCase {
        ty: ty.clone(),
        json: json.to_string(),
        expected: Err(reason),
    };
    let oversized = format!("\"{}\"", "x".repeat(MAX_TEXT_BYTES + 1));
    let at_limit = "y".repeat(MAX_TEXT_BYTES);
    let (s, i, b, d, t) = (
        &SqlType::String,
        &SqlType::Int,
        &SqlType::Bigint,
        &SqlType::Double,
        &SqlType::Boolean,
    );
    vec![
        // Values outside the classic producer's lists are data.
        ok(s, r#""Wright""#, json!("Wright")),
        ok(s, r#""São Paulo""#, json!("São Paulo")),
        ok(s, r#""caf\u00e9""#, json!("café")),
        ok(s, "7", json!("7")),
        ok(s, "1.5", json!("1.5")),
        ok(s, "true", json!("true")),
        ok(s, "null", Json::Null),
        ok(s, &format!("\"{at_limit}\""), json!(at_limit)),
        refused(s, &oversized, "oversized"),
        refused(s, "{}", "expected VARCHAR, found an object"),
        refused(s, "[1]", "expected VARCHAR, found an array"),
        ok(i, "3", json!(3)),
        ok(i, "0", json!(0)),
        ok(i, "-7", json!(-7)),
        ok(i, r#""3""#, json!(3)),
        ok(i, r#"" 42 ""#, json!(42)),
        ok(i, "null", Json::Null),
        refused(i, "2147483648", "out of range for INT"),
        refused(i, "1.5", "expected INT"),
        refused(i, r#""three""#, "expected INT"),
        refused(i, "true", "expected INT"),
        refused(i, "{}", "expected INT"),
        ok(b, "9007199254740993", json!(9_007_199_254_740_993_i64)),
        ok(b, r#""12""#, json!(12)),
        refused(b, "9223372036854775808", "BIGINT"),
        refused(b, "2.5", "BIGINT"),
        ok(d, "12", json!(12.0)),
        ok(d, "1.25", json!(1.25)),
        ok(d, "5000000.5", json!(5_000_000.5)),
        ok(d, "-3", json!(-3.0)),
        ok(d, "1e300", json!(1e300)),
        ok(d, r#""1.5""#, json!(1.5)),
        ok(
            d,
            "18446744073709551615",
            json!(18_446_744_073_709_551_615.0_f64),
        ),
        refused(d, r#""lots""#, "expected DOUBLE"),
        refused(d, "true", "expected DOUBLE"),
        refused(d, "[1.5]", "expected DOUBLE"),
        ok(t, "true", json!(true)),
        ok(t, r#""FALSE""#, json!(false)),
        refused(t, r#""yes""#, "expected BOOLEAN"),
        refused(t, "1", "expected BOOLEAN"),
        ok(
            &city,
            r#"{"city":"Hangzhou","zip":"31000"}"#,
            json!({"CITY": "Hangzhou", "ZIP": 31000}),
        ),
        ok(
            &city,
            r#"{"City":"Oslo","extra":[1]}"#,
            json!({"CITY": "Oslo", "ZIP": null}),
        ),
        ok(&city, "null", Json::Null),
        refused(&city, r#""Paris""#, "expected STRUCT"),
        refused(&city, r#"{"zip":"x"}"#, "ZIP"),
        refused(&city, r#"{"city":{"name":"x"}}"#, "CITY"),
    ]
}

impl RuleCase {
    /// Asserts that a reader's result for this case is what the table says.
    pub fn check(&self, got: Result<Json, String>) {
        match (&got, &self.expected) {
            (Ok(v), Ok(expected)) => {
                assert_eq!(v, expected, "{} as {}", truncate(&self.json), self.ty)
            }
            (Err(e), Err(reason)) => {
                assert!(
                    e.contains(reason),
                    "{} as {}: {e}",
                    truncate(&self.json),
                    self.ty
                )
            }
            _ => panic!("{} as {}: {got:?}", truncate(&self.json), self.ty),
        }
    }
}

/// Whole records read as one column `AMOUNT DOUBLE`: how field names match.
pub fn record_cases() -> Vec<(&'static str, Json)> {
    use serde_json::json;
    vec![
        (r#"{"amount": 5}"#, json!(5.0)),
        (r#"{"Amount": 5}"#, json!(5.0)),
        (r#"{"AMOUNT": "6.5"}"#, json!(6.5)),
        (r#"{"amount": 1, "amount": 2}"#, json!(2.0)),
        (r#"{"other": 1}"#, Json::Null),
        (r#"{"amount": null}"#, Json::Null),
        (r#"{}"#, Json::Null),
    ]
}

/// A value as the JSON the case table writes (struct fields by name, in upper case).
pub fn value_as_json(value: &Value, ty: &SqlType) -> Json {
    match (value, ty) {
        (Value::Null, _) => Json::Null,
        (Value::Bool(b), _) => Json::Bool(*b),
        (Value::Int(i), _) => Json::from(*i),
        (Value::Double(d), _) => Json::from(*d),
        (Value::Str(s), _) => Json::from(s.as_ref()),
        (Value::Struct(values), SqlType::Struct(fields)) => Json::Object(
            fields
                .iter()
                .zip(values.iter())
                .map(|((name, fty), v)| (name.to_uppercase(), value_as_json(v, fty)))
                .collect(),
        ),
        (Value::Struct(_), _) => Json::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_give_what_the_table_says() {
        for case in cases() {
            let json: Json = serde_json::from_str(&case.json).unwrap();
            case.check(coerce(Some(&json), &case.ty).map(|v| value_as_json(&v, &case.ty)));
        }
    }
}
