use crate::entities::share;
use chorus_api::Page;
use chorus_api::content::FeedQuery;
use chorus_api::scheduling::{CreateShare, EditShare, Share, ShareRef, ShareStatus};
use chorus_bus::Outbox;
use chorus_events::share::v1 as events;
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use chorus_social::Network;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use std::sync::Arc;

pub struct Scheduling {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub public_url: String,
    pub wake_due_loop: Arc<tokio::sync::Notify>,
    /// See `SchedulingConfig::stagger_window_secs`.
    pub stagger_window: chrono::Duration,
}

static STAGGERED: std::sync::LazyLock<chorus_telemetry::metrics::IntCounterVec> =
    std::sync::LazyLock::new(|| {
        chorus_telemetry::metrics::counter_vec(
            "chorus_scheduling_staggered_shares_total",
            "Shares moved later within the stagger window because others of the same post go out near them",
            &[],
        )
    });

/// Frees the posting slot a share held (see `slots.rs`).
pub fn no_slot() -> sea_orm::sea_query::SimpleExpr {
    sea_orm::sea_query::Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None)
}

/// How far in the past a requested time may be (clock skew between client and server).
const PAST_TOLERANCE: chrono::Duration = chrono::Duration::seconds(5);
const LONGEST_HORIZON: chrono::Duration = chrono::Duration::days(366);

pub fn parse_status(status: &str) -> ShareStatus {
    match status {
        "due" => ShareStatus::Due,
        "published" => ShareStatus::Published,
        "failed" => ShareStatus::Failed,
        "needs_reconnect" => ShareStatus::NeedsReconnect,
        "unconfirmed" => ShareStatus::Unconfirmed,
        "cancelled" => ShareStatus::Cancelled,
        _ => ShareStatus::Scheduled,
    }
}

pub fn to_share(model: share::Model, public_url: &str) -> Share {
    // What it waits for only while it waits (due); an outcome ends the wait.
    let waiting = model.status == "due";
    Share {
        waiting_for: model.waiting_for.filter(|_| waiting),
        waiting_until: model.waiting_until.filter(|_| waiting),
        tracked_url: format!("{public_url}/l/{}", model.link_code),
        status: parse_status(&model.status),
        id: model.id,
        user_id: model.user_id,
        post_id: model.post_id,
        account_id: model.account_id,
        network: model.network,
        caption: model.caption,
        text: model.text,
        due_at: model.due_at,
        external_id: model.external_id,
        external_url: model.external_url,
        failure_reason: model.failure_reason,
        created_at: model.created_at,
        published_at: model.published_at,
    }
}

/// A share's time: not in the past (beyond clock skew), at most a year ahead.
fn check_time(
    due_at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> ServiceResult<()> {
    if due_at < now - PAST_TOLERANCE {
        return Err(ServiceError::invalid(format!(
            "scheduled_at {} is in the past",
            due_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )));
    }
    if due_at > now + LONGEST_HORIZON {
        return Err(ServiceError::invalid(
            "scheduled_at is more than a year ahead",
        ));
    }
    Ok(())
}

fn check_caption(caption: &str) -> ServiceResult<String> {
    let caption = caption.trim().to_string();
    if caption.is_empty() {
        return Err(ServiceError::invalid("caption must not be empty"));
    }
    Ok(caption)
}

/// A short unguessable code: 12 base62 characters (about 71 bits) from a random UUID.
pub(crate) fn new_link_code() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut value = u128::from_be_bytes(*uuid::Uuid::new_v4().as_bytes());
    let mut code = String::with_capacity(12);
    for _ in 0..12 {
        code.push(ALPHABET[(value % 62) as usize] as char);
        value /= 62;
    }
    code
}

/// The post's link with the UTM parameters of an advocate share.
pub fn with_utm(link_url: &str, network: &str, post_id: &str) -> ServiceResult<String> {
    let mut url = url::Url::parse(link_url)
        .map_err(|_| ServiceError::invalid("the post's link is not a URL"))?;
    url.query_pairs_mut()
        .append_pair("utm_source", network)
        .append_pair("utm_medium", "employee_advocacy")
        .append_pair("utm_campaign", "chorus")
        .append_pair("utm_content", post_id);
    Ok(url.to_string())
}

