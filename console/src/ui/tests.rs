//! The console with fixed data: every view drawn at 80x24 and 160x48
//! (snapshots), keys, view switching, the filter, drill-in, staleness, and
//! a component going down and coming back.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

use super::app::{update, Action, App, View};
use super::fixture::{feed, readings, start};
use super::{keys, views};
use crate::status::{ComponentState, Reading, SourceKind};

fn at(step: i64) -> DateTime<Utc> {
    start() + chrono::Duration::seconds(2 * step)
}

/// The console after `steps` readings, 2 s apart.
fn console(steps: i64) -> App {
    let mut app = App::new(Duration::from_secs(2), "q: quit");
    for step in 0..steps {
        feed(&mut app, step, 4, 6, at(step));
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

    // PostgreSQL's reading fails at step 10; the broker's has not come
    // back since step 3; the stack's and the lake's keep coming.
    let mut app = console(4);
    for step in 4..=10 {
        for reading in readings(step, 4, 6) {
            if matches!(reading.kind(), SourceKind::Stack | SourceKind::Lake) {
                let action = Action::Reading(reading.kind(), Ok(Box::new(reading)), at(step));
                update(&mut app, action, at(step));
            }
        }
    }
    update(
        &mut app,
        Action::Reading(
            SourceKind::Postgres,
            Err("no answer within 2 s".into()),
            at(10),
        ),
        at(10),
    );
    let stale = screen(&app, 80, 24, at(10));
    assert!(
        stale.contains("STALE: broker since 12:00:06, postgres since 12:00:06"),
        "{stale}"
    );
    assert!(stale.contains("postgres: no answer within 2 s"), "{stale}");
    // The last good reading stays on screen, marked where it is stale.
    assert!(
        stale
            .lines()
            .any(|l| l.contains("broker") && l.contains("? stale") && l.contains("running")),
        "{stale}"
    );
    // The fresh sources' components are not marked.
    assert!(
        stale
            .lines()
            .any(|l| l.contains("lake-sink") && l.contains("restarting")),
        "{stale}"
    );
    insta::assert_snapshot!("overview_stale_80x24", stale);
    update(&mut app, Action::Show(View::Lag), at(10));
    let lag = screen(&app, 80, 24, at(10));
    assert!(
        lag.contains("STALE since 12:00:06 (14s) — consumer lag"),
        "{lag}"
    );
    update(&mut app, Action::Show(View::Lake), at(10));
    let lake = screen(&app, 80, 24, at(10));
    assert!(!lake.contains("STALE since"), "the lake is fresh: {lake}");
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
    let mut down = readings(2, 4, 6).swap_remove(1);
    let Reading::Broker(broker) = &mut down else {
        panic!("the fixture's second reading is the broker's")
    };
    broker.broker.state = ComponentState::Unreachable;
    update(
        &mut app,
        Action::Reading(SourceKind::Broker, Ok(Box::new(down)), at(2)),
        at(2),
    );
    let text = screen(&app, 160, 48, at(2));
    assert!(
        text.lines()
            .any(|l| l.contains("broker") && l.contains("✗ down") && l.contains("since 12:00:04")),
        "{text}"
    );
    feed(&mut app, 3, 4, 6, at(3));
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
    feed(&mut app, 1, 4, 6, at(2));
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

#[test]
fn a_source_that_does_not_answer_holds_up_only_its_own_readings() {
    // A broker and a PostgreSQL that accept connections and never answer:
    // each of their readings waits out its 2 s timeout, while the stack's
    // and the lake's readings keep coming at the refresh interval.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = black_hole.local_addr().unwrap();
    let lake = tempfile::tempdir().unwrap();
    let mut settings = lakehouse::Settings {
        state_dir: lake.path().join("state"),
        data_lake_dir: lake.path().join("lake"),
        ..Default::default()
    };
    settings.kafka.bootstrap = Some(address.to_string());
    settings.postgres.url = Some(format!("postgres://x:y@{address}/db"));
    let (sender, receiver) = std::sync::mpsc::channel();
    super::spawn_collectors(settings, Duration::from_millis(100), sender);
    let mut counts = std::collections::BTreeMap::new();
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
        if let Ok(Action::Reading(kind, _, _)) = receiver.recv_timeout(left) {
            *counts.entry(kind).or_insert(0) += 1;
        }
    }
    let count = |kind| counts.get(&kind).copied().unwrap_or(0);
    assert!(count(SourceKind::Stack) >= 10, "{counts:?}");
    assert!(count(SourceKind::Lake) >= 10, "{counts:?}");
    assert!(count(SourceKind::Broker) <= 2, "{counts:?}");
    assert!(count(SourceKind::Postgres) <= 2, "{counts:?}");
}

#[test]
fn a_lake_date_drilled_into_lists_its_files() {
    use super::actions::Effect;
    use super::lake_files::LakeFileRow;
    let mut app = console(3);
    press(&mut app, KeyCode::Char('3'));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    app.effects.clear();
    // The newest date comes first.
    press(&mut app, KeyCode::Enter);
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    assert_eq!(app.drilled_date, Some(date));
    assert_eq!(
        app.effects.drain(..).collect::<Vec<_>>(),
        vec![Effect::ListLakeFiles("TRANSACTIONS_STREAM_01".into(), date)]
    );
    let files = (0..3)
        .map(|p| LakeFileRow {
            name: format!("part-{p:05}-{:019}-{:019}.parquet", 0, 199),
            partition: p,
            first_offset: 0,
            last_offset: 199,
            rows: 200,
            bytes: 10_500,
        })
        .collect();
    update(
        &mut app,
        Action::LakeFiles("TRANSACTIONS_STREAM_01".into(), date, files),
        at(3),
    );
    let text = screen(&app, 80, 24, at(2));
    assert!(
        text.contains("lake › TRANSACTIONS_STREAM_01 › 2026-11-30"),
        "{text}"
    );
    assert_eq!(app.row_count(at(2)), 3);
    insta::assert_snapshot!("lake_files_80x24", text);
    // The next lake reading lists them again; Esc goes back a level at a time.
    feed(&mut app, 3, 4, 6, at(3));
    assert!(app.effects.contains(&Effect::ListLakeFiles(
        "TRANSACTIONS_STREAM_01".into(),
        date
    )));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.drilled_date, None);
    assert_eq!(app.drilled.as_deref(), Some("TRANSACTIONS_STREAM_01"));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.drilled, None);
}
