//! `POST /api/v2/sql`: one read-only SELECT over the datasets the caller
//! may read. The statement is parsed first: anything but a single query is
//! refused with its parser message (which gives the line and column); the
//! query then runs in a context holding only the caller's datasets, with
//! DDL, DML and statements disabled, a row cap and a time limit.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{ident, Expr};
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement;
use futures::StreamExt;

use crate::error::ApiError;
use crate::lake::Lake;
use crate::permissions::{Grants, Permission, Resource};

pub const MAX_QUERY_BYTES: usize = 64 * 1024;

pub struct SqlResult {
    pub batches: Vec<RecordBatch>,
    pub columns: Vec<String>,
    pub rows: usize,
    pub truncated: bool,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_parameter("query", message)
}

/// Parses `text` and returns the one query statement in it.
pub fn parse_select(text: &str) -> Result<DfStatement, ApiError> {
    if text.trim().is_empty() {
        return Err(bad("query is empty"));
    }
    if text.len() > MAX_QUERY_BYTES {
        return Err(bad(format!("query is over {MAX_QUERY_BYTES} bytes")));
    }
    let mut statements = DFParser::parse_sql(text).map_err(|e| {
        let message = e.to_string();
        // The parser gives a line and column except when the text ends too soon.
        if message.contains("Line:") {
            bad(format!("SQL syntax: {message}"))
        } else {
            let lines = text.trim_end().lines().count().max(1);
            bad(format!(
                "SQL syntax: {message} at the end of the query, Line: {lines}"
            ))
        }
    })?;
    if statements.len() != 1 {
        return Err(bad(format!(
            "give exactly one SELECT statement, got {}",
            statements.len()
        )));
    }
    let statement = statements.pop_front().expect("one statement");
    match &statement {
        DfStatement::Statement(inner) if matches!(inner.as_ref(), Statement::Query(_)) => {
            Ok(statement)
        }
        _ => Err(bad("only a read-only SELECT is allowed here")),
    }
}

/// The table with its columns under lower-case names, so that unquoted
/// names work in any case (SQL folds them to lower case; ksqlDB's columns
/// are upper case). Names that would collide keep their own case.
fn lower_case_view(
    ctx: &datafusion::prelude::SessionContext,
    table: Arc<datafusion::datasource::listing::ListingTable>,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>, ApiError> {
    let frame = ctx.read_table(table)?;
    let names: Vec<String> = frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let columns: Vec<Expr> = names
        .iter()
        .map(|name| {
            let lower = name.to_lowercase();
            let collides = names.iter().filter(|n| n.to_lowercase() == lower).count() > 1;
            let column = ident(name);
            if collides || &lower == name {
                column
            } else {
                column.alias(lower)
            }
        })
        .collect();
    Ok(frame.select(columns)?.into_view())
}

pub async fn run(
    lake: &Lake,
    grants: &Grants,
    text: &str,
    max_rows: usize,
    timeout: Duration,
) -> Result<SqlResult, ApiError> {
    let statement = parse_select(text)?;
    let ctx = lake.context();
    // Register exactly the tables the query names, each after its
    // permission check; unknown names are the client's error.
    let references = ctx
        .state()
        .resolve_table_references(&statement)
        .map_err(|e| bad(e.to_string()))?;
    for reference in references {
        let name = reference.table();
        let dataset = lake.resolve(name).map_err(|_| {
            bad(format!(
                "there is no dataset {name:?}; see GET /api/v2/resources"
            ))
        })?;
        grants.require(&Resource::lake(&dataset), Permission::Read)?;
        let Some(table) = lake.table(&dataset).await? else {
            return Err(bad(format!("dataset {dataset} has no data yet")));
        };
        if reference.schema().is_some() || reference.catalog().is_some() {
            return Err(bad(format!("name datasets without a schema: {name}")));
        }
        if !ctx.table_exist(name).map_err(ApiError::internal)? {
            ctx.register_table(name, lower_case_view(&ctx, table)?)
                .map_err(ApiError::internal)?;
        }
    }
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let work = async {
        let frame = ctx
            .sql_with_options(text, options)
            .await
            .map_err(|e| bad(e.to_string()))?;
        let columns: Vec<String> = frame
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let mut stream = frame
            .execute_stream()
            .await
            .map_err(|e| bad(e.to_string()))?;
        let mut batches = Vec::new();
        let mut rows = 0;
        let mut truncated = false;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| bad(e.to_string()))?;
            let room = max_rows - rows;
            if batch.num_rows() > room {
                batches.push(batch.slice(0, room));
                rows += room;
                truncated = true;
                break;
            }
            rows += batch.num_rows();
            batches.push(batch);
            if rows == max_rows {
                truncated = stream.next().await.is_some();
                break;
            }
        }
        Ok::<_, ApiError>(SqlResult {
            batches,
            columns,
            rows,
            truncated,
        })
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| {
        ApiError::timeout(format!(
            "the query ran over its {} s limit and was stopped",
            timeout.as_secs()
        ))
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_select_passes() {
        assert!(parse_select("SELECT 1").is_ok());
        assert!(parse_select("WITH t AS (SELECT 1 AS a) SELECT a FROM t").is_ok());
        for bad in [
            "",
            "SELECT 1; SELECT 2",
            "DROP TABLE x",
            "INSERT INTO x VALUES (1)",
            "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc'",
            "COPY (SELECT 1) TO '/tmp/x.parquet'",
            "SET datafusion.execution.batch_size = 1",
            "EXPLAIN SELECT 1",
            "SELECT * FORM x",
        ] {
            let e = parse_select(bad).unwrap_err();
            assert_eq!(e.parameter.as_deref(), Some("query"), "{bad}");
        }
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let e = parse_select("SELECT a\nFROM t\nWHERE (").unwrap_err();
        assert!(e.message.contains("Line: 3"), "{}", e.message);
    }
}
