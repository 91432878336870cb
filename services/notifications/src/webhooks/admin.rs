//! Requests from the gateway: endpoints, secrets, deliveries and replays, settings.

use super::{
    ENABLED, FAILED, PENDING, ROTATION_GRACE, SUCCEEDED, Webhooks, destination, signing, view,
};
use crate::entities::{webhook_delivery, webhook_endpoint, webhook_settings};
use chorus_api::Empty;
use chorus_api::notifications::{
    CreateWebhookEndpoint, WebhookDeliveries, WebhookDelivery, WebhookDeliveryRef,
    WebhookDeliveryStatus, WebhookEndpoint, WebhookEndpointCreated, WebhookEndpointRef,
    WebhookEndpoints, WebhookEventTypes, WebhookSecretRotated, WebhookSettings,
};
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};

/// Endpoints a tenant may keep.
const MAX_ENDPOINTS: u64 = 50;

/// Who manages endpoints: admins and integrators.
const MANAGERS: &[Role] = &[Role::Admin, Role::Integrator];

impl Webhooks {
    async fn owned(
        &self,
        caller: &Caller,
        endpoint_id: &str,
    ) -> ServiceResult<webhook_endpoint::Model> {
        webhook_endpoint::Entity::find_by_id(endpoint_id.to_string())
            .filter(webhook_endpoint::Column::TenantId.eq(caller.tenant_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no webhook endpoint {endpoint_id}")))
    }

    pub async fn event_types(
        &self,
        caller: Caller,
        _request: Empty,
    ) -> ServiceResult<WebhookEventTypes> {
        caller.require_any(MANAGERS)?;
        Ok(WebhookEventTypes {
            items: chorus_events::event_type_names(),
        })
    }

    pub async fn create_endpoint(
        &self,
        caller: Caller,
        request: CreateWebhookEndpoint,
    ) -> ServiceResult<WebhookEndpointCreated> {
        caller.require_any(MANAGERS)?;
        if request.description.chars().count() > 500 {
            return Err(ServiceError::invalid(
                "description must be at most 500 characters",
            ));
        }
        let known = chorus_events::event_type_names();
        let mut event_types: Vec<String> = Vec::new();
        for name in &request.event_types {
            if !known.contains(name) {
                return Err(ServiceError::invalid(format!(
                    "event_types: unknown event type {name:?} (GET /v1/webhooks/event-types lists them)"
                )));
            }
            if !event_types.contains(name) {
                event_types.push(name.clone());
            }
        }
        let allow_private = self.allow_private(&caller.tenant_id).await?;
        let url = destination::parse(request.url.trim(), allow_private)
            .map_err(|refused| ServiceError::invalid(format!("url: {refused}")))?;
        destination::resolve(&url, allow_private)
            .await
            .map_err(|refused| ServiceError::invalid(format!("url: {refused}")))?;
        let count = webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::TenantId.eq(caller.tenant_id.clone()))
            .count(&self.db)
            .await?;
        if count >= MAX_ENDPOINTS {
            return Err(ServiceError::conflict(format!(
                "a tenant keeps at most {MAX_ENDPOINTS} webhook endpoints"
            )));
        }
        let secret = signing::new_secret();
        let (key_id, cipher) = self.keys.encrypt(&secret);
        let now = chrono::Utc::now();
        let model = webhook_endpoint::ActiveModel {
            id: Set(format!("ep_{}", uuid::Uuid::now_v7().simple())),
            tenant_id: Set(caller.tenant_id.clone()),
            url: Set(url.to_string()),
            description: Set(request.description.trim().to_string()),
            event_types: Set(event_types.join(",")),
            secret_key_id: Set(key_id),
            secret_cipher: Set(cipher),
            previous_key_id: Set(None),
            previous_cipher: Set(None),
            previous_expires_at: Set(None),
            status: Set(ENABLED.to_string()),
            disabled_reason: Set(None),
            failing_since: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await?;
        tracing::info!(tenant_id = %caller.tenant_id, endpoint_id = %model.id, url = %model.url, "webhook endpoint created");
        Ok(WebhookEndpointCreated {
            endpoint: view(model),
            secret,
        })
    }

    pub async fn list_endpoints(
        &self,
        caller: Caller,
        _request: Empty,
    ) -> ServiceResult<WebhookEndpoints> {
        caller.require_any(MANAGERS)?;
        let rows = webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::TenantId.eq(caller.tenant_id.clone()))
            .order_by_asc(webhook_endpoint::Column::CreatedAt)
            .all(&self.db)
            .await?;
        Ok(WebhookEndpoints {
            items: rows.into_iter().map(view).collect(),
        })
    }

    pub async fn get_endpoint(
        &self,
        caller: Caller,
        request: WebhookEndpointRef,
    ) -> ServiceResult<WebhookEndpoint> {
        caller.require_any(MANAGERS)?;
        Ok(view(self.owned(&caller, &request.endpoint_id).await?))
    }

    pub async fn delete_endpoint(
        &self,
        caller: Caller,
        request: WebhookEndpointRef,
    ) -> ServiceResult<Empty> {
        caller.require_any(MANAGERS)?;
        let endpoint = self.owned(&caller, &request.endpoint_id).await?;
        let txn = self.db.begin().await?;
        webhook_delivery::Entity::delete_many()
            .filter(webhook_delivery::Column::EndpointId.eq(endpoint.id.clone()))
            .exec(&txn)
            .await?;
        webhook_endpoint::Entity::delete_by_id(endpoint.id.clone())
            .exec(&txn)
            .await?;
        txn.commit().await?;
        tracing::info!(tenant_id = %caller.tenant_id, endpoint_id = %endpoint.id, "webhook endpoint deleted");
        Ok(Empty {})
    }

    /// Enables a disabled endpoint again (its failed deliveries stay failed until replayed).
    pub async fn enable_endpoint(
        &self,
        caller: Caller,
        request: WebhookEndpointRef,
    ) -> ServiceResult<WebhookEndpoint> {
        caller.require_any(MANAGERS)?;
        let endpoint = self.owned(&caller, &request.endpoint_id).await?;
        let mut active: webhook_endpoint::ActiveModel = endpoint.into();
        active.status = Set(ENABLED.to_string());
        active.disabled_reason = Set(None);
        active.failing_since = Set(None);
        active.updated_at = Set(chrono::Utc::now());
        let model = active.update(&self.db).await?;
        tracing::info!(tenant_id = %caller.tenant_id, endpoint_id = %model.id, "webhook endpoint enabled");
        Ok(view(model))
    }

    /// A new secret; the old one keeps signing beside it for 24 hours.
    pub async fn rotate_secret(
        &self,
        caller: Caller,
        request: WebhookEndpointRef,
    ) -> ServiceResult<WebhookSecretRotated> {
        caller.require_any(MANAGERS)?;
        let endpoint = self.owned(&caller, &request.endpoint_id).await?;
        let now = chrono::Utc::now();
        let secret = signing::new_secret();
        let (key_id, cipher) = self.keys.encrypt(&secret);
        let until = now + ROTATION_GRACE;
        let mut active: webhook_endpoint::ActiveModel = endpoint.clone().into();
        active.previous_key_id = Set(Some(endpoint.secret_key_id));
        active.previous_cipher = Set(Some(endpoint.secret_cipher));
        active.previous_expires_at = Set(Some(until));
        active.secret_key_id = Set(key_id);
        active.secret_cipher = Set(cipher);
        active.updated_at = Set(now);
        active.update(&self.db).await?;
        tracing::info!(tenant_id = %caller.tenant_id, endpoint_id = %endpoint.id, "webhook secret rotated");
        Ok(WebhookSecretRotated {
            secret,
            previous_valid_until: until,
        })
    }

    pub async fn list_deliveries(
        &self,
        caller: Caller,
        request: WebhookEndpointRef,
    ) -> ServiceResult<WebhookDeliveries> {
        caller.require_any(MANAGERS)?;
        let endpoint = self.owned(&caller, &request.endpoint_id).await?;
        let rows = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::EndpointId.eq(endpoint.id))
            .order_by_desc(webhook_delivery::Column::CreatedAt)
            .order_by_desc(webhook_delivery::Column::Id)
            .limit(100)
            .all(&self.db)
            .await?;
        Ok(WebhookDeliveries {
            items: rows.into_iter().map(delivery_view).collect(),
        })
    }

