//! Compiled expressions: names resolved to positions, types checked at load
//! time, evaluated against a row with SQL NULL semantics.

use std::sync::Arc;

use md5::{Digest, Md5};

use crate::ast::{BinaryOp, Expr, ExprKind, Ident, Literal};
use crate::error::{LResult, Located, Pos};
use crate::types::SqlType;
use crate::value::Value;

/// Per-record context: the record's event time (ROWTIME).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ctx {
    pub rowtime: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CExpr {
    Column(usize),
    Field(Box<CExpr>, usize),
    Literal(Value),
    RowTime,
    Neg(Box<CExpr>),
    Not(Box<CExpr>),
    /// Arithmetic; `float` when the result is DOUBLE.
    Arith {
        op: BinaryOp,
        left: Box<CExpr>,
        right: Box<CExpr>,
        float: bool,
    },
    Compare(BinaryOp, Box<CExpr>, Box<CExpr>),
    And(Box<CExpr>, Box<CExpr>),
    Or(Box<CExpr>, Box<CExpr>),
    IsNull(Box<CExpr>, bool),
    InList(Box<CExpr>, Vec<CExpr>, bool),
    Between(Box<CExpr>, Box<CExpr>, Box<CExpr>, bool),
    Like(Box<CExpr>, Box<CExpr>, bool),
    Case {
        operand: Option<Box<CExpr>>,
        whens: Vec<(CExpr, CExpr)>,
        otherwise: Option<Box<CExpr>>,
    },
    Cast(Box<CExpr>, SqlType),
    Call(Func, Vec<CExpr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Concat,
    Substring,
    Upper,
    Lower,
    Trim,
    Len,
    Md5,
    Mask,
    Round,
    RoundTo,
    Abs,
    Floor,
    Ceil,
    Coalesce,
    Replace,
}

/// Aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    CountStar,
    Count,
    Sum,
    Avg,
    Min,
    Max,
    LatestByOffset,
    EarliestByOffset,
}

impl AggFunc {
    pub fn from_name(name: &str, star: bool) -> Option<AggFunc> {
        Some(match (name, star) {
            ("COUNT", true) => AggFunc::CountStar,
            ("COUNT", false) => AggFunc::Count,
            ("SUM", false) => AggFunc::Sum,
            ("AVG", false) => AggFunc::Avg,
            ("MIN", false) => AggFunc::Min,
            ("MAX", false) => AggFunc::Max,
            ("LATEST_BY_OFFSET", false) => AggFunc::LatestByOffset,
            ("EARLIEST_BY_OFFSET", false) => AggFunc::EarliestByOffset,
            _ => return None,
        })
    }

    pub fn is_aggregate_name(name: &str) -> bool {
        matches!(
            name,
            "COUNT" | "SUM" | "AVG" | "MIN" | "MAX" | "LATEST_BY_OFFSET" | "EARLIEST_BY_OFFSET"
        )
    }
}

/// An expression's compiled form and type; `None` is the type of a bare NULL.
pub type Compiled = (CExpr, Option<SqlType>);

/// Resolves what a compiler cannot decide alone: column names, and any node
/// the scope wants to take over (aggregates, pseudo-columns, GROUP BY matches).
pub trait Resolver {
    fn column(&mut self, name: &Ident) -> LResult<Compiled>;
    fn intercept(&mut self, expr: &Expr) -> Option<LResult<Compiled>>;
}

