use crate::entities::{link, metric_total};
use chorus_api::engagement::{LinkTarget, ResolveLink, ShareStats};
use chorus_api::scheduling::ShareRef;
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

pub struct Engagement {
    pub db: DatabaseConnection,
}

impl Engagement {
    /// Where a tracked link leads. Public: the code is the only secret.
    pub async fn resolve_link(
        &self,
        _caller: Caller,
        request: ResolveLink,
    ) -> ServiceResult<LinkTarget> {
        let row = link::Entity::find_by_id(request.code.clone())
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found("no such link"))?;
        Ok(LinkTarget {
            tenant_id: row.tenant_id,
            share_id: row.share_id,
            target_url: row.target_url,
        })
    }

    /// Totals of one share, for its advocate (or curators and admins of the tenant).
    pub async fn share_stats(
        &self,
        caller: Caller,
        request: ShareRef,
    ) -> ServiceResult<ShareStats> {
        let link = link::Entity::find()
            .filter(link::Column::ShareId.eq(request.share_id.clone()))
            .filter(link::Column::TenantId.eq(caller.tenant_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no share {}", request.share_id)))?;
        let privileged = caller.has(Role::Curator) || caller.has(Role::Admin);
        if link.user_id != caller.user_id && !privileged {
            return Err(ServiceError::not_found(format!(
                "no share {}",
                request.share_id
            )));
        }
        let totals = metric_total::Entity::find()
            .filter(metric_total::Column::ShareId.eq(request.share_id.clone()))
            .filter(metric_total::Column::TenantId.eq(caller.tenant_id.clone()))
            .all(&self.db)
            .await?;
        let mut stats = ShareStats {
            share_id: request.share_id,
            ..Default::default()
        };
        for row in totals {
            match row.metric.as_str() {
                "click" => stats.clicks = row.total,
                "bot_click" => stats.bot_clicks = row.total,
                "unique_visitor" => stats.unique_visitors = row.total,
                "reaction" => stats.reactions = row.total,
                "comment" => stats.comments = row.total,
                "reshare" => stats.reshares = row.total,
                "impression" => stats.impressions = row.total,
                _ => {}
            }
        }
        Ok(stats)
    }
}
