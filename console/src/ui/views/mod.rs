//! Views are pure: `render(frame, &app, now)` draws the state as it is,
//! reading nothing else. Each view is a table (filtered by `/`, with the
//! selected row marked by `›` as well as by colour) and the frame around it
//! (title, tabs, freshness, the bottom line).

pub mod catalog;
pub mod lag;
pub mod lake;
pub mod logs;
pub mod overview;
pub mod warehouse;

use chrono::{DateTime, Utc};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table};
use ratatui::Frame;

use super::actions::{Modal, FIELD_LABELS};
use super::app::{App, Prompt, View};
use super::keys::HELP;
use crate::status::SourceKind;

/// A view's table: column titles and widths, and rows of text.
pub struct TableData {
    pub title: String,
    pub columns: Vec<(&'static str, Constraint)>,
    pub rows: Vec<Vec<String>>,
}

impl TableData {
    /// Only the rows containing the filter (any case).
    pub fn filtered(mut self, filter: &str) -> Self {
        if !filter.is_empty() {
            let needle = filter.to_lowercase();
            self.rows
                .retain(|row| row.iter().any(|cell| cell.to_lowercase().contains(&needle)));
        }
        self
    }
}

fn table_for(app: &App, now: DateTime<Utc>) -> TableData {
    let table = match app.view {
        View::Overview => overview::table(app, now),
        View::Lag => lag::table(app, now),
        View::Lake => lake::table(app, now),
        View::Warehouse => warehouse::table(app, now),
        View::Catalog => catalog::table(app),
        View::Logs => logs::table(app),
    };
    table.filtered(&app.filter)
}

/// The first cell of the selected row (a stream or relation name).
pub fn selected_name(app: &App, now: DateTime<Utc>) -> Option<String> {
    table_for(app, now)
        .rows
        .get(app.selected)
        .and_then(|row| row.first().cloned())
}

pub fn row_count(app: &App, now: DateTime<Utc>) -> usize {
    table_for(app, now).rows.len()
}

pub fn render(frame: &mut Frame, app: &App, now: DateTime<Utc>) {
    let [header, tabs, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(title_line(app, now)), header);
    frame.render_widget(Paragraph::new(tab_line(app)), tabs);

    let body = if app.view == View::Overview {
        let summary_height = overview::SUMMARY_LINES.min(body.height.saturating_sub(4));
        let [table_area, summary] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(summary_height)]).areas(body);
        overview::render_summary(frame, summary, app, now);
        table_area
    } else {
        body
    };
    render_table(frame, body, table_for(app, now), app.selected);
    frame.render_widget(Paragraph::new(bottom_line(app)), footer);
    if let Some(modal) = &app.modal {
        render_modal(frame, frame.area(), modal);
    }
    if app.help {
        render_help(frame, frame.area());
    }
}

fn popup(area: Rect, width: u16, height: u16) -> Rect {
    let (width, height) = (width.min(area.width), height.min(area.height));
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

fn render_modal(frame: &mut Frame, area: Rect, modal: &Modal) {
    let (title, lines): (&str, Vec<Line>) = match modal {
        Modal::ProducerForm(form) => {
            let mut lines: Vec<Line> = FIELD_LABELS
                .iter()
                .zip(&form.fields)
                .enumerate()
                .map(|(i, (label, value))| {
                    let (marker, cursor) = if i == form.focus {
                        ("›", "▏")
                    } else {
                        (" ", "")
                    };
                    Line::from(format!("{marker} {label:<44} {value}{cursor}"))
                })
                .collect();
            lines.push(Line::from(""));
            lines.push(Line::from(match &form.error {
                Some(e) => format!("✗ {e}"),
                None => "Tab/↑↓ field  Enter start  Esc cancel".into(),
            }));
            (" producer run ", lines)
        }
        Modal::ConfirmProducer(request) => (
            " start the producer? ",
            vec![
                Line::from(format!(
                    "send {} transactions to the broker at {}, {:.0}% malformed on purpose",
                    request.count,
                    request
                        .rate
                        .map(|r| format!("{r} records/s"))
                        .unwrap_or_else(|| "full speed".into()),
                    request.bad_ratio * 100.0
                )),
                Line::from(""),
                Line::from("y: start   n/Esc: cancel"),
            ],
        ),
        Modal::PurgePlanning => (" purge ", vec![Line::from("dry run under way…")]),
        Modal::ConfirmPurge(plan) => {
            let mut lines: Vec<Line> = plan.lines().map(|l| Line::from(l.to_string())).collect();
            lines.push(Line::from(""));
            lines.push(Line::from("y: delete these now   n/Esc: keep them"));
            (" purge: what the dry run would remove ", lines)
        }
        Modal::Purging => (" purge ", vec![Line::from("deleting…")]),
        Modal::PurgeResult(report) => {
            let mut lines: Vec<Line> = report.lines().map(|l| Line::from(l.to_string())).collect();
            lines.push(Line::from(""));
            lines.push(Line::from("Enter/Esc: close"));
            (" purge ", lines)
        }
    };
    let width = lines
        .iter()
        .map(|l| l.width() as u16 + 4)
        .max()
        .unwrap_or(20)
        .max(title.len() as u16 + 4);
    let area = popup(area, width, lines.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}

/// A table's title, with the note that its source is stale if it is.
pub fn stale_title(app: &App, kind: SourceKind, now: DateTime<Utc>, title: &str) -> String {
    match app.stale_note(kind, now) {
        Some(note) => match note.strip_prefix("stale ") {
            Some(since) => format!("STALE {since} — {title}"),
            None => format!("STALE: {note} — {title}"),
        },
        None => title.to_string(),
    }
}

/// `live, read 1s ago` when every source is fresh; else which are stale.
fn freshness(app: &App, now: DateTime<Utc>) -> String {
    if app.freshness.is_empty() {
        return "collecting…".to_string();
    }
    let stale: Vec<String> = app
        .freshness
        .iter()
        .filter(|(_, f)| f.is_stale(now, app.refresh))
        .map(|(kind, f)| match f.read_at {
            Some(at) => format!("{} since {}", kind.name(), at.format("%H:%M:%S")),
            None => format!("{} never read", kind.name()),
        })
        .collect();
    if !stale.is_empty() {
        return format!("STALE: {}", stale.join(", "));
    }
    let oldest = app.freshness.values().filter_map(|f| f.read_at).min();
    match oldest {
        Some(at) => format!("live, read {}s ago", (now - at).num_seconds().max(0)),
        None => "collecting…".to_string(),
    }
}

/// The first source whose last attempt failed, and why.
fn failed_reading(app: &App) -> Option<String> {
    app.freshness
        .iter()
        .find_map(|(kind, f)| f.error.as_ref().map(|e| format!("{}: {e}", kind.name())))
}

fn title_line(app: &App, now: DateTime<Utc>) -> Line<'static> {
    let freshness = freshness(app, now);
    Line::from(vec![
        Span::styled("lakehouse ", Style::default().add_modifier(Modifier::BOLD)),
        Span::raw(format!("› {} — {freshness}", app.breadcrumb())),
    ])
}

fn tab_line(app: &App) -> Line<'static> {
    let mut spans = Vec::new();
    for (i, view) in View::ALL.iter().enumerate() {
        let text = format!(" {}:{} ", i + 1, view.name());
        if *view == app.view {
            spans.push(Span::styled(
                format!("[{}]", text.trim()),
                Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD),
            ));
        } else {
            spans.push(Span::raw(text));
        }
    }
    Line::from(spans)
}

