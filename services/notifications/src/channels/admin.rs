//! Requests from the gateway: a person's preferences and deliveries; the tenant's team
//! channels (admins).

use super::worker::parse_time;
use super::{Channels, EMAIL, IN_APP, KINDS, PUSH, is_kind};
use crate::entities::{
    channel_message, preference, push_device, quiet, team_channel, webhook_settings,
};
use crate::webhooks::destination;
use chorus_api::Empty;
use chorus_api::notifications::{
    ChannelDeliveries, ChannelDelivery, CreateTeamChannel, Device, DeviceRef, Devices,
    DigestFrequency, KindPreference, NotificationPreferences, PushPlatform, QuietHours,
    RegisterDevice, TeamChannel, TeamChannelRef, TeamChannelType, TeamChannels,
};
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};

/// Devices a person may register.
const MAX_DEVICES: u64 = 20;

fn view_device(model: push_device::Model) -> Device {
    Device {
        id: model.id,
        platform: if model.platform == "apns" {
            PushPlatform::Apns
        } else {
            PushPlatform::Fcm
        },
        name: model.name,
        created_at: model.created_at,
        last_used_at: model.last_used_at,
    }
}

/// Team channels a tenant may keep.
const MAX_TEAM_CHANNELS: u64 = 20;

fn view_team(model: team_channel::Model) -> TeamChannel {
    TeamChannel {
        id: model.id,
        channel_type: if model.channel_type == "teams" {
            TeamChannelType::Teams
        } else {
            TeamChannelType::Slack
        },
        name: model.name,
        host: model.host,
        kinds: model
            .kinds
            .split(',')
            .filter(|kind| !kind.is_empty())
            .map(str::to_string)
            .collect(),
        created_at: model.created_at,
    }
}

fn view_delivery(model: channel_message::Model) -> ChannelDelivery {
    ChannelDelivery {
        next_attempt_at: (model.status == super::PENDING).then_some(model.next_attempt_at),
        id: model.id,
        channel: super::label(&model.channel).to_string(),
        kind: model.kind,
        status: model.status,
        attempts: model.attempts,
        last_error: model.last_error,
        sent_at: model.sent_at,
        created_at: model.created_at,
    }
}

