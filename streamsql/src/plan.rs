//! The planner: resolves names across statements, checks types, and derives
//! every relation's schema, key and topic. Its output, the [`Plan`], is also
//! the product's catalog: the sinks, the API and the console read it.

use std::collections::HashMap;

use serde::Serialize;

use crate::ast::{
    self, Expr, ExprKind, Ident, Literal, RelationKind, SelectItem, Statement, StatementKind,
    WindowDef,
};
use crate::error::{LResult, Located, Pos, SqlError};
use crate::expr::{compile, AggFunc, CExpr, Compiled, Resolver};
use crate::types::SqlType;

/// Default grace period after a window closes, when the window has none.
pub const DEFAULT_GRACE_MS: i64 = 5 * 60_000;

/// How a table's key is written in the Kafka record key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyFormat {
    /// Kafka's primitive serialisers: UTF-8 for VARCHAR, big-endian for INT (4 bytes),
    /// BIGINT and DOUBLE (8 bytes). One key column only.
    Kafka,
    /// JSON: the bare value for one key column, an object for several.
    Json,
    /// No key (streams).
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: SqlType,
    /// Travels in the record key (table key columns, source KEY columns).
    pub key: bool,
}

impl Column {
    /// A column of the record value.
    pub fn value(name: &str, ty: SqlType) -> Self {
        Column {
            name: name.into(),
            ty,
            key: false,
        }
    }
}

/// A stream or table of the file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Relation {
    /// Upper-cased unless quoted, as ksqlDB names it.
    pub name: String,
    pub kind: RelationKind,
    pub topic: String,
    pub columns: Vec<Column>,
    pub key_format: KeyFormat,
    /// Windowed tables: the key carries the window start.
    pub window: Option<WindowDef>,
    /// Declared over an existing topic (`CREATE STREAM x (...) WITH (KAFKA_TOPIC=...)`).
    pub is_source: bool,
    /// Partitions of the output topic; `None`: as many as the input's.
    pub partitions: Option<i32>,
    /// Source streams: the column that gives event time, instead of the record timestamp.
    pub timestamp_column: Option<String>,
    /// 1-based statement number and line in the file.
    pub statement: usize,
    pub line: u32,
}

impl Relation {
    pub fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.key)
    }

    pub fn value_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| !c.key)
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// A persistent query deriving `output` from `input` (indexes into the relations).
#[derive(Debug, Clone)]
pub enum Query {
    Stream(StreamQuery),
    Table(TableQuery),
}

#[derive(Debug, Clone)]
pub struct StreamQuery {
    pub output: usize,
    pub input: usize,
    pub filter: Option<CExpr>,
    pub projection: Vec<CExpr>,
}

#[derive(Debug, Clone)]
pub struct AggregateCall {
    pub func: AggFunc,
    pub arg: Option<CExpr>,
    pub arg_type: Option<SqlType>,
}

/// A table: rows of the input are filtered, grouped and aggregated; the
/// projection and HAVING are evaluated over the *grouped row*
/// `[WINDOWSTART, WINDOWEND, group keys..., aggregate results...]`.
#[derive(Debug, Clone)]
pub struct TableQuery {
    pub output: usize,
    pub input: usize,
    pub filter: Option<CExpr>,
    pub group_by: Vec<CExpr>,
    pub aggregates: Vec<AggregateCall>,
    pub projection: Vec<CExpr>,
    pub having: Option<CExpr>,
    pub window: Option<WindowDef>,
    pub grace_ms: i64,
}

impl TableQuery {
    /// Position of group key `i` in the grouped row.
    pub const fn key_slot(i: usize) -> usize {
        2 + i
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub relations: Vec<Relation>,
    /// In file order, so a query reading a derived stream runs after it.
    pub queries: Vec<Query>,
}

impl Plan {
    pub fn relation(&self, name: &str) -> Option<&Relation> {
        self.relations
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
    }

