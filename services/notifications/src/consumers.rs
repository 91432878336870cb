use crate::entities::{notification, person};
use chorus_bus::consumer::{self, ConsumerSpec, Delivery, HandlerError};
use chorus_bus::{Bus, BusError, Outbox};
use chorus_events::Event;
use chorus_events::content::v1::{
    PostPublished, PostTransitioned, SubmissionApproved, SubmissionCreated, SubmissionRejected,
    SurveyOpened,
};
use chorus_events::gamification::v1::{
    BadgeEarned, ContestEnding, ContestFinished, ContestStarted, PointsAwarded,
};
use chorus_events::identity::v1::{UserCreated, UserDeactivated, UserErased, UserUpdated};
use chorus_events::notification::v1::{NotificationDelivered, WebhookEndpointDisabled};
use chorus_events::share::v1::{AccountExpiring, ShareFailed, ShareNeedsReconnect, SharePublished};
use chorus_kit::Shutdown;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set, TransactionTrait,
    TryInsertResult,
};
use std::future::Future;
use std::sync::Arc;

pub struct Notifier {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub channels: Arc<crate::channels::Channels>,
}

/// What to tell whom about an event: the kind, and the values its text needs (the text is
/// rendered in the person's language when delivered, see `texts`).
pub struct Message {
    pub user_id: String,
    pub kind: &'static str,
    /// The text's template: the kind, or a variant of it.
    pub template: &'static str,
    pub params: Vec<(&'static str, String)>,
}

impl Message {
    pub fn new(user_id: &str, kind: &'static str, params: Vec<(&'static str, String)>) -> Message {
        Message {
            user_id: user_id.to_string(),
            kind,
            template: kind,
            params,
        }
    }
}

/// Balances worth a word of recognition.
const MILESTONES: &[i64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000,
];

/// The highest milestone passed when a balance went from `before` to `after`.
pub fn milestone_crossed(before: i64, after: i64) -> Option<i64> {
    MILESTONES
        .iter()
        .rev()
        .find(|milestone| before < **milestone && after >= **milestone)
        .copied()
}

/// A time as people read it in a notification (`2026-12-01 09:00 UTC`); empty when unset.
fn utc_minute(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
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

/// Starts a consumer whose handler is a method of the notifier.
async fn handle<E, F, Fut>(
    bus: &Bus,
    notifier: &Arc<Notifier>,
    durable: &str,
    shutdown: &Shutdown,
    handler: F,
) -> Result<(), BusError>
where
    E: Event,
    F: Fn(Arc<Notifier>, Delivery<E>) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let notifier = notifier.clone();
    consumer::spawn::<E, _, _>(
        bus,
        notifier.db.clone(),
        ConsumerSpec::new(crate::NAME, durable),
        shutdown.clone(),
        move |delivery: Delivery<E>| handler(notifier.clone(), delivery),
    )
    .await?;
    Ok(())
}

