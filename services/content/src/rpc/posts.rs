//! Posts: create, update (with optimistic concurrency), read, list, and lifecycle moves.

use super::{CURATORS, ContentService, effective_status, encode_roles, record_audit};
use crate::domain::lifecycle::{self, Action};
use crate::domain::{compliance, encode_list, validate};
use crate::entities::{post, variant};
use chorus_api::Page;
use chorus_api::content::{
    ListQuery, MediaKind, Post, PostInput, PostRef, PostStatus, Transition, UpdatePost,
};
use chorus_events::content::v1 as events;
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};

/// Fills every field derived from the input.
fn apply(
    row: &mut post::ActiveModel,
    input: &PostInput,
    title: &str,
    topics: &[String],
    language: &str,
) {
    let mut search = format!("{} {}", title, input.commentary).to_lowercase();
    for variant in &input.variants {
        search.push(' ');
        search.push_str(&format!("{} {}", variant.title, variant.commentary).to_lowercase());
    }
    row.title = Set(title.to_string());
    row.commentary = Set(input.commentary.clone());
    row.link_url = Set(input.link_url.clone());
    row.topics = Set(encode_list(topics));
    row.content_type = Set(input.content_type.as_str().to_string());
    row.language = Set(language.to_string());
    row.media = Set(serde_json::to_string(&input.media).unwrap_or_else(|_| "[]".into()));
    row.captions = Set(serde_json::to_string(&input.captions).unwrap_or_else(|_| "[]".into()));
    row.has_image = Set(input.media.iter().any(|item| item.kind == MediaKind::Image));
    row.read_only = Set(input.read_only);
    row.available_from = Set(input.available_from);
    row.available_until = Set(input.available_until);
    row.target_departments = Set(encode_list(
        input
            .targeting
            .departments
            .iter()
            .map(|d| d.trim().to_lowercase()),
    ));
    row.target_locations = Set(encode_list(
        input
            .targeting
            .locations
            .iter()
            .map(|l| l.trim().to_lowercase()),
    ));
    row.target_roles = Set(encode_roles(&input.targeting.roles));
    row.target_languages = Set(encode_list(
        input.targeting.languages.iter().map(|l| l.to_lowercase()),
    ));
    row.search_text = Set(search);
}

