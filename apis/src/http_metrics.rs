//! Prometheus metrics of the server (`GET /metrics`): requests by route and
//! status, their durations, and the audit writer's counters.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::audit::AuditCounters;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

pub struct HttpMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    audit_written: Gauge,
    audit_spooled: Gauge,
    audit_dropped: Gauge,
    audit: Arc<AuditCounters>,
}

impl HttpMetrics {
    pub fn new(audit: Arc<AuditCounters>) -> Self {
        let mut registry = Registry::with_prefix("lakehouse_api");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
            ])
        });
        registry.register(
            "request_duration_seconds",
            "Time from the request's arrival to its response",
            durations.clone(),
        );
        let audit_written = Gauge::default();
        let audit_spooled = Gauge::default();
        let audit_dropped = Gauge::default();
        registry.register(
            "audit_written",
            "access_log entries written",
            audit_written.clone(),
        );
        registry.register(
            "audit_spooled",
            "access_log entries spooled while PostgreSQL was away",
            audit_spooled.clone(),
        );
        registry.register(
            "audit_dropped",
            "access_log entries lost (queue or spool full)",
            audit_dropped.clone(),
        );
        Self {
            registry,
            requests,
            durations,
            audit_written,
            audit_spooled,
            audit_dropped,
            audit,
        }
    }

    pub fn observe(&self, method: &Method, route: Option<&str>, status: u16, elapsed: Duration) {
        let route = route.unwrap_or("unmatched").to_string();
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.clone(),
                status,
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels { route })
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let gauge = |g: &Gauge, v: &std::sync::atomic::AtomicU64| {
            g.set(v.load(Ordering::Relaxed) as i64);
        };
        gauge(&self.audit_written, &self.audit.written);
        gauge(&self.audit_spooled, &self.audit.spooled);
        gauge(&self.audit_dropped, &self.audit.dropped);
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String");
        text
    }
}
