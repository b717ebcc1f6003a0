//! Prometheus metrics of the pipeline, registered into the server's registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tidings_platform::model::Channel;

use crate::store::QueueCounts;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabel {
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub channel: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    pub channel: String,
    pub state: String,
}

fn latency() -> Histogram {
    // 1 ms to ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

pub struct NotifyMetrics {
    accepted: Counter,
    outcomes: Family<OutcomeLabel, Counter>,
    latency: Family<ChannelLabel, Histogram, fn() -> Histogram>,
    queue: Family<QueueLabel, Gauge>,
}

impl NotifyMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            accepted: Counter::default(),
            outcomes: Family::default(),
            latency: Family::new_with_constructor(latency),
            queue: Family::default(),
        };
        registry.register(
            "notifications_accepted",
            "Notifications accepted (not counting duplicates)",
            m.accepted.clone(),
        );
        registry.register(
            "notification_deliveries",
            "Delivery outcomes by channel: sent, delivered, failed, retried, expired, suppressed, dead",
            m.outcomes.clone(),
        );
        registry.register(
            "notification_delivery_latency_seconds",
            "From when a delivery was due to the provider's answer, by channel",
            m.latency.clone(),
        );
        registry.register(
            "notification_queue",
            "Deliveries by channel and state: depth, in_flight, retrying, scheduled, dead, oldest_age_ms",
            m.queue.clone(),
        );
        m
    }

    pub fn accepted(&self) {
        self.accepted.inc();
    }

    pub fn outcome(&self, channel: Channel, outcome: &str, n: u64) {
        self.outcomes
            .get_or_create(&OutcomeLabel {
                channel: channel.as_str().into(),
                outcome: outcome.into(),
            })
            .inc_by(n);
    }

    pub fn latency(&self, channel: Channel, seconds: f64) {
        self.latency
            .get_or_create(&ChannelLabel {
                channel: channel.as_str().into(),
            })
            .observe(seconds.max(0.0));
    }

    /// Refreshes the queue gauges (called when `/metrics` is scraped).
    pub fn set_queues(&self, counts: &[QueueCounts]) {
        for channel in Channel::ALL {
            let c = counts
                .iter()
                .find(|q| q.channel == Some(channel))
                .cloned()
                .unwrap_or_default();
            for (state, value) in [
                ("depth", c.depth as i64),
                ("in_flight", c.in_flight as i64),
                ("retrying", c.retrying as i64),
                ("scheduled", c.scheduled as i64),
                ("dead", c.dead as i64),
                ("oldest_age_ms", c.oldest_age_ms),
            ] {
                self.queue
                    .get_or_create(&QueueLabel {
                        channel: channel.as_str().into(),
                        state: state.into(),
                    })
                    .set(value);
            }
        }
    }
}
