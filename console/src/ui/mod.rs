//! The console: a live, k9s-style view of the stack. The state and its one
//! `update` are in `app`, keys in `keys`, pure views in `views`; readings
//! come from background collectors over one channel, one per source with
//! one reading in flight each, so that a slow component never freezes the
//! screen nor holds up the other sources.

pub mod actions;
pub mod app;
pub mod effects;
pub mod keys;
pub mod lake_files;
pub mod logs;
pub mod rates;
pub mod views;

pub mod fixture;
#[cfg(test)]
mod tests;

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use lakehouse::Settings;
use ratatui::crossterm::event::{self, Event};

use crate::status::{BrokerHints, SourceKind};
use app::{update, Action, App};

/// Shows the console until the user quits or `tick` fails; `tick` runs
/// about four times a second on the calling thread.
pub fn run(
    settings: &Settings,
    refresh: Duration,
    statement_file: &std::path::Path,
    quit_hint: &str,
    mut tick: impl FnMut() -> Result<()>,
) -> Result<()> {
    let (sender, receiver) = mpsc::channel();
    spawn_collectors(settings.clone(), refresh, sender.clone());
    let catalog = lakehouse_streamsql::load_file(statement_file)
        .map(|plan| plan.relations)
        .map_err(|e| format!("{}: {e}", statement_file.display()));
    let _ = sender.send(Action::Catalog(catalog));
    let mut app = App::new(refresh, quit_hint);
    let mut runner = effects::Runner::new(settings.clone(), sender);
    // Restores the terminal on panic too.
    let mut terminal = ratatui::init();
    let outcome = event_loop(&mut terminal, &mut app, &receiver, &mut runner, &mut tick);
    runner.stop();
    ratatui::restore();
    outcome
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    readings: &Receiver<Action>,
    runner: &mut effects::Runner,
    tick: &mut impl FnMut() -> Result<()>,
) -> Result<()> {
    loop {
        while let Ok(action) = readings.try_recv() {
            update(app, action, Utc::now());
        }
        for effect in app.effects.drain(..) {
            runner.run(effect);
        }
        let now = Utc::now();
        terminal.draw(|frame| views::render(frame, app, now))?;
        if event::poll(Duration::from_millis(250))? {
            if let Event::Key(key) = event::read()? {
                if let Some(action) = keys::action_for(app, key) {
                    update(app, action, Utc::now());
                }
            }
        }
        if app.quit {
            return Ok(());
        }
        tick()?;
    }
}

/// One collector per source, each reading it every `refresh`, the next
/// reading starting only once its last one is done: a slow or dead source
/// delays only its own readings. The broker's collector asks for the lag of
/// the topics the lake's and PostgreSQL's last readings named.
fn spawn_collectors(settings: Settings, refresh: Duration, sender: Sender<Action>) {
    let hints = Arc::new(Mutex::new(BrokerHints::default()));
    for kind in SourceKind::ALL {
        let (settings, sender, hints) = (settings.clone(), sender.clone(), hints.clone());
        std::thread::Builder::new()
            .name(format!("console-{}", kind.name()))
            .spawn(move || collect(kind, &settings, refresh, &sender, &hints))
            .expect("spawn a console collector");
    }
}

fn collect(
    kind: SourceKind,
    settings: &Settings,
    refresh: Duration,
    sender: &Sender<Action>,
    hints: &Mutex<BrokerHints>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = sender.send(Action::Reading(kind, Err(e.to_string()), Utc::now()));
            return;
        }
    };
    loop {
        let known = hints.lock().map(|h| h.clone()).unwrap_or_default();
        let reading = runtime.block_on(crate::status::sources::read(kind, settings, &known));
        if let (Ok(reading), Ok(mut hints)) = (&reading, hints.lock()) {
            hints.learn(reading);
        }
        let action = Action::Reading(kind, reading.map(Box::new), Utc::now());
        if sender.send(action).is_err() {
            return;
        }
        std::thread::sleep(refresh);
    }
}
