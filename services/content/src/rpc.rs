use crate::entities::post;
use chorus_api::Page;
use chorus_api::content::{ContentType, CreatePost, FeedQuery, Post, PostRef, PostStatus};
use chorus_bus::Outbox;
use chorus_events::content::v1 as events;
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use sea_orm::sea_query::Condition;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};

pub struct ContentService {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
}

const CURATORS: &[Role] = &[Role::Curator, Role::Admin];

fn content_type_name(content_type: ContentType) -> String {
    serde_json::to_value(content_type)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn parse_content_type(name: &str) -> ContentType {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .unwrap_or(ContentType::Brand)
}

fn parse_status(name: &str) -> PostStatus {
    match name {
        "published" => PostStatus::Published,
        "archived" => PostStatus::Archived,
        _ => PostStatus::Draft,
    }
}

fn to_post(model: post::Model) -> Post {
    Post {
        topics: model
            .topics
            .split(',')
            .filter(|topic| !topic.is_empty())
            .map(str::to_string)
            .collect(),
        content_type: parse_content_type(&model.content_type),
        status: parse_status(&model.status),
        id: model.id,
        title: model.title,
        commentary: model.commentary,
        link_url: model.link_url,
        language: model.language,
        created_by: model.created_by,
        created_at: model.created_at,
        published_at: model.published_at,
    }
}

/// Checks a post's fields; returns the normalised topics.
fn validate(request: &CreatePost) -> ServiceResult<Vec<String>> {
    let title_length = request.title.trim().chars().count();
    if title_length == 0 || title_length > 300 {
        return Err(ServiceError::invalid("title must be 1 to 300 characters"));
    }
    if request.commentary.chars().count() > 3_000 {
        return Err(ServiceError::invalid(
            "commentary must be at most 3000 characters",
        ));
    }
    match url::Url::parse(&request.link_url) {
        Ok(link) if matches!(link.scheme(), "http" | "https") && link.host().is_some() => {}
        _ => return Err(ServiceError::invalid("link_url must be an http(s) URL")),
    }
    if request.language.is_empty() || request.language.len() > 35 {
        return Err(ServiceError::invalid(
            "language must be a language tag such as en or fr-CA",
        ));
    }
    let mut topics = Vec::new();
    for topic in &request.topics {
        let topic = topic.trim().to_lowercase();
        if topic.is_empty() || topic.len() > 50 || topic.contains(',') {
            return Err(ServiceError::invalid(format!(
                "topic {topic:?} must be 1 to 50 characters without commas"
            )));
        }
        if !topics.contains(&topic) {
            topics.push(topic);
        }
    }
    Ok(topics)
}

impl ContentService {
    async fn find(&self, caller: &Caller, post_id: &str) -> ServiceResult<post::Model> {
        post::Entity::find_by_id(post_id.to_string())
            .filter(post::Column::TenantId.eq(caller.tenant_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no post {post_id}")))
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id))]
    pub async fn create_post(&self, caller: Caller, request: CreatePost) -> ServiceResult<Post> {
        caller.require_any(CURATORS)?;
        let topics = validate(&request)?;
        let model = post::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            tenant_id: Set(caller.tenant_id.clone()),
            title: Set(request.title.trim().to_string()),
            commentary: Set(request.commentary.clone()),
            link_url: Set(request.link_url.clone()),
            topics: Set(topics.join(",")),
            content_type: Set(content_type_name(request.content_type)),
            language: Set(request.language.clone()),
            status: Set("draft".to_string()),
            created_by: Set(caller.user_id.clone()),
            created_at: Set(chrono::Utc::now()),
            published_at: Set(None),
        };
        let model = post::Entity::insert(model)
            .exec_with_returning(&self.db)
            .await?;
        tracing::info!(post_id = %model.id, "post created");
        Ok(to_post(model))
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id, post_id = %request.post_id))]
    pub async fn publish_post(&self, caller: Caller, request: PostRef) -> ServiceResult<Post> {
        caller.require_any(CURATORS)?;
        let existing = self.find(&caller, &request.post_id).await?;
        match existing.status.as_str() {
            "draft" => {}
            "published" => return Ok(to_post(existing)),
            other => {
                return Err(ServiceError::conflict(format!(
                    "a {other} post cannot be published"
                )));
            }
        }
        let now = chrono::Utc::now();
        let event = events::PostPublished {
            tenant_id: caller.tenant_id.clone(),
            post_id: existing.id.clone(),
            title: existing.title.clone(),
            link_url: existing.link_url.clone(),
            topics: existing
                .topics
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            content_type: existing.content_type.clone(),
            language: existing.language.clone(),
            available_from: Some(chorus_events::to_timestamp(now)),
            available_until: None,
            published_by: caller.user_id.clone(),
        };
        let mut active: post::ActiveModel = existing.into();
        active.status = Set("published".to_string());
        active.published_at = Set(Some(now));
        let txn = self.db.begin().await?;
        let updated = active.update(&txn).await?;
        self.outbox.enqueue(&txn, &event).await?;
        txn.commit().await?;
        self.outbox.wake();
        tracing::info!("post published");
        Ok(to_post(updated))
    }

    pub async fn get_post(&self, caller: Caller, request: PostRef) -> ServiceResult<Post> {
        let model = self.find(&caller, &request.post_id).await?;
        let is_curator = CURATORS.iter().any(|role| caller.has(*role));
        if model.status != "published" && !is_curator {
            return Err(ServiceError::not_found(format!(
                "no post {}",
                request.post_id
            )));
        }
        Ok(to_post(model))
    }

    /// Published posts, newest first, with a cursor on (published_at, id).
    pub async fn feed(&self, caller: Caller, request: FeedQuery) -> ServiceResult<Page<Post>> {
        let limit = request.limit.unwrap_or(20).clamp(1, 100) as u64;
        let mut query = post::Entity::find()
            .filter(post::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(post::Column::Status.eq("published"));
        if let Some(cursor) = &request.cursor {
            let (published_at, id) = decode_cursor(cursor)?;
            query = query.filter(
                Condition::any()
                    .add(post::Column::PublishedAt.lt(published_at))
                    .add(
                        Condition::all()
                            .add(post::Column::PublishedAt.eq(published_at))
                            .add(post::Column::Id.lt(id)),
                    ),
            );
        }
        let mut rows = query
            .order_by_desc(post::Column::PublishedAt)
            .order_by_desc(post::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last()
                .and_then(|last| last.published_at.map(|at| encode_cursor(at, &last.id)))
        } else {
            None
        };
        Ok(Page {
            items: rows.into_iter().map(to_post).collect(),
            next_cursor,
        })
    }
}

fn encode_cursor(published_at: chrono::DateTime<chrono::Utc>, id: &str) -> String {
    format!("{}_{id}", published_at.timestamp_micros())
}

fn decode_cursor(cursor: &str) -> ServiceResult<(chrono::DateTime<chrono::Utc>, String)> {
    let invalid = || ServiceError::invalid("cursor is not one this API returned");
    let (micros, id) = cursor.split_once('_').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let at = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
    Ok((at, id.to_string()))
}
