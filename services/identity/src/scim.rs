//! SCIM 2.0 provisioning (RFC 7643 / 7644) as Okta and Entra ID call it: users and groups
//! created, replaced, patched, listed with `filter` (`<attribute> eq "<value>"`) and
//! `startIndex`/`count`, deactivated (`active: false`) and deleted (erasure).
//!
//! A PATCH is applied to the resource's JSON and the result is read back as a replacement,
//! so one parser decides what a user or a group may be.

use crate::entities::{group, group_member, user};
use crate::rpc::{Identity, valid_user_id};
use chorus_api::Empty;
use chorus_api::identity::{ScimPatch, ScimQuery, ScimRef, ScimWrite};
use chorus_events::identity::v1 as events;
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// Resources on one page when the client names no `count`, and the most it may ask for.
const DEFAULT_COUNT: u64 = 100;
const MAX_COUNT: u64 = 200;

/// Members a group may list.
const MAX_MEMBERS: usize = 10_000;

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::invalid(message)
}

/// The value of attribute `name` of `object`, whatever the case of its name (SCIM attribute
/// names are case-insensitive).
fn attr<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    object
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
        .filter(|value| !value.is_null())
}

fn text(object: &Value, name: &str) -> ServiceResult<Option<String>> {
    match attr(object, name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.trim().to_string()).filter(|t| !t.is_empty())),
        Some(_) => Err(invalid(format!("{name} must be a string"))),
    }
}

/// `true`/`false`, also as the strings `"True"`/`"False"` that Entra ID sends.
fn boolean(value: &Value, name: &str) -> ServiceResult<bool> {
    match value {
        Value::Bool(flag) => Ok(*flag),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(invalid(format!("{name} must be true or false"))),
    }
}

/// The element of a multi-valued attribute to read: the primary one, else the first.
fn primary(object: &Value, name: &str) -> ServiceResult<Option<Value>> {
    match attr(object, name) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(items
            .iter()
            .find(|item| {
                attr(item, "primary").is_some_and(|p| boolean(p, "primary").unwrap_or(false))
            })
            .or_else(|| items.first())
            .cloned()),
        Some(_) => Err(invalid(format!("{name} must be a list"))),
    }
}

/// What a SCIM User resource says about a person.
#[derive(Debug)]
struct UserFields {
    user_name: String,
    external_id: Option<String>,
    display_name: String,
    email: String,
    active: bool,
    roles: Option<Vec<Role>>,
    department: Option<String>,
    location: Option<String>,
    language: Option<String>,
    time_zone: Option<String>,
    manager_id: Option<String>,
}

fn parse_user(resource: &Value) -> ServiceResult<UserFields> {
    if !resource.is_object() {
        return Err(invalid("the body must be a SCIM User object"));
    }
    let user_name = text(resource, "userName")?.ok_or_else(|| invalid("userName is required"))?;
    if user_name.chars().count() > 256 {
        return Err(invalid("userName must have at most 256 characters"));
    }
    let name = attr(resource, "name");
    let display_name = match text(resource, "displayName")? {
        Some(display) => display,
        None => {
            let formatted = name
                .map(|name| text(name, "formatted"))
                .transpose()?
                .flatten();
            let parts: Vec<String> = ["givenName", "familyName"]
                .iter()
                .filter_map(|part| name.and_then(|name| text(name, part).ok().flatten()))
                .collect();
            formatted
                .or_else(|| (!parts.is_empty()).then(|| parts.join(" ")))
                .unwrap_or_else(|| user_name.clone())
        }
    };
    if display_name.chars().count() > 200 {
        return Err(invalid("displayName must have at most 200 characters"));
    }
    let email = match primary(resource, "emails")? {
        Some(email) => text(&email, "value")?,
        None => None,
    }
    .or_else(|| user_name.contains('@').then(|| user_name.clone()))
    .ok_or_else(|| invalid("emails: give the user's e-mail address"))?;
    if !email.contains('@') || email.len() > 320 {
        return Err(invalid("emails: the value must be an e-mail address"));
    }
    let active = attr(resource, "active")
        .map(|value| boolean(value, "active"))
        .transpose()?
        .unwrap_or(true);
    let roles = match attr(resource, "roles") {
        None => None,
        Some(Value::Array(items)) => {
            let mut roles = Vec::new();
            for item in items {
                let name = match item {
                    Value::String(name) => name.clone(),
                    other => text(other, "value")?
                        .ok_or_else(|| invalid("roles: each role needs a value"))?,
                };
                let role = Role::parse(&name.to_lowercase())
                    .filter(|role| *role != Role::Operator)
                    .ok_or_else(|| {
                        invalid(format!(
                            "roles: {name} is not a role (admin, curator, approver, advocate, integrator)"
                        ))
                    })?;
                if !roles.contains(&role) {
                    roles.push(role);
                }
            }
            Some(roles)
        }
        Some(_) => return Err(invalid("roles must be a list")),
    };
    let enterprise = attr(resource, ENTERPRISE_SCHEMA);
    let department = enterprise
        .map(|ext| text(ext, "department"))
        .transpose()?
        .flatten();
    let manager_id = match enterprise.and_then(|ext| attr(ext, "manager")) {
        None => None,
        Some(Value::String(id)) => Some(id.trim().to_string()),
        Some(manager) => text(manager, "value")?,
    }
    .filter(|id| !id.is_empty());
    let location = match primary(resource, "addresses")? {
        Some(address) => text(&address, "locality")?,
        None => None,
    };
    let language = match text(resource, "preferredLanguage")? {
        Some(language) => Some(language),
        None => text(resource, "locale")?,
    }
    .map(|tag| {
        tag.split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    })
    .filter(|tag| !tag.is_empty());
    if language
        .as_ref()
        .is_some_and(|tag| tag.len() > 8 || !tag.chars().all(|c| c.is_ascii_alphabetic()))
    {
        return Err(invalid(
            "preferredLanguage must be a language tag such as fr-FR",
        ));
    }
    let time_zone = text(resource, "timezone")?;
    if let Some(zone) = &time_zone
        && zone.parse::<chrono_tz::Tz>().is_err()
    {
        return Err(invalid(format!(
            "timezone: {zone} is not an IANA time zone such as Europe/Paris"
        )));
    }
    Ok(UserFields {
        user_name,
        external_id: text(resource, "externalId")?,
        display_name,
        email,
        active,
        roles,
        department,
        location,
        language,
        time_zone,
        manager_id,
    })
}

fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn version(at: chrono::DateTime<chrono::Utc>) -> String {
    format!("W/\"{}\"", at.timestamp_micros())
}

fn user_resource(model: &user::Model, groups: &[(String, String)]) -> Value {
    let modified = model.updated_at.unwrap_or(model.created_at);
    let mut resource = json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
        "id": model.id,
        "userName": model.user_name,
        "displayName": model.display_name,
        "name": {"formatted": model.display_name},
        "emails": [{"value": model.email, "type": "work", "primary": true}],
        "active": model.active,
        "roles": model.roles.split(',').filter(|r| !r.is_empty()).map(|role| json!({"value": role})).collect::<Vec<_>>(),
        "preferredLanguage": model.language,
        "timezone": model.time_zone,
        ENTERPRISE_SCHEMA: {
            "department": model.department,
            "manager": model.manager_id.as_ref().map(|id| json!({"value": id})),
        },
        "groups": groups.iter().map(|(id, name)| json!({"value": id, "display": name, "type": "direct"})).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "User",
            "created": timestamp(model.created_at),
            "lastModified": timestamp(modified),
            "version": version(modified),
        },
    });
    if let Some(external_id) = &model.external_id {
        resource["externalId"] = json!(external_id);
    }
    if let Some(location) = &model.location {
        resource["addresses"] = json!([{"type": "work", "locality": location, "primary": true}]);
    }
    resource
}

fn group_resource(model: &group::Model, members: Option<&[(String, String)]>) -> Value {
    let mut resource = json!({
        "schemas": [GROUP_SCHEMA],
        "id": model.id,
        "displayName": model.display_name,
        "meta": {
            "resourceType": "Group",
            "created": timestamp(model.created_at),
            "lastModified": timestamp(model.updated_at),
            "version": version(model.updated_at),
        },
    });
    if let Some(members) = members {
        resource["members"] = members
            .iter()
            .map(|(id, name)| json!({"value": id, "display": name, "type": "User"}))
            .collect();
    }
    if let Some(external_id) = &model.external_id {
        resource["externalId"] = json!(external_id);
    }
    resource
}

/// `<attribute> eq "<value>"`: the only filter Okta and Entra ID send for provisioning.
fn parse_filter(filter: &str, allowed: &[&str]) -> ServiceResult<(String, String)> {
    let error = || {
        invalid(format!(
            "filter: only `<attribute> eq \"<value>\"` is supported, with attribute one of {}",
            allowed.join(", ")
        ))
    };
    let filter = filter.trim();
    let (attribute, rest) = filter.split_once(char::is_whitespace).ok_or_else(error)?;
    let (op, value) = rest
        .trim_start()
        .split_once(char::is_whitespace)
        .ok_or_else(error)?;
    if !op.eq_ignore_ascii_case("eq") {
        return Err(error());
    }
    let value: String = serde_json::from_str(value.trim()).map_err(|_| error())?;
    let attribute = allowed
        .iter()
        .find(|name| name.eq_ignore_ascii_case(attribute))
        .ok_or_else(error)?;
    Ok((attribute.to_string(), value))
}

/// 1-based start and page size of a list query. A start past any list gives an empty page
/// (the databases take offsets up to `i64::MAX`).
fn page(query: &ScimQuery) -> (u64, u64) {
    let start = query
        .start_index
        .unwrap_or(1)
        .clamp(1, i64::MAX.unsigned_abs());
    let count = query.count.unwrap_or(DEFAULT_COUNT).min(MAX_COUNT);
    (start, count)
}