/// Compiles and type-checks an expression.
pub fn compile(expr: &Expr, scope: &mut dyn Resolver) -> LResult<Compiled> {
    if let Some(done) = scope.intercept(expr) {
        return done;
    }
    let pos = expr.pos;
    let mut sub = |e: &Expr| compile(e, scope);
    Ok(match &expr.kind {
        ExprKind::Column(name) => return scope.column(name),
        ExprKind::Literal(l) => match l {
            Literal::Null => (CExpr::Literal(Value::Null), None),
            Literal::Bool(b) => (CExpr::Literal(Value::Bool(*b)), Some(SqlType::Boolean)),
            Literal::Int(i) => {
                let ty = if i32::try_from(*i).is_ok() {
                    SqlType::Int
                } else {
                    SqlType::Bigint
                };
                (CExpr::Literal(Value::Int(*i)), Some(ty))
            }
            Literal::Double(d) => (CExpr::Literal(Value::Double(*d)), Some(SqlType::Double)),
            Literal::Str(s) => (CExpr::Literal(Value::str(s)), Some(SqlType::String)),
        },
        ExprKind::Field(base, field) => {
            let (c, ty) = sub(base)?;
            let Some(SqlType::Struct(fields)) = &ty else {
                return Err(Located::new(
                    pos,
                    format!("'->' needs a STRUCT, found {}", show(&ty)),
                ));
            };
            let Some(index) = fields
                .iter()
                .position(|(n, _)| n.eq_ignore_ascii_case(&field.name))
            else {
                let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
                return Err(Located::new(
                    field.pos,
                    format!(
                        "STRUCT has no field {}; fields: {}",
                        field.name,
                        names.join(", ")
                    ),
                ));
            };
            (
                CExpr::Field(Box::new(c), index),
                Some(fields[index].1.clone()),
            )
        }
        ExprKind::Neg(inner) => {
            let (c, ty) = sub(inner)?;
            numeric(&ty, inner.pos, "unary '-'")?;
            (CExpr::Neg(Box::new(c)), ty)
        }
        ExprKind::Not(inner) => {
            let (c, ty) = sub(inner)?;
            boolean(&ty, inner.pos, "NOT")?;
            (CExpr::Not(Box::new(c)), Some(SqlType::Boolean))
        }
        ExprKind::Binary(op, l, r) => {
            let (lc, lt) = sub(l)?;
            let (rc, rt) = sub(r)?;
            match op {
                BinaryOp::And | BinaryOp::Or => {
                    boolean(&lt, l.pos, op.symbol())?;
                    boolean(&rt, r.pos, op.symbol())?;
                    let (a, b) = (Box::new(lc), Box::new(rc));
                    let c = if *op == BinaryOp::And {
                        CExpr::And(a, b)
                    } else {
                        CExpr::Or(a, b)
                    };
                    (c, Some(SqlType::Boolean))
                }
                BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => {
                    if *op == BinaryOp::Add
                        && (lt == Some(SqlType::String) || rt == Some(SqlType::String))
                    {
                        return Err(Located::new(
                            pos,
                            "'+' does not join strings; use CONCAT(a, b)",
                        ));
                    }
                    numeric(&lt, l.pos, op.symbol())?;
                    numeric(&rt, r.pos, op.symbol())?;
                    let ty = match (&lt, &rt) {
                        (Some(a), Some(b)) => Some(a.widen(b)),
                        (Some(a), None) | (None, Some(a)) => Some(a.clone()),
                        (None, None) => None,
                    };
                    let float = ty == Some(SqlType::Double);
                    (
                        CExpr::Arith {
                            op: *op,
                            left: Box::new(lc),
                            right: Box::new(rc),
                            float,
                        },
                        ty,
                    )
                }
                _ => {
                    comparable(&lt, &rt, pos, op.symbol())?;
                    (
                        CExpr::Compare(*op, Box::new(lc), Box::new(rc)),
                        Some(SqlType::Boolean),
                    )
                }
            }
        }
        ExprKind::IsNull { expr, negated } => {
            let (c, _) = sub(expr)?;
            (CExpr::IsNull(Box::new(c), *negated), Some(SqlType::Boolean))
        }
        ExprKind::InList {
            expr,
            list,
            negated,
        } => {
            let (c, ty) = sub(expr)?;
            let mut items = Vec::new();
            for item in list {
                let (ic, it) = sub(item)?;
                comparable(&ty, &it, item.pos, "IN")?;
                items.push(ic);
            }
            (
                CExpr::InList(Box::new(c), items, *negated),
                Some(SqlType::Boolean),
            )
        }
        ExprKind::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let (c, ty) = sub(expr)?;
            let (lc, lt) = sub(low)?;
            let (hc, ht) = sub(high)?;
            comparable(&ty, &lt, low.pos, "BETWEEN")?;
            comparable(&ty, &ht, high.pos, "BETWEEN")?;
            (
                CExpr::Between(Box::new(c), Box::new(lc), Box::new(hc), *negated),
                Some(SqlType::Boolean),
            )
        }
        ExprKind::Like {
            expr,
            pattern,
            negated,
        } => {
            let (c, ty) = sub(expr)?;
            let (pc, pt) = sub(pattern)?;
            string(&ty, expr.pos, "LIKE")?;
            string(&pt, pattern.pos, "LIKE")?;
            (
                CExpr::Like(Box::new(c), Box::new(pc), *negated),
                Some(SqlType::Boolean),
            )
        }
        ExprKind::Case {
            operand,
            whens,
            otherwise,
        } => {
            let operand = match operand {
                Some(o) => Some(sub(o)?),
                None => None,
            };
            let mut result_ty: Option<SqlType> = None;
            let mut compiled = Vec::new();
            let unify =
                |ty: Option<SqlType>, at: Pos, current: &mut Option<SqlType>| -> LResult<()> {
                    match (current.clone(), ty) {
                        (_, None) => Ok(()),
                        (None, Some(t)) => {
                            *current = Some(t);
                            Ok(())
                        }
                        (Some(a), Some(b)) if a == b => Ok(()),
                        (Some(a), Some(b)) if a.is_numeric() && b.is_numeric() => {
                            *current = Some(a.widen(&b));
                            Ok(())
                        }
                        (Some(a), Some(b)) => Err(Located::new(
                            at,
                            format!("CASE branches have different types: {a} and {b}"),
                        )),
                    }
                };
            for (when, then) in whens {
                let (wc, wt) = sub(when)?;
                match &operand {
                    Some((_, ot)) => comparable(ot, &wt, when.pos, "CASE ... WHEN")?,
                    None => boolean(&wt, when.pos, "WHEN")?,
                }
                let (tc, tt) = sub(then)?;
                unify(tt, then.pos, &mut result_ty)?;
                compiled.push((wc, tc));
            }
            let otherwise = match otherwise {
                Some(e) => {
                    let (c, t) = sub(e)?;
                    unify(t, e.pos, &mut result_ty)?;
                    Some(Box::new(c))
                }
                None => None,
            };
            let float = result_ty == Some(SqlType::Double);
            if float {
                // Integer branches of a DOUBLE CASE yield doubles.
                for (_, then) in compiled.iter_mut() {
                    *then = CExpr::Cast(Box::new(then.clone()), SqlType::Double);
                }
            }
            let otherwise = if float {
                otherwise.map(|o| Box::new(CExpr::Cast(o, SqlType::Double)))
            } else {
                otherwise
            };
            (
                CExpr::Case {
                    operand: operand.map(|(c, _)| Box::new(c)),
                    whens: compiled,
                    otherwise,
                },
                result_ty,
            )
        }
        ExprKind::Cast(inner, to) => {
            let (c, from) = sub(inner)?;
            if matches!(to, SqlType::Struct(_)) || matches!(from, Some(SqlType::Struct(_))) {
                return Err(Located::new(pos, "CAST to or from STRUCT is not supported"));
            }
            (CExpr::Cast(Box::new(c), to.clone()), Some(to.clone()))
        }
        ExprKind::Call { name, args, star } => {
            if AggFunc::is_aggregate_name(&name.name) {
                return Err(Located::new(
                    name.pos,
                    format!("aggregate function {} is only allowed in CREATE TABLE ... AS SELECT ... GROUP BY", name.name),
                ));
            }
            if *star {
                return Err(Located::new(
                    pos,
                    format!("{}(*) is not a function", name.name),
                ));
            }
            // Said before the arguments' own errors: in a table, an unknown
            // aggregate's argument is a bare column, which is not the fault.
            if !is_scalar_function(&name.name) {
                return Err(Located::new(
                    name.pos,
                    format!("unknown function {}", name.name),
                ));
            }
            let mut compiled = Vec::new();
            let mut types = Vec::new();
            for a in args {
                let (c, t) = sub(a)?;
                compiled.push(c);
                types.push((t, a.pos));
            }
            let (func, ty) = function_signature(name, &types)?;
            (CExpr::Call(func, compiled), ty)
        }
    })
}

