//! Keeps the index equal to the lake. It follows the lake folder's change
//! notifications (inotify, through `notify`): a file landing or a date
//! folder going makes it compare that one folder with what the index holds
//! there, adding the files it lacks and dropping those gone. At start, on
//! a lost notification (queue overflow) and every few minutes it compares
//! the whole lake the same way, which is also how it catches up after a
//! crash. Commits come at most a second after the first uncommitted file,
//! always between files.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lakehouse::lake::{self, DATA_EXTENSION};
use notify::{EventKind, RecursiveMode, Watcher};
use tantivy::collector::DocSetCollector;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{IndexWriter, TantivyDocument, Term};

use super::documents::{file_documents, folder_of, LakeFile};
use super::{SearchError, SearchIndex, KIND_FILE};

/// Longest wait between the first uncommitted file and its commit.
const COMMIT_DELAY: Duration = Duration::from_secs(1);
/// How often the whole lake is compared with the index, in case a
/// notification was missed.
const FULL_CHECK_EVERY: Duration = Duration::from_secs(300);
const WRITER_MEMORY: usize = 64 << 20;

/// What the indexer has done since it started.
#[derive(Debug, Default)]
pub struct IndexerStats {
    pub records_indexed: AtomicU64,
    pub files_indexed: AtomicU64,
    pub files_removed: AtomicU64,
    pub commits: AtomicU64,
    pub errors: AtomicU64,
}

/// Which part of the lake to compare with the index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    All,
    Dataset(String),
    /// A dataset's date folder (`STREAM`, `ingestion_date=D`).
    Folder(String, chrono::NaiveDate),
}

pub struct Indexer {
    index: Arc<SearchIndex>,
    writer: IndexWriter<TantivyDocument>,
    root: PathBuf,
    added: HashSet<String>,
    removed: HashSet<String>,
    first_pending: Option<Instant>,
    pub stats: Arc<IndexerStats>,
}

impl Indexer {
    /// The index's one writer; `Busy` if another process holds it.
    pub fn new(index: Arc<SearchIndex>, root: &Path) -> Result<Self, SearchError> {
        let writer = index
            .index
            .writer_with_num_threads(1, WRITER_MEMORY)
            .map_err(|e| match e {
                tantivy::TantivyError::LockFailure(..) => SearchError::Busy,
                e => SearchError::Index(e),
            })?;
        Ok(Self {
            stats: index.stats.clone(),
            index,
            writer,
            root: root.to_path_buf(),
            added: HashSet::new(),
            removed: HashSet::new(),
            first_pending: None,
        })
    }

