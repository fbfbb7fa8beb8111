//! Tokens and users: `POST/DELETE /api/token`, `POST /api/v2/users`,
//! `DELETE /api/v2/users/{name}/tokens`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use lakehouse::identity::{self, IdentityError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json_body::ApiJson;
use crate::state::SharedState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub username: String,
    #[schema(format = Password)]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    pub expires_at: DateTime<Utc>,
}

/// Exchanges a user name and password for a bearer token.
#[utoipa::path(post, path = "/api/token", tag = "identity", request_body = TokenRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, body = ErrorBody),
        (status = 401, description = "Wrong user name or password", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<SharedState>,
    ApiJson(request): ApiJson<TokenRequest>,
) -> ApiResult<Json<TokenResponse>> {
    if request.username.is_empty() {
        return Err(ApiError::bad_parameter("username", "username is empty"));
    }
    if request.password.len() > identity::MAX_PASSWORD_BYTES {
        return Err(ApiError::bad_parameter("password", "password is too long"));
    }
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT id, password_hash FROM users WHERE username = $1 AND disabled_at IS NULL",
    )
    .bind(&request.username)
    .fetch_optional(&state.pool)
    .await?;
    // A missing user costs the same hash check as a wrong password.
    let (user_id, hash) = match row {
        Some((id, hash)) => (Some(id), hash),
        None => (None, identity::decoy_hash().to_string()),
    };
    let password = request.password;
    let matches = tokio::task::spawn_blocking(move || identity::verify_password(&password, &hash))
        .await
        .map_err(ApiError::internal)?;
    let Some(user_id) = user_id.filter(|_| matches) else {
        return Err(ApiError::unauthorized("wrong user name or password"));
    };
    let token = identity::new_token();
    let expires_at = Utc::now()
        + chrono::Duration::from_std(state.settings.token_ttl).map_err(ApiError::internal)?;
    sqlx::query("INSERT INTO api_tokens (user_id, token_hash, expires_at) VALUES ($1, $2, $3)")
        .bind(user_id)
        .bind(&token.digest)
        .bind(expires_at)
        .execute(&state.pool)
        .await?;
    Ok(Json(TokenResponse {
        access_token: token.secret,
        token_type: "bearer".into(),
        expires_at,
    }))
}

/// Revokes the presented token; it stops working at once.
#[utoipa::path(delete, path = "/api/token", tag = "identity", security(("bearer" = [])),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody)))]
pub async fn delete_token(
    State(state): State<SharedState>,
    caller: Caller,
) -> ApiResult<StatusCode> {
    sqlx::query(
        "UPDATE api_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(&caller.token_digest)
    .execute(&state.pool)
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    #[schema(format = Password, min_length = 8)]
    pub password: String,
    #[serde(default)]
    pub is_admin: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
}

/// Creates a user (admin only).
#[utoipa::path(post, path = "/api/v2/users", tag = "identity", security(("bearer" = [])),
    request_body = NewUser,
    responses(
        (status = 201, body = User),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody)))]
pub async fn create_user(
    State(state): State<SharedState>,
    caller: Caller,
    ApiJson(user): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    caller.grants.require_admin()?;
    identity::validate_username(&user.username)
        .map_err(|e| ApiError::bad_parameter("username", e.to_string()))?;
    identity::validate_password(&user.password)
        .map_err(|e| ApiError::bad_parameter("password", e.to_string()))?;
    let password = user.password;
    let hash = tokio::task::spawn_blocking(move || identity::hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let mut conn = state.pool.acquire().await?;
    let id = identity::insert_user(&mut conn, &user.username, &hash, user.is_admin)
        .await
        .map_err(|e| match e {
            IdentityError::UserExists(name) => {
                ApiError::conflict(format!("user {name:?} already exists"))
            }
            IdentityError::Sql(e) => ApiError::from(e),
            other => ApiError::bad_parameter("username", other.to_string()),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(User {
            id,
            username: user.username,
            is_admin: user.is_admin,
        }),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    pub revoked: u64,
}

/// Revokes every live token of a user (admin only).
#[utoipa::path(delete, path = "/api/v2/users/{name}/tokens", tag = "identity",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "User name")),
    responses(
        (status = 200, body = Revoked),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn revoke_user_tokens(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Revoked>> {
    caller.grants.require_admin()?;
    let user: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
        .bind(&name)
        .fetch_optional(&state.pool)
        .await?;
    let Some(user_id) = user else {
        return Err(ApiError::not_found(format!("there is no user {name:?}")));
    };
    let revoked = sqlx::query(
        "UPDATE api_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(&state.pool)
    .await?
    .rows_affected();
    Ok(Json(Revoked { revoked }))
}
