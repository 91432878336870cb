//! The tenant's audit log (admins): curation and compliance actions recorded here, and every
//! change made through the API by an administrator, curator, approver or integrator
//! (`content.action_audited.v1` from the gateway); queried, exported and kept for the
//! tenant's retention period.

use super::ContentService;
use crate::entities::{audit, audit_setting};
use chorus_api::Page;
use chorus_api::content::{AuditEntry, AuditQuery, AuditSettings};
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

/// Entries kept when a tenant names no retention.
pub const DEFAULT_RETENTION_DAYS: u32 = 365;
const RETENTION_RANGE: std::ops::RangeInclusive<u32> = 30..=3650;

/// The most entries one export holds; a longer period is exported in parts.
pub const MAX_EXPORT: u64 = 100_000;

fn entry(row: audit::Model) -> AuditEntry {
    AuditEntry {
        id: row.id,
        actor: row.actor,
        action: row.action,
        target: row.target,
        detail: row.detail,
        at: row.at,
    }
}

fn filtered(caller: &Caller, query: &AuditQuery) -> ServiceResult<sea_orm::Select<audit::Entity>> {
    let mut select =
        audit::Entity::find().filter(audit::Column::TenantId.eq(caller.tenant_id.clone()));
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from >= to
    {
        return Err(ServiceError::invalid("from must be before to"));
    }
    if let Some(actor) = query.actor.as_deref().filter(|a| !a.is_empty()) {
        select = select.filter(audit::Column::Actor.eq(actor));
    }
    if let Some(action) = query.action.as_deref().filter(|a| !a.is_empty()) {
        select = select.filter(audit::Column::Action.starts_with(action));
    }
    if let Some(from) = query.from {
        select = select.filter(audit::Column::At.gte(from));
    }
    if let Some(to) = query.to {
        select = select.filter(audit::Column::At.lt(to));
    }
    Ok(select)
}

impl ContentService {
    /// The audit log, newest first (admins).
    pub async fn audit_log(
        &self,
        caller: Caller,
        query: AuditQuery,
    ) -> ServiceResult<Page<AuditEntry>> {
        caller.require_any(&[Role::Admin])?;
        let limit = query.limit.unwrap_or(50).clamp(1, 500) as u64;
        let mut select = filtered(&caller, &query)?;
        if let Some(cursor) = &query.cursor {
            select = select.filter(audit::Column::Id.lt(cursor.clone()));
        }
        let mut rows = select
            .order_by_desc(audit::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|row| row.id.clone())
        } else {
            None
        };
        Ok(Page {
            items: rows.into_iter().map(entry).collect(),
            next_cursor,
        })
    }

    /// Every entry of a period, oldest first, for an export (admins).
    pub async fn audit_export(
        &self,
        caller: Caller,
        query: AuditQuery,
    ) -> ServiceResult<Vec<AuditEntry>> {
        caller.require_any(&[Role::Admin])?;
        let rows = filtered(&caller, &query)?
            .order_by_asc(audit::Column::Id)
            .limit(MAX_EXPORT + 1)
            .all(&self.db)
            .await?;
        if rows.len() as u64 > MAX_EXPORT {
            return Err(ServiceError::invalid(format!(
                "the period holds more than {MAX_EXPORT} entries: export it in parts with from and to"
            )));
        }
        tracing::info!(entries = rows.len(), "audit log exported");
        Ok(rows.into_iter().map(entry).collect())
    }

    pub async fn audit_settings(
        &self,
        caller: Caller,
        _request: chorus_api::Empty,
    ) -> ServiceResult<AuditSettings> {
        caller.require_any(&[Role::Admin])?;
        let days = audit_setting::Entity::find_by_id(caller.tenant_id.clone())
            .one(&self.db)
            .await?
            .map(|row| row.retention_days as u32)
            .unwrap_or(DEFAULT_RETENTION_DAYS);
        Ok(AuditSettings {
            retention_days: days,
        })
    }

    /// Sets the retention and deletes what falls outside it at once.
    pub async fn set_audit_settings(
        &self,
        caller: Caller,
        settings: AuditSettings,
    ) -> ServiceResult<AuditSettings> {
        caller.require_any(&[Role::Admin])?;
        if !RETENTION_RANGE.contains(&settings.retention_days) {
            return Err(ServiceError::invalid(format!(
                "retention_days must be {} to {}",
                RETENTION_RANGE.start(),
                RETENTION_RANGE.end()
            )));
        }
        let row = audit_setting::ActiveModel {
            tenant_id: Set(caller.tenant_id.clone()),
            retention_days: Set(settings.retention_days as i32),
            updated_by: Set(caller.user_id.clone()),
            updated_at: Set(chrono::Utc::now()),
        };
        audit_setting::Entity::insert(row)
            .on_conflict(
                OnConflict::column(audit_setting::Column::TenantId)
                    .update_columns([
                        audit_setting::Column::RetentionDays,
                        audit_setting::Column::UpdatedBy,
                        audit_setting::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        super::record_audit(
            &self.db,
            &caller,
            "audit.retention",
            &caller.tenant_id,
            format!("{} days", settings.retention_days),
        )
        .await?;
        purge(&self.db).await?;
        Ok(settings)
    }
}

/// Deletes the entries older than each tenant's retention (the default where none is set).
pub async fn purge(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let now = chrono::Utc::now();
    let settings = audit_setting::Entity::find().all(db).await?;
    let mut deleted = 0;
    for setting in &settings {
        deleted += audit::Entity::delete_many()
            .filter(audit::Column::TenantId.eq(setting.tenant_id.clone()))
            .filter(
                audit::Column::At.lt(now - chrono::TimeDelta::days(setting.retention_days as i64)),
            )
            .exec(db)
            .await?
            .rows_affected;
    }
    deleted += audit::Entity::delete_many()
        .filter(audit::Column::TenantId.is_not_in(settings.iter().map(|s| s.tenant_id.clone())))
        .filter(audit::Column::At.lt(now - chrono::TimeDelta::days(DEFAULT_RETENTION_DAYS as i64)))
        .exec(db)
        .await?
        .rows_affected;
    if deleted > 0 {
        tracing::info!(deleted, "audit entries past their retention deleted");
    }
    Ok(deleted)
}
