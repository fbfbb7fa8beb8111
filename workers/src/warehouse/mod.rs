//! The table sink into the PostgreSQL warehouse, and its settings.

pub mod batch;
pub mod schema;
pub mod settings;
pub mod sink;

pub use schema::{warehouse_tables, WarehouseTable};
pub use settings::TableSinkArgs;
pub use sink::{TableSink, TableSinkConfig, TableSinkStats};
