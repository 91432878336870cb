//! Ingestion: links and shares from publishing, clicks from the gateway, people from
//! identity, posts and approved submissions from content. Each recorded change is an
//! observation (the source of reports) and, for metrics, an `engagement.recorded` event.

use crate::domain;
use crate::entities::{
    link, member, metric_total, observation, post, settings, tracked_share, visitor,
};
use chorus_bus::consumer::{self, ConsumerSpec, Delivery, HandlerError};
use chorus_bus::{Bus, BusError, Outbox, inbox};
use chorus_events::content::v1::{PostPublished, PostUpdated, SubmissionApproved};
use chorus_events::engagement::v1::{EngagementRecorded, LinkClicked, Metric};
use chorus_events::identity::v1::{UserCreated, UserDeactivated, UserErased, UserUpdated};
use chorus_events::share::v1::{SharePublished, ShareScheduled};
use chorus_events::{Event, UserProfileEvent};
use chorus_kit::Shutdown;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
    TransactionTrait, TryInsertResult,
};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub struct Ingest {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub schedule: Vec<Duration>,
    pub links: async_nats::jetstream::kv::Store,
}

const CONSUMER: &str = "engagement";

/// Clicks applied together at most (one transaction).
const CLICK_BATCH: usize = 256;

async fn subscribe<E, F, Fut>(
    bus: &Bus,
    ingest: &Arc<Ingest>,
    durable: &str,
    shutdown: &Shutdown,
    handler: F,
) -> Result<(), BusError>
where
    E: Event,
    F: Fn(Arc<Ingest>, Delivery<E>) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let ingest = ingest.clone();
    consumer::spawn::<E, _, _>(
        bus,
        ingest.db.clone(),
        ConsumerSpec::new(crate::NAME, durable),
        shutdown.clone(),
        move |delivery| handler(ingest.clone(), delivery),
    )
    .await?;
    Ok(())
}

/// Keeps departments and enabled advocates current from `user.created` and `user.updated`.
async fn subscribe_profile<E: UserProfileEvent>(
    bus: &Bus,
    ingest: &Arc<Ingest>,
    durable: &str,
    shutdown: &Shutdown,
) -> Result<(), BusError> {
    subscribe::<E, _, _>(
        bus,
        ingest,
        durable,
        shutdown,
        |ingest, d: Delivery<E>| async move {
            let event = &d.event;
            ingest
                .member(
                    &d.event_id,
                    &d.tenant_id,
                    event.user_id(),
                    event.display_name(),
                    event.department(),
                    event.roles(),
                    true,
                )
                .await
        },
    )
    .await
}

