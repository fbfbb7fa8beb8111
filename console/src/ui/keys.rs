//! Keys to actions, k9s style. What a key does depends on whether a
//! prompt (`/` filter, `:` view name) is open.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{Action, App, Prompt, View};

/// The keys of a view, for `?`.
pub const HELP: &[(&str, &str)] = &[
    (
        "1-4 / Tab / Shift-Tab",
        "switch view (overview, lag, lake, warehouse)",
    ),
    (
        ":name Enter",
        "jump to a view by name (:lag, :lake, :wa...)",
    ),
    ("↑ ↓ / k j", "move in the table"),
    ("Enter", "drill in (a lake stream's dates)"),
    (
        "Esc",
        "back: close help, clear the filter, leave a drill-in",
    ),
    ("/text Enter", "filter the current table (Esc clears)"),
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
        KeyCode::Char(c @ '1'..='4') => Action::Show(View::ALL[(c as u8 - b'1') as usize]),
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Enter => Action::Enter,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char(':') => Action::StartCommand,
        _ => return None,
    })
}
