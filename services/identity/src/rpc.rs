use crate::entities::{tenant, user};
use chorus_api::Empty;
use chorus_api::identity::{CreateTenant, CreateUser, GetUser, Tenant, User};
use chorus_bus::Outbox;
use chorus_events::identity::v1 as events;
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use sea_orm::{DatabaseConnection, EntityTrait, Set, TransactionTrait};

pub struct Identity {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
}

pub(crate) fn to_user(model: user::Model) -> User {
    User {
        id: model.id,
        tenant_id: model.tenant_id,
        display_name: model.display_name,
        email: model.email,
        roles: model.roles.split(',').filter_map(Role::parse).collect(),
        department: model.department,
        location: model.location,
        language: model.language,
        time_zone: model.time_zone,
        active: model.active,
        created_at: model.created_at,
        manager_id: model.manager_id,
        guidelines_accepted_at: model.guidelines_accepted_at,
    }
}

pub(crate) fn valid_user_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+'))
}

impl Identity {
    #[tracing::instrument(skip_all, fields(tenant_id = %request.id))]
    pub async fn create_tenant(
        &self,
        caller: Caller,
        request: CreateTenant,
    ) -> ServiceResult<Tenant> {
        caller.require_any(&[Role::Operator])?;
        if !chorus_events::is_valid_tenant_token(&request.id) {
            return Err(ServiceError::invalid(
                "tenant id must be 1 to 40 lowercase letters, digits or dashes, not starting with a dash",
            ));
        }
        if request.name.trim().is_empty() || request.name.len() > 200 {
            return Err(ServiceError::invalid(
                "tenant name must be 1 to 200 characters",
            ));
        }
        if tenant::Entity::find_by_id(request.id.clone())
            .one(&self.db)
            .await?
            .is_some()
        {
            return Err(ServiceError::conflict(format!(
                "tenant {} already exists",
                request.id
            )));
        }
        let model = tenant::ActiveModel {
            id: Set(request.id.clone()),
            name: Set(request.name.trim().to_string()),
            created_at: Set(chrono::Utc::now()),
        };
        let model = tenant::Entity::insert(model)
            .exec_with_returning(&self.db)
            .await?;
        tracing::info!(tenant_id = %model.id, "tenant created");
        Ok(Tenant {
            id: model.id,
            name: model.name,
            created_at: model.created_at,
        })
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id, user_id = %request.id))]
    pub async fn create_user(&self, caller: Caller, request: CreateUser) -> ServiceResult<User> {
        caller.require_any(&[Role::Admin, Role::Operator])?;
        if tenant::Entity::find_by_id(caller.tenant_id.clone())
            .one(&self.db)
            .await?
            .is_none()
        {
            return Err(ServiceError::not_found(format!(
                "unknown tenant {}",
                caller.tenant_id
            )));
        }
        if !valid_user_id(&request.id) {
            return Err(ServiceError::invalid(
                "user id must be 1 to 128 letters, digits or - _ . @ +",
            ));
        }
        if request.display_name.trim().is_empty() {
            return Err(ServiceError::invalid("display_name must not be empty"));
        }
        if !request.email.contains('@') {
            return Err(ServiceError::invalid("email must be an address"));
        }
        if request.roles.is_empty() {
            return Err(ServiceError::invalid("a user needs at least one role"));
        }
        if request.roles.contains(&Role::Operator) {
            return Err(ServiceError::invalid(
                "the operator role is not a tenant role",
            ));
        }
        if let Some(manager) = request.manager_id.as_deref().filter(|m| !m.is_empty()) {
            self.require_user(&caller.tenant_id, manager, "manager_id")
                .await?;
        }
        let existing = user::Entity::find_by_id((caller.tenant_id.clone(), request.id.clone()))
            .one(&self.db)
            .await?;
        if existing.is_some() {
            return Err(ServiceError::conflict(format!(
                "user {} already exists",
                request.id
            )));
        }
        let now = chrono::Utc::now();
        let roles: Vec<&str> = request.roles.iter().map(|role| role.as_str()).collect();
        let model = user::ActiveModel {
            tenant_id: Set(caller.tenant_id.clone()),
            id: Set(request.id.clone()),
            display_name: Set(request.display_name.trim().to_string()),
            email: Set(request.email.trim().to_string()),
            roles: Set(roles.join(",")),
            department: Set(request.department.clone()),
            location: Set(request.location.clone()),
            language: Set(request.language.clone()),
            time_zone: Set(request.time_zone.clone()),
            active: Set(true),
            created_at: Set(now),
            user_name: Set(request.email.trim().to_string()),
            external_id: Set(None),
            updated_at: Set(Some(now)),
            manager_id: Set(request.manager_id.clone().filter(|m| !m.is_empty())),
            guidelines_accepted_at: Set(None),
        };
        let event = events::UserCreated {
            tenant_id: caller.tenant_id.clone(),
            user_id: request.id.clone(),
            display_name: request.display_name.trim().to_string(),
            roles: roles.iter().map(|role| role.to_string()).collect(),
            department: request.department.clone().unwrap_or_default(),
            location: request.location.clone().unwrap_or_default(),
            language: request.language.clone(),
            time_zone: request.time_zone.clone(),
            created_at: Some(chorus_events::to_timestamp(now)),
        };
        let txn = self.db.begin().await?;
        let model = user::Entity::insert(model)
            .exec_with_returning(&txn)
            .await?;
        self.outbox.enqueue(&txn, &event).await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(to_user(model))
    }

    /// Fails unless `user_id` is a user of the tenant (`field` names the input).
    pub(crate) async fn require_user(
        &self,
        tenant_id: &str,
        user_id: &str,
        field: &str,
    ) -> ServiceResult<()> {
        user::Entity::find_by_id((tenant_id.to_string(), user_id.to_string()))
            .one(&self.db)
            .await?
            .map(|_| ())
            .ok_or_else(|| {
                ServiceError::invalid(format!("{field}: {user_id} is not a user of this tenant"))
            })
    }

    /// The caller accepts the social media guidelines (the first acceptance is kept).
    pub async fn accept_guidelines(&self, caller: Caller, _request: Empty) -> ServiceResult<User> {
        let model = user::Entity::find_by_id((caller.tenant_id.clone(), caller.user_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("unknown user {}", caller.user_id)))?;
        if model.guidelines_accepted_at.is_some() {
            return Ok(to_user(model));
        }
        let mut active: user::ActiveModel = model.into();
        active.guidelines_accepted_at = Set(Some(chrono::Utc::now()));
        let model = sea_orm::ActiveModelTrait::update(active, &self.db).await?;
        tracing::info!(user_id = %caller.user_id, "guidelines accepted");
        Ok(to_user(model))
    }

    pub async fn get_user(&self, caller: Caller, request: GetUser) -> ServiceResult<User> {
        let model = user::Entity::find_by_id((caller.tenant_id.clone(), request.user_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("unknown user {}", request.user_id)))?;
        Ok(to_user(model))
    }

    /// Who the caller is: fails when the tenant or the user is unknown or deactivated.
    pub async fn resolve_caller(&self, caller: Caller, _request: Empty) -> ServiceResult<User> {
        if tenant::Entity::find_by_id(caller.tenant_id.clone())
            .one(&self.db)
            .await?
            .is_none()
        {
            return Err(ServiceError::unauthorized(format!(
                "unknown tenant {}",
                caller.tenant_id
            )));
        }
        let model = user::Entity::find_by_id((caller.tenant_id.clone(), caller.user_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                ServiceError::unauthorized(format!("unknown user {}", caller.user_id))
            })?;
        if !model.active {
            return Err(ServiceError::forbidden("this user is deactivated"));
        }
        Ok(to_user(model))
    }
}
