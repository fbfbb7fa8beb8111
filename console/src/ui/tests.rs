//! The console with fixed data: every view drawn at 80x24 and 160x48
//! (snapshots), keys, view switching, the filter, drill-in, staleness, and
//! a component going down and coming back.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

use super::app::{update, Action, App, View};
use super::fixture::{report, start};
use super::{keys, views};
use crate::status::ComponentState;

fn at(step: i64) -> DateTime<Utc> {
    start() + chrono::Duration::seconds(2 * step)
}

/// The console after `steps` readings, 2 s apart.
fn console(steps: i64) -> App {
    let mut app = App::new(Duration::from_secs(2), "q: quit");
    for step in 0..steps {
        update(
            &mut app,
            Action::Status(Ok(Box::new(report(step, 4, 6))), at(step)),
            at(step),
        );
    }
    app
}

fn screen(app: &App, width: u16, height: u16, now: DateTime<Utc>) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| views::render(frame, app, now))
        .unwrap();
    terminal.backend().to_string()
}

fn press(app: &mut App, code: KeyCode) {
    let key = KeyEvent::new(code, KeyModifiers::NONE);
    if let Some(action) = keys::action_for(app, key) {
        update(app, action, at(20));
    }
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

#[test]
fn every_view_at_80x24_and_160x48() {
    let mut app = console(12);
    let now = at(11) + chrono::Duration::seconds(1);
    for view in View::ALL {
        update(&mut app, Action::Show(view), now);
        for (w, h) in [(80, 24), (160, 48)] {
            insta::assert_snapshot!(format!("{}_{w}x{h}", view.name()), screen(&app, w, h, now));
        }
    }
}

#[test]
fn a_lake_stream_drilled_into_and_the_help() {
    let mut app = console(3);
    let now = at(2);
    press(&mut app, KeyCode::Char('3'));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.drilled.as_deref(), Some("TRANSACTIONS_STREAM_01"));
    insta::assert_snapshot!("lake_drilled_80x24", screen(&app, 80, 24, now));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.drilled, None);
    press(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!("help_80x24", screen(&app, 80, 24, now));
    press(&mut app, KeyCode::Esc);
    assert!(!app.help);
}

#[test]
fn stale_and_not_yet_read_states_say_so_in_words() {
    let app = App::new(Duration::from_secs(2), "q: quit");
    let first = screen(&app, 80, 24, at(0));
    assert!(first.contains("collecting"), "{first}");

    let mut app = console(4);
    update(
        &mut app,
        Action::Status(Err("postgres: no answer within 2 s".into()), at(10)),
        at(10),
    );
    let stale = screen(&app, 80, 24, at(10));
    assert!(stale.contains("STALE since 12:00:06"), "{stale}");
    assert!(stale.contains("no answer within 2 s"), "{stale}");
    // The last good reading stays on screen.
    assert!(stale.contains("lake-sink"), "{stale}");
    insta::assert_snapshot!("overview_stale_80x24", stale);
}

#[test]
fn views_switch_by_number_tab_and_name() {
    let mut app = console(1);
    press(&mut app, KeyCode::Char('2'));
    assert_eq!(app.view, View::Lag);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.view, View::Lake);
    press(&mut app, KeyCode::BackTab);
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.view, View::Overview);
    press(&mut app, KeyCode::Char(':'));
    typed(&mut app, "wa");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Warehouse);
    press(&mut app, KeyCode::Char(':'));
    typed(&mut app, "nope");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Warehouse);
    assert!(app.message.as_deref().unwrap().contains("no view"));
    press(&mut app, KeyCode::Char('q'));
    assert!(app.quit);
}

#[test]
fn the_filter_narrows_the_table_and_esc_clears_it() {
    let mut app = console(2);
    press(&mut app, KeyCode::Char('3'));
    assert_eq!(app.row_count(at(2)), 4);
    press(&mut app, KeyCode::Char('/'));
    typed(&mut app, "stream_0");
    assert_eq!(app.row_count(at(2)), 3);
    press(&mut app, KeyCode::Backspace);
    typed(&mut app, "03");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.row_count(at(2)), 1);
    // j/k stay inside the table.
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(app.selected, 0);
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.row_count(at(2)), 4);
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('k'));
    assert_eq!(app.selected, 1);
}

