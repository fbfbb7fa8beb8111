//! Re-push (SYSTEM.md section 6): `POST /api/v2/repush/transactions/{id}`
//! sends one transaction of the raw lake again, `POST
//! /api/v2/repush/datasets/{name}` a dataset's history as a job, and `GET
//! /api/v2/repush/{job}` shows what was sent and the proof that the
//! pipeline processed it again. Sending needs `write` on the dataset.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use lakehouse::lake::COL_RAW_JSON;
use lakehouse::topics::{SourcePosition, TRANSACTION_LOG};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::permissions::{Permission, Resource};
use crate::query_params::date;
use crate::repush::proof::{prove, Proof};
use crate::repush::selection::{find_transaction, history};
use crate::repush::store::{self, NewJob, PartitionOffsets};
use crate::repush::{runner, RepushJob};
use crate::state::SharedState;

const DEFAULT_RATE: u32 = 500;
const MAX_RATE: u32 = 10_000;
/// How long `POST /repush/transactions/{id}` waits for its one record.
const TRANSACTION_WAIT: Duration = Duration::from_secs(10);
/// Records listed in a job's report.
const LISTED: usize = 20;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepushRequest {
    /// First `ingestion_date` re-sent (YYYY-MM-DD); default: the oldest.
    pub since: Option<String>,
    /// Last `ingestion_date` re-sent (YYYY-MM-DD); default: today.
    pub until: Option<String>,
    /// Records per second at most (default 500, at most 10,000).
    #[schema(minimum = 1, maximum = 10000)]
    pub rate: Option<u32>,
}

/// One record of a job: where it was read and where it was sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct RepushedRecord {
    pub transaction_id: Option<String>,
    /// `topic:partition:offset` of the record re-sent.
    pub original: String,
    /// `topic:partition:offset` of its new copy.
    pub repushed: String,
    pub sent_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RepushReport {
    pub job: RepushJob,
    /// The first records sent, in the lake's order.
    pub records: Vec<RepushedRecord>,
    pub proof: Proof,
}

fn new_id() -> String {
    format!("rp-{}", crate::ml::store::new_id())
}

async fn job_view(state: &SharedState, id: &str) -> ApiResult<RepushJob> {
    let row = store::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no re-push job {id:?}")))?;
    let sent = store::sent_count(&state.pool, id).await?;
    Ok(RepushJob::of(&row, sent))
}

/// Sends one transaction of the raw lake (its newest copy) again to
/// `transaction_log`, with a fresh `timestamp` and `timestamp_of_reception_log`.
#[utoipa::path(post, path = "/api/v2/repush/transactions/{transaction_id}", tag = "repush",
    security(("bearer" = [])),
    params(("transaction_id" = String, Path, description = "The transaction's `transaction_id`, e.g. TXN-0000002a")),
    responses(
        (status = 201, description = "Sent; the job has the proof", body = RepushJob),
        (status = 202, description = "Accepted; still sending (the broker is slow or away)", body = RepushJob),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "Not in the raw lake", body = ErrorBody)))]
pub async fn transaction(
    State(state): State<SharedState>,
    caller: Caller,
    Path(transaction_id): Path<String>,
) -> ApiResult<(StatusCode, Json<RepushJob>)> {
    caller
        .grants
        .require(&Resource::lake(TRANSACTION_LOG), Permission::Write)?;
    if transaction_id.trim().is_empty() || transaction_id.len() > 200 {
        return Err(ApiError::bad_parameter(
            "transaction_id",
            "a transaction id of 1 to 200 characters",
        ));
    }
    let dataset = state.lake.resolve(TRANSACTION_LOG)?;
    let (partition, offset) = find_transaction(&state.lake, &dataset, &transaction_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "transaction {transaction_id:?} is not in the raw lake ({dataset})"
            ))
        })?;
    let job = NewJob {
        id: new_id(),
        kind: "transaction",
        dataset,
        transaction_id: Some(transaction_id),
        since: None,
        until: None,
        rate: DEFAULT_RATE as i32,
        total: 1,
        bounds: PartitionOffsets::from([(partition, offset)]),
        cursor: Some((partition, offset - 1)),
        created_by: caller.username.clone(),
    };
    let row = store::create(&state.pool, &job).await?;
    runner::start(&state, row.id.clone());
    let started = Instant::now();
    loop {
        let view = job_view(&state, &row.id).await?;
        if view.state != store::RUNNING {
            return Ok((StatusCode::CREATED, Json(view)));
        }
        if started.elapsed() > TRANSACTION_WAIT {
            return Ok((StatusCode::ACCEPTED, Json(view)));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Re-sends a dataset's history (what it holds now, between `since` and
/// `until`) to its topic as a job, at most `rate` records per second.
/// The job survives a restart of the server and sends nothing twice.
#[utoipa::path(post, path = "/api/v2/repush/datasets/{name}", tag = "repush",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "A source dataset (with raw_json), e.g. transaction_log")),
    request_body(content = Option<RepushRequest>, description = "Optional; an empty body re-sends everything"),
    responses(
        (status = 202, description = "The job started", body = RepushJob),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "A re-push of this dataset is running", body = ErrorBody)))]