    /// The files the index holds in `scope`, counting what is not committed yet.
    fn indexed_files(&self, scope: &Scope) -> Result<BTreeSet<String>, SearchError> {
        let fields = &self.index.fields;
        let term = |field, text: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, text),
                IndexRecordOption::Basic,
            ))
        };
        let mut must = vec![(Occur::Must, term(fields.kind, KIND_FILE))];
        match scope {
            Scope::All => {}
            Scope::Dataset(dataset) => must.push((Occur::Must, term(fields.resource, dataset))),
            Scope::Folder(dataset, date) => {
                must.push((Occur::Must, term(fields.folder, &folder_of(dataset, *date))))
            }
        }
        let searcher = self.index.reader.searcher();
        let mut files = BTreeSet::new();
        for address in searcher.search(&BooleanQuery::new(must), &DocSetCollector)? {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(file) = doc.get_first(fields.file).and_then(|v| v.as_str()) {
                files.insert(file.to_string());
            }
        }
        files.retain(|f| !self.removed.contains(f));
        files.extend(self.added.iter().filter(|f| in_scope(f, scope)).cloned());
        Ok(files)
    }

    /// The lake's complete data files in `scope`.
    fn lake_files(&self, scope: &Scope) -> Result<Vec<LakeFile>, SearchError> {
        let io = |context: String| move |source| SearchError::Io { context, source };
        let datasets = match scope {
            Scope::All => lake::topic_names(&self.root)
                .map_err(io(format!("cannot list {}", self.root.display())))?,
            Scope::Dataset(d) | Scope::Folder(d, _) => vec![d.clone()],
        };
        let mut files = Vec::new();
        for dataset in datasets {
            let dir = lake::topic_dir(&self.root, &dataset);
            let dates = lake::date_partitions(&dir)
                .map_err(io(format!("cannot list {}", dir.display())))?;
            for partition in dates {
                if let Scope::Folder(_, date) = scope {
                    if partition.date != *date {
                        continue;
                    }
                }
                let found = match lake::files_in(&partition.path, DATA_EXTENSION) {
                    Ok(found) => found,
                    // Purged while being listed.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(io(format!("cannot list {}", partition.path.display()))(e))
                    }
                };
                for file in found {
                    let Some(name) = file.path.file_name().and_then(|n| n.to_str()) else {
                        continue;
                    };
                    files.push(LakeFile {
                        dataset: dataset.clone(),
                        date: partition.date,
                        relative: format!("{}/{name}", folder_of(&dataset, partition.date)),
                    });
                }
            }
        }
        Ok(files)
    }

    /// Makes the index hold exactly the lake's files in `scope`; the files
    /// added and removed.
    pub fn reconcile(&mut self, scope: &Scope) -> Result<(usize, usize), SearchError> {
        let indexed = self.indexed_files(scope)?;
        let lake = self.lake_files(scope)?;
        let in_lake: BTreeSet<&str> = lake.iter().map(|f| f.relative.as_str()).collect();
        let mut removed = 0;
        for gone in indexed
            .iter()
            .filter(|f| !in_lake.contains(String::as_str(f)))
        {
            self.writer
                .delete_term(Term::from_field_text(self.index.fields.file, gone));
            self.added.remove(gone);
            self.removed.insert(gone.clone());
            self.first_pending.get_or_insert_with(Instant::now);
            self.stats.files_removed.fetch_add(1, Ordering::Relaxed);
            removed += 1;
        }
        let mut added = 0;
        for file in lake.iter().filter(|f| !indexed.contains(&f.relative)) {
            match self.add_file(file) {
                Ok(()) => added += 1,
                Err(e) => {
                    // Left for the next comparison (the file may be going).
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(file = %file.relative, "cannot index: {e}");
                }
            }
            // Long catch-ups commit as they go, between files.
            self.commit_if_due()?;
        }
        Ok((added, removed))
    }

    fn add_file(&mut self, file: &LakeFile) -> Result<(), SearchError> {
        // A file's documents go in whole or not at all: collected first,
        // so that a file that fails half-way leaves nothing behind.
        let mut documents = Vec::new();
        let records = file_documents(&self.root, file, &self.index.fields, |doc| {
            documents.push(doc);
            Ok(())
        })?;
        for doc in documents {
            self.writer.add_document(doc)?;
        }
        self.removed.remove(&file.relative);
        self.added.insert(file.relative.clone());
        self.first_pending.get_or_insert_with(Instant::now);
        self.stats
            .records_indexed
            .fetch_add(records, Ordering::Relaxed);
        self.stats.files_indexed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Commits what is pending once it has waited long enough.
    pub fn commit_if_due(&mut self) -> Result<(), SearchError> {
        match self.first_pending {
            Some(first) if first.elapsed() >= COMMIT_DELAY => self.commit(),
            _ => Ok(()),
        }
    }

    /// Commits what is pending and makes it visible to searches at once.
    pub fn commit(&mut self) -> Result<(), SearchError> {
        if self.first_pending.is_none() {
            return Ok(());
        }
        self.writer.commit()?;
        self.index.reader.reload()?;
        self.added.clear();
        self.removed.clear();
        self.first_pending = None;
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Empties the index and indexes the whole lake again.
    pub fn rebuild(&mut self) -> Result<(usize, usize), SearchError> {
        self.writer.delete_all_documents()?;
        self.writer.commit()?;
        self.index.reader.reload()?;
        self.added.clear();
        self.removed.clear();
        let outcome = self.reconcile(&Scope::All)?;
        self.first_pending.get_or_insert_with(Instant::now);
        self.commit()?;
        Ok(outcome)
    }

    /// Follows the lake until `stop`: catches up first, then takes each
    /// change as it is notified.
    pub fn run(mut self, stop: &AtomicBool) -> Result<(), SearchError> {
        std::fs::create_dir_all(&self.root).map_err(|source| SearchError::Io {
            context: format!("cannot create {}", self.root.display()),
            source,
        })?;
        // Notifications name absolute paths; a relative root would match none.
        self.root = std::fs::canonicalize(&self.root).map_err(|source| SearchError::Io {
            context: format!("cannot resolve {}", self.root.display()),
            source,
        })?;
        let (sender, changes) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = sender.send(event);
        })
        .map_err(watch_error)?;
        watcher
            .watch(&self.root, RecursiveMode::Recursive)
            .map_err(watch_error)?;
        let started = Instant::now();
        let (added, removed) = self.reconcile(&Scope::All)?;
        self.commit()?;
        tracing::info!(
            added,
            removed,
            records = self.index.records(),
            "search index caught up with the lake in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let request = SearchIndex::reindex_request(&self.index.dir);
        let mut last_full_check = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let mut scopes = BTreeSet::new();
            match changes.recv_timeout(Duration::from_millis(250)) {
                Ok(event) => {
                    self.scopes_of(event, &mut scopes);
                    while let Ok(event) = changes.try_recv() {
                        self.scopes_of(event, &mut scopes);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_full_check.elapsed() >= FULL_CHECK_EVERY {
                scopes.insert(Scope::All);
                last_full_check = Instant::now();
            }
            let scopes = match scopes.contains(&Scope::All) {
                true => vec![Scope::All],
                false => scopes.into_iter().collect(),
            };
            for scope in scopes {
                if let Err(e) = self.reconcile(&scope) {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(?scope, "search index: {e}");
                }
            }
            if request.exists() {
                let started = Instant::now();
                let (added, _) = self.rebuild()?;
                let _ = std::fs::remove_file(&request);
                tracing::info!(
                    files = added,
                    records = self.index.records(),
                    "search index rebuilt on request in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
            self.commit_if_due()?;
        }
        self.commit()
    }

    /// The folders a notification is about.
    fn scopes_of(&self, event: notify::Result<notify::Event>, scopes: &mut BTreeSet<Scope>) {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!("lake notifications: {e}; comparing the whole lake");
                scopes.insert(Scope::All);
                return;
            }
        };
        if event.need_rescan() || matches!(event.kind, EventKind::Other) {
            scopes.insert(Scope::All);
            return;
        }
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        for path in &event.paths {
            if let Some(scope) = scope_of(&self.root, path) {
                scopes.insert(scope);
            }
        }
    }
}

/// The folder a changed path belongs to: a data file's or a date folder's
/// own, a whole dataset for its folder; none for temporary files, dead
/// letters and the sink's locks.
pub fn scope_of(root: &Path, path: &Path) -> Option<Scope> {
    let relative = path.strip_prefix(root).ok()?;
    let parts: Vec<&str> = relative.iter().filter_map(|p| p.to_str()).collect();
    let dataset = *parts.first()?;
    if dataset.starts_with(['_', '.']) {
        return None;
    }
    match parts.as_slice() {
        [_] => Some(Scope::Dataset(dataset.to_string())),
        [_, date] => {
            lake::parse_partition_dir_name(date).map(|d| Scope::Folder(dataset.to_string(), d))
        }
        [_, date, name] => {
            let is_data = !name.starts_with(lake::TEMP_PREFIX)
                && name.ends_with(&format!(".{DATA_EXTENSION}"));
            let date = lake::parse_partition_dir_name(date)?;
            is_data.then(|| Scope::Folder(dataset.to_string(), date))
        }
        _ => None,
    }
}

fn in_scope(file: &str, scope: &Scope) -> bool {
    match scope {
        Scope::All => true,
        Scope::Dataset(d) => file.starts_with(&format!("{d}/")),
        Scope::Folder(d, date) => file.starts_with(&format!("{}/", folder_of(d, *date))),
    }
}

fn watch_error(e: notify::Error) -> SearchError {
    SearchError::Io {
        context: "cannot follow the lake folder's changes".into(),
        source: std::io::Error::other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_paths_name_their_folder_and_temporaries_none() {
        let root = Path::new("/lake");
        let date = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let folder = Scope::Folder("T".into(), date);
        assert_eq!(
            scope_of(
                root,
                Path::new("/lake/T/ingestion_date=2026-12-01/p0.parquet")
            ),
            Some(folder.clone())
        );
        assert_eq!(
            scope_of(root, Path::new("/lake/T/ingestion_date=2026-12-01")),
            Some(folder)
        );
        assert_eq!(
            scope_of(root, Path::new("/lake/T")),
            Some(Scope::Dataset("T".into()))
        );
        for ignored in [
            "/lake/T/ingestion_date=2026-12-01/.p0.parquet.tmp",
            "/lake/T/ingestion_date=2026-12-01/p0.jsonl",
            "/lake/_dlq/T/ingestion_date=2026-12-01/x.jsonl",
            "/lake/_sink/T",
            "/elsewhere/T",
        ] {
            assert_eq!(scope_of(root, Path::new(ignored)), None, "{ignored}");
        }
        assert!(in_scope(
            "T/ingestion_date=2026-12-01/a.parquet",
            &Scope::Dataset("T".into())
        ));
        assert!(!in_scope(
            "TX/ingestion_date=2026-12-01/a.parquet",
            &Scope::Dataset("T".into())
        ));
    }
}
