//! Keys to actions, k9s style. What a key does depends on whether a
//! prompt (`/` filter, `:` view name) is open.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::actions::Modal;
use super::app::{Action, App, Prompt, View};

/// The keys of a view, for `?`.
pub const HELP: &[(&str, &str)] = &[
    (
        "1-6 / Tab / S-Tab",
        "overview lag lake warehouse catalog logs",
    ),
    (
        ":name Enter",
        "jump to a view by name (:lag, :lake, :wa...)",
    ),
    ("↑ ↓ / k j", "move in the table"),
    ("Enter", "drill in: a stream's dates, columns, a log"),
    ("Esc", "back: help, filter, drill-in"),
    ("/text Enter", "filter the current table (Esc clears)"),
    ("p", "producer run: a form (rate, count, bad ratio), y"),
    ("s", "stop the console's producer run"),
    ("x", "purge: a dry run first, then y deletes"),
    ("?", "this help"),
    ("q / Ctrl-C", "quit"),
];

pub fn action_for(app: &App, key: KeyEvent) -> Option<Action> {
    if key.kind != KeyEventKind::Press {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if let Some(modal) = &app.modal {
        return match (modal, key.code) {
            (Modal::ProducerForm(_), KeyCode::Tab | KeyCode::Down) => Some(Action::NextField),
            (Modal::ProducerForm(_), KeyCode::BackTab | KeyCode::Up) => Some(Action::PreviousField),
            (Modal::ProducerForm(_), KeyCode::Enter) => Some(Action::Submit),
            (Modal::ProducerForm(_), KeyCode::Backspace) => Some(Action::Erase),
            (Modal::ProducerForm(_), KeyCode::Char(c)) => Some(Action::Type(c)),
            (Modal::ConfirmProducer(_) | Modal::ConfirmPurge(_), KeyCode::Char('y')) => {
                Some(Action::Confirm)
            }
            (Modal::PurgeResult(_), KeyCode::Enter) => Some(Action::Submit),
            (_, KeyCode::Esc | KeyCode::Char('n')) => Some(Action::Cancel),
            _ => None,
        };
    }
    if app.prompt != Prompt::None {
        return match key.code {
            KeyCode::Enter => Some(Action::Submit),
            KeyCode::Esc => Some(Action::Cancel),
            KeyCode::Backspace => Some(Action::Erase),
            KeyCode::Char(c) => Some(Action::Type(c)),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Tab => Action::NextView,
        KeyCode::BackTab => Action::PreviousView,
        KeyCode::Char(c @ '1'..='6') => Action::Show(View::ALL[(c as u8 - b'1') as usize]),
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Enter => Action::Enter,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char(':') => Action::StartCommand,
        KeyCode::Char('p') => Action::OpenProducer,
        KeyCode::Char('s') => Action::StopProducer,
        KeyCode::Char('x') => Action::OpenPurge,
        _ => return None,
    })
}