async fn replace_variants<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    post_id: &str,
    input: &PostInput,
) -> Result<(), DbErr> {
    variant::Entity::delete_many()
        .filter(variant::Column::PostId.eq(post_id))
        .exec(conn)
        .await?;
    for item in &input.variants {
        let row = variant::ActiveModel {
            post_id: Set(post_id.to_string()),
            language: Set(item.language.to_lowercase()),
            tenant_id: Set(tenant_id.to_string()),
            title: Set(item.title.trim().to_string()),
            commentary: Set(item.commentary.clone()),
            captions: Set(serde_json::to_string(&item.captions).unwrap_or_else(|_| "[]".into())),
        };
        variant::Entity::insert(row)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

impl ContentService {
    /// Validates the input and the tenant's banned terms.
    async fn check(
        &self,
        caller: &Caller,
        input: &PostInput,
    ) -> ServiceResult<(String, Vec<String>, String)> {
        let normalized = validate::post(input)?;
        let rules = self.rules(&caller.tenant_id).await?;
        let violations = compliance::banned_terms(&rules, &compliance::post_fields(input));
        if !violations.is_empty() {
            let messages: Vec<String> = violations
                .iter()
                .map(|violation| violation.message.clone())
                .collect();
            return Err(ServiceError::invalid(format!(
                "compliance: {}",
                messages.join("; ")
            )));
        }
        Ok(normalized)
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id))]
    pub async fn create_post(&self, caller: Caller, input: PostInput) -> ServiceResult<Post> {
        caller.require_any(CURATORS)?;
        let (title, topics, language) = self.check(&caller, &input).await?;
        self.insert_post(&caller, &input, &title, &topics, &language, None)
            .await
    }

    pub(super) async fn insert_post(
        &self,
        caller: &Caller,
        input: &PostInput,
        title: &str,
        topics: &[String],
        language: &str,
        submitted_by: Option<String>,
    ) -> ServiceResult<Post> {
        let now = chrono::Utc::now();
        let post_id = uuid::Uuid::now_v7().to_string();
        let mut row = post::ActiveModel {
            id: Set(post_id.clone()),
            tenant_id: Set(caller.tenant_id.clone()),
            status: Set(PostStatus::Draft.as_str().to_string()),
            created_by: Set(caller.user_id.clone()),
            submitted_by: Set(submitted_by),
            created_at: Set(now),
            updated_at: Set(now),
            published_at: Set(None),
            version: Set(1),
            ..Default::default()
        };
        apply(&mut row, input, title, topics, language);
        let txn = self.db.begin().await?;
        let model = post::Entity::insert(row).exec_with_returning(&txn).await?;
        replace_variants(&txn, &caller.tenant_id, &post_id, input).await?;
        record_audit(&txn, caller, "post.create", &post_id, title).await?;
        txn.commit().await?;
        tracing::info!(post_id = %post_id, "post created");
        self.to_post(model).await
    }

    /// Replaces a post's content; fails with a conflict when `expected_version` is stale.
    #[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id, post_id = %request.post_id))]
    pub async fn update_post(&self, caller: Caller, request: UpdatePost) -> ServiceResult<Post> {
        caller.require_any(CURATORS)?;
        let existing = self.find_post(&caller, &request.post_id).await?;
        if let Some(expected) = request.expected_version
            && expected != existing.version
        {
            return Err(ServiceError::new(
                chorus_kit::ErrorCode::Conflict,
                format!(
                    "the post changed since version {expected} (now {}); reload it",
                    existing.version
                ),
            ));
        }
        if existing.status == PostStatus::Archived.as_str() {
            return Err(ServiceError::conflict("an archived post cannot be edited"));
        }
        let (title, topics, language) = self.check(&caller, &request.post).await?;
        let was_published = existing.status == PostStatus::Published.as_str();
        let version = existing.version;
        let mut row: post::ActiveModel = existing.into();
        apply(&mut row, &request.post, &title, &topics, &language);
        row.updated_at = Set(chrono::Utc::now());
        row.version = Set(version + 1);
        let txn = self.db.begin().await?;
        // The version check and the write are one statement: concurrent editors cannot both win.
        let changed = post::Entity::update_many()
            .set(row)
            .filter(post::Column::Id.eq(request.post_id.clone()))
            .filter(post::Column::Version.eq(version))
            .exec(&txn)
            .await?;
        if changed.rows_affected == 0 {
            return Err(ServiceError::conflict(
                "the post changed meanwhile; reload it",
            ));
        }
        let updated = post::Entity::find_by_id(request.post_id.clone())
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::not_found("post vanished"))?;
        replace_variants(&txn, &caller.tenant_id, &request.post_id, &request.post).await?;
        if was_published {
            let event = events::PostUpdated {
                tenant_id: caller.tenant_id.clone(),
                post_id: updated.id.clone(),
                title: updated.title.clone(),
                link_url: updated.link_url.clone(),
                topics: topics.clone(),
                updated_by: caller.user_id.clone(),
            };
            self.outbox.enqueue(&txn, &event).await?;
        }
        record_audit(
            &txn,
            &caller,
            "post.update",
            &updated.id,
            format!("version {}", updated.version),
        )
        .await?;
        txn.commit().await?;
        self.outbox.wake();
        self.to_post(updated).await
    }

    pub async fn get_post(&self, caller: Caller, request: PostRef) -> ServiceResult<Post> {
        let model = self.find_post(&caller, &request.post_id).await?;
        let is_staff = CURATORS
            .iter()
            .chain(&[Role::Approver])
            .any(|role| caller.has(*role));
        let visible = effective_status(&model, chrono::Utc::now()) == PostStatus::Published
            && model
                .available_from
                .is_none_or(|from| from <= chrono::Utc::now());
        if !visible && !is_staff {
            return Err(ServiceError::not_found(format!(
                "no post {}",
                request.post_id
            )));
        }
        self.to_post(model).await
    }

    /// Every post of the tenant for curators and approvers, newest first.
    pub async fn list_posts(&self, caller: Caller, query: ListQuery) -> ServiceResult<Page<Post>> {
        caller.require_any(&[Role::Curator, Role::Admin, Role::Approver])?;
        let limit = query.limit.unwrap_or(20).clamp(1, 100) as u64;
        let mut select =
            post::Entity::find().filter(post::Column::TenantId.eq(caller.tenant_id.clone()));
        if let Some(status) = &query.status {
            let status = PostStatus::parse(status)
                .ok_or_else(|| ServiceError::invalid(format!("unknown status {status}")))?;
            select = select.filter(post::Column::Status.eq(status.as_str()));
        }
        if let Some(cursor) = &query.cursor {
            select = select.filter(post::Column::Id.lt(cursor.clone()));
        }
        let mut rows = select
            .order_by_desc(post::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|row| row.id.clone())
        } else {
            None
        };
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            items.push(self.to_post(row).await?);
        }
        Ok(Page { items, next_cursor })
    }

    pub async fn submit_for_review(
        &self,
        caller: Caller,
        request: Transition,
    ) -> ServiceResult<Post> {
        self.transition(caller, request, Action::SubmitForReview)
            .await
    }

    pub async fn approve(&self, caller: Caller, request: Transition) -> ServiceResult<Post> {
        self.transition(caller, request, Action::Approve).await
    }

    pub async fn request_changes(
        &self,
        caller: Caller,
        request: Transition,
    ) -> ServiceResult<Post> {
        if request
            .reason
            .as_deref()
            .is_none_or(|reason| reason.trim().is_empty())
        {
            return Err(ServiceError::invalid("say what should change (reason)"));
        }
        self.transition(caller, request, Action::RequestChanges)
            .await
    }

    pub async fn publish_post(&self, caller: Caller, request: Transition) -> ServiceResult<Post> {
        self.transition(caller, request, Action::Publish).await
    }

    pub async fn archive_post(&self, caller: Caller, request: Transition) -> ServiceResult<Post> {
        self.transition(caller, request, Action::Archive).await
    }

    /// Moves a post in its lifecycle; the move, its events and its audit entry are one transaction.
    #[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id, post_id = %request.post_id, action = action.name()))]
    async fn transition(
        &self,
        caller: Caller,
        request: Transition,
        action: Action,
    ) -> ServiceResult<Post> {
        let existing = self.find_post(&caller, &request.post_id).await?;
        let now = chrono::Utc::now();
        let current = effective_status(&existing, now);
        let topics = crate::domain::decode_list(&existing.topics);
        let needs_approval =
            compliance::needs_approval(&self.rules(&caller.tenant_id).await?, &topics);
        let next = lifecycle::next(
            &caller,
            current,
            action,
            &existing.created_by,
            needs_approval,
        )?;
        let reason = request.reason.clone().unwrap_or_default();
        let mut row: post::ActiveModel = existing.clone().into();
        row.status = Set(next.as_str().to_string());
        row.updated_at = Set(now);
        row.version = Set(existing.version + 1);
        if next == PostStatus::Published {
            row.published_at = Set(Some(now));
        }
        let txn = self.db.begin().await?;
        let updated = row.update(&txn).await?;
        let transitioned = events::PostTransitioned {
            tenant_id: caller.tenant_id.clone(),
            post_id: updated.id.clone(),
            from_status: current.as_str().to_string(),
            to_status: next.as_str().to_string(),
            actor: caller.user_id.clone(),
            reason: reason.clone(),
            at: Some(chorus_events::to_timestamp(now)),
        };
        self.outbox.enqueue(&txn, &transitioned).await?;
        match next {
            PostStatus::Published => {
                let published = events::PostPublished {
                    tenant_id: caller.tenant_id.clone(),
                    post_id: updated.id.clone(),
                    title: updated.title.clone(),
                    link_url: updated.link_url.clone(),
                    topics: topics.clone(),
                    content_type: updated.content_type.clone(),
                    language: updated.language.clone(),
                    available_from: Some(chorus_events::to_timestamp(
                        updated.available_from.unwrap_or(now),
                    )),
                    available_until: updated.available_until.map(chorus_events::to_timestamp),
                    published_by: caller.user_id.clone(),
                };
                self.outbox.enqueue(&txn, &published).await?;
            }
            PostStatus::Archived => {
                let archived = events::PostArchived {
                    tenant_id: caller.tenant_id.clone(),
                    post_id: updated.id.clone(),
                    archived_by: caller.user_id.clone(),
                    reason: reason.clone(),
                };
                self.outbox.enqueue(&txn, &archived).await?;
            }
            _ => {}
        }
        let detail = if reason.is_empty() {
            format!("{} -> {}", current.as_str(), next.as_str())
        } else {
            format!("{} -> {}: {reason}", current.as_str(), next.as_str())
        };
        record_audit(
            &txn,
            &caller,
            &format!("post.{}", action.name()),
            &updated.id,
            detail,
        )
        .await?;
        txn.commit().await?;
        self.outbox.wake();
        tracing::info!(from = current.as_str(), to = next.as_str(), "post moved");
        self.to_post(updated).await
    }

    /// Marks published posts past `available_until` as expired, with their events.
    pub async fn expire_due(&self) -> Result<usize, DbErr> {
        let now = chrono::Utc::now();
        let due = post::Entity::find()
            .filter(post::Column::Status.eq(PostStatus::Published.as_str()))
            .filter(post::Column::AvailableUntil.lte(now))
            .limit(200)
            .all(&self.db)
            .await?;
        for existing in &due {
            let txn = self.db.begin().await?;
            let result = post::Entity::update_many()
                .col_expr(
                    post::Column::Status,
                    sea_orm::sea_query::Expr::value(PostStatus::Expired.as_str()),
                )
                .col_expr(
                    post::Column::Version,
                    sea_orm::sea_query::Expr::value(existing.version + 1),
                )
                .filter(post::Column::Id.eq(existing.id.clone()))
                .filter(post::Column::Status.eq(PostStatus::Published.as_str()))
                .exec(&txn)
                .await?;
            if result.rows_affected == 0 {
                txn.rollback().await?;
                continue;
            }
            let expired = events::PostExpired {
                tenant_id: existing.tenant_id.clone(),
                post_id: existing.id.clone(),
                expired_at: Some(chorus_events::to_timestamp(now)),
            };
            self.outbox
                .enqueue_with_id(&txn, &expired, format!("post-expired-{}", existing.id))
                .await?;
            let transitioned = events::PostTransitioned {
                tenant_id: existing.tenant_id.clone(),
                post_id: existing.id.clone(),
                from_status: PostStatus::Published.as_str().into(),
                to_status: PostStatus::Expired.as_str().into(),
                actor: "system".into(),
                reason: "available_until reached".into(),
                at: Some(chorus_events::to_timestamp(now)),
            };
            self.outbox.enqueue(&txn, &transitioned).await?;
            record_audit(
                &txn,
                &Caller::system(&existing.tenant_id),
                "post.expire",
                &existing.id,
                "published -> expired",
            )
            .await?;
            txn.commit().await?;
        }
        if !due.is_empty() {
            self.outbox.wake();
        }
        Ok(due.len())
    }
}
