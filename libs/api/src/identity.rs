use chorus_kit::Role;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "acme", "name": "Acme Corporation"}))]
pub struct CreateTenant {
    /// Lowercase letters, digits and dashes; part of event subjects.
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "alice", "display_name": "Alice Martin", "email": "alice@acme.example",
    "roles": ["advocate"], "department": "sales", "location": "paris", "language": "fr", "time_zone": "Europe/Paris"}))]
pub struct CreateUser {
    /// Stable user id within the tenant (the OIDC `sub` or SCIM id).
    pub id: String,
    pub display_name: String,
    pub email: String,
    pub roles: Vec<Role>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    /// BCP 47 language tag, e.g. `en`, `fr`.
    #[serde(default = "default_language")]
    pub language: String,
    /// IANA time zone, e.g. `Europe/Paris`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// The person's manager (a user id of the tenant).
    #[serde(default)]
    pub manager_id: Option<String>,
}

fn default_language() -> String {
    "en".to_string()
}

fn default_time_zone() -> String {
    "UTC".to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    pub display_name: String,
    pub email: String,
    pub roles: Vec<Role>,
    pub department: Option<String>,
    pub location: Option<String>,
    pub language: String,
    pub time_zone: String,
    pub active: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The person's manager (a user id of the tenant).
    #[serde(default)]
    pub manager_id: Option<String>,
    /// When they accepted the tenant's social media guidelines.
    #[serde(default)]
    pub guidelines_accepted_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Changes to a person (admins); absent fields stay as they are. `active: false`
/// deactivates (they can no longer sign in; their pending shares are cancelled).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"department": "marketing", "manager_id": "carol", "roles": ["advocate", "curator"]}))]
pub struct UserUpdate {
    /// From the path.
    #[serde(default)]
    #[schema(ignore)]
    pub user_id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub roles: Option<Vec<Role>>,
    pub department: Option<String>,
    pub location: Option<String>,
    pub language: Option<String>,
    pub time_zone: Option<String>,
    /// A user id of the tenant; an empty string removes the manager.
    pub manager_id: Option<String>,
    pub active: Option<bool>,
}

/// Where a person stands in getting started: guidelines accepted, an account connected,
/// topics chosen.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Onboarding {
    pub guidelines_accepted_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Connected social accounts.
    pub accounts_connected: usize,
    /// Topics followed.
    pub topics_chosen: usize,
    /// All three done.
    pub complete: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GetUser {
    pub user_id: String,
}

/// An API key for an integrator: it acts as its user with the roles it names (a subset of
/// the user's roles, never `advocate`: keys do not post on anyone's accounts).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"user_id": "crm-sync", "name": "CRM sync", "roles": ["integrator"]}))]
pub struct CreateApiKey {
    /// The user the key acts as (an integrator).
    pub user_id: String,
    pub name: String,
    pub roles: Vec<Role>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub roles: Vec<Role>,
    /// The key's first characters, to recognise it (`chk_ab12cd34…`).
    pub prefix: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Updated at most once a minute.
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A new key: `key` is shown now and never again (only its hash is kept).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyCreated {
    pub api_key: ApiKey,
    pub key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeys {
    pub items: Vec<ApiKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyRef {
    pub key_id: String,
}

/// Internal: the gateway resolves a presented key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResolveApiKey {
    pub key: String,
}

/// A SCIM 2.0 resource (User or Group) to create, or to put in place of resource `id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScimWrite {
    #[serde(default)]
    pub id: Option<String>,
    pub resource: serde_json::Value,
}

/// A SCIM `PatchOp` body for resource `id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScimPatch {
    pub id: String,
    pub patch: serde_json::Value,
}

/// A SCIM list query: `filter` (`<attribute> eq "<value>"`), 1-based `startIndex`, `count`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScimQuery {
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub start_index: Option<u64>,
    #[serde(default)]
    pub count: Option<u64>,
    /// `members` leaves the members out of groups (as Okta asks).
    #[serde(default)]
    pub excluded_attributes: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScimRef {
    pub id: String,
}
