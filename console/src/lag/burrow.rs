//! Consumer status the way Burrow evaluates it (linkedin/Burrow,
//! `core/internal/evaluator/caching.go`), as pure functions of a window of
//! offset observations and a `now` passed in.
//!
//! An observation is a commit: a committed offset with the time it was
//! seen and the partition's end offset then. Per partition, over the
//! window (the last [`WINDOW`] commits):
//! - **STOP**: nothing was committed for longer than the window spans
//!   (the newest commit is older than now − (newest − oldest observation)),
//!   while there is lag;
//! - **REWIND**: a committed offset went backwards;
//! - **OK**: the current lag is 0, or some lag in the window was 0;
//! - **STALL**: the offset did not move through the window while lag > 0;
//! - **WARN**: the lag never decreased through the window;
//! - else **OK**.
//!
//! A group is the worst of its partitions; STOP, STALL and REWIND count as
//! ERR for the group.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Observations kept per partition.
pub const WINDOW: usize = 10;

/// One reading of a partition: the group's committed offset, the end of
/// the partition (high watermark), and when the offset was committed (as
/// far as the observer knows: when it was first seen at this value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub at: DateTime<Utc>,
    pub committed: i64,
    pub end: i64,
}

impl Observation {
    pub fn lag(&self) -> i64 {
        (self.end - self.committed).max(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PartitionStatus {
    Ok,
    Warn,
    Stall,
    Rewind,
    Stop,
}

impl PartitionStatus {
    pub fn word(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Warn => "WARN",
            Self::Stall => "STALL",
            Self::Rewind => "REWIND",
            Self::Stop => "STOP",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum GroupStatus {
    /// Not observed yet.
    Unknown,
    Ok,
    Warn,
    Err,
}

impl GroupStatus {
    pub fn word(self) -> &'static str {
        match self {
            Self::Unknown => "…",
            Self::Ok => "OK",
            Self::Warn => "WARN",
            Self::Err => "ERR",
        }
    }
}

/// The last [`WINDOW`] observations of one partition, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionWindow {
    observations: VecDeque<Observation>,
}

impl PartitionWindow {
    /// Adds a reading taken now. A new committed offset is a commit,
    /// seen at `at`; the same offset again only moves the partition's end
    /// (the lag) of the newest commit, keeping its time, so that a group
    /// that stopped committing shows as STOP once the window's span has
    /// passed. (Tansu's offset fetch gives no commit times, so a consumer
    /// committing one offset over and over looks the same as one that
    /// stopped; STALL then shows only for histories that record commits.)
    pub fn observe(&mut self, observation: Observation) {
        if let Some(last) = self.observations.back_mut() {
            if last.committed == observation.committed {
                last.end = observation.end;
                return;
            }
        }
        self.observations.push_back(observation);
        while self.observations.len() > WINDOW {
            self.observations.pop_front();
        }
    }

    pub fn observations(&self) -> &VecDeque<Observation> {
        &self.observations
    }

    pub fn latest(&self) -> Option<&Observation> {
        self.observations.back()
    }

    /// Records per second consumed over the window.
    pub fn rate(&self) -> Option<f64> {
        let (first, last) = (self.observations.front()?, self.observations.back()?);
        let seconds = (last.at - first.at).num_milliseconds() as f64 / 1000.0;
        (seconds > 0.0).then(|| (last.committed - first.committed) as f64 / seconds)
    }

    /// Seconds until the lag is gone at the rate it shrank over the
    /// window (None: it did not shrink, so it never will at this pace).
    pub fn catch_up_secs(&self) -> Option<f64> {
        let (first, last) = (self.observations.front()?, self.observations.back()?);
        if last.lag() == 0 {
            return Some(0.0);
        }
        let seconds = (last.at - first.at).num_milliseconds() as f64 / 1000.0;
        let shrink = (first.lag() - last.lag()) as f64;
        (seconds > 0.0 && shrink > 0.0).then(|| last.lag() as f64 / (shrink / seconds))
    }
}

/// Burrow's rules over one partition's window at `now`.
pub fn partition_status(window: &PartitionWindow, now: DateTime<Utc>) -> PartitionStatus {
    let obs = window.observations();
    let (Some(first), Some(last)) = (obs.front(), obs.back()) else {
        return PartitionStatus::Ok;
    };
    let lag = last.lag();
    // STOP: the newest commit is older than the window's own span.
    let span = last.at - first.at;
    if lag > 0 && obs.len() > 1 && now - last.at > span {
        return PartitionStatus::Stop;
    }
    if obs
        .iter()
        .zip(obs.iter().skip(1))
        .any(|(a, b)| b.committed < a.committed)
    {
        return PartitionStatus::Rewind;
    }
    if lag == 0 || obs.iter().any(|o| o.lag() == 0) {
        return PartitionStatus::Ok;
    }
    if obs.len() > 1 && first.committed == last.committed {
        return PartitionStatus::Stall;
    }
    if obs.len() == WINDOW
        && obs
            .iter()
            .zip(obs.iter().skip(1))
            .all(|(a, b)| b.lag() >= a.lag())
    {
        return PartitionStatus::Warn;
    }
    PartitionStatus::Ok
}

/// A group is the worst of its partitions; STOP, STALL and REWIND are ERR.
pub fn group_status(partitions: impl IntoIterator<Item = PartitionStatus>) -> GroupStatus {
    partitions
        .into_iter()
        .map(|p| match p {
            PartitionStatus::Ok => GroupStatus::Ok,
            PartitionStatus::Warn => GroupStatus::Warn,
            _ => GroupStatus::Err,
        })
        .max()
        .unwrap_or(GroupStatus::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(second: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + second, 0).unwrap()
    }

    /// A window from (seconds, committed, end) readings, taken as they are.
    fn window(readings: &[(i64, i64, i64)]) -> PartitionWindow {
        PartitionWindow {
            observations: readings
                .iter()
                .map(|&(s, committed, end)| Observation {
                    at: at(s),
                    committed,
                    end,
                })
                .collect(),
        }
    }

    #[test]
    fn no_lag_now_or_in_the_window_is_ok() {
        let w = window(&[(0, 10, 10), (10, 20, 30), (20, 30, 35)]);
        assert_eq!(partition_status(&w, at(25)), PartitionStatus::Ok);
        let caught_up = window(&[(0, 10, 20), (10, 30, 30)]);
        assert_eq!(partition_status(&caught_up, at(12)), PartitionStatus::Ok);
    }

    #[test]
    fn an_offset_that_does_not_move_while_lag_grows_stalls() {
        let w = window(&[(0, 10, 20), (10, 10, 30), (20, 10, 40)]);
        assert_eq!(partition_status(&w, at(21)), PartitionStatus::Stall);
    }

    #[test]
    fn no_commit_for_longer_than_the_window_spans_is_stop() {
        // Commits every 10 s for 90 s, then nothing for 100 s.
        let readings: Vec<(i64, i64, i64)> = (0..10)
            .map(|i| (i * 10, i * 100, i * 100 + 50 - (i % 2) * 10))
            .collect();
        let w = window(&readings);
        assert_eq!(partition_status(&w, at(95)), PartitionStatus::Ok);
        assert_eq!(partition_status(&w, at(190)), PartitionStatus::Stop);
    }

    #[test]
    fn an_offset_going_backwards_is_rewind() {
        let w = window(&[(0, 50, 60), (10, 55, 70), (20, 40, 80)]);
        assert_eq!(partition_status(&w, at(21)), PartitionStatus::Rewind);
    }

    #[test]
    fn lag_that_never_decreases_over_a_full_window_is_warn() {
        let readings: Vec<(i64, i64, i64)> =
            (0..10).map(|i| (i * 10, i * 100, i * 110 + 5)).collect();
        assert_eq!(
            partition_status(&window(&readings), at(91)),
            PartitionStatus::Warn
        );
        // One decrease in the window: the consumer keeps up at times.
        let mut readings = readings;
        readings[5].2 = readings[5].1 + 1;
        assert_eq!(
            partition_status(&window(&readings), at(91)),
            PartitionStatus::Ok
        );
    }

    #[test]
    fn a_group_is_its_worst_partition_with_errors_folded() {
        use PartitionStatus::*;
        assert_eq!(group_status([Ok, Ok]), GroupStatus::Ok);
        assert_eq!(group_status([Ok, Warn]), GroupStatus::Warn);
        for bad in [Stop, Stall, Rewind] {
            assert_eq!(group_status([Ok, Warn, bad]), GroupStatus::Err);
        }
        assert_eq!(group_status([]), GroupStatus::Unknown);
    }

    #[test]
    fn the_window_keeps_ten_readings_and_the_commit_time_of_an_unchanged_offset() {
        let mut w = PartitionWindow::default();
        for i in 0..15 {
            w.observe(Observation {
                at: at(i),
                committed: i * 10,
                end: i * 10 + 5,
            });
        }
        assert_eq!(w.observations().len(), WINDOW);
        assert_eq!(w.observations().front().unwrap().committed, 50);
        assert_eq!(w.rate(), Some(10.0));
        // The lag stays at 5: it is not shrinking, there is no catch-up time.
        assert_eq!(w.catch_up_secs(), None);
        // The group stops: readings go on, the commit time stays.
        for i in 15..40 {
            w.observe(Observation {
                at: at(i),
                committed: 140,
                end: 200 + i,
            });
        }
        assert_eq!(w.latest().unwrap().at, at(14));
        assert_eq!(w.latest().unwrap().end, 239);
        assert_eq!(partition_status(&w, at(40)), PartitionStatus::Stop);
    }
}
