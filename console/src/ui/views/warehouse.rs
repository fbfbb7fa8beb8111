//! Warehouse: per table the table sink keeps, its rows, last update and
//! the dead letters of its topic.

use chrono::{DateTime, Utc};
use ratatui::layout::Constraint;

use super::{stale_title, TableData};
use crate::status::SourceKind;
use crate::ui::app::App;

pub fn table(app: &App, now: DateTime<Utc>) -> TableData {
    let rows = app
        .status
        .iter()
        .flat_map(|r| r.warehouse.iter())
        .map(|t| {
            vec![
                t.table.clone(),
                t.rows.to_string(),
                t.last_update.clone().unwrap_or_else(|| "never".into()),
                t.dead_letters.to_string(),
            ]
        })
        .collect();
    TableData {
        title: stale_title(app, SourceKind::Postgres, now, "warehouse tables"),
        columns: vec![
            ("table", Constraint::Min(20)),
            ("rows", Constraint::Length(12)),
            ("last update (UTC)", Constraint::Length(22)),
            ("dead letters", Constraint::Length(12)),
        ],
        rows,
    }
}
