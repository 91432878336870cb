//! One telemetry setup for every Chorus process: structured logs (JSON or human),
//! OpenTelemetry traces (OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, or any tracer
//! provider the caller hands in, such as an in-memory exporter in tests), W3C trace
//! context propagation, and the Prometheus registry behind `/metrics`.

pub mod metrics;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Where log lines go and how they look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutput {
    /// One JSON object per line on stderr (production).
    Json,
    /// Human-readable lines on stderr (development).
    Pretty,
    /// No log output (tests, unless `TEST_LOG` is set).
    Silent,
}

/// Telemetry settings of a process.
#[derive(Debug, Clone)]
pub struct Options {
    pub service_name: String,
    pub log_output: LogOutput,
    /// `EnvFilter` directives, e.g. `info,chorus=debug`.
    pub log_filter: String,
    /// OTLP gRPC endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub otlp_endpoint: Option<String>,
}

/// Keeps the tracer provider alive; `shutdown` flushes pending spans.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Flushes and stops the span exporter (part of graceful shutdown).
    pub fn shutdown(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("telemetry shutdown failed: {error}");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Installs the global subscriber. `provider` overrides the OTLP exporter (tests pass an
/// in-memory one). Calling it twice keeps the first subscriber.
pub fn init(
    options: &Options,
    provider: Option<SdkTracerProvider>,
) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = match provider {
        Some(provider) => Some(provider),
        None => match &options.otlp_endpoint {
            Some(endpoint) => Some(otlp_provider(&options.service_name, endpoint)?),
            None => None,
        },
    };
    let filter = EnvFilter::try_new(&options.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let log_layer = match options.log_output {
        LogOutput::Json => Some(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(std::io::stderr)
                .boxed(),
        ),
        LogOutput::Pretty => Some(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .boxed(),
        ),
        LogOutput::Silent => None,
    };
    let otel_layer = provider.as_ref().map(|provider| {
        let tracer = provider.tracer("chorus");
        tracing_opentelemetry::layer().with_tracer(tracer)
    });
    if let Some(provider) = &provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    let _already_set = tracing_subscriber::registry()
        .with(otel_layer)
        .with(log_layer.map(|layer| layer.with_filter(filter)))
        .try_init();
    Ok(TelemetryGuard { provider })
}

fn otlp_provider(service_name: &str, endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_string())
                .build(),
        )
        .build())
}

/// The log output tests use: silent unless `TEST_LOG` is set.
pub fn test_log_output() -> LogOutput {
    if std::env::var_os("TEST_LOG").is_some() {
        LogOutput::Pretty
    } else {
        LogOutput::Silent
    }
}
