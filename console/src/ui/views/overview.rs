//! Overview: each component's health (state in words and a symbol, not
//! colour alone), restarts, records/s in and out over the last minute, lag
//! and its last error; under it the totals: lag with its trend, the lake,
//! the warehouse, dead letters and the sinks' p95 landing latency.

use chrono::{DateTime, Utc};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline};
use ratatui::Frame;

use super::{short_bytes, short_millis, short_number, TableData};
use crate::status::{ComponentState, ComponentStatus};
use crate::ui::app::App;

pub const SUMMARY_LINES: u16 = 7;

pub fn state_words(c: &ComponentStatus) -> String {
    match c.state {
        ComponentState::Running => "● running".into(),
        ComponentState::Stopped => "○ stopped".into(),
        ComponentState::Unreachable => "✗ down".into(),
        ComponentState::Restarting => format!("↻ restarting {}", c.restarts.unwrap_or(0)),
        ComponentState::Failed => "✗ FAILED".into(),
    }
}

/// The last `width` values as bars (`▁` to `█`, relative to their maximum).
pub fn spark(values: &[u64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let values = &values[values.len().saturating_sub(width)..];
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|v| match max {
            0 => BARS[0],
            max => BARS[((*v * 7).div_ceil(max)) as usize],
        })
        .collect()
}

pub fn table(app: &App, now: DateTime<Utc>) -> TableData {
    let rows = app
        .status
        .iter()
        .flat_map(|report| report.components.iter())
        .map(|(name, c)| {
            let rates = app
                .rates
                .per_second(name)
                .map(|(i, o)| format!("{} / {}", short_number(i), short_number(o)))
                .unwrap_or_else(|| "-".into());
            let problem = match (&c.last_error, c.last_error_at, &c.detail) {
                (Some(e), Some(at), _) => format!("{} {e}", at.format("%H:%M:%S")),
                (Some(e), None, _) => e.clone(),
                (None, _, Some(d)) if c.state != ComponentState::Running => d.clone(),
                _ => c.endpoint.clone(),
            };
            let problem = match app.down_since.get(name) {
                Some(since) => format!("since {}: {problem}", since.format("%H:%M:%S")),
                None => problem,
            };
            // A stale source's component keeps its last state, marked.
            let (state, problem) = match app.stale_note(App::source_of(name), now) {
                Some(note) => ("? stale".to_string(), format!("{}, {note}", state_words(c))),
                None => (state_words(c), problem),
            };
            vec![
                name.replace('_', "-"),
                state,
                c.restarts.map(|r| r.to_string()).unwrap_or_default(),
                rates,
                spark(&app.rates.out_steps(name), 8),
                c.lag.map(|l| short_number(l as f64)).unwrap_or_default(),
                problem,
            ]
        })
        .collect();
    TableData {
        title: "components".into(),
        columns: vec![
            ("component", Constraint::Length(11)),
            ("state", Constraint::Length(14)),
            ("rst", Constraint::Length(3)),
            ("in/out per s", Constraint::Length(13)),
            ("out, 1 min", Constraint::Length(10)),
            ("lag", Constraint::Length(7)),
            ("last error or endpoint", Constraint::Min(10)),
        ],
        rows,
    }
}

pub fn render_summary(frame: &mut Frame, area: Rect, app: &App, now: DateTime<Utc>) {
    if area.height < 3 {
        return;
    }
    let block = Block::default().borders(Borders::ALL).title(" totals ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [text_area, trend_area] =
        Layout::horizontal([Constraint::Min(40), Constraint::Percentage(30)]).areas(inner);
    let Some(report) = &app.status else {
        frame.render_widget(Paragraph::new("no reading yet"), text_area);
        return;
    };
    let groups = app.lag.groups(now);
    let total_lag: i64 = groups.iter().map(|(_, _, lag)| lag).sum();
    let group_words: Vec<String> = groups
        .iter()
        .map(|(group, status, _)| {
            format!(
                "{} {}",
                group.trim_start_matches("lakehouse_"),
                status.word()
            )
        })
        .collect();
    let lake_rows: u64 = report.lake.iter().map(|t| t.rows).sum();
    let lake_bytes: u64 = report.lake.iter().map(|t| t.bytes).sum();
    let newest = report
        .lake
        .iter()
        .filter_map(|t| t.newest_file_age_secs)
        .min()
        .map(|s| format!("{s}s ago"))
        .unwrap_or_else(|| "none".into());
    let lake_dead_letters: u64 = report.lake.iter().map(|t| t.dead_letters).sum();
    let stream_sql_dead_letters = report
        .stream_sql_dlq
        .as_ref()
        .and_then(|t| t.records)
        .unwrap_or(0);
    let warehouse_dead_letters: u64 = report.warehouse.iter().map(|t| t.dead_letters).sum();
    let warehouse_rows: i64 = report.warehouse.iter().map(|t| t.rows).sum();
    let landing_p95 = |sink: &str| {
        report
            .components
            .get(sink)
            .and_then(|c| c.counters.as_ref())
            .and_then(|n| n.latency_p95_ms)
            .map(short_millis)
            .unwrap_or_else(|| "-".into())
    };
    let lines = vec![
        Line::from(format!(
            "lag {}  {}",
            short_number(total_lag as f64),
            group_words.join("  ")
        )),
        Line::from(format!(
            "lake {} streams, {} rows, {}, newest file {newest}",
            report.lake.len(),
            short_number(lake_rows as f64),
            short_bytes(lake_bytes)
        )),
        Line::from(format!(
            "warehouse {} tables, {} rows",
            report.warehouse.len(),
            short_number(warehouse_rows as f64)
        )),
        Line::from(format!(
            "dead letters: lake {lake_dead_letters}, stream SQL {stream_sql_dead_letters}, warehouse {warehouse_dead_letters}"
        )),
        Line::from(format!(
            "landing p95 (last minute): lake {}, warehouse {}",
            landing_p95("lake_sink"),
            landing_p95("table_sink")
        )),
    ];
    frame.render_widget(Paragraph::new(lines), text_area);
    let totals = app.lag.totals();
    frame.render_widget(
        Sparkline::default()
            .block(Block::default().title("lag"))
            .data(totals),
        trend_area,
    );
}
