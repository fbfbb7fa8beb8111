//! A search: the user's query over words and whole values, narrowed to the
//! datasets the caller may read, a `since` date and one resource, its hits
//! ranked by score and grouped by dataset and file.

use std::ops::Bound;

use serde::Serialize;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{TantivyDocument, Term};
use utoipa::ToSchema;

use super::{day_number, SearchIndex, KIND_RECORD};

pub struct SearchRequest<'a> {
    pub query: &'a str,
    /// The datasets the caller may read; `None`: all of them (an admin).
    pub readable: Option<Vec<String>>,
    pub resource: Option<String>,
    pub since: Option<chrono::NaiveDate>,
    pub page: usize,
    pub page_size: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchPage {
    pub query: String,
    /// Matching records in all (over every page).
    pub total: u64,
    pub page: usize,
    pub page_size: usize,
    /// This page's hits by dataset, then file, in the order of their best score.
    pub resources: Vec<ResourceHits>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceHits {
    /// `lake/<STREAM>`.
    pub resource: String,
    pub dataset: String,
    pub files: Vec<FileHits>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FileHits {
    /// The file's path in the lake.
    pub file: String,
    pub hits: Vec<Hit>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Hit {
    pub score: f32,
    pub kafka_partition: i64,
    pub kafka_offset: i64,
    pub ingestion_date: String,
    /// The record's columns.
    #[schema(value_type = Object)]
    pub record: serde_json::Value,
}

impl SearchIndex {
    pub fn search(&self, request: &SearchRequest) -> Result<SearchPage, SearchQueryError> {
        let fields = &self.fields;
        let mut parser = QueryParser::for_index(&self.index, vec![fields.text, fields.exact]);
        parser.set_conjunction_by_default();
        let parsed = parser
            .parse_query(request.query)
            .map_err(|e| SearchQueryError::Bad(e.to_string()))?;
        let term = |field, text: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, text),
                IndexRecordOption::Basic,
            ))
        };
        let mut must: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, parsed),
            (Occur::Must, term(fields.kind, KIND_RECORD)),
        ];
        if let Some(readable) = &request.readable {
            let any: Vec<(Occur, Box<dyn Query>)> = readable
                .iter()
                .map(|d| (Occur::Should, term(fields.resource, d)))
                .collect();
            if any.is_empty() {
                return Ok(SearchPage::empty(request));
            }
            must.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
        if let Some(resource) = &request.resource {
            must.push((Occur::Must, term(fields.resource, resource)));
        }
        if let Some(since) = request.since {
            must.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_i64(fields.date, day_number(since))),
                    Bound::Unbounded,
                )),
            ));
        }
        let query = BooleanQuery::new(must);
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(request.page_size)
            .and_offset((request.page - 1) * request.page_size);
        let (total, hits) = searcher.search(&query, &(Count, top))?;
        let mut page = SearchPage::empty(request);
        page.total = total as u64;
        for (score, address) in hits {
            let doc: TantivyDocument = searcher.doc(address)?;
            let text = |field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let number = |field| doc.get_first(field).and_then(|v| v.as_i64()).unwrap_or(-1);
            let dataset = text(fields.resource);
            let file = text(fields.file);
            let days = number(fields.date);
            let hit = Hit {
                score,
                kafka_partition: number(fields.partition),
                kafka_offset: number(fields.offset),
                ingestion_date: (chrono::NaiveDate::default() + chrono::Duration::days(days))
                    .to_string(),
                record: serde_json::from_str(&text(fields.record))
                    .unwrap_or(serde_json::Value::Null),
            };
            page.add(dataset, file, hit);
        }
        Ok(page)
    }
}

#[derive(Debug)]
pub enum SearchQueryError {
    /// The query's text does not parse.
    Bad(String),
    Index(tantivy::TantivyError),
}

impl From<tantivy::TantivyError> for SearchQueryError {
    fn from(e: tantivy::TantivyError) -> Self {
        SearchQueryError::Index(e)
    }
}

impl SearchPage {
    fn empty(request: &SearchRequest) -> Self {
        Self {
            query: request.query.to_string(),
            total: 0,
            page: request.page,
            page_size: request.page_size,
            resources: Vec::new(),
        }
    }

    /// Files the hit under its dataset and file, keeping first-seen order.
    fn add(&mut self, dataset: String, file: String, hit: Hit) {
        let position = match self.resources.iter().position(|r| r.dataset == dataset) {
            Some(i) => i,
            None => {
                self.resources.push(ResourceHits {
                    resource: format!("lake/{dataset}"),
                    dataset,
                    files: Vec::new(),
                });
                self.resources.len() - 1
            }
        };
        let files = &mut self.resources[position].files;
        match files.iter_mut().find(|f| f.file == file) {
            Some(f) => f.hits.push(hit),
            None => files.push(FileHits {
                file,
                hits: vec![hit],
            }),
        }
    }
}
