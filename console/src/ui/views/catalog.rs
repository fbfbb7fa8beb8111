//! Catalog: the statement file's streams and tables with their topics,
//! keys and columns; Enter shows one relation's columns.

use lakehouse_streamsql::ast::RelationKind;
use ratatui::layout::Constraint;

use super::TableData;
use crate::ui::app::App;

pub fn table(app: &App) -> TableData {
    let relations = match &app.catalog {
        Some(Ok(relations)) => relations.as_slice(),
        Some(Err(e)) => {
            return TableData {
                title: format!("catalog: {e}"),
                columns: vec![("", Constraint::Min(1))],
                rows: Vec::new(),
            }
        }
        None => &[],
    };
    if let Some(name) = &app.drilled {
        let columns = relations
            .iter()
            .find(|r| &r.name == name)
            .map(|r| r.columns.clone())
            .unwrap_or_default();
        return TableData {
            title: format!("{name}: columns"),
            columns: vec![
                ("column", Constraint::Min(20)),
                ("type", Constraint::Length(12)),
                ("in", Constraint::Length(6)),
            ],
            rows: columns
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        c.ty.to_string(),
                        if c.key { "key" } else { "value" }.to_string(),
                    ]
                })
                .collect(),
        };
    }
    let rows = relations
        .iter()
        .map(|r| {
            let kind = match r.kind {
                RelationKind::Stream if r.is_source => "source",
                RelationKind::Stream => "stream",
                RelationKind::Table if r.window.is_some() => "table·w",
                RelationKind::Table => "table",
            };
            let keys: Vec<&str> = r.key_columns().map(|c| c.name.as_str()).collect();
            vec![
                r.name.clone(),
                kind.to_string(),
                r.topic.clone(),
                keys.join(", "),
                r.columns.len().to_string(),
                r.line.to_string(),
            ]
        })
        .collect();
    TableData {
        title: "statement file (Enter: columns; table·w: windowed)".into(),
        columns: vec![
            ("name", Constraint::Min(26)),
            ("kind", Constraint::Length(7)),
            ("topic", Constraint::Min(14)),
            ("key", Constraint::Length(12)),
            ("cols", Constraint::Length(4)),
            ("line", Constraint::Length(4)),
        ],
        rows,
    }
}
