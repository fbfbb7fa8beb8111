//! Recursive-descent parser for the ksqlDB subset (SYSTEM.md section 3).
//! Anything outside the subset is an error naming what was expected.

use crate::ast::*;
use crate::error::{LResult, Located, Pos, SqlError};
use crate::lexer::{tokenize, Tok, Token};
use crate::types::SqlType;

/// Parses a whole statement file.
pub fn parse_script(src: &str) -> Result<Vec<Statement>, SqlError> {
    let tokens = tokenize(src).map_err(|e| SqlError {
        statement: statement_index_at(src, e.pos),
        statement_head: "?".into(),
        pos: e.pos,
        message: e.message,
    })?;
    let mut parser = Parser { tokens, at: 0 };
    let mut statements = Vec::new();
    loop {
        while parser.eat_symbol(";") {}
        if parser.peek().tok == Tok::Eof {
            return Ok(statements);
        }
        let start = parser.at;
        let head = parser.head();
        let number = statements.len() + 1;
        match parser.statement() {
            Ok(kind) => {
                if !parser.eat_symbol(";") && parser.peek().tok != Tok::Eof {
                    let t = parser.peek().clone();
                    return Err(SqlError {
                        statement: number,
                        statement_head: head,
                        pos: t.pos,
                        message: format!(
                            "expected ';' or the end of the statement, found {}",
                            describe(&t.tok)
                        ),
                    });
                }
                statements.push(Statement {
                    kind,
                    pos: parser.tokens[start].pos,
                    head,
                });
            }
            Err(e) => {
                return Err(SqlError {
                    statement: number,
                    statement_head: head,
                    pos: e.pos,
                    message: e.message,
                })
            }
        }
    }
}

/// Best effort for lexer errors: count the `;` before the error.
fn statement_index_at(src: &str, pos: Pos) -> usize {
    let before: usize = src
        .lines()
        .take(pos.line as usize - 1)
        .map(|l| l.matches(';').count())
        .sum();
    before + 1
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Word(w) => format!("'{w}'"),
        Tok::Quoted(w) => format!("`{w}`"),
        Tok::Str(s) => format!("string '{s}'"),
        Tok::Number(n) => format!("number {n}"),
        Tok::Symbol(s) => format!("'{s}'"),
        Tok::Eof => "the end of the file".into(),
    }
}