fn show(ty: &Option<SqlType>) -> String {
    ty.as_ref()
        .map(|t| t.to_string())
        .unwrap_or_else(|| "NULL".into())
}

fn numeric(ty: &Option<SqlType>, pos: Pos, what: &str) -> LResult<()> {
    match ty {
        None => Ok(()),
        Some(t) if t.is_numeric() => Ok(()),
        Some(t) => Err(Located::new(
            pos,
            format!("{what} needs a number, found {t}"),
        )),
    }
}

fn boolean(ty: &Option<SqlType>, pos: Pos, what: &str) -> LResult<()> {
    match ty {
        None | Some(SqlType::Boolean) => Ok(()),
        Some(t) => Err(Located::new(
            pos,
            format!("{what} needs a BOOLEAN condition, found {t}"),
        )),
    }
}

fn string(ty: &Option<SqlType>, pos: Pos, what: &str) -> LResult<()> {
    match ty {
        None | Some(SqlType::String) => Ok(()),
        Some(t) => Err(Located::new(
            pos,
            format!("{what} needs VARCHAR, found {t}"),
        )),
    }
}

fn comparable(a: &Option<SqlType>, b: &Option<SqlType>, pos: Pos, what: &str) -> LResult<()> {
    match (a, b) {
        (Some(x), Some(y)) if matches!(x, SqlType::Struct(_)) || !x.comparable_with(y) => Err(
            Located::new(pos, format!("cannot compare {x} with {y} in {what}")),
        ),
        _ => Ok(()),
    }
}

