//! The spans of the traces the demo asks for, kept in memory so that the report can say
//! what one share's trace went through without an external trace backend.
//!
//! The provider samples only the traces a caller started as sampled (the demo sends a
//! `traceparent` with the sampled flag on one share's creation); every other span keeps a
//! valid, unsampled context, so propagation works and nothing else is recorded.

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

/// Spans this far into one trace are kept; the rest are counted only.
const SPANS_KEPT_PER_TRACE: usize = 2_000;

/// One finished span of a recorded trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedSpan {
    pub name: String,
    /// The `service` attribute (gateway, scheduling, publishing, ...), when the span has one.
    pub service: Option<String>,
    pub share_id: Option<String>,
    pub outcome: Option<String>,
}

/// An in-memory span exporter for sampled traces; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct TraceRecorder {
    traces: Arc<Mutex<HashMap<String, Vec<RecordedSpan>>>>,
}

impl TraceRecorder {
    /// A tracer provider that samples only traces started as sampled and exports their
    /// spans to this recorder.
    pub fn provider(&self) -> SdkTracerProvider {
        SdkTracerProvider::builder()
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
            .with_simple_exporter(self.clone())
            .build()
    }

    /// The spans recorded for `trace_id` (32 hex digits), in the order they finished.
    pub fn spans_of(&self, trace_id: &str) -> Vec<RecordedSpan> {
        self.traces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(trace_id)
            .cloned()
            .unwrap_or_default()
    }

    fn record(&self, batch: Vec<SpanData>) {
        let mut traces = self.traces.lock().unwrap_or_else(PoisonError::into_inner);
        for span in batch {
            let spans = traces
                .entry(span.span_context.trace_id().to_string())
                .or_default();
            if spans.len() >= SPANS_KEPT_PER_TRACE {
                continue;
            }
            let attribute = |key: &str| {
                span.attributes
                    .iter()
                    .find(|attribute| attribute.key.as_str() == key)
                    .map(|attribute| attribute.value.to_string())
            };
            spans.push(RecordedSpan {
                name: span.name.to_string(),
                service: attribute("service"),
                share_id: attribute("share_id"),
                outcome: attribute("outcome"),
            });
        }
    }
}

impl SpanExporter for TraceRecorder {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.record(batch);
        std::future::ready(Ok(()))
    }
}

/// The key of spans without a `service` attribute in `spans_per_service`.
pub const NO_SERVICE: &str = "-";

/// Spans per service, for the report.
pub fn spans_per_service(spans: &[RecordedSpan]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for span in spans {
        let service = span
            .service
            .clone()
            .unwrap_or_else(|| NO_SERVICE.to_string());
        *counts.entry(service).or_insert(0) += 1;
    }
    counts
}

/// A new W3C `traceparent` with the sampled flag, and its trace id.
pub fn new_traceparent() -> (String, String) {
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span_id = &uuid::Uuid::new_v4().simple().to_string()[..16];
    (format!("00-{trace_id}-{span_id}-01"), trace_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_w3c_shaped_and_sampled() {
        let (header, trace_id) = new_traceparent();
        let parts: Vec<&str> = header.split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1], trace_id);
        assert_eq!(parts[1].len(), 32);
        assert_eq!(parts[2].len(), 16);
        assert_eq!(parts[3], "01");
        assert_ne!(new_traceparent().1, trace_id);
    }

    #[test]
    fn only_sampled_traces_are_recorded() {
        use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider as _};
        let recorder = TraceRecorder::default();
        let provider = recorder.provider();
        let tracer = provider.tracer("test");
        // A root span without a sampled parent: not recorded, but a valid context.
        let root_trace = tracer.in_span("root", |context| {
            let span_context = context.span().span_context().clone();
            assert!(span_context.is_valid());
            span_context.trace_id().to_string()
        });
        assert!(recorder.spans_of(&root_trace).is_empty());

        let (header, trace_id) = new_traceparent();
        let mut carrier = HashMap::new();
        carrier.insert("traceparent".to_string(), header);
        let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new();
        let parent = opentelemetry::propagation::TextMapPropagator::extract(&parent, &carrier);
        let _span = tracer
            .span_builder("publish")
            .with_attributes([
                opentelemetry::KeyValue::new("service", "publishing"),
                opentelemetry::KeyValue::new("share_id", "s1"),
            ])
            .start_with_context(&tracer, &parent);
        drop(_span);
        let spans = recorder.spans_of(&trace_id);
        assert_eq!(spans.len(), 1, "{spans:?}");
        assert_eq!(spans[0].name, "publish");
        assert_eq!(spans[0].share_id.as_deref(), Some("s1"));
        assert_eq!(
            spans_per_service(&spans).get("publishing").copied(),
            Some(1)
        );
    }
}
