//! SQL types of the subset, and their names as ksqlDB prints them.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "fields", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SqlType {
    Boolean,
    /// 32-bit integer.
    Int,
    /// 64-bit integer.
    Bigint,
    Double,
    /// `VARCHAR` / `STRING`.
    String,
    Struct(Vec<(String, SqlType)>),
}

impl SqlType {
    pub fn is_numeric(&self) -> bool {
        matches!(self, SqlType::Int | SqlType::Bigint | SqlType::Double)
    }

    /// The wider of two numeric types (INT < BIGINT < DOUBLE).
    pub fn widen(&self, other: &SqlType) -> SqlType {
        match (self, other) {
            (SqlType::Double, _) | (_, SqlType::Double) => SqlType::Double,
            (SqlType::Bigint, _) | (_, SqlType::Bigint) => SqlType::Bigint,
            _ => SqlType::Int,
        }
    }

    /// Two types whose values can be compared with each other.
    pub fn comparable_with(&self, other: &SqlType) -> bool {
        (self.is_numeric() && other.is_numeric()) || self == other
    }
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::Boolean => write!(f, "BOOLEAN"),
            SqlType::Int => write!(f, "INT"),
            SqlType::Bigint => write!(f, "BIGINT"),
            SqlType::Double => write!(f, "DOUBLE"),
            SqlType::String => write!(f, "VARCHAR"),
            SqlType::Struct(fields) => {
                write!(f, "STRUCT<")?;
                for (i, (name, ty)) in fields.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{name} {ty}")?;
                }
                write!(f, ">")
            }
        }
    }
}