impl Scheduling {
    async fn find_own(&self, caller: &Caller, share_id: &str) -> ServiceResult<share::Model> {
        share::Entity::find_by_id(share_id.to_string())
            .filter(share::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(share::Column::UserId.eq(caller.user_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no share {share_id}")))
    }

    /// A share as stored after a conditional update of it.
    async fn reloaded(&self, share_id: String) -> ServiceResult<Share> {
        let model = share::Entity::find_by_id(share_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found("share vanished"))?;
        Ok(to_share(model, &self.public_url))
    }

    /// Creates a share for the caller, on the caller's own account only.
    #[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id, share_id = tracing::field::Empty))]
    pub async fn create_share(&self, caller: Caller, request: CreateShare) -> ServiceResult<Share> {
        caller.require_any(&[Role::Advocate])?;
        if let Some(existing) = self.share_of_request(&caller, &request).await? {
            tracing::info!(share_id = %existing.id, "share creation repeated with its key, the first share returned");
            return Ok(to_share(existing, &self.public_url));
        }
        let network = Network::parse(&request.network)
            .ok_or_else(|| ServiceError::invalid(format!("unknown network {}", request.network)))?;
        let now = chrono::Utc::now();
        let slot_at = match (request.next_slot, request.scheduled_at) {
            (true, Some(_)) => {
                return Err(ServiceError::invalid(
                    "give scheduled_at or next_slot, not both",
                ));
            }
            (true, None) => Some(
                self.next_free_slot(&caller, &std::collections::HashSet::new())
                    .await?,
            ),
            (false, _) => None,
        };
        let requested_for = slot_at.or(request.scheduled_at).unwrap_or(now);
        check_time(requested_for, now)?;
        let caption = check_caption(&request.caption)?;
        let due_at = self
            .staggered(&caller.tenant_id, &request.post_id, requested_for)
            .await?;
        let share_id = uuid::Uuid::now_v7().to_string();
        tracing::Span::current().record("share_id", share_id.as_str());
        let link_code = new_link_code();
        let tracked_url = format!("{}/l/{link_code}", self.public_url);
        let text = format!("{caption}\n\n{tracked_url}");
        chorus_social::captions::validate_for(network.as_str(), &text, request.image_url.is_some())
            .map_err(ServiceError::invalid)?;
        let target_url = with_utm(&request.link_url, network.as_str(), &request.post_id)?;
        let context = chorus_bus::trace::current_context_map();
        let model = share::ActiveModel {
            id: Set(share_id.clone()),
            tenant_id: Set(caller.tenant_id.clone()),
            user_id: Set(caller.user_id.clone()),
            post_id: Set(request.post_id.clone()),
            account_id: Set(request.account_id.clone()),
            network: Set(network.as_str().to_string()),
            caption: Set(caption),
            text: Set(text),
            link_code: Set(link_code.clone()),
            target_url: Set(target_url.clone()),
            image_url: Set(request.image_url.clone()),
            image_alt: Set(request.image_alt.clone()),
            status: Set("scheduled".to_string()),
            due_at: Set(due_at),
            traceparent: Set(context.get("traceparent").cloned()),
            tracestate: Set(context
                .get("tracestate")
                .cloned()
                .filter(|state| !state.is_empty())),
            external_id: Set(None),
            external_url: Set(None),
            failure_reason: Set(None),
            created_at: Set(now),
            published_at: Set(None),
            updated_at: Set(now),
            slot_at: Set(slot_at),
            request_key: Set(request.request_key.clone()),
            waiting_for: Set(None),
            waiting_until: Set(None),
        };
        let requested = events::ShareRequested {
            tenant_id: caller.tenant_id.clone(),
            share_id: share_id.clone(),
            user_id: caller.user_id.clone(),
            post_id: request.post_id.clone(),
            account_id: request.account_id.clone(),
            network: network.as_str().to_string(),
            requested_for: Some(chorus_events::to_timestamp(requested_for)),
        };
        let scheduled = events::ShareScheduled {
            tenant_id: caller.tenant_id.clone(),
            share_id: share_id.clone(),
            user_id: caller.user_id.clone(),
            post_id: request.post_id.clone(),
            account_id: request.account_id.clone(),
            network: network.as_str().to_string(),
            due_at: Some(chorus_events::to_timestamp(due_at)),
            link_code,
            target_url,
        };
        let txn = self.db.begin().await?;
        let inserted = share::Entity::insert(model).exec_with_returning(&txn).await;
        let model = match inserted {
            Ok(model) => model,
            Err(error) => {
                let unique = matches!(
                    error.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                );
                drop(txn);
                // The same request, retried while the first was being written.
                if unique && let Some(existing) = self.share_of_request(&caller, &request).await? {
                    return Ok(to_share(existing, &self.public_url));
                }
                // Another share of the advocate took the same slot a moment before.
                if unique && slot_at.is_some() {
                    return Err(ServiceError::conflict(
                        "that slot was taken meanwhile: ask again",
                    ));
                }
                return Err(ServiceError::from(error));
            }
        };
        self.outbox.enqueue(&txn, &requested).await?;
        self.outbox.enqueue(&txn, &scheduled).await?;
        txn.commit().await?;
        self.outbox.wake();
        self.wake_due_loop.notify_one();
        tracing::info!(network = %network, due_at = %due_at, "share scheduled");
        Ok(to_share(model, &self.public_url))
    }

    /// The share an earlier request with the same key created, if any.
    async fn share_of_request(
        &self,
        caller: &Caller,
        request: &CreateShare,
    ) -> ServiceResult<Option<share::Model>> {
        let Some(key) = &request.request_key else {
            return Ok(None);
        };
        Ok(share::Entity::find()
            .filter(share::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(share::Column::UserId.eq(caller.user_id.clone()))
            .filter(share::Column::RequestKey.eq(key.clone()))
            .one(&self.db)
            .await?)
    }

    /// When a share asked for `requested` goes out: then, unless other shares of the post go
    /// out within the stagger window of it, in which case at a random moment of the window
    /// after it (the first share of a post is never delayed).
    async fn staggered(
        &self,
        tenant_id: &str,
        post_id: &str,
        requested: chrono::DateTime<chrono::Utc>,
    ) -> ServiceResult<chrono::DateTime<chrono::Utc>> {
        if self.stagger_window <= chrono::Duration::zero() {
            return Ok(requested);
        }
        let neighbours = share::Entity::find()
            .filter(share::Column::TenantId.eq(tenant_id))
            .filter(share::Column::PostId.eq(post_id))
            .filter(share::Column::Status.is_in(["scheduled", "due", "published"]))
            .filter(share::Column::DueAt.gt(requested - self.stagger_window))
            .filter(share::Column::DueAt.lt(requested + self.stagger_window))
            .count(&self.db)
            .await?;
        if neighbours == 0 {
            return Ok(requested);
        }
        let window_ms = self.stagger_window.num_milliseconds().max(1) as u64;
        let offset = fastrand::u64(0..window_ms);
        STAGGERED.with_label_values(&[] as &[&str]).inc();
        Ok(requested + chrono::Duration::milliseconds(offset as i64))
    }

    pub async fn get_share(&self, caller: Caller, request: ShareRef) -> ServiceResult<Share> {
        let model = self.find_own(&caller, &request.share_id).await?;
        Ok(to_share(model, &self.public_url))
    }

    /// The caller's shares, newest first.
    pub async fn list_shares(
        &self,
        caller: Caller,
        request: FeedQuery,
    ) -> ServiceResult<Page<Share>> {
        let limit = request.limit.unwrap_or(20).clamp(1, 100) as u64;
        let mut query = share::Entity::find()
            .filter(share::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(share::Column::UserId.eq(caller.user_id.clone()));
        if let Some(cursor) = &request.cursor {
            query = query.filter(share::Column::Id.lt(cursor.clone()));
        }
        let mut rows = query
            .order_by_desc(share::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|last| last.id.clone())
        } else {
            None
        };
        Ok(Page {
            items: rows
                .into_iter()
                .map(|row| to_share(row, &self.public_url))
                .collect(),
            next_cursor,
        })
    }

    /// Changes the caption or the time of the caller's share while it is not yet due. A new
    /// time is announced as `share.scheduled` again (with the same tracked link).
    #[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id, share_id = %request.share_id))]
    pub async fn edit_share(&self, caller: Caller, request: EditShare) -> ServiceResult<Share> {
        caller.require_any(&[Role::Advocate])?;
        if request.caption.is_none() && request.scheduled_at.is_none() {
            return Err(ServiceError::invalid(
                "give a new caption, a new scheduled_at, or both",
            ));
        }
        let model = self.find_own(&caller, &request.share_id).await?;
        if model.status != "scheduled" {
            return Err(too_late(&model, "edited"));
        }
        let now = chrono::Utc::now();
        let mut update = share::Entity::update_many()
            .col_expr(
                share::Column::UpdatedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(share::Column::Id.eq(model.id.clone()))
            .filter(share::Column::Status.eq("scheduled"));
        if let Some(caption) = &request.caption {
            let caption = check_caption(caption)?;
            let tracked_url = format!("{}/l/{}", self.public_url, model.link_code);
            let text = format!("{caption}\n\n{tracked_url}");
            chorus_social::captions::validate_for(&model.network, &text, model.image_url.is_some())
                .map_err(ServiceError::invalid)?;
            update = update
                .col_expr(
                    share::Column::Caption,
                    sea_orm::sea_query::Expr::value(caption),
                )
                .col_expr(share::Column::Text, sea_orm::sea_query::Expr::value(text));
        }
        let rescheduled = match request.scheduled_at {
            Some(due_at) => {
                check_time(due_at, now)?;
                // A time of its own frees the slot the share held.
                update = update
                    .col_expr(
                        share::Column::DueAt,
                        sea_orm::sea_query::Expr::value(due_at),
                    )
                    .col_expr(share::Column::SlotAt, no_slot());
                Some(events::ShareScheduled {
                    tenant_id: caller.tenant_id.clone(),
                    share_id: model.id.clone(),
                    user_id: caller.user_id.clone(),
                    post_id: model.post_id.clone(),
                    account_id: model.account_id.clone(),
                    network: model.network.clone(),
                    due_at: Some(chorus_events::to_timestamp(due_at)),
                    link_code: model.link_code.clone(),
                    target_url: model.target_url.clone(),
                })
            }
            None => None,
        };
        let txn = self.db.begin().await?;
        let result = update.exec(&txn).await?;
        if result.rows_affected == 0 {
            return Err(ServiceError::conflict(
                "the share became due while it was being edited",
            ));
        }
        if let Some(event) = &rescheduled {
            self.outbox.enqueue(&txn, event).await?;
        }
        txn.commit().await?;
        if rescheduled.is_some() {
            self.outbox.wake();
            self.wake_due_loop.notify_one();
        }
        tracing::info!(
            caption = request.caption.is_some(),
            rescheduled = rescheduled.is_some(),
            "share edited"
        );
        self.reloaded(model.id).await
    }

    /// Cancels a share that is not yet due.
    pub async fn cancel_share(&self, caller: Caller, request: ShareRef) -> ServiceResult<Share> {
        let model = self.find_own(&caller, &request.share_id).await?;
        if model.status != "scheduled" {
            return Err(too_late(&model, "cancelled"));
        }
        let event = events::ShareCancelled {
            tenant_id: caller.tenant_id.clone(),
            share_id: model.id.clone(),
            user_id: caller.user_id.clone(),
            reason: "cancelled by the advocate".to_string(),
        };
        let txn = self.db.begin().await?;
        let result = share::Entity::update_many()
            .col_expr(
                share::Column::Status,
                sea_orm::sea_query::Expr::value("cancelled"),
            )
            .col_expr(share::Column::SlotAt, no_slot())
            .col_expr(
                share::Column::UpdatedAt,
                sea_orm::sea_query::Expr::value(chrono::Utc::now()),
            )
            .filter(share::Column::Id.eq(model.id.clone()))
            .filter(share::Column::Status.eq("scheduled"))
            .exec(&txn)
            .await?;
        if result.rows_affected == 0 {
            return Err(ServiceError::conflict(
                "the share became due while it was being cancelled",
            ));
        }
        self.outbox.enqueue(&txn, &event).await?;
        txn.commit().await?;
        self.outbox.wake();
        self.reloaded(model.id).await
    }
}

/// Why a share that is no longer `scheduled` cannot be `done` (edited, cancelled).
fn too_late(model: &share::Model, done: &str) -> ServiceError {
    if model.status == "due"
        && let Some(waiting_for) = &model.waiting_for
    {
        let until = model
            .waiting_until
            .map(|until| {
                format!(
                    " until about {}",
                    until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )
            })
            .unwrap_or_default();
        return ServiceError::conflict(format!(
            "the share can no longer be {done}: the publisher has it and it waits for {waiting_for}{until}"
        ));
    }
    if model.status == "due" {
        return ServiceError::conflict(format!(
            "the share can no longer be {done}: it was handed to the publisher shortly before its time and goes out at {}",
            model
                .due_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    ServiceError::conflict(format!("a {} share can no longer be {done}", model.status))
}
