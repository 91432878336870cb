//! Tenant isolation through every endpoint of the OpenAPI document: an administrator of
//! another tenant, naming this tenant's resources, reads nothing of them and changes nothing.

use crate::harness::{Backend, Harness, eventually};
use chorus_api::scheduling::{Share, ShareStatus};
use chorus_kit::Role;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// The example body the document gives an operation, or `{}`.
fn example_body(document: &Value, operation: &Value) -> Value {
    let Some(content) = operation["requestBody"]["content"]
        .as_object()
        .and_then(|c| c.values().next())
    else {
        return json!({});
    };
    if let Some(example) = content.get("example") {
        return example.clone();
    }
    content["schema"]["$ref"]
        .as_str()
        .and_then(|reference| reference.rsplit('/').next())
        .and_then(|name| document["components"]["schemas"][name].get("example"))
        .cloned()
        .unwrap_or_else(|| json!({"reason": "isolation probe"}))
}

/// Every operation of the served OpenAPI document but the endless notification stream: its
/// path template, method and example body.
fn operations() -> Vec<(String, reqwest::Method, Value)> {
    let document: Value = serde_json::from_str(chorus_gateway::openapi_json().as_str()).unwrap();
    let mut found = Vec::new();
    for (template, operations) in document["paths"].as_object().unwrap() {
        if template.ends_with("/stream") {
            continue; // an endless event stream of the caller's own notifications
        }
        for (method, operation) in operations.as_object().unwrap() {
            if let Some(method) = method_of(method) {
                found.push((template.clone(), method, example_body(&document, operation)));
            }
        }
    }
    found
}

/// The method of an OpenAPI operation key (`get`, `post`, ...), for those the API uses.
fn method_of(name: &str) -> Option<reqwest::Method> {
    Some(match name {
        "get" => reqwest::Method::GET,
        "post" => reqwest::Method::POST,
        "put" => reqwest::Method::PUT,
        "patch" => reqwest::Method::PATCH,
        "delete" => reqwest::Method::DELETE,
        _ => return None,
    })
}