    pub fn streams(&self) -> impl Iterator<Item = &Relation> {
        self.relations
            .iter()
            .filter(|r| r.kind == RelationKind::Stream)
    }

    pub fn tables(&self) -> impl Iterator<Item = &Relation> {
        self.relations
            .iter()
            .filter(|r| r.kind == RelationKind::Table)
    }

    /// Topics read by source streams.
    pub fn source_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self
            .relations
            .iter()
            .filter(|r| r.is_source)
            .map(|r| r.topic.clone())
            .collect();
        topics.dedup();
        topics.sort();
        topics.dedup();
        topics
    }

    /// Topics written by derived streams and tables.
    pub fn output_topics(&self) -> Vec<&Relation> {
        self.relations.iter().filter(|r| !r.is_source).collect()
    }
}

/// Plans a parsed file.
pub fn plan(statements: &[Statement]) -> Result<Plan, SqlError> {
    let mut planner = Planner {
        relations: Vec::new(),
        queries: Vec::new(),
        by_name: HashMap::new(),
    };
    for (i, statement) in statements.iter().enumerate() {
        planner.statement(statement, i + 1).map_err(|e| SqlError {
            statement: i + 1,
            statement_head: statement.head.clone(),
            pos: e.pos,
            message: e.message,
        })?;
    }
    if planner.relations.is_empty() {
        return Err(SqlError {
            statement: 0,
            statement_head: "-".into(),
            pos: Pos { line: 1, col: 1 },
            message: "the file defines no stream or table".into(),
        });
    }
    Ok(Plan {
        relations: planner.relations,
        queries: planner.queries,
    })
}

struct Planner {
    relations: Vec<Relation>,
    queries: Vec<Query>,
    by_name: HashMap<String, usize>,
}

struct Properties {
    topic: Option<String>,
    value_format: Option<(String, Pos)>,
    key_format: Option<(String, Pos)>,
    partitions: Option<i32>,
    timestamp: Option<(String, Pos)>,
}

fn properties(props: &[ast::Property]) -> LResult<Properties> {
    let mut out = Properties {
        topic: None,
        value_format: None,
        key_format: None,
        partitions: None,
        timestamp: None,
    };
    for p in props {
        let text = || match &p.value {
            Literal::Str(s) => Ok(s.clone()),
            _ => Err(Located::new(
                p.pos,
                format!("{} needs a quoted value", p.name.name),
            )),
        };
        match p.name.name.as_str() {
            "KAFKA_TOPIC" => {
                let topic = text()?;
                if topic.is_empty() || !topic.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                    return Err(Located::new(p.pos, format!("invalid topic name {topic:?}")));
                }
                out.topic = Some(topic);
            }
            "VALUE_FORMAT" | "FORMAT" => out.value_format = Some((text()?.to_ascii_uppercase(), p.pos)),
            "KEY_FORMAT" => out.key_format = Some((text()?.to_ascii_uppercase(), p.pos)),
            "PARTITIONS" => match p.value {
                Literal::Int(n) if (1..=10_000).contains(&n) => out.partitions = Some(n as i32),
                _ => return Err(Located::new(p.pos, "PARTITIONS needs a whole number from 1 to 10000")),
            },
            "TIMESTAMP" => out.timestamp = Some((text()?.to_ascii_uppercase(), p.pos)),
            other => {
                return Err(Located::new(
                    p.pos,
                    format!("unsupported property {other}; supported: KAFKA_TOPIC, VALUE_FORMAT, KEY_FORMAT, PARTITIONS, TIMESTAMP"),
                ))
            }
        }
    }
    if let Some((format, pos)) = &out.value_format {
        if format != "JSON" {
            return Err(Located::new(
                *pos,
                format!("VALUE_FORMAT '{format}' is not supported; use 'JSON'"),
            ));
        }
    }
    Ok(out)
}

