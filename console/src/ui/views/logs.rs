//! Logs: the components with a log folder; Enter shows the last lines of
//! one (followed: read again at every refresh); `/` filters the lines.

use ratatui::layout::Constraint;

use super::TableData;
use crate::ui::app::App;

pub fn table(app: &App) -> TableData {
    if let Some(component) = &app.drilled {
        let lines = match &app.log_tail {
            Some((name, lines)) if name == component => lines.clone(),
            _ => vec!["reading…".to_string()],
        };
        return TableData {
            title: format!("log/{component}/ (newest file, last lines, following)"),
            columns: vec![("line", Constraint::Min(10))],
            rows: lines.into_iter().map(|l| vec![l]).collect(),
        };
    }
    TableData {
        title: "logs (Enter: follow one)".into(),
        columns: vec![("component", Constraint::Min(20))],
        rows: app.log_folders.iter().map(|f| vec![f.clone()]).collect(),
    }
}
