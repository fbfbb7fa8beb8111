//! The proof that the pipeline processed a job's records again, read from
//! where the pipeline writes, never from what the job believes:
//! - the raw lake holds each re-sent record at the position the broker gave it;
//! - each derived stream holds rows computed from the re-sent records
//!   (`source_position`) at least as many as it holds from the originals:
//!   a record qualifies for the streams its original went to;
//! - in each warehouse table keyed by fields of the record (`product_id`,
//!   `payment_method`...), the row of each checked record's key was written
//!   after the record was re-sent.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMillisecondType};
use arrow_array::Array;
use chrono::{DateTime, Utc};
use lakehouse::lake::{COL_OFFSET, COL_PARTITION, COL_RAW_JSON, COL_SOURCE, COL_TIMESTAMP};
use lakehouse::topics::SourcePosition;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::selection::{column_named, open_projected, TRANSACTION_ID};
use super::store::{JobRow, SentRecord};
use crate::error::{ApiError, ApiResult};
use crate::lake::data_files::data_files;
use crate::state::SharedState;

/// Records whose warehouse rows are looked up one by one.
const CHECKED_RECORDS: usize = 50;
/// Files landed this long before the first send may still hold derived rows
/// of it (clocks of one machine, file times in whole seconds on some systems).
const FILE_TIME_SLACK: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Proof {
    /// Every re-sent record is in the raw lake and in every derived stream
    /// its original is in, and every checked warehouse row was rewritten.
    pub processed: bool,
    pub raw: DatasetProof,
    /// Derived streams holding the originals or the re-sent records.
    pub streams: Vec<DatasetProof>,
    pub warehouse: Vec<TableProof>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DatasetProof {
    pub dataset: String,
    /// Raw lake: records sent. Derived stream: rows computed from the originals.
    pub expected: u64,
    /// Rows computed from (or, in the raw lake, being) the re-sent records.
    pub found: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TableProof {
    pub table: String,
    /// Key columns matched by fields of the record; empty when the table's
    /// key is computed (its rows cannot be told from the record alone).
    pub key: Vec<String>,
    /// Rows written since the first record was re-sent (by any input).
    pub rows_updated: i64,
    pub last_update: Option<DateTime<Utc>>,
    /// Records whose key's row was looked up, and of them, those whose row
    /// was written after the record was re-sent.
    pub checked: usize,
    pub updated: usize,
}

/// A re-sent record's message and when it was sent.
type Sample = (Value, DateTime<Utc>);

/// Rows per derived stream computed from a finished job's originals,
/// which do not change once the job is done.
#[derive(Default)]
pub struct ProofCache {
    expected: Mutex<HashMap<String, Arc<BTreeMap<String, u64>>>>,
}

impl ProofCache {
    pub fn forget(&self, job: &str) {
        self.expected.lock().expect("proofs").remove(job);
    }
}

pub async fn prove(state: &SharedState, job: &JobRow, sent: &[SentRecord]) -> ApiResult<Proof> {
    let first_sent = sent.iter().map(|s| s.sent_at).min();
    let mut streams = Vec::new();
    for dataset in state.lake.datasets()? {
        if dataset == job.dataset {
            continue;
        }
        let derived = state
            .lake
            .schema(&dataset)
            .await?
            .is_some_and(|s| s.index_of(COL_SOURCE).is_ok());
        if derived {
            streams.push(dataset);
        }
    }
    let cached = state
        .repush
        .proofs
        .expected
        .lock()
        .expect("proofs")
        .get(&job.id)
        .cloned();
    let lake = state.lake.root().to_path_buf();
    let (topic, sent_owned, done) = (
        job.dataset.clone(),
        sent.to_vec(),
        job.state == super::store::DONE,
    );
    let (raw, samples, found_streams, expected) = tokio::task::spawn_blocking(move || {
        let (raw_found, samples) = raw_lake(&lake, &topic, &sent_owned)?;
        let resent: HashSet<(i32, i64)> =
            sent_owned.iter().map(|s| (s.partition, s.offset)).collect();
        let originals: HashSet<(i32, i64)> = sent_owned
            .iter()
            .map(|s| (s.source_partition, s.source_offset))
            .collect();
        let since = first_sent.map(|t| SystemTime::from(t) - FILE_TIME_SLACK);
        let mut found = BTreeMap::new();
        let mut expected = BTreeMap::new();
        for stream in &streams {
            let dir = lake.join(stream);
            found.insert(
                stream.clone(),
                match since {
                    Some(since) => rows_from(&dir, &topic, &resent, Some(since))?,
                    None => 0,
                },
            );
            if cached.is_none() {
                expected.insert(stream.clone(), rows_from(&dir, &topic, &originals, None)?);
            }
        }
        let expected = cached.unwrap_or_else(|| Arc::new(expected));
        Ok::<_, String>((raw_found, samples, found, expected))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    if done {
        state
            .repush
            .proofs
            .expected
            .lock()
            .expect("proofs")
            .insert(job.id.clone(), expected.clone());
    }
    let streams: Vec<DatasetProof> = found_streams
        .iter()
        .map(|(dataset, found)| DatasetProof {
            dataset: dataset.clone(),
            expected: expected.get(dataset).copied().unwrap_or(0),
            found: *found,
        })
        .filter(|p| p.expected > 0 || p.found > 0)
        .collect();
    let raw = DatasetProof {
        dataset: job.dataset.clone(),
        expected: sent.len() as u64,
        found: raw,
    };
    let warehouse = match first_sent {
        Some(first_sent) => warehouse(state, first_sent, &samples).await?,
        None => Vec::new(),
    };
    let processed = !sent.is_empty()
        && raw.found >= raw.expected
        && streams.iter().all(|s| s.found >= s.expected)
        && warehouse.iter().all(|t| t.updated == t.checked);
    Ok(Proof {
        processed,
        raw,
        streams,
        warehouse,
    })
}

/// How many re-sent records the raw lake holds, and the first few of them
/// (their message, and when they were sent) for the warehouse checks. A row
/// is a re-sent record when it sits where the broker put the record, holds
/// the same transaction, and reached the broker once the job sent it (a
/// lake kept from an older topic of the same name has other rows there).
fn raw_lake(lake: &Path, topic: &str, sent: &[SentRecord]) -> Result<(u64, Vec<Sample>), String> {
    let mut wanted: HashMap<(i32, i64), &SentRecord> = HashMap::new();
    let mut spans: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for s in sent {
        wanted.insert((s.partition, s.offset), s);
        let span = spans.entry(s.partition).or_insert((s.offset, s.offset));
        *span = (span.0.min(s.offset), span.1.max(s.offset));
    }
    let files = data_files(&lake.join(topic), None, None).map_err(|e| e.to_string())?;
    let (mut found, mut samples) = (0, Vec::new());
    for file in files {
        let range = file.file.range;
        let Some((low, high)) = spans.get(&range.partition) else {
            continue;
        };
        if range.last < *low || range.first > *high {
            continue;
        }
        let Some(reader) = open_projected(
            &file.file.path,
            &[COL_PARTITION, COL_OFFSET, COL_RAW_JSON, COL_TIMESTAMP],
            None,
        )?
        else {
            continue;
        };
        for batch in reader {
            let batch = batch.map_err(|e| e.to_string())?;
            let column = |name: &str| column_named(&batch, name);
            let (partitions, offsets, raw, times) = (
                column(COL_PARTITION)?,
                column(COL_OFFSET)?,
                column(COL_RAW_JSON)?,
                column(COL_TIMESTAMP)?,
            );
            let times = times.as_primitive::<TimestampMillisecondType>();
            let partitions = partitions.as_primitive::<Int32Type>();
            let offsets = offsets.as_primitive::<Int64Type>();
            let raw = raw.as_string::<i32>();
            for row in 0..batch.num_rows() {
                let Some(sent) = wanted.get(&(partitions.value(row), offsets.value(row))) else {
                    continue;
                };
                let arrived = times.is_valid(row).then(|| times.value(row));
                let earliest = sent.sent_at.timestamp_millis() - FILE_TIME_SLACK.as_millis() as i64;
                if arrived.is_none_or(|t| t < earliest) {
                    continue;
                }
                let Ok(value) = serde_json::from_str::<Value>(raw.value(row)) else {
                    continue;
                };
                let transaction = value.get(TRANSACTION_ID).and_then(Value::as_str);
                if sent.transaction_id.is_some() && transaction != sent.transaction_id.as_deref() {
                    continue;
                }
                found += 1;
                if samples.len() < CHECKED_RECORDS {
                    samples.push((value, sent.sent_at));
                }
            }
        }
    }
    Ok((found, samples))
}

/// Rows of a derived stream computed from `positions` of `topic`; with
/// `since`, only rows that reached the broker since then (a derived record
/// carries its input's time) in files written since then.
fn rows_from(
    dataset_dir: &Path,
    topic: &str,
    positions: &HashSet<(i32, i64)>,
    since: Option<SystemTime>,
) -> Result<u64, String> {
    let since_ms = since.map(|s| chrono::DateTime::<Utc>::from(s).timestamp_millis());
    let mut rows = 0;
    for file in data_files(dataset_dir, None, None).map_err(|e| e.to_string())? {
        if since.is_some_and(|since| file.modified < since) {
            continue;
        }
        let Some(reader) = open_projected(&file.file.path, &[COL_SOURCE, COL_TIMESTAMP], None)?
        else {
            continue;
        };
        for batch in reader {
            let batch = batch.map_err(|e| e.to_string())?;
            let column = |name: &str| column_named(&batch, name);
            let (sources, times) = (column(COL_SOURCE)?, column(COL_TIMESTAMP)?);
            let sources = sources.as_string::<i32>();
            let times = times.as_primitive::<TimestampMillisecondType>();
            for row in 0..batch.num_rows() {
                if !sources.is_valid(row) {
                    continue;
                }
                if since_ms.is_some_and(|s| !times.is_valid(row) || times.value(row) < s) {
                    continue;
                }
                let Some(source) = SourcePosition::parse(sources.value(row)) else {
                    continue;
                };
                if source.topic == topic && positions.contains(&(source.partition, source.offset)) {
                    rows += 1;
                }
            }
        }
    }
    Ok(rows)
}

/// A record's fields by lower-cased name, nested objects' fields included
/// (`location.city` as `city`) unless a top-level field has the name.
fn fields_of(record: &Value) -> HashMap<String, String> {
    fn walk(value: &Value, depth: usize, out: &mut HashMap<String, (usize, String)>) {
        let Some(object) = value.as_object() else {
            return;
        };
        for (name, value) in object {
            let text = match value {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                Value::Object(_) => {
                    walk(value, depth + 1, out);
                    None
                }
                _ => None,
            };
            if let Some(text) = text {
                let entry = out
                    .entry(name.to_lowercase())
                    .or_insert((depth, text.clone()));
                if depth < entry.0 {
                    *entry = (depth, text);
                }
            }
        }
    }
    let mut out = HashMap::new();
    walk(record, 0, &mut out);
    out.into_iter().map(|(k, (_, v))| (k, v)).collect()
}

async fn warehouse(
    state: &SharedState,
    first_sent: DateTime<Utc>,
    samples: &[Sample],
) -> ApiResult<Vec<TableProof>> {
    use crate::warehouse::{quote, tables};
    let mut proofs = Vec::new();
    for table in tables(&state.pool).await? {
        let key: Vec<String> = table
            .key
            .iter()
            .filter(|c| {
                !c.eq_ignore_ascii_case("windowstart") && !c.eq_ignore_ascii_case("windowend")
            })
            .cloned()
            .collect();
        let name = quote(&table.name);
        let (rows_updated, last_update): (i64, Option<DateTime<Utc>>) = sqlx::query_as(&format!(
            "SELECT count(*), max(ingestion_time) FROM {name} WHERE ingestion_time >= $1"
        ))
        .bind(first_sent)
        .fetch_one(&state.pool)
        .await?;
        let matched: Vec<(&Sample, Vec<String>)> = samples
            .iter()
            .filter_map(|sample| {
                let fields = fields_of(&sample.0);
                let values: Option<Vec<String>> = key
                    .iter()
                    .map(|k| fields.get(&k.to_lowercase()).cloned())
                    .collect();
                values.map(|v| (sample, v))
            })
            .collect();
        let keyed = !key.is_empty() && !matched.is_empty();
        let (mut checked, mut updated) = (0, 0);
        if keyed {
            let condition: Vec<String> = key
                .iter()
                .enumerate()
                .map(|(i, k)| format!("{}::text = ${}", quote(k), i + 1))
                .collect();
            let sql = format!(
                "SELECT max(ingestion_time) FROM {name} WHERE {}",
                condition.join(" AND ")
            );
            for ((_, sent_at), values) in matched {
                let mut query = sqlx::query_scalar::<_, Option<DateTime<Utc>>>(&sql);
                for value in &values {
                    query = query.bind(value);
                }
                let written = query.fetch_one(&state.pool).await?;
                checked += 1;
                if written.is_some_and(|w| w >= *sent_at) {
                    updated += 1;
                }
            }
        }
        proofs.push(TableProof {
            table: table.name,
            key: if keyed { key } else { Vec::new() },
            rows_updated,
            last_update,
            checked,
            updated,
        });
    }
    Ok(proofs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_at_the_top_before_nested_ones() {
        let record = serde_json::json!({
            "product_id": "PROD-1", "amount": 12.5, "city": "Top",
            "location": {"city": "Nested", "country": "France"},
        });
        let fields = fields_of(&record);
        assert_eq!(fields["product_id"], "PROD-1");
        assert_eq!(fields["amount"], "12.5");
        assert_eq!(fields["city"], "Top");
        assert_eq!(fields["country"], "France");
    }
}
