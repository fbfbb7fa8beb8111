//! The parameters of a dataset page: filters, projection, dates and a
//! stable order (Kafka partition, then offset: every landed row has one
//! unique position), by page number or by cursor, checked against the
//! dataset's schema. Filters become DataFusion expressions over literals
//! (never SQL text), so that it prunes row groups and pages with them;
//! `page_read` reads the page.

use std::sync::Arc;

use arrow_schema::{DataType, Schema};
use base64::Engine;
use chrono::NaiveDate;
use datafusion::prelude::{ident, lit, Expr};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::lake::Lake;
use crate::query_params::{date, positive};

pub const DEFAULT_PAGE_SIZE: u64 = 10;
pub const MAX_PAGE_SIZE: u64 = 1000;

/// Parameters of `GET /api/v2/datasets/{name}`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DatasetQuery {
    /// Page number, from 1.
    #[param(value_type = Option<u64>, minimum = 1)]
    pub page: Option<String>,
    /// Rows per page (default 10, at most 1000).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    pub page_size: Option<String>,
    /// Opaque position from the previous page's `next_cursor`; replaces `page`.
    pub cursor: Option<String>,
    /// Columns to return, comma-separated (default: all).
    pub fields: Option<String>,
    /// The dataset as it stood at the end of this ingestion date (YYYY-MM-DD).
    #[param(value_type = Option<String>, format = Date)]
    pub version: Option<String>,
    /// First ingestion date included (YYYY-MM-DD).
    #[param(value_type = Option<String>, format = Date)]
    pub since: Option<String>,
    /// Last ingestion date included (YYYY-MM-DD).
    #[param(value_type = Option<String>, format = Date)]
    pub until: Option<String>,
    /// One value or several, comma-separated.
    pub payment_method: Option<String>,
    /// One value or several, comma-separated.
    pub country: Option<String>,
    /// One value or several, comma-separated.
    pub product_category: Option<String>,
    /// One value or several, comma-separated.
    pub status: Option<String>,
    #[param(value_type = Option<f64>)]
    pub amount_gt: Option<String>,
    #[param(value_type = Option<f64>)]
    pub amount_gte: Option<String>,
    #[param(value_type = Option<f64>)]
    pub amount_lt: Option<String>,
    #[param(value_type = Option<f64>)]
    pub amount_lte: Option<String>,
    #[param(value_type = Option<f64>)]
    pub amount_eq: Option<String>,
    #[param(value_type = Option<f64>)]
    pub customer_rating_gt: Option<String>,
    #[param(value_type = Option<f64>)]
    pub customer_rating_gte: Option<String>,
    #[param(value_type = Option<f64>)]
    pub customer_rating_lt: Option<String>,
    #[param(value_type = Option<f64>)]
    pub customer_rating_lte: Option<String>,
    #[param(value_type = Option<f64>)]
    pub customer_rating_eq: Option<String>,
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Page(u64),
    After { partition: i32, offset: i64 },
}

/// A checked page request.
#[derive(Debug)]
pub struct PageRequest {
    pub position: Position,
    pub page_size: u64,
    /// Requested columns (resolved to the dataset's names), or all.
    pub fields: Option<Vec<String>>,
    /// Filters on the rows' own columns.
    pub filters: Vec<Expr>,
    /// Ingestion dates included (folders outside are not read).
    pub since: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    pub version: Option<NaiveDate>,
}

impl PageRequest {
    /// The row filters as one text, the same for the same filters and
    /// different for different ones: the expressions' debug form, which
    /// quotes and escapes every literal (their display form does not, so
    /// a crafted value could read like another filter).
    pub fn filter_key(&self) -> String {
        format!("{:?}", self.filters)
    }
}

pub fn encode_cursor(partition: i32, offset: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{partition}:{offset}"))
}

pub fn decode_cursor(text: &str) -> Result<Position, ApiError> {
    let bad = || ApiError::bad_parameter("cursor", "cursor is not one this server gave out");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (partition, offset) = text.split_once(':').ok_or_else(bad)?;
    Ok(Position::After {
        partition: partition.parse().map_err(|_| bad())?,
        offset: offset.parse().map_err(|_| bad())?,
    })
}

