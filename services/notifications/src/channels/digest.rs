//! Daily and weekly digests: the inbox notifications whose e-mail a person turned off (or
//! that are off by default, such as points) come as one e-mail per period, at the digest
//! time in the person's time zone (weekly on Mondays).

use super::{Channels, EMAIL, IN_APP, PENDING};
use crate::entities::{channel_message, notification, quiet};
use chorus_kit::Caller;
use chrono::{DateTime, Datelike, NaiveTime, TimeZone, Utc, Weekday};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use std::collections::HashMap;
use std::time::Duration;

/// Lines listed in one digest; the rest are counted.
const MAX_LINES: usize = 30;

/// The first digest time strictly after `after`: `at` local time in `zone`, every day or
/// on Mondays.
pub fn next_digest(
    after: DateTime<Utc>,
    zone: chrono_tz::Tz,
    at: NaiveTime,
    weekly: bool,
) -> DateTime<Utc> {
    let mut date = after.with_timezone(&zone).date_naive();
    for _ in 0..9 {
        if !weekly || date.weekday() == Weekday::Mon {
            let naive = date.and_time(at);
            let local = zone.from_local_datetime(&naive).earliest().or_else(|| {
                zone.from_local_datetime(&(naive + chrono::TimeDelta::hours(1)))
                    .earliest()
            });
            if let Some(local) = local {
                let candidate = local.with_timezone(&Utc);
                if candidate > after {
                    return candidate;
                }
            }
        }
        date = date.succ_opt().unwrap_or(date);
    }
    after + chrono::TimeDelta::days(1)
}

/// What one digest says.
pub fn compose(weekly: bool, titles: &[String]) -> (String, String) {
    let count = titles.len();
    let noun = if count == 1 { "update" } else { "updates" };
    let title = if weekly {
        format!("Your weekly Chorus digest: {count} {noun}")
    } else {
        format!("Your Chorus digest: {count} {noun}")
    };
    let mut lines: Vec<String> = titles
        .iter()
        .take(MAX_LINES)
        .map(|title| format!("• {title}"))
        .collect();
    if count > MAX_LINES {
        lines.push(format!("… and {} more in your inbox.", count - MAX_LINES));
    }
    (title, lines.join("\n"))
}

impl Channels {
    /// The person as identity knows them now (address, language, time zone, active).
    pub async fn profile(
        &self,
        tenant_id: &str,
        user_id: &str,
    ) -> chorus_kit::ServiceResult<chorus_api::identity::User> {
        chorus_bus::rpc::call(
            &self.nats,
            &chorus_bus::rpc::subject("identity", "user_get"),
            &Caller::system(tenant_id),
            &chorus_api::identity::GetUser {
                user_id: user_id.to_string(),
            },
            Duration::from_secs(5),
        )
        .await
    }

    /// The person's time zone as identity knows it; UTC when it cannot be read.
    pub async fn profile_zone(&self, tenant_id: &str, user_id: &str) -> chrono_tz::Tz {
        self.profile(tenant_id, user_id)
            .await
            .ok()
            .and_then(|user| user.time_zone.parse().ok())
            .unwrap_or(chrono_tz::UTC)
    }

