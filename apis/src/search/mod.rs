//! Full-text search over the lake: a tantivy index of every text column of
//! every stream, one document per record with its dataset, file, Kafka
//! partition and offset, kept current by the indexer as files land and go.
//!
//! Each indexed file also has one marker document; the markers are what
//! the index says it holds, so that after a crash the indexer adds only the
//! files it has no marker for. A file's records and its marker are always
//! committed together (tantivy commits are atomic), so a file is either
//! wholly in the index or not at all: no duplicates, no half files.

pub mod documents;
pub mod indexer;
pub mod query;

use std::path::{Path, PathBuf};

use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, STORED,
    STRING,
};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, TextAnalyzer};
use tantivy::{Index, IndexReader, ReloadPolicy};

/// The tokenizer of the `exact` field: a whole value, lower-cased, so that
/// `TXN-0042AB` or `txn-0042ab` finds that id exactly.
const EXACT_TOKENIZER: &str = "whole_value_lowercase";

/// `kind` of a record's document and of a file's marker.
pub const KIND_RECORD: &str = "record";
pub const KIND_FILE: &str = "file";

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {file}: {message}")]
    File { file: String, message: String },
    #[error("the search index is in use by another process (a running API server)")]
    Busy,
}

/// The index's fields.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    pub kind: Field,
    /// The dataset (the lake's stream folder name).
    pub resource: Field,
    /// The file's path inside the lake (`STREAM/ingestion_date=D/NAME.parquet`).
    pub file: Field,
    /// The file's folder (`STREAM/ingestion_date=D`), on markers only.
    pub folder: Field,
    /// The ingestion date, in days since 1970-01-01.
    pub date: Field,
    pub partition: Field,
    pub offset: Field,
    /// Every text value, tokenized into words.
    pub text: Field,
    /// Every text value whole (ids, codes).
    pub exact: Field,
    /// The record as JSON (its columns but `raw_json`).
    pub record: Field,
}

impl Fields {
    fn schema() -> (Schema, Fields) {
        let mut builder = Schema::builder();
        let number = NumericOptions::default().set_indexed().set_stored();
        let exact = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(EXACT_TOKENIZER)
                .set_index_option(IndexRecordOption::Basic),
        );
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("default")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let fields = Fields {
            kind: builder.add_text_field("kind", STRING),
            resource: builder.add_text_field("resource", STRING | STORED),
            file: builder.add_text_field("file", STRING | STORED),
            folder: builder.add_text_field("folder", STRING),
            date: builder.add_i64_field("date", number.clone()),
            partition: builder.add_i64_field("partition", NumericOptions::default().set_stored()),
            offset: builder.add_i64_field("offset", NumericOptions::default().set_stored()),
            text: builder.add_text_field("text", text),
            exact: builder.add_text_field("exact", exact),
            record: builder.add_text_field("record", STORED),
        };
        (builder.build(), fields)
    }
}

/// The index on disk and a reader that follows its commits.
pub struct SearchIndex {
    /// What the indexer has done since the server started (across restarts of the indexer).
    pub stats: std::sync::Arc<indexer::IndexerStats>,
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
    pub dir: PathBuf,
}

impl SearchIndex {
    /// Where the server keeps it, under its state folder.
    pub fn dir_in(api_state_dir: &Path) -> PathBuf {
        api_state_dir.join("search")
    }

    /// Opens the index in `dir`, creating it if there is none.
    pub fn open(dir: &Path) -> Result<Self, SearchError> {
        let index_dir = dir.join("index");
        std::fs::create_dir_all(&index_dir).map_err(|source| SearchError::Io {
            context: format!("cannot create {}", index_dir.display()),
            source,
        })?;
        let (schema, fields) = Fields::schema();
        let directory = tantivy::directory::MmapDirectory::open(&index_dir)
            .map_err(|e| SearchError::Index(e.into()))?;
        let index = Index::open_or_create(directory, schema)?;
        index.tokenizers().register(
            EXACT_TOKENIZER,
            TextAnalyzer::builder(RawTokenizer::default())
                .filter(LowerCaser)
                .build(),
        );
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()?;
        Ok(Self {
            stats: Default::default(),
            index,
            reader,
            fields,
            dir: dir.to_path_buf(),
        })
    }

    /// The file whose presence asks a running indexer to rebuild.
    pub fn reindex_request(dir: &Path) -> PathBuf {
        dir.join("reindex-requested")
    }

    /// Records indexed (marker documents aside).
    pub fn records(&self) -> u64 {
        let searcher = self.reader.searcher();
        let query = tantivy::query::TermQuery::new(
            tantivy::Term::from_field_text(self.fields.kind, KIND_RECORD),
            IndexRecordOption::Basic,
        );
        searcher
            .search(&query, &tantivy::collector::Count)
            .unwrap_or(0) as u64
    }
}

/// Days since 1970-01-01 of a date.
pub fn day_number(date: chrono::NaiveDate) -> i64 {
    (date - chrono::NaiveDate::default()).num_days()
}