pub async fn dataset(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<RepushJob>)> {
    let dataset = state.lake.resolve(&name)?;
    caller
        .grants
        .require(&Resource::lake(&dataset), Permission::Write)?;
    let request: RepushRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RepushRequest::default()
    } else {
        crate::json_body::parse(&body)?
    };
    let since = date("since", request.since.as_deref())?;
    let until = date("until", request.until.as_deref())?;
    if let (Some(since), Some(until)) = (since, until) {
        if since > until {
            return Err(ApiError::bad_parameter("until", "until is before since"));
        }
    }
    let rate = request.rate.unwrap_or(DEFAULT_RATE);
    if !(1..=MAX_RATE).contains(&rate) {
        return Err(ApiError::bad_parameter(
            "rate",
            format!("from 1 to {MAX_RATE} records per second"),
        ));
    }
    let schema = state
        .lake
        .schema(&dataset)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{dataset} holds no data yet")))?;
    if schema.index_of(COL_RAW_JSON).is_err() {
        return Err(ApiError::bad_parameter(
            "name",
            format!(
                "{dataset} is derived by stream SQL (it keeps no raw_json); re-push the topic it comes from, such as {TRANSACTION_LOG}"
            ),
        ));
    }
    if let Some(running) = store::running_on(&state.pool, &dataset).await? {
        return Err(ApiError::conflict(format!(
            "a re-push of {dataset} is running: /api/v2/repush/{running}"
        )));
    }
    // Footers are read from disk: off the async workers' hands.
    let (bounds, total) =
        tokio::task::block_in_place(|| history(&state.lake, &dataset, since, until))?;
    let job = NewJob {
        id: new_id(),
        kind: "dataset",
        dataset,
        transaction_id: None,
        since,
        until,
        rate: rate as i32,
        total,
        bounds,
        cursor: None,
        created_by: caller.username.clone(),
    };
    let row = store::create(&state.pool, &job).await?;
    runner::start(&state, row.id.clone());
    Ok((StatusCode::ACCEPTED, Json(RepushJob::of(&row, 0))))
}

/// A re-push job: its progress, the first records it sent, and the proof
/// that the pipeline processed them again (raw lake, derived streams,
/// warehouse tables). Needs `read` on the dataset.
#[utoipa::path(get, path = "/api/v2/repush/{job}", tag = "repush",
    security(("bearer" = [])),
    params(("job" = String, Path, description = "The job's id")),
    responses(
        (status = 200, body = RepushReport),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn report(
    State(state): State<SharedState>,
    caller: Caller,
    Path(job): Path<String>,
) -> ApiResult<Json<RepushReport>> {
    let row = store::get(&state.pool, &job)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no re-push job {job:?}")))?;
    caller
        .grants
        .require(&Resource::lake(&row.dataset), Permission::Read)?;
    let sent = store::sent(&state.pool, &job).await?;
    let proof = prove(&state, &row, &sent).await?;
    let position = |p: i32, o: i64| SourcePosition::new(&row.dataset, p, o).to_string();
    let records = sent
        .iter()
        .take(LISTED)
        .map(|s| RepushedRecord {
            transaction_id: s.transaction_id.clone(),
            original: position(s.source_partition, s.source_offset),
            repushed: position(s.partition, s.offset),
            sent_at: s.sent_at,
        })
        .collect();
    Ok(Json(RepushReport {
        job: RepushJob::of(&row, sent.len() as i64),
        records,
        proof,
    }))
}
