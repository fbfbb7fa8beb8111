//! Consumer lag over time: every status reading adds one observation per
//! group, topic and partition; the Burrow rules (`burrow`) turn each
//! partition's window into a status, and a group is its worst partition.

pub mod burrow;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::status::GroupOffsets;
use burrow::{
    group_status, partition_status, GroupStatus, Observation, PartitionStatus, PartitionWindow,
};

/// Where one partition's window is kept.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartitionKey {
    pub group: String,
    pub topic: String,
    pub partition: i32,
}

/// One line of the lag view.
#[derive(Debug, Clone, PartialEq)]
pub struct LagRow {
    pub key: PartitionKey,
    pub committed: Option<i64>,
    pub end: i64,
    pub lag: i64,
    /// Records per second over the window.
    pub rate: Option<f64>,
    pub catch_up_secs: Option<f64>,
    pub status: PartitionStatus,
}

#[derive(Debug, Clone, Default)]
pub struct LagHistory {
    windows: BTreeMap<PartitionKey, PartitionWindow>,
    /// Partitions with nothing committed: no window, lag is all they hold.
    uncommitted: BTreeMap<PartitionKey, i64>,
    /// Total lag at each reading (for the overview's sparkline), newest last.
    totals: Vec<u64>,
}

const TOTALS_KEPT: usize = 60;

impl LagHistory {
    /// Adds one reading of every group taken at `at`.
    pub fn record(&mut self, groups: &[GroupOffsets], at: DateTime<Utc>) {
        let mut total = 0u64;
        for group in groups {
            for p in &group.partitions {
                let key = PartitionKey {
                    group: group.group.clone(),
                    topic: group.topic.clone(),
                    partition: p.partition,
                };
                total += p.lag().max(0) as u64;
                match p.committed {
                    Some(committed) => {
                        self.uncommitted.remove(&key);
                        self.windows.entry(key).or_default().observe(Observation {
                            at,
                            committed,
                            end: p.end,
                        });
                    }
                    None => {
                        self.uncommitted.insert(key, p.lag());
                    }
                }
            }
        }
        self.totals.push(total);
        if self.totals.len() > TOTALS_KEPT {
            self.totals.remove(0);
        }
    }

    pub fn totals(&self) -> &[u64] {
        &self.totals
    }

    /// Every partition's line at `now`, by group, topic and partition.
    pub fn rows(&self, now: DateTime<Utc>) -> Vec<LagRow> {
        let mut rows: Vec<LagRow> = self
            .windows
            .iter()
            .filter_map(|(key, window)| {
                let latest = window.latest()?;
                let status = partition_status(window, now);
                Some(LagRow {
                    key: key.clone(),
                    committed: Some(latest.committed),
                    end: latest.end,
                    lag: latest.lag(),
                    rate: window.rate(),
                    catch_up_secs: match status {
                        PartitionStatus::Stop | PartitionStatus::Stall => None,
                        _ => window.catch_up_secs(),
                    },
                    status,
                })
            })
            .collect();
        rows.extend(self.uncommitted.iter().map(|(key, lag)| LagRow {
            key: key.clone(),
            committed: None,
            end: *lag,
            lag: *lag,
            rate: None,
            catch_up_secs: None,
            // Nothing committed while records wait: the group has not started.
            status: if *lag > 0 {
                PartitionStatus::Stop
            } else {
                PartitionStatus::Ok
            },
        }));
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        rows
    }

    /// Each group's status at `now` (worst partition) and total lag.
    pub fn groups(&self, now: DateTime<Utc>) -> Vec<(String, GroupStatus, i64)> {
        let mut groups: BTreeMap<String, (Vec<PartitionStatus>, i64)> = BTreeMap::new();
        for row in self.rows(now) {
            let entry = groups.entry(row.key.group.clone()).or_default();
            entry.0.push(row.status);
            entry.1 += row.lag;
        }
        groups
            .into_iter()
            .map(|(group, (statuses, lag))| (group, group_status(statuses), lag))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use lakehouse::kafka::PartitionOffsets;

    fn reading(committed: [Option<i64>; 2], end: [i64; 2]) -> Vec<GroupOffsets> {
        vec![GroupOffsets {
            group: "lake".into(),
            topic: "transaction_log".into(),
            partitions: (0..2)
                .map(|i| PartitionOffsets {
                    partition: i as i32,
                    low: 0,
                    end: end[i],
                    committed: committed[i],
                })
                .collect(),
        }]
    }

    #[test]
    fn a_group_that_stops_committing_turns_err_and_recovers_when_it_catches_up() {
        let at = |s: i64| Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap();
        let mut history = LagHistory::default();
        for i in 0..5 {
            history.record(
                &reading([Some(i * 10), Some(i * 10)], [i * 10 + 5, i * 10]),
                at(i * 2),
            );
        }
        assert_eq!(history.groups(at(9))[0].1, GroupStatus::Ok);
        // Partition 0 stops; data keeps coming.
        for i in 5..20 {
            history.record(
                &reading([Some(40), Some(i * 10)], [i * 10 + 5, i * 10]),
                at(i * 2),
            );
        }
        let rows = history.rows(at(39));
        assert_eq!(rows[0].status, PartitionStatus::Stop);
        assert_eq!(rows[0].lag, 155);
        assert_eq!(rows[1].status, PartitionStatus::Ok);
        assert_eq!(
            history.groups(at(39))[0],
            ("lake".into(), GroupStatus::Err, 155)
        );
        // It comes back and catches up.
        history.record(&reading([Some(200), Some(200)], [200, 200]), at(40));
        assert_eq!(history.groups(at(41))[0].1, GroupStatus::Ok);
        assert_eq!(history.totals().last(), Some(&0));
    }

    #[test]
    fn nothing_committed_with_records_waiting_is_stop() {
        let mut history = LagHistory::default();
        let now = Utc::now();
        history.record(&reading([None, Some(3)], [7, 3]), now);
        let rows = history.rows(now);
        assert_eq!(
            (rows[0].committed, rows[0].lag, rows[0].status),
            (None, 7, PartitionStatus::Stop)
        );
        assert_eq!(rows[1].status, PartitionStatus::Ok);
    }
}
