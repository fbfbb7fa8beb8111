//! The console's state and the one place it changes: `update(app, action,
//! now)`. Keys become actions (`keys`), background collectors send theirs
//! (`collect`), and views only read the state (`views`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::actions::{Effect, Modal, ProducerForm, ProducerProgress};
use super::rates::Rates;
use crate::lag::LagHistory;
use crate::status::{ComponentState, Reading, Readings, SourceKind, StatusReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Overview,
    Lag,
    Lake,
    Warehouse,
    Catalog,
    Logs,
}

impl View {
    pub const ALL: [View; 6] = [
        View::Overview,
        View::Lag,
        View::Lake,
        View::Warehouse,
        View::Catalog,
        View::Logs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            View::Overview => "overview",
            View::Lag => "lag",
            View::Lake => "lake",
            View::Warehouse => "warehouse",
            View::Catalog => "catalog",
            View::Logs => "logs",
        }
    }

    fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).expect("a view")
    }

    /// A view by its name or a prefix of it (`:la` is ambiguous, `:lak` is not).
    pub fn by_name(text: &str) -> Option<View> {
        let text = text.trim().to_lowercase();
        if text.is_empty() {
            return None;
        }
        if let Some(v) = View::ALL.iter().find(|v| v.name() == text) {
            return Some(*v);
        }
        let mut matching = View::ALL.iter().filter(|v| v.name().starts_with(&text));
        match (matching.next(), matching.next()) {
            (Some(v), None) => Some(*v),
            _ => None,
        }
    }
}

/// How fresh one source's readings are: when the last good one came, and
/// the error of the last attempt if it failed.
#[derive(Debug, Clone, Default)]
pub struct Freshness {
    pub read_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

impl Freshness {
    /// No good reading for three refresh intervals, or the last attempt failed.
    pub fn is_stale(&self, now: DateTime<Utc>, refresh: Duration) -> bool {
        match self.read_at {
            Some(at) => {
                (now - at).to_std().unwrap_or_default() > refresh * 3 || self.error.is_some()
            }
            None => self.error.is_some(),
        }
    }
}

/// What the line at the bottom is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    None,
    /// `/`: typing a filter for the current table.
    Filter(String),
    /// `:`: typing a view's name.
    Command(String),
}

#[derive(Debug, Clone)]
pub enum Action {
    Quit,
    NextView,
    PreviousView,
    Show(View),
    Up,
    Down,
    Enter,
    Back,
    ToggleHelp,
    StartFilter,
    StartCommand,
    Type(char),
    Erase,
    Submit,
    /// Closes the prompt; a filter being typed is dropped.
    Cancel,
    /// `p`: the producer form.
    OpenProducer,
    /// `s`: stop the console's producer run.
    StopProducer,
    /// `x`: a purge, dry run first.
    OpenPurge,
    /// `y` in a confirmation.
    Confirm,
    /// Tab / ↓ in a form.
    NextField,
    /// Shift-Tab / ↑ in a form.
    PreviousField,
    /// The producer run's progress: delivered and failed so far.
    ProducerProgress(u64, u64),
    /// The producer run ended (its summary, or why it could not start).
    ProducerDone(String),
    /// The purge dry run's report and how many partitions it would
    /// remove, or its error.
    PurgePlanned(Result<(String, usize), String>),
    /// The purge's report, or its error.
    Purged(Result<String, String>),
    /// The components with a log folder.
    LogFolders(Vec<String>),
    /// The last lines of a component's newest log file.
    LogTail(String, Vec<String>),
    /// A lake stream's files on one date.
    LakeFiles(
        String,
        chrono::NaiveDate,
        Vec<super::lake_files::LakeFileRow>,
    ),
    /// The statement file, read (or not) at start.
    Catalog(Result<Vec<lakehouse_streamsql::Relation>, String>),
    /// One source's reading finished (good or not).
    Reading(SourceKind, Result<Box<Reading>, String>, DateTime<Utc>),
}

