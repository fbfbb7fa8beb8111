//! The lakehouse's workers: the sink abstraction and the sinks built on it
//! (the Parquet lake sink, the PostgreSQL table sink), the lake's purge
//! worker, the stream SQL engine's settings, and what keeps them running:
//! each worker assembled from its settings in one place (`jobs`), a
//! supervisor that restarts what fails with backoff, and the registry of
//! every worker's state and counters.

pub mod cli;
pub mod jobs;
pub mod lake;
pub mod metrics_http;
pub mod purge;
pub mod registry;
pub mod sink;
pub mod statement_file;
pub mod stream_sql;
pub mod supervisor;
pub mod warehouse;
