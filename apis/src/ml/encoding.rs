//! Turning records into numbers and back: the target (a condition on one
//! column, e.g. `STATUS == completed`), and each feature as a standardised
//! number or a one-hot category, learnt from the training rows and saved
//! with the model so that predictions encode rows the same way.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A condition on one column whose truth is the label to predict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Target {
    pub column: String,
    /// `==`, `!=`, `>`, `>=`, `<` or `<=`.
    pub op: String,
    pub value: String,
}

const OPERATORS: [&str; 6] = [">=", "<=", "!=", "==", ">", "<"];

impl Target {
    /// Parses `COLUMN OP VALUE`, e.g. `status == completed` or `amount > 500`.
    pub fn parse(text: &str) -> Result<Target, String> {
        for op in OPERATORS {
            if let Some((column, value)) = text.split_once(op) {
                let (column, value) = (column.trim(), value.trim().trim_matches(['"', '\'']));
                if column.is_empty() || value.is_empty() {
                    break;
                }
                return Ok(Target {
                    column: column.to_string(),
                    op: op.to_string(),
                    value: value.to_string(),
                });
            }
        }
        Err(format!(
            "expected COLUMN OP VALUE with OP one of == != > >= < <=, e.g. \"status == completed\", got {text:?}"
        ))
    }

    /// The label of a record's value; `None` when it has none.
    pub fn label(&self, value: &Value) -> Option<bool> {
        let text = match value {
            Value::Null => return None,
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let ordering = match (text.parse::<f64>(), self.value.parse::<f64>()) {
            (Ok(a), Ok(b)) => a.partial_cmp(&b)?,
            _ => text.as_str().cmp(self.value.as_str()),
        };
        use std::cmp::Ordering::*;
        Some(match self.op.as_str() {
            "==" => ordering == Equal,
            "!=" => ordering != Equal,
            ">" => ordering == Greater,
            ">=" => ordering != Less,
            "<" => ordering == Less,
            _ => ordering != Greater,
        })
    }
}

/// How one feature becomes numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureEncoding {
    /// `(value - mean) / scale`.
    Numeric { name: String, mean: f64, scale: f64 },
    /// One column per category seen in training (at most `MAX_CATEGORIES`).
    Categorical {
        name: String,
        categories: Vec<String>,
    },
}

/// More distinct values than this and a text column is not a usable feature.
pub const MAX_CATEGORIES: usize = 200;

impl FeatureEncoding {
    pub fn name(&self) -> &str {
        match self {
            FeatureEncoding::Numeric { name, .. } | FeatureEncoding::Categorical { name, .. } => {
                name
            }
        }
    }

    /// Learns a feature's encoding from its training values: numeric when
    /// every present value is a number, categorical otherwise.
    pub fn learn(name: &str, values: &[&Value]) -> Result<FeatureEncoding, String> {
        let present: Vec<&Value> = values.iter().copied().filter(|v| !v.is_null()).collect();
        if present.is_empty() {
            return Err(format!("{name} has no values in the training rows"));
        }
        if present.iter().all(|v| v.is_number()) {
            let numbers: Vec<f64> = present.iter().filter_map(|v| v.as_f64()).collect();
            let mean = numbers.iter().sum::<f64>() / numbers.len() as f64;
            let variance =
                numbers.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / numbers.len() as f64;
            let scale = if variance.sqrt() > 0.0 {
                variance.sqrt()
            } else {
                1.0
            };
            return Ok(FeatureEncoding::Numeric {
                name: name.to_string(),
                mean,
                scale,
            });
        }
        let mut categories: Vec<String> = present.iter().map(|v| category(v)).collect();
        categories.sort();
        categories.dedup();
        if categories.len() > MAX_CATEGORIES {
            return Err(format!(
                "{name} has {} distinct values, more than the {MAX_CATEGORIES} a categorical feature may have",
                categories.len()
            ));
        }
        Ok(FeatureEncoding::Categorical {
            name: name.to_string(),
            categories,
        })
    }

    /// Appends the feature's numbers for `value`, or says why it cannot.
    pub fn encode(&self, value: &Value, out: &mut Vec<f64>) -> Result<(), String> {
        match self {
            FeatureEncoding::Numeric { name, mean, scale } => {
                let number = value
                    .as_f64()
                    .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
                    .ok_or_else(|| match value {
                        Value::Null => format!("{name} is missing"),
                        other => format!("{name} must be a number, got {other}"),
                    })?;
                out.push((number - mean) / scale);
            }
            FeatureEncoding::Categorical { name, categories } => {
                if value.is_null() {
                    return Err(format!("{name} is missing"));
                }
                let value = category(value);
                let position = categories.iter().position(|c| *c == value).ok_or_else(|| {
                    format!(
                        "{name} {value:?} was not seen in training; known: {}",
                        categories.join(", ")
                    )
                })?;
                out.extend((0..categories.len()).map(|i| if i == position { 1.0 } else { 0.0 }));
            }
        }
        Ok(())
    }
}

fn category(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A row's numbers under every feature's encoding.
pub fn encode_row(
    features: &[FeatureEncoding],
    value_of: impl Fn(&str) -> Value,
) -> Result<Vec<f64>, String> {
    let mut out = Vec::new();
    for feature in features {
        feature.encode(&value_of(feature.name()), &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_parse_and_label_numbers_and_words() {
        let t = Target::parse("status == completed").unwrap();
        assert_eq!(t.label(&json!("completed")), Some(true));
        assert_eq!(t.label(&json!("failed")), Some(false));
        assert_eq!(t.label(&Value::Null), None);
        let t = Target::parse("amount >= 500").unwrap();
        assert_eq!(t.label(&json!(500.0)), Some(true));
        assert_eq!(t.label(&json!(80)), Some(false));
        assert!(Target::parse("status").is_err());
        assert!(Target::parse("== x").is_err());
    }

    #[test]
    fn features_encode_as_learnt_and_refuse_what_they_cannot() {
        let amount = FeatureEncoding::learn("amount", &[&json!(1.0), &json!(3.0)]).unwrap();
        let method =
            FeatureEncoding::learn("method", &[&json!("card"), &json!("cash"), &json!("card")])
                .unwrap();
        let mut out = Vec::new();
        amount.encode(&json!(3.0), &mut out).unwrap();
        method.encode(&json!("cash"), &mut out).unwrap();
        assert_eq!(out, vec![1.0, 0.0, 1.0]);
        assert!(amount
            .encode(&json!("x"), &mut out)
            .unwrap_err()
            .contains("number"));
        assert!(amount
            .encode(&Value::Null, &mut out)
            .unwrap_err()
            .contains("missing"));
        let unknown = method.encode(&json!("crypto"), &mut out).unwrap_err();
        assert!(unknown.contains("not seen in training") && unknown.contains("card"));
    }
}