pub async fn spawn(bus: &Bus, ingest: Arc<Ingest>, shutdown: Shutdown) -> Result<(), BusError> {
    subscribe::<ShareScheduled, _, _>(
        bus,
        &ingest,
        "engagement-share-scheduled",
        &shutdown,
        |ingest, d| async move { ingest.share_scheduled(d).await },
    )
    .await?;
    subscribe::<SharePublished, _, _>(
        bus,
        &ingest,
        "engagement-share-published",
        &shutdown,
        |ingest, d| async move { ingest.share_published(d).await },
    )
    .await?;
    {
        let ingest = ingest.clone();
        consumer::spawn_batch::<LinkClicked, _, _>(
            bus,
            ingest.db.clone(),
            ConsumerSpec::new(crate::NAME, "engagement-link-clicked"),
            CLICK_BATCH,
            shutdown.clone(),
            move |deliveries| {
                let ingest = ingest.clone();
                async move { ingest.link_clicks(deliveries).await }
            },
        )
        .await?;
    }
    subscribe_profile::<UserCreated>(bus, &ingest, "engagement-user-created", &shutdown).await?;
    subscribe_profile::<UserUpdated>(bus, &ingest, "engagement-user-updated", &shutdown).await?;
    subscribe::<UserDeactivated, _, _>(
        bus,
        &ingest,
        "engagement-user-deactivated",
        &shutdown,
        |ingest, d| async move {
            member::Entity::update_many()
                .col_expr(member::Column::Active, Expr::value(false))
                .filter(member::Column::TenantId.eq(d.tenant_id.clone()))
                .filter(member::Column::UserId.eq(d.event.user_id.clone()))
                .exec(&ingest.db)
                .await?;
            Ok(())
        },
    )
    .await?;
    subscribe::<UserErased, _, _>(
        bus,
        &ingest,
        "engagement-user-erased",
        &shutdown,
        |ingest, d| async move {
            // Clicks and reactions stay counted under a pseudonym.
            chorus_kit::db::erase_person(
                &ingest.db,
                &d.tenant_id,
                &d.event.user_id,
                crate::PERSONAL_DATA,
            )
            .await?;
            Ok(())
        },
    )
    .await?;
    subscribe::<PostPublished, _, _>(
        bus,
        &ingest,
        "engagement-post-published",
        &shutdown,
        |ingest, d| async move {
            ingest
                .post(
                    &d.tenant_id,
                    &d.event.post_id,
                    &d.event.title,
                    &d.event.topics,
                )
                .await
        },
    )
    .await?;
    subscribe::<PostUpdated, _, _>(
        bus,
        &ingest,
        "engagement-post-updated",
        &shutdown,
        |ingest, d| async move {
            ingest
                .post(
                    &d.tenant_id,
                    &d.event.post_id,
                    &d.event.title,
                    &d.event.topics,
                )
                .await
        },
    )
    .await?;
    subscribe::<SubmissionApproved, _, _>(
        bus,
        &ingest,
        "engagement-submission-approved",
        &shutdown,
        |ingest, d| async move {
            let txn = ingest.db.begin().await?;
            if !inbox::record(&txn, CONSUMER, &d.event_id).await? {
                return Ok(());
            }
            let seen = Seen {
                share_id: "",
                user_id: &d.event.author_id,
                post_id: &d.event.post_id,
                network: "",
            };
            observe(
                &txn,
                &d.tenant_id,
                &seen,
                "submission_approved",
                1,
                0,
                chrono::Utc::now(),
            )
            .await?;
            txn.commit().await?;
            Ok(())
        },
    )
    .await?;
    Ok(())
}

pub fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::Click => "click",
        Metric::BotClick => "bot_click",
        Metric::Reaction => "reaction",
        Metric::Comment => "comment",
        Metric::Reshare => "reshare",
        Metric::Impression => "impression",
        Metric::Unspecified => "unspecified",
    }
}

/// What an observation is about.
pub struct Seen<'a> {
    pub share_id: &'a str,
    pub user_id: &'a str,
    pub post_id: &'a str,
    pub network: &'a str,
}

/// The tenant's time zone for day boundaries (UTC until set).
pub async fn time_zone<C: ConnectionTrait>(conn: &C, tenant_id: &str) -> Result<String, DbErr> {
    Ok(settings::Entity::find_by_id(tenant_id.to_string())
        .one(conn)
        .await?
        .map(|row| row.time_zone)
        .unwrap_or_else(|| "UTC".into()))
}

/// Appends one observation, with the person's department and the tenant's day.
pub async fn observe<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    seen: &Seen<'_>,
    metric: &str,
    delta: i64,
    audience: i64,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    let mut observations = Observations::default();
    observations
        .add(conn, tenant_id, seen, metric, delta, audience, at)
        .await?;
    observations.flush(conn).await
}

/// Observations gathered in one transaction and written together, with the tenants' time
/// zones and the people's departments looked up once.
#[derive(Default)]
pub struct Observations {
    rows: Vec<observation::ActiveModel>,
    zones: HashMap<String, String>,
    departments: HashMap<(String, String), String>,
}

