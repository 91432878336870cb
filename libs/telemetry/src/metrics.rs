//! Prometheus metrics shared by every crate of the process, served at `/metrics`.

use prometheus::{Encoder, TextEncoder};

pub use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};

/// Latency buckets in seconds, from 1 ms to 30 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Registers a counter vector in the process registry (a second registration of the same
/// name returns a fresh unregistered vector, which keeps tests that start services twice working).
pub fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter =
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter definition");
    let _ = prometheus::default_registry().register(Box::new(counter.clone()));
    counter
}

pub fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let gauge = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge definition");
    let _ = prometheus::default_registry().register(Box::new(gauge.clone()));
    gauge
}

pub fn histogram_vec(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let histogram = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .expect("valid histogram definition");
    let _ = prometheus::default_registry().register(Box::new(histogram.clone()));
    histogram
}

/// A histogram of counts (batch sizes and the like) rather than seconds.
pub fn size_histogram_vec(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let histogram = HistogramVec::new(
        HistogramOpts::new(name, help)
            .buckets(vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]),
        labels,
    )
    .expect("valid histogram definition");
    let _ = prometheus::default_registry().register(Box::new(histogram.clone()));
    histogram
}

/// Every registered metric in the Prometheus text format.
pub fn render() -> String {
    let mut buffer = Vec::new();
    let encoder = TextEncoder::new();
    if let Err(error) = encoder.encode(&prometheus::default_registry().gather(), &mut buffer) {
        tracing::warn!(%error, "metrics encoding failed");
    }
    String::from_utf8(buffer).unwrap_or_default()
}