impl Planner {
    fn statement(&mut self, statement: &Statement, number: usize) -> LResult<()> {
        let relation = match &statement.kind {
            StatementKind::CreateSource {
                kind,
                name,
                columns,
                properties: props,
            } => self.source(*kind, name, columns, props, number, statement.pos)?,
            StatementKind::CreateAs {
                kind,
                name,
                properties: props,
                query,
            } => self.derived(*kind, name, props, query, number, statement.pos)?,
        };
        let lower = relation.name.to_ascii_uppercase();
        self.by_name.insert(lower, self.relations.len());
        self.relations.push(relation);
        Ok(())
    }

    fn check_new_name(&self, name: &Ident) -> LResult<()> {
        if let Some(existing) = self.by_name.get(&name.name.to_ascii_uppercase()) {
            return Err(Located::new(
                name.pos,
                format!(
                    "{} is already defined by statement {}",
                    name.name, self.relations[*existing].statement
                ),
            ));
        }
        Ok(())
    }

    fn source(
        &self,
        kind: RelationKind,
        name: &Ident,
        defs: &[ast::ColumnDef],
        props: &[ast::Property],
        number: usize,
        pos: Pos,
    ) -> LResult<Relation> {
        self.check_new_name(name)?;
        if kind == RelationKind::Table {
            return Err(Located::new(
                pos,
                "source tables are not supported; declare a STREAM and derive a TABLE from it",
            ));
        }
        let p = properties(props)?;
        let topic = p
            .topic
            .ok_or_else(|| Located::new(pos, "a source stream needs WITH (KAFKA_TOPIC='...')"))?;
        if p.value_format.is_none() {
            return Err(Located::new(
                pos,
                "a source stream needs WITH (VALUE_FORMAT='JSON')",
            ));
        }
        if let Some((_, kpos)) = p.key_format {
            return Err(Located::new(
                kpos,
                "KEY_FORMAT is not supported on source streams (keys are read as UTF-8 text)",
            ));
        }
        let mut columns: Vec<Column> = Vec::new();
        for d in defs {
            if columns.iter().any(|c| c.name == d.name.name) {
                return Err(Located::new(
                    d.name.pos,
                    format!("duplicate column {}", d.name.name),
                ));
            }
            if d.key && d.ty != SqlType::String {
                return Err(Located::new(
                    d.name.pos,
                    "a source KEY column must be VARCHAR",
                ));
            }
            columns.push(Column {
                name: d.name.name.clone(),
                ty: d.ty.clone(),
                key: d.key,
            });
        }
        if columns.iter().filter(|c| c.key).count() > 1 {
            return Err(Located::new(
                pos,
                "a source stream has at most one KEY column",
            ));
        }
        let timestamp_column = match p.timestamp {
            None => None,
            Some((col, tpos)) => match columns.iter().find(|c| c.name == col) {
                Some(c) if c.ty == SqlType::Bigint || c.ty == SqlType::String => Some(col),
                Some(c) => return Err(Located::new(tpos, format!("TIMESTAMP column {col} must be BIGINT (epoch ms) or VARCHAR (ISO-8601), not {}", c.ty))),
                None => return Err(Located::new(tpos, format!("TIMESTAMP names unknown column {col}"))),
            },
        };
        Ok(Relation {
            name: name.name.clone(),
            kind,
            topic,
            columns,
            key_format: KeyFormat::None,
            window: None,
            is_source: true,
            partitions: p.partitions,
            timestamp_column,
            statement: number,
            line: pos.line,
        })
    }

