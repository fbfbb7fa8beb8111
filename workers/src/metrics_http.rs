//! Health and Prometheus metrics over HTTP, read from the same registry
//! `lakectl status` reads: `GET /metrics` (each component's state, restarts,
//! records in and out, bytes written, dead letters, and for the sinks their
//! consumer lag and landing latency) and `GET /health` (the
//! components as JSON; 503 while one is not running). A worker binary serves
//! its own with `--metrics-listen`; `lakectl up` serves the whole stack's.

use std::net::SocketAddr;
use std::thread::JoinHandle;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::registry::{ComponentSnapshot, ComponentState, Registry};

/// The flag every worker binary takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MetricsArgs {
    /// Serve GET /metrics (Prometheus) and GET /health on this address
    /// (e.g. 0.0.0.0:9464); off when unset, except under `lakectl up`, which
    /// serves the whole stack's on 127.0.0.1:9464 by default.
    #[arg(long, env = "LAKEHOUSE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

/// Where `lakectl up` serves the stack's metrics unless told otherwise.
pub const STACK_DEFAULT_LISTEN: &str = "127.0.0.1:9464";

impl MetricsArgs {
    /// The address `lakectl up` serves on.
    pub fn stack_listen(&self) -> SocketAddr {
        self.metrics_listen
            .unwrap_or_else(|| STACK_DEFAULT_LISTEN.parse().expect("a valid address"))
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabel {
    component: String,
}

/// The registry in Prometheus' text format.
pub fn render(snapshot: &[ComponentSnapshot]) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    let up = Family::<ComponentLabel, Gauge>::default();
    let restarts = Family::<ComponentLabel, Counter>::default();
    let records_in = Family::<ComponentLabel, Counter>::default();
    let records_out = Family::<ComponentLabel, Counter>::default();
    let bytes_out = Family::<ComponentLabel, Counter>::default();
    let dead_letters = Family::<ComponentLabel, Counter>::default();
    registry.register(
        "lakehouse_component_up",
        "1 while the component runs",
        up.clone(),
    );
    registry.register(
        "lakehouse_component_restarts",
        "Restarts after failures since the process started",
        restarts.clone(),
    );
    registry.register(
        "lakehouse_records_in",
        "Records read from the component's input",
        records_in.clone(),
    );
    registry.register(
        "lakehouse_records_out",
        "Records (rows, output records) written",
        records_out.clone(),
    );
    registry.register(
        "lakehouse_bytes_out",
        "Bytes written, where the component knows them",
        bytes_out.clone(),
    );
    registry.register(
        "lakehouse_dead_letters",
        "Records dead-lettered with their reason",
        dead_letters.clone(),
    );
    let lag = Family::<ComponentLabel, Gauge>::default();
    let latency = Family::<ComponentLabel, Gauge>::default();
    let latency_p95 = Family::<ComponentLabel, Gauge>::default();
    registry.register(
        "lakehouse_consumer_lag_records",
        "Records in the component's assigned partitions not yet read",
        lag.clone(),
    );
    registry.register(
        "lakehouse_landing_latency_milliseconds",
        "Age of the newest record of the last durable write, from its record timestamp",
        latency.clone(),
    );
    registry.register(
        "lakehouse_landing_latency_p95_milliseconds",
        "95th percentile over the last minute of every record's record timestamp to durable",
        latency_p95.clone(),
    );
    for component in snapshot {
        let label = ComponentLabel {
            component: component.name.clone(),
        };
        let running = matches!(component.state, ComponentState::Running { .. });
        up.get_or_create(&label).set(i64::from(running));
        restarts
            .get_or_create(&label)
            .inc_by(u64::from(component.restarts));
        let counters = &component.counters;
        records_in.get_or_create(&label).inc_by(counters.records_in);
        records_out
            .get_or_create(&label)
            .inc_by(counters.records_out);
        bytes_out.get_or_create(&label).inc_by(counters.bytes_out);
        dead_letters
            .get_or_create(&label)
            .inc_by(counters.dead_letters);
        if let Some(l) = counters.lag {
            lag.get_or_create(&label).set(l);
        }
        if let Some(l) = counters.latency_ms {
            latency.get_or_create(&label).set(l);
        }
        if let Some(l) = counters.latency_p95_ms {
            latency_p95.get_or_create(&label).set(l);
        }
    }
    let mut text = String::new();
    encode(&mut text, &registry).expect("writing to a String");
    text
}

/// The server, stopped when dropped.
pub struct MetricsServer {
    address: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `listen` (a taken port fails here) and serves on a thread of its own.
    pub fn start(listen: SocketAddr, registry: Registry) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        tracing::error!("metrics server: {e}");
                        return;
                    }
                };
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let app = router(registry);
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })?;
        tracing::info!(url = %format!("http://{address}/metrics"), "metrics and health served");
        Ok(Self {
            address,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn router(registry: Registry) -> Router {
    let for_health = registry.clone();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let text = render(&registry.snapshot());
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        text,
                    )
                }
            }),
        )
        .route(
            "/health",
            get(move || {
                let components = for_health.snapshot();
                async move {
                    let healthy = components
                        .iter()
                        .all(|c| matches!(c.state, ComponentState::Running { .. }));
                    let status = if healthy {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    let body = serde_json::json!({
                        "status": if healthy { "ok" } else { "degraded" },
                        "components": components,
                    });
                    (status, Json(body)).into_response()
                }
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Counters;
    use std::sync::Arc;

    #[test]
    fn the_registry_reads_as_prometheus_text() {
        let registry = Registry::default();
        registry.register(
            "lake-sink",
            Some(Arc::new(|| Counters {
                records_in: 12,
                records_out: 10,
                bytes_out: 2048,
                dead_letters: 2,
                lag: Some(5),
                latency_ms: Some(340),
                latency_p95_ms: Some(500),
            })),
        );
        registry.set_state(
            "lake-sink",
            ComponentState::Running {
                since: chrono::Utc::now(),
            },
        );
        registry.count_restart("lake-sink");
        registry.register("table-sink", None);
        let text = render(&registry.snapshot());
        for line in [
            r#"lakehouse_component_up{component="lake-sink"} 1"#,
            r#"lakehouse_component_up{component="table-sink"} 0"#,
            r#"lakehouse_component_restarts_total{component="lake-sink"} 1"#,
            r#"lakehouse_records_in_total{component="lake-sink"} 12"#,
            r#"lakehouse_records_out_total{component="lake-sink"} 10"#,
            r#"lakehouse_bytes_out_total{component="lake-sink"} 2048"#,
            r#"lakehouse_dead_letters_total{component="lake-sink"} 2"#,
            r#"lakehouse_consumer_lag_records{component="lake-sink"} 5"#,
            r#"lakehouse_landing_latency_milliseconds{component="lake-sink"} 340"#,
            r#"lakehouse_landing_latency_p95_milliseconds{component="lake-sink"} 500"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