/// A column of the dataset by the client's name: exact, else any case.
fn column<'a>(schema: &'a Schema, name: &str) -> Option<&'a str> {
    let fields = schema.fields();
    fields
        .iter()
        .find(|f| f.name() == name)
        .or_else(|| fields.iter().find(|f| f.name().eq_ignore_ascii_case(name)))
        .map(|f| f.name().as_str())
}

fn require_column<'a>(
    schema: &'a Schema,
    parameter: &str,
    name: &str,
) -> Result<&'a str, ApiError> {
    column(schema, name).ok_or_else(|| {
        ApiError::bad_parameter(parameter, format!("this dataset has no column {name:?}"))
    })
}

const IN_LIST_FILTERS: [&str; 4] = ["payment_method", "country", "product_category", "status"];
const COMPARISONS: [(&str, &str); 5] = [
    ("gt", ">"),
    ("gte", ">="),
    ("lt", "<"),
    ("lte", "<="),
    ("eq", "="),
];

impl DatasetQuery {
    fn in_list_value(&self, name: &str) -> Option<&str> {
        match name {
            "payment_method" => self.payment_method.as_deref(),
            "country" => self.country.as_deref(),
            "product_category" => self.product_category.as_deref(),
            "status" => self.status.as_deref(),
            _ => None,
        }
    }

    fn comparison_value(&self, column: &str, op: &str) -> Option<&str> {
        let v = match (column, op) {
            ("amount", "gt") => &self.amount_gt,
            ("amount", "gte") => &self.amount_gte,
            ("amount", "lt") => &self.amount_lt,
            ("amount", "lte") => &self.amount_lte,
            ("amount", "eq") => &self.amount_eq,
            ("customer_rating", "gt") => &self.customer_rating_gt,
            ("customer_rating", "gte") => &self.customer_rating_gte,
            ("customer_rating", "lt") => &self.customer_rating_lt,
            ("customer_rating", "lte") => &self.customer_rating_lte,
            ("customer_rating", "eq") => &self.customer_rating_eq,
            _ => return None,
        };
        v.as_deref()
    }

    /// Checks every parameter against the dataset's schema.
    pub fn check(&self, schema: &Schema) -> Result<PageRequest, ApiError> {
        let page_size = positive(
            "page_size",
            self.page_size.as_deref(),
            DEFAULT_PAGE_SIZE,
            MAX_PAGE_SIZE,
        )?;
        let position = match (&self.cursor, &self.page) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_parameter(
                    "cursor",
                    "give either page or cursor, not both",
                ))
            }
            (Some(cursor), None) => decode_cursor(cursor)?,
            (None, page) => Position::Page(positive("page", page.as_deref(), 1, 10_000_000)?),
        };
        let fields = match self.fields.as_deref() {
            None => None,
            Some(list) => {
                let mut names = Vec::new();
                for name in list.split(',').map(str::trim) {
                    if name.is_empty() {
                        return Err(ApiError::bad_parameter(
                            "fields",
                            "fields has an empty name",
                        ));
                    }
                    let found = require_column(schema, "fields", name)?.to_string();
                    if !names.contains(&found) {
                        names.push(found);
                    }
                }
                Some(names)
            }
        };
        let mut filters = Vec::new();
        for name in IN_LIST_FILTERS {
            let Some(list) = self.in_list_value(name) else {
                continue;
            };
            let column = require_column(schema, name, name)?;
            let values: Vec<Expr> = list
                .split(',')
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(|v| lit(v.to_string()))
                .collect();
            if values.is_empty() {
                return Err(ApiError::bad_parameter(
                    name,
                    format!("{name} needs at least one value"),
                ));
            }
            filters.push(ident(column).in_list(values, false));
        }
        for base in ["amount", "customer_rating"] {
            for (op, symbol) in COMPARISONS {
                let parameter = format!("{base}_{op}");
                let Some(text) = self.comparison_value(base, op) else {
                    continue;
                };
                let column = require_column(schema, &parameter, base)?;
                let numeric = schema
                    .field_with_name(column)
                    .map(|f| f.data_type().is_numeric())
                    .unwrap_or(false);
                if !numeric {
                    return Err(ApiError::bad_parameter(
                        &parameter,
                        format!("column {base:?} is not numeric here"),
                    ));
                }
                let value: f64 = text
                    .trim()
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite())
                    .ok_or_else(|| {
                        ApiError::bad_parameter(
                            &parameter,
                            format!("{parameter} must be a number, got {text:?}"),
                        )
                    })?;
                let (c, v) = (ident(column), lit(value));
                filters.push(match symbol {
                    ">" => c.gt(v),
                    ">=" => c.gt_eq(v),
                    "<" => c.lt(v),
                    "<=" => c.lt_eq(v),
                    _ => c.eq(v),
                });
            }
        }
        let since = date("since", self.since.as_deref())?;
        let until = date("until", self.until.as_deref())?;
        let version = date("version", self.version.as_deref())?;
        if let (Some(since), Some(until)) = (since, until) {
            if since > until {
                return Err(ApiError::bad_parameter("until", "until is before since"));
            }
        }
        let until = match (until, version) {
            (Some(u), Some(v)) => Some(u.min(v)),
            (u, v) => u.or(v),
        };
        Ok(PageRequest {
            position,
            page_size,
            fields,
            filters,
            since,
            until,
            version,
        })
    }
}

