//! Prometheus metrics of the HTTP layer, in a registry owned by the server (not a
//! process global), so several servers in one process keep separate counts.

use std::collections::HashMap;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: &'static str,
    pub route: &'static str,
}

/// Route templates as `'static` labels, each leaked once: the set is the router's
/// routes, fixed at start, and labels that are not allocated per request keep the
/// metrics layer off the allocator.
fn route_label(path: Option<&MatchedPath>) -> &'static str {
    static ROUTES: std::sync::OnceLock<RwLock<HashMap<String, &'static str>>> =
        std::sync::OnceLock::new();
    let Some(path) = path else {
        return "unmatched";
    };
    let routes = ROUTES.get_or_init(Default::default);
    if let Some(r) = routes.read().get(path.as_str()) {
        return r;
    }
    let mut routes = routes.write();
    let leaked: &'static str = routes
        .entry(path.as_str().to_owned())
        .or_insert_with(|| Box::leak(path.as_str().to_owned().into_boxed_str()));
    leaked
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        // Anything else is refused by the router; one label keeps clients from
        // minting series.
        _ => "OTHER",
    }
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// The WebSocket gateway, read from the hub at scrape time.
#[derive(Default)]
pub struct GatewayMetrics {
    sockets: prometheus_client::metrics::gauge::Gauge,
    frames: Counter,
    cut: Counter,
    filled: Counter,
}

impl GatewayMetrics {
    /// Brings the metrics up to the hub's own counts.
    pub fn observe(&self, hub: &tidings_chat::hub::Hub) {
        self.sockets.set(hub.sockets() as i64);
        for (counter, now) in [
            (&self.frames, hub.frames_routed()),
            (&self.cut, hub.sockets_cut()),
            (&self.filled, hub.messages_filled()),
        ] {
            counter.inc_by(now.saturating_sub(counter.get()));
        }
    }
}

pub struct Metrics {
    registry: Registry,
    pub gateway: GatewayMetrics,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tidings");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        let gateway = GatewayMetrics::default();
        registry.register(
            "ws_sockets",
            "WebSockets connected to this node",
            gateway.sockets.clone(),
        );
        registry.register(
            "ws_frames_routed",
            "Frames this node's hub offered to sockets",
            gateway.frames.clone(),
        );
        registry.register(
            "ws_sockets_cut",
            "Sockets closed (4008) for reading too slowly",
            gateway.cut.clone(),
        );
        registry.register(
            "chat_messages_filled",
            "Messages delivered from the store because their live event was lost",
            gateway.filled.clone(),
        );
        Self {
            registry,
            gateway,
            requests,
            latency,
        }
    }
}

impl Metrics {
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Label by route template, never by raw path: ids in paths would explode the series.
    let route = route_label(request.extensions().get::<MatchedPath>());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics
        .latency
        .get_or_create(&RouteLabels { method, route })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
