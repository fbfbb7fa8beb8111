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
