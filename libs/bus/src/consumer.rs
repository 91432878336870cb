//! Durable JetStream consumers with idempotent handlers, retries with jittered delays
//! (`Nak(delay)`), and poison messages terminated and recorded as dead letters.

use crate::entities::dead_letter;
use crate::{Bus, BusError, trace};
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use chorus_events::Event;
use chorus_kit::{ErrorCode, ServiceError, Shutdown};
use chorus_telemetry::metrics;
use futures::StreamExt;
use sea_orm::{DatabaseConnection, EntityTrait, Set};
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tracing::Instrument;

static HANDLED: LazyLock<metrics::IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "chorus_consumer_messages_total",
        "Messages handled by consumers",
        &["consumer", "outcome"],
    )
});
static HANDLE_SECONDS: LazyLock<metrics::HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "chorus_consumer_handle_seconds",
        "Time to handle one message",
        &["consumer"],
    )
});
static BATCH_SIZE: LazyLock<metrics::HistogramVec> = LazyLock::new(|| {
    metrics::size_histogram_vec(
        "chorus_consumer_batch_size",
        "Messages applied together by batch consumers",
        &["consumer"],
    )
});
static LAG: LazyLock<metrics::IntGaugeVec> = LazyLock::new(|| {
    metrics::gauge_vec(
        "chorus_consumer_pending",
        "Messages waiting for a consumer (lag)",
        &["consumer"],
    )
});

/// Why a handler did not apply a message.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Try again later (database or network trouble).
    #[error("transient: {0}")]
    Retry(String),
    /// The message can never be applied: terminate it and keep it as a dead letter.
    #[error("permanent: {0}")]
    Reject(String),
    /// Not now, and not a failure: another worker holds the work this message asks for
    /// (e.g. a publication's lease). Redelivered after `delay` whatever its delivery count;
    /// never a dead letter.
    #[error("deferred: {reason}")]
    Defer { delay: Duration, reason: String },
}

impl From<sea_orm::DbErr> for HandlerError {
    fn from(error: sea_orm::DbErr) -> Self {
        HandlerError::Retry(error.to_string())
    }
}

impl From<ServiceError> for HandlerError {
    fn from(error: ServiceError) -> Self {
        match error.code {
            ErrorCode::Unavailable | ErrorCode::RateLimited | ErrorCode::Internal => {
                HandlerError::Retry(error.message)
            }
            _ => HandlerError::Reject(error.message),
        }
    }
}

impl From<sea_orm::TransactionError<HandlerError>> for HandlerError {
    fn from(error: sea_orm::TransactionError<HandlerError>) -> Self {
        match error {
            sea_orm::TransactionError::Connection(db) => HandlerError::Retry(db.to_string()),
            sea_orm::TransactionError::Transaction(inner) => inner,
        }
    }
}

/// A decoded event handed to a handler.
#[derive(Debug, Clone)]
pub struct Delivery<E> {
    pub event: E,
    /// The event id (`Nats-Msg-Id`): the key of inbox de-duplication.
    pub event_id: String,
    pub subject: String,
    pub tenant_id: String,
    /// 1 for the first delivery.
    pub delivered: i64,
}

/// What a consumer listens to and how it retries.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Durable name, unique per consumer (e.g. `gamification-share-published`).
    pub durable: String,
    /// The service that owns it (span attribute and log field).
    pub service: &'static str,
    /// Deliveries after which a failing message becomes a dead letter.
    pub max_deliver: i64,
    /// Delay before the n-th retry; the last one repeats.
    pub retry_delays: Vec<Duration>,
    /// Messages handled at the same time.
    pub concurrency: usize,
    /// How long an unacknowledged message waits before redelivery.
    pub ack_wait: Duration,
    /// Subjects to consume instead of the event type's filter (a subset of its subjects,
    /// e.g. one network's partitions of `share.due`).
    pub filter_subjects: Vec<String>,
}

