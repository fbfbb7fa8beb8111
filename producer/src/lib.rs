//! The transaction producer, as a library: the console (`lakectl produce`),
//! the API and the tests all drive the same code.

pub mod generator;
pub mod malformed;
pub mod run;

pub use generator::TransactionGenerator;
pub use malformed::{damage, MalformedKind};
pub use run::{
    produce, KeyMode, ProduceError, ProduceOptions, ProduceRun, ProduceStats, ProduceSummary,
};
