//! Bad input gets a clear problem+json answer and leaves nothing half-written; callers
//! cannot cross tenants or act outside their role.

use crate::harness::{Backend, Harness};
use chorus_api::Page;
use chorus_api::scheduling::Share;
use chorus_kit::Role;
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

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

/// `Idempotency-Key` on a POST: a retry gets the first answer, not a second share; the same
/// key for another request, a malformed key and a key still in progress are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_keys_make_retries_safe() {
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let api = &harness.api;
    let curator = harness.tenant("acme", &["alice", "bob"]).await;
    let post = harness.published_post(&curator, "Berlin summit").await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let bob = harness.token("acme", "bob", &[Role::Advocate]);
    let account = api.connect_linkedin(&alice, "alice-li").await.unwrap();
    let share = |caption: &str| {
        json!({"post_id": post.id, "account_id": account.id, "caption": caption,
               "scheduled_at": chrono::Utc::now() + chrono::Duration::days(2)})
    };
    let send = |token: &str, key: &str, body: &Value| {
        api.http
            .post(format!("{}/v1/shares", api.base_url))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
    };
    let shares = || async {
        api.get::<Page<Share>>("/v1/shares", &alice)
            .await
            .unwrap()
            .items
            .len()
    };

    let body = share("Come to Berlin");
    let first = send(&alice, "key-1", &body).await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();

    // The retry: same status and body, marked as replayed, still one share.
    let again = send(&alice, "key-1", &body).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        again.headers()["content-type"],
        "application/json",
        "the content type is replayed"
    );
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first);
    assert_eq!(shares().await, 1);

    // The same key for another body: refused, nothing created.
    let other = send(&alice, "key-1", &share("Another caption"))
        .await
        .unwrap();
    assert_eq!(other.status(), 422);
    let other: Value = other.json().await.unwrap();
    assert!(
        other["detail"]
            .as_str()
            .unwrap()
            .contains("different request"),
        "{other}"
    );
    assert_eq!(shares().await, 1);

    // Keys belong to their caller: bob's "key-1" is his own (he cannot use alice's account).
    let bobs = send(&bob, "key-1", &body).await.unwrap();
    assert!(bobs.headers().get("idempotent-replayed").is_none());
    assert_ne!(bobs.status(), 201);

    // A malformed key.
    let malformed = send(&alice, "not a key", &body).await.unwrap();
    assert_eq!(malformed.status(), 422);
    assert_eq!(shares().await, 1);

    // A key whose first request is still running (its reservation in the bucket, no
    // response yet): 409 with Retry-After, and nothing created.
    let bucket = harness.bus.idempotency().await.unwrap();
    let reserved = chorus_gateway::idempotency::scoped_key("acme", "alice", "token", "key-2");
    let in_progress = json!({"fingerprint": "whatever", "started_at_ms": chrono::Utc::now().timestamp_millis(), "response": null});
    bucket
        .put(&reserved, serde_json::to_vec(&in_progress).unwrap().into())
        .await
        .unwrap();
    let body2 = share("Second share");
    let busy = send(&alice, "key-2", &body2).await.unwrap();
    // The fingerprint differs from the reservation's: another request, refused.
    assert_eq!(busy.status(), 422);
    // Same request as `body2`, reserved by a request that is still running.
    let fingerprint_of_body2 = chorus_gateway::idempotency::request_fingerprint(
        "POST",
        "/v1/shares",
        &serde_json::to_vec(&body2).unwrap(),
    );
    let running = json!({"fingerprint": fingerprint_of_body2, "started_at_ms": chrono::Utc::now().timestamp_millis(), "response": null});
    bucket
        .put(&reserved, serde_json::to_vec(&running).unwrap().into())
        .await
        .unwrap();
    let busy = send(&alice, "key-2", &body2).await.unwrap();
    assert_eq!(busy.status(), 409);
    assert_eq!(busy.headers()["retry-after"], "1");
    assert_eq!(shares().await, 1);

    // Abandoned by a gateway that stopped (older than a minute): the retry takes it over.
    let abandoned = json!({"fingerprint": fingerprint_of_body2, "started_at_ms": chrono::Utc::now().timestamp_millis() - 120_000, "response": null});
    bucket
        .put(&reserved, serde_json::to_vec(&abandoned).unwrap().into())
        .await
        .unwrap();
    let taken_over = send(&alice, "key-2", &body2).await.unwrap();
    assert_eq!(taken_over.status(), 201);
    assert_eq!(shares().await, 2);
    let replayed = send(&alice, "key-2", &body2).await.unwrap();
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(shares().await, 2);

    harness.stop().await;
}

