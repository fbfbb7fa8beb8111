//! The three business metrics of API 2, computed by DataFusion over the
//! lake's flattened transactions (every transaction, one row each, with
//! its amount, user, type, product and quantity). Amounts are summed as
//! they are given, in their own currencies, as the warehouse's
//! `total_spent_par_user_type` does.

use arrow_array::{Array, RecordBatch};
use chrono::{DateTime, Utc};
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::prelude::{ident, lit, DataFrame, Expr};
use lakehouse::lake::{COL_INGESTION_DATE, COL_INGESTION_TIME};

use crate::error::ApiError;
use crate::lake::Lake;

/// The dataset the metrics read (`read` on `lake/TRANSACTIONS_FLAT`).
pub const METRICS_DATASET: &str = "TRANSACTIONS_FLAT";

/// A column of the dataset by its lower-case name, whatever case the lake
/// uses (ksqlDB writes upper case), output under the lower-case name.
fn column(frame: &DataFrame, name: &str) -> Result<Expr, ApiError> {
    frame
        .schema()
        .fields()
        .iter()
        .find(|f| f.name().eq_ignore_ascii_case(name))
        .map(|f| ident(f.name()))
        .ok_or_else(|| {
            ApiError::unavailable(format!(
                "{METRICS_DATASET} has no column {name} to compute this from"
            ))
        })
}

async fn frame(lake: &Lake) -> Result<Option<DataFrame>, ApiError> {
    let Some(table) = lake.table(METRICS_DATASET).await? else {
        return Ok(None);
    };
    Ok(Some(lake.context().read_table(table)?))
}

/// Sum and count of transactions that landed since `since`.
pub async fn spent_since(lake: &Lake, since: DateTime<Utc>) -> Result<(f64, i64), ApiError> {
    let Some(frame) = frame(lake).await? else {
        return Ok((0.0, 0));
    };
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid");
    let day = (since.date_naive() - epoch).num_days() as i32;
    let amount = column(&frame, "amount")?;
    let batches = frame
        .filter(ident(COL_INGESTION_DATE).gt_eq(lit(ScalarValue::Date32(Some(day)))))?
        .filter(
            ident(COL_INGESTION_TIME).gt_eq(lit(ScalarValue::TimestampMicrosecond(
                Some(since.timestamp_micros()),
                Some("UTC".into()),
            ))),
        )?
        .aggregate(
            vec![],
            vec![
                sum(amount).alias("total_spent"),
                count(lit(1)).alias("transactions"),
            ],
        )?
        .collect()
        .await?;
    let batch = batches.first().filter(|b| b.num_rows() > 0);
    let Some(batch) = batch else {
        return Ok((0.0, 0));
    };
    let total = batch
        .column(0)
        .as_any()
        .downcast_ref::<arrow_array::Float64Array>()
        .filter(|a| a.is_valid(0))
        .map(|a| a.value(0))
        .unwrap_or(0.0);
    let transactions = batch
        .column(1)
        .as_any()
        .downcast_ref::<arrow_array::Int64Array>()
        .map(|a| a.value(0))
        .unwrap_or(0);
    Ok((total, transactions))
}

/// Total spent and transaction count per user and transaction type, largest first.
pub async fn spent_per_user_type(lake: &Lake, limit: usize) -> Result<Vec<RecordBatch>, ApiError> {
    let Some(frame) = frame(lake).await? else {
        return Ok(Vec::new());
    };
    let (user, kind, amount) = (
        column(&frame, "user_id")?,
        column(&frame, "transaction_type")?,
        column(&frame, "amount")?,
    );
    Ok(frame
        .aggregate(
            vec![user.alias("user_id"), kind.alias("transaction_type")],
            vec![
                sum(amount).alias("total_spent"),
                count(lit(1)).alias("transaction_count"),
            ],
        )?
        .sort(vec![
            ident("total_spent").sort(false, true),
            ident("user_id").sort(true, true),
            ident("transaction_type").sort(true, true),
        ])?
        .limit(0, Some(limit))?
        .collect()
        .await?)
}

/// Products by total quantity, largest first.
pub async fn top_products(lake: &Lake, limit: usize) -> Result<Vec<RecordBatch>, ApiError> {
    let Some(frame) = frame(lake).await? else {
        return Ok(Vec::new());
    };
    let (product, quantity) = (column(&frame, "product_id")?, column(&frame, "quantity")?);
    Ok(frame
        .aggregate(
            vec![product.alias("product_id")],
            vec![
                sum(quantity).alias("total_quantity"),
                count(lit(1)).alias("transaction_count"),
            ],
        )?
        .sort(vec![
            ident("total_quantity").sort(false, true),
            ident("product_id").sort(true, true),
        ])?
        .limit(0, Some(limit))?
        .collect()
        .await?)
}
