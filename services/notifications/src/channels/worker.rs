//! Sends due channel messages: claim under a lease, send, record; retry with jitter.

use super::chat::Posted;
use super::email::Sent;
use super::push::Pushed;
use super::{Channels, EMAIL, FAILED, PENDING, SEND_SECONDS, SENDS, SENT, SKIPPED, chat};
use crate::entities::{
    channel_message, person, push_device, quiet, team_channel, webhook_settings,
};
use chorus_events::notification::v1::NotificationDelivered;
use chorus_kit::Shutdown;
use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Messages in flight at once.
const CONCURRENCY: usize = 16;

/// How often due digests are looked for.
const DIGEST_CHECK: Duration = Duration::from_secs(5);

enum Outcome {
    Sent,
    /// Try again on the retry schedule.
    Retry(String),
    /// Never try again.
    Failed(String),
    /// Nothing to send to (no address, person gone, channel removed).
    Skipped(String),
    /// Quiet hours: send at this time, not counted as an attempt.
    Defer(DateTime<Utc>),
}

/// What is written for an attempt: a retry carries its delay from the schedule.
enum Recorded {
    Sent,
    Retry(String, u64),
    Failed(String),
    Skipped(String),
    Defer(DateTime<Utc>),
}

pub async fn run(channels: Arc<Channels>, shutdown: Shutdown) {
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    let mut digests_checked: Option<Instant> = None;
    while !shutdown.is_cancelled() {
        while tasks.try_join_next().is_some() {}
        if digests_checked.is_none_or(|at| at.elapsed() >= DIGEST_CHECK) {
            digests_checked = Some(Instant::now());
            if let Err(error) = channels.collect_digests().await {
                tracing::warn!(%error, "collecting digests failed");
            }
        }
        let free = slots.available_permits();
        let mut claimed_all = false;
        if free > 0 {
            match channels.claim(free as u64).await {
                Ok(claimed) => {
                    claimed_all = claimed.len() == free;
                    for message in claimed {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            return;
                        };
                        let channels = channels.clone();
                        tasks.spawn(async move {
                            channels.attempt(message).await;
                            drop(permit);
                            channels.wake.notify_one();
                        });
                    }
                }
                Err(error) => tracing::warn!(%error, "claiming channel messages failed"),
            }
        }
        if claimed_all {
            continue;
        }
        let wait = channels
            .next_due_in()
            .await
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = channels.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

fn due(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(channel_message::Column::Status.eq(PENDING))
        .add(channel_message::Column::NextAttemptAt.lte(now))
        .add(
            Condition::any()
                .add(channel_message::Column::LeaseUntil.is_null())
                .add(channel_message::Column::LeaseUntil.lt(now)),
        )
}

/// When quiet hours hold at `now`, the moment they end; `start` after `end` spans midnight.
pub fn quiet_until(
    now: DateTime<Utc>,
    start: NaiveTime,
    end: NaiveTime,
    zone: chrono_tz::Tz,
) -> Option<DateTime<Utc>> {
    if start == end {
        return None;
    }
    let local = now.with_timezone(&zone);
    let time = local.time();
    let inside = if start < end {
        time >= start && time < end
    } else {
        time >= start || time < end
    };
    if !inside {
        return None;
    }
    let date = if time < end {
        local.date_naive()
    } else {
        local.date_naive().succ_opt()?
    };
    let naive = date.and_time(end);
    // A gap in local time (spring forward) moves the end an hour later.
    let resolved = zone.from_local_datetime(&naive).earliest().or_else(|| {
        zone.from_local_datetime(&(naive + chrono::TimeDelta::hours(1)))
            .earliest()
    })?;
    Some(resolved.with_timezone(&Utc))
}

pub fn parse_time(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M").ok()
}

impl Channels {
    async fn claim(&self, limit: u64) -> Result<Vec<channel_message::Model>, DbErr> {
        let now = Utc::now();
        let ids: Vec<String> = channel_message::Entity::find()
            .select_only()
            .column(channel_message::Column::Id)
            .filter(due(now))
            .order_by_asc(channel_message::Column::NextAttemptAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let owner = uuid::Uuid::new_v4().to_string();
        let lease = chrono::TimeDelta::milliseconds(self.config.channel_timeout_ms as i64)
            + chrono::TimeDelta::seconds(30);
        channel_message::Entity::update_many()
            .col_expr(
                channel_message::Column::LeaseOwner,
                Expr::value(owner.clone()),
            )
            .col_expr(
                channel_message::Column::LeaseUntil,
                Expr::value(now + lease),
            )
            .filter(channel_message::Column::Id.is_in(ids.clone()))
            .filter(due(now))
            .exec(&self.db)
            .await?;
        channel_message::Entity::find()
            .filter(channel_message::Column::Id.is_in(ids))
            .filter(channel_message::Column::LeaseOwner.eq(owner))
            .all(&self.db)
            .await
    }

    async fn next_due_in(&self) -> Option<Duration> {
        let next: Option<DateTime<Utc>> = channel_message::Entity::find()
            .select_only()
            .column(channel_message::Column::NextAttemptAt)
            .filter(channel_message::Column::Status.eq(PENDING))
            .order_by_asc(channel_message::Column::NextAttemptAt)
            .into_tuple::<DateTime<Utc>>()
            .one(&self.db)
            .await
            .ok()
            .flatten();
        next.map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
    }

    async fn attempt(&self, message: channel_message::Model) {
        let span = tracing::info_span!(
            "notification.channel.send",
            channel = %message.channel,
            tenant_id = %message.tenant_id,
            kind = %message.kind,
            message_id = %message.id,
            attempt = message.attempts + 1,
        );
        async {
            let started = Instant::now();
            let outcome = match message.channel.as_str() {
                EMAIL => self.send_email(&message).await,
                "slack" | "teams" => self.send_team(&message).await,
                channel if channel.starts_with("push:") => self.send_push(&message).await,
                other => Outcome::Failed(format!("unknown channel {other}")),
            };
            SEND_SECONDS
                .with_label_values(&[super::label(&message.channel)])
                .observe(started.elapsed().as_secs_f64());
            if let Err(error) = self.record(&message, outcome).await {
                tracing::warn!(%error, "recording a channel attempt failed; the lease will lapse and it is tried again");
            }
        }
        .instrument(span)
        .await
    }

    async fn send_email(&self, message: &channel_message::Model) -> Outcome {
        let Some(mailer) = &self.mailer else {
            return Outcome::Skipped("e-mail is not configured".into());
        };
        let user = match self.profile(&message.tenant_id, &message.recipient).await {
            Ok(user) => user,
            Err(error) if error.code == chorus_kit::error::ErrorCode::NotFound => {
                return Outcome::Skipped("the person is no longer known".into());
            }
            Err(error) => return Outcome::Retry(format!("profile unavailable: {}", error.message)),
        };
        if !user.active {
            return Outcome::Skipped("the person is deactivated".into());
        }
        if user.email.trim().is_empty() {
            return Outcome::Skipped("the person has no e-mail address".into());
        }
        match self
            .quiet_hold(
                &message.tenant_id,
                &message.recipient,
                Some(&user.time_zone),
            )
            .await
        {
            Ok(Some(until)) => return Outcome::Defer(until),
            Ok(None) => {}
            Err(error) => return Outcome::Retry(error),
        }
        match mailer
            .send(
                &message.id,
                &user.email,
                &user.display_name,
                &user.language,
                &message.title,
                &message.body,
            )
            .await
        {
            Sent::Accepted => Outcome::Sent,
            Sent::Refused(reason) => Outcome::Failed(reason),
            Sent::Failed(reason) => Outcome::Retry(reason),
        }
    }

    /// When the person's quiet hours hold now, their end.
    async fn quiet_hold(
        &self,
        tenant_id: &str,
        user_id: &str,
        profile_zone: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, String> {
        let quiet = quiet::Entity::find_by_id((tenant_id.to_string(), user_id.to_string()))
            .one(&self.db)
            .await
            .map_err(|error| format!("quiet hours unreadable: {error}"))?;
        let Some(quiet) = quiet else {
            return Ok(None);
        };
        let (Some(start), Some(end)) = (
            quiet.quiet_start.as_deref().and_then(parse_time),
            quiet.quiet_end.as_deref().and_then(parse_time),
        ) else {
            return Ok(None);
        };
        let zone = match quiet.time_zone.as_deref().or(profile_zone) {
            Some(zone) => zone.parse::<chrono_tz::Tz>().unwrap_or(chrono_tz::UTC),
            None => self.profile_zone(tenant_id, user_id).await,
        };
        Ok(quiet_until(Utc::now(), start, end, zone))
    }

    async fn send_push(&self, message: &channel_message::Model) -> Outcome {
        let device_id = message.channel.trim_start_matches("push:");
        let device = match push_device::Entity::find_by_id(device_id.to_string())
            .filter(push_device::Column::TenantId.eq(message.tenant_id.clone()))
            .one(&self.db)
            .await
        {
            Ok(Some(device)) => device,
            Ok(None) => return Outcome::Skipped("the device was removed".into()),
            Err(error) => return Outcome::Retry(error.to_string()),
        };
        match person::Entity::find_by_id((message.tenant_id.clone(), message.recipient.clone()))
            .one(&self.db)
            .await
        {
            Ok(Some(person)) if !person.active => {
                return Outcome::Skipped("the person is deactivated".into());
            }
            Ok(_) => {}
            Err(error) => return Outcome::Retry(error.to_string()),
        }
        match self
            .quiet_hold(&message.tenant_id, &message.recipient, None)
            .await
        {
            Ok(Some(until)) => return Outcome::Defer(until),
            Ok(None) => {}
            Err(error) => return Outcome::Retry(error),
        }
        match self
            .push
            .send(
                &device.platform,
                &device.token,
                &message.title,
                &message.body,
                &message.kind,
                &message.id,
            )
            .await
        {
            Pushed::Accepted => {
                let _ = push_device::Entity::update_many()
                    .col_expr(push_device::Column::LastUsedAt, Expr::value(Utc::now()))
                    .filter(push_device::Column::Id.eq(device.id.clone()))
                    .exec(&self.db)
                    .await;
                Outcome::Sent
            }
            Pushed::Unregistered(reason) => {
                // The app was removed or the token replaced: forget the device.
                let _ = push_device::Entity::delete_by_id(device.id.clone())
                    .exec(&self.db)
                    .await;
                tracing::info!(device_id = %device.id, platform = %device.platform, "push device unregistered and removed");
                Outcome::Skipped(format!("device unregistered: {reason}"))
            }
            Pushed::Refused(reason) => Outcome::Failed(reason),
            Pushed::Failed(reason) => Outcome::Retry(reason),
        }
    }

    async fn send_team(&self, message: &channel_message::Model) -> Outcome {
        let channel_id = message.recipient.trim_start_matches("team:");
        let team = match team_channel::Entity::find_by_id(channel_id.to_string())
            .filter(team_channel::Column::TenantId.eq(message.tenant_id.clone()))
            .one(&self.db)
            .await
        {
            Ok(Some(team)) => team,
            Ok(None) => return Outcome::Skipped("the team channel was removed".into()),
            Err(error) => return Outcome::Retry(error.to_string()),
        };
        let url = match self.keys.decrypt(&team.url_key_id, &team.url_cipher) {
            Ok(url) => url,
            Err(error) => {
                return Outcome::Failed(format!("the channel URL cannot be decrypted: {error}"));
            }
        };
        let allow_private = match webhook_settings::Entity::find_by_id(message.tenant_id.clone())
            .one(&self.db)
            .await
        {
            Ok(settings) => settings.is_some_and(|settings| settings.allow_private_destinations),
            Err(error) => return Outcome::Retry(error.to_string()),
        };
        let payload = if team.channel_type == "teams" {
            chat::teams_payload(&message.title, &message.body)
        } else {
            chat::slack_payload(&message.title, &message.body)
        };
        match chat::post(&self.http, &self.config, &url, allow_private, &payload).await {
            Posted::Accepted => Outcome::Sent,
            Posted::Refused(reason) => Outcome::Failed(reason),
            Posted::Failed(reason) => Outcome::Retry(reason),
        }
    }

    async fn record(
        &self,
        message: &channel_message::Model,
        outcome: Outcome,
    ) -> Result<(), DbErr> {
        let now = Utc::now();
        let attempts = message.attempts + 1;
        let update = || {
            channel_message::Entity::update_many()
                .col_expr(
                    channel_message::Column::LeaseOwner,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(
                    channel_message::Column::LeaseUntil,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .filter(channel_message::Column::Id.eq(message.id.clone()))
                .filter(channel_message::Column::LeaseOwner.eq(message.lease_owner.clone()))
        };
        // A retry past the end of the schedule is a failure.
        let outcome = match outcome {
            Outcome::Retry(reason) => match self
                .config
                .channel_retry_schedule_ms
                .get(message.attempts as usize)
            {
                Some(delay) => Recorded::Retry(reason, *delay),
                None => Recorded::Failed(reason),
            },
            Outcome::Sent => Recorded::Sent,
            Outcome::Failed(reason) => Recorded::Failed(reason),
            Outcome::Skipped(reason) => Recorded::Skipped(reason),
            Outcome::Defer(until) => Recorded::Defer(until),
        };
        let (label, error) = match outcome {
            Recorded::Sent => {
                let txn = self.db.begin().await?;
                update()
                    .col_expr(channel_message::Column::Status, Expr::value(SENT))
                    .col_expr(channel_message::Column::Attempts, Expr::value(attempts))
                    .col_expr(channel_message::Column::SentAt, Expr::value(now))
                    .col_expr(
                        channel_message::Column::LastError,
                        Expr::value(Option::<String>::None),
                    )
                    .exec(&txn)
                    .await?;
                if message.channel == EMAIL || message.channel.starts_with("push:") {
                    let event = NotificationDelivered {
                        tenant_id: message.tenant_id.clone(),
                        notification_id: message.id.clone(),
                        user_id: message.recipient.clone(),
                        kind: message.kind.clone(),
                        channel: super::label(&message.channel).to_string(),
                        source_event_id: message.source_event_id.clone(),
                        delivered_at: Some(chorus_events::to_timestamp(now)),
                        title: message.title.clone(),
                        body: message.body.clone(),
                    };
                    self.outbox.enqueue(&txn, &event).await?;
                }
                txn.commit().await?;
                self.outbox.wake();
                ("sent", None)
            }
            Recorded::Retry(reason, delay) => {
                let jittered = (delay as f64 * (0.8 + 0.4 * fastrand::f64())) as i64;
                update()
                    .col_expr(channel_message::Column::Attempts, Expr::value(attempts))
                    .col_expr(
                        channel_message::Column::NextAttemptAt,
                        Expr::value(now + chrono::TimeDelta::milliseconds(jittered)),
                    )
                    .col_expr(
                        channel_message::Column::LastError,
                        Expr::value(reason.clone()),
                    )
                    .exec(&self.db)
                    .await?;
                ("retry", Some(reason))
            }
            Recorded::Failed(reason) => {
                update()
                    .col_expr(channel_message::Column::Status, Expr::value(FAILED))
                    .col_expr(channel_message::Column::Attempts, Expr::value(attempts))
                    .col_expr(
                        channel_message::Column::LastError,
                        Expr::value(reason.clone()),
                    )
                    .exec(&self.db)
                    .await?;
                ("failed", Some(reason))
            }
            Recorded::Skipped(reason) => {
                update()
                    .col_expr(channel_message::Column::Status, Expr::value(SKIPPED))
                    .col_expr(
                        channel_message::Column::LastError,
                        Expr::value(reason.clone()),
                    )
                    .exec(&self.db)
                    .await?;
                ("skipped", Some(reason))
            }
            Recorded::Defer(until) => {
                update()
                    .col_expr(channel_message::Column::NextAttemptAt, Expr::value(until))
                    .exec(&self.db)
                    .await?;
                ("deferred", None)
            }
        };
        SENDS
            .with_label_values(&[super::label(&message.channel), label])
            .inc();
        match error {
            Some(error) if label != "skipped" => {
                tracing::warn!(outcome = label, attempts, %error, "notification channel attempt")
            }
            _ => tracing::info!(outcome = label, attempts, "notification channel attempt"),
        }
        Ok(())
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
    fn quiet_hours_across_midnight_end_the_next_morning_in_the_persons_zone() {
        let (start, end) = (parse_time("22:00").unwrap(), parse_time("07:00").unwrap());
        let paris = chrono_tz::Europe::Paris;
        // 23:30 in Paris (22:30 UTC in winter): quiet until 07:00 Paris = 06:00 UTC.
        assert_eq!(
            quiet_until(at("2026-11-29T22:30:00Z"), start, end, paris),
            Some(at("2026-11-30T06:00:00Z"))
        );
        // 05:00 in Paris: quiet until 07:00 the same day.
        assert_eq!(
            quiet_until(at("2026-11-30T04:00:00Z"), start, end, paris),
            Some(at("2026-11-30T06:00:00Z"))
        );
        // 12:00 in Paris: not quiet.
        assert_eq!(
            quiet_until(at("2026-11-30T11:00:00Z"), start, end, paris),
            None
        );
        // The end itself is no longer quiet.
        assert_eq!(
            quiet_until(at("2026-11-30T06:00:00Z"), start, end, paris),
            None
        );
    }

    #[test]
    fn quiet_hours_within_a_day_and_empty_windows() {
        let (start, end) = (parse_time("12:00").unwrap(), parse_time("14:00").unwrap());
        assert_eq!(
            quiet_until(at("2026-11-30T12:30:00Z"), start, end, chrono_tz::UTC),
            Some(at("2026-11-30T14:00:00Z"))
        );
        assert_eq!(
            quiet_until(at("2026-11-30T15:00:00Z"), start, end, chrono_tz::UTC),
            None
        );
        assert_eq!(
            quiet_until(at("2026-11-30T12:30:00Z"), start, start, chrono_tz::UTC),
            None
        );
        assert!(parse_time("25:00").is_none() && parse_time("7am").is_none());
    }
}
