//! Lag: per consumer group, topic and partition, the committed and end
//! offsets, lag, consumption rate, time to catch up and the Burrow status.

use chrono::{DateTime, Utc};
use ratatui::layout::Constraint;

use super::{short_number, stale_title, TableData};
use crate::status::SourceKind;
use crate::ui::app::App;

fn duration_words(secs: f64) -> String {
    let secs = secs.round() as u64;
    match secs {
        0 => "caught up".into(),
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

pub fn table(app: &App, now: DateTime<Utc>) -> TableData {
    let rows = app
        .lag
        .rows(now)
        .into_iter()
        .map(|row| {
            vec![
                row.key.group.trim_start_matches("lakehouse_").to_string(),
                row.key.topic.clone(),
                row.key.partition.to_string(),
                row.committed
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                row.end.to_string(),
                short_number(row.lag as f64),
                row.rate
                    .map(|r| format!("{}/s", short_number(r)))
                    .unwrap_or_else(|| "-".into()),
                row.catch_up_secs.map(duration_words).unwrap_or_else(|| {
                    if row.lag > 0 {
                        "never".into()
                    } else {
                        "-".into()
                    }
                }),
                row.status.word().to_string(),
            ]
        })
        .collect();
    TableData {
        title: stale_title(
            app,
            SourceKind::Broker,
            now,
            "consumer lag (Burrow rules over the last 10 commits)",
        ),
        columns: vec![
            ("group", Constraint::Length(11)),
            ("topic", Constraint::Min(12)),
            ("p", Constraint::Length(2)),
            ("committed", Constraint::Length(9)),
            ("end", Constraint::Length(9)),
            ("lag", Constraint::Length(7)),
            ("rate", Constraint::Length(8)),
            ("catch up", Constraint::Length(9)),
            ("status", Constraint::Length(6)),
        ],
        rows,
    }
}
