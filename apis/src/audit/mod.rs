//! The `access_log` audit trail: what is logged of a request, and the
//! writer that gets it into PostgreSQL without slowing requests down.

pub mod redact;
pub mod writer;

pub use writer::{AuditCounters, AuditEntry, AuditLog, AuditWriter};
