//! The table sink: stream-SQL table changelogs into PostgreSQL, exactly once
//! (SYSTEM.md section 5). The rows of a batch and the offsets it reaches are
//! committed in one transaction; on assignment the sink resumes from the
//! offsets stored in PostgreSQL. The offset update is conditional on the
//! offset the sink last saw, so an instance that lost its partition to
//! another (a zombie) fails instead of writing twice.
//!
//! PostgreSQL going away is not an error: the batch stays staged, the sink
//! reconnects with backoff and writes it then; meanwhile the runner pauses
//! consumption once the batch is full.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use tokio::runtime::Runtime;

use super::batch::{decode, Batch, DeadLetter};
use super::schema::{db_error, migrate, WarehouseTable, OFFSETS_TABLE};
use crate::sink::{Assigned, Position, Record, Sink, SinkError, TopicPartition};

#[derive(Debug, Clone)]
pub struct TableSinkConfig {
    pub postgres_url: String,
    /// Consumer group; also the key of the stored offsets.
    pub group_id: String,
    /// Commit when the batch holds this many records...
    pub batch_records: usize,
    /// ...or its oldest record waited this long.
    pub max_batch_age: Duration,
    /// Stop reading beyond this many staged records (PostgreSQL unavailable).
    pub max_staged_records: usize,
}

impl TableSinkConfig {
    pub fn new(postgres_url: impl Into<String>, group_id: impl Into<String>) -> Self {
        Self {
            postgres_url: postgres_url.into(),
            group_id: group_id.into(),
            batch_records: 20_000,
            max_batch_age: Duration::from_millis(200),
            max_staged_records: 200_000,
        }
    }
}

/// Live counters of the table sink.
#[derive(Debug, Default)]
pub struct TableSinkStats {
    pub records: std::sync::atomic::AtomicU64,
    pub rows_written: std::sync::atomic::AtomicU64,
    pub dead_lettered: std::sync::atomic::AtomicU64,
    pub commits: std::sync::atomic::AtomicU64,
    pub reconnects: std::sync::atomic::AtomicU64,
}

pub struct TableSink {
    config: TableSinkConfig,
    tables: Vec<WarehouseTable>,
    by_topic: HashMap<String, usize>,
    runtime: Runtime,
    conn: Option<PgConnection>,
    batch: Batch,
    oldest: Option<Instant>,
    /// The stored offset of each owned partition, as last read or written.
    durable: HashMap<TopicPartition, Option<i64>>,
    failures: u32,
    stats: std::sync::Arc<TableSinkStats>,
}