/// Checks a scalar function call and gives its result type.
/// The scalar functions `function_signature` knows (a test keeps the two together).
fn is_scalar_function(name: &str) -> bool {
    matches!(
        name,
        "CONCAT"
            | "SUBSTRING"
            | "UCASE"
            | "UPPER"
            | "LCASE"
            | "LOWER"
            | "TRIM"
            | "MD5"
            | "MASK"
            | "LEN"
            | "LENGTH"
            | "REPLACE"
            | "ROUND"
            | "ABS"
            | "FLOOR"
            | "CEIL"
            | "COALESCE"
            | "IFNULL"
    )
}

fn function_signature(
    name: &Ident,
    args: &[(Option<SqlType>, Pos)],
) -> LResult<(Func, Option<SqlType>)> {
    let arity = |range: std::ops::RangeInclusive<usize>| -> LResult<()> {
        if range.contains(&args.len()) {
            Ok(())
        } else if range.start() == range.end() {
            Err(Located::new(
                name.pos,
                format!(
                    "{} takes {} argument(s), got {}",
                    name.name,
                    range.start(),
                    args.len()
                ),
            ))
        } else {
            Err(Located::new(
                name.pos,
                format!(
                    "{} takes {} to {} arguments, got {}",
                    name.name,
                    range.start(),
                    range.end(),
                    args.len()
                ),
            ))
        }
    };
    let all_strings = |what: &str| -> LResult<()> {
        for (t, p) in args {
            string(t, *p, what)?;
        }
        Ok(())
    };
    let int_arg = |i: usize| -> LResult<()> {
        match &args[i].0 {
            None | Some(SqlType::Int) | Some(SqlType::Bigint) => Ok(()),
            Some(t) => Err(Located::new(
                args[i].1,
                format!("{} needs an INT here, found {t}", name.name),
            )),
        }
    };
    let s = Some(SqlType::String);
    Ok(match name.name.as_str() {
        "CONCAT" => {
            if args.is_empty() {
                return Err(Located::new(name.pos, "CONCAT needs at least one argument"));
            }
            for (t, p) in args {
                if let Some(t) = t {
                    if *t != SqlType::String {
                        return Err(Located::new(
                            *p,
                            format!(
                                "CONCAT takes VARCHAR arguments, found {t}; use CAST(x AS VARCHAR)"
                            ),
                        ));
                    }
                }
            }
            (Func::Concat, s)
        }
        "SUBSTRING" => {
            arity(2..=3)?;
            string(&args[0].0, args[0].1, "SUBSTRING")?;
            int_arg(1)?;
            if args.len() == 3 {
                int_arg(2)?;
            }
            (Func::Substring, s)
        }
        "UCASE" | "UPPER" | "LCASE" | "LOWER" | "TRIM" | "MD5" | "MASK" => {
            arity(1..=1)?;
            all_strings(&name.name)?;
            let f = match name.name.as_str() {
                "UCASE" | "UPPER" => Func::Upper,
                "LCASE" | "LOWER" => Func::Lower,
                "TRIM" => Func::Trim,
                "MD5" => Func::Md5,
                _ => Func::Mask,
            };
            (f, s)
        }
        "LEN" | "LENGTH" => {
            arity(1..=1)?;
            all_strings(&name.name)?;
            (Func::Len, Some(SqlType::Int))
        }
        "REPLACE" => {
            arity(3..=3)?;
            all_strings("REPLACE")?;
            (Func::Replace, s)
        }
        "ROUND" => {
            arity(1..=2)?;
            numeric(&args[0].0, args[0].1, "ROUND")?;
            if args.len() == 2 {
                int_arg(1)?;
                (Func::RoundTo, Some(SqlType::Double))
            } else {
                let ty = match &args[0].0 {
                    Some(SqlType::Int) => SqlType::Int,
                    _ => SqlType::Bigint,
                };
                (Func::Round, Some(ty))
            }
        }
        "ABS" | "FLOOR" | "CEIL" => {
            arity(1..=1)?;
            numeric(&args[0].0, args[0].1, &name.name)?;
            let f = match name.name.as_str() {
                "ABS" => Func::Abs,
                "FLOOR" => Func::Floor,
                _ => Func::Ceil,
            };
            (f, args[0].0.clone())
        }
        "COALESCE" | "IFNULL" => {
            if name.name == "IFNULL" {
                arity(2..=2)?;
            } else if args.is_empty() {
                return Err(Located::new(
                    name.pos,
                    "COALESCE needs at least one argument",
                ));
            }
            let mut ty: Option<SqlType> = None;
            for (t, p) in args {
                ty = match (ty, t) {
                    (None, t) => t.clone(),
                    (Some(a), None) => Some(a),
                    (Some(a), Some(b)) if a == *b => Some(a),
                    (Some(a), Some(b)) if a.is_numeric() && b.is_numeric() => Some(a.widen(b)),
                    (Some(a), Some(b)) => {
                        return Err(Located::new(
                            *p,
                            format!("{} arguments have different types: {a} and {b}", name.name),
                        ))
                    }
                };
            }
            (Func::Coalesce, ty)
        }
        other => return Err(Located::new(name.pos, format!("unknown function {other}"))),
    })
}