impl Observations {
    #[allow(clippy::too_many_arguments)]
    pub async fn add<C: ConnectionTrait>(
        &mut self,
        conn: &C,
        tenant_id: &str,
        seen: &Seen<'_>,
        metric: &str,
        delta: i64,
        audience: i64,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), DbErr> {
        let person = (tenant_id.to_string(), seen.user_id.to_string());
        let department = match self.departments.get(&person) {
            Some(department) => department.clone(),
            None => {
                let department = member::Entity::find_by_id(person.clone())
                    .one(conn)
                    .await?
                    .map(|row| row.department)
                    .unwrap_or_default();
                self.departments.insert(person, department.clone());
                department
            }
        };
        let zone = match self.zones.get(tenant_id) {
            Some(zone) => zone.clone(),
            None => {
                let zone = time_zone(conn, tenant_id).await?;
                self.zones.insert(tenant_id.to_string(), zone.clone());
                zone
            }
        };
        self.rows.push(observation::ActiveModel {
            tenant_id: Set(tenant_id.to_string()),
            day: Set(domain::day_of(at, &zone)),
            at: Set(at),
            share_id: Set(seen.share_id.to_string()),
            user_id: Set(seen.user_id.to_string()),
            post_id: Set(seen.post_id.to_string()),
            network: Set(seen.network.to_string()),
            department: Set(department),
            metric: Set(metric.to_string()),
            delta: Set(delta),
            audience: Set(audience),
            ..Default::default()
        });
        Ok(())
    }

    pub async fn flush<C: ConnectionTrait>(&mut self, conn: &C) -> Result<(), DbErr> {
        let rows = std::mem::take(&mut self.rows);
        // Well under SQLite's limit of bound parameters per statement.
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<_> = rows.by_ref().take(500).collect();
            observation::Entity::insert_many(chunk)
                .exec_without_returning(conn)
                .await?;
        }
        Ok(())
    }
}

/// Running totals per (share, metric) gathered in one transaction: each read once, each
/// written once.
#[derive(Default)]
pub struct Totals {
    totals: HashMap<(String, String), (String, i64)>,
}

impl Totals {
    /// Adds `delta` to a share's running total of `metric`; returns the new total.
    pub async fn add<C: ConnectionTrait>(
        &mut self,
        conn: &C,
        tenant_id: &str,
        share_id: &str,
        metric: &str,
        delta: i64,
    ) -> Result<i64, DbErr> {
        let key = (share_id.to_string(), metric.to_string());
        let entry = match self.totals.get_mut(&key) {
            Some(entry) => entry,
            None => {
                let current = metric_total::Entity::find_by_id(key.clone())
                    .one(conn)
                    .await?
                    .map(|row| row.total)
                    .unwrap_or(0);
                self.totals
                    .entry(key)
                    .or_insert((tenant_id.to_string(), current))
            }
        };
        entry.1 += delta;
        Ok(entry.1)
    }

    pub async fn flush<C: ConnectionTrait>(&mut self, conn: &C) -> Result<(), DbErr> {
        for ((share_id, metric), (tenant_id, total)) in std::mem::take(&mut self.totals) {
            let row = metric_total::ActiveModel {
                share_id: Set(share_id),
                metric: Set(metric),
                tenant_id: Set(tenant_id),
                total: Set(total),
            };
            metric_total::Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([
                        metric_total::Column::ShareId,
                        metric_total::Column::Metric,
                    ])
                    .update_column(metric_total::Column::Total)
                    .to_owned(),
                )
                .exec_without_returning(conn)
                .await?;
        }
        Ok(())
    }
}

/// Adds `delta` to a share's running total of `metric`; returns the new total.
pub async fn add_to_total<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    share_id: &str,
    metric: &str,
    delta: i64,
) -> Result<i64, DbErr> {
    let mut totals = Totals::default();
    let total = totals.add(conn, tenant_id, share_id, metric, delta).await?;
    totals.flush(conn).await?;
    Ok(total)
}

/// The tracked link carried by a share event (`ShareScheduled` and `SharePublished` name it
/// with the same fields).
macro_rules! link_row {
    ($delivery:expr, $event:expr) => {
        link::Model {
            code: $event.link_code.clone(),
            tenant_id: $delivery.tenant_id.clone(),
            share_id: $event.share_id.clone(),
            user_id: $event.user_id.clone(),
            post_id: $event.post_id.clone(),
            network: $event.network.clone(),
            target_url: $event.target_url.clone(),
            created_at: chrono::Utc::now(),
        }
    };
}

