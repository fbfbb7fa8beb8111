//! Shared domain code for every lakehouse component: configuration, the
//! transaction message, topic names, Kafka and PostgreSQL helpers, logging,
//! and supervision of the local broker and PostgreSQL processes.

pub mod config;
pub mod identity;
pub mod json;
pub mod kafka;
pub mod lake;
pub mod local;
pub mod logging;
pub mod postgres;
pub mod topics;
pub mod transaction;

pub use config::{
    ConfigArgs, ConfigFileArg, KafkaArgs, LakeDirArg, LogDirArg, PostgresArgs, Settings,
    StateDirArg, TopicArgs,
};