pub async fn spawn(bus: &Bus, notifier: Arc<Notifier>, shutdown: Shutdown) -> Result<(), BusError> {
    handle::<UserCreated, _, _>(
        bus,
        &notifier,
        "notifications-user-created",
        &shutdown,
        |notifier, delivery| async move {
            let event = delivery.event;
            notifier
                .keep_person(
                    &event.tenant_id,
                    &event.user_id,
                    &event.roles,
                    Some(&event.language),
                    true,
                )
                .await
        },
    )
    .await?;
    handle::<UserUpdated, _, _>(
        bus,
        &notifier,
        "notifications-user-updated",
        &shutdown,
        |notifier, delivery| async move {
            let event = delivery.event;
            notifier
                .keep_person(
                    &event.tenant_id,
                    &event.user_id,
                    &event.roles,
                    Some(&event.language),
                    true,
                )
                .await
        },
    )
    .await?;
    handle::<UserDeactivated, _, _>(
        bus,
        &notifier,
        "notifications-user-deactivated",
        &shutdown,
        |notifier, delivery| async move {
            let event = delivery.event;
            notifier
                .keep_person(&event.tenant_id, &event.user_id, &[], None, false)
                .await
        },
    )
    .await?;
    handle::<UserErased, _, _>(
        bus,
        &notifier,
        "notifications-user-erased",
        &shutdown,
        |notifier, delivery| async move {
            notifier
                .erase(&delivery.event.tenant_id, &delivery.event.user_id)
                .await
        },
    )
    .await?;
    subscribe::<BadgeEarned, _>(
        bus,
        &notifier,
        "notifications-badge-earned",
        &shutdown,
        |event| {
            Some(Message::new(
                &event.user_id,
                "badge_earned",
                vec![("badge", event.title.clone())],
            ))
        },
    )
    .await?;
    subscribe::<SubmissionApproved, _>(
        bus,
        &notifier,
        "notifications-submission-approved",
        &shutdown,
        |event| {
            Some(Message::new(
                &event.author_id,
                "submission_approved",
                vec![],
            ))
        },
    )
    .await?;
    subscribe::<SubmissionRejected, _>(
        bus,
        &notifier,
        "notifications-submission-rejected",
        &shutdown,
        |event| {
            Some(Message::new(
                &event.author_id,
                "submission_rejected",
                vec![("reason", event.reason.clone())],
            ))
        },
    )
    .await?;
    handle::<ContestFinished, _, _>(
        bus,
        &notifier,
        "notifications-contest-finished",
        &shutdown,
        |notifier, delivery| async move {
            let event = &delivery.event;
            // Individual winners are told their place; team results are on the board.
            for winner in event
                .winners
                .iter()
                .filter(|winner| !winner.user_id.is_empty())
            {
                let message = Message::new(
                    &winner.user_id,
                    "contest_won",
                    vec![
                        ("rank", winner.rank.to_string()),
                        ("contest", event.name.clone()),
                    ],
                );
                notifier
                    .deliver(&delivery.tenant_id, &delivery.event_id, message)
                    .await?;
            }
            Ok(())
        },
    )
    .await?;
    handle::<SharePublished, _, _>(
        bus,
        &notifier,
        "notifications-failure-rate-published",
        &shutdown,
        |notifier, delivery| async move {
            let at = chorus_events::from_timestamp(delivery.event.published_at.as_ref())
                .unwrap_or_else(chrono::Utc::now);
            notifier
                .record_outcome(&delivery.tenant_id, &delivery.event_id, false, at)
                .await
        },
    )
    .await?;
    handle::<ShareFailed, _, _>(
        bus,
        &notifier,
        "notifications-failure-rate-failed",
        &shutdown,
        |notifier, delivery| async move {
            let at = chorus_events::from_timestamp(delivery.event.failed_at.as_ref())
                .unwrap_or_else(chrono::Utc::now);
            notifier
                .record_outcome(&delivery.tenant_id, &delivery.event_id, true, at)
                .await
        },
    )
    .await?;
    handle::<PostPublished, _, _>(
        bus,
        &notifier,
        "notifications-post-published",
        &shutdown,
        |notifier, delivery| async move {
            let event = &delivery.event;
            let users = notifier
                .audience(
                    &event.tenant_id,
                    "post_audience",
                    &chorus_api::content::PostRef {
                        post_id: event.post_id.clone(),
                    },
                )
                .await?;
            let template = if event.topics.is_empty() {
                "new_content_plain"
            } else {
                "new_content"
            };
            notifier
                .tell_all(
                    &delivery.tenant_id,
                    &delivery.event_id,
                    users,
                    "new_content",
                    template,
                    vec![
                        ("title", event.title.clone()),
                        ("topics", event.topics.join(", ")),
                    ],
                )
                .await
        },
    )
    .await?;
    handle::<SurveyOpened, _, _>(
        bus,
        &notifier,
        "notifications-survey-opened",
        &shutdown,
        |notifier, delivery| async move {
            let event = &delivery.event;
            let users = notifier
                .audience(
                    &event.tenant_id,
                    "survey_audience",
                    &chorus_api::content::SurveyRef {
                        survey_id: event.survey_id.clone(),
                    },
                )
                .await?;
            notifier
                .tell_all(
                    &delivery.tenant_id,
                    &delivery.event_id,
                    users,
                    "survey_waiting",
                    "survey_waiting",
                    vec![("title", event.title.clone())],
                )
                .await
        },
    )
    .await?;
    handle::<ContestStarted, _, _>(
        bus,
        &notifier,
        "notifications-contest-started",
        &shutdown,
        |notifier, delivery| async move {
            let event = &delivery.event;
            let advocates = notifier
                .people_with(&event.tenant_id, &["advocate"])
                .await?;
            notifier
                .tell_all(
                    &delivery.tenant_id,
                    &delivery.event_id,
                    advocates,
                    "contest_started",
                    "contest_started",
                    vec![
                        ("contest", event.name.clone()),
                        ("metric", event.metric.clone()),
                        (
                            "ends",
                            utc_minute(chorus_events::from_timestamp(event.ends_at.as_ref())),
                        ),
                    ],
                )
                .await
        },
    )
    .await?;
    handle::<ContestEnding, _, _>(
        bus,
        &notifier,
        "notifications-contest-ending",
        &shutdown,
        |notifier, delivery| async move {
            let event = &delivery.event;
            let advocates = notifier
                .people_with(&event.tenant_id, &["advocate"])
                .await?;
            notifier
                .tell_all(
                    &delivery.tenant_id,
                    &delivery.event_id,
                    advocates,
                    "contest_ending",
                    "contest_ending",
                    vec![
                        ("contest", event.name.clone()),
                        (
                            "ends",
                            utc_minute(chorus_events::from_timestamp(event.ends_at.as_ref())),
                        ),
                    ],
                )
                .await
        },
    )
    .await?;
    handle::<SubmissionCreated, _, _>(
        bus,
        &notifier,
        "notifications-submission-created",
        &shutdown,
        |notifier, delivery| async move {
            let event = &delivery.event;
            let mut curators = notifier.people_with(&event.tenant_id, &["curator"]).await?;
            curators.retain(|curator| *curator != event.author);
            notifier
                .tell_all(
                    &delivery.tenant_id,
                    &delivery.event_id,
                    curators,
                    "submission_waiting",
                    "submission_waiting",
                    vec![
                        ("title", event.title.clone()),
                        ("author", event.author.clone()),
                    ],
                )
                .await
        },
    )
    .await?;
    handle::<PostTransitioned, _, _>(
        bus,
        &notifier,
        "notifications-post-transitioned",
        &shutdown,
        |notifier, delivery| async move {
            let event = &delivery.event;
            if event.to_status != "in_review" {
                return Ok(());
            }
            // Those who may approve (approvers and admins), the author aside.
            let mut reviewers = notifier
                .people_with(&event.tenant_id, &["approver", "admin"])
                .await?;
            reviewers.retain(|reviewer| *reviewer != event.actor);
            notifier
                .tell_all(
                    &delivery.tenant_id,
                    &delivery.event_id,
                    reviewers,
                    "post_waiting_review",
                    "post_waiting_review",
                    vec![
                        ("actor", event.actor.clone()),
                        ("post", event.post_id.clone()),
                    ],
                )
                .await
        },
    )
    .await?;
    handle::<WebhookEndpointDisabled, _, _>(
        bus,
        &notifier,
        "notifications-webhook-disabled",
        &shutdown,
        |notifier, delivery| async move {
            let event = &delivery.event;
            let admins = notifier.admins(&event.tenant_id).await?;
            notifier
                .tell_all(
                    &delivery.tenant_id,
                    &delivery.event_id,
                    admins,
                    "webhook_endpoint_disabled",
                    "webhook_endpoint_disabled",
                    vec![("url", event.url.clone()), ("reason", event.reason.clone())],
                )
                .await
        },
    )
    .await?;
    subscribe::<SharePublished, _>(
        bus,
        &notifier,
        "notifications-share-published",
        &shutdown,
        |event| {
            Some(Message::new(
                &event.user_id,
                "share_published",
                vec![
                    ("network", network_name(&event.network).to_string()),
                    ("url", event.external_url.clone()),
                ],
            ))
        },
    )
    .await?;
    subscribe::<ShareFailed, _>(
        bus,
        &notifier,
        "notifications-share-failed",
        &shutdown,
        |event| {
            Some(Message::new(
                &event.user_id,
                "share_failed",
                vec![
                    ("network", network_name(&event.network).to_string()),
                    ("reason", event.reason.clone()),
                ],
            ))
        },
    )
    .await?;
    subscribe::<ShareNeedsReconnect, _>(
        bus,
        &notifier,
        "notifications-share-needs-reconnect",
        &shutdown,
        |event| {
            Some(Message::new(
                &event.user_id,
                "account_needs_reconnect",
                vec![
                    ("network", network_name(&event.network).to_string()),
                    ("reason", event.reason.clone()),
                ],
            ))
        },
    )
    .await?;
    subscribe::<AccountExpiring, _>(
        bus,
        &notifier,
        "notifications-account-expiring",
        &shutdown,
        |event| {
            let when = match chorus_events::from_timestamp(event.expires_at.as_ref()) {
                Some(at) => utc_minute(Some(at)),
                None => "soon".to_string(),
            };
            Some(Message::new(
                &event.user_id,
                "account_expiring",
                vec![
                    ("network", network_name(&event.network).to_string()),
                    ("when", when),
                ],
            ))
        },
    )
    .await?;
    handle::<PointsAwarded, _, _>(
        bus,
        &notifier,
        "notifications-points-awarded",
        &shutdown,
        |notifier, delivery| async move {
            let event = &delivery.event;
            if event.points <= 0 {
                return Ok(());
            }
            notifier
                .deliver(
                    &delivery.tenant_id,
                    &delivery.event_id,
                    Message::new(
                        &event.user_id,
                        "points_awarded",
                        vec![
                            ("points", event.points.to_string()),
                            ("action", event.action.clone()),
                            ("balance", event.balance.to_string()),
                        ],
                    ),
                )
                .await?;
            if let Some(milestone) = milestone_crossed(event.balance - event.points, event.balance)
            {
                notifier
                    .deliver(
                        &delivery.tenant_id,
                        &format!("{}:milestone", delivery.event_id),
                        Message::new(
                            &event.user_id,
                            "points_milestone",
                            vec![
                                ("milestone", milestone.to_string()),
                                ("balance", event.balance.to_string()),
                            ],
                        ),
                    )
                    .await?;
            }
            Ok(())
        },
    )
    .await?;
    Ok(())
}

