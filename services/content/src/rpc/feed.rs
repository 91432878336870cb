//! The advocate's feed: published, available, targeted at them, in their language. What
//! they have not shared comes before what they have; within each, posts in topics they
//! follow first, then the freshest.

use super::{ContentService, parse_json};
use crate::domain::decode_list;
use crate::entities::{follow, member, post, post_share, variant};
use chorus_api::Page;
use chorus_api::content::{
    ContentPreferences, ContentType, FeedItem, FeedQuery, PostStatus, TopicRef, Topics,
};
use chorus_kit::{Caller, ServiceError, ServiceResult};
use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use std::collections::HashMap;

/// Matches posts whose list column is empty (everyone) or contains one of `values`.
fn targeted(column: post::Column, values: &[String]) -> Condition {
    let mut condition = Condition::any().add(column.eq(""));
    for value in values.iter().filter(|value| !value.is_empty()) {
        condition = condition.add(column.like(format!("%,{value},%")));
    }
    condition
}

/// Search words without LIKE wildcards.
fn search_words(query: &str) -> Vec<String> {
    query
        .to_lowercase()
        .split(|c: char| c.is_whitespace() || c == '%' || c == '_')
        .filter(|word| !word.is_empty())
        .take(8)
        .map(str::to_string)
        .collect()
}

/// Where a page ends: the segment (0 followed and unshared, 1 other unshared, 2 shared) and
/// the last post's (published_at, id); `snapshot` keeps later posts out of a paging session.
struct Cursor {
    segment: u8,
    after: Option<(chrono::DateTime<chrono::Utc>, String)>,
    snapshot: chrono::DateTime<chrono::Utc>,
}

fn encode_cursor(cursor: &Cursor) -> String {
    let (at, id) = cursor
        .after
        .clone()
        .unwrap_or((cursor.snapshot, String::new()));
    format!(
        "{}.{}.{}.{}",
        cursor.segment,
        at.timestamp_micros(),
        cursor.snapshot.timestamp_micros(),
        id
    )
}

fn decode_cursor(text: &str) -> ServiceResult<Cursor> {
    let invalid = || ServiceError::invalid("cursor is not one this API returned");
    let mut parts = text.splitn(4, '.');
    let segment: u8 = parts
        .next()
        .and_then(|part| part.parse().ok())
        .filter(|segment| *segment <= 2)
        .ok_or_else(invalid)?;
    let at = parts
        .next()
        .and_then(|part| part.parse::<i64>().ok())
        .and_then(chrono::DateTime::from_timestamp_micros)
        .ok_or_else(invalid)?;
    let snapshot = parts
        .next()
        .and_then(|part| part.parse::<i64>().ok())
        .and_then(chrono::DateTime::from_timestamp_micros)
        .ok_or_else(invalid)?;
    let id = parts.next().ok_or_else(invalid)?.to_string();
    if id.is_empty() {
        return Err(invalid());
    }
    Ok(Cursor {
        segment,
        after: Some((at, id)),
        snapshot,
    })
}

