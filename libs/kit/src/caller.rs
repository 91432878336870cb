//! The caller context: who asks, for which tenant, with which roles. It is built by the
//! gateway from a verified token and travels with every request; services never take the
//! tenant from a request body.

use crate::error::ServiceError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Curator,
    Approver,
    Advocate,
    Integrator,
    /// Runs the installation: creates tenants. Not a member of any tenant's program.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Curator => "curator",
            Role::Approver => "approver",
            Role::Advocate => "advocate",
            Role::Integrator => "integrator",
            Role::Operator => "operator",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "admin" => Role::Admin,
            "curator" => Role::Curator,
            "approver" => Role::Approver,
            "advocate" => Role::Advocate,
            "integrator" => Role::Integrator,
            "operator" => Role::Operator,
            _ => return None,
        })
    }
}

/// NATS header carrying the caller of a request/reply call.
pub const CALLER_HEADER: &str = "chorus-caller";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub tenant_id: String,
    pub user_id: String,
    pub roles: Vec<Role>,
}

impl Caller {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Succeeds when the caller holds at least one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), ServiceError> {
        if roles.iter().any(|role| self.has(*role)) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
        Err(ServiceError::forbidden(format!(
            "this action needs one of the roles: {}",
            names.join(", ")
        )))
    }

    /// A caller acting as the system itself inside a tenant (consumers, schedulers).
    pub fn system(tenant_id: &str) -> Caller {
        Caller {
            tenant_id: tenant_id.to_string(),
            user_id: "system".to_string(),
            roles: vec![],
        }
    }
}
