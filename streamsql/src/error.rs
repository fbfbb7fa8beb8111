//! Load-time errors: each names the statement, the line and column, and what was wrong.

use std::fmt;

/// A position in the statement file (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// A statement rejected when the file is loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SqlError {
    /// 1-based index of the statement in the file.
    pub statement: usize,
    /// The statement's opening words, e.g. `CREATE STREAM transactions_flat`.
    pub statement_head: String,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "statement {} ({}), line {}, column {}: {}",
            self.statement, self.statement_head, self.pos.line, self.pos.col, self.message
        )
    }
}

/// An error before it is attached to its statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub pos: Pos,
    pub message: String,
}

impl Located {
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        Self {
            pos,
            message: message.into(),
        }
    }
}

pub type LResult<T> = Result<T, Located>;
