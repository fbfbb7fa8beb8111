//! Lake: per stream, its date partitions, files, rows, bytes, oldest and
//! newest partition and dead letters; Enter shows one stream's dates.

use ratatui::layout::Constraint;

use chrono::{DateTime, Utc};

use super::{short_bytes, stale_title, TableData};
use crate::status::SourceKind;
use crate::ui::app::App;

pub fn table(app: &App, now: DateTime<Utc>) -> TableData {
    if let (Some(stream), Some(date)) = (&app.drilled, app.drilled_date) {
        return TableData {
            title: stale_title(
                app,
                SourceKind::Lake,
                now,
                &format!("{stream} on {date}: files"),
            ),
            columns: vec![
                ("file", Constraint::Min(20)),
                ("part", Constraint::Length(5)),
                ("offsets", Constraint::Length(17)),
                ("rows", Constraint::Length(10)),
                ("bytes", Constraint::Length(10)),
            ],
            rows: app
                .lake_files
                .iter()
                .map(|f| {
                    vec![
                        f.name.clone(),
                        f.partition.to_string(),
                        format!("{}–{}", f.first_offset, f.last_offset),
                        f.rows.to_string(),
                        short_bytes(f.bytes),
                    ]
                })
                .collect(),
        };
    }
    if let Some(stream) = &app.drilled {
        let dates = app
            .status
            .iter()
            .flat_map(|r| r.lake.iter())
            .find(|t| &t.topic == stream)
            .map(|t| t.dates.clone())
            .unwrap_or_default();
        return TableData {
            title: stale_title(
                app,
                SourceKind::Lake,
                now,
                &format!("{stream}: ingestion_date partitions (Enter: files)"),
            ),
            columns: vec![
                ("ingestion_date", Constraint::Length(14)),
                ("files", Constraint::Length(7)),
                ("rows", Constraint::Length(12)),
                ("bytes", Constraint::Min(10)),
            ],
            rows: dates
                .iter()
                .rev()
                .map(|d| {
                    vec![
                        d.date.to_string(),
                        d.files.to_string(),
                        d.rows.to_string(),
                        short_bytes(d.bytes),
                    ]
                })
                .collect(),
        };
    }
    let rows = app
        .status
        .iter()
        .flat_map(|r| r.lake.iter())
        .map(|t| {
            vec![
                t.topic.clone(),
                t.partitions.to_string(),
                t.files.to_string(),
                t.rows.to_string(),
                short_bytes(t.bytes),
                t.oldest_date.map(|d| d.to_string()).unwrap_or_default(),
                t.newest_date.map(|d| d.to_string()).unwrap_or_default(),
                t.dead_letters.to_string(),
            ]
        })
        .collect();
    TableData {
        title: stale_title(app, SourceKind::Lake, now, "lake streams (Enter: dates)"),
        columns: vec![
            ("stream", Constraint::Min(16)),
            ("days", Constraint::Length(4)),
            ("files", Constraint::Length(5)),
            ("rows", Constraint::Length(8)),
            ("bytes", Constraint::Length(9)),
            ("oldest", Constraint::Length(10)),
            ("newest", Constraint::Length(10)),
            ("dlq", Constraint::Length(3)),
        ],
        rows,
    }
}
