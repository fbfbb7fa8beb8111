//! Warehouse: per table the table sink keeps, its rows and last update.

use ratatui::layout::Constraint;

use super::TableData;
use crate::ui::app::App;

pub fn table(app: &App) -> TableData {
    let rows = app
        .status
        .value
        .iter()
        .flat_map(|r| r.warehouse.iter())
        .map(|t| {
            vec![
                t.table.clone(),
                t.rows.to_string(),
                t.last_update.clone().unwrap_or_else(|| "never".into()),
            ]
        })
        .collect();
    TableData {
        title: "warehouse tables".into(),
        columns: vec![
            ("table", Constraint::Min(20)),
            ("rows", Constraint::Length(12)),
            ("last update (UTC)", Constraint::Length(32)),
        ],
        rows,
    }
}