fn list_response(total: u64, start: u64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

// --- PATCH ---------------------------------------------------------------------------

/// One operation's path: `[urn:…:]attribute[[filter]][.sub]`.
#[derive(Debug)]
struct PatchPath {
    extension: Option<String>,
    attribute: String,
    filter: Option<(String, String)>,
    sub: Option<String>,
}

fn parse_path(path: &str, core_schema: &str) -> ServiceResult<PatchPath> {
    let bad = || invalid(format!("path `{path}` is not a SCIM attribute path"));
    let mut rest = path.trim();
    let mut extension = None;
    if rest.to_ascii_lowercase().starts_with("urn:") {
        // The attribute follows the schema URN's last colon (before any filter).
        let head_end = rest.find('[').unwrap_or(rest.len());
        let colon = rest[..head_end].rfind(':').ok_or_else(bad)?;
        let schema = &rest[..colon];
        if !schema.eq_ignore_ascii_case(core_schema) {
            extension = Some(schema.to_string());
        }
        rest = &rest[colon + 1..];
    }
    let (head, sub_after_filter) = match rest.find('[') {
        Some(open) => {
            let close = rest
                .find(']')
                .filter(|close| *close > open)
                .ok_or_else(bad)?;
            let after = &rest[close + 1..];
            let sub = match after.strip_prefix('.') {
                Some(sub) => Some(sub.to_string()),
                None if after.is_empty() => None,
                None => return Err(bad()),
            };
            let (attribute, value) = {
                let inner = &rest[open + 1..close];
                let (attribute, rest) = inner
                    .trim()
                    .split_once(char::is_whitespace)
                    .ok_or_else(bad)?;
                let (op, value) = rest
                    .trim()
                    .split_once(char::is_whitespace)
                    .ok_or_else(bad)?;
                if !op.eq_ignore_ascii_case("eq") {
                    return Err(invalid("path filters support only `eq`"));
                }
                let value = value.trim();
                let value = serde_json::from_str::<Value>(value)
                    .map(|value| match value {
                        Value::String(text) => text,
                        other => other.to_string(),
                    })
                    .unwrap_or_else(|_| value.to_string());
                (attribute.to_string(), value)
            };
            (&rest[..open], Some(((attribute, value), sub)))
        }
        None => (rest, None),
    };
    let (attribute, sub) = match head.split_once('.') {
        Some((attribute, sub)) => (attribute.to_string(), Some(sub.to_string())),
        None => (head.to_string(), None),
    };
    if attribute.is_empty() {
        return Err(bad());
    }
    Ok(match sub_after_filter {
        Some((filter, filter_sub)) => PatchPath {
            extension,
            attribute,
            filter: Some(filter),
            sub: filter_sub,
        },
        None => PatchPath {
            extension,
            attribute,
            filter: None,
            sub,
        },
    })
}

/// The key under which `name` is stored in `object` (its existing spelling, if any).
fn key_of(object: &Map<String, Value>, name: &str) -> String {
    object
        .keys()
        .find(|key| key.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_string())
}

fn matches(item: &Value, (attribute, expected): &(String, String)) -> bool {
    match attr(item, attribute) {
        Some(Value::String(text)) => text.eq_ignore_ascii_case(expected),
        Some(other) => other.to_string().eq_ignore_ascii_case(expected),
        None => false,
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (attr(a, "value"), attr(b, "value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Applies one `add`, `replace` or `remove` to `resource`.
fn apply_operation(
    resource: &mut Value,
    op: &str,
    path: Option<&str>,
    value: Option<&Value>,
    core_schema: &str,
) -> ServiceResult<()> {
    let op = op.to_ascii_lowercase();
    if !matches!(op.as_str(), "add" | "replace" | "remove") {
        return Err(invalid(format!("op {op} must be add, replace or remove")));
    }
    let Some(path) = path.filter(|path| !path.trim().is_empty()) else {
        // No path: the value is an object of attributes to add or replace.
        if op == "remove" {
            return Err(invalid("remove needs a path"));
        }
        let Some(Value::Object(attributes)) = value else {
            return Err(invalid("an operation without a path needs an object value"));
        };
        for (name, value) in attributes {
            if name.to_ascii_lowercase().starts_with("urn:")
                && value.is_object()
                && parse_path(name, core_schema)?.extension.is_none()
            {
                // The core schema's URN as a key: its attributes are the resource's own.
                apply_operation(resource, &op, None, Some(value), core_schema)?;
            } else if name.eq_ignore_ascii_case(ENTERPRISE_SCHEMA) && value.is_object() {
                for (sub, sub_value) in value.as_object().into_iter().flatten() {
                    apply_operation(
                        resource,
                        &op,
                        Some(&format!("{ENTERPRISE_SCHEMA}:{sub}")),
                        Some(sub_value),
                        core_schema,
                    )?;
                }
            } else {
                apply_operation(resource, &op, Some(name), Some(value), core_schema)?;
            }
        }
        return Ok(());
    };
    let path = parse_path(path, core_schema)?;
    let root = resource
        .as_object_mut()
        .ok_or_else(|| invalid("the resource is not an object"))?;
    let container = match &path.extension {
        Some(schema) => {
            let key = key_of(root, schema);
            let entry = root.entry(key).or_insert_with(|| json!({}));
            if !entry.is_object() {
                *entry = json!({});
            }
            entry.as_object_mut().expect("an object")
        }
        None => root,
    };
    let key = key_of(container, &path.attribute);
    match (&path.filter, &path.sub) {
        (None, None) => match op.as_str() {
            "remove" => match (container.get_mut(&key), value) {
                // Remove the listed elements (`members` with the ids to remove).
                (Some(Value::Array(items)), Some(Value::Array(gone))) => {
                    items.retain(|item| !gone.iter().any(|g| same_value(item, g)));
                }
                _ => {
                    container.remove(&key);
                }
            },
            "add" => {
                let value = value.ok_or_else(|| invalid("add needs a value"))?.clone();
                match (container.get_mut(&key), value) {
                    (Some(Value::Array(items)), Value::Array(new)) => {
                        for item in new {
                            if !items.iter().any(|existing| same_value(existing, &item)) {
                                items.push(item);
                            }
                        }
                    }
                    (Some(Value::Object(existing)), Value::Object(new)) => existing.extend(new),
                    (_, value) => {
                        container.insert(key, value);
                    }
                }
            }
            _ => {
                let value = value
                    .ok_or_else(|| invalid("replace needs a value"))?
                    .clone();
                container.insert(key, value);
            }
        },
        (None, Some(sub)) => {
            let entry = container.entry(key).or_insert_with(|| json!({}));
            if !entry.is_object() {
                *entry = json!({});
            }
            let object = entry.as_object_mut().expect("an object");
            let sub_key = key_of(object, sub);
            if op == "remove" {
                object.remove(&sub_key);
            } else {
                let value = value.ok_or_else(|| invalid(format!("{op} needs a value")))?;
                object.insert(sub_key, value.clone());
            }
        }
        (Some(filter), sub) => {
            let entry = container.entry(key).or_insert_with(|| json!([]));
            if !entry.is_array() {
                *entry = json!([]);
            }
            let items = entry.as_array_mut().expect("an array");
            if op == "remove" {
                match sub {
                    None => items.retain(|item| !matches(item, filter)),
                    Some(sub) => {
                        for item in items.iter_mut().filter(|item| matches(item, filter)) {
                            if let Some(object) = item.as_object_mut() {
                                let sub_key = key_of(object, sub);
                                object.remove(&sub_key);
                            }
                        }
                    }
                }
                return Ok(());
            }
            let value = value.ok_or_else(|| invalid(format!("{op} needs a value")))?;
            let mut found = false;
            for item in items.iter_mut().filter(|item| matches(item, filter)) {
                found = true;
                let Some(object) = item.as_object_mut() else {
                    continue;
                };
                match (sub, value) {
                    (Some(sub), value) => {
                        let sub_key = key_of(object, sub);
                        object.insert(sub_key, value.clone());
                    }
                    (None, Value::Object(new)) => object.extend(new.clone()),
                    (None, _) => {
                        return Err(invalid(
                            "a filtered path without a sub-attribute needs an object value",
                        ));
                    }
                }
            }
            if !found {
                // e.g. `emails[type eq "work"].value` on a user without a work address.
                let mut item = Map::new();
                item.insert(filter.0.clone(), Value::String(filter.1.clone()));
                match (sub, value) {
                    (Some(sub), value) => {
                        item.insert(sub.clone(), value.clone());
                    }
                    (None, Value::Object(new)) => item.extend(new.clone()),
                    (None, _) => {
                        return Err(invalid(
                            "a filtered path without a sub-attribute needs an object value",
                        ));
                    }
                }
                items.push(Value::Object(item));
            }
        }
    }
    Ok(())
}

/// Applies a `PatchOp` body to `resource`.
fn apply_patch(resource: &mut Value, patch: &Value, core_schema: &str) -> ServiceResult<()> {
    let operations = attr(patch, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("Operations: a PatchOp body lists its operations"))?;
    if operations.is_empty() || operations.len() > 1_000 {
        return Err(invalid("Operations: give 1 to 1,000 operations"));
    }
    for operation in operations {
        let op = text(operation, "op")?.ok_or_else(|| invalid("each operation needs an op"))?;
        let path = text(operation, "path")?;
        apply_operation(
            resource,
            &op,
            path.as_deref(),
            attr(operation, "value"),
            core_schema,
        )?;
    }
    Ok(())
}

// --- the service -----------------------------------------------------------------------

fn user_event_fields(model: &user::Model) -> events::UserUpdated {
    events::UserUpdated {
        tenant_id: model.tenant_id.clone(),
        user_id: model.id.clone(),
        display_name: model.display_name.clone(),
        roles: model
            .roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect(),
        department: model.department.clone().unwrap_or_default(),
        location: model.location.clone().unwrap_or_default(),
        language: model.language.clone(),
        time_zone: model.time_zone.clone(),
    }
}

impl Identity {
    /// The total of `select` and the page the query asks for, in a stable order.
    async fn page<E: EntityTrait>(
        &self,
        select: sea_orm::Select<E>,
        query: &ScimQuery,
        created: E::Column,
        id: E::Column,
    ) -> ServiceResult<(u64, u64, Vec<E::Model>)>
    where
        E::Model: Sync,
    {
        let total = select.clone().count(&self.db).await?;
        let (start, count) = page(query);
        let models = select
            .order_by_asc(created)
            .order_by_asc(id)
            .offset(start - 1)
            .limit(count)
            .all(&self.db)
            .await?;
        Ok((total, start, models))
    }

    async fn user_groups(
        &self,
        tenant: &str,
        users: &[String],
    ) -> ServiceResult<HashMap<String, Vec<(String, String)>>> {
        let memberships = group_member::Entity::find()
            .filter(group_member::Column::TenantId.eq(tenant))
            .filter(group_member::Column::UserId.is_in(users.iter().cloned()))
            .all(&self.db)
            .await?;
        let names: HashMap<String, String> = group::Entity::find()
            .filter(group::Column::TenantId.eq(tenant))
            .filter(group::Column::Id.is_in(memberships.iter().map(|m| m.group_id.clone())))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|group| (group.id, group.display_name))
            .collect();
        let mut by_user: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for membership in memberships {
            let name = names.get(&membership.group_id).cloned().unwrap_or_default();
            by_user
                .entry(membership.user_id)
                .or_default()
                .push((membership.group_id, name));
        }
        Ok(by_user)
    }

    async fn scim_user_model(&self, tenant: &str, id: &str) -> ServiceResult<user::Model> {
        user::Entity::find_by_id((tenant.to_string(), id.to_string()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("User {id} not found")))
    }

    async fn user_view(&self, model: &user::Model) -> ServiceResult<Value> {
        let groups = self
            .user_groups(&model.tenant_id, std::slice::from_ref(&model.id))
            .await?;
        Ok(user_resource(
            model,
            groups.get(&model.id).map(Vec::as_slice).unwrap_or_default(),
        ))
    }

    async fn user_name_taken(
        &self,
        tenant: &str,
        user_name: &str,
        except: Option<&str>,
    ) -> ServiceResult<bool> {
        let mut select = user::Entity::find()
            .filter(user::Column::TenantId.eq(tenant))
            .filter(user::Column::UserName.eq(user_name));
        if let Some(id) = except {
            select = select.filter(user::Column::Id.ne(id));
        }
        Ok(select.count(&self.db).await? > 0)
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id))]
    pub async fn scim_create_user(
        &self,
        caller: Caller,
        request: ScimWrite,
    ) -> ServiceResult<Value> {
        caller.require_any(&[Role::Admin])?;
        let fields = parse_user(&request.resource)?;
        let tenant = caller.tenant_id.clone();
        if self
            .user_name_taken(&tenant, &fields.user_name, None)
            .await?
        {
            return Err(ServiceError::conflict(format!(
                "a user with userName {} already exists",
                fields.user_name
            )));
        }
        // The userName is the id when it can be one, so that an OIDC token's
        // `preferred_username` or `email` claim names the same person.
        let id = if valid_user_id(&fields.user_name)
            && user::Entity::find_by_id((tenant.clone(), fields.user_name.clone()))
                .one(&self.db)
                .await?
                .is_none()
        {
            fields.user_name.clone()
        } else {
            uuid::Uuid::new_v4().to_string()
        };
        let now = chrono::Utc::now();
        let roles = fields.roles.clone().unwrap_or_else(|| vec![Role::Advocate]);
        let roles: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
        let model = user::ActiveModel {
            tenant_id: Set(tenant.clone()),
            id: Set(id.clone()),
            display_name: Set(fields.display_name.clone()),
            email: Set(fields.email.clone()),
            roles: Set(roles.join(",")),
            department: Set(fields.department.clone()),
            location: Set(fields.location.clone()),
            language: Set(fields.language.clone().unwrap_or_else(|| "en".to_string())),
            time_zone: Set(fields
                .time_zone
                .clone()
                .unwrap_or_else(|| "UTC".to_string())),
            active: Set(fields.active),
            created_at: Set(now),
            user_name: Set(fields.user_name.clone()),
            external_id: Set(fields.external_id.clone()),
            updated_at: Set(Some(now)),
            manager_id: Set(fields.manager_id.clone()),
            guidelines_accepted_at: Set(None),
        };
        let txn = self.db.begin().await?;
        let model = user::Entity::insert(model)
            .exec_with_returning(&txn)
            .await?;
        let profile = user_event_fields(&model);
        self.outbox
            .enqueue(
                &txn,
                &events::UserCreated {
                    tenant_id: profile.tenant_id,
                    user_id: profile.user_id,
                    display_name: profile.display_name,
                    roles: profile.roles,
                    department: profile.department,
                    location: profile.location,
                    language: profile.language,
                    time_zone: profile.time_zone,
                    created_at: Some(chorus_events::to_timestamp(now)),
                },
            )
            .await?;
        if !model.active {
            self.outbox.enqueue(&txn, &deactivated(&model)).await?;
        }
        txn.commit().await?;
        self.outbox.wake();
        tracing::info!(user_id = %model.id, "user provisioned");
        Ok(user_resource(&model, &[]))
    }

    pub async fn scim_get_user(&self, caller: Caller, request: ScimRef) -> ServiceResult<Value> {
        caller.require_any(&[Role::Admin])?;
        let model = self.scim_user_model(&caller.tenant_id, &request.id).await?;
        self.user_view(&model).await
    }

    pub async fn scim_list_users(&self, caller: Caller, query: ScimQuery) -> ServiceResult<Value> {
        caller.require_any(&[Role::Admin])?;
        let mut select =
            user::Entity::find().filter(user::Column::TenantId.eq(caller.tenant_id.clone()));
        if let Some(filter) = query.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            let (attribute, value) =
                parse_filter(filter, &["userName", "externalId", "id", "emails.value"])?;
            select = match attribute.as_str() {
                "userName" => select.filter(user::Column::UserName.eq(value)),
                "externalId" => select.filter(user::Column::ExternalId.eq(value)),
                "id" => select.filter(user::Column::Id.eq(value)),
                _ => select.filter(user::Column::Email.eq(value)),
            };
        }
        let (total, start, models) = self
            .page(select, &query, user::Column::CreatedAt, user::Column::Id)
            .await?;
        let ids: Vec<String> = models.iter().map(|m| m.id.clone()).collect();
        let groups = self.user_groups(&caller.tenant_id, &ids).await?;
        let resources = models
            .iter()
            .map(|model| {
                user_resource(
                    model,
                    groups.get(&model.id).map(Vec::as_slice).unwrap_or_default(),
                )
            })
            .collect();
        Ok(list_response(total, start, resources))
    }

    pub async fn scim_replace_user(
        &self,
        caller: Caller,
        request: ScimWrite,
    ) -> ServiceResult<Value> {
        caller.require_any(&[Role::Admin])?;
        let id = request
            .id
            .clone()
            .ok_or_else(|| invalid("the user's id is missing"))?;
        let existing = self.scim_user_model(&caller.tenant_id, &id).await?;
        let fields = parse_user(&request.resource)?;
        self.update_user(&caller, existing, fields).await
    }

    pub async fn scim_patch_user(
        &self,
        caller: Caller,
        request: ScimPatch,
    ) -> ServiceResult<Value> {
        caller.require_any(&[Role::Admin])?;
        let existing = self.scim_user_model(&caller.tenant_id, &request.id).await?;
        let mut resource = self.user_view(&existing).await?;
        apply_patch(&mut resource, &request.patch, USER_SCHEMA)?;
        let fields = parse_user(&resource)?;
        self.update_user(&caller, existing, fields).await
    }

    /// Writes a replacement of the user and tells the other services what changed:
    /// `user.updated` for the profile, `user.deactivated` when `active` turns false.
    async fn update_user(
        &self,
        caller: &Caller,
        existing: user::Model,
        fields: UserFields,
    ) -> ServiceResult<Value> {
        // The provisioning key's own user cannot lock itself out.
        if existing.id == caller.user_id
            && (!fields.active
                || fields
                    .roles
                    .as_ref()
                    .is_some_and(|roles| !roles.contains(&Role::Admin)))
        {
            return Err(ServiceError::conflict(
                "an administrator cannot deactivate themselves or give up their admin role",
            ));
        }
        if fields.user_name != existing.user_name
            && self
                .user_name_taken(&existing.tenant_id, &fields.user_name, Some(&existing.id))
                .await?
        {
            return Err(ServiceError::conflict(format!(
                "a user with userName {} already exists",
                fields.user_name
            )));
        }
        let roles = match &fields.roles {
            Some(roles) if roles.is_empty() => {
                return Err(invalid("roles: a user needs at least one role"));
            }
            Some(roles) => roles
                .iter()
                .map(|role| role.as_str())
                .collect::<Vec<_>>()
                .join(","),
            None => existing.roles.clone(),
        };
        let mut updated = existing.clone();
        updated.user_name = fields.user_name;
        updated.external_id = fields.external_id;
        updated.display_name = fields.display_name;
        updated.email = fields.email;
        updated.roles = roles;
        updated.department = fields.department;
        updated.location = fields.location;
        if let Some(language) = fields.language {
            updated.language = language;
        }
        if let Some(time_zone) = fields.time_zone {
            updated.time_zone = time_zone;
        }
        updated.active = fields.active;
        updated.manager_id = fields.manager_id;
        if updated.manager_id.as_deref() == Some(existing.id.as_str()) {
            return Err(invalid("manager_id: a person is not their own manager"));
        }
        if updated == existing {
            return self.user_view(&existing).await;
        }
        updated.updated_at = Some(chrono::Utc::now());
        let profile_changed = user_event_fields(&updated) != user_event_fields(&existing);
        let txn = self.db.begin().await?;
        let active_model: user::ActiveModel = updated.clone().into();
        let active_model = sea_orm::ActiveModelTrait::reset_all(active_model);
        user::Entity::update(active_model).exec(&txn).await?;
        if !updated.active && existing.active {
            self.outbox.enqueue(&txn, &deactivated(&updated)).await?;
        } else if updated.active && (profile_changed || !existing.active) {
            // A reactivated user is announced with their profile, which makes them active.
            self.outbox
                .enqueue(&txn, &user_event_fields(&updated))
                .await?;
        }
        txn.commit().await?;
        self.outbox.wake();
        tracing::info!(user_id = %updated.id, active = updated.active, "user updated by provisioning");
        self.user_view(&updated).await
    }

    /// An administrator changes a person (`PATCH /v1/users/{id}`), through the same checks
    /// and events as a SCIM replacement.
    pub async fn user_update(
        &self,
        caller: Caller,
        request: chorus_api::identity::UserUpdate,
    ) -> ServiceResult<chorus_api::identity::User> {
        caller.require_any(&[Role::Admin])?;
        let existing = self
            .scim_user_model(&caller.tenant_id, &request.user_id)
            .await?;
        let display_name = request
            .display_name
            .map(|name| name.trim().to_string())
            .unwrap_or_else(|| existing.display_name.clone());
        if display_name.is_empty() || display_name.chars().count() > 200 {
            return Err(invalid("display_name must have 1 to 200 characters"));
        }
        let email = request
            .email
            .map(|email| email.trim().to_string())
            .unwrap_or_else(|| existing.email.clone());
        if !email.contains('@') {
            return Err(invalid("email must be an address"));
        }
        if let Some(roles) = &request.roles
            && (roles.is_empty() || roles.contains(&Role::Operator))
        {
            return Err(invalid("roles: at least one tenant role (not operator)"));
        }
        if let Some(zone) = &request.time_zone
            && zone.parse::<chrono_tz::Tz>().is_err()
        {
            return Err(invalid(format!(
                "time_zone: {zone} is not an IANA time zone such as Europe/Paris"
            )));
        }
        let manager_id = match request.manager_id {
            Some(id) if id.is_empty() => None,
            Some(id) => {
                self.require_user(&caller.tenant_id, &id, "manager_id")
                    .await?;
                Some(id)
            }
            None => existing.manager_id.clone(),
        };
        let keep = |change: Option<String>, current: &Option<String>| match change {
            Some(value) if value.trim().is_empty() => None,
            Some(value) => Some(value.trim().to_string()),
            None => current.clone(),
        };
        let fields = UserFields {
            user_name: existing.user_name.clone(),
            external_id: existing.external_id.clone(),
            display_name,
            email,
            active: request.active.unwrap_or(existing.active),
            roles: request.roles,
            department: keep(request.department, &existing.department),
            location: keep(request.location, &existing.location),
            language: request.language.map(|tag| tag.trim().to_lowercase()),
            time_zone: request.time_zone,
            manager_id,
        };
        let id = existing.id.clone();
        self.update_user(&caller, existing, fields).await?;
        let model = self.scim_user_model(&caller.tenant_id, &id).await?;
        Ok(crate::rpc::to_user(model))
    }

    /// Deletes the user and asks every service to erase their personal data (`user.erased`);
    /// their posts on social networks are their own and stay.
    #[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id, user_id = %request.id))]
    pub async fn erase_user(&self, caller: Caller, request: ScimRef) -> ServiceResult<Empty> {
        caller.require_any(&[Role::Admin])?;
        let existing = self.scim_user_model(&caller.tenant_id, &request.id).await?;
        if existing.id == caller.user_id {
            return Err(ServiceError::conflict(
                "an administrator cannot erase themselves",
            ));
        }
        let tenant = existing.tenant_id.clone();
        let txn = self.db.begin().await?;
        chorus_kit::db::erase_person(&txn, &tenant, &existing.id, crate::PERSONAL_DATA).await?;
        // Those they managed have no manager now.
        user::Entity::update_many()
            .col_expr(
                user::Column::ManagerId,
                sea_orm::sea_query::Expr::value(Option::<String>::None),
            )
            .filter(user::Column::TenantId.eq(tenant.clone()))
            .filter(user::Column::ManagerId.eq(existing.id.clone()))
            .exec(&txn)
            .await?;
        self.outbox
            .enqueue(
                &txn,
                &events::UserErased {
                    tenant_id: tenant,
                    user_id: existing.id.clone(),
                    requested_at: Some(chorus_events::to_timestamp(chrono::Utc::now())),
                },
            )
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        tracing::info!("user erased");
        Ok(Empty {})
    }

    // --- groups ---

    async fn scim_group_model(&self, tenant: &str, id: &str) -> ServiceResult<group::Model> {
        group::Entity::find_by_id((tenant.to_string(), id.to_string()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("Group {id} not found")))
    }

    async fn group_members(
        &self,
        tenant: &str,
        group_id: &str,
    ) -> ServiceResult<Vec<(String, String)>> {
        let ids: Vec<String> = group_member::Entity::find()
            .filter(group_member::Column::TenantId.eq(tenant))
            .filter(group_member::Column::GroupId.eq(group_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| m.user_id)
            .collect();
        let mut members = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            members.extend(
                user::Entity::find()
                    .filter(user::Column::TenantId.eq(tenant))
                    .filter(user::Column::Id.is_in(chunk.iter().cloned()))
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .map(|user| (user.id, user.display_name)),
            );
        }
        members.sort();
        Ok(members)
    }

    /// The display name, external id and member ids a Group resource names; members must be
    /// users of the tenant.
    async fn parse_group(
        &self,
        tenant: &str,
        resource: &Value,
    ) -> ServiceResult<(String, Option<String>, Vec<String>)> {
        if !resource.is_object() {
            return Err(invalid("the body must be a SCIM Group object"));
        }
        let name =
            text(resource, "displayName")?.ok_or_else(|| invalid("displayName is required"))?;
        if name.chars().count() > 200 {
            return Err(invalid("displayName must have at most 200 characters"));
        }
        let mut members: Vec<String> = Vec::new();
        match attr(resource, "members") {
            None => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let id = text(item, "value")?
                        .ok_or_else(|| invalid("members: each member needs a value (a user id)"))?;
                    if !members.contains(&id) {
                        members.push(id);
                    }
                }
            }
            Some(_) => return Err(invalid("members must be a list")),
        }
        if members.len() > MAX_MEMBERS {
            return Err(invalid(format!("members: at most {MAX_MEMBERS} per group")));
        }
        let mut known = 0;
        for chunk in members.chunks(500) {
            known += user::Entity::find()
                .filter(user::Column::TenantId.eq(tenant))
                .filter(user::Column::Id.is_in(chunk.iter().cloned()))
                .count(&self.db)
                .await?;
        }
        if known as usize != members.len() {
            return Err(invalid(
                "members: every member must be a user of this tenant",
            ));
        }
        Ok((name, text(resource, "externalId")?, members))
    }

    async fn write_members<C: ConnectionTrait>(
        &self,
        txn: &C,
        tenant: &str,
        group_id: &str,
        members: &[String],
    ) -> ServiceResult<()> {
        group_member::Entity::delete_many()
            .filter(group_member::Column::TenantId.eq(tenant))
            .filter(group_member::Column::GroupId.eq(group_id))
            .exec(txn)
            .await?;
        for chunk in members.chunks(500) {
            group_member::Entity::insert_many(chunk.iter().map(|user_id| {
                group_member::ActiveModel {
                    tenant_id: Set(tenant.to_string()),
                    group_id: Set(group_id.to_string()),
                    user_id: Set(user_id.clone()),
                }
            }))
            .exec_without_returning(txn)
            .await?;
        }
        Ok(())
    }

    pub async fn scim_create_group(
        &self,
        caller: Caller,
        request: ScimWrite,
    ) -> ServiceResult<Value> {
        caller.require_any(&[Role::Admin])?;
        let tenant = caller.tenant_id.clone();
        let (name, external_id, members) = self.parse_group(&tenant, &request.resource).await?;
        let taken = group::Entity::find()
            .filter(group::Column::TenantId.eq(tenant.clone()))
            .filter(group::Column::DisplayName.eq(name.clone()))
            .count(&self.db)
            .await?;
        if taken > 0 {
            return Err(ServiceError::conflict(format!(
                "a group named {name} already exists"
            )));
        }
        let now = chrono::Utc::now();
        let id = uuid::Uuid::new_v4().to_string();
        let txn = self.db.begin().await?;
        let model = group::Entity::insert(group::ActiveModel {
            tenant_id: Set(tenant.clone()),
            id: Set(id.clone()),
            display_name: Set(name),
            external_id: Set(external_id),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(&txn)
        .await?;
        self.write_members(&txn, &tenant, &id, &members).await?;
        txn.commit().await?;
        tracing::info!(group_id = %id, members = members.len(), "group provisioned");
        let members = self.group_members(&tenant, &id).await?;
        Ok(group_resource(&model, Some(&members)))
    }

    pub async fn scim_get_group(&self, caller: Caller, request: ScimRef) -> ServiceResult<Value> {
        caller.require_any(&[Role::Admin])?;
        let model = self
            .scim_group_model(&caller.tenant_id, &request.id)
            .await?;
        let members = self.group_members(&caller.tenant_id, &model.id).await?;
        Ok(group_resource(&model, Some(&members)))
    }

    pub async fn scim_list_groups(&self, caller: Caller, query: ScimQuery) -> ServiceResult<Value> {
        caller.require_any(&[Role::Admin])?;
        let mut select =
            group::Entity::find().filter(group::Column::TenantId.eq(caller.tenant_id.clone()));
        if let Some(filter) = query.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            let (attribute, value) = parse_filter(filter, &["displayName", "externalId", "id"])?;
            select = match attribute.as_str() {
                "displayName" => select.filter(group::Column::DisplayName.eq(value)),
                "externalId" => select.filter(group::Column::ExternalId.eq(value)),
                _ => select.filter(group::Column::Id.eq(value)),
            };
        }
        let without_members = query
            .excluded_attributes
            .as_deref()
            .is_some_and(|excluded| {
                excluded
                    .split(',')
                    .any(|a| a.trim().eq_ignore_ascii_case("members"))
            });
        let (total, start, models) = self
            .page(select, &query, group::Column::CreatedAt, group::Column::Id)
            .await?;
        let mut resources = Vec::with_capacity(models.len());
        for model in &models {
            let members = if without_members {
                None
            } else {
                Some(self.group_members(&caller.tenant_id, &model.id).await?)
            };
            resources.push(group_resource(model, members.as_deref()));
        }
        Ok(list_response(total, start, resources))
    }

    pub async fn scim_replace_group(
        &self,
        caller: Caller,
        request: ScimWrite,
    ) -> ServiceResult<Value> {
        caller.require_any(&[Role::Admin])?;
        let id = request
            .id
            .clone()
            .ok_or_else(|| invalid("the group's id is missing"))?;
        let existing = self.scim_group_model(&caller.tenant_id, &id).await?;
        let parsed = self
            .parse_group(&caller.tenant_id, &request.resource)
            .await?;
        self.update_group(existing, parsed).await
    }

    pub async fn scim_patch_group(
        &self,
        caller: Caller,
        request: ScimPatch,
    ) -> ServiceResult<Value> {
        caller.require_any(&[Role::Admin])?;
        let existing = self
            .scim_group_model(&caller.tenant_id, &request.id)
            .await?;
        let members = self.group_members(&caller.tenant_id, &existing.id).await?;
        let mut resource = group_resource(&existing, Some(&members));
        apply_patch(&mut resource, &request.patch, GROUP_SCHEMA)?;
        let parsed = self.parse_group(&caller.tenant_id, &resource).await?;
        self.update_group(existing, parsed).await
    }

    async fn update_group(
        &self,
        existing: group::Model,
        (name, external_id, members): (String, Option<String>, Vec<String>),
    ) -> ServiceResult<Value> {
        let tenant = existing.tenant_id.clone();
        if name != existing.display_name {
            let taken = group::Entity::find()
                .filter(group::Column::TenantId.eq(tenant.clone()))
                .filter(group::Column::DisplayName.eq(name.clone()))
                .filter(group::Column::Id.ne(existing.id.clone()))
                .count(&self.db)
                .await?;
            if taken > 0 {
                return Err(ServiceError::conflict(format!(
                    "a group named {name} already exists"
                )));
            }
        }
        let mut updated = existing.clone();
        updated.display_name = name;
        updated.external_id = external_id;
        updated.updated_at = chrono::Utc::now();
        let txn = self.db.begin().await?;
        let active_model =
            sea_orm::ActiveModelTrait::reset_all(group::ActiveModel::from(updated.clone()));
        group::Entity::update(active_model).exec(&txn).await?;
        self.write_members(&txn, &tenant, &updated.id, &members)
            .await?;
        txn.commit().await?;
        let members = self.group_members(&tenant, &updated.id).await?;
        tracing::info!(group_id = %updated.id, members = members.len(), "group updated by provisioning");
        Ok(group_resource(&updated, Some(&members)))
    }

    pub async fn scim_delete_group(
        &self,
        caller: Caller,
        request: ScimRef,
    ) -> ServiceResult<Empty> {
        caller.require_any(&[Role::Admin])?;
        let existing = self
            .scim_group_model(&caller.tenant_id, &request.id)
            .await?;
        let txn = self.db.begin().await?;
        group_member::Entity::delete_many()
            .filter(group_member::Column::TenantId.eq(existing.tenant_id.clone()))
            .filter(group_member::Column::GroupId.eq(existing.id.clone()))
            .exec(&txn)
            .await?;
        group::Entity::delete_by_id((existing.tenant_id.clone(), existing.id.clone()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        tracing::info!(group_id = %existing.id, "group deleted by provisioning");
        Ok(Empty {})
    }
}

fn deactivated(model: &user::Model) -> events::UserDeactivated {
    events::UserDeactivated {
        tenant_id: model.tenant_id.clone(),
        user_id: model.id.clone(),
        reason: "deactivated by the identity provider".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn okta_and_entra_patches_apply() {
        let mut user = json!({
            "userName": "alice@acme.example",
            "displayName": "Alice",
            "active": true,
            "emails": [{"value": "alice@acme.example", "type": "work", "primary": true}],
            ENTERPRISE_SCHEMA: {"department": "sales"},
        });
        // Okta: replace without a path.
        apply_patch(
            &mut user,
            &json!({"Operations": [{"op": "replace", "value": {"active": false}}]}),
            USER_SCHEMA,
        )
        .unwrap();
        assert_eq!(user["active"], json!(false));
        // Entra ID: capitalised ops, string booleans, filtered and extension paths.
        apply_patch(
            &mut user,
            &json!({"Operations": [
                {"op": "Replace", "path": "active", "value": "True"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "alice.martin@acme.example"},
                {"op": "Add", "path": format!("{ENTERPRISE_SCHEMA}:department"), "value": "Marketing"},
                {"op": "Replace", "path": "name.givenName", "value": "Alice"},
            ]}),
            USER_SCHEMA,
        )
        .unwrap();
        let fields = parse_user(&user).unwrap();
        assert!(fields.active);
        assert_eq!(fields.email, "alice.martin@acme.example");
        assert_eq!(fields.department.as_deref(), Some("Marketing"));
        let mut group =
            json!({"displayName": "Sales", "members": [{"value": "a"}, {"value": "b"}]});
        apply_patch(
            &mut group,
            &json!({"Operations": [
                {"op": "add", "path": "members", "value": [{"value": "c"}, {"value": "a"}]},
                {"op": "remove", "path": "members[value eq \"b\"]"},
                {"op": "Remove", "path": "members", "value": [{"value": "c"}]},
            ]}),
            GROUP_SCHEMA,
        )
        .unwrap();
        assert_eq!(group["members"], json!([{"value": "a"}]));
    }

    #[test]
    fn bad_input_is_refused_with_the_attribute_named() {
        let error = parse_user(&json!({"displayName": "No name"})).unwrap_err();
        assert!(error.message.contains("userName"));
        let error =
            parse_user(&json!({"userName": "a@b.example", "timezone": "Mars/Base"})).unwrap_err();
        assert!(error.message.contains("timezone"));
        let error =
            parse_user(&json!({"userName": "a@b.example", "roles": [{"value": "operator"}]}))
                .unwrap_err();
        assert!(error.message.contains("roles"));
        assert!(parse_filter("userName sw \"a\"", &["userName"]).is_err());
        assert_eq!(
            parse_filter("UserName eq \"bjensen@example.com\"", &["userName"]).unwrap(),
            ("userName".to_string(), "bjensen@example.com".to_string())
        );
        let error = apply_patch(
            &mut json!({}),
            &json!({"Operations": [{"op": "move", "path": "a"}]}),
            USER_SCHEMA,
        )
        .unwrap_err();
        assert!(error.message.contains("move"));
    }
}