impl Ingest {
    /// Registers a tracked link in the database and in the links bucket the gateway reads.
    async fn register_link(&self, link: link::Model) -> Result<(), HandlerError> {
        if link.code.is_empty() {
            // A share without a tracked link (none was issued): nothing to register.
            return Ok(());
        }
        let target = chorus_api::engagement::LinkTarget {
            tenant_id: link.tenant_id.clone(),
            share_id: link.share_id.clone(),
            target_url: link.target_url.clone(),
        };
        let code = link.code.clone();
        let row: link::ActiveModel = link.into();
        link::Entity::insert(row)
            .on_conflict_do_nothing_on([link::Column::Code])
            .exec(&self.db)
            .await?;
        let value =
            serde_json::to_vec(&target).map_err(|error| HandlerError::Reject(error.to_string()))?;
        self.links
            .put(&code, value.into())
            .await
            .map_err(|error| HandlerError::Retry(format!("links bucket: {error}")))?;
        Ok(())
    }

    async fn share_scheduled(
        &self,
        delivery: Delivery<ShareScheduled>,
    ) -> Result<(), HandlerError> {
        let event = &delivery.event;
        self.register_link(link_row!(delivery, event)).await
    }

    async fn share_published(
        &self,
        delivery: Delivery<SharePublished>,
    ) -> Result<(), HandlerError> {
        let event = &delivery.event;
        self.register_link(link_row!(delivery, event)).await?;
        let published_at = chorus_events::from_timestamp(event.published_at.as_ref())
            .unwrap_or_else(chrono::Utc::now);
        let txn = self.db.begin().await?;
        if !inbox::record(&txn, CONSUMER, &delivery.event_id).await? {
            return Ok(());
        }
        let first_poll = self
            .schedule
            .first()
            .map(|delay| published_at + chrono::Duration::from_std(*delay).unwrap_or_default());
        let row = tracked_share::ActiveModel {
            share_id: Set(event.share_id.clone()),
            tenant_id: Set(delivery.tenant_id.clone()),
            user_id: Set(event.user_id.clone()),
            post_id: Set(event.post_id.clone()),
            network: Set(event.network.clone()),
            external_id: Set(event.external_id.clone()),
            published_at: Set(published_at),
            poll_index: Set(0),
            next_poll_at: Set(first_poll),
            refresh_at: Set(None),
        };
        tracked_share::Entity::insert(row)
            .on_conflict_do_nothing_on([tracked_share::Column::ShareId])
            .exec(&txn)
            .await?;
        let seen = Seen {
            share_id: &event.share_id,
            user_id: &event.user_id,
            post_id: &event.post_id,
            network: &event.network,
        };
        observe(
            &txn,
            &delivery.tenant_id,
            &seen,
            "share",
            1,
            event.audience_size,
            published_at,
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Raw clicks become recorded deltas: a person's click (with its unique-visitor flag) or
    /// a bot's, counted apart. The clicks that are ready are applied in one transaction.
    async fn link_clicks(
        &self,
        deliveries: Vec<Delivery<LinkClicked>>,
    ) -> Result<(), HandlerError> {
        let txn = self.db.begin().await?;
        let mut links: HashMap<String, Arc<link::Model>> = HashMap::new();
        let mut observations = Observations::default();
        let mut totals = Totals::default();
        let mut recorded = 0usize;
        for delivery in &deliveries {
            let event = &delivery.event;
            if !inbox::record(&txn, CONSUMER, &delivery.event_id).await? {
                continue;
            }
            let link = match links.get(&event.link_code) {
                Some(link) => link.clone(),
                None => {
                    let Some(link) = link::Entity::find_by_id(event.link_code.clone())
                        .one(&txn)
                        .await?
                    else {
                        return Err(HandlerError::Retry(format!(
                            "link {} not registered yet",
                            event.link_code
                        )));
                    };
                    let link = Arc::new(link);
                    links.insert(event.link_code.clone(), link.clone());
                    link
                }
            };
            let clicked_at = chorus_events::from_timestamp(event.clicked_at.as_ref())
                .unwrap_or_else(chrono::Utc::now);
            let metric = if event.is_bot {
                Metric::BotClick
            } else {
                Metric::Click
            };
            let seen = Seen {
                share_id: &link.share_id,
                user_id: &link.user_id,
                post_id: &link.post_id,
                network: &link.network,
            };
            let mut unique_visitor = false;
            if !event.is_bot && !event.visitor_hash.is_empty() {
                let row = visitor::ActiveModel {
                    share_id: Set(link.share_id.clone()),
                    day: Set(clicked_at.format("%Y-%m-%d").to_string()),
                    visitor_hash: Set(event.visitor_hash.clone()),
                };
                let inserted = visitor::Entity::insert(row)
                    .on_conflict_do_nothing_on([
                        visitor::Column::ShareId,
                        visitor::Column::Day,
                        visitor::Column::VisitorHash,
                    ])
                    .exec(&txn)
                    .await?;
                unique_visitor = !matches!(inserted, TryInsertResult::Conflicted);
                if unique_visitor {
                    totals
                        .add(&txn, &link.tenant_id, &link.share_id, "unique_visitor", 1)
                        .await?;
                    observations
                        .add(
                            &txn,
                            &link.tenant_id,
                            &seen,
                            "unique_visitor",
                            1,
                            0,
                            clicked_at,
                        )
                        .await?;
                }
            }
            let total = totals
                .add(
                    &txn,
                    &link.tenant_id,
                    &link.share_id,
                    metric_name(metric),
                    1,
                )
                .await?;
            observations
                .add(
                    &txn,
                    &link.tenant_id,
                    &seen,
                    metric_name(metric),
                    1,
                    0,
                    clicked_at,
                )
                .await?;
            let event = EngagementRecorded {
                tenant_id: link.tenant_id.clone(),
                share_id: link.share_id.clone(),
                user_id: link.user_id.clone(),
                post_id: link.post_id.clone(),
                network: link.network.clone(),
                metric: metric as i32,
                delta: 1,
                total,
                observed_at: Some(chorus_events::to_timestamp(clicked_at)),
                unique_visitor,
            };
            self.outbox
                .enqueue_with_id(&txn, &event, format!("click-{}", delivery.event_id))
                .await?;
            recorded += 1;
        }
        observations.flush(&txn).await?;
        totals.flush(&txn).await?;
        txn.commit().await?;
        if recorded > 0 {
            self.outbox.wake();
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn member(
        &self,
        event_id: &str,
        tenant_id: &str,
        user_id: &str,
        display_name: &str,
        department: &str,
        roles: &[String],
        active: bool,
    ) -> Result<(), HandlerError> {
        let txn = self.db.begin().await?;
        if !inbox::record(&txn, CONSUMER, event_id).await? {
            return Ok(());
        }
        let row = member::ActiveModel {
            tenant_id: Set(tenant_id.to_string()),
            user_id: Set(user_id.to_string()),
            display_name: Set(display_name.to_string()),
            department: Set(department.trim().to_lowercase()),
            advocate: Set(roles.iter().any(|role| role == "advocate")),
            active: Set(active),
        };
        member::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([member::Column::TenantId, member::Column::UserId])
                    .update_columns([
                        member::Column::DisplayName,
                        member::Column::Department,
                        member::Column::Advocate,
                        member::Column::Active,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    async fn post(
        &self,
        tenant_id: &str,
        post_id: &str,
        title: &str,
        topics: &[String],
    ) -> Result<(), HandlerError> {
        let topics = if topics.is_empty() {
            String::new()
        } else {
            format!(",{},", topics.join(","))
        };
        let row = post::ActiveModel {
            tenant_id: Set(tenant_id.to_string()),
            post_id: Set(post_id.to_string()),
            title: Set(title.to_string()),
            topics: Set(topics),
        };
        post::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([post::Column::TenantId, post::Column::PostId])
                    .update_columns([post::Column::Title, post::Column::Topics])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }
}