fn bottom_line(app: &App) -> Line<'static> {
    match &app.prompt {
        Prompt::Filter(text) => Line::from(format!("/{text}▏")),
        Prompt::Command(text) => Line::from(format!(":{text}▏")),
        Prompt::None => match (&app.message, failed_reading(app)) {
            (Some(message), _) => Line::from(message.clone()),
            (None, Some(error)) => Line::from(format!("last reading failed: {error}")),
            (None, None) if app.producer.is_some() => {
                Line::from(app.producer.as_ref().map(|p| p.line()).unwrap_or_default())
            }
            (None, None) => {
                let filter = if app.filter.is_empty() {
                    String::new()
                } else {
                    format!("filter /{}  ", app.filter)
                };
                Line::from(format!(
                    "{filter}?: keys  Tab: next view  {}",
                    app.quit_hint
                ))
            }
        },
    }
}

fn render_table(frame: &mut Frame, area: Rect, data: TableData, selected: usize) {
    let widths: Vec<Constraint> = data.columns.iter().map(|(_, w)| *w).collect();
    let header = Row::new(std::iter::once("").chain(data.columns.iter().map(|(name, _)| *name)))
        .style(Style::default().add_modifier(Modifier::BOLD));
    let rows: Vec<Row> = data
        .rows
        .into_iter()
        .enumerate()
        .map(|(i, cells)| {
            let marker = if i == selected { "›" } else { " " };
            let row = Row::new(std::iter::once(marker.to_string()).chain(cells));
            if i == selected {
                row.style(Style::default().add_modifier(Modifier::REVERSED))
            } else {
                row
            }
        })
        .collect();
    let count = rows.len();
    let mut all_widths = vec![Constraint::Length(1)];
    all_widths.extend(widths);
    // Keep the selected row in sight in a short area.
    let visible = area.height.saturating_sub(3) as usize;
    let skip = if visible > 0 && selected >= visible {
        selected + 1 - visible
    } else {
        0
    };
    let rows: Vec<Row> = rows.into_iter().skip(skip).collect();
    let table = Table::new(rows, all_widths).header(header).block(
        Block::default()
            .borders(Borders::ALL)
            .title(format!(" {} ({count}) ", data.title)),
    );
    frame.render_widget(table, area);
}

fn render_help(frame: &mut Frame, area: Rect) {
    let popup = popup(area, 78, HELP.len() as u16 + 2);
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(keys, what)| Line::from(format!(" {keys:<21} {what}")))
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" keys (Esc or ? closes) "),
        ),
        popup,
    );
}

/// `1.2 k`, `3.4 M`: short numbers for narrow columns.
pub fn short_number(n: f64) -> String {
    let a = n.abs();
    if a >= 1e9 {
        format!("{:.1} G", n / 1e9)
    } else if a >= 1e6 {
        format!("{:.1} M", n / 1e6)
    } else if a >= 1e4 {
        format!("{:.1} k", n / 1e3)
    } else {
        format!("{}", n.round() as i64)
    }
}

/// A duration in milliseconds, short: `340ms`, `3.0s`, `5m`.
pub fn short_millis(ms: i64) -> String {
    if ms >= 120_000 {
        format!("{}m", ms / 60_000)
    } else if ms >= 1_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

pub fn short_bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} GiB", n / (1024.0 * 1024.0 * 1024.0))
    } else if n >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / (1024.0 * 1024.0))
    } else if n >= 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else {
        format!("{n} B")
    }
}
