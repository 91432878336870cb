//! Bad input gets a clear problem+json answer and leaves nothing half-written; callers
//! cannot cross tenants or act outside their role.

use crate::harness::{Backend, Harness};
use chorus_api::Page;
use chorus_api::scheduling::Share;
use chorus_kit::Role;
use serde_json::{Value, json};

fn detail(error: &chorus::demo::ApiError) -> String {
    error.body["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_refused_and_nothing_half_written() {
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let api = &harness.api;
    let curator = harness.tenant("acme", &["alice"]).await;
    let post = harness.published_post(&curator, "Berlin summit").await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let account = api.connect_linkedin(&alice, "alice-li").await.unwrap();

    // Unknown tenant and unknown user.
    let stranger = harness.token("nowhere", "alice", &[Role::Advocate]);
    let error = api.get::<Value>("/v1/feed", &stranger).await.unwrap_err();
    assert_eq!(error.status, 401);
    assert!(detail(&error).contains("unknown tenant"), "{error}");
    let ghost = harness.token("acme", "ghost", &[Role::Advocate]);
    let error = api.get::<Value>("/v1/feed", &ghost).await.unwrap_err();
    assert_eq!(error.status, 401);
    assert!(detail(&error).contains("unknown user"), "{error}");
    let error = api
        .get::<Value>("/v1/feed", "not-a-token")
        .await
        .unwrap_err();
    assert_eq!(error.status, 401);

    // A caption over LinkedIn's limit, counted with the tracked link.
    let long = "a".repeat(2_990);
    let error = api
        .post::<Value>(
            "/v1/shares",
            &alice,
            json!({"post_id": post.id, "account_id": account.id, "caption": long}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.status, 422);
    assert_eq!(error.body["code"], "invalid");
    assert!(detail(&error).contains("linkedin allows 3000"), "{error}");

    // A share time in the past.
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    let error = api
        .post::<Value>("/v1/shares", &alice, json!({"post_id": post.id, "account_id": account.id, "caption": "hi", "scheduled_at": past}))
        .await
        .unwrap_err();
    assert_eq!(error.status, 422);
    assert!(detail(&error).contains("in the past"), "{error}");

    // Malformed JSON, as problem+json.
    let response = api
        .http
        .post(format!("{}/v1/shares", api.base_url))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body("{\"post_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );

    // Unknown post and someone else's account.
    let error = api
        .post::<Value>(
            "/v1/shares",
            &alice,
            json!({"post_id": "nope", "account_id": account.id, "caption": "hi"}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.status, 404);

    // Nothing half-written: no share exists, nothing was posted.
    let shares: Page<Share> = api.get("/v1/shares", &alice).await.unwrap();
    assert!(shares.items.is_empty(), "{:?}", shares.items);
    assert!(harness.netsim.posts().is_empty());

    // Roles: an advocate cannot curate; a curator cannot post on an advocate's account.
    let error = api
        .post::<Value>("/v1/posts", &alice, json!({"title": "x", "commentary": "y", "link_url": "https://a.example", "content_type": "brand"}))
        .await
        .unwrap_err();
    assert_eq!(error.status, 403);
    let error = api
        .post::<Value>(
            "/v1/shares",
            &curator,
            json!({"post_id": post.id, "account_id": account.id, "caption": "on behalf"}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.status, 403, "{error}");
    let error = api
        .post::<Value>("/v1/posts", &curator, json!({"title": "x", "commentary": "y", "link_url": "javascript:alert(1)", "content_type": "brand"}))
        .await
        .unwrap_err();
    assert_eq!(error.status, 422);

    // Another tenant cannot see this tenant's post, account or shares.
    let other_curator = harness.tenant("globex", &["mallory"]).await;
    let mallory = harness.token("globex", "mallory", &[Role::Advocate]);
    assert_eq!(
        api.get::<Value>(&format!("/v1/posts/{}", post.id), &other_curator)
            .await
            .unwrap_err()
            .status,
        404
    );
    let error = api
        .post::<Value>(
            "/v1/shares",
            &mallory,
            json!({"post_id": post.id, "account_id": account.id, "caption": "steal"}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.status, 404);
    harness.stop().await;
}