pub struct App {
    pub view: View,
    /// The lake stream drilled into (Enter on the lake view).
    pub drilled: Option<String>,
    /// The date drilled into within that stream (Enter on a date), and its files.
    pub drilled_date: Option<chrono::NaiveDate>,
    pub lake_files: Vec<super::lake_files::LakeFileRow>,
    pub selected: usize,
    /// The filter applied to the current table (empty: none).
    pub filter: String,
    pub prompt: Prompt,
    pub help: bool,
    pub quit: bool,
    /// The status the sources' last readings make together (none before the first).
    pub status: Option<StatusReport>,
    pub readings: Readings,
    pub freshness: BTreeMap<SourceKind, Freshness>,
    pub lag: LagHistory,
    pub rates: Rates,
    pub refresh: Duration,
    pub quit_hint: String,
    /// A message for the bottom line (e.g. an unknown view name).
    pub message: Option<String>,
    pub modal: Option<Modal>,
    /// Components with a log folder, and the tail of the one drilled into.
    pub log_folders: Vec<String>,
    pub log_tail: Option<(String, Vec<String>)>,
    /// The statement file's relations, or why it could not be read.
    pub catalog: Option<Result<Vec<lakehouse_streamsql::Relation>, String>>,
    pub producer: Option<ProducerProgress>,
    /// When each component not running was first seen so (gone once it runs again).
    pub down_since: BTreeMap<String, DateTime<Utc>>,
    /// Work for the run loop, taken by it after each update.
    pub effects: Vec<Effect>,
}

impl App {
    pub fn new(refresh: Duration, quit_hint: impl Into<String>) -> Self {
        Self {
            view: View::Overview,
            drilled: None,
            drilled_date: None,
            lake_files: Vec::new(),
            selected: 0,
            filter: String::new(),
            prompt: Prompt::None,
            help: false,
            quit: false,
            status: None,
            readings: Readings::default(),
            freshness: BTreeMap::new(),
            lag: LagHistory::default(),
            rates: Rates::default(),
            refresh,
            quit_hint: quit_hint.into(),
            message: None,
            modal: None,
            catalog: None,
            log_folders: Vec::new(),
            log_tail: None,
            producer: None,
            down_since: BTreeMap::new(),
            effects: Vec::new(),
        }
    }

    fn producer_running(&self) -> bool {
        self.producer.as_ref().is_some_and(|p| p.finished.is_none())
    }

    /// Where the user is: `lake › TRANSACTIONS_FLAT`.
    pub fn breadcrumb(&self) -> String {
        match (&self.drilled, self.drilled_date) {
            (Some(stream), Some(date)) => format!("{} › {stream} › {date}", self.view.name()),
            (Some(stream), None) => format!("{} › {stream}", self.view.name()),
            _ => self.view.name().to_string(),
        }
    }

    fn show(&mut self, view: View) {
        if self.view != view {
            self.view = view;
            self.drilled = None;
            self.drilled_date = None;
            self.selected = 0;
            self.filter.clear();
            if view == View::Logs {
                self.effects.push(Effect::ListLogs);
            }
        }
    }

    /// The logs view follows: each reading lists the folders again and
    /// reads the drilled-in component's tail again.
    fn follow_logs(&mut self) {
        if self.view == View::Logs {
            self.effects.push(Effect::ListLogs);
            if let Some(component) = &self.drilled {
                self.effects.push(Effect::TailLog(component.clone()));
            }
        }
    }

    /// The source that tells of a component of the overview.
    pub fn source_of(component: &str) -> SourceKind {
        match component {
            "broker" => SourceKind::Broker,
            "postgres" => SourceKind::Postgres,
            _ => SourceKind::Stack,
        }
    }

    pub fn is_stale(&self, kind: SourceKind, now: DateTime<Utc>) -> bool {
        self.freshness
            .get(&kind)
            .is_some_and(|f| f.is_stale(now, self.refresh))
    }

    /// `stale since 12:00:06` for a stale source (`no reading yet` if it never answered).
    pub fn stale_note(&self, kind: SourceKind, now: DateTime<Utc>) -> Option<String> {
        let freshness = self.freshness.get(&kind)?;
        if !freshness.is_stale(now, self.refresh) {
            return None;
        }
        Some(match freshness.read_at {
            Some(at) => format!(
                "stale since {} ({}s)",
                at.format("%H:%M:%S"),
                (now - at).num_seconds().max(0)
            ),
            None => "no reading yet".to_string(),
        })
    }

    /// Rows of the current table (after the filter), for moving the cursor.
    pub fn row_count(&self, now: DateTime<Utc>) -> usize {
        super::views::row_count(self, now)
    }
}