fn truthy(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

fn from_bool(b: Option<bool>) -> Value {
    b.map(Value::Bool).unwrap_or(Value::Null)
}

fn finite(d: f64) -> Value {
    if d.is_finite() {
        Value::Double(d)
    } else {
        Value::Null
    }
}

impl CExpr {
    pub fn eval(&self, row: &[Value], ctx: &Ctx) -> Value {
        match self {
            CExpr::Column(i) => row[*i].clone(),
            CExpr::Field(base, i) => match base.eval(row, ctx) {
                Value::Struct(fields) => fields.get(*i).cloned().unwrap_or(Value::Null),
                _ => Value::Null,
            },
            CExpr::Literal(v) => v.clone(),
            CExpr::RowTime => Value::Int(ctx.rowtime),
            CExpr::Neg(e) => match e.eval(row, ctx) {
                Value::Int(i) => i.checked_neg().map(Value::Int).unwrap_or(Value::Null),
                Value::Double(d) => Value::Double(-d),
                _ => Value::Null,
            },
            CExpr::Not(e) => from_bool(truthy(&e.eval(row, ctx)).map(|b| !b)),
            CExpr::Arith {
                op,
                left,
                right,
                float,
            } => arith(*op, left.eval(row, ctx), right.eval(row, ctx), *float),
            CExpr::Compare(op, l, r) => {
                let ord = l.eval(row, ctx).sql_cmp(&r.eval(row, ctx));
                from_bool(ord.map(|o| match op {
                    BinaryOp::Eq => o.is_eq(),
                    BinaryOp::NotEq => o.is_ne(),
                    BinaryOp::Lt => o.is_lt(),
                    BinaryOp::LtEq => o.is_le(),
                    BinaryOp::Gt => o.is_gt(),
                    _ => o.is_ge(),
                }))
            }
            CExpr::And(l, r) => match truthy(&l.eval(row, ctx)) {
                Some(false) => Value::Bool(false),
                left => match (left, truthy(&r.eval(row, ctx))) {
                    (_, Some(false)) => Value::Bool(false),
                    (Some(true), Some(true)) => Value::Bool(true),
                    _ => Value::Null,
                },
            },
            CExpr::Or(l, r) => match truthy(&l.eval(row, ctx)) {
                Some(true) => Value::Bool(true),
                left => match (left, truthy(&r.eval(row, ctx))) {
                    (_, Some(true)) => Value::Bool(true),
                    (Some(false), Some(false)) => Value::Bool(false),
                    _ => Value::Null,
                },
            },
            CExpr::IsNull(e, negated) => Value::Bool(e.eval(row, ctx).is_null() != *negated),
            CExpr::InList(e, list, negated) => {
                let v = e.eval(row, ctx);
                if v.is_null() {
                    return Value::Null;
                }
                let mut saw_null = false;
                for item in list {
                    match v.sql_cmp(&item.eval(row, ctx)) {
                        Some(o) if o.is_eq() => return Value::Bool(!*negated),
                        None => saw_null = true,
                        _ => {}
                    }
                }
                if saw_null {
                    Value::Null
                } else {
                    Value::Bool(*negated)
                }
            }
            CExpr::Between(e, lo, hi, negated) => {
                let v = e.eval(row, ctx);
                let above = v.sql_cmp(&lo.eval(row, ctx)).map(|o| o.is_ge());
                let below = v.sql_cmp(&hi.eval(row, ctx)).map(|o| o.is_le());
                from_bool(match (above, below) {
                    (Some(a), Some(b)) => Some((a && b) != *negated),
                    _ => None,
                })
            }
            CExpr::Like(e, p, negated) => match (e.eval(row, ctx), p.eval(row, ctx)) {
                (Value::Str(s), Value::Str(p)) => Value::Bool(like(&s, &p) != *negated),
                _ => Value::Null,
            },
            CExpr::Case {
                operand,
                whens,
                otherwise,
            } => {
                let subject = operand.as_ref().map(|o| o.eval(row, ctx));
                for (when, then) in whens {
                    let w = when.eval(row, ctx);
                    let hit = match &subject {
                        Some(s) => s.sql_cmp(&w).is_some_and(|o| o.is_eq()),
                        None => truthy(&w) == Some(true),
                    };
                    if hit {
                        return then.eval(row, ctx);
                    }
                }
                otherwise
                    .as_ref()
                    .map(|o| o.eval(row, ctx))
                    .unwrap_or(Value::Null)
            }
            CExpr::Cast(e, to) => cast(e.eval(row, ctx), to),
            CExpr::Call(f, args) => call(*f, args, row, ctx),
        }
    }
}

fn arith(op: BinaryOp, l: Value, r: Value, float: bool) -> Value {
    if float {
        let (Some(a), Some(b)) = (l.as_f64(), r.as_f64()) else {
            return Value::Null;
        };
        return match op {
            BinaryOp::Add => finite(a + b),
            BinaryOp::Sub => finite(a - b),
            BinaryOp::Mul => finite(a * b),
            BinaryOp::Div if b == 0.0 => Value::Null,
            BinaryOp::Div => finite(a / b),
            BinaryOp::Mod if b == 0.0 => Value::Null,
            _ => finite(a % b),
        };
    }
    let (Value::Int(a), Value::Int(b)) = (l, r) else {
        return Value::Null;
    };
    let result = match op {
        BinaryOp::Add => a.checked_add(b),
        BinaryOp::Sub => a.checked_sub(b),
        BinaryOp::Mul => a.checked_mul(b),
        BinaryOp::Div => a.checked_div(b),
        _ => a.checked_rem(b),
    };
    result.map(Value::Int).unwrap_or(Value::Null)
}

/// SQL LIKE with `%` (any run) and `_` (one character).
fn like(s: &str, pattern: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut si, mut pi, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == s[si]) {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

pub fn cast(v: Value, to: &SqlType) -> Value {
    match (v, to) {
        (Value::Null, _) => Value::Null,
        (v @ Value::Str(_), SqlType::String) => v,
        (Value::Int(i), SqlType::String) => Value::str(&i.to_string()),
        (Value::Double(d), SqlType::String) => Value::str(&d.to_string()),
        (Value::Bool(b), SqlType::String) => Value::str(if b { "true" } else { "false" }),
        (Value::Int(i), SqlType::Int) => i32::try_from(i)
            .map(|_| Value::Int(i))
            .unwrap_or(Value::Null),
        (Value::Int(i), SqlType::Bigint) => Value::Int(i),
        (Value::Int(i), SqlType::Double) => Value::Double(i as f64),
        (Value::Double(d), SqlType::Double) => Value::Double(d),
        (Value::Double(d), SqlType::Int) if d.is_finite() && d.abs() < 2_147_483_648.0 => {
            Value::Int(d.trunc() as i64)
        }
        (Value::Double(d), SqlType::Bigint) if d.is_finite() && d.abs() < 9.2e18 => {
            Value::Int(d.trunc() as i64)
        }
        (Value::Str(s), SqlType::Int) => s
            .trim()
            .parse::<i32>()
            .map(|i| Value::Int(i64::from(i)))
            .unwrap_or(Value::Null),
        (Value::Str(s), SqlType::Bigint) => s
            .trim()
            .parse::<i64>()
            .map(Value::Int)
            .unwrap_or(Value::Null),
        (Value::Str(s), SqlType::Double) => {
            s.trim().parse::<f64>().map(finite).unwrap_or(Value::Null)
        }
        (Value::Str(s), SqlType::Boolean) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::Null,
        },
        (v @ Value::Bool(_), SqlType::Boolean) => v,
        _ => Value::Null,
    }
}

fn call(f: Func, args: &[CExpr], row: &[Value], ctx: &Ctx) -> Value {
    let arg = |i: usize| args[i].eval(row, ctx);
    let text = |v: Value| match v {
        Value::Str(s) => Some(s),
        _ => None,
    };
    let map_str = |g: &dyn Fn(&str) -> String| {
        text(arg(0))
            .map(|s| Value::str(&g(&s)))
            .unwrap_or(Value::Null)
    };
    match f {
        Func::Concat => {
            // NULL arguments are skipped; all NULL gives NULL.
            let mut out = String::new();
            let mut any = false;
            for a in args {
                if let Value::Str(s) = a.eval(row, ctx) {
                    out.push_str(&s);
                    any = true;
                }
            }
            if any {
                Value::Str(Arc::from(out))
            } else {
                Value::Null
            }
        }
        Func::Substring => {
            let (Some(s), Value::Int(start)) = (text(arg(0)), arg(1)) else {
                return Value::Null;
            };
            let chars: Vec<char> = s.chars().collect();
            let n = chars.len() as i64;
            // 1-based; a negative start counts from the end, as in ksqlDB.
            let from = if start > 0 {
                start - 1
            } else if start < 0 {
                (n + start).max(0)
            } else {
                0
            };
            let len = if args.len() == 3 {
                match arg(2) {
                    Value::Int(l) if l >= 0 => l,
                    Value::Int(_) => 0,
                    _ => return Value::Null,
                }
            } else {
                n
            };
            let from = from.min(n) as usize;
            let to = (from as i64 + len).min(n) as usize;
            Value::str(&chars[from..to].iter().collect::<String>())
        }
        Func::Upper => map_str(&|s| s.to_uppercase()),
        Func::Lower => map_str(&|s| s.to_lowercase()),
        Func::Trim => map_str(&|s| s.trim().to_string()),
        Func::Md5 => map_str(&|s| {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let digest = Md5::digest(s.as_bytes());
            digest
                .iter()
                .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
                .map(char::from)
                .collect()
        }),
        Func::Mask => map_str(&|s| {
            s.chars()
                .map(|c| match c {
                    'A'..='Z' => 'X',
                    'a'..='z' => 'x',
                    '0'..='9' => 'n',
                    c if c.is_alphanumeric() => 'x',
                    other => other,
                })
                .collect()
        }),
        Func::Len => text(arg(0))
            .map(|s| Value::Int(s.chars().count() as i64))
            .unwrap_or(Value::Null),
        Func::Replace => match (text(arg(0)), text(arg(1)), text(arg(2))) {
            (Some(s), Some(from), Some(to)) if !from.is_empty() => {
                Value::str(&s.replace(&*from, &to))
            }
            (Some(s), Some(_), Some(_)) => Value::Str(s),
            _ => Value::Null,
        },
        Func::Round => match arg(0) {
            Value::Double(d) if d.is_finite() => Value::Int(d.round() as i64),
            v @ Value::Int(_) => v,
            _ => Value::Null,
        },
        Func::RoundTo => match (arg(0).as_f64(), arg(1)) {
            (Some(d), Value::Int(places)) => {
                let factor = 10f64.powi(places.clamp(-15, 15) as i32);
                finite((d * factor).round() / factor)
            }
            _ => Value::Null,
        },
        Func::Abs => match arg(0) {
            Value::Int(i) => i.checked_abs().map(Value::Int).unwrap_or(Value::Null),
            Value::Double(d) => Value::Double(d.abs()),
            _ => Value::Null,
        },
        Func::Floor => match arg(0) {
            Value::Double(d) => Value::Double(d.floor()),
            v => v,
        },
        Func::Ceil => match arg(0) {
            Value::Double(d) => Value::Double(d.ceil()),
            v => v,
        },
        Func::Coalesce => args
            .iter()
            .map(|a| a.eval(row, ctx))
            .find(|v| !v.is_null())
            .unwrap_or(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scalar_function_list_is_the_signatures_list() {
        let candidates = [
            "CONCAT",
            "SUBSTRING",
            "UCASE",
            "UPPER",
            "LCASE",
            "LOWER",
            "TRIM",
            "MD5",
            "MASK",
            "LEN",
            "LENGTH",
            "REPLACE",
            "ROUND",
            "ABS",
            "FLOOR",
            "CEIL",
            "COALESCE",
            "IFNULL",
            "SUMM",
            "NOW",
            "SPLIT",
            "SUM",
        ];
        for name in candidates {
            let ident = Ident {
                name: name.to_string(),
                pos: Pos { line: 1, col: 1 },
            };
            let known = !matches!(
                function_signature(&ident, &[]),
                Err(e) if e.message.starts_with("unknown function")
            );
            assert_eq!(is_scalar_function(name), known, "{name}");
        }
    }

    #[test]
    fn like_patterns() {
        assert!(like("Paris", "P%"));
        assert!(like("Paris", "%ari%"));
        assert!(like("Paris", "P_ris"));
        assert!(!like("Paris", "p%"));
        assert!(like("", "%"));
        assert!(!like("abc", "a_"));
    }

    #[test]
    fn three_valued_logic() {
        let null = Box::new(CExpr::Literal(Value::Null));
        let t = Box::new(CExpr::Literal(Value::Bool(true)));
        let f = Box::new(CExpr::Literal(Value::Bool(false)));
        let ctx = Ctx::default();
        assert_eq!(
            CExpr::And(null.clone(), f.clone()).eval(&[], &ctx),
            Value::Bool(false)
        );
        assert_eq!(
            CExpr::And(null.clone(), t.clone()).eval(&[], &ctx),
            Value::Null
        );
        assert_eq!(
            CExpr::Or(null.clone(), t).eval(&[], &ctx),
            Value::Bool(true)
        );
        assert_eq!(CExpr::Or(null, f).eval(&[], &ctx), Value::Null);
    }

    #[test]
    fn arithmetic_edges_give_null() {
        assert_eq!(
            arith(BinaryOp::Div, Value::Int(1), Value::Int(0), false),
            Value::Null
        );
        assert_eq!(
            arith(BinaryOp::Div, Value::Double(1.0), Value::Int(0), true),
            Value::Null
        );
        assert_eq!(
            arith(BinaryOp::Add, Value::Int(i64::MAX), Value::Int(1), false),
            Value::Null
        );
        assert_eq!(
            arith(BinaryOp::Div, Value::Int(7), Value::Int(2), false),
            Value::Int(3)
        );
    }
}
