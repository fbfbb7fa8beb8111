//! Records per second in and out of each component over the last minute,
//! from the cumulative counters of successive status readings.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use lakehouse_workers::registry::Counters;

const KEPT: Duration = Duration::seconds(60);

#[derive(Debug, Clone, Default)]
pub struct Rates {
    readings: BTreeMap<String, VecDeque<(DateTime<Utc>, Counters)>>,
}

impl Rates {
    pub fn record(&mut self, component: &str, at: DateTime<Utc>, counters: &Counters) {
        let readings = self.readings.entry(component.to_string()).or_default();
        readings.push_back((at, counters.clone()));
        while readings
            .front()
            .is_some_and(|(first, _)| at - *first > KEPT)
        {
            readings.pop_front();
        }
    }

    /// (in, out) records per second over the readings kept; a restart
    /// (counters going down) starts the count again.
    pub fn per_second(&self, component: &str) -> Option<(f64, f64)> {
        let readings = self.readings.get(component)?;
        let (first, last) = (readings.front()?, readings.back()?);
        let seconds = (last.0 - first.0).num_milliseconds() as f64 / 1000.0;
        if seconds <= 0.0 {
            return None;
        }
        let gain = |a: u64, b: u64| b.saturating_sub(a) as f64 / seconds;
        Some((
            gain(first.1.records_in, last.1.records_in),
            gain(first.1.records_out, last.1.records_out),
        ))
    }

    /// Records out per reading interval, oldest first (for a sparkline).
    pub fn out_steps(&self, component: &str) -> Vec<u64> {
        let Some(readings) = self.readings.get(component) else {
            return Vec::new();
        };
        readings
            .iter()
            .zip(readings.iter().skip(1))
            .map(|(a, b)| b.1.records_out.saturating_sub(a.1.records_out))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rates_cover_the_last_minute() {
        let at = |s: i64| Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap();
        let mut rates = Rates::default();
        for s in 0..=100 {
            let counters = Counters {
                records_in: s as u64 * 10,
                records_out: s as u64 * 20,
                ..Default::default()
            };
            rates.record("lake-sink", at(s), &counters);
        }
        assert_eq!(rates.per_second("lake-sink"), Some((10.0, 20.0)));
        assert_eq!(rates.out_steps("lake-sink").len(), 60);
        assert_eq!(rates.per_second("api"), None);
    }
}