/// Keys hold for every credential (they used to guard development tokens only: an API key's
/// retry created a second post), and a request whose answer was lost after it reached its
/// service keeps its key reserved as "outcome unknown": the retry is told to wait instead of
/// running it a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_keys_hold_for_api_keys_and_lost_answers() {
    let harness = Harness::start_with(Backend::Sqlite, &["scheduling"], |config| {
        config.gateway.rpc_timeout_ms = 1_500;
    })
    .await;
    let api = &harness.api;
    let admin = harness.tenant("acme", &["alice"]).await;
    let _: Value = api
        .post(
            "/v1/users",
            &admin,
            json!({"id": "cms", "display_name": "CMS sync",
            "email": "cms@acme.example", "roles": ["curator"]}),
        )
        .await
        .unwrap();
    let created: chorus_api::identity::ApiKeyCreated = api
        .post(
            "/v1/api-keys",
            &admin,
            json!({"user_id": "cms", "name": "CMS", "roles": ["curator"]}),
        )
        .await
        .unwrap();
    let send = |token: &str, path: &str, key: &str, body: &Value| {
        api.http
            .post(format!("{}{path}", api.base_url))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
    };
    let draft = json!({"title": "From the CMS", "commentary": "Suggested words",
        "link_url": "https://example.com/cms", "content_type": "company_news", "topics": ["news"]});
    let first = send(&created.key, "/v1/posts", "cms-1", &draft)
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let again = send(&created.key, "/v1/posts", "cms-1", &draft)
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let posts: Page<chorus_api::content::Post> = api.get("/v1/posts", &admin).await.unwrap();
    let from_cms = posts
        .items
        .iter()
        .filter(|post| post.title == "From the CMS")
        .count();
    assert_eq!(from_cms, 1, "the API key's retry created nothing");

    // Scheduling takes the share and never answers (as if its reply were lost).
    let client = async_nats::connect(harness.nats.url()).await.unwrap();
    let mut taken = client
        .subscribe(chorus_bus::rpc::subject("scheduling", "share_create"))
        .await
        .unwrap();
    let post = harness.published_post(&admin, "Lost answers").await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let account = api.connect_linkedin(&alice, "alice-li").await.unwrap();
    let share = json!({"post_id": post.id, "account_id": account.id, "caption": "Lost"});
    let lost = send(&alice, "/v1/shares", "share-1", &share).await.unwrap();
    assert_eq!(lost.status(), 503);
    let request = tokio::time::timeout(Duration::from_secs(5), taken.next())
        .await
        .unwrap()
        .unwrap();
    let create: chorus_api::scheduling::CreateShare =
        serde_json::from_slice(&request.payload).unwrap();
    assert_eq!(
        create.request_key.as_deref(),
        Some(chorus_gateway::idempotency::bucket_key("acme", "alice", "share-1").as_str()),
        "scheduling is told the key, to de-duplicate by it"
    );
    let retry = send(&alice, "/v1/shares", "share-1", &share).await.unwrap();
    assert_eq!(retry.status(), 409);
    let wait: u64 = retry.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (2..=60).contains(&wait),
        "wait until the first is abandoned: {wait}"
    );
    let problem: Value = retry.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("may have taken effect"),
        "{problem}"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(500), taken.next())
            .await
            .is_err(),
        "the retry did not reach scheduling"
    );
    harness.stop().await;
}

/// Scheduling creates one share per request key, however often the request comes (a retry
/// after the gateway's record of the key is gone, or two at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_share_request_repeated_with_its_key_creates_one_share() {
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let api = &harness.api;
    let curator = harness.tenant("acme", &["alice"]).await;
    let post = harness.published_post(&curator, "Once").await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let account = api.connect_linkedin(&alice, "alice-li").await.unwrap();
    let caller = chorus_kit::Caller {
        tenant_id: "acme".into(),
        user_id: "alice".into(),
        roles: vec![Role::Advocate],
    };
    let create = chorus_api::scheduling::CreateShare {
        post_id: post.id.clone(),
        account_id: account.id.clone(),
        network: "linkedin".into(),
        caption: "Only once".into(),
        scheduled_at: Some(chrono::Utc::now() + chrono::Duration::days(1)),
        next_slot: false,
        link_url: "https://careers.example.com/lyon".into(),
        image_url: None,
        image_alt: None,
        request_key: Some("k-hashed-request".into()),
    };
    let client = async_nats::connect(harness.nats.url()).await.unwrap();
    let subject = chorus_bus::rpc::subject("scheduling", "share_create");
    let calls = (0..4).map(|_| {
        chorus_bus::rpc::call::<_, Share>(
            &client,
            &subject,
            &caller,
            &create,
            Duration::from_secs(10),
        )
    });
    let created = futures::future::join_all(calls).await;
    let ids: std::collections::HashSet<String> =
        created.into_iter().map(|share| share.unwrap().id).collect();
    assert_eq!(ids.len(), 1, "one share for one key: {ids:?}");
    let shares: Page<Share> = api.get("/v1/shares", &alice).await.unwrap();
    assert_eq!(shares.items.len(), 1);
    harness.stop().await;
}