#[test]
fn a_component_going_down_and_coming_back() {
    let mut app = console(2);
    let mut down = report(2, 4, 6);
    down.components.get_mut("broker").unwrap().state = ComponentState::Unreachable;
    update(&mut app, Action::Status(Ok(Box::new(down)), at(2)), at(2));
    let text = screen(&app, 80, 24, at(2));
    assert!(
        text.lines()
            .any(|l| l.contains("broker") && l.contains("✗ down")),
        "{text}"
    );
    update(
        &mut app,
        Action::Status(Ok(Box::new(report(3, 4, 6))), at(3)),
        at(3),
    );
    let text = screen(&app, 80, 24, at(3));
    assert!(
        text.lines()
            .any(|l| l.contains("broker") && l.contains("● running")),
        "{text}"
    );
}

#[test]
fn the_lag_view_shows_each_partition_with_its_burrow_status() {
    let app = console(14);
    let mut app = app;
    update(&mut app, Action::Show(View::Lag), at(13));
    let text = screen(&app, 160, 48, at(13) + chrono::Duration::seconds(1));
    // The lake sink keeps consuming but never catches up: WARN after a
    // full window; the table sink stopped committing at step 3: STOP.
    let lake_rows: Vec<&str> = text.lines().filter(|l| l.contains("lake_sink")).collect();
    assert_eq!(lake_rows.len(), 3, "{text}");
    assert!(lake_rows.iter().all(|l| l.contains("WARN")), "{text}");
    let table_rows: Vec<&str> = text.lines().filter(|l| l.contains("table_sink")).collect();
    assert!(
        !table_rows.is_empty() && table_rows.iter().all(|l| l.contains("STOP")),
        "{text}"
    );
}

#[test]
fn a_producer_run_is_confirmed_then_shown_and_can_be_stopped() {
    use super::actions::{Effect, Modal};
    let mut app = console(2);
    press(&mut app, KeyCode::Char('p'));
    assert!(matches!(app.modal, Some(Modal::ProducerForm(_))));
    // count: "1000" → "10x": refused, naming the field.
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Backspace);
    press(&mut app, KeyCode::Backspace);
    typed(&mut app, "x");
    press(&mut app, KeyCode::Enter);
    let Some(Modal::ProducerForm(form)) = &app.modal else {
        panic!("the form stays open")
    };
    assert!(form.error.as_deref().unwrap().starts_with("count"));
    insta::assert_snapshot!("producer_form_80x24", screen(&app, 80, 24, at(2)));
    press(&mut app, KeyCode::Backspace);
    typed(&mut app, "0");
    press(&mut app, KeyCode::Enter);
    assert!(matches!(app.modal, Some(Modal::ConfirmProducer(_))));
    assert!(app.effects.is_empty(), "nothing starts before y");
    press(&mut app, KeyCode::Char('y'));
    assert_eq!(app.effects.len(), 1);
    let Effect::StartProducer(request) = app.effects.remove(0) else {
        panic!("the producer starts")
    };
    assert_eq!((request.count, request.rate), (100, Some(100.0)));
    update(&mut app, Action::ProducerProgress(40, 0), at(3));
    assert!(screen(&app, 80, 24, at(3)).contains("producer 40/100 (40%)"));
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.effects, vec![Effect::StopProducer]);
    update(&mut app, Action::ProducerDone("40 delivered".into()), at(4));
    assert!(screen(&app, 80, 24, at(4)).contains("producer done: 40 delivered"));
}

