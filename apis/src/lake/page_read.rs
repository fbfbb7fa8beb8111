//! Reading one page of a dataset. The page's place in the dataset is found
//! from per-file row counts (`data_files`), then DataFusion reads only the
//! file or two the page falls in, each known to be in (partition, offset)
//! order, so that it merges them and stops after the page instead of
//! sorting the dataset. The total comes from the same counts.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use chrono::NaiveDate;
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::prelude::{col, ident, lit, Expr, SessionContext};
use lakehouse::lake::{COL_INGESTION_DATE, COL_OFFSET, COL_PARTITION, DATA_EXTENSION};

use crate::error::ApiError;
use crate::lake::data_files::{data_files, DataFile};
use crate::lake::page::{encode_cursor, versions, PageRequest, Position};
use crate::lake::Lake;

pub struct Page {
    pub total: u64,
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
    pub next_cursor: Option<String>,
}

pub async fn read_page(
    lake: &Lake,
    dataset: &str,
    request: &PageRequest,
) -> Result<Page, ApiError> {
    if let Some(version) = request.version {
        if !versions(lake, dataset)?.contains(&version) {
            return Err(ApiError::not_found(format!(
                "dataset {dataset} has no version {version}: see GET /api/v2/datasets/{dataset}/versions"
            )));
        }
    }
    let empty = Page {
        total: 0,
        batches: Vec::new(),
        rows: 0,
        next_cursor: None,
    };
    let Some(table) = lake.table(dataset).await? else {
        return Ok(empty);
    };
    let files = data_files(&lake.dataset_dir(dataset), request.since, request.until)
        .map_err(ApiError::internal)?;
    let file_schema = without_date(&table.schema());
    let ctx = lake.context();
    let counts = matching_rows(lake, &ctx, &files, &file_schema, request).await?;
    let total = counts.iter().sum();

    let (first, skip, after) = match request.position {
        Position::Page(page) => {
            let mut skip = (page - 1) * request.page_size;
            let mut first = files.len();
            for (index, rows) in counts.iter().enumerate() {
                if skip < *rows {
                    first = index;
                    break;
                }
                skip -= rows;
            }
            (first, skip, None)
        }
        Position::After { partition, offset } => {
            let first = files
                .iter()
                .position(|f| (f.file.range.partition, f.file.range.last) > (partition, offset))
                .unwrap_or(files.len());
            (first, 0, Some((partition, offset)))
        }
    };
    // The files from `first` on that surely hold the page: the first one's
    // count includes rows before a cursor, so it is not counted on then.
    let wanted = skip + request.page_size;
    let mut last = first;
    let mut surely = 0;
    while last < files.len() && surely < wanted {
        if !(last == first && after.is_some()) {
            surely += counts[last];
        }
        last += 1;
    }
    let chosen: Vec<&DataFile> = (first..last)
        .filter(|&i| counts[i] > 0)
        .map(|i| &files[i])
        .collect();
    if chosen.is_empty() {
        return Ok(Page { total, ..empty });
    }

    let schema = table.schema();
    let mut columns: Vec<String> = match &request.fields {
        Some(fields) => fields.clone(),
        None => schema.fields().iter().map(|f| f.name().clone()).collect(),
    };
    let shown = columns.len();
    for position_column in [COL_PARTITION, COL_OFFSET] {
        if !columns.iter().any(|c| c == position_column) {
            columns.push(position_column.to_string());
        }
    }
    let mut union: Option<DataFrame> = None;
    for file in chosen {
        let mut frame = file_frame(&ctx, file, &file_schema, request)?;
        if let Some((partition, offset)) = after {
            if file.file.range.partition == partition {
                frame = frame.filter(ident(COL_OFFSET).gt(lit(offset)))?;
            }
        }
        let frame = frame.select(
            columns
                .iter()
                .map(|c| ident(c.as_str()))
                .collect::<Vec<_>>(),
        )?;
        union = Some(match union {
            None => frame,
            Some(u) => u.union(frame)?,
        });
    }
    let frame = union
        .expect("at least one file")
        .sort(vec![
            ident(COL_PARTITION).sort(true, false),
            ident(COL_OFFSET).sort(true, false),
        ])?
        .limit(skip as usize, Some(request.page_size as usize))?;
    let batches = frame.collect().await?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let next_cursor = if rows as u64 == request.page_size {
        last_position(&batches, &columns).map(|(p, o)| encode_cursor(p, o))
    } else {
        None
    };
    let batches = batches
        .into_iter()
        .map(|b| b.project(&(0..shown).collect::<Vec<_>>()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    Ok(Page {
        total,
        batches,
        rows,
        next_cursor,
    })
}

/// Rows of each file that match the request's filters: the footers' counts
/// when it has none; else the remembered counts, and one query (one branch
/// per file) for the files not counted yet.
async fn matching_rows(
    lake: &Lake,
    ctx: &SessionContext,
    files: &[DataFile],
    file_schema: &SchemaRef,
    request: &PageRequest,
) -> Result<Vec<u64>, ApiError> {
    let counts = lake.counts();
    if request.filters.is_empty() {
        return Ok(files
            .iter()
            .map(|f| counts.footer_rows(&f.file, f.modified))
            .collect());
    }
    let key = request.filter_key();
    let mut known: Vec<Option<u64>> = files.iter().map(|f| counts.get(f, &key)).collect();
    let mut union: Option<DataFrame> = None;
    for (index, file) in files.iter().enumerate() {
        if known[index].is_some() {
            continue;
        }
        let frame = file_frame(ctx, file, file_schema, request)?
            .aggregate(vec![], vec![count(lit(1)).alias("n")])?
            .select(vec![lit(index as i64).alias("file"), col("n")])?;
        union = Some(match union {
            None => frame,
            Some(u) => u.union(frame)?,
        });
    }
    if let Some(union) = union {
        for batch in union.collect().await? {
            let indexes = batch.column(0).as_primitive::<Int64Type>();
            let numbers = batch.column(1).as_primitive::<Int64Type>();
            for row in 0..batch.num_rows() {
                let (index, n) = (
                    indexes.value(row) as usize,
                    numbers.value(row).max(0) as u64,
                );
                counts.put(&files[index], &key, n);
                known[index] = Some(n);
            }
        }
    }
    Ok(known.into_iter().map(|n| n.unwrap_or(0)).collect())
}

/// One file as a frame with the dataset's columns (its date as the
/// `ingestion_date` column) and the request's row filters applied.
fn file_frame(
    ctx: &SessionContext,
    file: &DataFile,
    file_schema: &SchemaRef,
    request: &PageRequest,
) -> Result<DataFrame, ApiError> {
    let url =
        ListingTableUrl::parse(file.file.path.display().to_string()).map_err(ApiError::internal)?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(format!(".{DATA_EXTENSION}"))
        // The lake sink writes a file's rows in offset order.
        .with_file_sort_order(vec![vec![
            col(COL_PARTITION).sort(true, false),
            col(COL_OFFSET).sort(true, false),
        ]]);
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(file_schema.clone());
    let table = ListingTable::try_new(config)
        .map_err(ApiError::internal)?
        .with_cache(ctx.runtime_env().cache_manager.get_file_statistic_cache());
    let mut frame = ctx.read_table(Arc::new(table))?;
    for filter in &request.filters {
        frame = frame.filter(filter.clone())?;
    }
    let mut columns: Vec<Expr> = file_schema
        .fields()
        .iter()
        .map(|f| ident(f.name().as_str()))
        .collect();
    columns.push(date_literal(file.date).alias(COL_INGESTION_DATE));
    Ok(frame.select(columns)?)
}

fn without_date(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .filter(|f| f.name() != COL_INGESTION_DATE)
            .cloned()
            .collect::<Vec<_>>(),
    ))
}

fn date_literal(date: NaiveDate) -> Expr {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    lit(ScalarValue::Date32(Some((date - epoch).num_days() as i32)))
}

fn last_position(batches: &[RecordBatch], columns: &[String]) -> Option<(i32, i64)> {
    let batch = batches.iter().rev().find(|b| b.num_rows() > 0)?;
    let index = |name: &str| columns.iter().position(|c| c == name);
    let partitions = batch
        .column(index(COL_PARTITION)?)
        .as_primitive::<Int32Type>();
    let offsets = batch.column(index(COL_OFFSET)?).as_primitive::<Int64Type>();
    let row = batch.num_rows() - 1;
    Some((partitions.value(row), offsets.value(row)))
}
