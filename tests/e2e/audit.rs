//! The audit log: every change by an administrator, curator or integrator, queryable,
//! exportable, kept for the tenant's retention period, and only the tenant's.

use crate::harness::{Backend, Harness, eventually};
use chorus_api::Page;
use chorus_api::content::AuditEntry;
use chorus_api::identity::ApiKeyCreated;
use chorus_kit::Role;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use serde_json::{Value, json};
use std::time::Duration;

async fn entries(harness: &Harness, token: &str, query: &str) -> Vec<AuditEntry> {
    let page: Page<AuditEntry> = harness
        .api
        .get(&format!("/v1/audit?{query}"), token)
        .await
        .unwrap();
    page.items
}

async fn export(harness: &Harness, token: &str, query: &str) -> (u16, String, String) {
    let response = harness
        .api
        .http
        .get(format!("{}/v1/audit/export?{query}", harness.api.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

async fn audit_log_works(backend: Backend) {
    let harness = Harness::start(backend, &[]).await;
    let admin = harness.tenant("acme", &["alice"]).await;
    let api = &harness.api;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let post = harness.published_post(&admin, "Our new office").await;
    let _: Value = api
        .post("/v1/users", &admin, json!({"id": "crm", "display_name": "CRM", "email": "crm@acme.example", "roles": ["integrator"]}))
        .await
        .unwrap();
    let created: ApiKeyCreated = api
        .post(
            "/v1/api-keys",
            &admin,
            json!({"user_id": "crm", "name": "CRM", "roles": ["integrator"]}),
        )
        .await
        .unwrap();
    // A refused change is not an action; an advocate's own share is not audited.
    let refused = api
        .post::<Value>(
            "/v1/api-keys",
            &admin,
            json!({"user_id": "crm", "name": "", "roles": ["integrator"]}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 422);
    let account = api.connect_linkedin(&alice, "alice-li").await.unwrap();
    let _: Value = api
        .post(
            "/v1/shares",
            &alice,
            json!({"post_id": post.id, "account_id": account.id, "caption": "Look"}),
        )
        .await
        .unwrap();
    // The integrator's change through its key (to a local receiver the admin allowed).
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
        .post(
            "/v1/webhooks/endpoints",
            &created.key,
            json!({"url": "http://127.0.0.1:9/chorus", "event_types": ["share.published.v1"]}),
        )
        .await
        .unwrap();

    let keys = eventually(
        Duration::from_secs(10),
        "the key's creation is audited",
        || async {
            let found = entries(&harness, &admin, "action=POST%20/v1/api-keys").await;
            (!found.is_empty()).then_some(found)
        },
    )
    .await;
    assert_eq!(
        keys.len(),
        1,
        "the refused request is not in the log: {keys:?}"
    );
    assert_eq!(keys[0].actor, "carol");
    assert_eq!(keys[0].target, "/v1/api-keys");
    assert!(
        keys[0].detail.contains("status 201; via token"),
        "{}",
        keys[0].detail
    );
    let hooks = eventually(
        Duration::from_secs(10),
        "the integrator's change is audited",
        || async {
            let found = entries(&harness, &admin, "actor=crm").await;
            (!found.is_empty()).then_some(found)
        },
    )
    .await;
    assert_eq!(hooks[0].action, "POST /v1/webhooks/endpoints");
    assert!(
        hooks[0]
            .detail
            .contains(&format!("via api_key:{}", created.api_key.id)),
        "{}",
        hooks[0].detail
    );
    // Curation keeps its own, more detailed entries (not a second generic one).
    let posts = entries(&harness, &admin, "action=post.").await;
    assert!(
        posts
            .iter()
            .any(|e| e.action == "post.create" && e.detail == "Our new office"),
        "{posts:?}"
    );
    assert!(
        entries(&harness, &admin, "action=POST%20/v1/posts")
            .await
            .is_empty()
    );
    assert!(entries(&harness, &admin, "actor=alice").await.is_empty());

    // Export: NDJSON (every line an entry, oldest first) or CSV.
    let (status, content_type, body) = export(&harness, &admin, "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/x-ndjson");
    let exported: Vec<AuditEntry> = body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(exported.len() >= 4, "{body}");
    assert!(exported.windows(2).all(|pair| pair[0].id < pair[1].id));
    let (status, content_type, csv) = export(&harness, &admin, "format=csv&actor=carol").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/csv"));
    assert!(
        csv.starts_with("id,at,actor,action,target,detail\n"),
        "{csv}"
    );
    assert!(
        csv.contains(",carol,POST /v1/api-keys,/v1/api-keys,"),
        "{csv}"
    );
    let (status, _, _) = export(&harness, &admin, "format=xml").await;
    assert_eq!(status, 422);
    let (status, _, _) = export(
        &harness,
        &admin,
        "from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z",
    )
    .await;
    assert_eq!(status, 422);

    // Only administrators, and only their tenant's.
    assert_eq!(
        api.get::<Value>("/v1/audit", &alice)
            .await
            .unwrap_err()
            .status,
        403
    );
    assert_eq!(export(&harness, &alice, "").await.0, 403);
    let globex = harness.tenant("globex", &[]).await;
    let theirs = entries(&harness, &globex, "").await;
    assert!(
        theirs
            .iter()
            .all(|e| e.actor != "carol" || !e.target.contains("api-keys")),
        "{theirs:?}"
    );
    assert!(export(&harness, &globex, "actor=crm").await.2.is_empty());

    // Retention: 365 days unless set; entries past it go.
    let settings: Value = api.get("/v1/audit/settings", &admin).await.unwrap();
    assert_eq!(settings["retention_days"], 365);
    let refused = api
        .send::<Value>(
            reqwest::Method::PUT,
            "/v1/audit/settings",
            &admin,
            Some(json!({"retention_days": 7})),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 422);
    let db = sea_orm::Database::connect(harness.config.database_url("content"))
        .await
        .unwrap();
    let age = Query::update()
        .table(Alias::new("audit_log"))
        .value(
            Alias::new("at"),
            chrono::Utc::now() - chrono::TimeDelta::days(40),
        )
        .and_where(Expr::col(Alias::new("action")).eq("post.create"))
        .to_owned();
    db.execute_raw(db.get_database_backend().build(&age))
        .await
        .unwrap();
    let set: Value = api
        .send(
            reqwest::Method::PUT,
            "/v1/audit/settings",
            &admin,
            Some(json!({"retention_days": 30})),
        )
        .await
        .unwrap();
    assert_eq!(set["retention_days"], 30);
    let left = entries(&harness, &admin, "limit=500").await;
    assert!(
        !left.iter().any(|e| e.action == "post.create"),
        "the 40-day-old entry is gone"
    );
    assert!(
        left.iter().any(|e| e.action == "post.publish"),
        "recent entries stay: {left:?}"
    );
    assert!(
        left.iter()
            .any(|e| e.action == "audit.retention" && e.detail == "30 days")
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_log_on_sqlite() {
    audit_log_works(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_log_on_postgres() {
    audit_log_works(Backend::Postgres).await;
}
