//! Landing latency per record: how long after its record timestamp a
//! record became durable in the sink. The runner notes each record's
//! timestamp as the sink takes it; when a flush reports a partition durable
//! up to an offset, every record before it is counted, at that moment, into
//! a histogram of the last minute, from which the p95 is read.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Position;

/// Upper bounds of the histogram's buckets, milliseconds (a last bucket
/// holds what is slower).
const BOUNDS_MS: [i64; 16] = [
    25, 50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 10_000, 30_000, 60_000,
    300_000,
];
const BUCKETS: usize = BOUNDS_MS.len() + 1;

/// The window the percentiles cover, in slots that age out one by one.
const SLOT: Duration = Duration::from_secs(10);
const SLOTS: usize = 6;

/// Records of one partition taken but not yet durable: runs of consecutive
/// offsets with the same timestamp (to the 10 ms).
#[derive(Debug)]
struct PartitionPending {
    topic: String,
    partition: i32,
    /// `(first offset, last offset, timestamp ms)`.
    runs: VecDeque<(i64, i64, i64)>,
}

/// What the runner has taken and not yet seen durable, per partition.
#[derive(Debug, Default)]
pub struct PendingLatencies {
    partitions: Vec<PartitionPending>,
}

impl PendingLatencies {
    /// Notes a record the sink took.
    pub fn taken(&mut self, topic: &str, partition: i32, offset: i64, timestamp_ms: i64) {
        let index = match self
            .partitions
            .iter()
            .position(|p| p.partition == partition && p.topic == topic)
        {
            Some(i) => i,
            None => {
                self.partitions.push(PartitionPending {
                    topic: topic.to_string(),
                    partition,
                    runs: VecDeque::new(),
                });
                self.partitions.len() - 1
            }
        };
        let runs = &mut self.partitions[index].runs;
        match runs.back_mut() {
            // Consumption rewound (a partition given back and assigned again):
            // what was noted before will be read again.
            Some((_, last, _)) if offset <= *last => {
                runs.clear();
                runs.push_back((offset, offset, timestamp_ms));
            }
            Some((_, last, ts)) if offset == *last + 1 && *ts / 10 == timestamp_ms / 10 => {
                *last = offset;
            }
            _ => runs.push_back((offset, offset, timestamp_ms)),
        }
    }

    /// Counts into `into` every noted record before the durable `positions`,
    /// as landed at `now_ms`.
    pub fn durable(&mut self, positions: &[Position], now_ms: i64, into: &LatencyWindow) {
        let mut landed = Vec::new();
        for position in positions {
            let Some(pending) = self.partitions.iter_mut().find(|p| {
                p.partition == position.partition.partition && p.topic == position.partition.topic
            }) else {
                continue;
            };
            while let Some((first, last, ts)) = pending.runs.front_mut() {
                if *first >= position.next_offset {
                    break;
                }
                let upto = (*last).min(position.next_offset - 1);
                landed.push(((now_ms - *ts).max(0), (upto - *first + 1) as u64));
                if upto == *last {
                    pending.runs.pop_front();
                } else {
                    *first = upto + 1;
                }
            }
        }
        into.observe_many(&landed);
    }
}

/// One slot's bucket counts.
#[derive(Debug, Clone, Copy)]
struct Slot {
    started: Instant,
    counts: [u64; BUCKETS],
}

/// Landing latencies of the last minute, readable from any thread.
#[derive(Debug, Default)]
pub struct LatencyWindow {
    slots: Mutex<VecDeque<Slot>>,
}

impl LatencyWindow {
    /// Counts `(latency ms, records)` pairs now.
    pub fn observe_many(&self, observed: &[(i64, u64)]) {
        if observed.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots
            .back()
            .is_none_or(|s| now.duration_since(s.started) >= SLOT)
        {
            slots.push_back(Slot {
                started: now,
                counts: [0; BUCKETS],
            });
            while slots.len() > SLOTS {
                slots.pop_front();
            }
        }
        let slot = slots.back_mut().expect("just pushed");
        for (latency, n) in observed {
            let bucket = BOUNDS_MS
                .iter()
                .position(|bound| latency <= bound)
                .unwrap_or(BOUNDS_MS.len());
            slot.counts[bucket] += n;
        }
    }

    /// The `q` quantile (0..1) of the last minute's latencies, in
    /// milliseconds: the upper bound of the bucket it falls in (so never
    /// under the truth, by at most one bucket); `None` with nothing landed
    /// in the last minute.
    pub fn quantile_ms(&self, q: f64) -> Option<i64> {
        let now = Instant::now();
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mut counts = [0u64; BUCKETS];
        for slot in slots
            .iter()
            .filter(|s| now.duration_since(s.started) < SLOT * SLOTS as u32)
        {
            for (total, n) in counts.iter_mut().zip(slot.counts) {
                *total += n;
            }
        }
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, n) in counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(BOUNDS_MS.get(bucket).copied().unwrap_or(i64::MAX));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::TopicPartition;

    fn position(partition: i32, next_offset: i64) -> Position {
        Position {
            partition: TopicPartition::new("t", partition),
            next_offset,
        }
    }

    #[test]
    fn records_count_once_they_are_durable_and_not_before() {
        let window = LatencyWindow::default();
        let mut pending = PendingLatencies::default();
        // Partition 0: offsets 0..100 stamped at 0 ms; partition 1: 0..10 at 9,000 ms.
        for offset in 0..100 {
            pending.taken("t", 0, offset, 0);
        }
        for offset in 0..10 {
            pending.taken("t", 1, offset, 9_000);
        }
        pending.durable(&[position(0, 50)], 400, &window);
        // Fifty records landed 400 ms after their stamp: all in the 500 ms bucket.
        assert_eq!(window.quantile_ms(0.95), Some(500));
        assert_eq!(window.quantile_ms(0.0), Some(500));
        // The other fifty land at 10 s, partition 1's ten at 1 s after theirs.
        pending.durable(&[position(0, 100), position(1, 10)], 10_000, &window);
        assert_eq!(window.quantile_ms(0.4), Some(500));
        assert_eq!(window.quantile_ms(0.5), Some(1_000));
        assert_eq!(window.quantile_ms(0.95), Some(10_000));
        // Nothing left: a second report of the same positions counts nothing.
        pending.durable(&[position(0, 100), position(1, 10)], 90_000, &window);
        assert_eq!(window.quantile_ms(1.0), Some(10_000));
    }

    #[test]
    fn a_rewound_partition_forgets_what_it_noted() {
        let window = LatencyWindow::default();
        let mut pending = PendingLatencies::default();
        for offset in 0..10 {
            pending.taken("t", 0, offset, 0);
        }
        // Read again from 5 (reassigned), stamped later.
        for offset in 5..10 {
            pending.taken("t", 0, offset, 1_000);
        }
        pending.durable(&[position(0, 10)], 1_100, &window);
        assert_eq!(window.quantile_ms(1.0), Some(100), "only the re-read five");
    }

    #[test]
    fn an_empty_window_has_no_quantile() {
        assert_eq!(LatencyWindow::default().quantile_ms(0.95), None);
    }
}
