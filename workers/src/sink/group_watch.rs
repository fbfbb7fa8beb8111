//! Notices partitions that the group left without a live owner, so that the
//! member can leave and rejoin.
//!
//! Tansu 0.6.0 removes a member that died without leaving once its session
//! times out, but keeps the assignment made while it lived: the survivors
//! rejoin into the same generation, get their old share back, and the dead
//! member's partitions are read by nobody (BROKER.md). A member that leaves
//! does start a fresh assignment there. So a member looks, now and then, at
//! the partitions it does not own: when the sink says that no live instance
//! owns one of them (the lake sink: nobody holds its partition lock), and
//! that stays so over two looks a session timeout apart, it leaves and
//! rejoins. On Apache Kafka the group reassigns such partitions itself and
//! the watch finds nothing.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use super::{Sink, TopicPartition};

/// The partitions of `all` that are not `mine` and that, by `owned_elsewhere`,
/// no live instance owns. Unknown ownership counts as owned.
pub fn orphans(
    all: &[TopicPartition],
    mine: &BTreeSet<TopicPartition>,
    owned_elsewhere: impl Fn(&TopicPartition) -> Option<bool>,
) -> Vec<TopicPartition> {
    all.iter()
        .filter(|tp| !mine.contains(tp))
        .filter(|tp| owned_elsewhere(tp) == Some(false))
        .cloned()
        .collect()
}

#[derive(Debug)]
pub struct GroupWatch {
    topics: Vec<String>,
    interval: Duration,
    last_look: Instant,
    /// Consecutive looks that found orphans.
    seen: u32,
}

/// Looks in a row that must find orphans: a rebalance in flight leaves
/// partitions unowned for a moment.
const CONFIRMATIONS: u32 = 2;

impl GroupWatch {
    pub fn new(topics: &[String], interval: Duration) -> Self {
        Self {
            topics: topics.to_vec(),
            interval,
            last_look: Instant::now(),
            seen: 0,
        }
    }

    /// `true` when the member should leave the group and join again.
    pub fn should_rejoin<S: Sink, C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        sink: &Mutex<S>,
    ) -> bool {
        if self.last_look.elapsed() < self.interval {
            return false;
        }
        self.last_look = Instant::now();
        match self.look(consumer, sink) {
            Some(found) if !found.is_empty() => {
                self.seen += 1;
                tracing::warn!(
                    "no live instance owns {} (look {} of {CONFIRMATIONS})",
                    found
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    self.seen
                );
            }
            Some(_) => self.seen = 0,
            // The broker did not answer: no evidence either way.
            None => {}
        }
        if self.seen >= CONFIRMATIONS {
            self.seen = 0;
            return true;
        }
        false
    }

    fn look<S: Sink, C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        sink: &Mutex<S>,
    ) -> Option<Vec<TopicPartition>> {
        let metadata = consumer
            .fetch_metadata(None, Duration::from_secs(5))
            .inspect_err(|e| tracing::debug!("cannot read topic metadata: {e}"))
            .ok()?;
        let all: Vec<TopicPartition> = metadata
            .topics()
            .iter()
            .filter(|t| self.topics.iter().any(|name| name == t.name()))
            .flat_map(|t| {
                t.partitions()
                    .iter()
                    .map(|p| TopicPartition::new(t.name(), p.id()))
            })
            .collect();
        let mine: BTreeSet<TopicPartition> =
            super::runner::partitions_of(&consumer.assignment().ok()?)
                .into_iter()
                .collect();
        let sink = super::runner::lock(sink);
        Some(orphans(&all, &mine, |tp| sink.is_owned_elsewhere(tp)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphans_are_unowned_partitions_that_are_not_mine() {
        let all: Vec<TopicPartition> = (0..4).map(|p| TopicPartition::new("a", p)).collect();
        let mine: BTreeSet<TopicPartition> = [all[0].clone()].into();
        // 1 is owned by a live instance, 2 by nobody, 3 cannot be told.
        let found = orphans(&all, &mine, |tp| match tp.partition {
            0 => Some(false),
            1 => Some(true),
            2 => Some(false),
            _ => None,
        });
        assert_eq!(found, vec![all[2].clone()]);
    }
}
