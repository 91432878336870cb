use crate::entities::{link, metric_total, tracked_share};
use chorus_api::engagement::{
    LinkTarget, NetworkActivity, NetworkActivityAccepted, ResolveLink, ShareStats,
};
use chorus_api::scheduling::ShareRef;
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

pub struct Engagement {
    pub db: DatabaseConnection,
    /// Wakes the poller when a network signals activity.
    pub poll_now: std::sync::Arc<tokio::sync::Notify>,
}

impl Engagement {
    /// A network signalled (through a webhook the gateway verified) that some of its posts
    /// changed: their shares' metrics are read again now, by the poller, so a read never
    /// overlaps a scheduled one and counts stay exact. Only the gateway's system caller.
    pub async fn network_activity(
        &self,
        caller: Caller,
        request: NetworkActivity,
    ) -> ServiceResult<NetworkActivityAccepted> {
        if caller.user_id != "system" {
            return Err(ServiceError::forbidden(
                "network activity comes from verified webhooks only",
            ));
        }
        if request.external_ids.is_empty() {
            return Ok(NetworkActivityAccepted { matched: 0 });
        }
        let result = tracked_share::Entity::update_many()
            .col_expr(
                tracked_share::Column::RefreshAt,
                sea_orm::sea_query::Expr::value(Some(chrono::Utc::now())),
            )
            .filter(tracked_share::Column::Network.eq(request.network.clone()))
            .filter(tracked_share::Column::ExternalId.is_in(request.external_ids.clone()))
            .exec(&self.db)
            .await?;
        if result.rows_affected > 0 {
            self.poll_now.notify_one();
        }
        tracing::info!(network = %request.network, posts = request.external_ids.len(), matched = result.rows_affected, "network activity");
        Ok(NetworkActivityAccepted {
            matched: result.rows_affected,
        })
    }

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
