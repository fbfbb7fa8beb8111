//! Models over the lake: `POST /api/v2/ml/train` starts a training job,
//! `GET /api/v2/ml/jobs/{id}` follows it, `GET /api/v2/ml/models` lists the
//! saved models and `POST /api/v2/ml/models/{id}/predict` uses one.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use datafusion::prelude::col;
use lakehouse::lake::{COL_OFFSET, COL_PARTITION};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json_body::ApiJson;
use crate::ml::encoding::{encode_row, Target};
use crate::ml::jobs::{JobState, JobStatus};
use crate::ml::model::{train as fit, ModelKind, TrainingSet};
use crate::ml::store::{new_id, Model, ModelInfo};
use crate::permissions::{Permission, Resource};
use crate::state::SharedState;

const DEFAULT_MAX_ROWS: usize = 100_000;
const MAX_ROWS: usize = 1_000_000;
const MAX_PREDICT_ROWS: usize = 10_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainRequest {
    /// The dataset to learn from (needs `execute` on `lake/<dataset>`).
    pub dataset: String,
    /// What to predict: `COLUMN OP VALUE`, e.g. `status == completed`.
    pub target: String,
    /// Columns to predict it from; numbers are standardised, text is one-hot.
    pub features: Vec<String>,
    /// `logistic_regression` (default) or `random_forest`.
    pub model: Option<ModelKind>,
    /// Rows read at most (default 100,000, at most 1,000,000).
    pub max_rows: Option<usize>,
    /// Share of the rows held out to measure the model (default 0.2).
    pub held_out: Option<f64>,
    /// Seed of the split and of the forest (default 1).
    pub seed: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrainStarted {
    pub job_id: String,
    /// Where its progress is.
    pub status: String,
}

/// Column names of a dataset, matched in any case.
fn column_named(columns: &[String], name: &str, parameter: &str) -> ApiResult<String> {
    columns
        .iter()
        .find(|c| *c == name)
        .or_else(|| columns.iter().find(|c| c.eq_ignore_ascii_case(name)))
        .cloned()
        .ok_or_else(|| {
            ApiError::bad_parameter(
                parameter,
                format!("{name:?} is not a column; columns: {}", columns.join(", ")),
            )
        })
}

/// Starts training a model; answers at once with the job to follow.
#[utoipa::path(post, path = "/api/v2/ml/train", tag = "ml", security(("bearer" = [])),
    request_body = TrainRequest,
    responses(
        (status = 202, description = "Training started", body = TrainStarted),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn train(
    State(state): State<SharedState>,
    caller: Caller,
    ApiJson(request): ApiJson<TrainRequest>,
) -> ApiResult<(StatusCode, Json<TrainStarted>)> {
    let dataset = state.lake.resolve(&request.dataset)?;
    caller
        .grants
        .require(&Resource::lake(&dataset), Permission::Execute)?;
    let mut target =
        Target::parse(&request.target).map_err(|e| ApiError::bad_parameter("target", e))?;
    let schema = state
        .lake
        .schema(&dataset)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{dataset} holds no data yet")))?;
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    target.column = column_named(&columns, &target.column, "target")?;
    if request.features.is_empty() {
        return Err(ApiError::bad_parameter(
            "features",
            "name at least one column",
        ));
    }
    let mut features = Vec::new();
    for name in &request.features {
        let column = column_named(&columns, name, "features")?;
        if column == target.column {
            return Err(ApiError::bad_parameter(
                "features",
                format!("{column} is the target; a model may not see it"),
            ));
        }
        if !features.contains(&column) {
            features.push(column);
        }
    }
    let max_rows = request.max_rows.unwrap_or(DEFAULT_MAX_ROWS);
    if !(100..=MAX_ROWS).contains(&max_rows) {
        return Err(ApiError::bad_parameter(
            "max_rows",
            format!("from 100 to {MAX_ROWS}"),
        ));
    }
    let held_out = request.held_out.unwrap_or(0.2);
    if !(0.05..=0.5).contains(&held_out) {
        return Err(ApiError::bad_parameter("held_out", "from 0.05 to 0.5"));
    }
    let kind = request.model.unwrap_or(ModelKind::LogisticRegression);
    let seed = request.seed.unwrap_or(1);
    let id = new_id();
    state.ml_jobs.start(JobStatus {
        id: id.clone(),
        dataset: dataset.clone(),
        created_by: Some(caller.username.clone()),
        state: JobState::Running,
        phase: "reading".into(),
        progress: 0.0,
        started_at: Utc::now(),
        finished_at: None,
        model_id: None,
        error: None,
    });
    let job = id.clone();
    let user = caller.username.clone();
    tokio::spawn(async move {
        let outcome = run_training(
            &state, &job, &dataset, target, features, kind, max_rows, held_out, seed, user,
        )
        .await;
        state.ml_jobs.update(&job, |status| {
            status.finished_at = Some(Utc::now());
            match outcome {
                Ok(model_id) => {
                    status.state = JobState::Done;
                    status.phase = "saved".into();
                    status.progress = 1.0;
                    status.model_id = Some(model_id);
                }
                Err(e) => {
                    status.state = JobState::Failed;
                    status.error = Some(e);
                }
            }
        });
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(TrainStarted {
            status: format!("/api/v2/ml/jobs/{id}"),
            job_id: id,
        }),
    ))
}

#[allow(clippy::too_many_arguments)]
async fn run_training(
    state: &SharedState,
    job: &str,
    dataset: &str,
    target: Target,
    features: Vec<String>,
    kind: ModelKind,
    max_rows: usize,
    held_out: f64,
    seed: u64,
    user: String,
) -> Result<String, String> {
    let started = Instant::now();
    let mut columns = vec![target.column.clone()];
    columns.extend(features.iter().cloned());
    let rows = read_rows(state, dataset, &columns, max_rows)
        .await
        .map_err(|e| format!("reading {dataset}: {e}"))?;
    let rows_read = rows.len();
    let progress_state = state.clone();
    let progress_job = job.to_string();
    let trained = tokio::task::spawn_blocking(move || {
        let progress = |phase: &str, share: f64| {
            progress_state.ml_jobs.update(&progress_job, |s| {
                s.phase = phase.to_string();
                s.progress = share;
            })
        };
        let trained = fit(
            TrainingSet {
                target: &target,
                feature_names: &features,
                rows,
            },
            kind,
            held_out,
            seed,
            &progress,
        );
        trained.map(|t| (t, target))
    })
    .await
    .map_err(|e| e.to_string())??;
    let (trained, target) = trained;
    let id = new_id();
    let model = Model {
        info: ModelInfo {
            id: id.clone(),
            created_at: Utc::now(),
            created_by: Some(user),
            dataset: dataset.to_string(),
            target,
            kind,
            features: trained.features,
            quality: trained.quality,
            rows_read,
            training_seconds: started.elapsed().as_secs_f64(),
        },
        classifier: trained.classifier,
    };
    let models = state.ml_models.clone();
    tokio::task::spawn_blocking(move || models.save(model))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("saving the model: {e}"))?;
    Ok(id)
}

/// Up to `limit` rows of `columns`, as JSON objects by the API's JSON rules.
async fn read_rows(
    state: &SharedState,
    dataset: &str,
    columns: &[String],
    limit: usize,
) -> Result<Vec<Map<String, Value>>, String> {
    let table = state
        .lake
        .table(dataset)
        .await
        .map_err(|e| e.body().error.message)?
        .ok_or("it holds no data")?;
    let context = state.lake.context();
    let names: Vec<&str> = columns.iter().map(String::as_str).collect();
    // The lake's own order, so that the same request reads the same rows
    // and splits them the same way.
    let order = [COL_PARTITION, COL_OFFSET].map(|c| col(c).sort(true, false));
    let batches = context
        .read_table(table)
        .and_then(|frame| frame.sort(order.to_vec()))
        .and_then(|frame| frame.limit(0, Some(limit)))
        .and_then(|frame| frame.select_columns(&names))
        .map_err(|e| e.to_string())?
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    let out = crate::lake::encode::ndjson(&batches).map_err(|e| e.body().error.message)?;
    std::str::from_utf8(&out)
        .map_err(|e| e.to_string())?
        .lines()
        .map(|line| serde_json::from_str(line).map_err(|e| e.to_string()))
        .collect()
}

/// A training job's state and progress.
#[utoipa::path(get, path = "/api/v2/ml/jobs/{id}", tag = "ml", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, body = JobStatus),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn job(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<JobStatus>> {
    let missing = || ApiError::not_found(format!("there is no training job {id:?}"));
    let job = state.ml_jobs.get(&id).ok_or_else(missing)?;
    caller
        .grants
        .require(&Resource::lake(&job.dataset), Permission::Execute)?;
    Ok(Json(job))
}