impl ConsumerSpec {
    pub fn new(service: &'static str, durable: impl Into<String>) -> ConsumerSpec {
        ConsumerSpec {
            durable: durable.into(),
            service,
            max_deliver: 8,
            retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_secs(120),
                Duration::from_secs(600),
            ],
            concurrency: 16,
            ack_wait: Duration::from_secs(10),
            filter_subjects: Vec::new(),
        }
    }

    pub fn filter_subjects(mut self, subjects: Vec<String>) -> Self {
        self.filter_subjects = subjects;
        self
    }

    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// The delay before redelivery after `delivered` failed deliveries, with ±20% jitter.
    pub fn retry_delay(&self, delivered: i64) -> Duration {
        let index = (delivered.max(1) as usize - 1).min(self.retry_delays.len().saturating_sub(1));
        let base = self
            .retry_delays
            .get(index)
            .copied()
            .unwrap_or(Duration::from_secs(5));
        let jitter = 0.8 + fastrand::f64() * 0.4;
        base.mul_f64(jitter)
    }
}

/// Creates (or finds) the durable pull consumer described by `spec`.
async fn durable_consumer<E: Event>(
    bus: &Bus,
    spec: &ConsumerSpec,
) -> Result<async_nats::jetstream::consumer::Consumer<pull::Config>, BusError> {
    let stream = bus
        .jetstream
        .get_stream(E::DOMAIN.stream)
        .await
        .map_err(BusError::nats)?;
    let consumer = stream
        .get_or_create_consumer(
            &spec.durable,
            pull::Config {
                durable_name: Some(spec.durable.clone()),
                filter_subject: if spec.filter_subjects.is_empty() {
                    E::filter()
                } else {
                    String::new()
                },
                filter_subjects: spec.filter_subjects.clone(),
                ack_policy: AckPolicy::Explicit,
                deliver_policy: DeliverPolicy::All,
                ack_wait: spec.ack_wait,
                max_ack_pending: 1_000,
                ..Default::default()
            },
        )
        .await
        .map_err(BusError::nats)?;
    Ok(consumer)
}