impl Channels {
    pub async fn get_preferences(
        &self,
        caller: Caller,
        _request: Empty,
    ) -> ServiceResult<NotificationPreferences> {
        let chosen = preference::Entity::find()
            .filter(preference::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(preference::Column::UserId.eq(caller.user_id.clone()))
            .all(&self.db)
            .await?;
        let choice = |kind: &str, channel: &str, default: bool| {
            chosen
                .iter()
                .find(|row| row.kind == kind && row.channel == channel)
                .map_or(default, |row| row.enabled)
        };
        let quiet = quiet::Entity::find_by_id((caller.tenant_id.clone(), caller.user_id.clone()))
            .one(&self.db)
            .await?;
        Ok(NotificationPreferences {
            items: KINDS
                .iter()
                .map(|(kind, in_app, email, push)| KindPreference {
                    kind: kind.to_string(),
                    in_app: choice(kind, IN_APP, *in_app),
                    email: choice(kind, EMAIL, *email),
                    push: Some(choice(kind, PUSH, *push)),
                })
                .collect(),
            quiet_hours: quiet.as_ref().and_then(|quiet| {
                Some(QuietHours {
                    start: quiet.quiet_start.clone()?,
                    end: quiet.quiet_end.clone()?,
                })
            }),
            time_zone: quiet.as_ref().and_then(|quiet| quiet.time_zone.clone()),
            digest: quiet
                .as_ref()
                .and_then(|quiet| quiet.digest.as_deref())
                .map(|digest| {
                    if digest == "weekly" {
                        DigestFrequency::Weekly
                    } else {
                        DigestFrequency::Daily
                    }
                }),
            email_available: self.email_available(),
            push_platforms: self
                .push
                .platforms()
                .into_iter()
                .map(str::to_string)
                .collect(),
        })
    }

    pub async fn set_preferences(
        &self,
        caller: Caller,
        request: NotificationPreferences,
    ) -> ServiceResult<NotificationPreferences> {
        for item in &request.items {
            if !is_kind(&item.kind) {
                return Err(ServiceError::invalid(format!(
                    "items: unknown kind {:?} (GET /v1/me/notification-preferences lists them)",
                    item.kind
                )));
            }
        }
        if let Some(hours) = &request.quiet_hours {
            for (field, value) in [("start", &hours.start), ("end", &hours.end)] {
                if parse_time(value).is_none() {
                    return Err(ServiceError::invalid(format!(
                        "quiet_hours.{field}: {value:?} is not a time as HH:MM"
                    )));
                }
            }
        }
        if let Some(zone) = &request.time_zone
            && zone.parse::<chrono_tz::Tz>().is_err()
        {
            return Err(ServiceError::invalid(format!(
                "time_zone: {zone:?} is not an IANA time zone such as Europe/Paris"
            )));
        }
        // A digest's period starts when it is first chosen and ends at the next digest time.
        let now = chrono::Utc::now();
        let existing =
            quiet::Entity::find_by_id((caller.tenant_id.clone(), caller.user_id.clone()))
                .one(&self.db)
                .await?;
        let (digest, digest_since, digest_next_at) = match request.digest {
            None => (None, None, None),
            Some(frequency) => {
                let zone = match request.time_zone.as_deref() {
                    Some(zone) => zone.parse().unwrap_or(chrono_tz::UTC),
                    None => self.profile_zone(&caller.tenant_id, &caller.user_id).await,
                };
                let since = existing
                    .as_ref()
                    .filter(|existing| existing.digest.is_some())
                    .and_then(|existing| existing.digest_since)
                    .unwrap_or(now);
                let next = super::digest::next_digest(
                    now,
                    zone,
                    self.digest_time,
                    frequency == DigestFrequency::Weekly,
                );
                (
                    Some(frequency.as_str().to_string()),
                    Some(since),
                    Some(next),
                )
            }
        };
        let txn = self.db.begin().await?;
        for item in &request.items {
            let mut choices = vec![(IN_APP, item.in_app), (EMAIL, item.email)];
            if let Some(push) = item.push {
                choices.push((PUSH, push));
            }
            for (channel, enabled) in choices {
                preference::Entity::insert(preference::ActiveModel {
                    tenant_id: Set(caller.tenant_id.clone()),
                    user_id: Set(caller.user_id.clone()),
                    kind: Set(item.kind.clone()),
                    channel: Set(channel.to_string()),
                    enabled: Set(enabled),
                })
                .on_conflict(
                    OnConflict::columns([
                        preference::Column::TenantId,
                        preference::Column::UserId,
                        preference::Column::Kind,
                        preference::Column::Channel,
                    ])
                    .update_column(preference::Column::Enabled)
                    .to_owned(),
                )
                .exec(&txn)
                .await?;
            }
        }
        quiet::Entity::insert(quiet::ActiveModel {
            tenant_id: Set(caller.tenant_id.clone()),
            user_id: Set(caller.user_id.clone()),
            quiet_start: Set(request
                .quiet_hours
                .as_ref()
                .map(|hours| hours.start.clone())),
            quiet_end: Set(request.quiet_hours.as_ref().map(|hours| hours.end.clone())),
            time_zone: Set(request.time_zone.clone()),
            digest: Set(digest),
            digest_since: Set(digest_since),
            digest_next_at: Set(digest_next_at),
        })
        .on_conflict(
            OnConflict::columns([quiet::Column::TenantId, quiet::Column::UserId])
                .update_columns([
                    quiet::Column::QuietStart,
                    quiet::Column::QuietEnd,
                    quiet::Column::TimeZone,
                    quiet::Column::Digest,
                    quiet::Column::DigestSince,
                    quiet::Column::DigestNextAt,
                ])
                .to_owned(),
        )
        .exec(&txn)
        .await?;
        // E-mails held for the old quiet hours are looked at again under the new ones.
        let released = channel_message::Entity::update_many()
            .col_expr(
                channel_message::Column::NextAttemptAt,
                sea_orm::sea_query::Expr::value(chrono::Utc::now()),
            )
            .filter(channel_message::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(channel_message::Column::Recipient.eq(caller.user_id.clone()))
            .filter(channel_message::Column::Channel.eq(EMAIL))
            .filter(channel_message::Column::Status.eq(super::PENDING))
            .filter(channel_message::Column::Attempts.eq(0))
            .exec(&txn)
            .await?
            .rows_affected;
        txn.commit().await?;
        if released > 0 {
            self.wake.notify_one();
        }
        tracing::info!(tenant_id = %caller.tenant_id, user_id = %caller.user_id, kinds = request.items.len(), "notification preferences changed");
        self.get_preferences(caller, Empty {}).await
    }

    /// The caller's e-mail notifications and what became of them (newest first).
    pub async fn my_deliveries(
        &self,
        caller: Caller,
        _request: Empty,
    ) -> ServiceResult<ChannelDeliveries> {
        let rows = channel_message::Entity::find()
            .filter(channel_message::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(channel_message::Column::Recipient.eq(caller.user_id.clone()))
            .order_by_desc(channel_message::Column::Id)
            .limit(100)
            .all(&self.db)
            .await?;
        Ok(ChannelDeliveries {
            items: rows.into_iter().map(view_delivery).collect(),
        })
    }

    pub async fn create_team_channel(
        &self,
        caller: Caller,
        request: CreateTeamChannel,
    ) -> ServiceResult<TeamChannel> {
        caller.require_any(&[Role::Admin])?;
        let name = request.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ServiceError::invalid("name must have 1 to 100 characters"));
        }
        if request.kinds.is_empty() {
            return Err(ServiceError::invalid("kinds: name at least one kind"));
        }
        let mut kinds: Vec<String> = Vec::new();
        for kind in &request.kinds {
            if !is_kind(kind) {
                return Err(ServiceError::invalid(format!(
                    "kinds: unknown kind {kind:?} (GET /v1/me/notification-preferences lists them)"
                )));
            }
            if !kinds.contains(kind) {
                kinds.push(kind.clone());
            }
        }
        let allow_private = webhook_settings::Entity::find_by_id(caller.tenant_id.clone())
            .one(&self.db)
            .await?
            .is_some_and(|settings| settings.allow_private_destinations);
        let url = destination::parse(request.url.trim(), allow_private)
            .map_err(|refused| ServiceError::invalid(format!("url: {refused}")))?;
        destination::resolve(&url, allow_private)
            .await
            .map_err(|refused| ServiceError::invalid(format!("url: {refused}")))?;
        let count = team_channel::Entity::find()
            .filter(team_channel::Column::TenantId.eq(caller.tenant_id.clone()))
            .count(&self.db)
            .await?;
        if count >= MAX_TEAM_CHANNELS {
            return Err(ServiceError::conflict(format!(
                "a tenant keeps at most {MAX_TEAM_CHANNELS} team channels"
            )));
        }
        let (key_id, cipher) = self.keys.encrypt(url.as_str());
        let model = team_channel::ActiveModel {
            id: Set(format!("tc_{}", uuid::Uuid::now_v7().simple())),
            tenant_id: Set(caller.tenant_id.clone()),
            channel_type: Set(match request.channel_type {
                TeamChannelType::Slack => "slack".to_string(),
                TeamChannelType::Teams => "teams".to_string(),
            }),
            name: Set(name.to_string()),
            host: Set(url.host_str().unwrap_or_default().to_string()),
            url_key_id: Set(key_id),
            url_cipher: Set(cipher),
            kinds: Set(kinds.join(",")),
            created_at: Set(chrono::Utc::now()),
        }
        .insert(&self.db)
        .await?;
        tracing::info!(tenant_id = %caller.tenant_id, channel_id = %model.id, channel_type = %model.channel_type, host = %model.host, "team channel created");
        Ok(view_team(model))
    }

    pub async fn list_team_channels(
        &self,
        caller: Caller,
        _request: Empty,
    ) -> ServiceResult<TeamChannels> {
        caller.require_any(&[Role::Admin])?;
        let rows = team_channel::Entity::find()
            .filter(team_channel::Column::TenantId.eq(caller.tenant_id.clone()))
            .order_by_asc(team_channel::Column::Id)
            .all(&self.db)
            .await?;
        Ok(TeamChannels {
            items: rows.into_iter().map(view_team).collect(),
        })
    }

    /// Removes a team channel; its pending messages are skipped.
    pub async fn delete_team_channel(
        &self,
        caller: Caller,
        request: TeamChannelRef,
    ) -> ServiceResult<Empty> {
        caller.require_any(&[Role::Admin])?;
        let result = team_channel::Entity::delete_many()
            .filter(team_channel::Column::Id.eq(request.channel_id.clone()))
            .filter(team_channel::Column::TenantId.eq(caller.tenant_id.clone()))
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(ServiceError::not_found(format!(
                "no team channel {}",
                request.channel_id
            )));
        }
        tracing::info!(tenant_id = %caller.tenant_id, channel_id = %request.channel_id, "team channel deleted");
        Ok(Empty {})
    }