/// Applies one action. Everything the console does goes through here.
pub fn update(app: &mut App, action: Action, now: DateTime<Utc>) {
    app.message = None;
    if app.modal.is_some() && update_modal(app, &action) {
        return;
    }
    match action {
        Action::Quit => app.quit = true,
        Action::NextView => app.show(View::ALL[(app.view.index() + 1) % View::ALL.len()]),
        Action::PreviousView => {
            app.show(View::ALL[(app.view.index() + View::ALL.len() - 1) % View::ALL.len()])
        }
        Action::Show(view) => app.show(view),
        Action::Up => app.selected = app.selected.saturating_sub(1),
        Action::Down => {
            let rows = app.row_count(now);
            if app.selected + 1 < rows {
                app.selected += 1;
            }
        }
        Action::Enter if app.view == View::Lake && app.drilled.is_some() => {
            // A date of the stream: its files.
            let date = super::views::selected_name(app, now)
                .and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
            if let (Some(stream), Some(date), None) = (&app.drilled, date, app.drilled_date) {
                app.drilled_date = Some(date);
                app.lake_files.clear();
                app.selected = 0;
                app.filter.clear();
                app.effects
                    .push(Effect::ListLakeFiles(stream.clone(), date));
            }
        }
        Action::Enter => {
            if matches!(app.view, View::Lake | View::Catalog | View::Logs) && app.drilled.is_none()
            {
                if let Some(name) = super::views::selected_name(app, now) {
                    if app.view == View::Logs {
                        app.log_tail = None;
                        app.effects.push(Effect::TailLog(name.clone()));
                    }
                    app.drilled = Some(name);
                    app.selected = 0;
                    app.filter.clear();
                }
            }
        }
        Action::Catalog(result) => app.catalog = Some(result),
        Action::LogFolders(folders) => app.log_folders = folders,
        Action::LakeFiles(stream, date, files) => {
            if app.drilled.as_deref() == Some(stream.as_str()) && app.drilled_date == Some(date) {
                app.lake_files = files;
                let rows = app.row_count(now);
                app.selected = app.selected.min(rows.saturating_sub(1));
            }
        }
        Action::LogTail(component, lines) => {
            if app.drilled.as_deref() == Some(component.as_str()) {
                // Following: a cursor on the last line stays on the last line.
                let shown = app.log_tail.as_ref().map_or(0, |(_, l)| l.len());
                let at_end = shown == 0 || app.selected + 1 >= shown;
                let count = lines.len();
                app.log_tail = Some((component, lines));
                if at_end && app.filter.is_empty() {
                    app.selected = count.saturating_sub(1);
                }
            }
        }
        Action::Back => {
            if app.help {
                app.help = false;
            } else if !app.filter.is_empty() {
                app.filter.clear();
                app.selected = 0;
            } else if app.drilled_date.take().is_some() || app.drilled.take().is_some() {
                app.selected = 0;
            }
        }
        Action::ToggleHelp => app.help = !app.help,
        Action::StartFilter => app.prompt = Prompt::Filter(app.filter.clone()),
        Action::StartCommand => app.prompt = Prompt::Command(String::new()),
        Action::Type(c) => match &mut app.prompt {
            Prompt::Filter(text) => {
                text.push(c);
                app.filter = text.clone();
                app.selected = 0;
            }
            Prompt::Command(text) => text.push(c),
            Prompt::None => {}
        },
        Action::Erase => match &mut app.prompt {
            Prompt::Filter(text) => {
                text.pop();
                app.filter = text.clone();
                app.selected = 0;
            }
            Prompt::Command(text) => {
                text.pop();
            }
            Prompt::None => {}
        },
        Action::Submit => {
            if let Prompt::Command(text) = &app.prompt {
                match text.trim() {
                    "q" | "quit" => app.quit = true,
                    name => match View::by_name(name) {
                        Some(view) => app.show(view),
                        None => {
                            app.message = Some(format!(
                                "no view {name:?}: {}",
                                View::ALL.map(View::name).join(", ")
                            ))
                        }
                    },
                }
            }
            app.prompt = Prompt::None;
        }
        Action::Cancel => {
            if matches!(app.prompt, Prompt::Filter(_)) {
                app.filter.clear();
                app.selected = 0;
            }
            app.prompt = Prompt::None;
        }
        Action::OpenProducer => {
            if app.producer_running() {
                app.message = Some("a producer run is under way (s stops it)".into());
            } else {
                app.modal = Some(Modal::ProducerForm(ProducerForm::default()));
            }
        }
        Action::StopProducer => {
            if let Some(p) = app.producer.as_mut().filter(|p| p.finished.is_none()) {
                p.stopping = true;
                app.effects.push(Effect::StopProducer);
            }
        }
        Action::OpenPurge => {
            app.modal = Some(Modal::PurgePlanning);
            app.effects.push(Effect::PurgeDryRun);
        }
        Action::ProducerProgress(delivered, failed) => {
            if let Some(p) = app.producer.as_mut() {
                p.delivered = delivered;
                p.failed = failed;
            }
        }
        Action::ProducerDone(summary) => {
            if let Some(p) = app.producer.as_mut() {
                p.finished = Some(summary);
            }
        }
        Action::Confirm
        | Action::NextField
        | Action::PreviousField
        | Action::PurgePlanned(_)
        | Action::Purged(_) => {}
        Action::Reading(kind, result, at) => {
            let freshness = app.freshness.entry(kind).or_default();
            match result {
                Ok(reading) => {
                    freshness.read_at = Some(at);
                    freshness.error = None;
                    take_reading(app, *reading, at, now);
                }
                Err(e) => freshness.error = Some(e),
            }
        }
    }
}

