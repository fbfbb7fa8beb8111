//! What every request goes through, refused ones included: the body limit,
//! the caller's identity, the rate limit, and its `access_log` entry
//! (written off the request path, see `audit::writer`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use crate::audit::{redact, AuditEntry};
use crate::auth::{bearer_token, caller_for_token, Identity};
use crate::error::ApiError;
use crate::rate_limit::RateKey;
use crate::state::AppState;

pub async fn pipeline(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let accessed_at = Utc::now();
    let (mut parts, body) = request.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let query = redact::query(parts.uri.query());
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let client = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());

    let mut identity = Identity::Anonymous;
    let mut logged_body = None;
    let response = 'respond: {
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let limit = state.settings.max_body_bytes;
        if declared.is_some_and(|n| n > limit) {
            break 'respond too_large(limit);
        }
        let bytes = match axum::body::to_bytes(body, limit).await {
            Ok(bytes) => bytes,
            Err(_) => break 'respond too_large(limit),
        };
        logged_body = redact::body(&bytes);

        if let Some(token) = bearer_token(&parts.headers) {
            identity = match caller_for_token(&state.pool, token).await {
                Ok(Some(caller)) => Identity::Caller(caller),
                Ok(None) => Identity::Rejected,
                Err(e) => break 'respond ApiError::from(e).into_response(),
            };
        }
        let key = match (&identity, client) {
            (Identity::Caller(caller), _) => Some(RateKey::Token(caller.token_digest.clone())),
            (_, Some(address)) => Some(RateKey::Address(address)),
            _ => None,
        };
        if key.is_some_and(|key| !state.limits.allow(&key)) {
            break 'respond ApiError::rate_limited().into_response();
        }
        parts.extensions.insert(identity.clone());
        next.run(Request::from_parts(parts, Body::from(bytes)))
            .await
    };

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state
        .http_metrics
        .observe(&method, route.as_deref(), status, elapsed);
    let (user_id, username) = match &identity {
        Identity::Caller(caller) => (Some(caller.user_id), Some(caller.username.clone())),
        _ => (None, None),
    };
    state.audit.record(AuditEntry {
        entry_id: entry_id(),
        user_id,
        username,
        accessed_at,
        method: method.to_string(),
        resource: audit_resource(&path),
        path,
        query,
        body: logged_body,
        status: i32::from(status),
        duration_ms: elapsed.as_secs_f64() * 1000.0,
    });
    response
}

fn too_large(limit: usize) -> Response {
    ApiError::payload_too_large(format!("the request body is over {limit} bytes")).into_response()
}

/// A unique id per entry, so that replaying the spool never doubles a row.
fn entry_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The resource a request touched, as `GET /api/v2/audit?resource=` names it.
pub fn audit_resource(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", "v1", "products", ..] => Some("products".to_string()),
        ["api", "v2", "datasets", name, ..] => Some(format!("lake/{name}")),
        ["api", "v2", "warehouse", name, ..] => Some(format!("warehouse/{name}")),
        ["api", "v2", "metrics", ..] => Some(format!("lake/{}", crate::lake::METRICS_DATASET)),
        ["api", "v2", "sql"] => Some("sql".to_string()),
        ["api", "v2", "search"] => Some("search".to_string()),
        ["api", "v2", "ml", ..] => Some("ml".to_string()),
        ["api", "v2", "repush", "transactions", ..] => {
            Some(format!("lake/{}", lakehouse::topics::TRANSACTION_LOG))
        }
        ["api", "v2", "repush", "datasets", name, ..] => Some(format!("lake/{name}")),
        ["api", "v2", "repush", ..] => Some("repush".to_string()),
        ["api", "v2", "users" | "permissions" | "audit" | "purge", ..] => Some("admin".to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_filed_under_the_resource_they_touch() {
        assert_eq!(
            audit_resource("/api/v2/datasets/TRANSACTIONS_FLAT").as_deref(),
            Some("lake/TRANSACTIONS_FLAT")
        );
        assert_eq!(
            audit_resource("/api/v2/datasets/X/versions").as_deref(),
            Some("lake/X")
        );
        assert_eq!(
            audit_resource("/api/v2/warehouse/t").as_deref(),
            Some("warehouse/t")
        );
        assert_eq!(
            audit_resource("/api/v1/products/3").as_deref(),
            Some("products")
        );
        assert_eq!(audit_resource("/health"), None);
        assert_eq!(entry_id().len(), 32);
    }
}