/// Dates held by a dataset (its `ingestion_date=` folders), oldest first.
pub fn versions(lake: &Lake, dataset: &str) -> Result<Vec<NaiveDate>, ApiError> {
    let partitions =
        lakehouse::lake::date_partitions(&lake.dataset_dir(dataset)).map_err(ApiError::internal)?;
    Ok(partitions.into_iter().map(|p| p.date).collect())
}

/// The column types of a dataset, for `GET /resources` and error messages.
pub fn describe(schema: &Arc<Schema>) -> Vec<(String, String)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), type_name(f.data_type())))
        .collect()
}

fn type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => "integer".into(),
        DataType::Float32 | DataType::Float64 => "double".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        other => other.to_string().to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::Field;
    use lakehouse::lake::{COL_OFFSET, COL_PARTITION};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("transaction_id", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
            Field::new("status", DataType::Utf8, true),
            Field::new(COL_PARTITION, DataType::Int32, false),
            Field::new(COL_OFFSET, DataType::Int64, false),
        ])
    }

    fn query(text: &str) -> DatasetQuery {
        crate::query_params::parse(text).unwrap()
    }

    #[test]
    fn cursors_round_trip_and_forged_ones_are_refused() {
        assert_eq!(
            decode_cursor(&encode_cursor(2, 41)).unwrap(),
            Position::After {
                partition: 2,
                offset: 41
            }
        );
        for bad in ["x", "bm9wZQ", "!!"] {
            assert_eq!(
                decode_cursor(bad).unwrap_err().parameter.as_deref(),
                Some("cursor")
            );
        }
    }

    #[test]
    fn each_bad_parameter_is_named() {
        let s = schema();
        for (text, parameter) in [
            ("fields=nope", "fields"),
            ("fields=amount,,status", "fields"),
            ("country=FR", "country"),
            ("amount_gt=abc", "amount_gt"),
            ("amount_gt=NaN", "amount_gt"),
            ("customer_rating_lt=3", "customer_rating_lt"),
            ("status=", "status"),
            ("page=0", "page"),
            ("page_size=1001", "page_size"),
            ("since=2026-02-30", "since"),
            ("since=2026-12-02&until=2026-12-01", "until"),
            ("page=2&cursor=MTox", "cursor"),
        ] {
            let e = query(text).check(&s).unwrap_err();
            assert_eq!(e.parameter.as_deref(), Some(parameter), "{text}: {e}");
        }
    }

    #[test]
    fn filter_keys_tell_crafted_values_apart() {
        let key = |text: &str| query(text).check(&schema()).unwrap().filter_key();
        assert_eq!(key("status=a,b"), key("status=a,b"));
        assert_ne!(key("status=a,b"), key("status=a"));
        assert_ne!(
            key("status=a\")%20OR%20(status%20IN%20(\"b"),
            key("status=a,b")
        );
    }

    #[test]
    fn good_parameters_become_filters() {
        let r = query(
            "status=completed,failed&amount_gte=10.5&fields=AMOUNT,status&page=3&page_size=5",
        )
        .check(&schema())
        .unwrap();
        assert_eq!(r.filters.len(), 2);
        assert_eq!(
            r.fields,
            Some(vec!["amount".to_string(), "status".to_string()])
        );
        assert_eq!(r.position, Position::Page(3));
        assert_eq!(r.page_size, 5);
    }
}