    /// Sends a message to the endpoint again from the first attempt (the same
    /// `webhook-id`, so a receiver that already has it can de-duplicate).
    pub async fn replay(
        &self,
        caller: Caller,
        request: WebhookDeliveryRef,
    ) -> ServiceResult<WebhookDelivery> {
        caller.require_any(MANAGERS)?;
        let endpoint = self.owned(&caller, &request.endpoint_id).await?;
        if endpoint.status != ENABLED {
            return Err(ServiceError::conflict(
                "the endpoint is disabled; enable it before replaying",
            ));
        }
        let delivery = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::EndpointId.eq(endpoint.id.clone()))
            .filter(webhook_delivery::Column::MessageId.eq(request.message_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                ServiceError::not_found(format!(
                    "no message {} for this endpoint",
                    request.message_id
                ))
            })?;
        if delivery.status == PENDING {
            return Err(ServiceError::conflict(
                "the message is still being delivered",
            ));
        }
        let now = chrono::Utc::now();
        let mut active: webhook_delivery::ActiveModel = delivery.into();
        active.status = Set(PENDING.to_string());
        active.attempts = Set(0);
        active.next_attempt_at = Set(Some(now));
        active.lease_owner = Set(None);
        active.lease_until = Set(None);
        active.updated_at = Set(now);
        let model = active.update(&self.db).await?;
        self.wake.notify_one();
        tracing::info!(tenant_id = %caller.tenant_id, endpoint_id = %endpoint.id, message_id = %model.message_id, "webhook message replayed");
        Ok(delivery_view(model))
    }

    /// Replays every failed message of the endpoint (after an outage); returns how many.
    pub async fn replay_failed(
        &self,
        caller: Caller,
        request: WebhookEndpointRef,
    ) -> ServiceResult<WebhookDeliveries> {
        caller.require_any(MANAGERS)?;
        let endpoint = self.owned(&caller, &request.endpoint_id).await?;
        if endpoint.status != ENABLED {
            return Err(ServiceError::conflict(
                "the endpoint is disabled; enable it before replaying",
            ));
        }
        let now = chrono::Utc::now();
        webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::Status, Expr::value(PENDING))
            .col_expr(webhook_delivery::Column::Attempts, Expr::value(0))
            .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(now))
            .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(now))
            .filter(webhook_delivery::Column::EndpointId.eq(endpoint.id.clone()))
            .filter(webhook_delivery::Column::Status.eq(FAILED))
            .exec(&self.db)
            .await?;
        self.wake.notify_one();
        self.list_deliveries(caller, request).await
    }

    pub async fn get_settings(
        &self,
        caller: Caller,
        _request: Empty,
    ) -> ServiceResult<WebhookSettings> {
        caller.require_any(MANAGERS)?;
        Ok(WebhookSettings {
            allow_private_destinations: self.allow_private(&caller.tenant_id).await?,
        })
    }

    /// Only admins change where webhooks may go.
    pub async fn set_settings(
        &self,
        caller: Caller,
        request: WebhookSettings,
    ) -> ServiceResult<WebhookSettings> {
        caller.require_any(&[Role::Admin])?;
        webhook_settings::Entity::insert(webhook_settings::ActiveModel {
            tenant_id: Set(caller.tenant_id.clone()),
            allow_private_destinations: Set(request.allow_private_destinations),
            updated_at: Set(chrono::Utc::now()),
        })
        .on_conflict(
            OnConflict::column(webhook_settings::Column::TenantId)
                .update_columns([
                    webhook_settings::Column::AllowPrivateDestinations,
                    webhook_settings::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec(&self.db)
        .await?;
        tracing::info!(tenant_id = %caller.tenant_id, allow_private_destinations = request.allow_private_destinations, "webhook settings changed");
        Ok(request)
    }
}

fn delivery_view(row: webhook_delivery::Model) -> WebhookDelivery {
    WebhookDelivery {
        message_id: row.message_id,
        event_type: row.event_type,
        status: match row.status.as_str() {
            SUCCEEDED => WebhookDeliveryStatus::Succeeded,
            FAILED => WebhookDeliveryStatus::Failed,
            _ => WebhookDeliveryStatus::Pending,
        },
        attempts: row.attempts,
        next_attempt_at: row.next_attempt_at,
        last_status_code: row.last_status_code,
        last_error: row.last_error,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}