#[test]
fn a_purge_shows_its_dry_run_and_deletes_only_on_y() {
    use super::actions::{Effect, Modal};
    let mut app = console(2);
    press(&mut app, KeyCode::Char('x'));
    assert_eq!(
        app.effects.drain(..).collect::<Vec<_>>(),
        vec![Effect::PurgeDryRun]
    );
    assert_eq!(app.modal, Some(Modal::PurgePlanning));
    let plan = "topic                                date          files       rows        bytes\ntransaction_log                      2026-10-01        3        900       120000\n";
    update(&mut app, Action::PurgePlanned(Ok((plan.into(), 1))), at(3));
    insta::assert_snapshot!("purge_confirm_80x24", screen(&app, 80, 24, at(3)));
    press(&mut app, KeyCode::Char('n'));
    assert_eq!(app.modal, None);
    assert!(app.effects.is_empty(), "n keeps everything");

    press(&mut app, KeyCode::Char('x'));
    app.effects.clear();
    update(&mut app, Action::PurgePlanned(Ok((plan.into(), 1))), at(3));
    press(&mut app, KeyCode::Char('y'));
    assert_eq!(app.effects, vec![Effect::Purge]);
    assert_eq!(app.modal, Some(Modal::Purging));
    press(&mut app, KeyCode::Esc);
    assert_eq!(
        app.modal,
        Some(Modal::Purging),
        "a purge under way stays on screen"
    );
    update(
        &mut app,
        Action::Purged(Ok("removed 1 partition".into())),
        at(4),
    );
    assert!(screen(&app, 80, 24, at(4)).contains("removed 1 partition"));
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.modal, None);

    // Nothing to remove: the dry run's answer, no confirmation.
    press(&mut app, KeyCode::Char('x'));
    update(
        &mut app,
        Action::PurgePlanned(Ok(("nothing expired".into(), 0))),
        at(5),
    );
    assert_eq!(
        app.modal,
        Some(Modal::PurgeResult("nothing expired".into()))
    );
}

#[test]
fn the_catalog_lists_the_statement_files_relations_and_their_columns() {
    let mut app = console(1);
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../producer/ksql_queries.sql");
    let plan = lakehouse_streamsql::load_file(std::path::Path::new(file)).unwrap();
    let relations = plan.relations.len();
    let first = plan.relations[0].name.clone();
    let first_column = plan.relations[0].columns[0].name.clone();
    update(&mut app, Action::Catalog(Ok(plan.relations)), at(1));
    press(&mut app, KeyCode::Char('5'));
    assert_eq!(app.view, View::Catalog);
    assert_eq!(app.row_count(at(1)), relations);
    insta::assert_snapshot!("catalog_statement_file_80x24", screen(&app, 80, 24, at(1)));
    press(&mut app, KeyCode::Enter);
    let columns = screen(&app, 80, 24, at(1));
    assert!(columns.contains(&format!("catalog › {first}")), "{columns}");
    assert!(columns.contains(&first_column), "{columns}");

    let mut broken = console(1);
    update(
        &mut broken,
        Action::Catalog(Err("x.sql: line 3: expected AS".into())),
        at(1),
    );
    update(&mut broken, Action::Show(View::Catalog), at(1));
    assert!(screen(&broken, 80, 24, at(1)).contains("line 3: expected AS"));
}

#[test]
fn the_logs_view_follows_a_components_newest_lines() {
    use super::actions::Effect;
    let mut app = console(1);
    press(&mut app, KeyCode::Char('6'));
    assert_eq!(app.view, View::Logs);
    assert_eq!(
        app.effects.drain(..).collect::<Vec<_>>(),
        vec![Effect::ListLogs]
    );
    update(
        &mut app,
        Action::LogFolders(vec!["api".into(), "lakectl".into()]),
        at(1),
    );
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.drilled.as_deref(), Some("api"));
    assert_eq!(
        app.effects.drain(..).collect::<Vec<_>>(),
        vec![Effect::TailLog("api".into())]
    );
    let lines: Vec<String> = (0..40).map(|i| format!("INFO request {i}")).collect();
    update(
        &mut app,
        Action::LogTail("api".into(), lines.clone()),
        at(1),
    );
    let text = screen(&app, 80, 24, at(1));
    // The newest line is in sight and selected.
    assert!(text.contains("› INFO request 39"), "{text}");
    assert!(!text.contains("INFO request 5 "), "{text}");
    // Every reading reads the tail again, and the cursor follows the end.
    update(
        &mut app,
        Action::Status(Ok(Box::new(report(1, 4, 6))), at(2)),
        at(2),
    );
    assert!(app.effects.contains(&Effect::TailLog("api".into())));
    let mut more = lines;
    more.push("WARN request 40".into());
    update(&mut app, Action::LogTail("api".into(), more), at(2));
    assert_eq!(app.selected, 40);
    // `/` narrows the lines.
    press(&mut app, KeyCode::Char('/'));
    typed(&mut app, "warn");
    assert_eq!(app.row_count(at(2)), 1);
}
