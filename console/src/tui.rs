//! The console screen. Status is collected on a background thread so that a
//! slow component never freezes the screen; data older than a few seconds
//! is marked stale.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use lakehouse::Settings;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};
use ratatui::Frame;

use crate::status::{self, ComponentState, StatusReport};

const REFRESH: Duration = Duration::from_secs(2);
const STALE_AFTER: Duration = Duration::from_secs(6);

type Shared = Arc<Mutex<Option<(Instant, StatusReport)>>>;

/// Shows the console until the user quits or `tick` fails; `tick` runs
/// about four times a second on the calling thread.
pub fn run(
    settings: &Settings,
    quit_hint: &str,
    mut tick: impl FnMut() -> Result<()>,
) -> Result<()> {
    let shared: Shared = Arc::new(Mutex::new(None));
    spawn_refresher(settings.clone(), Arc::clone(&shared));
    let mut terminal = ratatui::init();
    let outcome = (|| -> Result<()> {
        loop {
            let snapshot = shared.lock().expect("status lock").clone();
            terminal.draw(|frame| draw(frame, snapshot.as_ref(), quit_hint))?;
            if event::poll(Duration::from_millis(250))? {
                if let Event::Key(key) = event::read()? {
                    if key.kind == KeyEventKind::Press
                        && matches!(key.code, KeyCode::Char('q') | KeyCode::Esc)
                    {
                        return Ok(());
                    }
                }
            }
            tick()?;
        }
    })();
    ratatui::restore();
    outcome
}

fn spawn_refresher(settings: Settings, shared: Shared) {
    std::thread::Builder::new()
        .name("status-refresh".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("status runtime");
            loop {
                let report = runtime.block_on(status::collect(&settings));
                *shared.lock().expect("status lock") = Some((Instant::now(), report));
                std::thread::sleep(REFRESH);
            }
        })
        .expect("spawn the status thread");
}

/// Draws one frame; separate from the loop so that it can be snapshot-tested.
pub fn draw(frame: &mut Frame, snapshot: Option<&(Instant, StatusReport)>, quit_hint: &str) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(frame.area());

    let title = match snapshot {
        None => "lakehouse — collecting status…".to_string(),
        Some((at, _)) if at.elapsed() > STALE_AFTER => {
            format!(
                "lakehouse — STALE: last update {}s ago",
                at.elapsed().as_secs()
            )
        }
        Some(_) => "lakehouse — live".to_string(),
    };
    frame.render_widget(
        Paragraph::new(title).style(Style::default().add_modifier(Modifier::BOLD)),
        header,
    );

    let mut rows = Vec::new();
    if let Some((_, report)) = snapshot {
        for (name, c) in &report.components {
            let (label, color) = match c.state {
                ComponentState::Running => ("running", Color::Green),
                ComponentState::Stopped => ("stopped", Color::Yellow),
                ComponentState::Unreachable => ("unreachable", Color::Red),
                ComponentState::Restarting => ("restarting", Color::Yellow),
                ComponentState::Failed => ("FAILED", Color::Red),
            };
            rows.push(
                Row::new(vec![
                    name.clone(),
                    label.to_string(),
                    c.pid.map(|p| p.to_string()).unwrap_or_default(),
                    c.endpoint.clone(),
                ])
                .style(Style::default().fg(color)),
            );
        }
        for t in &report.topics {
            let detail = match (t.partitions, t.records) {
                (Some(p), Some(r)) => format!("{p} partitions, {r} records"),
                _ => "unavailable".to_string(),
            };
            rows.push(Row::new(vec![
                format!("topic {}", t.name),
                String::new(),
                String::new(),
                detail,
            ]));
        }
    }
    let table = Table::new(
        rows,
        [
            Constraint::Length(22),
            Constraint::Length(12),
            Constraint::Length(8),
            Constraint::Min(20),
        ],
    )
    .header(
        Row::new(vec!["component", "state", "pid", "endpoint"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(Block::default().borders(Borders::ALL).title(" components "));
    frame.render_widget(table, body);
    frame.render_widget(Paragraph::new(Line::from(quit_hint.to_string())), footer);
}