const RESERVED: [&str; 24] = [
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "HAVING",
    "WINDOW",
    "EMIT",
    "AS",
    "AND",
    "OR",
    "NOT",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "IS",
    "IN",
    "BETWEEN",
    "LIKE",
    "NULL",
    "PARTITION",
    "JOIN",
];

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.at]
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.tokens[(self.at + n).min(self.tokens.len() - 1)].tok
    }

    fn next(&mut self) -> Token {
        let t = self.tokens[self.at].clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        t
    }

    fn head(&self) -> String {
        let words: Vec<String> = self.tokens[self.at..]
            .iter()
            .take(3)
            .take_while(|t| matches!(t.tok, Tok::Word(_) | Tok::Quoted(_)))
            .map(|t| match &t.tok {
                Tok::Word(w) | Tok::Quoted(w) => w.clone(),
                _ => unreachable!(),
            })
            .collect();
        words.join(" ")
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word(w) if w.eq_ignore_ascii_case(word))
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.is_word(word) {
            self.next();
            true
        } else {
            false
        }
    }

    fn eat_symbol(&mut self, sym: &str) -> bool {
        if matches!(&self.peek().tok, Tok::Symbol(s) if *s == sym) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expected<T>(&self, what: &str) -> LResult<T> {
        let t = self.peek();
        Err(Located::new(
            t.pos,
            format!("expected {what}, found {}", describe(&t.tok)),
        ))
    }

    fn expect_word(&mut self, word: &str) -> LResult<()> {
        if self.eat_word(word) {
            Ok(())
        } else {
            self.expected(&format!("'{word}'"))
        }
    }

    fn expect_symbol(&mut self, sym: &str) -> LResult<()> {
        if self.eat_symbol(sym) {
            Ok(())
        } else {
            self.expected(&format!("'{sym}'"))
        }
    }

    fn ident(&mut self, what: &str) -> LResult<Ident> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Word(w) if !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(&w)) => {
                self.next();
                Ok(Ident {
                    name: w.to_ascii_uppercase(),
                    pos: t.pos,
                })
            }
            Tok::Quoted(w) => {
                self.next();
                Ok(Ident {
                    name: w,
                    pos: t.pos,
                })
            }
            _ => self.expected(what),
        }
    }

    /// A column or field name: any word (keywords included, e.g. TIMESTAMP)
    /// upper-cased, or a `quoted` name as written.
    fn any_name(&mut self, what: &str) -> LResult<Ident> {
        let t = self.next();
        match t.tok {
            Tok::Word(w) => Ok(Ident {
                name: w.to_ascii_uppercase(),
                pos: t.pos,
            }),
            Tok::Quoted(w) => Ok(Ident {
                name: w,
                pos: t.pos,
            }),
            other => Err(Located::new(
                t.pos,
                format!("expected {what}, found {}", describe(&other)),
            )),
        }
    }

    fn statement(&mut self) -> LResult<StatementKind> {
        if !self.is_word("CREATE") {
            let t = self.peek();
            let msg = match &t.tok {
                Tok::Word(w) => format!(
                    "unsupported statement '{}': only CREATE STREAM and CREATE TABLE are supported",
                    w.to_ascii_uppercase()
                ),
                other => format!(
                    "expected CREATE STREAM or CREATE TABLE, found {}",
                    describe(other)
                ),
            };
            return Err(Located::new(t.pos, msg));
        }
        self.next();
        if self.is_word("OR") {
            return Err(Located::new(
                self.peek().pos,
                "CREATE OR REPLACE is not supported",
            ));
        }
        let kind = if self.eat_word("STREAM") {
            RelationKind::Stream
        } else if self.eat_word("TABLE") {
            RelationKind::Table
        } else if self.is_word("SOURCE") {
            return Err(Located::new(
                self.peek().pos,
                "CREATE SOURCE STREAM/TABLE is not supported",
            ));
        } else {
            return self.expected("STREAM or TABLE after CREATE");
        };
        if self.is_word("IF") {
            return Err(Located::new(
                self.peek().pos,
                "IF NOT EXISTS is not supported",
            ));
        }
        let name = self.ident("a stream or table name")?;
        if self.eat_symbol("(") {
            let columns = self.column_defs()?;
            let properties = self.with_properties()?;
            if self.is_word("AS") {
                return Err(Located::new(
                    self.peek().pos,
                    "a statement cannot both declare columns and use AS SELECT",
                ));
            }
            return Ok(StatementKind::CreateSource {
                kind,
                name,
                columns,
                properties,
            });
        }
        let properties = self.with_properties()?;
        if !self.eat_word("AS") {
            return self.expected("a column list '(' or AS SELECT");
        }
        let query = Box::new(self.select()?);
        Ok(StatementKind::CreateAs {
            kind,
            name,
            properties,
            query,
        })
    }

    fn column_defs(&mut self) -> LResult<Vec<ColumnDef>> {
        let mut columns = Vec::new();
        loop {
            // Column names may be words that are keywords elsewhere (e.g. TIMESTAMP).
            let name = self.any_name("a column name")?;
            let ty = self.sql_type()?;
            let key = if self.eat_word("PRIMARY") {
                self.expect_word("KEY")?;
                true
            } else {
                self.eat_word("KEY")
            };
            columns.push(ColumnDef { name, ty, key });
            if self.eat_symbol(")") {
                return Ok(columns);
            }
            self.expect_symbol(",")?;
        }
    }

    fn sql_type(&mut self) -> LResult<SqlType> {
        let t = self.next();
        let Tok::Word(word) = &t.tok else {
            return Err(Located::new(
                t.pos,
                format!("expected a type, found {}", describe(&t.tok)),
            ));
        };
        Ok(match word.to_ascii_uppercase().as_str() {
            "VARCHAR" | "STRING" => SqlType::String,
            "INT" | "INTEGER" => SqlType::Int,
            "BIGINT" => SqlType::Bigint,
            "DOUBLE" => SqlType::Double,
            "BOOLEAN" => SqlType::Boolean,
            "STRUCT" => {
                self.expect_symbol("<")?;
                let mut fields: Vec<(String, SqlType)> = Vec::new();
                loop {
                    let field = self.any_name("a field name")?;
                    let name = field.name;
                    if fields.iter().any(|(n, _)| *n == name) {
                        return Err(Located::new(field.pos, format!("duplicate field {name} in STRUCT")));
                    }
                    fields.push((name, self.sql_type()?));
                    if self.eat_symbol(">") {
                        break;
                    }
                    self.expect_symbol(",")?;
                }
                SqlType::Struct(fields)
            }
            other @ ("DECIMAL" | "ARRAY" | "MAP" | "TIMESTAMP" | "DATE" | "TIME" | "BYTES") => {
                return Err(Located::new(
                    t.pos,
                    format!("type {other} is not supported; use VARCHAR, INT, BIGINT, DOUBLE, BOOLEAN or STRUCT"),
                ))
            }
            other => return Err(Located::new(t.pos, format!("unknown type {other}"))),
        })
    }

    fn with_properties(&mut self) -> LResult<Vec<Property>> {
        let mut props = Vec::new();
        if !self.eat_word("WITH") {
            return Ok(props);
        }
        self.expect_symbol("(")?;
        loop {
            let pos = self.peek().pos;
            let name = self.ident("a property name")?;
            self.expect_symbol("=")?;
            let t = self.next();
            let value = match t.tok {
                Tok::Str(s) => Literal::Str(s),
                Tok::Number(n) => Literal::Int(
                    n.parse()
                        .map_err(|_| Located::new(t.pos, "expected a whole number"))?,
                ),
                other => {
                    return Err(Located::new(
                        t.pos,
                        format!(
                            "expected a quoted value or a number, found {}",
                            describe(&other)
                        ),
                    ))
                }
            };
            props.push(Property { name, value, pos });
            if self.eat_symbol(")") {
                return Ok(props);
            }
            self.expect_symbol(",")?;
        }
    }

    fn select(&mut self) -> LResult<Select> {
        let pos = self.peek().pos;
        self.expect_word("SELECT")?;
        let mut items = Vec::new();
        loop {
            if matches!(self.peek().tok, Tok::Symbol("*")) {
                items.push(SelectItem::Star(self.next().pos));
            } else {
                let expr = self.expr()?;
                let alias = if self.eat_word("AS") {
                    Some(self.ident("an alias after AS")?)
                } else {
                    None
                };
                items.push(SelectItem::Expr { expr, alias });
            }
            if !self.eat_symbol(",") {
                break;
            }
        }
        self.expect_word("FROM")?;
        let from = self.ident("a stream name after FROM")?;
        for unsupported in ["JOIN", "INNER", "LEFT", "RIGHT", "FULL"] {
            if self.is_word(unsupported) {
                return Err(Located::new(self.peek().pos, "joins are not supported"));
            }
        }
        if matches!(self.peek().tok, Tok::Word(_) | Tok::Quoted(_))
            && !["WINDOW", "WHERE", "GROUP", "HAVING", "EMIT", "PARTITION"]
                .iter()
                .any(|w| self.is_word(w))
        {
            return Err(Located::new(
                self.peek().pos,
                "source aliases are not supported",
            ));
        }
        let window = if self.eat_word("WINDOW") {
            Some(self.window()?)
        } else {
            None
        };
        let filter = if self.eat_word("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        if self.is_word("PARTITION") {
            return Err(Located::new(
                self.peek().pos,
                "PARTITION BY is not supported",
            ));
        }
        let mut group_by = Vec::new();
        if self.eat_word("GROUP") {
            self.expect_word("BY")?;
            loop {
                group_by.push(self.expr()?);
                if !self.eat_symbol(",") {
                    break;
                }
            }
        }
        let having = if self.eat_word("HAVING") {
            Some(self.expr()?)
        } else {
            None
        };
        if self.eat_word("EMIT") {
            if self.is_word("FINAL") {
                return Err(Located::new(
                    self.peek().pos,
                    "EMIT FINAL is not supported; use EMIT CHANGES",
                ));
            }
            self.expect_word("CHANGES")?;
        }
        if self.is_word("LIMIT") {
            return Err(Located::new(
                self.peek().pos,
                "LIMIT is not supported in persistent queries",
            ));
        }
        Ok(Select {
            items,
            from,
            window,
            filter,
            group_by,
            having,
            pos,
        })
    }

    fn window(&mut self) -> LResult<WindowDef> {
        let kind_pos = self.peek().pos;
        let tumbling = if self.eat_word("TUMBLING") {
            true
        } else if self.eat_word("HOPPING") {
            false
        } else if self.is_word("SESSION") {
            return Err(Located::new(
                kind_pos,
                "SESSION windows are not supported; use TUMBLING or HOPPING",
            ));
        } else {
            return self.expected("TUMBLING or HOPPING");
        };
        self.expect_symbol("(")?;
        self.expect_word("SIZE")?;
        let size_ms = self.duration()?;
        let mut advance_ms = None;
        let mut grace_ms = None;
        while self.eat_symbol(",") {
            if self.eat_word("ADVANCE") {
                self.expect_word("BY")?;
                advance_ms = Some(self.duration()?);
            } else if self.eat_word("GRACE") {
                self.expect_word("PERIOD")?;
                grace_ms = Some(self.duration()?);
            } else if self.is_word("RETENTION") {
                return Err(Located::new(self.peek().pos, "RETENTION is not supported"));
            } else {
                return self.expected("ADVANCE BY or GRACE PERIOD");
            }
        }
        self.expect_symbol(")")?;
        match (tumbling, advance_ms) {
            (true, None) => Ok(WindowDef::Tumbling { size_ms, grace_ms }),
            (true, Some(_)) => Err(Located::new(
                kind_pos,
                "a TUMBLING window has no ADVANCE BY; use HOPPING",
            )),
            (false, Some(advance_ms)) if advance_ms > size_ms => {
                Err(Located::new(kind_pos, "ADVANCE BY must not exceed SIZE"))
            }
            (false, Some(advance_ms)) => Ok(WindowDef::Hopping {
                size_ms,
                advance_ms,
                grace_ms,
            }),
            (false, None) => Err(Located::new(kind_pos, "a HOPPING window needs ADVANCE BY")),
        }
    }

    fn duration(&mut self) -> LResult<i64> {
        let t = self.next();
        let Tok::Number(n) = &t.tok else {
            return Err(Located::new(
                t.pos,
                format!(
                    "expected a duration such as 5 MINUTES, found {}",
                    describe(&t.tok)
                ),
            ));
        };
        let amount: i64 = n
            .parse()
            .map_err(|_| Located::new(t.pos, "expected a whole number"))?;
        let u = self.next();
        let unit = match &u.tok {
            Tok::Word(w) => w.to_ascii_uppercase(),
            other => {
                return Err(Located::new(
                    u.pos,
                    format!("expected a time unit, found {}", describe(other)),
                ))
            }
        };
        let ms = match unit.trim_end_matches('S') {
            "MILLISECOND" => 1,
            "SECOND" => 1_000,
            "MINUTE" => 60_000,
            "HOUR" => 3_600_000,
            "DAY" => 86_400_000,
            _ => return Err(Located::new(u.pos, format!("unknown time unit {unit}"))),
        };
        if amount <= 0 {
            return Err(Located::new(t.pos, "a duration must be positive"));
        }
        Ok(amount * ms)
    }

    // Expressions, lowest precedence first.
    fn expr(&mut self) -> LResult<Expr> {
        self.or()
    }

    fn or(&mut self) -> LResult<Expr> {
        self.binary_level(&[("OR", BinaryOp::Or)], Self::and)
    }

    fn and(&mut self) -> LResult<Expr> {
        self.binary_level(&[("AND", BinaryOp::And)], Self::not)
    }

    fn not(&mut self) -> LResult<Expr> {
        if self.is_word("NOT") {
            let pos = self.next().pos;
            let inner = self.not()?;
            return Ok(Expr {
                kind: ExprKind::Not(Box::new(inner)),
                pos,
            });
        }
        self.comparison()
    }

    fn comparison(&mut self) -> LResult<Expr> {
        let left = self.additive()?;
        let pos = self.peek().pos;
        let op = match &self.peek().tok {
            Tok::Symbol("=") => Some(BinaryOp::Eq),
            Tok::Symbol("<>") | Tok::Symbol("!=") => Some(BinaryOp::NotEq),
            Tok::Symbol("<") => Some(BinaryOp::Lt),
            Tok::Symbol("<=") => Some(BinaryOp::LtEq),
            Tok::Symbol(">") => Some(BinaryOp::Gt),
            Tok::Symbol(">=") => Some(BinaryOp::GtEq),
            _ => None,
        };
        if let Some(op) = op {
            self.next();
            let right = self.additive()?;
            return Ok(Expr {
                kind: ExprKind::Binary(op, Box::new(left), Box::new(right)),
                pos,
            });
        }
        if self.eat_word("IS") {
            let negated = self.eat_word("NOT");
            self.expect_word("NULL")?;
            return Ok(Expr {
                kind: ExprKind::IsNull {
                    expr: Box::new(left),
                    negated,
                },
                pos,
            });
        }
        let negated = if self.is_word("NOT")
            && matches!(self.peek_at(1), Tok::Word(w) if ["IN", "BETWEEN", "LIKE"].iter().any(|k| w.eq_ignore_ascii_case(k)))
        {
            self.next();
            true
        } else {
            false
        };
        if self.eat_word("IN") {
            self.expect_symbol("(")?;
            if self.is_word("SELECT") {
                return Err(Located::new(
                    self.peek().pos,
                    "subqueries are not supported",
                ));
            }
            let mut list = Vec::new();
            loop {
                list.push(self.expr()?);
                if self.eat_symbol(")") {
                    break;
                }
                self.expect_symbol(",")?;
            }
            return Ok(Expr {
                kind: ExprKind::InList {
                    expr: Box::new(left),
                    list,
                    negated,
                },
                pos,
            });
        }
        if self.eat_word("BETWEEN") {
            let low = self.additive()?;
            self.expect_word("AND")?;
            let high = self.additive()?;
            return Ok(Expr {
                kind: ExprKind::Between {
                    expr: Box::new(left),
                    low: Box::new(low),
                    high: Box::new(high),
                    negated,
                },
                pos,
            });
        }
        if self.eat_word("LIKE") {
            let pattern = self.additive()?;
            return Ok(Expr {
                kind: ExprKind::Like {
                    expr: Box::new(left),
                    pattern: Box::new(pattern),
                    negated,
                },
                pos,
            });
        }
        if negated {
            return self.expected("IN, BETWEEN or LIKE after NOT");
        }
        Ok(left)
    }

    fn additive(&mut self) -> LResult<Expr> {
        self.binary_level(
            &[("+", BinaryOp::Add), ("-", BinaryOp::Sub)],
            Self::multiplicative,
        )
    }

    fn multiplicative(&mut self) -> LResult<Expr> {
        self.binary_level(
            &[
                ("*", BinaryOp::Mul),
                ("/", BinaryOp::Div),
                ("%", BinaryOp::Mod),
            ],
            Self::unary,
        )
    }

    /// One left-associative precedence level: operands from `next`,
    /// separated by the symbols or keywords in `ops`.
    fn binary_level(
        &mut self,
        ops: &[(&str, BinaryOp)],
        next: fn(&mut Self) -> LResult<Expr>,
    ) -> LResult<Expr> {
        let mut left = next(self)?;
        loop {
            let found = ops.iter().find(|(token, _)| match &self.peek().tok {
                Tok::Symbol(s) => s == token,
                Tok::Word(w) => w.eq_ignore_ascii_case(token),
                _ => false,
            });
            let Some((_, op)) = found else {
                return Ok(left);
            };
            let op = *op;
            let pos = self.next().pos;
            let right = next(self)?;
            left = Expr {
                kind: ExprKind::Binary(op, Box::new(left), Box::new(right)),
                pos,
            };
        }
    }

    fn unary(&mut self) -> LResult<Expr> {
        if matches!(self.peek().tok, Tok::Symbol("-")) {
            let pos = self.next().pos;
            let inner = self.unary()?;
            return Ok(Expr {
                kind: ExprKind::Neg(Box::new(inner)),
                pos,
            });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> LResult<Expr> {
        let mut e = self.primary()?;
        loop {
            if matches!(self.peek().tok, Tok::Symbol("->")) {
                let pos = self.next().pos;
                let field = self.any_name("a field name after ->")?;
                e = Expr {
                    kind: ExprKind::Field(Box::new(e), field),
                    pos,
                };
            } else if matches!(self.peek().tok, Tok::Symbol("[")) {
                return Err(Located::new(
                    self.peek().pos,
                    "array and map subscripts are not supported",
                ));
            } else if matches!(self.peek().tok, Tok::Symbol(".")) {
                return Err(Located::new(self.peek().pos, "qualified names (a.b) are not supported; use a struct's '->' or the bare column name"));
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> LResult<Expr> {
        let t = self.peek().clone();
        let pos = t.pos;
        let literal = |l| {
            Ok(Expr {
                kind: ExprKind::Literal(l),
                pos,
            })
        };
        match &t.tok {
            Tok::Str(s) => {
                self.next();
                literal(Literal::Str(s.clone()))
            }
            Tok::Number(n) => {
                self.next();
                if n.contains(['.', 'e', 'E']) {
                    n.parse()
                        .map(Literal::Double)
                        .map_err(|_| Located::new(pos, format!("bad number {n}")))
                        .and_then(literal)
                } else {
                    n.parse()
                        .map(Literal::Int)
                        .map_err(|_| Located::new(pos, format!("number {n} is too large")))
                        .and_then(literal)
                }
            }
            Tok::Symbol("(") => {
                self.next();
                if self.is_word("SELECT") {
                    return Err(Located::new(
                        self.peek().pos,
                        "subqueries are not supported",
                    ));
                }
                let e = self.expr()?;
                self.expect_symbol(")")?;
                Ok(e)
            }
            Tok::Word(w) => {
                let upper = w.to_ascii_uppercase();
                match upper.as_str() {
                    "NULL" => {
                        self.next();
                        literal(Literal::Null)
                    }
                    "TRUE" | "FALSE" => {
                        self.next();
                        literal(Literal::Bool(upper == "TRUE"))
                    }
                    "CASE" => self.case(),
                    "CAST" => {
                        self.next();
                        self.expect_symbol("(")?;
                        let e = self.expr()?;
                        self.expect_word("AS")?;
                        let ty = self.sql_type()?;
                        self.expect_symbol(")")?;
                        Ok(Expr {
                            kind: ExprKind::Cast(Box::new(e), ty),
                            pos,
                        })
                    }
                    _ if matches!(self.peek_at(1), Tok::Symbol("(")) => {
                        let name = Ident { name: upper, pos };
                        self.next();
                        self.next();
                        if self.eat_symbol("*") {
                            self.expect_symbol(")")?;
                            return Ok(Expr {
                                kind: ExprKind::Call {
                                    name,
                                    args: vec![],
                                    star: true,
                                },
                                pos,
                            });
                        }
                        let mut args = Vec::new();
                        if !self.eat_symbol(")") {
                            loop {
                                args.push(self.expr()?);
                                if self.eat_symbol(")") {
                                    break;
                                }
                                self.expect_symbol(",")?;
                            }
                        }
                        Ok(Expr {
                            kind: ExprKind::Call {
                                name,
                                args,
                                star: false,
                            },
                            pos,
                        })
                    }
                    _ => {
                        let ident = self.ident("an expression")?;
                        Ok(Expr {
                            kind: ExprKind::Column(ident),
                            pos,
                        })
                    }
                }
            }
            Tok::Quoted(_) => {
                let ident = self.ident("an expression")?;
                Ok(Expr {
                    kind: ExprKind::Column(ident),
                    pos,
                })
            }
            _ => self.expected("an expression"),
        }
    }

    fn case(&mut self) -> LResult<Expr> {
        let pos = self.next().pos;
        let operand = if self.is_word("WHEN") {
            None
        } else {
            Some(Box::new(self.expr()?))
        };
        let mut whens = Vec::new();
        while self.eat_word("WHEN") {
            let w = self.expr()?;
            self.expect_word("THEN")?;
            let t = self.expr()?;
            whens.push((w, t));
        }
        if whens.is_empty() {
            return self.expected("WHEN");
        }
        let otherwise = if self.eat_word("ELSE") {
            Some(Box::new(self.expr()?))
        } else {
            None
        };
        self.expect_word("END")?;
        Ok(Expr {
            kind: ExprKind::Case {
                operand,
                whens,
                otherwise,
            },
            pos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_product_file() {
        let src = include_str!("../../producer/ksql_queries.sql");
        let statements = parse_script(src).unwrap();
        assert!(statements.len() >= 20, "{}", statements.len());
    }

    #[test]
    fn precedence_and_postfix() {
        let s = parse_script("CREATE STREAM x AS SELECT a->b->c AS v, 1 + 2 * 3 FROM s WHERE NOT a = 1 OR b IS NOT NULL AND c NOT IN (1, 2);").unwrap();
        let StatementKind::CreateAs { query, .. } = &s[0].kind else {
            panic!()
        };
        let Some(ExprKind::Binary(BinaryOp::Or, left, right)) =
            query.filter.as_ref().map(|f| &f.kind)
        else {
            panic!()
        };
        assert!(matches!(left.kind, ExprKind::Not(_)));
        assert!(matches!(right.kind, ExprKind::Binary(BinaryOp::And, _, _)));
        let SelectItem::Expr { expr, .. } = &query.items[1] else {
            panic!()
        };
        let ExprKind::Binary(BinaryOp::Add, _, mul) = &expr.kind else {
            panic!()
        };
        assert!(matches!(mul.kind, ExprKind::Binary(BinaryOp::Mul, _, _)));
    }

    #[test]
    fn errors_name_statement_line_and_expectation() {
        let err = parse_script("CREATE STREAM a (x INT) WITH (KAFKA_TOPIC='t');\nCREATE STREAM b AS\n  SELECT x FROM WHERE;").unwrap_err();
        assert_eq!(err.statement, 2);
        assert_eq!(err.statement_head, "CREATE STREAM b");
        assert_eq!((err.pos.line, err.pos.col), (3, 17));
        assert!(
            err.message.contains("expected a stream name after FROM"),
            "{err}"
        );
    }
}
