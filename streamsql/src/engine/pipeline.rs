//! The two-thread pipeline of a batch: one thread decodes records and runs
//! the stream queries slice by slice while the other updates the tables
//! with the slice before, and the work moves toward the idler thread.

use std::time::{Duration, Instant};

use super::tables::update_tables;
use super::{BatchOutput, Engine, InputRecord, Prepared};

/// How a pipelined batch shares its work, on one scale. At 0 the calling
/// thread decodes and runs the streams, the table thread runs every table.
/// Above 0, the first `n` tables run on the calling thread too. Below 0, the
/// table thread also decodes `-n` slices in every [`Balance::STEPS`]. Only one
/// side of the scale at a time: a table must see every record, so the
/// calling thread keeps tables only while it decodes every slice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balance(i32);

impl Balance {
    pub const STEPS: i32 = 16;

    /// `n` on the scale; out-of-range values are clamped when a batch runs.
    pub fn new(n: i32) -> Self {
        Balance(n)
    }

    fn clamped(self, tables: usize) -> Self {
        let most = i32::try_from(tables).unwrap_or(i32::MAX);
        Balance(self.0.clamp(-Self::STEPS / 2, most))
    }

    fn tables_on_caller(self) -> usize {
        usize::try_from(self.0).unwrap_or(0)
    }

    /// Whether slice `index` is decoded on the table thread: `-n` of every
    /// STEPS slices, spread evenly.
    fn table_thread_prepares(self, index: usize) -> bool {
        let share = i64::from((-self.0).max(0));
        let steps = i64::from(Self::STEPS);
        let i = (index as i64) % steps;
        (i + 1) * share / steps > i * share / steps
    }

    /// One step toward the thread that was idle longer, when the other was
    /// busier by more than a tenth.
    fn toward_idle(self, busy_here: Duration, busy_there: Duration, tables: usize) -> Self {
        let margin = |d: Duration| d + d / 10;
        let next = if busy_there > margin(busy_here) {
            self.0 + 1
        } else if busy_here > margin(busy_there) {
            self.0 - 1
        } else {
            self.0
        };
        Balance(next).clamped(tables)
    }
}

impl Engine {
    /// Runs every query over a batch. With `threads` above 1 it is a
    /// pipeline of two threads: this one decodes records and runs the stream
    /// queries on a slice of the batch while the other updates the tables
    /// with the slice before it. Work moves between them batch by batch,
    /// toward whichever thread was idle longer (see [`Balance`]); each
    /// table's state stays on one thread within a batch.
    /// Per relation, the output equals what [`Engine::process`] gives.
    pub fn process_batch(&mut self, inputs: &[InputRecord<'_>], threads: usize) -> BatchOutput {
        /// Records per slice: small, so that the pipeline fills and drains quickly.
        const SLICE: usize = 64;
        if threads <= 1 || inputs.len() <= SLICE {
            let mut prepared: Vec<Prepared> = inputs.iter().map(|i| self.prepare(i)).collect();
            for p in prepared.iter_mut() {
                self.apply(p);
            }
            return BatchOutput {
                prepared,
                tables: None,
            };
        }
        let mut tables = std::mem::take(&mut self.tables);
        let balance = self.balance.clamped(tables.len());
        let (here, there) = tables.split_at_mut(balance.tables_on_caller());
        let this = &*self;
        let (slices, table_outputs, busy_here, busy_there) = std::thread::scope(|scope| {
            let (sender, receiver) = std::sync::mpsc::channel::<Vec<Prepared>>();
            let table_thread = std::thread::Builder::new()
                .name("stream-sql-tables".into())
                .spawn_scoped(scope, move || {
                    let mut outputs = Vec::with_capacity(inputs.len() * 12);
                    let mut starts = Vec::with_capacity(inputs.len() + 1);
                    let mut slices = Vec::new();
                    let mut busy = Duration::ZERO;
                    for (index, slice) in inputs.chunks(SLICE).enumerate() {
                        let mut prepared = if balance.table_thread_prepares(index) {
                            let started = Instant::now();
                            let prepared = slice.iter().map(|i| this.prepare(i)).collect();
                            busy += started.elapsed();
                            prepared
                        } else {
                            match receiver.recv() {
                                Ok(prepared) => prepared,
                                Err(_) => break,
                            }
                        };
                        let started = Instant::now();
                        for p in prepared.iter_mut() {
                            starts.push(outputs.len());
                            update_tables(there, &p.rows, p.rowtime, &mut outputs);
                        }
                        busy += started.elapsed();
                        slices.push(prepared);
                    }
                    starts.push(outputs.len());
                    (slices, (outputs, starts), busy)
                })
                .expect("a thread can be started");
            let mut busy_here = Duration::ZERO;
            for (index, slice) in inputs.chunks(SLICE).enumerate() {
                if balance.table_thread_prepares(index) {
                    continue;
                }
                let started = Instant::now();
                let mut prepared: Vec<Prepared> = slice.iter().map(|i| this.prepare(i)).collect();
                for p in prepared.iter_mut() {
                    update_tables(here, &p.rows, p.rowtime, &mut p.outputs);
                }
                busy_here += started.elapsed();
                if sender.send(prepared).is_err() {
                    break;
                }
            }
            drop(sender);
            let (slices, outputs, busy_there) =
                table_thread.join().expect("the table thread panicked");
            (slices, outputs, busy_here, busy_there)
        });
        self.balance = balance.toward_idle(busy_here, busy_there, tables.len());
        self.tables = tables;
        let mut prepared: Vec<Prepared> = slices.into_iter().flatten().collect();
        for p in &mut prepared {
            // Freed by the thread that allocated them: cheaper than from the other.
            p.rows = Vec::new();
            self.records_in += 1;
            self.dead_letters += p.dead.len() as u64;
            self.records_out += p.outputs.len() as u64;
        }
        self.records_out += table_outputs.0.len() as u64;
        BatchOutput {
            prepared,
            tables: Some(table_outputs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_balance_spreads_decoding_and_moves_toward_the_idle_thread() {
        for n in 0..=8 {
            let balance = Balance::new(-n);
            let prepared = (0..32)
                .filter(|&i| balance.table_thread_prepares(i))
                .count();
            assert_eq!(prepared, 2 * n as usize, "{n}");
            assert_eq!(balance.tables_on_caller(), 0);
        }
        let ms = Duration::from_millis;
        let even = Balance::new(0);
        assert_eq!(even.toward_idle(ms(100), ms(105), 8), even);
        assert_eq!(even.toward_idle(ms(100), ms(150), 8), Balance::new(1));
        assert_eq!(even.toward_idle(ms(150), ms(100), 8), Balance::new(-1));
        assert_eq!(
            Balance::new(8).toward_idle(ms(1), ms(9), 8),
            Balance::new(8)
        );
        assert_eq!(
            Balance::new(-8).toward_idle(ms(9), ms(1), 8),
            Balance::new(-8)
        );
        assert_eq!(Balance::new(100).clamped(3).tables_on_caller(), 3);
    }
}
