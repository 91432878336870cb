use crate::entities::notification;
use chorus_api::Empty;
use chorus_api::notifications::{Inbox as InboxPage, Notification, NotificationRef};
use chorus_kit::{Caller, ServiceError, ServiceResult};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

/// Notifications listed at once, newest first.
const PAGE: u64 = 100;

pub struct Inbox {
    pub db: DatabaseConnection,
}

impl Inbox {
    pub async fn list(&self, caller: Caller, _request: Empty) -> ServiceResult<InboxPage> {
        let mine = || {
            notification::Entity::find()
                .filter(notification::Column::TenantId.eq(caller.tenant_id.clone()))
                .filter(notification::Column::UserId.eq(caller.user_id.clone()))
                .filter(notification::Column::Channel.eq("in_app"))
        };
        let rows = mine()
            .order_by_desc(notification::Column::Id)
            .limit(PAGE)
            .all(&self.db)
            .await?;
        // When the page holds every notification, the unread count is read from it, so
        // that both describe the same moment; otherwise it is counted.
        let unread = if (rows.len() as u64) < PAGE {
            rows.iter().filter(|row| row.read_at.is_none()).count() as u64
        } else {
            mine()
                .filter(notification::Column::ReadAt.is_null())
                .count(&self.db)
                .await?
        };
        Ok(InboxPage {
            unread,
            items: rows
                .into_iter()
                .map(|row| Notification {
                    id: row.id,
                    kind: row.kind,
                    title: row.title,
                    body: row.body,
                    created_at: row.created_at,
                    read_at: row.read_at,
                })
                .collect(),
        })
    }

    pub async fn mark_read(
        &self,
        caller: Caller,
        request: NotificationRef,
    ) -> ServiceResult<Empty> {
        let result = notification::Entity::update_many()
            .col_expr(
                notification::Column::ReadAt,
                Expr::value(chrono::Utc::now()),
            )
            .filter(notification::Column::Id.eq(request.notification_id.clone()))
            .filter(notification::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(notification::Column::UserId.eq(caller.user_id.clone()))
            .filter(notification::Column::ReadAt.is_null())
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            let exists = notification::Entity::find_by_id(request.notification_id.clone())
                .filter(notification::Column::TenantId.eq(caller.tenant_id.clone()))
                .filter(notification::Column::UserId.eq(caller.user_id.clone()))
                .one(&self.db)
                .await?;
            if exists.is_none() {
                return Err(ServiceError::not_found(format!(
                    "no notification {}",
                    request.notification_id
                )));
            }
        }
        Ok(Empty {})
    }
}
