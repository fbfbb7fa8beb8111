//! The parsed statement file, before names and types are resolved.

use crate::error::Pos;
use crate::types::SqlType;

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub kind: StatementKind,
    pub pos: Pos,
    /// Opening words, for error messages (`CREATE STREAM transactions_flat`).
    pub head: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    Stream,
    Table,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StatementKind {
    /// `CREATE STREAM name (columns) WITH (...)`: a source over a topic.
    CreateSource {
        kind: RelationKind,
        name: Ident,
        columns: Vec<ColumnDef>,
        properties: Vec<Property>,
    },
    /// `CREATE STREAM|TABLE name [WITH (...)] AS SELECT ...`.
    CreateAs {
        kind: RelationKind,
        name: Ident,
        properties: Vec<Property>,
        query: Box<Select>,
    },
}

/// An identifier, upper-cased unless it was `backquoted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: Ident,
    pub ty: SqlType,
    pub key: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub name: Ident,
    pub value: Literal,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub items: Vec<SelectItem>,
    pub from: Ident,
    pub window: Option<WindowDef>,
    pub filter: Option<Expr>,
    pub group_by: Vec<Expr>,
    pub having: Option<Expr>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    Star(Pos),
    Expr { expr: Expr, alias: Option<Ident> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WindowDef {
    Tumbling {
        size_ms: i64,
        grace_ms: Option<i64>,
    },
    Hopping {
        size_ms: i64,
        advance_ms: i64,
        grace_ms: Option<i64>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Column(Ident),
    /// `struct->field`
    Field(Box<Expr>, Ident),
    Literal(Literal),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        negated: bool,
    },
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Cast(Box<Expr>, SqlType),
    /// `name(args)`; `COUNT(*)` has `star`.
    Call {
        name: Ident,
        args: Vec<Expr>,
        star: bool,
    },
}

impl Expr {
    /// A structural comparison that ignores positions, for matching GROUP BY
    /// expressions in the projection.
    pub fn same_as(&self, other: &Expr) -> bool {
        strip(self) == strip(other)
    }
}

fn strip(e: &Expr) -> Expr {
    let zero = Pos::default();
    let b = |e: &Expr| Box::new(strip(e));
    let id = |i: &Ident| Ident {
        name: i.name.clone(),
        pos: zero,
    };
    let kind = match &e.kind {
        ExprKind::Column(i) => ExprKind::Column(id(i)),
        ExprKind::Field(x, f) => ExprKind::Field(b(x), id(f)),
        ExprKind::Literal(l) => ExprKind::Literal(l.clone()),
        ExprKind::Neg(x) => ExprKind::Neg(b(x)),
        ExprKind::Not(x) => ExprKind::Not(b(x)),
        ExprKind::Binary(op, l, r) => ExprKind::Binary(*op, b(l), b(r)),
        ExprKind::IsNull { expr, negated } => ExprKind::IsNull {
            expr: b(expr),
            negated: *negated,
        },
        ExprKind::InList {
            expr,
            list,
            negated,
        } => ExprKind::InList {
            expr: b(expr),
            list: list.iter().map(strip).collect(),
            negated: *negated,
        },
        ExprKind::Between {
            expr,
            low,
            high,
            negated,
        } => ExprKind::Between {
            expr: b(expr),
            low: b(low),
            high: b(high),
            negated: *negated,
        },
        ExprKind::Like {
            expr,
            pattern,
            negated,
        } => ExprKind::Like {
            expr: b(expr),
            pattern: b(pattern),
            negated: *negated,
        },
        ExprKind::Case {
            operand,
            whens,
            otherwise,
        } => ExprKind::Case {
            operand: operand.as_deref().map(b),
            whens: whens.iter().map(|(w, t)| (strip(w), strip(t))).collect(),
            otherwise: otherwise.as_deref().map(b),
        },
        ExprKind::Cast(x, t) => ExprKind::Cast(b(x), t.clone()),
        ExprKind::Call { name, args, star } => ExprKind::Call {
            name: id(name),
            args: args.iter().map(strip).collect(),
            star: *star,
        },
    };
    Expr { kind, pos: zero }
}