/// The saved models of the datasets the caller may read, newest first.
#[utoipa::path(get, path = "/api/v2/ml/models", tag = "ml", security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<ModelInfo>),
        (status = 401, body = ErrorBody)))]
pub async fn models(
    State(state): State<SharedState>,
    caller: Caller,
) -> ApiResult<Json<Vec<ModelInfo>>> {
    let store = state.ml_models.clone();
    let all = tokio::task::spawn_blocking(move || store.list())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        all.into_iter()
            .filter(|m| {
                caller
                    .grants
                    .has(&Resource::lake(&m.dataset), Permission::Read)
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    /// Records with the model's features (other fields are ignored).
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Map<String, Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Prediction {
    /// The row's place in the request, from 0.
    pub row: usize,
    /// Whether the target's condition is predicted to hold; absent with `error`.
    pub prediction: Option<bool>,
    /// Why this row could not be predicted (a missing value, an unknown category).
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Predictions {
    pub model_id: String,
    /// What is predicted, e.g. `STATUS == completed`.
    pub target: String,
    pub predictions: Vec<Prediction>,
}

/// Predicts the target for one or many rows (needs `read` on the model's dataset).
#[utoipa::path(post, path = "/api/v2/ml/models/{id}/predict", tag = "ml", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = PredictRequest,
    responses(
        (status = 200, body = Predictions),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn predict(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<PredictRequest>,
) -> ApiResult<Json<Predictions>> {
    if request.rows.is_empty() || request.rows.len() > MAX_PREDICT_ROWS {
        return Err(ApiError::bad_parameter(
            "rows",
            format!("from 1 to {MAX_PREDICT_ROWS} rows"),
        ));
    }
    let store = state.ml_models.clone();
    let lookup = id.clone();
    let model = tokio::task::spawn_blocking(move || store.get(&lookup))
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("there is no model {id:?}")))?;
    caller
        .grants
        .require(&Resource::lake(&model.info.dataset), Permission::Read)?;
    let answer = tokio::task::spawn_blocking(move || {
        let mut predictions: Vec<Prediction> = Vec::with_capacity(request.rows.len());
        let mut encoded = Vec::new();
        let mut places = Vec::new();
        for (row, values) in request.rows.iter().enumerate() {
            // Feature names in any case, as the model's columns are.
            let value_of = |name: &str| {
                values
                    .get(name)
                    .or_else(|| {
                        values
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(name))
                            .map(|(_, v)| v)
                    })
                    .cloned()
                    .unwrap_or(Value::Null)
            };
            match encode_row(&model.info.features, value_of) {
                Ok(numbers) => {
                    places.push(predictions.len());
                    encoded.push(numbers);
                    predictions.push(Prediction {
                        row,
                        prediction: None,
                        error: None,
                    });
                }
                Err(e) => predictions.push(Prediction {
                    row,
                    prediction: None,
                    error: Some(e),
                }),
            }
        }
        let predicted = model.classifier.predict(&encoded)?;
        for (place, value) in places.into_iter().zip(predicted) {
            predictions[place].prediction = Some(value);
        }
        let t = &model.info.target;
        Ok::<_, String>(Predictions {
            model_id: model.info.id.clone(),
            target: format!("{} {} {}", t.column, t.op, t.value),
            predictions,
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(Json(answer))
}
