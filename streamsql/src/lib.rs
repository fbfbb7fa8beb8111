//! Embedded stream SQL: runs a ksqlDB-dialect statement file (SYSTEM.md
//! section 3) without a JVM, writing the same topics in the same format.
//!
//! parser (`parse_script`) → planner (`plan`, producing the [`Plan`], which is
//! also the product's catalog) → executor ([`Engine`], pure) → runtime
//! (Kafka in and out, checkpoints).

pub mod ast;
pub mod catchup;
pub mod checkpoint;
pub mod codec;
pub mod decode;
pub mod emit;
pub mod engine;
pub mod error;
pub mod expr;
pub mod json_rules;
pub mod lexer;
pub mod parser;
pub mod plan;
pub mod runtime;
pub mod statements;
pub mod types;
pub mod value;

pub use engine::{Balance, BatchOutput, DeadLetter, Engine, InputRecord, OutputRecord};
pub use error::SqlError;
pub use plan::{Plan, Relation};

pub use lakehouse::topics::SOURCE_HEADER;

/// Parses and plans a statement file.
pub fn load(src: &str) -> Result<Plan, SqlError> {
    plan::plan(&parser::parse_script(src)?)
}

/// Reads, parses and plans a statement file from disk.
pub fn load_file(path: &std::path::Path) -> Result<Plan, LoadError> {
    let src = std::fs::read_to_string(path).map_err(|e| LoadError::Read(path.to_path_buf(), e))?;
    load(&src).map_err(|e| LoadError::Sql(path.to_path_buf(), e))
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {0}: {1}")]
    Read(std::path::PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Sql(std::path::PathBuf, SqlError),
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_product_file_plans() {
        let plan = super::load(include_str!("../../producer/ksql_queries.sql"))
            .unwrap_or_else(|e| panic!("{e}"));
        println!("{}", super::plan::describe(&plan));
        let t = plan.relation("total_spent_par_user_type").unwrap();
        assert_eq!(
            t.key_columns().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            vec!["KSQL_COL_0"]
        );
        assert_eq!(t.topic, "TOTAL_SPENT_PAR_USER_TYPE");
    }
}