    fn derived(
        &mut self,
        kind: RelationKind,
        name: &Ident,
        props: &[ast::Property],
        select: &ast::Select,
        number: usize,
        pos: Pos,
    ) -> LResult<Relation> {
        self.check_new_name(name)?;
        let p = properties(props)?;
        if let Some((_, tpos)) = p.timestamp {
            return Err(Located::new(
                tpos,
                "TIMESTAMP is only supported on source streams",
            ));
        }
        let input = *self
            .by_name
            .get(&select.from.name.to_ascii_uppercase())
            .ok_or_else(|| {
                let known: Vec<&str> = self.relations.iter().map(|r| r.name.as_str()).collect();
                Located::new(
                    select.from.pos,
                    format!(
                        "unknown stream {}; defined so far: {}",
                        select.from.name,
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
            })?;
        if self.relations[input].kind == RelationKind::Table {
            return Err(Located::new(
                select.from.pos,
                format!(
                    "{} is a TABLE; queries over tables are not supported",
                    select.from.name
                ),
            ));
        }
        let topic = p
            .topic
            .clone()
            .unwrap_or_else(|| name.name.to_ascii_uppercase());
        let mut relation = Relation {
            name: name.name.clone(),
            kind,
            topic,
            columns: Vec::new(),
            key_format: KeyFormat::None,
            window: None,
            is_source: false,
            partitions: p.partitions,
            timestamp_column: None,
            statement: number,
            line: pos.line,
        };
        let query = match kind {
            RelationKind::Stream => {
                if let Some((_, kpos)) = p.key_format {
                    return Err(Located::new(
                        kpos,
                        "KEY_FORMAT applies to tables; derived streams have no key",
                    ));
                }
                Query::Stream(self.stream_query(
                    select,
                    input,
                    self.relations.len(),
                    &mut relation,
                )?)
            }
            RelationKind::Table => {
                relation.key_format = match p.key_format {
                    None => KeyFormat::Kafka,
                    Some((f, _)) if f == "KAFKA" => KeyFormat::Kafka,
                    Some((f, _)) if f == "JSON" => KeyFormat::Json,
                    Some((f, kpos)) => {
                        return Err(Located::new(
                            kpos,
                            format!("KEY_FORMAT '{f}' is not supported; use 'KAFKA' or 'JSON'"),
                        ))
                    }
                };
                Query::Table(self.table_query(
                    select,
                    input,
                    self.relations.len(),
                    &mut relation,
                )?)
            }
        };
        self.queries.push(query);
        Ok(relation)
    }

    fn stream_query(
        &self,
        select: &ast::Select,
        input: usize,
        output: usize,
        rel: &mut Relation,
    ) -> LResult<StreamQuery> {
        if select.window.is_some() {
            return Err(Located::new(
                select.pos,
                "WINDOW needs CREATE TABLE ... GROUP BY",
            ));
        }
        if let Some(g) = select.group_by.first() {
            return Err(Located::new(
                g.pos,
                "GROUP BY needs CREATE TABLE, not CREATE STREAM",
            ));
        }
        if let Some(h) = &select.having {
            return Err(Located::new(
                h.pos,
                "HAVING needs CREATE TABLE ... GROUP BY",
            ));
        }
        let source = &self.relations[input];
        let mut scope = RowScope { relation: source };
        let filter = where_clause(select, &mut scope)?;
        let mut projection = Vec::new();
        let mut namer = Namer::default();
        for item in &select.items {
            match item {
                SelectItem::Star(_) => {
                    for (i, c) in source.columns.iter().enumerate() {
                        namer.add(rel, &c.name, c.ty.clone(), false, select.pos)?;
                        projection.push(CExpr::Column(i));
                    }
                }
                SelectItem::Expr { expr, alias } => {
                    let (c, ty) = compile(expr, &mut scope)?;
                    let name = namer.name_for(expr, alias.as_ref());
                    let ty = ty.ok_or_else(|| {
                        Located::new(
                            expr.pos,
                            "cannot infer the type of NULL; use CAST(NULL AS type)",
                        )
                    })?;
                    namer.add(
                        rel,
                        &name,
                        ty,
                        false,
                        alias.as_ref().map(|a| a.pos).unwrap_or(expr.pos),
                    )?;
                    projection.push(c);
                }
            }
        }
        Ok(StreamQuery {
            output,
            input,
            filter,
            projection,
        })
    }

    fn table_query(
        &self,
        select: &ast::Select,
        input: usize,
        output: usize,
        rel: &mut Relation,
    ) -> LResult<TableQuery> {
        if select.group_by.is_empty() {
            return Err(Located::new(
                select.pos,
                "CREATE TABLE ... AS SELECT needs GROUP BY",
            ));
        }
        let source = &self.relations[input];
        let mut scope = RowScope { relation: source };
        let filter = where_clause(select, &mut scope)?;
        let mut group_by = Vec::new();
        let mut key_types = Vec::new();
        for g in &select.group_by {
            let (c, ty) = compile(g, &mut scope)?;
            let ty = ty.ok_or_else(|| Located::new(g.pos, "cannot GROUP BY NULL"))?;
            if matches!(ty, SqlType::Struct(_)) {
                return Err(Located::new(g.pos, "cannot GROUP BY a STRUCT"));
            }
            group_by.push(c);
            key_types.push(ty);
        }
        if group_by.len() > 1 && rel.key_format == KeyFormat::Kafka {
            return Err(Located::new(
                select.group_by[1].pos,
                "grouping by several columns needs WITH (KEY_FORMAT='JSON'): the KAFKA key format holds one column",
            ));
        }
        rel.window = select.window;
        let mut grouped = GroupedScope {
            input: source,
            group_by: &select.group_by,
            key_types: &key_types,
            aggregates: Vec::new(),
            windowed: select.window.is_some(),
        };
        let mut projection = Vec::new();
        let mut namer = Namer::default();
        let mut keys_seen = vec![false; group_by.len()];
        for item in &select.items {
            let SelectItem::Expr { expr, alias } = item else {
                let SelectItem::Star(p) = item else {
                    unreachable!()
                };
                return Err(Located::new(
                    *p,
                    "SELECT * is not allowed in an aggregate query",
                ));
            };
            let key_index = select.group_by.iter().position(|g| g.same_as(expr));
            let (c, ty) = compile(expr, &mut grouped)?;
            let ty = ty.ok_or_else(|| {
                Located::new(
                    expr.pos,
                    "cannot infer the type of NULL; use CAST(NULL AS type)",
                )
            })?;
            let name = namer.name_for(expr, alias.as_ref());
            let is_key = key_index.is_some_and(|k| !keys_seen[k]);
            if let Some(k) = key_index {
                keys_seen[k] = true;
            }
            namer.add(
                rel,
                &name,
                ty,
                is_key,
                alias.as_ref().map(|a| a.pos).unwrap_or(expr.pos),
            )?;
            projection.push(c);
        }
        if let Some(missing) = keys_seen.iter().position(|seen| !seen) {
            return Err(Located::new(
                select.group_by[missing].pos,
                "every GROUP BY expression must also appear in the SELECT list (it becomes the table's key)",
            ));
        }
        let having = select
            .having
            .as_ref()
            .map(|h| condition(h, &mut grouped, "HAVING"))
            .transpose()?;
        let grace_ms = match select.window {
            Some(WindowDef::Tumbling { grace_ms, .. })
            | Some(WindowDef::Hopping { grace_ms, .. }) => grace_ms.unwrap_or(DEFAULT_GRACE_MS),
            None => 0,
        };
        Ok(TableQuery {
            output,
            input,
            filter,
            group_by,
            aggregates: grouped.aggregates,
            projection,
            having,
            window: select.window,
            grace_ms,
        })
    }
}

fn where_clause(select: &ast::Select, scope: &mut RowScope<'_>) -> LResult<Option<CExpr>> {
    select
        .filter
        .as_ref()
        .map(|f| condition(f, scope, "WHERE"))
        .transpose()
}

fn condition(expr: &Expr, scope: &mut dyn Resolver, clause: &str) -> LResult<CExpr> {
    let (c, ty) = compile(expr, scope)?;
    match ty {
        Some(SqlType::Boolean) | None => Ok(c),
        Some(other) => Err(Located::new(
            expr.pos,
            format!("{clause} needs a BOOLEAN condition, found {other}"),
        )),
    }
}

/// Output column names: alias, column or field name, else KSQL_COL_n.
#[derive(Default)]
struct Namer {
    generated: usize,
}

impl Namer {
    fn name_for(&mut self, expr: &Expr, alias: Option<&Ident>) -> String {
        if let Some(a) = alias {
            return a.name.clone();
        }
        match &expr.kind {
            ExprKind::Column(c) => c.name.clone(),
            ExprKind::Field(_, f) => f.name.clone(),
            _ => {
                let name = format!("KSQL_COL_{}", self.generated);
                self.generated += 1;
                name
            }
        }
    }

    fn add(&self, rel: &mut Relation, name: &str, ty: SqlType, key: bool, pos: Pos) -> LResult<()> {
        if rel.columns.iter().any(|c| c.name == name) {
            return Err(Located::new(
                pos,
                format!("duplicate output column {name}; add an alias with AS"),
            ));
        }
        rel.columns.push(Column {
            name: name.to_string(),
            ty,
            key,
        });
        Ok(())
    }
}

/// Names of the input row, plus ROWTIME.
struct RowScope<'a> {
    relation: &'a Relation,
}

impl Resolver for RowScope<'_> {
    fn column(&mut self, name: &Ident) -> LResult<Compiled> {
        if let Some(i) = self.relation.column_index(&name.name) {
            return Ok((CExpr::Column(i), Some(self.relation.columns[i].ty.clone())));
        }
        match name.name.as_str() {
            "ROWTIME" => Ok((CExpr::RowTime, Some(SqlType::Bigint))),
            "WINDOWSTART" | "WINDOWEND" => Err(Located::new(
                name.pos,
                format!("{} is only available in windowed tables", name.name),
            )),
            _ => {
                let names: Vec<&str> = self
                    .relation
                    .columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect();
                Err(Located::new(
                    name.pos,
                    format!(
                        "unknown column {} in {}; columns: {}",
                        name.name,
                        self.relation.name,
                        names.join(", ")
                    ),
                ))
            }
        }
    }

