//! Admin endpoints: permissions (`GET/POST/DELETE /api/v2/permissions`)
//! and the audit trail (`GET /api/v2/audit`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json_body::ApiJson;
use crate::permissions::{Permission, Resource};
use crate::query_params::{positive, ApiQuery};
use crate::state::SharedState;

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub username: String,
    /// `lake/<STREAM>`, `warehouse/<table>`, `products` or `admin`.
    pub resource: String,
    /// `read`, `write`, `execute`; for products `view`, `add`, `update`, `delete`.
    pub permission: String,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct GrantRow {
    pub username: String,
    pub resource: String,
    pub permission: String,
    pub granted_by: Option<String>,
    pub granted_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PermissionFilter {
    /// Only this user's grants.
    pub username: Option<String>,
    /// Only grants on this resource.
    pub resource: Option<String>,
}

/// Checks a grant's names; the user's id when it exists.
async fn check_grant(state: &SharedState, grant: &Grant) -> ApiResult<(i64, Resource, Permission)> {
    let resource = Resource::parse(&grant.resource, "resource")?;
    let permission = Permission::parse(&grant.permission).ok_or_else(|| {
        ApiError::bad_parameter(
            "permission",
            format!("{:?} is not a permission", grant.permission),
        )
    })?;
    if !resource.allows(permission) {
        return Err(ApiError::bad_parameter(
            "permission",
            format!(
                "{} does not apply to {}",
                permission.as_str(),
                resource.as_str()
            ),
        ));
    }
    let user: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
        .bind(&grant.username)
        .fetch_optional(&state.pool)
        .await?;
    let user = user.ok_or_else(|| {
        ApiError::bad_parameter("username", format!("there is no user {:?}", grant.username))
    })?;
    Ok((user, resource, permission))
}

/// Lists grants (admin only).
#[utoipa::path(get, path = "/api/v2/permissions", tag = "permissions", security(("bearer" = [])),
    params(PermissionFilter),
    responses(
        (status = 200, body = Vec<GrantRow>),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_permissions(
    State(state): State<SharedState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<PermissionFilter>,
) -> ApiResult<Json<Vec<GrantRow>>> {
    caller.grants.require_admin()?;
    let rows: Vec<GrantRow> = sqlx::query_as(
        "SELECT u.username, p.resource, p.permission, g.username AS granted_by, p.granted_at
         FROM user_permissions p
         JOIN users u ON u.id = p.user_id
         LEFT JOIN users g ON g.id = p.granted_by
         WHERE ($1::text IS NULL OR u.username = $1) AND ($2::text IS NULL OR p.resource = $2)
         ORDER BY u.username, p.resource, p.permission",
    )
    .bind(&filter.username)
    .bind(&filter.resource)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows))
}

/// Grants a permission (admin only); granting one held already changes nothing.
#[utoipa::path(post, path = "/api/v2/permissions", tag = "permissions", security(("bearer" = [])),
    request_body = Grant,
    responses(
        (status = 201, description = "Granted", body = Grant),
        (status = 200, description = "Held already", body = Grant),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn grant(
    State(state): State<SharedState>,
    caller: Caller,
    ApiJson(grant): ApiJson<Grant>,
) -> ApiResult<(StatusCode, Json<Grant>)> {
    caller.grants.require_admin()?;
    let (user, resource, permission) = check_grant(&state, &grant).await?;
    let inserted = sqlx::query(
        "INSERT INTO user_permissions (user_id, resource, permission, granted_by)
         VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, resource, permission) DO NOTHING",
    )
    .bind(user)
    .bind(resource.as_str())
    .bind(permission.as_str())
    .bind(caller.user_id)
    .execute(&state.pool)
    .await?
    .rows_affected();
    let status = if inserted == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(grant)))
}

/// Revokes a permission (admin only); it stops counting on the next request.
#[utoipa::path(delete, path = "/api/v2/permissions", tag = "permissions", security(("bearer" = [])),
    params(
        ("username" = String, Query),
        ("resource" = String, Query),
        ("permission" = String, Query)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "Not held", body = ErrorBody)))]
pub async fn revoke(
    State(state): State<SharedState>,
    caller: Caller,
    ApiQuery(grant): ApiQuery<Grant>,
) -> ApiResult<StatusCode> {
    caller.grants.require_admin()?;
    let (user, resource, permission) = check_grant(&state, &grant).await?;
    let deleted = sqlx::query(
        "DELETE FROM user_permissions WHERE user_id = $1 AND resource = $2 AND permission = $3",
    )
    .bind(user)
    .bind(resource.as_str())
    .bind(permission.as_str())
    .execute(&state.pool)
    .await?
    .rows_affected();
    if deleted == 0 {
        return Err(ApiError::not_found(format!(
            "{} does not hold {} on {}",
            grant.username,
            permission.as_str(),
            resource.as_str()
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries about this resource (e.g. `lake/TRANSACTIONS_FLAT`).
    pub resource: Option<String>,
    /// Entries of this user.
    pub username: Option<String>,
    /// Page number, from 1 (newest entries first).
    #[param(value_type = Option<u64>, minimum = 1)]
    pub page: Option<String>,
    /// Entries per page (default 50, at most 1000).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    pub page_size: Option<String>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct AuditRow {
    pub username: Option<String>,
    pub accessed_at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub body: Option<String>,
    pub status: i32,
    pub resource: Option<String>,
    pub duration_ms: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub page: u64,
    pub page_size: u64,
    pub total: i64,
    pub entries: Vec<AuditRow>,
}

/// Who accessed what, when and how (admin only), newest first.
#[utoipa::path(get, path = "/api/v2/audit", tag = "permissions", security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn audit(
    State(state): State<SharedState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    caller.grants.require_admin()?;
    if let Some(resource) = &query.resource {
        if resource != "sql" {
            Resource::parse(resource, "resource")?;
        }
    }
    let page = positive("page", query.page.as_deref(), 1, 1_000_000)?;
    let page_size = positive("page_size", query.page_size.as_deref(), 50, 1000)?;
    let filter = "($1::text IS NULL OR resource = $1) AND ($2::text IS NULL OR username = $2)";
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM access_log WHERE {filter}"))
        .bind(&query.resource)
        .bind(&query.username)
        .fetch_one(&state.pool)
        .await?;
    let entries: Vec<AuditRow> = sqlx::query_as(&format!(
        "SELECT username, accessed_at, method, path, query, body, status, resource, duration_ms
         FROM access_log WHERE {filter} ORDER BY accessed_at DESC, id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(&query.resource)
    .bind(&query.username)
    .bind(page_size as i64)
    .bind(((page - 1) * page_size) as i64)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(AuditPage {
        page,
        page_size,
        total,
        entries,
    }))
}
