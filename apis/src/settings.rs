//! The server's flags (each also an environment variable), resolved once
//! into `ApiSettings`, which `lakectl up` builds the same way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use lakehouse::Settings;

/// Default address: loopback only; a deployment opts in to more.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Address and port to listen on.
    #[arg(long, env = "LAKEHOUSE_API_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Lifetime of a bearer token, in minutes.
    #[arg(long, env = "LAKEHOUSE_API_TOKEN_TTL_MINUTES", default_value_t = 60)]
    pub token_ttl_minutes: u64,
    /// Requests per second allowed per token (and per client address for
    /// unauthenticated calls); bursts up to twice that.
    #[arg(long, env = "LAKEHOUSE_API_RATE_LIMIT", default_value_t = 200)]
    pub rate_limit_per_second: u32,
    /// Whole-request time limit, in seconds.
    #[arg(long, env = "LAKEHOUSE_API_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Time a client gets to send its request headers, in seconds.
    #[arg(long, env = "LAKEHOUSE_API_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "LAKEHOUSE_API_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Rows a SQL query may return.
    #[arg(long, env = "LAKEHOUSE_API_SQL_MAX_ROWS", default_value_t = 10_000)]
    pub sql_max_rows: usize,
    /// Time a SQL query may run, in seconds.
    #[arg(long, env = "LAKEHOUSE_API_SQL_TIMEOUT_SECS", default_value_t = 10)]
    pub sql_timeout_secs: u64,
    /// Origins allowed to call the API from a browser (CORS); none by default.
    #[arg(long, env = "LAKEHOUSE_API_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Largest audit spool kept while PostgreSQL is away, in bytes.
    #[arg(long, env = "LAKEHOUSE_API_AUDIT_SPOOL_BYTES", default_value_t = 64 << 20)]
    pub audit_spool_bytes: u64,
}

impl ApiArgs {
    /// Defaults and environment variables only (for `lakectl up`).
    pub fn from_env() -> Self {
        lakehouse_workers::cli::args_from_env()
    }
}

/// Everything the server needs, resolved.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub listen: SocketAddr,
    pub postgres_url: String,
    /// The broker re-pushed records are sent to (the stack's).
    pub kafka_bootstrap: String,
    pub data_lake_dir: PathBuf,
    /// Where the audit spool lives (`<state>/api/`).
    pub state_dir: PathBuf,
    /// Root of the log folders (the purge runs' record is under `purge/`).
    pub log_dir: PathBuf,
    pub token_ttl: Duration,
    pub rate_limit_per_second: u32,
    pub request_timeout: Duration,
    pub header_timeout: Duration,
    pub max_body_bytes: usize,
    pub sql_max_rows: usize,
    pub sql_timeout: Duration,
    pub cors_origins: Vec<String>,
    pub audit_spool_bytes: u64,
}

impl ApiSettings {
    /// The server's own state folder (audit spool, search index) in the stack's.
    pub fn state_dir_of(stack: &Settings) -> PathBuf {
        stack.state_dir.join("api")
    }

    pub fn new(args: &ApiArgs, stack: &Settings, postgres_url: String) -> Self {
        Self {
            listen: args.listen,
            postgres_url,
            kafka_bootstrap: stack.kafka_bootstrap(),
            data_lake_dir: stack.data_lake_dir.clone(),
            state_dir: Self::state_dir_of(stack),
            log_dir: stack.log_dir.clone(),
            token_ttl: Duration::from_secs(args.token_ttl_minutes.max(1) * 60),
            rate_limit_per_second: args.rate_limit_per_second.max(1),
            request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
            header_timeout: Duration::from_secs(args.header_timeout_secs.max(1)),
            max_body_bytes: args.max_body_bytes,
            sql_max_rows: args.sql_max_rows.max(1),
            sql_timeout: Duration::from_secs(args.sql_timeout_secs.max(1)),
            cors_origins: args.cors_origins.clone(),
            audit_spool_bytes: args.audit_spool_bytes,
        }
    }
}