    fn intercept(&mut self, _: &Expr) -> Option<LResult<Compiled>> {
        None
    }
}

/// Names visible after GROUP BY: the grouping expressions, aggregates, and
/// WINDOWSTART/WINDOWEND for windowed tables.
struct GroupedScope<'a> {
    input: &'a Relation,
    group_by: &'a [Expr],
    key_types: &'a [SqlType],
    aggregates: Vec<AggregateCall>,
    windowed: bool,
}

impl Resolver for GroupedScope<'_> {
    fn column(&mut self, name: &Ident) -> LResult<Compiled> {
        match name.name.as_str() {
            "WINDOWSTART" | "WINDOWEND" if self.input.column_index(&name.name).is_none() => {
                if !self.windowed {
                    return Err(Located::new(
                        name.pos,
                        format!("{} needs a WINDOW clause", name.name),
                    ));
                }
                let slot = if name.name == "WINDOWSTART" { 0 } else { 1 };
                Ok((CExpr::Column(slot), Some(SqlType::Bigint)))
            }
            _ if self.input.column_index(&name.name).is_some() => Err(Located::new(
                name.pos,
                format!(
                    "column {} must be in GROUP BY or inside an aggregate function",
                    name.name
                ),
            )),
            _ => RowScope {
                relation: self.input,
            }
            .column(name),
        }
    }

    fn intercept(&mut self, expr: &Expr) -> Option<LResult<Compiled>> {
        if let Some(k) = self.group_by.iter().position(|g| g.same_as(expr)) {
            return Some(Ok((
                CExpr::Column(TableQuery::key_slot(k)),
                Some(self.key_types[k].clone()),
            )));
        }
        let ExprKind::Call { name, args, star } = &expr.kind else {
            return None;
        };
        let func = AggFunc::from_name(&name.name, *star)?;
        Some(self.aggregate(func, name, args))
    }
}

