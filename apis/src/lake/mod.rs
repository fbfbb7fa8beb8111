//! API 2's reader of the data lake: DataFusion over the Hive-partitioned
//! Parquet the lake sink writes.

pub mod catalog;
pub mod data_files;
pub mod encode;
pub mod inventory;
pub mod metrics;
pub mod page;
pub mod page_read;
pub mod sql;
pub mod store;

pub use catalog::Lake;
pub use metrics::METRICS_DATASET;