/// Keeps the lag gauge of a consumer current until `shutdown`.
async fn report_lag(
    mut consumer: async_nats::jetstream::consumer::Consumer<pull::Config>,
    spec: Arc<ConsumerSpec>,
    shutdown: Shutdown,
) {
    while !shutdown.is_cancelled() {
        if let Ok(info) = consumer.info().await {
            LAG.with_label_values(&[&spec.durable])
                .set(info.num_pending as i64);
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// Starts a durable consumer of event type `E` and handles its messages until `shutdown`.
pub async fn spawn<E, F, Fut>(
    bus: &Bus,
    db: DatabaseConnection,
    spec: ConsumerSpec,
    shutdown: Shutdown,
    handler: F,
) -> Result<tokio::task::JoinHandle<()>, BusError>
where
    E: Event,
    F: Fn(Delivery<E>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let consumer = durable_consumer::<E>(bus, &spec).await?;
    let handler = Arc::new(handler);
    let spec = Arc::new(spec);
    let task = tokio::spawn(async move {
        let lag_task = tokio::spawn(report_lag(consumer.clone(), spec.clone(), shutdown.clone()));
        // One slot per handler. A pull asks for as many messages as there are free slots, so
        // that no message waits in this process for a handler: waiting on the server, it
        // does not run down `ack_wait` (a buffered message past it came back as a second
        // delivery of a message not yet handled, and spent one of its deliveries).
        let slots = Arc::new(tokio::sync::Semaphore::new(spec.concurrency));
        let mut running = tokio::task::JoinSet::new();
        while !shutdown.is_cancelled() {
            let first = tokio::select! {
                permit = slots.clone().acquire_owned() => permit.expect("slots never close"),
                () = shutdown.cancelled() => break,
            };
            let mut permits = vec![first];
            while let Ok(permit) = slots.clone().try_acquire_owned() {
                permits.push(permit);
            }
            let pull = consumer
                .batch()
                .max_messages(permits.len())
                .expires(PULL_EXPIRES)
                .messages()
                .await;
            let mut batch = match pull {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(consumer = %spec.durable, %error, "pull request failed");
                    drop(permits);
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(200)) => {}
                        () = shutdown.cancelled() => {}
                    }
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    next = batch.next() => next,
                    () = shutdown.cancelled() => None,
                };
                match next {
                    Some(Ok(message)) => {
                        let Some(permit) = permits.pop() else {
                            // More than asked for: never by JetStream's contract.
                            tracing::error!(consumer = %spec.durable, "a pull delivered more messages than it asked for");
                            break;
                        };
                        let handler = handler.clone();
                        let spec = spec.clone();
                        let db = db.clone();
                        running.spawn(async move {
                            handle_one::<E, F, Fut>(message, &spec, &db, handler.as_ref()).await;
                            drop(permit);
                        });
                    }
                    Some(Err(error)) => {
                        tracing::warn!(consumer = %spec.durable, %error, "consumer stream error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                    None => break,
                }
            }
            // Slots asked for but not filled go back for the next pull.
            drop(permits);
            while running.try_join_next().is_some() {}
        }
        // Stop taking work; let the handlers under way finish.
        while running.join_next().await.is_some() {}
        lag_task.abort();
    });
    Ok(task)
}

/// How long a pull waits on the server for messages before it is asked again.
const PULL_EXPIRES: Duration = Duration::from_secs(5);

/// Starts a durable consumer of event type `E` whose handler takes the messages that are
/// ready together (up to `max_batch`), so that one transaction (one commit, one fsync)
/// applies many. When a batch fails, its messages are handled one by one, each with its
/// own retries and dead letter, so one bad message never holds back the others.
pub async fn spawn_batch<E, F, Fut>(
    bus: &Bus,
    db: DatabaseConnection,
    spec: ConsumerSpec,
    max_batch: usize,
    shutdown: Shutdown,
    handler: F,
) -> Result<tokio::task::JoinHandle<()>, BusError>
where
    E: Event + Clone,
    F: Fn(Vec<Delivery<E>>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let consumer = durable_consumer::<E>(bus, &spec).await?;
    let messages = consumer.messages().await.map_err(BusError::nats)?;
    let spec = Arc::new(spec);
    let max_batch = max_batch.max(1);
    let task = tokio::spawn(async move {
        let lag_task = tokio::spawn(report_lag(consumer, spec.clone(), shutdown.clone()));
        let chunks = messages
            .take_until(shutdown.clone().cancelled_owned())
            .ready_chunks(max_batch);
        let mut chunks = std::pin::pin!(chunks);
        while let Some(chunk) = chunks.next().await {
            let mut batch = Vec::with_capacity(chunk.len());
            for message in chunk {
                match message {
                    Ok(message) => batch.push(message),
                    Err(error) => {
                        tracing::warn!(consumer = %spec.durable, %error, "consumer stream error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            handle_batch::<E, F, Fut>(batch, &spec, &db, &handler).await;
        }
        lag_task.abort();
    });
    Ok(task)
}

async fn handle_batch<E, F, Fut>(
    messages: Vec<async_nats::jetstream::Message>,
    spec: &ConsumerSpec,
    db: &DatabaseConnection,
    handler: &F,
) where
    E: Event + Clone,
    F: Fn(Vec<Delivery<E>>) -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
{
    if messages.is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    let batch_span = tracing::info_span!(
        "consume_batch",
        otel.name = %format!("consume {} batch", E::TYPE),
        otel.kind = "consumer",
        service = spec.service,
        consumer = %spec.durable,
        batch_size = messages.len(),
        outcome = tracing::field::Empty,
    );
    // Each message keeps its own span, a child of its producer's trace.
    let mut decoded = Vec::with_capacity(messages.len());
    for message in messages {
        let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
        let subject = message.subject.to_string();
        let event_id = event_id_of::<E>(&message);
        let span = message_span::<E>(spec, &subject, &event_id, delivered);
        trace::set_parent_from_headers(&span, message.headers.as_ref());
        match E::decode(message.payload.clone()) {
            Ok(event) => {
                let tenant_id = chorus_events::tenant_of_subject(&subject)
                    .unwrap_or_default()
                    .to_string();
                let delivery = Delivery {
                    event,
                    event_id,
                    subject,
                    tenant_id,
                    delivered,
                };
                decoded.push((message, delivery, span));
            }
            Err(error) => {
                poison::<E>(
                    message,
                    error,
                    &SettleCtx {
                        spec,
                        db,
                        subject: &subject,
                        event_id: &event_id,
                        delivered,
                        span: &span,
                    },
                )
                .instrument(span.clone())
                .await;
            }
        }
    }
    if decoded.is_empty() {
        return;
    }
    BATCH_SIZE
        .with_label_values(&[&spec.durable])
        .observe(decoded.len() as f64);
    let deliveries: Vec<Delivery<E>> = decoded.iter().map(|(_, d, _)| d.clone()).collect();
    let outcome = handler(deliveries).instrument(batch_span.clone()).await;
    HANDLE_SECONDS
        .with_label_values(&[&spec.durable])
        .observe(started.elapsed().as_secs_f64());
    match outcome {
        Ok(()) => {
            batch_span.record("outcome", "ok");
            let acks = decoded
                .into_iter()
                .map(|(message, delivery, span)| async move {
                    let context = SettleCtx {
                        spec,
                        db,
                        subject: &delivery.subject,
                        event_id: &delivery.event_id,
                        delivered: delivery.delivered,
                        span: &span,
                    };
                    settle(message, Ok(()), &context)
                        .instrument(span.clone())
                        .await;
                });
            futures::future::join_all(acks).await;
        }
        Err(error) => {
            batch_span.record("outcome", "split");
            tracing::warn!(parent: &batch_span, %error, "batch failed; handling its messages one by one");
            for (message, delivery, span) in decoded {
                let single = handler(vec![delivery.clone()])
                    .instrument(span.clone())
                    .await;
                let context = SettleCtx {
                    spec,
                    db,
                    subject: &delivery.subject,
                    event_id: &delivery.event_id,
                    delivered: delivery.delivered,
                    span: &span,
                };
                settle(message, single, &context)
                    .instrument(span.clone())
                    .await;
            }
        }
    }
}

fn event_id_of<E: Event>(message: &async_nats::jetstream::Message) -> String {
    message
        .headers
        .as_ref()
        .and_then(|headers| headers.get("Nats-Msg-Id"))
        .map(|value| value.as_str().to_string())
        .unwrap_or_else(|| {
            let sequence = message.info().map(|info| info.stream_sequence).unwrap_or(0);
            format!("{}-seq-{sequence}", E::DOMAIN.stream)
        })
}

fn message_span<E: Event>(
    spec: &ConsumerSpec,
    subject: &str,
    event_id: &str,
    delivered: i64,
) -> tracing::Span {
    tracing::info_span!(
        "consume",
        otel.name = %format!("consume {}", E::TYPE),
        otel.kind = "consumer",
        service = spec.service,
        consumer = %spec.durable,
        subject = %subject,
        event_id = %event_id,
        delivered,
        outcome = tracing::field::Empty,
    )
}

async fn handle_one<E, F, Fut>(
    message: async_nats::jetstream::Message,
    spec: &ConsumerSpec,
    db: &DatabaseConnection,
    handler: &F,
) where
    E: Event,
    F: Fn(Delivery<E>) -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
{
    let started = std::time::Instant::now();
    let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
    let subject = message.subject.to_string();
    let event_id = event_id_of::<E>(&message);
    let span = message_span::<E>(spec, &subject, &event_id, delivered);
    trace::set_parent_from_headers(&span, message.headers.as_ref());
    let context = SettleCtx {
        spec,
        db,
        subject: &subject,
        event_id: &event_id,
        delivered,
        span: &span,
    };

    let event = match E::decode(message.payload.clone()) {
        Ok(event) => event,
        Err(error) => {
            poison::<E>(message, error, &context)
                .instrument(span.clone())
                .await;
            return;
        }
    };
    let tenant_id = chorus_events::tenant_of_subject(&subject)
        .unwrap_or_default()
        .to_string();
    let delivery = Delivery {
        event,
        event_id: event_id.clone(),
        subject: subject.clone(),
        tenant_id,
        delivered,
    };

    // Long handlers keep the message theirs by telling JetStream they are still working.
    let heartbeat = {
        let interval = spec.ack_wait / 3;
        let message = &message;
        async move {
            loop {
                tokio::time::sleep(interval).await;
                let _ = message.ack_with(AckKind::Progress).await;
            }
        }
    };
    let outcome = tokio::select! {
        outcome = handler(delivery).instrument(span.clone()) => outcome,
        _ = heartbeat => unreachable!("the heartbeat never ends"),
    };
    HANDLE_SECONDS
        .with_label_values(&[&spec.durable])
        .observe(started.elapsed().as_secs_f64());
    settle(message, outcome, &context)
        .instrument(span.clone())
        .await;
}

/// A message whose payload does not decode: terminated and kept as a dead letter.
async fn poison<E: Event>(
    message: async_nats::jetstream::Message,
    error: impl std::fmt::Display,
    context: &SettleCtx<'_>,
) {
    let reason = format!("payload does not decode as {}: {error}", E::TYPE);
    context.span.record("outcome", "poison");
    dead_letter(
        context.db,
        context.spec,
        context.subject,
        context.event_id,
        &reason,
        context.delivered,
        &message.payload,
    )
    .await;
    let _ = message.ack_with(AckKind::Term).await;
    HANDLED
        .with_label_values(&[&context.spec.durable, "poison"])
        .inc();
}

/// Where a handled message goes: acked, retried later, or kept as a dead letter.
struct SettleCtx<'a> {
    spec: &'a ConsumerSpec,
    db: &'a DatabaseConnection,
    subject: &'a str,
    event_id: &'a str,
    delivered: i64,
    span: &'a tracing::Span,
}

async fn settle(
    message: async_nats::jetstream::Message,
    outcome: Result<(), HandlerError>,
    context: &SettleCtx<'_>,
) {
    let SettleCtx {
        spec,
        db,
        subject,
        event_id,
        delivered,
        span,
    } = *context;
    match outcome {
        Ok(()) => {
            span.record("outcome", "ok");
            if let Err(error) = message.double_ack().await {
                tracing::warn!(%error, "ack failed; the message will be redelivered and skipped by the inbox");
            }
            HANDLED.with_label_values(&[&spec.durable, "ok"]).inc();
        }
        Err(HandlerError::Defer { delay, reason }) => {
            span.record("outcome", "deferred");
            tracing::info!(%reason, delay_ms = delay.as_millis() as u64, "message deferred");
            let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
            HANDLED
                .with_label_values(&[&spec.durable, "deferred"])
                .inc();
        }
        Err(HandlerError::Retry(reason)) if delivered < spec.max_deliver => {
            span.record("outcome", "retry");
            let delay = spec.retry_delay(delivered);
            tracing::warn!(%reason, delay_ms = delay.as_millis() as u64, "handler failed, retrying later");
            let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
            HANDLED.with_label_values(&[&spec.durable, "retry"]).inc();
        }
        Err(HandlerError::Retry(reason)) | Err(HandlerError::Reject(reason)) => {
            span.record("outcome", "dead_letter");
            tracing::error!(%reason, "message cannot be applied, kept as a dead letter");
            dead_letter(
                db,
                spec,
                subject,
                event_id,
                &reason,
                delivered,
                &message.payload,
            )
            .await;
            let _ = message.ack_with(AckKind::Term).await;
            HANDLED
                .with_label_values(&[&spec.durable, "dead_letter"])
                .inc();
        }
    }
}

async fn dead_letter(
    db: &DatabaseConnection,
    spec: &ConsumerSpec,
    subject: &str,
    event_id: &str,
    error: &str,
    deliveries: i64,
    payload: &[u8],
) {
    let row = dead_letter::ActiveModel {
        consumer: Set(spec.durable.clone()),
        subject: Set(subject.to_string()),
        event_id: Set(event_id.to_string()),
        error: Set(error.to_string()),
        deliveries: Set(deliveries),
        payload: Set(payload.to_vec()),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    };
    if let Err(db_error) = dead_letter::Entity::insert(row)
        .exec_without_returning(db)
        .await
    {
        tracing::error!(consumer = %spec.durable, %event_id, error = %db_error, "dead letter could not be recorded");
    }
}

/// Dead letters of this database (for the API and metrics).
pub async fn dead_letters(
    db: &DatabaseConnection,
) -> Result<Vec<dead_letter::Model>, sea_orm::DbErr> {
    dead_letter::Entity::find().all(db).await
}
