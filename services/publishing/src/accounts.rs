//! Connecting accounts (OAuth 2.0 authorization code with PKCE) and token custody.

use crate::NetworkClient;
use crate::entities::{account, oauth_state, publication};
use base64::Engine;
use chorus_api::Empty;
use chorus_api::publishing::{
    Account, AccountRef, AccountStatus, AppPasswordConnect, CompleteConnect, ConnectStarted,
    ShareMetrics, StartConnect,
};
use chorus_api::scheduling::ShareRef;
use chorus_kit::crypto::KeyRing;
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use chorus_social::{Network, NetworkError, TokenSet};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use sha2::Digest;
use std::collections::HashMap;
use std::sync::Arc;

pub struct Accounts {
    pub db: DatabaseConnection,
    pub outbox: chorus_bus::Outbox,
    pub keys: KeyRing,
    pub networks: Arc<HashMap<Network, NetworkClient>>,
}

const STATE_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

fn random_token() -> String {
    let bytes = [
        *uuid::Uuid::new_v4().as_bytes(),
        *uuid::Uuid::new_v4().as_bytes(),
    ]
    .concat();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn to_account(model: &account::Model) -> Account {
    Account {
        id: model.id.clone(),
        user_id: model.user_id.clone(),
        network: model.network.clone(),
        external_id: model.external_id.clone(),
        display_name: model.display_name.clone(),
        status: match model.status.as_str() {
            "needs_reconnect" => AccountStatus::NeedsReconnect,
            "disconnected" => AccountStatus::Disconnected,
            _ => AccountStatus::Connected,
        },
        connected_at: model.connected_at,
        access_expires_at: model.access_expires_at,
    }
}

fn network_error(error: NetworkError) -> ServiceError {
    match error {
        NetworkError::Unauthorized(message)
        | NetworkError::Forbidden(message)
        | NetworkError::Invalid(message) => {
            ServiceError::invalid(format!("the network refused: {message}"))
        }
        other => ServiceError::unavailable(format!("the network could not be reached: {other}")),
    }
}

impl Accounts {
    fn client(&self, network: &str) -> ServiceResult<(Network, &NetworkClient)> {
        let parsed = Network::parse(network)
            .ok_or_else(|| ServiceError::invalid(format!("unknown network {network}")))?;
        let client = self
            .networks
            .get(&parsed)
            .ok_or_else(|| ServiceError::invalid(format!("network {network} is not enabled")))?;
        Ok((parsed, client))
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id, network = %request.network))]
    pub async fn start_connect(
        &self,
        caller: Caller,
        request: StartConnect,
    ) -> ServiceResult<ConnectStarted> {
        caller.require_any(&[Role::Advocate])?;
        let (network, client) = self.client(&request.network)?;
        if network.connect_method() != chorus_social::ConnectMethod::OAuth {
            return Err(ServiceError::invalid(format!(
                "{network} accounts connect with an app password: POST /v1/accounts/app-password"
            )));
        }
        let state = random_token();
        let code_verifier = random_token();
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(code_verifier.as_bytes()));
        let row = oauth_state::ActiveModel {
            state: Set(state.clone()),
            tenant_id: Set(caller.tenant_id.clone()),
            user_id: Set(caller.user_id.clone()),
            network: Set(network.as_str().to_string()),
            code_verifier: Set(code_verifier),
            created_at: Set(chrono::Utc::now()),
        };
        oauth_state::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await?;
        Ok(ConnectStarted {
            authorize_url: client.adapter.authorize_url(&state, &challenge),
            state,
        })
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id))]
    pub async fn complete_connect(
        &self,
        caller: Caller,
        request: CompleteConnect,
    ) -> ServiceResult<Account> {
        caller.require_any(&[Role::Advocate])?;
        let pending = oauth_state::Entity::find_by_id(request.state.clone())
            .filter(oauth_state::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(oauth_state::Column::UserId.eq(caller.user_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::invalid("unknown or already used connection state"))?;
        oauth_state::Entity::delete_by_id(pending.state.clone())
            .exec(&self.db)
            .await?;
        if chrono::Utc::now() - pending.created_at > STATE_LIFETIME {
            return Err(ServiceError::invalid(
                "the connection took too long; start again",
            ));
        }
        let (network, client) = self.client(&pending.network)?;
        let tokens = client
            .adapter
            .exchange_code(&request.code, &pending.code_verifier)
            .await
            .map_err(network_error)?;
        self.store_connection(&caller, network, client, tokens)
            .await
    }

    /// Connects an account of a network that signs in with an app password (Bluesky). The
    /// password is used once to open a session and never stored; only the session tokens
    /// are kept, encrypted.
    #[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id, network = %request.network))]
    pub async fn connect_with_app_password(
        &self,
        caller: Caller,
        request: AppPasswordConnect,
    ) -> ServiceResult<Account> {
        caller.require_any(&[Role::Advocate])?;
        let (network, client) = self.client(&request.network)?;
        if network.connect_method() != chorus_social::ConnectMethod::AppPassword {
            return Err(ServiceError::invalid(format!(
                "{network} accounts connect through /v1/accounts/connect (OAuth)"
            )));
        }
        let identifier = request.identifier.trim();
        if identifier.is_empty() || identifier.len() > 253 {
            return Err(ServiceError::invalid(
                "identifier must be the account's handle or email (1 to 253 characters)",
            ));
        }
        if request.app_password.is_empty() || request.app_password.len() > 128 {
            return Err(ServiceError::invalid(
                "app_password must be an app password created in the network's settings",
            ));
        }
        let tokens = client
            .adapter
            .create_session(identifier, &request.app_password)
            .await
            .map_err(network_error)?;
        self.store_connection(&caller, network, client, tokens)
            .await
    }

    /// Stores (or renews) the caller's account after the network gave tokens.
    async fn store_connection(
        &self,
        caller: &Caller,
        network: Network,
        client: &NetworkClient,
        tokens: TokenSet,
    ) -> ServiceResult<Account> {
        let profile = client
            .adapter
            .profile(&tokens.access_token)
            .await
            .map_err(network_error)?;
        // Best effort: the audience is the base of potential reach, not a reason to refuse.
        let audience_size = client
            .adapter
            .audience_size(&tokens.access_token)
            .await
            .ok()
            .flatten();
        let existing = account::Entity::find()
            .filter(account::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(account::Column::UserId.eq(caller.user_id.clone()))
            .filter(account::Column::Network.eq(network.as_str()))
            .filter(account::Column::ExternalId.eq(profile.id.clone()))
            .one(&self.db)
            .await?;
        let now = chrono::Utc::now();
        let (key_id, access_token) = self.keys.encrypt(&tokens.access_token);
        let refresh_token = tokens
            .refresh_token
            .as_deref()
            .map(|token| self.keys.encrypt(token).1);
        let is_new = existing.is_none();
        let mut row: account::ActiveModel = match existing {
            Some(existing) => existing.into(),
            None => account::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                tenant_id: Set(caller.tenant_id.clone()),
                user_id: Set(caller.user_id.clone()),
                network: Set(network.as_str().to_string()),
                external_id: Set(profile.id.clone()),
                connected_at: Set(now),
                ..Default::default()
            },
        };
        row.display_name = Set(profile.display_name.clone());
        row.status = Set("connected".to_string());
        row.key_id = Set(key_id);
        row.access_token = Set(access_token);
        row.refresh_token = Set(refresh_token);
        row.access_expires_at = Set(tokens.access_expires_at);
        row.refresh_expires_at = Set(tokens.refresh_expires_at);
        row.audience_size = Set(audience_size);
        row.updated_at = Set(now);
        let model = if is_new {
            account::Entity::insert(row)
                .exec_with_returning(&self.db)
                .await?
        } else {
            row.update(&self.db).await?
        };
        tracing::info!(account_id = %model.id, network = %network, "account connected");
        Ok(to_account(&model))
    }

    /// An account of the caller (never someone else's).
    pub async fn own_account(
        &self,
        caller: &Caller,
        account_id: &str,
    ) -> ServiceResult<account::Model> {
        account::Entity::find_by_id(account_id.to_string())
            .filter(account::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(account::Column::UserId.eq(caller.user_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no account {account_id} of yours")))
    }

    pub async fn get_account(&self, caller: Caller, request: AccountRef) -> ServiceResult<Account> {
        Ok(to_account(
            &self.own_account(&caller, &request.account_id).await?,
        ))
    }

    /// Disconnects an account of the caller: its tokens are deleted at once, and its pending
    /// shares are cancelled (scheduling consumes `account_disconnected`). Disconnecting twice
    /// answers the disconnected account again.
    #[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id, account_id = %request.account_id))]
    pub async fn disconnect(&self, caller: Caller, request: AccountRef) -> ServiceResult<Account> {
        let model = self.own_account(&caller, &request.account_id).await?;
        if model.status == "disconnected" {
            return Ok(to_account(&model));
        }
        let txn = sea_orm::TransactionTrait::begin(&self.db).await?;
        let row = account::ActiveModel {
            id: Set(model.id.clone()),
            status: Set("disconnected".to_string()),
            access_token: Set(Vec::new()),
            refresh_token: Set(None),
            access_expires_at: Set(None),
            refresh_expires_at: Set(None),
            updated_at: Set(chrono::Utc::now()),
            ..Default::default()
        };
        let updated = row.update(&txn).await?;
        let event = chorus_events::share::v1::AccountDisconnected {
            tenant_id: caller.tenant_id.clone(),
            account_id: model.id.clone(),
            user_id: model.user_id.clone(),
            network: model.network.clone(),
            reason: "the account was disconnected".to_string(),
        };
        self.outbox.enqueue(&txn, &event).await?;
        txn.commit().await?;
        self.outbox.wake();
        tracing::info!(network = %model.network, "account disconnected, tokens deleted");
        Ok(to_account(&updated))
    }

    pub async fn list_accounts(
        &self,
        caller: Caller,
        _request: Empty,
    ) -> ServiceResult<Vec<Account>> {
        let rows = account::Entity::find()
            .filter(account::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(account::Column::UserId.eq(caller.user_id.clone()))
            .all(&self.db)
            .await?;
        Ok(rows.iter().map(to_account).collect())
    }

    pub fn access_token(&self, account: &account::Model) -> ServiceResult<String> {
        self.keys
            .decrypt(&account.key_id, &account.access_token)
            .map_err(|error| ServiceError::internal(&error))
    }

    /// Refreshes the account's tokens with the network and stores them.
    pub async fn refresh(&self, account: &account::Model) -> Result<Option<String>, ServiceError> {
        let Some(refresh_stored) = &account.refresh_token else {
            return Ok(None);
        };
        let refresh_token = self
            .keys
            .decrypt(&account.key_id, refresh_stored)
            .map_err(|error| ServiceError::internal(&error))?;
        let (_, client) = self.client(&account.network)?;
        let tokens: TokenSet = match client.adapter.refresh(&refresh_token).await {
            Ok(tokens) => tokens,
            Err(NetworkError::Unauthorized(_)) | Err(NetworkError::Invalid(_)) => return Ok(None),
            Err(other) => return Err(ServiceError::unavailable(other.to_string())),
        };
        let (key_id, access_token) = self.keys.encrypt(&tokens.access_token);
        // Both tokens are encrypted with the active key, so the row's one key id fits both
        // (a network that keeps the refresh token returns none: re-encrypt the one we have).
        let refresh_plain = tokens.refresh_token.as_deref().unwrap_or(&refresh_token);
        let refresh = Some(self.keys.encrypt(refresh_plain).1);
        let mut row: account::ActiveModel = account.clone().into();
        row.key_id = Set(key_id);
        row.access_token = Set(access_token);
        row.refresh_token = Set(refresh);
        row.access_expires_at = Set(tokens.access_expires_at);
        row.updated_at = Set(chrono::Utc::now());
        row.update(&self.db).await?;
        tracing::info!(account_id = %account.id, "access token refreshed");
        Ok(Some(tokens.access_token))
    }

    /// Reads the engagement totals of a published share from its network (for engagement).
    pub async fn share_metrics(
        &self,
        caller: Caller,
        request: ShareRef,
    ) -> ServiceResult<ShareMetrics> {
        let publication = publication::Entity::find_by_id(request.share_id.clone())
            .filter(publication::Column::TenantId.eq(caller.tenant_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                ServiceError::not_found(format!("no publication of share {}", request.share_id))
            })?;
        let Some(external_id) = publication.external_id.clone() else {
            return Err(ServiceError::conflict("the share is not published"));
        };
        let account = account::Entity::find_by_id(publication.account_id.clone())
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found("the share's account is gone"))?;
        let (_, client) = self.client(&account.network)?;
        let token = self.access_token(&account)?;
        let waited = client.reads.until_ready().await;
        tracing::debug!(waited_ms = waited.as_millis() as u64, "metrics read slot");
        let metrics = client
            .adapter
            .metrics(&token, &external_id)
            .await
            .map_err(network_error)?;
        Ok(ShareMetrics {
            reactions: metrics.reactions,
            comments: metrics.comments,
            reshares: metrics.reshares,
            impressions: metrics.impressions,
        })
    }
}

/// Deletes an erased person's connected accounts with their tokens (`user.erased`); what
/// they published stays counted without their name or words. Their posts on the networks
/// are their own and stay.
pub async fn forget_person(
    db: &sea_orm::DatabaseConnection,
    tenant_id: &str,
    user_id: &str,
) -> Result<(), chorus_bus::consumer::HandlerError> {
    let rows = chorus_kit::db::erase_person(db, tenant_id, user_id, crate::PERSONAL_DATA).await?;
    tracing::info!(rows, "accounts and tokens of an erased person deleted");
    Ok(())
}