impl TableSink {
    /// Connects, creates or grows the warehouse tables, and refuses unsafe changes.
    pub fn connect(
        config: TableSinkConfig,
        tables: Vec<WarehouseTable>,
        stats: std::sync::Arc<TableSinkStats>,
    ) -> Result<(Self, Vec<String>), SinkError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(SinkError::io("start the PostgreSQL client"))?;
        let changes = runtime.block_on(async {
            let mut conn = lakehouse::postgres::connect_with_retry(
                &config.postgres_url,
                Duration::from_secs(30),
            )
            .await
            .map_err(|e| SinkError::Storage(e.to_string()))?;
            let mut tx = conn.begin().await.map_err(db_error("begin"))?;
            // One migration at a time when several instances start together.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('lakehouse table sink schema'))")
                .execute(&mut *tx)
                .await
                .map_err(db_error("lock the schema"))?;
            let changes = migrate(&mut tx, &tables).await?;
            tx.commit().await.map_err(db_error("commit the schema"))?;
            Ok::<_, SinkError>(changes)
        })?;
        let by_topic = tables
            .iter()
            .enumerate()
            .map(|(i, t)| (t.topic.clone(), i))
            .collect();
        let batch = Batch::new(tables.len());
        Ok((
            Self {
                config,
                tables,
                by_topic,
                runtime,
                conn: None,
                batch,
                oldest: None,
                durable: HashMap::new(),
                failures: 0,
                stats,
            },
            changes,
        ))
    }

    pub fn tables(&self) -> &[WarehouseTable] {
        &self.tables
    }

    async fn connection<'a>(
        conn: &'a mut Option<PgConnection>,
        url: &str,
    ) -> Result<&'a mut PgConnection, SinkError> {
        if conn.is_none() {
            let fresh = lakehouse::postgres::connect_with_retry(url, Duration::from_secs(2))
                .await
                .map_err(|e| SinkError::Storage(e.to_string()))?;
            *conn = Some(fresh);
        }
        Ok(conn.as_mut().expect("just connected"))
    }

    /// One transaction: the batch's rows and dead letters, then its offsets,
    /// each conditional on the offset this instance last saw.
    fn commit(&mut self) -> Result<Vec<Position>, CommitError> {
        let (config, batch, durable, tables) =
            (&self.config, &self.batch, &self.durable, &self.tables);
        let conn = &mut self.conn;
        self.runtime.block_on(async {
            let conn = Self::connection(conn, &config.postgres_url).await.map_err(CommitError::Unavailable)?;
            let mut tx = conn.begin().await.map_err(|e| CommitError::Unavailable(db_error("begin")(e)))?;
            batch.write(tables, &mut tx).await.map_err(CommitError::Unavailable)?;
            let mut positions = Vec::new();
            for (tp, next) in &batch.positions {
                let expected = durable.get(tp).copied().flatten();
                let updated = sqlx::query(&format!(
                    "INSERT INTO {OFFSETS_TABLE} AS o (consumer_group, topic, partition, next_offset)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (consumer_group, topic, partition)
                     DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()
                     WHERE o.next_offset IS NOT DISTINCT FROM $5"
                ))
                .bind(&config.group_id)
                .bind(&tp.topic)
                .bind(tp.partition)
                .bind(next)
                .bind(expected)
                .execute(&mut *tx)
                .await
                .map_err(|e| CommitError::Unavailable(db_error("store offsets")(e)))?;
                if updated.rows_affected() != 1 {
                    return Err(CommitError::Fenced(SinkError::Storage(format!(
                        "{tp} was committed by another instance (expected offset {expected:?}); \
                         this instance no longer owns it and stops"
                    ))));
                }
                positions.push(Position {
                    partition: tp.clone(),
                    next_offset: *next,
                });
            }
            tx.commit().await.map_err(|e| CommitError::Unavailable(db_error("commit")(e)))?;
            Ok(positions)
        })
    }

    fn dead_letter(&mut self, record: &Record<'_>, reason: String) {
        self.batch.dead_letters.push(DeadLetter {
            topic: record.topic.to_string(),
            partition: record.partition,
            offset: record.offset,
            key: record.key.map(<[u8]>::to_vec),
            value: record.value.map(<[u8]>::to_vec),
            reason,
        });
        self.stats
            .dead_lettered
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

enum CommitError {
    /// PostgreSQL did not answer or failed: retry the same batch later.
    Unavailable(SinkError),
    /// Another instance owns a partition now: stop.
    Fenced(SinkError),
}

impl Sink for TableSink {
    fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.tables.iter().map(|t| t.topic.clone()).collect();
        topics.dedup();
        topics
    }

    fn open(
        &mut self,
        partitions: &[Assigned],
    ) -> Result<Vec<(TopicPartition, Option<i64>)>, SinkError> {
        let (config, conn) = (&self.config, &mut self.conn);
        let stored: Vec<(String, i32, i64)> = self.runtime.block_on(async {
            let conn = Self::connection(conn, &config.postgres_url).await?;
            sqlx::query_as(&format!(
                "SELECT topic, partition, next_offset FROM {OFFSETS_TABLE} WHERE consumer_group = $1"
            ))
            .bind(&config.group_id)
            .fetch_all(conn)
            .await
            .map_err(db_error("read stored offsets"))
        })?;
        let mut resume = Vec::new();
        for assigned in partitions {
            let tp = &assigned.partition;
            let next = stored
                .iter()
                .find(|(t, p, _)| *t == tp.topic && *p == tp.partition)
                .map(|(_, _, o)| *o);
            self.durable.insert(tp.clone(), next);
            // A changelog is replayed from its start when nothing is stored.
            resume.push((tp.clone(), next));
        }
        Ok(resume)
    }

    fn write(&mut self, record: &Record<'_>) -> Result<(), SinkError> {
        let Some(&table) = self.by_topic.get(record.topic) else {
            return Ok(());
        };
        match decode(&self.tables[table], record) {
            Ok((key, row)) => self.batch.stage(table, key, row),
            Err(reason) => self.dead_letter(record, reason),
        }
        let tp = TopicPartition::new(record.topic, record.partition);
        self.batch.positions.insert(tp, record.offset + 1);
        self.batch.records += 1;
        self.oldest.get_or_insert_with(Instant::now);
        self.stats
            .records
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn flush(&mut self, now: Instant, force: bool) -> Result<Vec<Position>, SinkError> {
        if self.batch.is_empty() {
            return Ok(Vec::new());
        }
        let due = force
            || self.batch.records >= self.config.batch_records
            || self
                .oldest
                .is_some_and(|t| now.duration_since(t) >= self.config.max_batch_age);
        if !due {
            return Ok(Vec::new());
        }
        match self.commit() {
            Ok(positions) => {
                use std::sync::atomic::Ordering::Relaxed;
                self.stats.commits.fetch_add(1, Relaxed);
                self.stats
                    .rows_written
                    .fetch_add(self.batch.records as u64, Relaxed);
                for p in &positions {
                    self.durable
                        .insert(p.partition.clone(), Some(p.next_offset));
                }
                if self.failures > 0 {
                    tracing::info!("PostgreSQL is back; the staged batch is committed");
                }
                self.failures = 0;
                self.batch.clear();
                self.oldest = None;
                Ok(positions)
            }
            Err(CommitError::Fenced(e)) => Err(e),
            Err(CommitError::Unavailable(e)) => {
                // Keep the batch; a fresh connection next time.
                self.conn = None;
                self.failures += 1;
                self.stats
                    .reconnects
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let backoff = Duration::from_millis(100 * 2u64.pow(self.failures.min(5)));
                tracing::warn!(
                    "cannot write to PostgreSQL (retrying in {backoff:?}, {} records staged): {e}",
                    self.batch.records
                );
                std::thread::sleep(backoff);
                Ok(Vec::new())
            }
        }
    }

    fn close(&mut self, partitions: &[TopicPartition]) -> Result<Vec<Position>, SinkError> {
        // A batch mixes partitions: commit all of it (retrying while PostgreSQL
        // is away), then forget the partitions that leave.
        let mut positions = Vec::new();
        // Inside a rebalance callback: stay under the runner's poll interval limit.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.batch.is_empty() {
            positions.extend(self.flush(Instant::now(), true)?);
            if Instant::now() > deadline {
                return Err(SinkError::Storage(
                    "PostgreSQL stayed unavailable while partitions were being handed over".into(),
                ));
            }
        }
        for tp in partitions {
            self.durable.remove(tp);
        }
        Ok(positions)
    }

    fn is_full(&self) -> bool {
        self.batch.records >= self.config.max_staged_records
    }
}