    /// What was posted to a team channel (newest first).
    pub async fn team_channel_deliveries(
        &self,
        caller: Caller,
        request: TeamChannelRef,
    ) -> ServiceResult<ChannelDeliveries> {
        caller.require_any(&[Role::Admin])?;
        let exists = team_channel::Entity::find_by_id(request.channel_id.clone())
            .filter(team_channel::Column::TenantId.eq(caller.tenant_id.clone()))
            .one(&self.db)
            .await?;
        if exists.is_none() {
            return Err(ServiceError::not_found(format!(
                "no team channel {}",
                request.channel_id
            )));
        }
        let rows = channel_message::Entity::find()
            .filter(channel_message::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(channel_message::Column::Recipient.eq(format!("team:{}", request.channel_id)))
            .order_by_desc(channel_message::Column::Id)
            .limit(100)
            .all(&self.db)
            .await?;
        Ok(ChannelDeliveries {
            items: rows.into_iter().map(view_delivery).collect(),
        })
    }
}

impl Channels {
    /// Registers the caller's device for push; registering a token again returns the same
    /// device.
    pub async fn register_device(
        &self,
        caller: Caller,
        request: RegisterDevice,
    ) -> ServiceResult<Device> {
        let platform = match request.platform {
            PushPlatform::Fcm => "fcm",
            PushPlatform::Apns => "apns",
        };
        if !self.push.platforms().contains(&platform) {
            return Err(ServiceError::invalid(format!(
                "platform: push to {platform} is not configured on this installation"
            )));
        }
        let token = request.token.trim();
        let valid = match request.platform {
            // APNs device tokens are hexadecimal.
            PushPlatform::Apns => {
                (32..=200).contains(&token.len()) && token.chars().all(|c| c.is_ascii_hexdigit())
            }
            PushPlatform::Fcm => {
                (20..=4096).contains(&token.len())
                    && token
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c))
            }
        };
        if !valid {
            return Err(ServiceError::invalid(format!(
                "token: not a {platform} device token"
            )));
        }
        let name = request.name.trim();
        if name.chars().count() > 100 {
            return Err(ServiceError::invalid("name must be at most 100 characters"));
        }
        let mine = || {
            push_device::Entity::find()
                .filter(push_device::Column::TenantId.eq(caller.tenant_id.clone()))
                .filter(push_device::Column::UserId.eq(caller.user_id.clone()))
        };
        if let Some(existing) = mine()
            .filter(push_device::Column::Platform.eq(platform))
            .filter(push_device::Column::Token.eq(token))
            .one(&self.db)
            .await?
        {
            return Ok(view_device(existing));
        }
        if mine().count(&self.db).await? >= MAX_DEVICES {
            return Err(ServiceError::conflict(format!(
                "a person registers at most {MAX_DEVICES} devices; remove one first"
            )));
        }
        // A token moves with its device: it is nobody else's any more.
        push_device::Entity::delete_many()
            .filter(push_device::Column::Platform.eq(platform))
            .filter(push_device::Column::Token.eq(token))
            .exec(&self.db)
            .await?;
        let model = push_device::ActiveModel {
            id: Set(format!("dev_{}", uuid::Uuid::now_v7().simple())),
            tenant_id: Set(caller.tenant_id.clone()),
            user_id: Set(caller.user_id.clone()),
            platform: Set(platform.to_string()),
            token: Set(token.to_string()),
            name: Set(name.to_string()),
            created_at: Set(chrono::Utc::now()),
            last_used_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        tracing::info!(tenant_id = %caller.tenant_id, user_id = %caller.user_id, device_id = %model.id, %platform, "push device registered");
        Ok(view_device(model))
    }

    pub async fn list_devices(&self, caller: Caller, _request: Empty) -> ServiceResult<Devices> {
        let rows = push_device::Entity::find()
            .filter(push_device::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(push_device::Column::UserId.eq(caller.user_id.clone()))
            .order_by_asc(push_device::Column::Id)
            .all(&self.db)
            .await?;
        Ok(Devices {
            items: rows.into_iter().map(view_device).collect(),
        })
    }

    pub async fn remove_device(&self, caller: Caller, request: DeviceRef) -> ServiceResult<Empty> {
        let result = push_device::Entity::delete_many()
            .filter(push_device::Column::Id.eq(request.device_id.clone()))
            .filter(push_device::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(push_device::Column::UserId.eq(caller.user_id.clone()))
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(ServiceError::not_found(format!(
                "no device {}",
                request.device_id
            )));
        }
        Ok(Empty {})
    }
}
