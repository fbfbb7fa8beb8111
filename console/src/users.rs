//! `lakectl user add`: creates an API user in the warehouse database.

use std::io::BufRead;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use lakehouse::identity;
use lakehouse::postgres::{apply_user_schema, connect_with_retry, redact_url};
use lakehouse::Settings;

pub async fn add(settings: &Settings, name: &str, admin: bool, password_stdin: bool) -> Result<()> {
    identity::validate_username(name)?;
    let (password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let password = line.trim_end_matches(['\n', '\r']).to_string();
        if password.is_empty() {
            bail!("no password on standard input");
        }
        (password, false)
    } else {
        (identity::random_password(), true)
    };
    let url = settings
        .warehouse_url()
        .context("no PostgreSQL yet: start the stack with `lakectl up` (or set --postgres-url)")?;
    let hash = tokio::task::spawn_blocking(move || {
        identity::hash_password(&password).map(|h| (h, password))
    })
    .await??;
    let mut conn = connect_with_retry(&url, Duration::from_secs(10))
        .await
        .with_context(|| format!("connecting to {}", redact_url(&url)))?;
    apply_user_schema(&mut conn).await?;
    identity::insert_user(&mut conn, name, &hash.0, admin).await?;
    println!(
        "Created {} {name} in {}.",
        if admin { "admin" } else { "user" },
        redact_url(&url)
    );
    if generated {
        println!(
            "Password (shown once, not stored anywhere in clear): {}",
            hash.1
        );
    }
    Ok(())
}