impl Notifier {
    /// Keeps who is who (roles, active) from identity's events; a deactivated person keeps
    /// their roles but is no longer told.
    async fn keep_person(
        &self,
        tenant_id: &str,
        user_id: &str,
        roles: &[String],
        language: Option<&str>,
        active: bool,
    ) -> Result<(), HandlerError> {
        let mut update = vec![person::Column::Active];
        if active {
            update.push(person::Column::Roles);
        }
        if language.is_some() {
            update.push(person::Column::Language);
        }
        person::Entity::insert(person::ActiveModel {
            tenant_id: Set(tenant_id.to_string()),
            user_id: Set(user_id.to_string()),
            roles: Set(roles.join(",")),
            active: Set(active),
            language: Set(language.unwrap_or_default().to_string()),
        })
        .on_conflict(
            OnConflict::columns([person::Column::TenantId, person::Column::UserId])
                .update_columns(update)
                .to_owned(),
        )
        .exec(&self.db)
        .await?;
        Ok(())
    }

    /// Forgets a person: their notifications and their row.
    async fn erase(&self, tenant_id: &str, user_id: &str) -> Result<(), HandlerError> {
        let txn = self.db.begin().await?;
        chorus_kit::db::erase_person(&txn, tenant_id, user_id, crate::PERSONAL_DATA).await?;
        txn.commit().await?;
        tracing::info!(%tenant_id, %user_id, "notifications erased");
        Ok(())
    }

