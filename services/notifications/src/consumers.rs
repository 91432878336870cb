use crate::entities::notification;
use chorus_bus::consumer::{self, ConsumerSpec, Delivery, HandlerError};
use chorus_bus::{Bus, BusError, Outbox};
use chorus_events::Event;
use chorus_events::gamification::v1::PointsAwarded;
use chorus_events::notification::v1::NotificationDelivered;
use chorus_events::share::v1::{AccountExpiring, ShareFailed, ShareNeedsReconnect, SharePublished};
use chorus_kit::Shutdown;
use sea_orm::{DatabaseConnection, EntityTrait, Set, TransactionTrait, TryInsertResult};
use std::future::Future;
use std::sync::Arc;

pub struct Notifier {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
}

/// What to tell whom about an event.
pub struct Message {
    pub user_id: String,
    pub kind: &'static str,
    pub title: String,
    pub body: String,
}

fn network_name(network: &str) -> &str {
    match network {
        "linkedin" => "LinkedIn",
        other => other,
    }
}

async fn subscribe<E, F>(
    bus: &Bus,
    notifier: &Arc<Notifier>,
    durable: &str,
    shutdown: &Shutdown,
    compose: F,
) -> Result<(), BusError>
where
    E: Event,
    F: Fn(&E) -> Option<Message> + Send + Sync + Copy + 'static,
{
    let notifier = notifier.clone();
    consumer::spawn::<E, _, _>(
        bus,
        notifier.db.clone(),
        ConsumerSpec::new(crate::NAME, durable),
        shutdown.clone(),
        move |delivery: Delivery<E>| -> std::pin::Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>> {
            let notifier = notifier.clone();
            Box::pin(async move {
                match compose(&delivery.event) {
                    Some(message) => notifier.deliver(&delivery.tenant_id, &delivery.event_id, message).await,
                    None => Ok(()),
                }
            })
        },
    )
    .await?;
    Ok(())
}

pub async fn spawn(bus: &Bus, notifier: Arc<Notifier>, shutdown: Shutdown) -> Result<(), BusError> {
    subscribe::<SharePublished, _>(
        bus,
        &notifier,
        "notifications-share-published",
        &shutdown,
        |event| {
            Some(Message {
                user_id: event.user_id.clone(),
                kind: "share_published",
                title: format!(
                    "Your share was published on {}",
                    network_name(&event.network)
                ),
                body: format!("See it at {}", event.external_url),
            })
        },
    )
    .await?;
    subscribe::<ShareFailed, _>(
        bus,
        &notifier,
        "notifications-share-failed",
        &shutdown,
        |event| {
            Some(Message {
                user_id: event.user_id.clone(),
                kind: "share_failed",
                title: format!(
                    "Your share could not be published on {}",
                    network_name(&event.network)
                ),
                body: event.reason.clone(),
            })
        },
    )
    .await?;
    subscribe::<ShareNeedsReconnect, _>(
        bus,
        &notifier,
        "notifications-share-needs-reconnect",
        &shutdown,
        |event| {
            Some(Message {
                user_id: event.user_id.clone(),
                kind: "account_needs_reconnect",
                title: format!("Reconnect your {} account", network_name(&event.network)),
                body: format!("A share is waiting: {}", event.reason),
            })
        },
    )
    .await?;
    subscribe::<AccountExpiring, _>(
        bus,
        &notifier,
        "notifications-account-expiring",
        &shutdown,
        |event| {
            let when = chorus_events::from_timestamp(event.expires_at.as_ref())
                .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_else(|| "soon".to_string());
            Some(Message {
                user_id: event.user_id.clone(),
                kind: "account_expiring",
                title: format!(
                    "Reconnect your {} account before {when}",
                    network_name(&event.network)
                ),
                body: format!(
                    "{} asks you to sign in again every so often. Reconnect before {when} so that your scheduled shares go out.",
                    network_name(&event.network)
                ),
            })
        },
    )
    .await?;
    subscribe::<PointsAwarded, _>(
        bus,
        &notifier,
        "notifications-points-awarded",
        &shutdown,
        |event| {
            (event.points > 0).then(|| Message {
                user_id: event.user_id.clone(),
                kind: "points_awarded",
                title: format!("You earned {} points", event.points),
                body: format!(
                    "For a {}. Your balance is {} points.",
                    event.action, event.balance
                ),
            })
        },
    )
    .await?;
    Ok(())
}

impl Notifier {
    /// Stores the in-app notification and announces its delivery, once per event and person.
    async fn deliver(
        &self,
        tenant_id: &str,
        source_event_id: &str,
        message: Message,
    ) -> Result<(), HandlerError> {
        let now = chrono::Utc::now();
        let id = uuid::Uuid::now_v7().to_string();
        let channel = "in_app";
        let txn = self.db.begin().await?;
        let row = notification::ActiveModel {
            id: Set(id.clone()),
            tenant_id: Set(tenant_id.to_string()),
            user_id: Set(message.user_id.clone()),
            kind: Set(message.kind.to_string()),
            channel: Set(channel.to_string()),
            title: Set(message.title),
            body: Set(message.body),
            source_event_id: Set(source_event_id.to_string()),
            created_at: Set(now),
            read_at: Set(None),
        };
        let inserted = notification::Entity::insert(row)
            .on_conflict_do_nothing_on([
                notification::Column::TenantId,
                notification::Column::UserId,
                notification::Column::SourceEventId,
                notification::Column::Channel,
            ])
            .exec(&txn)
            .await?;
        if matches!(inserted, TryInsertResult::Conflicted) {
            txn.rollback().await?;
            return Ok(());
        }
        let event = NotificationDelivered {
            tenant_id: tenant_id.to_string(),
            notification_id: id.clone(),
            user_id: message.user_id.clone(),
            kind: message.kind.to_string(),
            channel: channel.to_string(),
            source_event_id: source_event_id.to_string(),
            delivered_at: Some(chorus_events::to_timestamp(now)),
        };
        self.outbox.enqueue(&txn, &event).await?;
        txn.commit().await?;
        self.outbox.wake();
        tracing::info!(%tenant_id, user_id = %message.user_id, kind = message.kind, channel, "notification delivered");
        Ok(())
    }
}
