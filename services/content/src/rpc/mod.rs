//! Requests from the gateway.

pub(crate) mod audit_log;
mod compliance;
mod feed;
mod posts;
mod submissions;
mod surveys;

use crate::domain::{decode_list, encode_list};
use crate::entities::{audit, member, post, post_share, rule, variant};
use chorus_api::content::{
    ComplianceKind, ComplianceRule, ContentType, MediaRef, Post, PostStatus, SuggestedCaption,
    Targeting, Variant,
};
use chorus_bus::Outbox;
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
};
use std::time::Duration;

pub struct ContentService {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub nats: async_nats::Client,
}

pub const CURATORS: &[Role] = &[Role::Curator, Role::Admin];

/// Writes an audit entry in the caller's transaction.
pub async fn record_audit<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    action: &str,
    target: &str,
    detail: impl Into<String>,
) -> Result<(), DbErr> {
    let row = audit::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        tenant_id: Set(caller.tenant_id.clone()),
        actor: Set(caller.user_id.clone()),
        action: Set(action.to_string()),
        target: Set(target.to_string()),
        detail: Set(detail.into()),
        at: Set(chrono::Utc::now()),
    };
    audit::Entity::insert(row)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub fn parse_kind(kind: &str) -> ComplianceKind {
    match kind {
        "mandatory_disclosure" => ComplianceKind::MandatoryDisclosure,
        "approval_topic" => ComplianceKind::ApprovalTopic,
        _ => ComplianceKind::BannedTerm,
    }
}

pub fn kind_name(kind: ComplianceKind) -> &'static str {
    match kind {
        ComplianceKind::BannedTerm => "banned_term",
        ComplianceKind::MandatoryDisclosure => "mandatory_disclosure",
        ComplianceKind::ApprovalTopic => "approval_topic",
    }
}

pub fn to_rule(model: rule::Model) -> ComplianceRule {
    ComplianceRule {
        kind: parse_kind(&model.kind),
        content_types: decode_list(&model.content_types)
            .iter()
            .filter_map(|name| ContentType::parse(name))
            .collect(),
        id: model.id,
        value: model.value,
        created_by: model.created_by,
        created_at: model.created_at,
    }
}

fn parse_json<T: serde::de::DeserializeOwned + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}

pub fn targeting_of(model: &post::Model) -> Targeting {
    Targeting {
        departments: decode_list(&model.target_departments),
        locations: decode_list(&model.target_locations),
        roles: decode_list(&model.target_roles)
            .iter()
            .filter_map(|name| Role::parse(name))
            .collect(),
        languages: decode_list(&model.target_languages),
    }
}

/// A post's status as advocates see it: a published post past `available_until` is expired.
pub fn effective_status(model: &post::Model, now: chrono::DateTime<chrono::Utc>) -> PostStatus {
    let stored = PostStatus::parse(&model.status).unwrap_or(PostStatus::Draft);
    match (stored, model.available_until) {
        (PostStatus::Published, Some(until)) if until <= now => PostStatus::Expired,
        (status, _) => status,
    }
}

impl ContentService {
    pub async fn rules(&self, tenant_id: &str) -> Result<Vec<ComplianceRule>, DbErr> {
        let rows = rule::Entity::find()
            .filter(rule::Column::TenantId.eq(tenant_id))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(to_rule).collect())
    }

    pub async fn find_post(&self, caller: &Caller, post_id: &str) -> ServiceResult<post::Model> {
        post::Entity::find_by_id(post_id.to_string())
            .filter(post::Column::TenantId.eq(caller.tenant_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no post {post_id}")))
    }

    /// The caller's profile as content knows it (from identity's events, or asked once).
    pub async fn member(&self, caller: &Caller) -> ServiceResult<member::Model> {
        let key = (caller.tenant_id.clone(), caller.user_id.clone());
        if let Some(found) = member::Entity::find_by_id(key).one(&self.db).await? {
            return Ok(found);
        }
        let subject = chorus_bus::rpc::subject("identity", "user_get");
        let request = chorus_api::identity::GetUser {
            user_id: caller.user_id.clone(),
        };
        let user: chorus_api::identity::User = chorus_bus::rpc::call(
            &self.nats,
            &subject,
            &Caller::system(&caller.tenant_id),
            &request,
            Duration::from_secs(5),
        )
        .await?;
        let row = crate::consumers::member_row(
            &user.tenant_id,
            &user.id,
            &user.display_name,
            user.department.as_deref(),
            user.location.as_deref(),
            &user.language,
            user.roles.iter().map(|role| role.as_str()),
            user.active,
        );
        member::Entity::insert(row.clone())
            .on_conflict_do_nothing_on([member::Column::TenantId, member::Column::UserId])
            .exec(&self.db)
            .await?;
        member::Entity::find_by_id((caller.tenant_id.clone(), caller.user_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found("unknown user"))
    }

    /// The full post as curators see it, with share counts.
    pub async fn to_post(&self, model: post::Model) -> ServiceResult<Post> {
        let variants = variant::Entity::find()
            .filter(variant::Column::PostId.eq(model.id.clone()))
            .all(&self.db)
            .await?;
        let shares = post_share::Entity::find()
            .filter(post_share::Column::TenantId.eq(model.tenant_id.clone()))
            .filter(post_share::Column::PostId.eq(model.id.clone()))
            .all(&self.db)
            .await?;
        let share_count = shares.iter().map(|row| row.shares.max(0) as u64).sum();
        let mut shared_by_visible = Vec::new();
        for row in &shares {
            let sharer = member::Entity::find_by_id((model.tenant_id.clone(), row.user_id.clone()))
                .one(&self.db)
                .await?;
            if let Some(sharer) = sharer.filter(|sharer| sharer.show_my_shares) {
                shared_by_visible.push(sharer.display_name);
            }
        }
        shared_by_visible.sort();
        let status = effective_status(&model, chrono::Utc::now());
        Ok(Post {
            targeting: targeting_of(&model),
            status,
            media: parse_json::<Vec<MediaRef>>(&model.media),
            captions: parse_json::<Vec<SuggestedCaption>>(&model.captions),
            variants: variants
                .into_iter()
                .map(|row| Variant {
                    language: row.language,
                    title: row.title,
                    commentary: row.commentary,
                    captions: parse_json(&row.captions),
                })
                .collect(),
            topics: decode_list(&model.topics),
            content_type: ContentType::parse(&model.content_type).unwrap_or(ContentType::Brand),
            id: model.id,
            title: model.title,
            commentary: model.commentary,
            link_url: model.link_url,
            language: model.language,
            read_only: model.read_only,
            available_from: model.available_from,
            available_until: model.available_until,
            created_by: model.created_by,
            submitted_by: model.submitted_by,
            created_at: model.created_at,
            updated_at: model.updated_at,
            published_at: model.published_at,
            version: model.version,
            share_count,
            shared_by_colleagues: shares.len() as u64,
            shared_by_visible,
        })
    }
}

/// `,a,b,` of the roles, for targeting.
pub fn encode_roles(roles: &[Role]) -> String {
    encode_list(roles.iter().map(|role| role.as_str()))
}