impl GroupedScope<'_> {
    fn aggregate(&mut self, func: AggFunc, name: &Ident, args: &[Expr]) -> LResult<Compiled> {
        let (arg, arg_type) = match (func, args) {
            (AggFunc::CountStar, []) => (None, None),
            (AggFunc::CountStar, _) => unreachable!("COUNT(*) has no arguments"),
            (_, [a]) => {
                let mut row = RowScope {
                    relation: self.input,
                };
                let (c, t) = compile(a, &mut row)?;
                let t = t.ok_or_else(|| {
                    Located::new(a.pos, format!("{}(NULL) has no type", name.name))
                })?;
                let ok = match func {
                    AggFunc::Sum | AggFunc::Avg => t.is_numeric(),
                    AggFunc::Min | AggFunc::Max => t.is_numeric() || t == SqlType::String,
                    _ => !matches!(t, SqlType::Struct(_)),
                };
                if !ok {
                    return Err(Located::new(
                        a.pos,
                        format!("{} does not accept {t}", name.name),
                    ));
                }
                (Some(c), Some(t))
            }
            _ => {
                return Err(Located::new(
                    name.pos,
                    format!("{} takes one argument", name.name),
                ))
            }
        };
        let out_type = match func {
            AggFunc::CountStar | AggFunc::Count => SqlType::Bigint,
            AggFunc::Avg => SqlType::Double,
            _ => arg_type.clone().expect("one-argument aggregate"),
        };
        let slot = 2 + self.group_by.len() + self.aggregates.len();
        self.aggregates.push(AggregateCall {
            func,
            arg,
            arg_type,
        });
        Ok((CExpr::Column(slot), Some(out_type)))
    }
}