impl ContentService {
    #[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id))]
    pub async fn feed(&self, caller: Caller, query: FeedQuery) -> ServiceResult<Page<FeedItem>> {
        let limit = query.limit.unwrap_or(20).clamp(1, 100) as u64;
        let cursor = match &query.cursor {
            Some(text) => decode_cursor(text)?,
            None => Cursor {
                segment: 0,
                after: None,
                snapshot: chrono::Utc::now(),
            },
        };
        let member = self.member(&caller).await?;
        let follows: Vec<String> = follow::Entity::find()
            .filter(follow::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(follow::Column::UserId.eq(caller.user_id.clone()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| row.topic)
            .collect();
        let now = cursor.snapshot;
        let roles = decode_list(&member.roles);
        let base = || {
            let mut select = post::Entity::find()
                .filter(post::Column::TenantId.eq(caller.tenant_id.clone()))
                .filter(post::Column::Status.eq(PostStatus::Published.as_str()))
                .filter(post::Column::PublishedAt.lte(now))
                .filter(
                    Condition::any()
                        .add(post::Column::AvailableFrom.is_null())
                        .add(post::Column::AvailableFrom.lte(now)),
                )
                .filter(
                    Condition::any()
                        .add(post::Column::AvailableUntil.is_null())
                        .add(post::Column::AvailableUntil.gt(now)),
                )
                .filter(targeted(
                    post::Column::TargetDepartments,
                    std::slice::from_ref(&member.department),
                ))
                .filter(targeted(
                    post::Column::TargetLocations,
                    std::slice::from_ref(&member.location),
                ))
                .filter(targeted(
                    post::Column::TargetLanguages,
                    std::slice::from_ref(&member.language),
                ))
                .filter(targeted(post::Column::TargetRoles, &roles));
            if let Some(words) = query.q.as_deref().map(search_words) {
                for word in words {
                    select = select.filter(post::Column::SearchText.like(format!("%{word}%")));
                }
            }
            if let Some(topic) = &query.topic {
                select = select.filter(
                    post::Column::Topics.like(format!("%,{},%", topic.trim().to_lowercase())),
                );
            }
            select
        };
        // The caller's shares are few: their ids, not a subquery per post.
        let shared_ids: Vec<String> = post_share::Entity::find()
            .filter(post_share::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(post_share::Column::UserId.eq(caller.user_id.clone()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| row.post_id)
            .collect();
        let followed = || {
            let mut condition = Condition::any();
            for topic in &follows {
                condition = condition.add(post::Column::Topics.like(format!("%,{topic},%")));
            }
            condition
        };
        // Segments in feed order; each is read along the (tenant, status, published_at, id)
        // index, newest first, so a page costs a few rows, not a sort of the whole library.
        let mut rows: Vec<(u8, post::Model)> = Vec::new();
        for segment in cursor.segment..=2 {
            let wanted = limit + 1 - rows.len() as u64;
            if wanted == 0 {
                break;
            }
            let mut select = match segment {
                0 if follows.is_empty() => continue,
                0 => base()
                    .filter(followed())
                    .filter(post::Column::Id.is_not_in(shared_ids.clone())),
                1 if follows.is_empty() => {
                    base().filter(post::Column::Id.is_not_in(shared_ids.clone()))
                }
                1 => base()
                    .filter(followed().not())
                    .filter(post::Column::Id.is_not_in(shared_ids.clone())),
                _ if shared_ids.is_empty() => continue,
                _ => base().filter(post::Column::Id.is_in(shared_ids.clone())),
            };
            if segment == cursor.segment
                && let Some((at, id)) = &cursor.after
            {
                select = select.filter(
                    Condition::any().add(post::Column::PublishedAt.lt(*at)).add(
                        Condition::all()
                            .add(post::Column::PublishedAt.eq(*at))
                            .add(post::Column::Id.lt(id.clone())),
                    ),
                );
            }
            let found = select
                .order_by_desc(post::Column::PublishedAt)
                .order_by_desc(post::Column::Id)
                .limit(wanted)
                .all(&self.db)
                .await?;
            rows.extend(found.into_iter().map(|row| (segment, row)));
        }
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|(segment, last)| {
                encode_cursor(&Cursor {
                    segment: *segment,
                    after: Some((
                        last.published_at.unwrap_or(last.created_at),
                        last.id.clone(),
                    )),
                    snapshot: cursor.snapshot,
                })
            })
        } else {
            None
        };
        let rows: Vec<post::Model> = rows.into_iter().map(|(_, row)| row).collect();
        let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
        let variants: HashMap<String, variant::Model> = variant::Entity::find()
            .filter(variant::Column::PostId.is_in(ids.clone()))
            .filter(variant::Column::Language.eq(member.language.clone()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| (row.post_id.clone(), row))
            .collect();
        let shares = post_share::Entity::find()
            .filter(post_share::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(post_share::Column::PostId.is_in(ids))
            .all(&self.db)
            .await?;
        let mut colleagues: HashMap<&str, u64> = HashMap::new();
        let mut mine: Vec<&str> = Vec::new();
        for share in &shares {
            if share.user_id == caller.user_id {
                mine.push(&share.post_id);
            } else {
                *colleagues.entry(&share.post_id).or_default() += 1;
            }
        }
        let items = rows
            .into_iter()
            .map(|row| {
                let topics = decode_list(&row.topics);
                let translated = variants.get(&row.id);
                let default_captions = parse_json(&row.captions);
                let (title, commentary, language, captions) = match translated {
                    Some(found) => {
                        let captions: Vec<_> = parse_json(&found.captions);
                        let captions = if captions.is_empty() {
                            default_captions
                        } else {
                            captions
                        };
                        (
                            found.title.clone(),
                            found.commentary.clone(),
                            found.language.clone(),
                            captions,
                        )
                    }
                    None => (
                        row.title.clone(),
                        row.commentary.clone(),
                        row.language.clone(),
                        default_captions,
                    ),
                };
                FeedItem {
                    followed_topic: topics.iter().any(|topic| follows.contains(topic)),
                    shared_by_me: mine.contains(&row.id.as_str()),
                    shared_by_colleagues: colleagues.get(row.id.as_str()).copied().unwrap_or(0),
                    post_id: row.id.clone(),
                    title,
                    commentary,
                    language,
                    captions,
                    link_url: row.link_url.clone(),
                    topics,
                    content_type: ContentType::parse(&row.content_type)
                        .unwrap_or(ContentType::Brand),
                    media: parse_json(&row.media),
                    read_only: row.read_only,
                    published_at: row.published_at.unwrap_or(row.created_at),
                    available_until: row.available_until,
                }
            })
            .collect();
        Ok(Page { items, next_cursor })
    }

    pub async fn follow_topic(&self, caller: Caller, request: TopicRef) -> ServiceResult<Topics> {
        let topic =
            crate::domain::validate::topics(std::slice::from_ref(&request.topic))?.remove(0);
        let row = follow::ActiveModel {
            tenant_id: Set(caller.tenant_id.clone()),
            user_id: Set(caller.user_id.clone()),
            topic: Set(topic),
        };
        follow::Entity::insert(row)
            .on_conflict_do_nothing_on([
                follow::Column::TenantId,
                follow::Column::UserId,
                follow::Column::Topic,
            ])
            .exec(&self.db)
            .await?;
        self.my_topics(caller, chorus_api::Empty {}).await
    }

    pub async fn unfollow_topic(&self, caller: Caller, request: TopicRef) -> ServiceResult<Topics> {
        follow::Entity::delete_many()
            .filter(follow::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(follow::Column::UserId.eq(caller.user_id.clone()))
            .filter(follow::Column::Topic.eq(request.topic.trim().to_lowercase()))
            .exec(&self.db)
            .await?;
        self.my_topics(caller, chorus_api::Empty {}).await
    }

    pub async fn my_topics(
        &self,
        caller: Caller,
        _request: chorus_api::Empty,
    ) -> ServiceResult<Topics> {
        let mut topics: Vec<String> = follow::Entity::find()
            .filter(follow::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(follow::Column::UserId.eq(caller.user_id.clone()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| row.topic)
            .collect();
        topics.sort();
        Ok(Topics { topics })
    }

    /// Whether the caller's name may be shown among a post's sharers (off by default).
    pub async fn set_preferences(
        &self,
        caller: Caller,
        request: ContentPreferences,
    ) -> ServiceResult<ContentPreferences> {
        let current = self.member(&caller).await?;
        let mut row: member::ActiveModel = current.into();
        row.show_my_shares = Set(request.show_my_shares);
        sea_orm::ActiveModelTrait::update(row, &self.db).await?;
        Ok(request)
    }
}

impl ContentService {
    /// Who hears of a newly published post: the active members it is targeted at who follow
    /// one of its topics, or all of them when it names a target group; never its publisher.
    /// Internal (called by notifications as the system).
    pub async fn post_audience(
        &self,
        caller: Caller,
        request: chorus_api::content::PostRef,
    ) -> ServiceResult<chorus_api::content::PostAudience> {
        if caller.user_id != "system" || !caller.roles.is_empty() {
            return Err(ServiceError::forbidden(
                "the audience of a post is internal",
            ));
        }
        let post = post::Entity::find_by_id(request.post_id.clone())
            .filter(post::Column::TenantId.eq(caller.tenant_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no post {}", request.post_id)))?;
        let targeting = super::targeting_of(&post);
        let group_named = !(targeting.departments.is_empty()
            && targeting.locations.is_empty()
            && targeting.roles.is_empty()
            && targeting.languages.is_empty());
        let topics = decode_list(&post.topics);
        let followers: std::collections::HashSet<String> = if topics.is_empty() {
            Default::default()
        } else {
            follow::Entity::find()
                .filter(follow::Column::TenantId.eq(caller.tenant_id.clone()))
                .filter(follow::Column::Topic.is_in(topics))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|row| row.user_id)
                .collect()
        };
        let members = member::Entity::find()
            .filter(member::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(member::Column::Active.eq(true))
            .all(&self.db)
            .await?;
        let user_ids = members
            .into_iter()
            .filter(|member| member.user_id != post.created_by)
            .filter(|member| super::surveys::targets(&targeting, member))
            .filter(|member| group_named || followers.contains(&member.user_id))
            .map(|member| member.user_id)
            .collect();
        Ok(chorus_api::content::PostAudience { user_ids })
    }
}
