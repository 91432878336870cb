//! API keys for integrators: `chk_<tenant>_<id>_<secret>`, shown once, stored as a SHA-256
//! hash, limited to roles the user holds (never `advocate`), revocable, with the time of
//! last use.

use crate::entities::{api_key, user};
use crate::rpc::Identity;
use chorus_api::Empty;
use chorus_api::identity::{
    ApiKey, ApiKeyCreated, ApiKeyRef, ApiKeys, CreateApiKey, ResolveApiKey, User,
};
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "chk_";

/// Keys a tenant may hold (revoked ones included).
const MAX_KEYS: u64 = 100;

/// Roles a key may carry: never `advocate`, so no key shares on an employee's account.
const KEY_ROLES: &[Role] = &[Role::Integrator, Role::Curator, Role::Approver, Role::Admin];

fn hash(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn random_hex(bytes: usize) -> String {
    let mut out = String::new();
    while out.len() < bytes * 2 {
        out.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    out.truncate(bytes * 2);
    out
}

/// The tenant and key id of a presented key, when it has the shape of one.
pub fn parse(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(PREFIX)?;
    let (tenant, rest) = rest.split_once('_')?;
    let (id, secret) = rest.split_once('_')?;
    (!tenant.is_empty() && id.len() == 12 && secret.len() == 64).then_some((tenant, id))
}

fn view(model: api_key::Model) -> ApiKey {
    ApiKey {
        prefix: format!("{PREFIX}{}_{}…", model.tenant_id, model.id),
        id: model.id,
        user_id: model.user_id,
        name: model.name,
        roles: model.roles.split(',').filter_map(Role::parse).collect(),
        created_at: model.created_at,
        last_used_at: model.last_used_at,
        revoked_at: model.revoked_at,
    }
}

impl Identity {
    pub async fn create_api_key(
        &self,
        caller: Caller,
        request: CreateApiKey,
    ) -> ServiceResult<ApiKeyCreated> {
        caller.require_any(&[Role::Admin])?;
        let name = request.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ServiceError::invalid("name must have 1 to 100 characters"));
        }
        if request.roles.is_empty() {
            return Err(ServiceError::invalid("roles: name at least one role"));
        }
        let owner = user::Entity::find_by_id((caller.tenant_id.clone(), request.user_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("unknown user {}", request.user_id)))?;
        let held: Vec<Role> = owner.roles.split(',').filter_map(Role::parse).collect();
        for role in &request.roles {
            if !KEY_ROLES.contains(role) {
                return Err(ServiceError::invalid(format!(
                    "roles: an API key cannot carry the role {} (keys never share on anyone's accounts)",
                    role.as_str()
                )));
            }
            if !held.contains(role) {
                return Err(ServiceError::invalid(format!(
                    "roles: {} does not hold the role {}",
                    owner.id,
                    role.as_str()
                )));
            }
        }
        let count = api_key::Entity::find()
            .filter(api_key::Column::TenantId.eq(caller.tenant_id.clone()))
            .count(&self.db)
            .await?;
        if count >= MAX_KEYS {
            return Err(ServiceError::conflict(format!(
                "a tenant keeps at most {MAX_KEYS} API keys"
            )));
        }
        let id = random_hex(6);
        let key = format!("{PREFIX}{}_{id}_{}", caller.tenant_id, random_hex(32));
        let mut roles: Vec<&str> = request.roles.iter().map(|role| role.as_str()).collect();
        roles.dedup();
        let model = api_key::ActiveModel {
            id: Set(id),
            tenant_id: Set(caller.tenant_id.clone()),
            user_id: Set(owner.id.clone()),
            name: Set(name.to_string()),
            roles: Set(roles.join(",")),
            hash: Set(hash(&key)),
            created_at: Set(chrono::Utc::now()),
            created_by: Set(caller.user_id.clone()),
            last_used_at: Set(None),
            revoked_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        tracing::info!(tenant_id = %caller.tenant_id, key_id = %model.id, user_id = %model.user_id, roles = %model.roles, "API key created");
        Ok(ApiKeyCreated {
            api_key: view(model),
            key,
        })
    }

    pub async fn list_api_keys(&self, caller: Caller, _request: Empty) -> ServiceResult<ApiKeys> {
        caller.require_any(&[Role::Admin])?;
        let rows = api_key::Entity::find()
            .filter(api_key::Column::TenantId.eq(caller.tenant_id.clone()))
            .order_by_asc(api_key::Column::CreatedAt)
            .all(&self.db)
            .await?;
        Ok(ApiKeys {
            items: rows.into_iter().map(view).collect(),
        })
    }

    pub async fn revoke_api_key(
        &self,
        caller: Caller,
        request: ApiKeyRef,
    ) -> ServiceResult<ApiKey> {
        caller.require_any(&[Role::Admin])?;
        let found = api_key::Entity::find_by_id(request.key_id.clone())
            .filter(api_key::Column::TenantId.eq(caller.tenant_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no API key {}", request.key_id)))?;
        if found.revoked_at.is_none() {
            api_key::Entity::update_many()
                .col_expr(api_key::Column::RevokedAt, Expr::value(chrono::Utc::now()))
                .filter(api_key::Column::Id.eq(found.id.clone()))
                .exec(&self.db)
                .await?;
            tracing::info!(tenant_id = %caller.tenant_id, key_id = %found.id, "API key revoked");
        }
        let found = api_key::Entity::find_by_id(found.id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found("the key vanished"))?;
        Ok(view(found))
    }

    /// The user a presented key acts as, with the key's roles that the user still holds.
    /// Internal: the gateway calls it as the system of the key's tenant.
    pub async fn resolve_api_key(
        &self,
        caller: Caller,
        request: ResolveApiKey,
    ) -> ServiceResult<User> {
        let refused = || ServiceError::unauthorized("this API key is not valid");
        let (tenant, id) = parse(&request.key).ok_or_else(refused)?;
        if tenant != caller.tenant_id {
            return Err(refused());
        }
        let found = api_key::Entity::find_by_id(id.to_string())
            .filter(api_key::Column::TenantId.eq(tenant))
            .one(&self.db)
            .await?
            .ok_or_else(refused)?;
        // Compare digests of equal length without an early exit.
        let presented = hash(&request.key);
        let same = presented
            .bytes()
            .zip(found.hash.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
            && presented.len() == found.hash.len();
        if !same {
            return Err(refused());
        }
        if found.revoked_at.is_some() {
            return Err(ServiceError::unauthorized("this API key was revoked"));
        }
        let owner = user::Entity::find_by_id((found.tenant_id.clone(), found.user_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(refused)?;
        if !owner.active {
            return Err(ServiceError::forbidden("the key's user is deactivated"));
        }
        let now = chrono::Utc::now();
        if found
            .last_used_at
            .is_none_or(|at| now - at > chrono::TimeDelta::minutes(1))
        {
            api_key::Entity::update_many()
                .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
                .filter(api_key::Column::Id.eq(found.id.clone()))
                .exec(&self.db)
                .await?;
        }
        let held: Vec<Role> = owner.roles.split(',').filter_map(Role::parse).collect();
        let mut user = crate::rpc::to_user(owner);
        user.roles = found
            .roles
            .split(',')
            .filter_map(Role::parse)
            .filter(|role| held.contains(role) && KEY_ROLES.contains(role))
            .collect();
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_have_one_shape() {
        let key = format!("chk_acme_{}_{}", "a".repeat(12), "b".repeat(64));
        assert_eq!(super::parse(&key), Some(("acme", "aaaaaaaaaaaa")));
        assert_eq!(super::parse("chk_acme_short_x"), None);
        assert_eq!(super::parse("Bearer"), None);
        assert_eq!(super::random_hex(32).len(), 64);
        assert_ne!(super::random_hex(32), super::random_hex(32));
    }
}
