//! Users, passwords and bearer tokens (SYSTEM.md section 6), shared by the
//! API server and `lakectl user add`.
//!
//! Passwords are kept only as argon2id PHC strings. Tokens are 256 random
//! bits handed to the client once; the database keeps their SHA-256 digest,
//! which is enough for a secret of that entropy (a slow hash protects
//! guessable secrets, not random ones) and lets every request be checked
//! with one indexed lookup.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

/// Prefix of every token, so that a leaked one is recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "lh_";
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longer passwords are refused: hashing cost grows with them.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("user name {0:?} is invalid: use 1 to 64 letters, digits or . _ @ -")]
    InvalidUsername(String),
    #[error("password must have at least {MIN_PASSWORD_CHARS} characters and at most {MAX_PASSWORD_BYTES} bytes")]
    InvalidPassword,
    #[error("user {0:?} already exists")]
    UserExists(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

pub fn validate_username(name: &str) -> Result<(), IdentityError> {
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(IdentityError::InvalidUsername(name.to_string()))
    }
}

pub fn validate_password(password: &str) -> Result<(), IdentityError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(IdentityError::InvalidPassword);
    }
    Ok(())
}

/// An argon2id PHC string with a fresh salt. CPU-heavy (tens of
/// milliseconds): async callers run it on a blocking thread.
pub fn hash_password(password: &str) -> Result<String, IdentityError> {
    validate_password(password)?;
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| IdentityError::Hash(e.to_string()))
}

/// True when `password` matches the PHC string; a malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A PHC string no password matches, verified against when a user does not
/// exist so that a login takes as long for a wrong name as for a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let mut random = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random);
        hash_password(&secret).expect("hashing a random password")
    })
}

/// A new bearer token: the secret for the client, the digest for the database.
pub struct NewToken {
    pub secret: String,
    pub digest: Vec<u8>,
}

pub fn new_token() -> NewToken {
    let mut random = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let secret = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    );
    let digest = token_digest(&secret);
    NewToken { secret, digest }
}

pub fn token_digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A random password for a user created without one (printed once).
pub fn random_password() -> String {
    let mut random = [0u8; 18];
    rand::rngs::OsRng.fill_bytes(&mut random);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
}

/// Creates a user with an already computed hash; `UserExists` if the name is taken.
pub async fn insert_user(
    conn: &mut PgConnection,
    username: &str,
    password_hash: &str,
    is_admin: bool,
) -> Result<i64, IdentityError> {
    validate_username(username)?;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, is_admin) VALUES ($1, $2, $3)
         ON CONFLICT (username) DO NOTHING RETURNING id",
    )
    .bind(username)
    .bind(password_hash)
    .bind(is_admin)
    .fetch_optional(conn)
    .await?;
    id.ok_or_else(|| IdentityError::UserExists(username.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains("correct horse"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsf", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
        assert!(!verify_password("anything at all", decoy_hash()));
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert!(hash_password("short").is_err());
        assert!(hash_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn tokens_are_random_and_only_their_digest_is_kept() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(TOKEN_PREFIX) && a.secret.len() > 40);
        assert_eq!(a.digest, token_digest(&a.secret));
        assert_eq!(a.digest.len(), 32);
    }

    #[test]
    fn user_names_are_checked() {
        assert!(validate_username("alice.b@example-1").is_ok());
        for bad in ["", "a b", "x/../y", &"a".repeat(65), "é"] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }
}
