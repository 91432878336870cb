//! API keys for integrators: shown once, stored hashed, limited to the user's roles (never
//! advocate), refused when wrong or revoked, with their last use.

use crate::harness::{Backend, Harness};
use chorus_api::identity::{ApiKeyCreated, ApiKeys};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn integrators_use_scoped_revocable_api_keys() {
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let admin = harness.tenant("acme", &["alice"]).await;
    let other_admin = harness.tenant("globex", &[]).await;
    let api = &harness.api;
    let _: Value = api
        .post(
            "/v1/users",
            &admin,
            json!({"id": "crm", "display_name": "CRM sync", "email": "crm@acme.example",
                   "roles": ["integrator"]}),
        )
        .await
        .unwrap();
    let alice = harness.token("acme", "alice", &[chorus_kit::Role::Advocate]);

    // Only admins issue keys, and only with roles the user holds, never advocate.
    let body = |roles: Value| json!({"user_id": "crm", "name": "CRM sync", "roles": roles});
    let refused = api
        .post::<Value>("/v1/api-keys", &alice, body(json!(["integrator"])))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 403);
    for (roles, says) in [
        (json!(["advocate"]), "cannot carry the role advocate"),
        (json!(["admin"]), "does not hold the role admin"),
        (json!([]), "at least one role"),
    ] {
        let refused = api
            .post::<Value>("/v1/api-keys", &admin, body(roles))
            .await
            .unwrap_err();
        assert_eq!(refused.status, 422);
        assert!(
            refused.body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{}",
            refused.body
        );
    }
    let created: ApiKeyCreated = api
        .post("/v1/api-keys", &admin, body(json!(["integrator"])))
        .await
        .unwrap();
    let key = created.key.clone();
    assert!(key.starts_with("chk_acme_"), "{key}");
    assert!(created.api_key.last_used_at.is_none());

    // The key works as the integrator, and only as the integrator.
    let types: Value = api.get("/v1/webhooks/event-types", &key).await.unwrap();
    assert!(
        types["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty())
    );
    let refused = api
        .post::<Value>("/v1/api-keys", &key, body(json!(["integrator"])))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 403, "a key does not issue keys");
    let refused = api
        .post::<Value>(
            "/v1/shares",
            &key,
            json!({"post_id": "p", "account_id": "a", "caption": "hello"}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 403, "a key never shares: {}", refused.body);

    // The listing shows the use and never the key.
    let listed: ApiKeys = api.get("/v1/api-keys", &admin).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(listed.items[0].last_used_at.is_some());
    let text = serde_json::to_string(&listed).unwrap();
    assert!(
        !text.contains(&key[key.len() - 64..]),
        "the secret is not shown again"
    );
    let theirs: ApiKeys = api.get("/v1/api-keys", &other_admin).await.unwrap();
    assert!(theirs.items.is_empty(), "another tenant sees none");

    // A tampered key, or one presented under another tenant, is refused.
    let mut tampered = key.clone();
    tampered.pop();
    tampered.push(if key.ends_with('0') { '1' } else { '0' });
    let refused = api
        .get::<Value>("/v1/webhooks/event-types", &tampered)
        .await
        .unwrap_err();
    assert_eq!(refused.status, 401);
    let moved = key.replacen("chk_acme_", "chk_globex_", 1);
    let refused = api
        .get::<Value>("/v1/webhooks/event-types", &moved)
        .await
        .unwrap_err();
    assert_eq!(refused.status, 401);
    let refused = api
        .send::<Value>(
            reqwest::Method::DELETE,
            &format!("/v1/api-keys/{}", created.api_key.id),
            &other_admin,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 404, "another tenant cannot revoke it");

    // Revoked: refused at once.
    let revoked: Value = api
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/api-keys/{}", created.api_key.id),
            &admin,
            None,
        )
        .await
        .unwrap();
    assert!(revoked["revoked_at"].is_string());
    let refused = api
        .get::<Value>("/v1/webhooks/event-types", &key)
        .await
        .unwrap_err();
    assert_eq!(refused.status, 401);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("revoked")
    );
    harness.stop().await;
}
