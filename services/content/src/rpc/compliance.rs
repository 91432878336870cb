//! Compliance rules (admins) and the check of an advocate's caption before a share.

use super::{ContentService, effective_status, kind_name, record_audit, to_rule};
use crate::domain::{compliance, encode_list};
use crate::entities::{post, rule};
use chorus_api::content::{
    CaptionChecked, CheckCaption, ComplianceKind, ComplianceRule, ComplianceRuleInput, ContentType,
    MediaKind, MediaRef, PostStatus, RuleRef,
};
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};

impl ContentService {
    pub async fn create_rule(
        &self,
        caller: Caller,
        input: ComplianceRuleInput,
    ) -> ServiceResult<ComplianceRule> {
        caller.require_any(&[Role::Admin])?;
        let value = input.value.trim().to_string();
        if value.is_empty() || value.chars().count() > 200 {
            return Err(ServiceError::invalid(
                "a rule's value must be 1 to 200 characters",
            ));
        }
        let value = match input.kind {
            ComplianceKind::ApprovalTopic => {
                crate::domain::validate::topics(std::slice::from_ref(&value))?.remove(0)
            }
            _ => value,
        };
        let row = rule::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            tenant_id: Set(caller.tenant_id.clone()),
            kind: Set(kind_name(input.kind).to_string()),
            value: Set(value),
            content_types: Set(encode_list(input.content_types.iter().map(|t| t.as_str()))),
            created_by: Set(caller.user_id.clone()),
            created_at: Set(chrono::Utc::now()),
        };
        let txn = self.db.begin().await?;
        let model = rule::Entity::insert(row).exec_with_returning(&txn).await?;
        record_audit(
            &txn,
            &caller,
            "rule.create",
            &model.id,
            format!("{} {}", model.kind, model.value),
        )
        .await?;
        txn.commit().await?;
        Ok(to_rule(model))
    }

    pub async fn list_rules(
        &self,
        caller: Caller,
        _request: chorus_api::Empty,
    ) -> ServiceResult<Vec<ComplianceRule>> {
        caller.require_any(&[Role::Admin, Role::Curator, Role::Approver])?;
        Ok(self.rules(&caller.tenant_id).await?)
    }

    pub async fn delete_rule(
        &self,
        caller: Caller,
        request: RuleRef,
    ) -> ServiceResult<chorus_api::Empty> {
        caller.require_any(&[Role::Admin])?;
        let txn = self.db.begin().await?;
        let deleted = rule::Entity::delete_many()
            .filter(rule::Column::Id.eq(request.rule_id.clone()))
            .filter(rule::Column::TenantId.eq(caller.tenant_id.clone()))
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(ServiceError::not_found(format!(
                "no rule {}",
                request.rule_id
            )));
        }
        record_audit(&txn, &caller, "rule.delete", &request.rule_id, "").await?;
        txn.commit().await?;
        Ok(chorus_api::Empty {})
    }

    /// Before a share: the post must be shareable, the caption free of banned terms; the
    /// answer carries the caption with its mandatory disclosures.
    pub async fn check_caption(
        &self,
        caller: Caller,
        request: CheckCaption,
    ) -> ServiceResult<CaptionChecked> {
        let model: post::Model = self.find_post(&caller, &request.post_id).await?;
        let now = chrono::Utc::now();
        match effective_status(&model, now) {
            PostStatus::Published if model.available_from.is_none_or(|from| from <= now) => {}
            PostStatus::Expired => return Err(ServiceError::invalid("this post has expired")),
            _ => {
                return Err(ServiceError::not_found(format!(
                    "no post {}",
                    request.post_id
                )));
            }
        }
        if model.read_only {
            return Err(ServiceError::invalid(
                "this post is internal news and cannot be shared",
            ));
        }
        let rules = self.rules(&caller.tenant_id).await?;
        let violations =
            compliance::banned_terms(&rules, &[("caption".to_string(), request.caption.as_str())]);
        if let Some(first) = violations.first() {
            return Err(ServiceError::invalid(format!(
                "compliance: {}",
                first.message
            )));
        }
        let content_type = ContentType::parse(&model.content_type).unwrap_or(ContentType::Brand);
        let image = serde_json::from_str::<Vec<MediaRef>>(&model.media)
            .unwrap_or_default()
            .into_iter()
            .find(|item| item.kind == MediaKind::Image);
        Ok(CaptionChecked {
            caption: compliance::with_disclosures(&rules, content_type, &request.caption),
            link_url: model.link_url,
            has_image: model.has_image,
            image_url: image.as_ref().map(|image| image.url.clone()),
            image_alt: image
                .map(|image| image.alt_text)
                .filter(|alt| !alt.is_empty()),
        })
    }
}