    /// Queues the digests that are due; returns how many were queued. Replicas may run
    /// this at once: each person's period is claimed by moving its due time, so one digest
    /// per period is queued.
    pub async fn collect_digests(&self) -> Result<usize, DbErr> {
        if !self.email_available() {
            return Ok(0);
        }
        let now = Utc::now();
        let due = quiet::Entity::find()
            .filter(quiet::Column::Digest.is_not_null())
            .filter(quiet::Column::DigestNextAt.lte(now))
            .limit(100)
            .all(&self.db)
            .await?;
        let mut queued = 0;
        for person in due {
            let (Some(frequency), Some(due_at)) = (person.digest.clone(), person.digest_next_at)
            else {
                continue;
            };
            let weekly = frequency == "weekly";
            let since = person
                .digest_since
                .unwrap_or(now - chrono::TimeDelta::days(if weekly { 7 } else { 1 }));
            let rows = notification::Entity::find()
                .filter(notification::Column::TenantId.eq(person.tenant_id.clone()))
                .filter(notification::Column::UserId.eq(person.user_id.clone()))
                .filter(notification::Column::Channel.eq(IN_APP))
                .filter(notification::Column::CreatedAt.gte(since))
                .filter(notification::Column::CreatedAt.lt(now))
                .order_by_asc(notification::Column::CreatedAt)
                .all(&self.db)
                .await?;
            // Only what did not already go by e-mail.
            let mut by_email: HashMap<String, bool> = HashMap::new();
            let mut titles = Vec::new();
            for row in rows {
                let emailed = match by_email.get(&row.kind) {
                    Some(emailed) => *emailed,
                    None => {
                        let emailed = self
                            .routing(&person.tenant_id, &person.user_id, &row.kind)
                            .await?
                            .email;
                        by_email.insert(row.kind.clone(), emailed);
                        emailed
                    }
                };
                if !emailed {
                    titles.push(row.title);
                }
            }
            let zone = match person
                .time_zone
                .as_deref()
                .and_then(|zone| zone.parse().ok())
            {
                Some(zone) => zone,
                None => self.profile_zone(&person.tenant_id, &person.user_id).await,
            };
            let next = next_digest(now, zone, self.digest_time, weekly);
            let txn = self.db.begin().await?;
            let claimed = quiet::Entity::update_many()
                .col_expr(quiet::Column::DigestSince, Expr::value(now))
                .col_expr(quiet::Column::DigestNextAt, Expr::value(next))
                .filter(quiet::Column::TenantId.eq(person.tenant_id.clone()))
                .filter(quiet::Column::UserId.eq(person.user_id.clone()))
                .filter(quiet::Column::DigestNextAt.eq(due_at))
                .exec(&txn)
                .await?;
            if claimed.rows_affected == 0 {
                txn.rollback().await?;
                continue;
            }
            if !titles.is_empty() {
                let (title, body) = compose(weekly, &titles);
                let row = channel_message::ActiveModel {
                    id: Set(format!("cm_{}", uuid::Uuid::now_v7().simple())),
                    tenant_id: Set(person.tenant_id.clone()),
                    recipient: Set(person.user_id.clone()),
                    kind: Set("digest".to_string()),
                    channel: Set(EMAIL.to_string()),
                    title: Set(title),
                    body: Set(body),
                    source_event_id: Set(format!("digest:{}", due_at.to_rfc3339())),
                    status: Set(PENDING.to_string()),
                    attempts: Set(0),
                    next_attempt_at: Set(now),
                    lease_owner: Set(None),
                    lease_until: Set(None),
                    last_error: Set(None),
                    created_at: Set(now),
                    sent_at: Set(None),
                };
                channel_message::Entity::insert(row)
                    .on_conflict_do_nothing_on([
                        channel_message::Column::TenantId,
                        channel_message::Column::Recipient,
                        channel_message::Column::SourceEventId,
                        channel_message::Column::Channel,
                    ])
                    .exec(&txn)
                    .await?;
                queued += 1;
            }
            txn.commit().await?;
            tracing::info!(tenant_id = %person.tenant_id, user_id = %person.user_id, items = titles.len(), %next, "digest collected");
        }
        if queued > 0 {
            super::QUEUED
                .with_label_values(&["digest"])
                .inc_by(queued as u64);
            self.wake.notify_one();
        }
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn daily_digests_come_at_the_local_time_and_weekly_ones_on_mondays() {
        let eight = NaiveTime::from_hms_opt(8, 0, 0).unwrap();
        let paris = chrono_tz::Europe::Paris;
        // Sunday 2026-11-29 10:00 UTC (11:00 in Paris): the next 08:00 Paris is Monday 07:00 UTC.
        assert_eq!(
            next_digest(at("2026-11-29T10:00:00Z"), paris, eight, false),
            at("2026-11-30T07:00:00Z")
        );
        // Before 08:00 local it is the same day.
        assert_eq!(
            next_digest(at("2026-11-30T06:00:00Z"), paris, eight, false),
            at("2026-11-30T07:00:00Z")
        );
        // Exactly at the time, the next one is a day (or a week) later.
        assert_eq!(
            next_digest(at("2026-11-30T07:00:00Z"), paris, eight, false),
            at("2026-12-01T07:00:00Z")
        );
        assert_eq!(
            next_digest(at("2026-11-30T07:00:00Z"), paris, eight, true),
            at("2026-12-07T07:00:00Z")
        );
        // Tuesday: the weekly digest waits for Monday.
        assert_eq!(
            next_digest(at("2026-12-01T12:00:00Z"), paris, eight, true),
            at("2026-12-07T07:00:00Z")
        );
    }

    #[test]
    fn a_digest_lists_titles_and_counts_the_rest() {
        let (title, body) = compose(false, &["A".to_string()]);
        assert_eq!(title, "Your Chorus digest: 1 update");
        assert_eq!(body, "• A");
        let many: Vec<String> = (0..35).map(|index| format!("T{index}")).collect();
        let (title, body) = compose(true, &many);
        assert_eq!(title, "Your weekly Chorus digest: 35 updates");
        assert_eq!(body.lines().count(), 31);
        assert!(body.ends_with("… and 5 more in your inbox."));
    }
}