/// Keeps a good reading and what follows from it: the lag history (the
/// broker's), records per second and the followed log (each stack reading).
fn take_reading(app: &mut App, reading: Reading, at: DateTime<Utc>, now: DateTime<Utc>) {
    let kind = reading.kind();
    if let Reading::Broker(broker) = &reading {
        app.lag.record(&broker.groups, at);
    }
    // The files drilled into are listed again with each lake reading.
    if let (Reading::Lake(_), Some(stream), Some(date)) = (&reading, &app.drilled, app.drilled_date)
    {
        if app.view == View::Lake {
            app.effects
                .push(Effect::ListLakeFiles(stream.clone(), date));
        }
    }
    app.readings.store(reading);
    let report = StatusReport::assemble(&app.readings);
    if kind == SourceKind::Stack {
        app.follow_logs();
        for (name, component) in &report.components {
            if let Some(counters) = &component.counters {
                app.rates.record(name, at, counters);
            }
        }
    }
    for (name, component) in &report.components {
        // A restarting one says when its last error came instead.
        if matches!(
            component.state,
            ComponentState::Running | ComponentState::Restarting
        ) {
            app.down_since.remove(name);
        } else {
            app.down_since.entry(name.clone()).or_insert(at);
        }
    }
    app.status = Some(report);
    let rows = app.row_count(now);
    app.selected = app.selected.min(rows.saturating_sub(1));
}

/// Actions while a window is open; true when the action was the window's.
fn update_modal(app: &mut App, action: &Action) -> bool {
    let Some(modal) = app.modal.as_mut() else {
        return false;
    };
    match (modal, action) {
        (Modal::ProducerForm(form), Action::Type(c)) => {
            form.fields[form.focus].push(*c);
            form.error = None;
        }
        (Modal::ProducerForm(form), Action::Erase) => {
            form.fields[form.focus].pop();
            form.error = None;
        }
        (Modal::ProducerForm(form), Action::NextField) => form.focus = (form.focus + 1) % 3,
        (Modal::ProducerForm(form), Action::PreviousField) => form.focus = (form.focus + 2) % 3,
        (Modal::ProducerForm(form), Action::Submit) => match form.request() {
            Ok(request) => app.modal = Some(Modal::ConfirmProducer(request)),
            Err(e) => form.error = Some(e),
        },
        (Modal::ConfirmProducer(request), Action::Confirm) => {
            let request = *request;
            app.producer = Some(ProducerProgress {
                request,
                delivered: 0,
                failed: 0,
                stopping: false,
                finished: None,
            });
            app.effects.push(Effect::StartProducer(request));
            app.modal = None;
        }
        (Modal::PurgePlanning, Action::PurgePlanned(result)) => {
            app.modal = Some(match result {
                Ok((plan, 0)) => Modal::PurgeResult(plan.clone()),
                Ok((plan, _)) => Modal::ConfirmPurge(plan.clone()),
                Err(e) => Modal::PurgeResult(format!("the dry run failed: {e}")),
            });
        }
        (Modal::ConfirmPurge(_), Action::Confirm) => {
            app.modal = Some(Modal::Purging);
            app.effects.push(Effect::Purge);
        }
        (Modal::Purging, Action::Purged(result)) => {
            app.modal = Some(Modal::PurgeResult(match result {
                Ok(report) => report.clone(),
                Err(e) => format!("the purge failed: {e}"),
            }));
        }
        // A purge under way cannot be walked away from; the rest can.
        (Modal::Purging | Modal::PurgePlanning, Action::Cancel | Action::Back) => {}
        (_, Action::Cancel | Action::Back) => app.modal = None,
        (Modal::PurgeResult(_), Action::Submit | Action::Confirm) => app.modal = None,
        (_, Action::Quit) => return false,
        (
            _,
            Action::Reading(..)
            | Action::ProducerProgress(..)
            | Action::ProducerDone(_)
            | Action::LogFolders(_)
            | Action::LogTail(..)
            | Action::LakeFiles(..)
            | Action::Catalog(_),
        ) => return false,
        _ => {}
    }
    true
}
