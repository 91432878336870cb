//! Sends due deliveries: claim with a lease, sign, POST, record, retry or give up.

use super::{
    ATTEMPT_SECONDS, DELIVERIES, DISABLED, DISABLED_TOTAL, ENABLED, FAILED, PENDING, SUCCEEDED,
    Webhooks, destination, signing,
};
use crate::entities::{webhook_delivery, webhook_endpoint, webhook_message};
use chorus_events::notification::v1::WebhookEndpointDisabled;
use chorus_kit::Shutdown;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// What one request achieved.
struct Outcome {
    status: Option<u16>,
    error: Option<String>,
}

impl Outcome {
    fn succeeded(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }
}

/// Runs until `shutdown`: claims due deliveries up to the free concurrency and sends them.
pub async fn run(webhooks: Arc<Webhooks>, shutdown: Shutdown) {
    let slots = Arc::new(tokio::sync::Semaphore::new(
        webhooks.config.webhook_concurrency,
    ));
    let mut tasks = tokio::task::JoinSet::new();
    while !shutdown.is_cancelled() {
        while tasks.try_join_next().is_some() {}
        let free = slots.available_permits();
        let mut claimed_all = false;
        if free > 0 {
            match webhooks.claim(free as u64).await {
                Ok(claimed) => {
                    claimed_all = claimed.len() == free;
                    for delivery in claimed {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            return;
                        };
                        let webhooks = webhooks.clone();
                        tasks.spawn(async move {
                            webhooks.attempt(delivery).await;
                            drop(permit);
                            webhooks.wake.notify_one();
                        });
                    }
                }
                Err(error) => tracing::warn!(%error, "claiming webhook deliveries failed"),
            }
        }
        if claimed_all {
            continue;
        }
        let wait = webhooks
            .next_due_in()
            .await
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = webhooks.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    // Attempts in flight finish (or their lease lapses and another worker takes over).
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

fn due(now: chrono::DateTime<chrono::Utc>) -> Condition {
    Condition::all()
        .add(webhook_delivery::Column::Status.eq(PENDING))
        .add(webhook_delivery::Column::NextAttemptAt.lte(now))
        .add(
            Condition::any()
                .add(webhook_delivery::Column::LeaseUntil.is_null())
                .add(webhook_delivery::Column::LeaseUntil.lt(now)),
        )
}

impl Webhooks {
    /// Takes up to `limit` due deliveries under a lease that outlives one request; the
    /// lease condition is re-checked by the update, so two workers never hold one delivery.
    async fn claim(&self, limit: u64) -> Result<Vec<webhook_delivery::Model>, DbErr> {
        let now = chrono::Utc::now();
        let ids: Vec<String> = webhook_delivery::Entity::find()
            .select_only()
            .column(webhook_delivery::Column::Id)
            .filter(due(now))
            .order_by_asc(webhook_delivery::Column::NextAttemptAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let owner = uuid::Uuid::new_v4().to_string();
        let lease = chrono::TimeDelta::milliseconds(self.config.webhook_timeout_ms as i64)
            + chrono::TimeDelta::seconds(30);
        webhook_delivery::Entity::update_many()
            .col_expr(
                webhook_delivery::Column::LeaseOwner,
                Expr::value(owner.clone()),
            )
            .col_expr(
                webhook_delivery::Column::LeaseUntil,
                Expr::value(now + lease),
            )
            .filter(webhook_delivery::Column::Id.is_in(ids.clone()))
            .filter(due(now))
            .exec(&self.db)
            .await?;
        webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Id.is_in(ids))
            .filter(webhook_delivery::Column::LeaseOwner.eq(owner))
            .all(&self.db)
            .await
    }

    /// Time until the next pending delivery is due.
    async fn next_due_in(&self) -> Option<Duration> {
        let next: Option<chrono::DateTime<chrono::Utc>> = webhook_delivery::Entity::find()
            .select_only()
            .column(webhook_delivery::Column::NextAttemptAt)
            .filter(webhook_delivery::Column::Status.eq(PENDING))
            .order_by_asc(webhook_delivery::Column::NextAttemptAt)
            .into_tuple::<Option<chrono::DateTime<chrono::Utc>>>()
            .one(&self.db)
            .await
            .ok()
            .flatten()
            .flatten();
        next.map(|at| {
            (at - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::from_millis(10))
        })
    }

    async fn attempt(&self, delivery: webhook_delivery::Model) {
        let span = tracing::info_span!(
            "webhook.deliver",
            otel.kind = "client",
            service = crate::NAME,
            tenant_id = %delivery.tenant_id,
            endpoint_id = %delivery.endpoint_id,
            message_id = %delivery.message_id,
            event_type = %delivery.event_type,
            attempt = delivery.attempts + 1,
            http.response.status_code = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        if let Err(error) = self.attempt_inner(delivery).instrument(span.clone()).await {
            // The lease lapses and the attempt is made again.
            tracing::warn!(parent: &span, %error, "webhook attempt not recorded");
        }
    }

    async fn attempt_inner(&self, delivery: webhook_delivery::Model) -> Result<(), DbErr> {
        let Some(endpoint) = webhook_endpoint::Entity::find_by_id(delivery.endpoint_id.clone())
            .one(&self.db)
            .await?
        else {
            webhook_delivery::Entity::delete_by_id(delivery.id.clone())
                .exec(&self.db)
                .await?;
            return Ok(());
        };
        if endpoint.status != ENABLED {
            let error = "endpoint disabled; replay once it is enabled again".to_string();
            return self
                .record(&delivery, FAILED, None, None, Some(error), "failed")
                .await;
        }
        let Some(message) = webhook_message::Entity::find_by_id(delivery.message_id.clone())
            .one(&self.db)
            .await?
        else {
            return self
                .record(
                    &delivery,
                    FAILED,
                    None,
                    None,
                    Some("message no longer kept".into()),
                    "failed",
                )
                .await;
        };
        let now = chrono::Utc::now();
        let secrets = match self.secrets(&endpoint, now) {
            Ok(secrets) => secrets,
            Err(error) => {
                tracing::error!(%error, "webhook secret does not decrypt (check security.encryption_keys)");
                let retry = now + chrono::TimeDelta::minutes(1);
                return self
                    .record(
                        &delivery,
                        PENDING,
                        Some(retry),
                        None,
                        Some(error.to_string()),
                        "retry",
                    )
                    .await;
            }
        };
        let allow_private = self.allow_private(&endpoint.tenant_id).await?;
        let started = Instant::now();
        let outcome = self
            .send(&endpoint.url, allow_private, &message, &secrets)
            .await;
        let span = tracing::Span::current();
        if let Some(status) = outcome.status {
            span.record("http.response.status_code", status);
        }
        let attempts = delivery.attempts + 1;
        let label = if outcome.succeeded() {
            self.record(
                &delivery,
                SUCCEEDED,
                None,
                outcome.status,
                None,
                "succeeded",
            )
            .await?;
            webhook_endpoint::Entity::update_many()
                .col_expr(
                    webhook_endpoint::Column::FailingSince,
                    Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
                )
                .filter(webhook_endpoint::Column::Id.eq(endpoint.id.clone()))
                .filter(webhook_endpoint::Column::FailingSince.is_not_null())
                .exec(&self.db)
                .await?;
            "succeeded"
        } else {
            webhook_endpoint::Entity::update_many()
                .col_expr(webhook_endpoint::Column::FailingSince, Expr::value(now))
                .filter(webhook_endpoint::Column::Id.eq(endpoint.id.clone()))
                .filter(webhook_endpoint::Column::FailingSince.is_null())
                .exec(&self.db)
                .await?;
            let gone = outcome.status == Some(410);
            let schedule = &self.config.webhook_retry_schedule_ms;
            if !gone && (attempts as usize) <= schedule.len() {
                let base = Duration::from_millis(schedule[attempts as usize - 1]);
                let delay = base.mul_f64(0.8 + fastrand::f64() * 0.4);
                let next =
                    chrono::Utc::now() + chrono::TimeDelta::from_std(delay).unwrap_or_default();
                self.record(
                    &delivery,
                    PENDING,
                    Some(next),
                    outcome.status,
                    outcome.error.clone(),
                    "retry",
                )
                .await?;
                "retry"
            } else {
                self.record(
                    &delivery,
                    FAILED,
                    None,
                    outcome.status,
                    outcome.error.clone(),
                    "failed",
                )
                .await?;
                let failing_since = endpoint.failing_since.unwrap_or(now);
                let sustained = now - failing_since
                    >= chrono::TimeDelta::seconds(self.config.webhook_disable_after_secs as i64);
                if gone {
                    self.disable(
                        &endpoint,
                        failing_since,
                        "the endpoint answered 410 Gone",
                        "gone",
                    )
                    .await?;
                } else if sustained {
                    let reason = format!(
                        "every delivery failed since {} (last: {})",
                        failing_since.format("%Y-%m-%d %H:%M UTC"),
                        outcome.error.as_deref().unwrap_or("no answer")
                    );
                    self.disable(&endpoint, failing_since, &reason, "failing")
                        .await?;
                }
                "failed"
            }
        };
        span.record("outcome", label);
        ATTEMPT_SECONDS
            .with_label_values(&[label])
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(
            status = outcome.status,
            error = outcome.error.as_deref(),
            attempts,
            outcome = label,
            "webhook attempt"
        );
        Ok(())
    }

    /// POSTs the message to `url` with its Standard Webhooks headers.
    async fn send(
        &self,
        url: &str,
        allow_private: bool,
        message: &webhook_message::Model,
        secrets: &[String],
    ) -> Outcome {
        let refused = |error: destination::Refused| {
            DELIVERIES.with_label_values(&["refused"]).inc();
            Outcome {
                status: None,
                error: Some(format!("refused: {error}")),
            }
        };
        let parsed = match destination::parse(url, allow_private) {
            Ok(parsed) => parsed,
            Err(error) => return refused(error),
        };
        let client = if allow_private {
            self.client.clone()
        } else {
            // Connect only to the addresses just checked (no second lookup by the client).
            let addresses = match destination::resolve(&parsed, false).await {
                Ok(addresses) => addresses,
                Err(error) => return refused(error),
            };
            let mut builder = super::client_builder(&self.config);
            if let Some(url::Host::Domain(name)) = parsed.host() {
                builder = builder.resolve_to_addrs(name, &addresses);
            }
            match builder.build() {
                Ok(client) => client,
                Err(error) => {
                    return Outcome {
                        status: None,
                        error: Some(error.to_string()),
                    };
                }
            }
        };
        let timestamp = chrono::Utc::now().timestamp();
        let signature =
            signing::signature_header(secrets, &message.id, timestamp, message.body.as_bytes());
        let mut request = client
            .post(parsed)
            .header("content-type", "application/json")
            .header("webhook-id", &message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature);
        for (name, value) in chorus_bus::trace::current_context_map() {
            request = request.header(name, value);
        }
        match request.body(message.body.clone()).send().await {
            Ok(response) => {
                let status = response.status();
                let error = if status.is_success() {
                    None
                } else {
                    let text = response.text().await.unwrap_or_default();
                    let excerpt: String = text.chars().take(300).collect();
                    Some(format!("HTTP {}: {}", status.as_u16(), excerpt.trim()))
                };
                Outcome {
                    status: Some(status.as_u16()),
                    error,
                }
            }
            Err(error) => Outcome {
                status: None,
                error: Some(if error.is_timeout() {
                    "timed out".to_string()
                } else if error.is_connect() {
                    "connection failed".to_string()
                } else {
                    error.to_string()
                }),
            },
        }
    }

    async fn record(
        &self,
        delivery: &webhook_delivery::Model,
        status: &str,
        next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
        status_code: Option<u16>,
        error: Option<String>,
        outcome: &str,
    ) -> Result<(), DbErr> {
        DELIVERIES.with_label_values(&[outcome]).inc();
        webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::Status, Expr::value(status))
            .col_expr(
                webhook_delivery::Column::Attempts,
                Expr::value(delivery.attempts + 1),
            )
            .col_expr(
                webhook_delivery::Column::NextAttemptAt,
                Expr::value(next_attempt_at),
            )
            .col_expr(
                webhook_delivery::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                webhook_delivery::Column::LeaseUntil,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .col_expr(
                webhook_delivery::Column::LastStatusCode,
                Expr::value(status_code.map(i32::from)),
            )
            .col_expr(webhook_delivery::Column::LastError, Expr::value(error))
            .col_expr(
                webhook_delivery::Column::UpdatedAt,
                Expr::value(chrono::Utc::now()),
            )
            .filter(webhook_delivery::Column::Id.eq(delivery.id.clone()))
            .filter(webhook_delivery::Column::LeaseOwner.eq(delivery.lease_owner.clone()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Disables the endpoint and announces it (admins are notified from the event).
    async fn disable(
        &self,
        endpoint: &webhook_endpoint::Model,
        failing_since: chrono::DateTime<chrono::Utc>,
        reason: &str,
        label: &str,
    ) -> Result<(), DbErr> {
        let now = chrono::Utc::now();
        let txn = self.db.begin().await?;
        let changed = webhook_endpoint::Entity::update_many()
            .col_expr(webhook_endpoint::Column::Status, Expr::value(DISABLED))
            .col_expr(
                webhook_endpoint::Column::DisabledReason,
                Expr::value(reason.to_string()),
            )
            .col_expr(webhook_endpoint::Column::UpdatedAt, Expr::value(now))
            .filter(webhook_endpoint::Column::Id.eq(endpoint.id.clone()))
            .filter(webhook_endpoint::Column::Status.eq(ENABLED))
            .exec(&txn)
            .await?;
        if changed.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(());
        }
        let event = WebhookEndpointDisabled {
            tenant_id: endpoint.tenant_id.clone(),
            endpoint_id: endpoint.id.clone(),
            url: endpoint.url.clone(),
            reason: reason.to_string(),
            failing_since: Some(chorus_events::to_timestamp(failing_since)),
            disabled_at: Some(chorus_events::to_timestamp(now)),
        };
        self.outbox.enqueue(&txn, &event).await?;
        txn.commit().await?;
        self.outbox.wake();
        DISABLED_TOTAL.with_label_values(&[label]).inc();
        tracing::warn!(tenant_id = %endpoint.tenant_id, endpoint_id = %endpoint.id, %reason, "webhook endpoint disabled");
        Ok(())
    }
}
