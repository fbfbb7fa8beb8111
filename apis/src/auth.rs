//! Who is calling: the bearer token of a request, looked up with its user's
//! grants on every request (one indexed query, no cache), so that a revoked
//! or expired token and a revoked grant stop working on the next request.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use sqlx::PgPool;

use crate::error::ApiError;
use crate::permissions::Grants;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: i64,
    pub username: String,
    pub grants: Grants,
    /// Digest of the presented token (what `DELETE /api/token` revokes).
    pub token_digest: Vec<u8>,
}

/// What the request pipeline found out about the request's credentials;
/// kept in the request's extensions for handlers and the audit entry.
#[derive(Debug, Clone)]
pub enum Identity {
    Anonymous,
    /// A token was presented but is unknown, revoked or expired.
    Rejected,
    Caller(Caller),
}

/// The bearer token of a request, if it has one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Looks a token up; `None` when it is not a live token of an enabled user.
pub async fn caller_for_token(pool: &PgPool, token: &str) -> Result<Option<Caller>, sqlx::Error> {
    if token.len() > 256 {
        return Ok(None);
    }
    let digest = lakehouse::identity::token_digest(token);
    #[derive(sqlx::FromRow)]
    struct TokenOwner {
        id: i64,
        username: String,
        is_admin: bool,
        resources: Vec<String>,
        permissions: Vec<String>,
    }
    let row: Option<TokenOwner> = sqlx::query_as(
        "SELECT u.id, u.username, u.is_admin,
                COALESCE(array_agg(p.resource) FILTER (WHERE p.resource IS NOT NULL), '{}') AS resources,
                COALESCE(array_agg(p.permission) FILTER (WHERE p.resource IS NOT NULL), '{}') AS permissions
         FROM api_tokens t
         JOIN users u ON u.id = t.user_id
         LEFT JOIN user_permissions p ON p.user_id = u.id
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now()
           AND u.disabled_at IS NULL
         GROUP BY u.id, u.username, u.is_admin",
    )
    .bind(&digest)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|owner| Caller {
        user_id: owner.id,
        username: owner.username,
        grants: Grants::new(
            owner.is_admin,
            owner.resources.into_iter().zip(owner.permissions),
        ),
        token_digest: digest,
    }))
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Identity>() {
            Some(Identity::Caller(caller)) => Ok(caller.clone()),
            Some(Identity::Rejected) => Err(ApiError::unauthorized(
                "the bearer token is invalid, expired or revoked; get a new one at POST /api/token",
            )),
            _ => Err(ApiError::unauthorized(
                "this needs a bearer token (Authorization: Bearer <token>) from POST /api/token",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_bearer_token_is_read_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer lh_abc"),
        );
        assert_eq!(bearer_token(&headers), Some("lh_abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  lh_abc "),
        );
        assert_eq!(bearer_token(&headers), Some("lh_abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YTpi"),
        );
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&headers), None);
    }
}