    /// The language a person reads notifications in: from identity's events, or asked of
    /// identity when the person's events have not arrived yet; English when unknown.
    async fn language_of(&self, tenant_id: &str, user_id: &str) -> Result<String, HandlerError> {
        if let Some(person) =
            person::Entity::find_by_id((tenant_id.to_string(), user_id.to_string()))
                .one(&self.db)
                .await?
        {
            return Ok(person.language);
        }
        let user = self.channels.profile(tenant_id, user_id).await;
        Ok(user.map(|user| user.language).unwrap_or_default())
    }

    /// Tells each of `users` the same thing about one event (each once).
    pub async fn tell_all(
        &self,
        tenant_id: &str,
        event_id: &str,
        users: Vec<String>,
        kind: &'static str,
        template: &'static str,
        params: Vec<(&'static str, String)>,
    ) -> Result<(), HandlerError> {
        for user_id in users {
            let mut message = Message::new(&user_id, kind, params.clone());
            message.template = template;
            self.deliver(tenant_id, event_id, message).await?;
        }
        Ok(())
    }

    /// Who content says a post or a survey is for (`post_audience`, `survey_audience`).
    async fn audience<R: serde::Serialize>(
        &self,
        tenant_id: &str,
        endpoint: &str,
        request: &R,
    ) -> Result<Vec<String>, HandlerError> {
        let audience: chorus_api::content::PostAudience = chorus_bus::rpc::call(
            &self.channels.nats,
            &chorus_bus::rpc::subject("content", endpoint),
            &chorus_kit::Caller::system(tenant_id),
            request,
            std::time::Duration::from_secs(10),
        )
        .await?;
        Ok(audience.user_ids)
    }

    /// The tenant's active admins.
    pub async fn admins(&self, tenant_id: &str) -> Result<Vec<String>, HandlerError> {
        self.people_with(tenant_id, &["admin"]).await
    }

    /// The tenant's active people holding any of `roles`.
    async fn people_with(
        &self,
        tenant_id: &str,
        roles: &[&str],
    ) -> Result<Vec<String>, HandlerError> {
        Ok(person::Entity::find()
            .filter(person::Column::TenantId.eq(tenant_id))
            .filter(person::Column::Active.eq(true))
            .all(&self.db)
            .await?
            .into_iter()
            .filter(|person| person.roles.split(',').any(|role| roles.contains(&role)))
            .map(|person| person.user_id)
            .collect())
    }

    /// Stores the in-app notification and announces its delivery, once per event and person.
    pub async fn deliver(
        &self,
        tenant_id: &str,
        source_event_id: &str,
        message: Message,
    ) -> Result<(), HandlerError> {
        let now = chrono::Utc::now();
        let id = uuid::Uuid::now_v7().to_string();
        let channel = crate::channels::IN_APP;
        let routing = self
            .channels
            .routing(tenant_id, &message.user_id, message.kind)
            .await?;
        let language = self.language_of(tenant_id, &message.user_id).await?;
        let (title, body) = crate::texts::render(message.template, &language, &message.params);
        let txn = self.db.begin().await?;
        if routing.in_app {
            let row = notification::ActiveModel {
                id: Set(id.clone()),
                tenant_id: Set(tenant_id.to_string()),
                user_id: Set(message.user_id.clone()),
                kind: Set(message.kind.to_string()),
                channel: Set(channel.to_string()),
                title: Set(title.clone()),
                body: Set(body.clone()),
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
            if !matches!(inserted, TryInsertResult::Conflicted) {
                let event = NotificationDelivered {
                    tenant_id: tenant_id.to_string(),
                    notification_id: id.clone(),
                    user_id: message.user_id.clone(),
                    kind: message.kind.to_string(),
                    channel: channel.to_string(),
                    source_event_id: source_event_id.to_string(),
                    delivered_at: Some(chorus_events::to_timestamp(now)),
                    title: title.clone(),
                    body: body.clone(),
                };
                self.outbox.enqueue(&txn, &event).await?;
            }
        }
        // E-mail and team channels: queued here, sent by the channel worker; a repeated
        // event queues nothing new.
        let queued = self
            .channels
            .enqueue(
                &txn,
                tenant_id,
                &message.user_id,
                message.kind,
                &title,
                &body,
                source_event_id,
                &routing,
            )
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        if queued > 0 {
            self.channels.wake.notify_one();
        }
        tracing::info!(%tenant_id, user_id = %message.user_id, kind = message.kind, in_app = routing.in_app, queued, "notification delivered");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::milestone_crossed;

    #[test]
    fn milestones_are_told_once_when_crossed() {
        assert_eq!(milestone_crossed(90, 100), Some(100));
        assert_eq!(milestone_crossed(100, 110), None);
        assert_eq!(milestone_crossed(240, 260), Some(250));
        assert_eq!(milestone_crossed(0, 600), Some(500));
        assert_eq!(milestone_crossed(0, 99), None);
    }
}
