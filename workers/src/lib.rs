//! The lakehouse's workers: the sink abstraction and the sinks built on it
//! (the Parquet lake sink, the PostgreSQL table sink), and the lake's
//! purge worker.

pub mod cli;
pub mod lake;
pub mod purge;
pub mod sink;
pub mod warehouse;
