//! Saved models: `<state>/ml/models/<id>.json` holds what a model is (its
//! dataset, target, features with their encoding, quality), and
//! `<id>.model.json` its fitted classifier; both written whole, then
//! renamed into place, so that a crash leaves no half model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::encoding::{FeatureEncoding, Target};
use super::model::{Classifier, ModelKind, Quality};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ModelInfo {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub dataset: String,
    pub target: Target,
    pub kind: ModelKind,
    /// Each feature and how it is encoded (numbers standardised,
    /// categories one-hot over those seen in training).
    pub features: Vec<FeatureEncoding>,
    pub quality: Quality,
    /// Rows read from the dataset (at most `max_rows`).
    pub rows_read: usize,
    pub training_seconds: f64,
}

pub struct Model {
    pub info: ModelInfo,
    pub classifier: Classifier,
}

pub struct ModelStore {
    dir: PathBuf,
    loaded: Mutex<HashMap<String, Arc<Model>>>,
}

impl ModelStore {
    pub fn new(api_state_dir: &Path) -> Self {
        Self {
            dir: api_state_dir.join("ml").join("models"),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    pub fn save(&self, model: Model) -> std::io::Result<Arc<Model>> {
        std::fs::create_dir_all(&self.dir)?;
        let id = model.info.id.clone();
        let weights = serde_json::to_vec(&model.classifier).map_err(std::io::Error::other)?;
        write_whole(&self.dir.join(format!("{id}.model.json")), &weights)?;
        let info = serde_json::to_vec_pretty(&model.info).map_err(std::io::Error::other)?;
        write_whole(&self.dir.join(format!("{id}.json")), &info)?;
        let model = Arc::new(model);
        self.loaded
            .lock()
            .expect("models")
            .insert(id, model.clone());
        Ok(model)
    }

    /// Every saved model's description, newest first.
    pub fn list(&self) -> Vec<ModelInfo> {
        let mut models: Vec<ModelInfo> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.ends_with(".json") && !name.ends_with(".model.json") && !name.starts_with('.')
            })
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect();
        models.sort_by_key(|m| std::cmp::Reverse(m.created_at));
        models
    }

    /// A model by id, loaded once and kept.
    pub fn get(&self, id: &str) -> Option<Arc<Model>> {
        if !is_model_id(id) {
            return None;
        }
        if let Some(model) = self.loaded.lock().expect("models").get(id) {
            return Some(model.clone());
        }
        let info: ModelInfo =
            serde_json::from_slice(&std::fs::read(self.dir.join(format!("{id}.json"))).ok()?)
                .ok()?;
        let classifier: Classifier =
            serde_json::from_slice(&std::fs::read(self.dir.join(format!("{id}.model.json"))).ok()?)
                .ok()?;
        let model = Arc::new(Model { info, classifier });
        self.loaded
            .lock()
            .expect("models")
            .insert(id.to_string(), model.clone());
        Some(model)
    }
}

/// Ids are 32 hex digits: nothing else names a file.
pub fn is_model_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn new_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("model");
    let temp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&temp, bytes)?;
    std::fs::File::open(&temp)?.sync_all()?;
    std::fs::rename(&temp, path)
}
