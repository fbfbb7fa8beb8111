//! Names of the topics the system itself owns.

/// Raw transactions from the producer.
pub const TRANSACTION_LOG: &str = "transaction_log";

/// Header carried by every record stream SQL derives: `<topic>:<partition>:<offset>`
/// of the source record it came from, so that consumers can drop replays.
pub const SOURCE_HEADER: &str = "x-lakehouse-source";

/// Header set by the producer on records it made malformed on purpose
/// (`--bad-ratio`); its value names the kind of damage. Downstream
/// dead-letter accounting uses it to tell injected garbage from real bugs.
pub const MALFORMED_HEADER: &str = "x-lakehouse-malformed";

/// Header set by the API on a record it re-sent (`POST /api/v2/repush/...`):
/// the re-push job's id.
pub const REPUSH_HEADER: &str = "x-lakehouse-repush";

/// Header set next to [`REPUSH_HEADER`]: where the re-sent record was first
/// read (`<topic>:<partition>:<offset>`), so that a job can tell after a
/// crash which of its records the broker already holds.
pub const REPUSH_SOURCE_HEADER: &str = "x-lakehouse-repush-source";

/// A record's place in a topic: the value of [`SOURCE_HEADER`], written
/// `<topic>:<partition>:<offset>` (a topic name may itself hold colons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourcePosition<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

impl<'a> SourcePosition<'a> {
    pub fn new(topic: &'a str, partition: i32, offset: i64) -> Self {
        Self {
            topic,
            partition,
            offset,
        }
    }

    /// Reads a header value; `None` when it is not `<topic>:<partition>:<offset>`.
    pub fn parse(text: &'a str) -> Option<Self> {
        let (topic, partition, offset) = Self::split(text)?;
        Some(Self::new(topic, partition.parse().ok()?, offset))
    }

    /// `<topic>:<partition>` as written in `text`, and the offset: what a
    /// consumer keys its high-water marks by, without allocating.
    pub fn partition_and_offset(text: &str) -> Option<(&str, i64)> {
        let (topic, partition, offset) = Self::split(text)?;
        partition.parse::<i32>().ok()?;
        Some((&text[..topic.len() + 1 + partition.len()], offset))
    }

    fn split(text: &str) -> Option<(&str, &str, i64)> {
        let (rest, offset) = text.rsplit_once(':')?;
        let (topic, partition) = rest.rsplit_once(':')?;
        Some((topic, partition, offset.parse().ok()?))
    }
}

impl std::fmt::Display for SourcePosition<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.topic, self.partition, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_positions_format_and_parse_back() {
        let position = SourcePosition::new("transaction_log", 2, 17);
        let text = position.to_string();
        assert_eq!(text, "transaction_log:2:17");
        assert_eq!(SourcePosition::parse(&text), Some(position));
        assert_eq!(
            SourcePosition::partition_and_offset(&text),
            Some(("transaction_log:2", 17))
        );
        assert_eq!(
            SourcePosition::parse("a:b:c:3:4"),
            Some(SourcePosition::new("a:b:c", 3, 4))
        );
        for bad in ["garbage", "t:1:x", "t:x:1", "1"] {
            assert_eq!(SourcePosition::parse(bad), None, "{bad}");
            assert_eq!(SourcePosition::partition_and_offset(bad), None, "{bad}");
        }
    }
}
