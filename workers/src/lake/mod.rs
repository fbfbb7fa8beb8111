//! The stream sink into the Parquet data lake, and its settings.

pub mod encode;
pub mod files;
pub mod inventory;
pub mod json_columns;
pub mod lock;
pub mod offline;
pub mod recovery;
pub mod schema;
pub mod settings;
pub mod sink;

pub use schema::{landed_topics, LandedTopic};
pub use settings::LakeSinkArgs;
pub use sink::{LakeSink, LakeSinkConfig, LakeSinkStats};