/// What `check` prints: the catalog as JSON, or the readable plan with a summary.
pub fn check_report(plan: &Plan, json: bool) -> String {
    if json {
        serde_json::to_string_pretty(&plan.relations).expect("the catalog serialises")
    } else {
        format!(
            "{}{} streams, {} tables: OK",
            describe(plan),
            plan.streams().count(),
            plan.tables().count()
        )
    }
}

/// Human-readable plan, for `stream-sql check`.
pub fn describe(plan: &Plan) -> String {
    let mut out = String::new();
    for r in &plan.relations {
        let kind = match r.kind {
            RelationKind::Stream if r.is_source => "SOURCE STREAM",
            RelationKind::Stream => "STREAM",
            RelationKind::Table => "TABLE",
        };
        out.push_str(&format!(
            "{kind} {}  (statement {}, line {})\n",
            r.name, r.statement, r.line
        ));
        out.push_str(&format!("  topic: {}", r.topic));
        if r.is_source {
            out.push_str(" (read)");
        } else {
            out.push_str(" (written)");
        }
        out.push('\n');
        if r.kind == RelationKind::Table {
            let keys: Vec<&str> = r.key_columns().map(|c| c.name.as_str()).collect();
            out.push_str(&format!(
                "  key: {} ({:?} format)",
                keys.join(", "),
                r.key_format
            ));
            if let Some(w) = &r.window {
                match w {
                    WindowDef::Tumbling { size_ms, .. } => {
                        out.push_str(&format!(", windowed: TUMBLING {} ms", size_ms))
                    }
                    WindowDef::Hopping {
                        size_ms,
                        advance_ms,
                        ..
                    } => out.push_str(&format!(
                        ", windowed: HOPPING {} ms advancing {} ms",
                        size_ms, advance_ms
                    )),
                }
            }
            out.push('\n');
        }
        if let Some(ts) = &r.timestamp_column {
            out.push_str(&format!("  event time: column {ts}\n"));
        }
        for c in &r.columns {
            let key = if c.key { "  KEY" } else { "" };
            out.push_str(&format!("    {:<28} {}{key}\n", c.name, c.ty));
        }
    }
    out
}
