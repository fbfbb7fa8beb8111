//! PostgreSQL helpers: connecting with retries, creating the warehouse
//! database, applying the access-control schema.

use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

/// The access-control schema (`create_user_table.sql` at the repository root);
/// every statement in it is idempotent.
pub const USER_SCHEMA_SQL: &str = include_str!("../../create_user_table.sql");

#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error("PostgreSQL at {url} did not accept connections within {waited:?}: {last_error}")]
    Unreachable {
        url: String,
        waited: Duration,
        last_error: String,
    },
    #[error("invalid database name {0:?}: use letters, digits and underscores")]
    InvalidName(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// Hides the password of a connection URL for logs and status output.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Opens one connection, retrying until the server accepts it or `timeout` passes.
pub async fn connect_with_retry(
    url: &str,
    timeout: Duration,
) -> Result<PgConnection, PostgresError> {
    let started = Instant::now();
    let options: PgConnectOptions = url.parse()?;
    let options = options.disable_statement_logging();
    loop {
        match PgConnection::connect_with(&options).await {
            Ok(conn) => return Ok(conn),
            Err(e) if started.elapsed() >= timeout => {
                return Err(PostgresError::Unreachable {
                    url: redact_url(url),
                    waited: timeout,
                    last_error: e.to_string(),
                })
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A small connection pool for a component.
pub async fn pool(url: &str, max_connections: u32) -> Result<PgPool, PostgresError> {
    let options: PgConnectOptions = url.parse()?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.disable_statement_logging())
        .await?)
}

/// Creates `database` when it does not exist, connecting through `admin_url`.
pub async fn create_database_if_missing(
    admin_url: &str,
    database: &str,
) -> Result<(), PostgresError> {
    if database.is_empty()
        || !database
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(PostgresError::InvalidName(database.to_string()));
    }
    let mut conn = connect_with_retry(admin_url, Duration::from_secs(10)).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        // Identifiers cannot be bound as parameters; the name was checked above.
        sqlx::query(&format!("CREATE DATABASE \"{database}\""))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    Ok(())
}

/// Drops a database, closing other sessions on it first.
pub async fn drop_database(admin_url: &str, database: &str) -> Result<(), PostgresError> {
    if !database
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(PostgresError::InvalidName(database.to_string()));
    }
    let mut conn = connect_with_retry(admin_url, Duration::from_secs(10)).await?;
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
    ))
    .execute(&mut conn)
    .await?;
    Ok(())
}

/// Applies `create_user_table.sql`; safe to run on every start.
pub async fn apply_user_schema(conn: &mut PgConnection) -> Result<(), PostgresError> {
    // A transaction-scoped advisory lock keeps concurrent starters from racing
    // on CREATE ... IF NOT EXISTS, which is not atomic in PostgreSQL.
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(7418830001)")
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(USER_SCHEMA_SQL).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Replaces the database name in a PostgreSQL URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://lakehouse:s3cret@127.0.0.1:15432/lakehouse"),
            "postgres://lakehouse:***@127.0.0.1:15432/lakehouse"
        );
        assert_eq!(redact_url("postgres://host/db"), "postgres://host/db");
    }

    #[test]
    fn database_is_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:1/a", "b"),
            "postgres://u:p@h:1/b"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1", "b"),
            "postgres://u:p@h:1/b"
        );
        assert_eq!(
            with_database("postgres://h/a?sslmode=disable", "b"),
            "postgres://h/b?sslmode=disable"
        );
    }
}
