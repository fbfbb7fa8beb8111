//! The accumulators of a table's aggregate calls: one per call and group,
//! updated by each input, read for the output record, and kept in the
//! checkpoint as two values each.

use crate::expr::AggFunc;
use crate::plan::AggregateCall;
use crate::value::Value;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Acc {
    Count(i64),
    SumInt(i64),
    SumDouble(f64),
    Avg(f64, i64),
    Extreme(Value),
    Latest(Value),
    Earliest(Value, bool),
}

impl Acc {
    pub(super) fn new(call: &AggregateCall) -> Acc {
        match call.func {
            AggFunc::CountStar | AggFunc::Count => Acc::Count(0),
            AggFunc::Sum if call.arg_type == Some(crate::types::SqlType::Double) => {
                Acc::SumDouble(0.0)
            }
            AggFunc::Sum => Acc::SumInt(0),
            AggFunc::Avg => Acc::Avg(0.0, 0),
            AggFunc::Min | AggFunc::Max => Acc::Extreme(Value::Null),
            AggFunc::LatestByOffset => Acc::Latest(Value::Null),
            AggFunc::EarliestByOffset => Acc::Earliest(Value::Null, false),
        }
    }

    /// Adds one input value; NULLs are ignored except by COUNT(*).
    pub(super) fn update(&mut self, func: AggFunc, v: Value) {
        if func == AggFunc::CountStar {
            if let Acc::Count(n) = self {
                *n += 1;
            }
            return;
        }
        if v.is_null() {
            return;
        }
        match self {
            Acc::Count(n) => *n += 1,
            Acc::SumInt(s) => {
                *s = s.saturating_add(match v {
                    Value::Int(i) => i,
                    _ => 0,
                })
            }
            Acc::SumDouble(s) => *s += v.as_f64().unwrap_or(0.0),
            Acc::Avg(s, n) => {
                *s += v.as_f64().unwrap_or(0.0);
                *n += 1;
            }
            Acc::Extreme(current) => {
                let better = current.is_null()
                    || v.sql_cmp(current).is_some_and(|o| {
                        if func == AggFunc::Min {
                            o.is_lt()
                        } else {
                            o.is_gt()
                        }
                    });
                if better {
                    *current = v;
                }
            }
            Acc::Latest(current) => *current = v,
            Acc::Earliest(current, set) => {
                if !*set {
                    *current = v;
                    *set = true;
                }
            }
        }
    }

    pub(super) fn result(&self) -> Value {
        match self {
            Acc::Count(n) | Acc::SumInt(n) => Value::Int(*n),
            Acc::SumDouble(s) => Value::Double(*s),
            Acc::Avg(_, 0) => Value::Null,
            Acc::Avg(s, n) => Value::Double(s / *n as f64),
            Acc::Extreme(v) | Acc::Latest(v) | Acc::Earliest(v, _) => v.clone(),
        }
    }

    pub(super) fn to_values(&self) -> [Value; 2] {
        match self {
            Acc::Count(n) | Acc::SumInt(n) => [Value::Int(*n), Value::Null],
            Acc::SumDouble(s) => [Value::Double(*s), Value::Null],
            Acc::Avg(s, n) => [Value::Double(*s), Value::Int(*n)],
            Acc::Extreme(v) | Acc::Latest(v) => [v.clone(), Value::Null],
            Acc::Earliest(v, set) => [v.clone(), Value::Bool(*set)],
        }
    }

    pub(super) fn from_values(template: &Acc, a: Value, b: Value) -> Option<Acc> {
        Some(match (template, a, b) {
            (Acc::Count(_), Value::Int(n), _) => Acc::Count(n),
            (Acc::SumInt(_), Value::Int(n), _) => Acc::SumInt(n),
            (Acc::SumDouble(_), Value::Double(s), _) => Acc::SumDouble(s),
            (Acc::Avg(..), Value::Double(s), Value::Int(n)) => Acc::Avg(s, n),
            (Acc::Extreme(_), v, _) => Acc::Extreme(v),
            (Acc::Latest(_), v, _) => Acc::Latest(v),
            (Acc::Earliest(..), v, Value::Bool(set)) => Acc::Earliest(v, set),
            _ => return None,
        })
    }
}
