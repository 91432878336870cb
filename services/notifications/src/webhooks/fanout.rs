//! Reads every domain stream and queues one delivery per subscribed endpoint.

use super::{FANOUT, PENDING, Webhooks};
use crate::entities::{webhook_delivery, webhook_endpoint, webhook_message};
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use chorus_bus::{Bus, BusError};
use chorus_kit::Shutdown;
use futures::StreamExt;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, Set, TransactionTrait};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// One durable consumer per domain stream. A new consumer starts at new events: an
/// endpoint receives what happens after it subscribes.
pub async fn spawn(bus: &Bus, webhooks: Arc<Webhooks>, shutdown: Shutdown) -> Result<(), BusError> {
    for domain in chorus_events::DOMAINS {
        let durable = format!("notifications-webhooks-{}", domain.token);
        let stream = bus
            .jetstream
            .get_stream(domain.stream)
            .await
            .map_err(BusError::nats)?;
        let consumer = stream
            .get_or_create_consumer(
                &durable,
                pull::Config {
                    durable_name: Some(durable.clone()),
                    ack_policy: AckPolicy::Explicit,
                    deliver_policy: DeliverPolicy::New,
                    ack_wait: Duration::from_secs(30),
                    max_ack_pending: 1_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(BusError::nats)?;
        let messages = consumer.messages().await.map_err(BusError::nats)?;
        let webhooks = webhooks.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            messages
                .take_until(shutdown.cancelled_owned())
                .for_each_concurrent(8, |message| {
                    let webhooks = webhooks.clone();
                    let durable = durable.clone();
                    async move {
                        let message = match message {
                            Ok(message) => message,
                            Err(error) => {
                                tracing::warn!(consumer = %durable, %error, "webhook fan-out stream error");
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                return;
                            }
                        };
                        let span = tracing::info_span!(
                            "webhook.fanout",
                            otel.kind = "consumer",
                            service = crate::NAME,
                            messaging.destination.name = %message.subject,
                            endpoints = tracing::field::Empty,
                        );
                        chorus_bus::trace::set_parent_from_headers(&span, message.headers.as_ref());
                        let outcome = webhooks
                            .fan_out(
                                message.subject.as_str(),
                                message.headers.as_ref(),
                                &message.payload,
                            )
                            .instrument(span.clone())
                            .await;
                        let acked = match outcome {
                            Ok(queued) => {
                                span.record("endpoints", queued);
                                FANOUT
                                    .with_label_values(&[if queued > 0 { "queued" } else { "no_subscriber" }])
                                    .inc();
                                message.ack().await
                            }
                            Err(error) => {
                                tracing::warn!(parent: &span, %error, "webhook fan-out failed; retrying");
                                FANOUT.with_label_values(&["retry"]).inc();
                                message
                                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                                    .await
                            }
                        };
                        if let Err(error) = acked {
                            tracing::warn!(consumer = %durable, %error, "webhook fan-out ack failed");
                        }
                    }
                })
                .await;
        });
    }
    Ok(())
}

impl Webhooks {
    /// Queues the event for every enabled endpoint of its tenant that subscribes to its
    /// type; returns how many. Idempotent: a redelivered event queues nothing new.
    pub async fn fan_out(
        &self,
        subject: &str,
        headers: Option<&async_nats::HeaderMap>,
        payload: &[u8],
    ) -> Result<usize, DbErr> {
        let (Some(tenant_id), Some(type_name)) = (
            chorus_events::tenant_of_subject(subject),
            chorus_events::type_name_of_subject(subject),
        ) else {
            return Ok(0);
        };
        let header = |name: &str| {
            headers
                .and_then(|headers| headers.get(name))
                .map(|value| value.as_str().to_string())
        };
        let now = chrono::Utc::now();
        let timestamp = header("ce-time")
            .and_then(|time| chrono::DateTime::parse_from_rfc3339(&time).ok())
            .map(|time| time.with_timezone(&chrono::Utc))
            .unwrap_or(now);
        // An endpoint receives the events that happened after it subscribed.
        let endpoints: Vec<webhook_endpoint::Model> = webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::TenantId.eq(tenant_id))
            .filter(webhook_endpoint::Column::Status.eq(super::ENABLED))
            .filter(webhook_endpoint::Column::CreatedAt.lte(timestamp))
            .all(&self.db)
            .await?
            .into_iter()
            .filter(|endpoint| super::subscribes(endpoint, type_name))
            .collect();
        if endpoints.is_empty() {
            return Ok(0);
        }
        let (Some(event_id), Some(ce_type)) = (header("Nats-Msg-Id"), header("ce-type")) else {
            tracing::warn!(%subject, "event without id or type; not sent to webhooks");
            return Ok(0);
        };
        let Some(data) = chorus_events::payload_json(&ce_type, payload) else {
            tracing::warn!(%subject, %ce_type, "event does not decode; not sent to webhooks");
            return Ok(0);
        };
        let body = serde_json::json!({
            "type": type_name,
            "timestamp": timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": data,
        })
        .to_string();
        let txn = self.db.begin().await?;
        webhook_message::Entity::insert(webhook_message::ActiveModel {
            id: Set(event_id.clone()),
            tenant_id: Set(tenant_id.to_string()),
            event_type: Set(type_name.to_string()),
            body: Set(body),
            created_at: Set(now),
        })
        .on_conflict_do_nothing_on([webhook_message::Column::Id])
        .exec(&txn)
        .await?;
        let count = endpoints.len();
        let rows = endpoints
            .into_iter()
            .map(|endpoint| webhook_delivery::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                tenant_id: Set(tenant_id.to_string()),
                endpoint_id: Set(endpoint.id),
                message_id: Set(event_id.clone()),
                event_type: Set(type_name.to_string()),
                status: Set(PENDING.to_string()),
                attempts: Set(0),
                next_attempt_at: Set(Some(now)),
                lease_owner: Set(None),
                lease_until: Set(None),
                last_status_code: Set(None),
                last_error: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            });
        webhook_delivery::Entity::insert_many(rows)
            .on_conflict_do_nothing_on([
                webhook_delivery::Column::EndpointId,
                webhook_delivery::Column::MessageId,
            ])
            .exec(&txn)
            .await?;
        txn.commit().await?;
        self.wake.notify_one();
        Ok(count)
    }
}