/// Sends one operation as `token` (with `body` when the method carries one, SCIM's content
/// type under `/scim`); its status and body text.
async fn send_operation(
    harness: &Harness,
    token: &str,
    method: &reqwest::Method,
    path: &str,
    body: &Value,
) -> (u16, String) {
    let api = &harness.api;
    let mut request = api
        .http
        .request(method.clone(), format!("{}{path}", api.base_url))
        .bearer_auth(token);
    if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
        let content_type = if path.starts_with("/scim") {
            "application/scim+json"
        } else {
            "application/json"
        };
        request = request
            .header("Content-Type", content_type)
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn created(harness: &Harness, path: &str, token: &str, body: Value) -> String {
    let value: Value = harness.api.post(path, token, body).await.unwrap();
    value["id"]
        .as_str()
        .or_else(|| value["api_key"]["id"].as_str())
        .or_else(|| value["endpoint"]["id"].as_str())
        .unwrap_or_else(|| panic!("{path} answered no id: {value}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_tenant_reads_and_changes_nothing_through_any_endpoint() {
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let api = &harness.api;
    let admin = harness.tenant("acme", &["alice"]).await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let post = harness.published_post(&admin, "Isolated office news").await;
    let account = api.connect_linkedin(&alice, "alice-li").await.unwrap();
    let now_share: Share = api
        .post(
            "/v1/shares",
            &alice,
            json!({"post_id": post.id, "account_id": account.id, "caption": "Isolated words now"}),
        )
        .await
        .unwrap();
    let later = chrono::Utc::now() + chrono::Duration::hours(5);
    let share = api
        .share_at(&alice, &post.id, &account.id, "Isolated words later", later)
        .await
        .unwrap();
    let done = api
        .wait_final(&alice, &now_share.id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(done.status, ShareStatus::Published, "{done:?}");
    let notification_id = eventually(
        Duration::from_secs(20),
        "alice has a notification",
        || async {
            let inbox: Value = api.get("/v1/me/notifications", &alice).await.ok()?;
            inbox["items"][0]["id"].as_str().map(str::to_string)
        },
    )
    .await;
    let _: Value = api
        .send(
            reqwest::Method::PUT,
            "/v1/webhooks/settings",
            &admin,
            Some(json!({"allow_private_destinations": true})),
        )
        .await
        .unwrap();
    let _: Value = api
        .post("/v1/users", &admin, json!({"id": "crm", "display_name": "CRM", "email": "crm@acme.example", "roles": ["integrator", "admin"]}))
        .await
        .unwrap();
    let start = chrono::Utc::now() + chrono::Duration::days(1);
    let mut ids: HashMap<&str, String> = HashMap::from([
        ("post_id", post.id.clone()),
        ("share_id", share.id.clone()),
        ("account_id", account.id.clone()),
        ("notification_id", notification_id),
        // (not `alice`: the examples the probe sends create an `alice` of its own)
        ("user_id", "crm".to_string()),
        ("topic", "jobs".to_string()),
        (
            "message_id",
            "0193d1c2-0000-7000-8000-000000000000".to_string(),
        ),
        (
            "redemption_id",
            "0193d1c2-0000-7000-8000-000000000001".to_string(),
        ),
    ]);
    ids.insert(
        "contest_id",
        created(
            &harness,
            "/v1/contests",
            &admin,
            json!({"name": "Isolated contest", "starts_at": start,
        "ends_at": start + chrono::Duration::days(7), "metric": "points"}),
        )
        .await,
    );
    ids.insert(
        "reward_id",
        created(
            &harness,
            "/v1/rewards",
            &admin,
            json!({"name": "Isolated mug", "cost": 100}),
        )
        .await,
    );
    ids.insert(
        "rule_id",
        created(
            &harness,
            "/v1/compliance/rules",
            &admin,
            json!({"kind": "banned_term", "value": "isolatedterm"}),
        )
        .await,
    );
    ids.insert("submission_id", created(&harness, "/v1/submissions", &alice, json!({"title": "Isolated idea",
        "link_url": "https://blog.example.org/isolated", "text": "Isolated suggestion", "topics": ["jobs"]})).await);
    ids.insert(
        "survey_id",
        created(
            &harness,
            "/v1/surveys",
            &admin,
            json!({"title": "Isolated pulse",
        "questions": [{"id": "enps", "kind": "enps"}], "recurrence": "once"}),
        )
        .await,
    );
    ids.insert(
        "key_id",
        created(
            &harness,
            "/v1/api-keys",
            &admin,
            json!({"user_id": "crm", "name": "Isolated key", "roles": ["integrator"]}),
        )
        .await,
    );
    ids.insert(
        "endpoint_id",
        created(
            &harness,
            "/v1/webhooks/endpoints",
            &admin,
            json!({"url": "http://127.0.0.1:9/isolated"}),
        )
        .await,
    );
    // Push is not configured here: the device id is one of no one.
    ids.insert(
        "device_id",
        "0193d1c2-0000-7000-8000-000000000002".to_string(),
    );
    ids.insert(
        "channel_id",
        created(
            &harness,
            "/v1/notification-channels",
            &admin,
            json!({"type": "slack", "name": "#isolated",
        "url": "http://127.0.0.1:9/isolated-slack", "kinds": ["share_failed"]}),
        )
        .await,
    );
    let group: Value = {
        let response = api
            .http
            .post(format!("{}/scim/v2/Groups", api.base_url))
            .bearer_auth(&admin)
            .header("Content-Type", "application/scim+json")
            .body(
                json!({"displayName": "Isolated group", "members": [{"value": "alice"}]})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
        response.json().await.unwrap()
    };
    let group_id = group["id"].as_str().unwrap().to_string();
    // Strings that only this tenant's data contains.
    let mut secrets: Vec<String> = ids.values().filter(|id| id.len() > 20).cloned().collect();
    secrets.extend(
        [
            "Isolated office news",
            "Isolated words",
            "Isolated contest",
            "Isolated mug",
            "isolatedterm",
            "Isolated idea",
            "Isolated pulse",
            "Isolated key",
            "isolated-device",
            "#isolated",
            "Isolated group",
            group_id.as_str(),
        ]
        .map(str::to_string),
    );

    // The other tenant's administrator and curator tries every operation.
    let globex_admin = harness.tenant("globex", &["gina"]).await;
    let mut probed = 0;
    for (template, method, body) in operations() {
        let mut path = template.clone();
        let mut names_ours = false;
        for (name, id) in &ids {
            let placeholder = format!("{{{name}}}");
            if path.contains(&placeholder) {
                path = path.replace(&placeholder, id);
                names_ours = true;
            }
        }
        if path.contains("{id}") {
            let id = if path.starts_with("/scim/v2/Groups") {
                group_id.clone()
            } else {
                "crm".to_string()
            };
            path = path.replace("{id}", &id);
            names_ours = true;
        }
        assert!(!path.contains('{'), "no id for {template}");
        let (status, text) = send_operation(&harness, &globex_admin, &method, &path, &body).await;
        probed += 1;
        // Naming this tenant's resource: refused, whatever the operation (the caller's own
        // `me` resources are theirs: a topic of their own may be followed).
        if names_ours && !(template.starts_with("/v1/me/topics")) {
            assert!(
                !(200..300).contains(&status),
                "{method} {path} answered {status} to another tenant: {text}"
            );
        }
        // (An error naming the id the caller gave reveals nothing.)
        for secret in secrets
            .iter()
            .filter(|secret| !path.contains(secret.as_str()))
        {
            assert!(
                !text.contains(secret.as_str()),
                "{method} {path} showed another tenant's {secret}: {text}"
            );
        }
    }
    assert!(probed > 80, "every operation was tried ({probed})");

    // Nothing of this tenant changed.
    let still: Share = api
        .get(&format!("/v1/shares/{}", share.id), &alice)
        .await
        .unwrap();
    assert_eq!(still.status, ShareStatus::Scheduled);
    assert_eq!(still.caption, "Isolated words later");
    let post_now: Value = api
        .get(&format!("/v1/posts/{}", post.id), &admin)
        .await
        .unwrap();
    assert_eq!(post_now["status"], "published");
    assert_eq!(post_now["title"], "Isolated office news");
    let me: Value = api.get("/v1/me", &alice).await.unwrap();
    assert_eq!(me["active"], true);
    let crm: Value = api
        .get("/v1/me", &harness.token("acme", "crm", &[Role::Integrator]))
        .await
        .unwrap();
    assert_eq!(crm["active"], true);
    let keys: Value = api.get("/v1/api-keys", &admin).await.unwrap();
    assert!(keys["items"][0]["revoked_at"].is_null(), "{keys}");
    let accounts: Value = api.get("/v1/accounts", &alice).await.unwrap();
    assert_eq!(accounts[0]["status"], "connected", "{accounts}");
    let endpoint: Value = api
        .get(
            &format!("/v1/webhooks/endpoints/{}", ids["endpoint_id"]),
            &admin,
        )
        .await
        .unwrap();
    assert_eq!(endpoint["url"], "http://127.0.0.1:9/isolated");
    harness.stop().await;
}

/// Every operation of the document, sent with `token`, naming the advocate's account and
/// share (and `post_id`, `user_id` and `{id}` as given) in paths and example bodies. Returns
/// each changing call that named the account or the share, with its status.
async fn probe_every_operation(
    harness: &Harness,
    token: &str,
    ids: &HashMap<&str, String>,
) -> (usize, Vec<(String, u16, String)>) {
    let unknown = "0193d1c2-0000-7000-8000-0000000000ff".to_string();
    let mut probed = 0;
    let mut naming = Vec::new();
    for (template, method, mut body) in operations() {
        let mut path = template.clone();
        while let Some(start) = path.find('{') {
            let end = start + path[start..].find('}').unwrap();
            let name = &path[start + 1..end];
            let id = ids.get(name).unwrap_or(&unknown).clone();
            path.replace_range(start..=end, &id);
        }
        if let Some(fields) = body.as_object_mut() {
            for name in ["account_id", "share_id", "post_id"] {
                if fields.contains_key(name) {
                    fields.insert(name.to_string(), json!(ids[name]));
                }
            }
        }
        let (status, text) = send_operation(harness, token, &method, &path, &body).await;
        probed += 1;
        let named = [&ids["account_id"], &ids["share_id"]]
            .iter()
            .any(|id| path.contains(id.as_str()) || body.to_string().contains(id.as_str()));
        if named && method != reqwest::Method::GET {
            naming.push((format!("{method} {path}"), status, text));
        }
    }
    (probed, naming)
}

/// Only the advocate posts on their account: the same tenant's administrator (also curator,
/// approver and integrator) and an administrator's API key try every operation of the
/// document with the advocate's account, share and posts; none of them creates, edits,
/// schedules, cancels or publishes a share on it, and nothing reaches the network.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_one_but_the_advocate_posts_on_their_account_through_any_endpoint() {
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let api = &harness.api;
    let admin = harness.tenant("acme", &["alice", "bystander"]).await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let post = harness.published_post(&admin, "Office news").await;
    let other_post = harness.published_post(&admin, "Other news").await;
    let account = api.connect_linkedin(&alice, "alice-li").await.unwrap();
    let later = chrono::Utc::now() + chrono::Duration::hours(5);
    let share = api
        .share_at(&alice, &post.id, &account.id, "My own words", later)
        .await
        .unwrap();
    let _: Value = api
        .post(
            "/v1/users",
            &admin,
            json!({"id": "boss", "display_name": "Boss", "email": "boss@acme.example",
            "roles": ["admin", "curator", "approver", "integrator"]}),
        )
        .await
        .unwrap();
    let boss = harness.token(
        "acme",
        "boss",
        &[Role::Admin, Role::Curator, Role::Approver, Role::Integrator],
    );
    let key: Value = api
        .post(
            "/v1/api-keys",
            &admin,
            json!({"user_id": "boss", "name": "Automation", "roles": ["admin", "integrator"]}),
        )
        .await
        .unwrap();
    let key = key["key"].as_str().unwrap().to_string();
    let ids: HashMap<&str, String> = HashMap::from([
        ("account_id", account.id.clone()),
        ("share_id", share.id.clone()),
        ("post_id", other_post.id.clone()),
        ("user_id", "bystander".to_string()),
        ("id", "bystander".to_string()),
        ("topic", "jobs".to_string()),
    ]);

    for (who, token) in [("administrator", &boss), ("API key", &key)] {
        let (probed, naming) = probe_every_operation(&harness, token, &ids).await;
        assert!(probed > 80, "every operation was tried ({probed})");
        assert!(
            naming
                .iter()
                .any(|(call, _, _)| call.starts_with("POST /v1/shares")),
            "the share creation was tried: {naming:?}"
        );
        for (call, status, text) in &naming {
            assert!(
                !(200..300).contains(status),
                "{who}: {call} answered {status}: {text}"
            );
        }
    }

    // The advocate's shares are the one she made, unchanged; nothing reached the network.
    let mine: Value = api.get("/v1/shares", &alice).await.unwrap();
    let items = mine["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{mine}");
    let still: Share = api
        .get(&format!("/v1/shares/{}", share.id), &alice)
        .await
        .unwrap();
    assert_eq!(still.status, ShareStatus::Scheduled);
    assert_eq!(still.caption, "My own words");
    assert_eq!(still.text, share.text);
    assert_eq!(still.due_at, share.due_at);
    let accounts: Value = api.get("/v1/accounts", &alice).await.unwrap();
    assert_eq!(accounts[0]["status"], "connected", "{accounts}");
    assert!(
        harness.netsim.posts().is_empty(),
        "{:?}",
        harness.netsim.posts()
    );
    harness.stop().await;
}
