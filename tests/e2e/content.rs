//! The content library through the gateway: validation, compliance, lifecycle and audit,
//! targeting and language variants, the feed's order, search and pages, read-only and
//! expiring posts, submissions, share counts, optimistic concurrency, isolation, surveys.

use crate::harness::{Backend, Harness, eventually};
use chorus::demo::ApiError;
use chorus_api::Page;
use chorus_api::content::{AuditEntry, FeedItem, Post, PostStatus, Submission, SubmissionStatus};
use chorus_api::scheduling::Share;
use chorus_api::surveys::{Survey, SurveyResults};
use chorus_kit::Role;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn content_library_on_sqlite() {
    content_library(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn content_library_on_postgres() {
    content_library(Backend::Postgres).await;
}

fn detail(error: &ApiError) -> String {
    error.body["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn post_body(title: &str, extra: Value) -> Value {
    let mut body = json!({"title": title, "commentary": format!("About {title}"), "link_url": "https://www.acme.example/news",
        "content_type": "company_news"});
    if let (Some(object), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            object.insert(key.clone(), value.clone());
        }
    }
    body
}

struct People {
    curator: String,
    approver: String,
    alice: String,
    bob: String,
    engineers: Vec<String>,
    sellers: Vec<String>,
}

async fn people(harness: &Harness) -> People {
    let api = &harness.api;
    let operator = harness.token("acme", "ops", &[Role::Operator]);
    let _: Value = api
        .post(
            "/v1/tenants",
            &operator,
            json!({"id": "acme", "name": "Acme"}),
        )
        .await
        .unwrap();
    let create = |id: &str, roles: Value, department: &str, location: &str, language: &str| {
        let body = json!({"id": id, "display_name": format!("{id} name"), "email": format!("{id}@acme.example"), "roles": roles,
            "department": department, "location": location, "language": language});
        let api = api.clone();
        let operator = operator.clone();
        async move {
            let _: Value = api.post("/v1/users", &operator, body).await.unwrap();
        }
    };
    create(
        "carol",
        json!(["curator", "admin"]),
        "marketing",
        "paris",
        "en",
    )
    .await;
    create("abe", json!(["approver"]), "legal", "paris", "en").await;
    create("alice", json!(["advocate"]), "sales", "paris", "fr").await;
    create("bob", json!(["advocate"]), "engineering", "london", "en").await;
    let engineers: Vec<String> = (1..=5).map(|n| format!("eng{n}")).collect();
    for id in &engineers {
        create(id, json!(["advocate"]), "engineering", "london", "en").await;
    }
    let sellers = ["sell1".to_string()];
    create("sell1", json!(["advocate"]), "sales", "paris", "en").await;
    People {
        curator: harness.token("acme", "carol", &[Role::Curator, Role::Admin]),
        approver: harness.token("acme", "abe", &[Role::Approver]),
        alice: harness.token("acme", "alice", &[Role::Advocate]),
        bob: harness.token("acme", "bob", &[Role::Advocate]),
        engineers: engineers
            .iter()
            .map(|id| harness.token("acme", id, &[Role::Advocate]))
            .collect(),
        sellers: sellers
            .iter()
            .map(|id| harness.token("acme", id, &[Role::Advocate]))
            .collect(),
    }
}

async fn publish(harness: &Harness, curator: &str, body: Value) -> Post {
    let post: Post = harness.api.post("/v1/posts", curator, body).await.unwrap();
    harness
        .api
        .post(
            &format!("/v1/posts/{}/publish", post.id),
            curator,
            json!({}),
        )
        .await
        .unwrap()
}

async fn feed(harness: &Harness, token: &str, query: &str) -> Vec<FeedItem> {
    let page: Page<FeedItem> = harness
        .api
        .get(&format!("/v1/feed{query}"), token)
        .await
        .unwrap();
    page.items
}

async fn content_library(backend: Backend) {
    let harness = Harness::start(backend, &[]).await;
    let api = &harness.api;
    let people = people(&harness).await;
    let curator = &people.curator;

    // Validation, field by field, as problem+json.
    let bad = |extra: Value| post_body("Bad", extra);
    for (body, expected) in [
        (
            bad(json!({"link_url": "ftp://files.acme.example"})),
            "link_url must be an http(s) URL",
        ),
        (
            bad(json!({"title": ""})),
            "title must be 1 to 300 characters",
        ),
        (
            bad(
                json!({"media": [{"url": "https://cdn.acme.example/a.png", "kind": "image", "mime_type": "image/png", "size_bytes": 1000}]}),
            ),
            "alt_text",
        ),
        (
            bad(
                json!({"media": [{"url": "https://cdn.acme.example/a.exe", "kind": "image", "mime_type": "application/x-msdownload", "size_bytes": 10, "alt_text": "x"}]}),
            ),
            "mime_type",
        ),
        (
            bad(
                json!({"media": [{"url": "https://cdn.acme.example/a.png", "kind": "image", "mime_type": "image/png", "size_bytes": 9000000, "alt_text": "x"}]}),
            ),
            "size_bytes",
        ),
        (
            bad(json!({"captions": [{"network": "x", "text": "a".repeat(260)}]})),
            "x allows 280",
        ),
        (
            bad(json!({"captions": [{"network": "instagram", "text": "Look"}]})),
            "instagram posts need an image",
        ),
        (
            bad(json!({"captions": [{"network": "bluesky", "text": "👍".repeat(290)}]})),
            "bluesky allows 300",
        ),
        (
            bad(
                json!({"available_from": "2026-12-02T00:00:00Z", "available_until": "2026-12-01T00:00:00Z"}),
            ),
            "available_until",
        ),
    ] {
        let error = api
            .post::<Value>("/v1/posts", curator, body)
            .await
            .unwrap_err();
        assert_eq!(error.status, 422, "{error}");
        assert!(detail(&error).contains(expected), "{expected}: {error}");
    }
    // Markup is kept as plain text, never interpreted.
    let markup: Post = api
        .post(
            "/v1/posts",
            curator,
            post_body(
                "<b>Bold</b>",
                json!({"commentary": "<script>alert(1)</script>"}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(markup.title, "<b>Bold</b>");
    assert_eq!(markup.commentary, "<script>alert(1)</script>");

    // Compliance rules: banned terms with their position, disclosures, approval topics.
    let admin_rule = |kind: &str, value: &str, types: Value| json!({"kind": kind, "value": value, "content_types": types});
    let error = api
        .post::<Value>(
            "/v1/compliance/rules",
            &people.alice,
            admin_rule("banned_term", "x", json!([])),
        )
        .await
        .unwrap_err();
    assert_eq!(error.status, 403);
    let _: Value = api
        .post(
            "/v1/compliance/rules",
            curator,
            admin_rule("banned_term", "guarantee", json!([])),
        )
        .await
        .unwrap();
    let _: Value = api
        .post(
            "/v1/compliance/rules",
            curator,
            admin_rule("mandatory_disclosure", "#employee", json!(["brand"])),
        )
        .await
        .unwrap();
    let _: Value = api
        .post(
            "/v1/compliance/rules",
            curator,
            admin_rule("approval_topic", "finance", json!([])),
        )
        .await
        .unwrap();
    let error = api
        .post::<Value>(
            "/v1/posts",
            curator,
            post_body("Returns", json!({"commentary": "We guarantee returns"})),
        )
        .await
        .unwrap_err();
    assert_eq!(error.status, 422);
    assert!(
        detail(&error).contains("commentary contains the banned term \"guarantee\" at character 3"),
        "{error}"
    );

    // Lifecycle with review: a finance post needs an approver other than its author.
    let finance: Post = api
        .post(
            "/v1/posts",
            curator,
            post_body("Quarterly results", json!({"topics": ["finance"]})),
        )
        .await
        .unwrap();
    let error = api
        .post::<Value>(
            &format!("/v1/posts/{}/publish", finance.id),
            curator,
            json!({}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.status, 409);
    assert!(detail(&error).contains("approval"), "{error}");
    let in_review: Post = api
        .post(
            &format!("/v1/posts/{}/submit", finance.id),
            curator,
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(in_review.status, PostStatus::InReview);
    let error = api
        .post::<Value>(
            &format!("/v1/posts/{}/approve", finance.id),
            curator,
            json!({}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.status, 403, "the author cannot approve: {error}");
    let error = api
        .post::<Value>(
            &format!("/v1/posts/{}/request-changes", finance.id),
            &people.approver,
            json!({}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.status, 422, "changes need a reason");
    let approved: Post = api
        .post(
            &format!("/v1/posts/{}/approve", finance.id),
            &people.approver,
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(approved.status, PostStatus::Approved);
    let published: Post = api
        .post(
            &format!("/v1/posts/{}/publish", finance.id),
            curator,
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(published.status, PostStatus::Published);
    let audit: Page<AuditEntry> = api.get("/v1/audit?limit=100", curator).await.unwrap();
    let actions: Vec<(&str, &str)> = audit
        .items
        .iter()
        .filter(|e| e.target == finance.id)
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("post.publish", "carol"),
            ("post.approve", "abe"),
            ("post.submit_for_review", "carol"),
            ("post.create", "carol")
        ]
    );
    assert!(
        audit
            .items
            .iter()
            .any(|entry| entry.action == "rule.create" && entry.detail == "banned_term guarantee")
    );
    assert_eq!(
        api.get::<Value>("/v1/audit", &people.alice)
            .await
            .unwrap_err()
            .status,
        403
    );

    // Targeting and language variants.
    let everyone = publish(&harness, curator, post_body("Hiring in Lyon", json!({"topics": ["jobs"], "content_type": "employer_branding",
        "variants": [{"language": "fr", "title": "On recrute à Lyon", "commentary": "Rejoignez-nous",
                      "captions": [{"network": "linkedin", "text": "Mon équipe recrute !"}]}],
        "captions": [{"network": "linkedin", "text": "My team is hiring!"}, {"network": "linkedin", "text": "Join my team in Lyon"}]}))).await;
    let engineering = publish(&harness, curator, post_body("Engineering blog", json!({"targeting": {"departments": ["engineering"]}, "commentary": "Our hackathon results"}))).await;
    let french = publish(
        &harness,
        curator,
        post_body(
            "Nouvelles de Paris",
            json!({"language": "fr", "targeting": {"languages": ["fr"]}}),
        ),
    )
    .await;
    let brand = publish(
        &harness,
        curator,
        post_body("New product", json!({"content_type": "brand"})),
    )
    .await;
    let internal = publish(
        &harness,
        curator,
        post_body("Office closed Friday", json!({"read_only": true})),
    )
    .await;
    let alice_feed = feed(&harness, &people.alice, "?limit=50").await;
    let alice_ids: Vec<&str> = alice_feed
        .iter()
        .map(|item| item.post_id.as_str())
        .collect();
    assert!(alice_ids.contains(&everyone.id.as_str()) && alice_ids.contains(&french.id.as_str()));
    assert!(
        !alice_ids.contains(&engineering.id.as_str()),
        "not aimed at sales"
    );
    let in_french = alice_feed
        .iter()
        .find(|item| item.post_id == everyone.id)
        .unwrap();
    assert_eq!(
        (in_french.title.as_str(), in_french.language.as_str()),
        ("On recrute à Lyon", "fr")
    );
    assert_eq!(in_french.captions[0].text, "Mon équipe recrute !");
    let bob_feed = feed(&harness, &people.bob, "?limit=50").await;
    let bob_ids: Vec<&str> = bob_feed.iter().map(|item| item.post_id.as_str()).collect();
    assert!(bob_ids.contains(&engineering.id.as_str()) && !bob_ids.contains(&french.id.as_str()));
    let in_english = bob_feed
        .iter()
        .find(|item| item.post_id == everyone.id)
        .unwrap();
    assert_eq!(in_english.title, "Hiring in Lyon");
    assert_eq!(
        in_english.captions.len(),
        2,
        "several suggestions per network"
    );
    assert!(
        !bob_ids.contains(&markup.id.as_str()),
        "drafts are not in the feed"
    );
    assert_eq!(
        api.get::<Value>(&format!("/v1/posts/{}", markup.id), &people.bob)
            .await
            .unwrap_err()
            .status,
        404
    );

    // Order: followed topics first; fresh before old; then what I shared goes after.
    assert_eq!(bob_feed[0].post_id, internal.id, "freshest first");
    let topics: Value = api
        .send(
            reqwest::Method::PUT,
            "/v1/me/topics/jobs",
            &people.bob,
            None,
        )
        .await
        .unwrap();
    assert_eq!(topics["topics"], json!(["jobs"]));
    let bob_feed = feed(&harness, &people.bob, "").await;
    assert_eq!(bob_feed[0].post_id, everyone.id);
    assert!(bob_feed[0].followed_topic);
    let shared = |user: &str, post: &str| chorus_events::share::v1::SharePublished {
        tenant_id: "acme".into(),
        share_id: uuid::Uuid::new_v4().to_string(),
        user_id: user.into(),
        post_id: post.into(),
        network: "linkedin".into(),
        ..Default::default()
    };
    harness
        .bus
        .publish_event(&shared("bob", &everyone.id), "test")
        .await
        .unwrap();
    harness
        .bus
        .publish_event(&shared("eng1", &everyone.id), "test")
        .await
        .unwrap();
    harness
        .bus
        .publish_event(&shared("eng1", &everyone.id), "test")
        .await
        .unwrap();
    let bob_feed = eventually(
        Duration::from_secs(10),
        "shared post moves down",
        || async {
            let items = feed(&harness, &people.bob, "").await;
            (items.last()?.post_id == everyone.id).then_some(items)
        },
    )
    .await;
    let last = bob_feed.last().unwrap();
    assert!(last.shared_by_me);
    assert_eq!(last.shared_by_colleagues, 1);

    // Share counts without names unless the sharer agreed.
    let _: Value = api
        .send(
            reqwest::Method::PUT,
            "/v1/me/preferences/content",
            &people.bob,
            Some(json!({"show_my_shares": true})),
        )
        .await
        .unwrap();
    let counted: Post = api
        .get(&format!("/v1/posts/{}", everyone.id), &people.alice)
        .await
        .unwrap();
    assert_eq!((counted.share_count, counted.shared_by_colleagues), (3, 2));
    assert_eq!(counted.shared_by_visible, vec!["bob name".to_string()]);

    // Search, topic filter and pages.
    let found = feed(&harness, &people.bob, "?q=HACKATHON%20results").await;
    assert_eq!(
        found
            .iter()
            .map(|item| item.post_id.as_str())
            .collect::<Vec<_>>(),
        vec![engineering.id.as_str()]
    );
    assert_eq!(feed(&harness, &people.bob, "?topic=jobs").await.len(), 1);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("/v1/feed?limit=2&cursor={cursor}"),
            None => "/v1/feed?limit=2".into(),
        };
        let page: Page<FeedItem> = api.get(&query, &people.bob).await.unwrap();
        seen.extend(page.items.into_iter().map(|item| item.post_id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let all: Vec<String> = feed(&harness, &people.bob, "?limit=100")
        .await
        .into_iter()
        .map(|item| item.post_id)
        .collect();
    assert_eq!(seen, all, "pages cover the feed once, in order");
    assert_eq!(
        api.get::<Value>("/v1/feed?cursor=garbage", &people.bob)
            .await
            .unwrap_err()
            .status,
        422
    );

    // Optimistic concurrency on edits.
    let response = api
        .http
        .get(format!("{}/v1/posts/{}", api.base_url, brand.id))
        .bearer_auth(curator)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["etag"], format!("\"{}\"", brand.version));
    let edit = |version: i64| {
        api.http
            .put(format!("{}/v1/posts/{}", api.base_url, brand.id))
            .bearer_auth(curator)
            .header("if-match", format!("\"{version}\""))
            .json(&post_body(
                "New product, now shipping",
                json!({"content_type": "brand"}),
            ))
    };
    let response = edit(brand.version).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["etag"],
        format!("\"{}\"", brand.version + 1)
    );
    assert_eq!(
        edit(brand.version).send().await.unwrap().status().as_u16(),
        412,
        "a stale ETag is refused"
    );

    // Sharing: read-only posts cannot be shared, banned terms are refused, disclosures appended.
    let account = api
        .connect_linkedin(&people.alice, "alice-li")
        .await
        .unwrap();
    let share = |post_id: &str, caption: &str| json!({"post_id": post_id, "account_id": account.id, "caption": caption});
    let error = api
        .post::<Value>(
            "/v1/shares",
            &people.alice,
            share(&internal.id, "Office news"),
        )
        .await
        .unwrap_err();
    assert!(detail(&error).contains("internal news"), "{error}");
    let error = api
        .post::<Value>(
            "/v1/shares",
            &people.alice,
            share(&brand.id, "I guarantee you will love it"),
        )
        .await
        .unwrap_err();
    assert!(detail(&error).contains("banned term"), "{error}");
    let disclosed: Share = api
        .post(
            "/v1/shares",
            &people.alice,
            share(&brand.id, "I love our new product"),
        )
        .await
        .unwrap();
    assert_eq!(disclosed.caption, "I love our new product #employee");
    let plain: Share = api
        .post(
            "/v1/shares",
            &people.alice,
            share(&everyone.id, "Come work with me"),
        )
        .await
        .unwrap();
    assert_eq!(
        plain.caption, "Come work with me",
        "no disclosure for employer branding"
    );

    // Expiry: gone from the feed at available_until, and expired for curators.
    let soon = chrono::Utc::now() + chrono::Duration::seconds(2);
    let expiring = publish(
        &harness,
        curator,
        post_body("Flash event", json!({"available_until": soon})),
    )
    .await;
    assert!(
        feed(&harness, &people.bob, "?limit=100")
            .await
            .iter()
            .any(|item| item.post_id == expiring.id)
    );
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert!(
        !feed(&harness, &people.bob, "?limit=100")
            .await
            .iter()
            .any(|item| item.post_id == expiring.id)
    );
    let expired: Post = api
        .get(&format!("/v1/posts/{}", expiring.id), curator)
        .await
        .unwrap();
    assert_eq!(expired.status, PostStatus::Expired);
    let error = api
        .post::<Value>("/v1/shares", &people.alice, share(&expiring.id, "late"))
        .await
        .unwrap_err();
    assert!(detail(&error).contains("expired"), "{error}");

    // Submissions: approved into a post crediting the author, or rejected with a reason.
    let proposal = json!({"title": "Our hackathon", "link_url": "https://blog.example.org/hack", "text": "48 hours, one tracker", "topics": ["engineering"]});
    let submission: Submission = api
        .post("/v1/submissions", &people.alice, proposal.clone())
        .await
        .unwrap();
    let other: Submission = api
        .post("/v1/submissions", &people.bob, proposal)
        .await
        .unwrap();
    let mine: Page<Submission> = api.get("/v1/submissions", &people.alice).await.unwrap();
    assert_eq!(
        mine.items.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        vec![submission.id.as_str()],
        "advocates see their own"
    );
    assert_eq!(
        api.post::<Value>(
            &format!("/v1/submissions/{}/approve", submission.id),
            &people.bob,
            json!({})
        )
        .await
        .unwrap_err()
        .status,
        403
    );
    let approved: Submission = api
        .post(
            &format!("/v1/submissions/{}/approve", submission.id),
            curator,
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(approved.status, SubmissionStatus::Approved);
    let credited: Post = api
        .get(&format!("/v1/posts/{}", approved.post_id.unwrap()), curator)
        .await
        .unwrap();
    assert_eq!(
        (credited.submitted_by.as_deref(), credited.status),
        (Some("alice"), PostStatus::Approved)
    );
    assert_eq!(
        api.post::<Value>(
            &format!("/v1/submissions/{}/reject", other.id),
            curator,
            json!({})
        )
        .await
        .unwrap_err()
        .status,
        422
    );
    let rejected: Submission = api
        .post(
            &format!("/v1/submissions/{}/reject", other.id),
            curator,
            json!({"reason": "Already covered"}),
        )
        .await
        .unwrap();
    let seen_by_bob: Page<Submission> = api.get("/v1/submissions", &people.bob).await.unwrap();
    assert_eq!(
        seen_by_bob.items[0].reason.as_deref(),
        Some("Already covered")
    );
    assert_eq!(rejected.status, SubmissionStatus::Rejected);
    assert_eq!(
        api.post::<Value>(
            &format!("/v1/submissions/{}/approve", other.id),
            curator,
            json!({})
        )
        .await
        .unwrap_err()
        .status,
        409
    );

    // Surveys and eNPS with the anonymity threshold.
    let survey_body = json!({"title": "Monthly pulse", "recurrence": "monthly", "questions": [
        {"id": "enps", "kind": "enps"},
        {"id": "load", "kind": "scale", "text": "Workload?", "min": 1, "max": 5},
        {"id": "tool", "kind": "choice", "text": "Best tool?", "options": ["Chorus", "Email"]},
        {"id": "idea", "kind": "text", "text": "One change?"}]});
    let too_many: Vec<Value> = (0..11)
        .map(|n| json!({"id": format!("q{n}"), "kind": "text", "text": "?"}))
        .collect();
    assert_eq!(
        api.post::<Value>(
            "/v1/surveys",
            curator,
            json!({"title": "Long", "recurrence": "once", "questions": too_many})
        )
        .await
        .unwrap_err()
        .status,
        422
    );
    let survey: Survey = api.post("/v1/surveys", curator, survey_body).await.unwrap();
    assert_eq!(survey.questions[0].text, chorus_api::surveys::ENPS_QUESTION);
    let answer = |score: i64, load: i64, tool: &str| {
        json!({"answers": [
        {"question_id": "enps", "value": score}, {"question_id": "load", "value": load},
        {"question_id": "tool", "value": tool}, {"question_id": "idea", "value": format!("idea {score}")}]})
    };
    let path = format!("/v1/surveys/{}/answers", survey.id);
    assert_eq!(
        api.post::<Value>(&path, &people.bob, answer(11, 3, "Chorus"))
            .await
            .unwrap_err()
            .status,
        422
    );
    // Engineering: 10, 9, 9, 8, 6, 0 (3 promoters, 1 passive, 2 detractors); sales: 10, 3.
    let engineers: Vec<&String> = std::iter::once(&people.bob)
        .chain(people.engineers.iter())
        .collect();
    for (token, score) in engineers.iter().zip([10, 9, 9, 8, 6, 0]) {
        let _: Survey = api
            .post(&path, token, answer(score, 4, "Chorus"))
            .await
            .unwrap();
    }
    let _: Survey = api
        .post(&path, &people.alice, answer(10, 2, "Email"))
        .await
        .unwrap();
    let _: Survey = api
        .post(&path, &people.sellers[0], answer(3, 1, "Email"))
        .await
        .unwrap();
    assert_eq!(
        api.post::<Value>(&path, &people.alice, answer(10, 2, "Email"))
            .await
            .unwrap_err()
            .status,
        409,
        "once per period"
    );
    let listed: Vec<Survey> = api.get("/v1/surveys", &people.alice).await.unwrap();
    assert!(listed[0].answered);
    assert_eq!(
        api.get::<Value>(&format!("/v1/surveys/{}/results", survey.id), &people.alice)
            .await
            .unwrap_err()
            .status,
        403
    );
    let results: SurveyResults = api
        .get(&format!("/v1/surveys/{}/results", survey.id), curator)
        .await
        .unwrap();
    assert_eq!(results.responses, 8);
    // Overall: promoters 10, 9, 9, 10 = 4; detractors 6, 0, 3 = 3; (4 - 3) / 8 = 12.5.
    let overall = results.enps.clone().unwrap();
    assert_eq!(
        (
            overall.score,
            overall.promoters,
            overall.passives,
            overall.detractors
        ),
        (12.5, 4, 1, 3)
    );
    assert_eq!(
        results.departments.len(),
        1,
        "sales has fewer than five answers"
    );
    assert_eq!(results.departments[0].department, "engineering");
    assert_eq!(results.departments[0].enps.as_ref().unwrap().score, 16.7);
    assert_eq!(results.departments_below_threshold, 1);
    let load = results
        .questions
        .iter()
        .find(|q| q.question_id == "load")
        .unwrap();
    assert_eq!(load.mean, Some(3.38), "(6 x 4 + 2 + 1) / 8 = 3.375");
    let tool = results
        .questions
        .iter()
        .find(|q| q.question_id == "tool")
        .unwrap();
    assert_eq!(
        tool.counts,
        vec![("Chorus".to_string(), 6), ("Email".to_string(), 2)]
    );
    let text = serde_json::to_string(&results).unwrap();
    for person in ["alice", "bob", "eng1", "sell1"] {
        assert!(!text.contains(person), "results never name anyone");
    }
    let small: Survey = api.post("/v1/surveys", curator, json!({"title": "Tiny", "recurrence": "once", "questions": [{"id": "enps", "kind": "enps"}]})).await.unwrap();
    for token in [&people.bob, &people.alice, &people.engineers[0]] {
        let _: Survey = api
            .post(
                &format!("/v1/surveys/{}/answers", small.id),
                token,
                json!({"answers": [{"question_id": "enps", "value": 10}]}),
            )
            .await
            .unwrap();
    }
    let hidden: SurveyResults = api
        .get(&format!("/v1/surveys/{}/results", small.id), curator)
        .await
        .unwrap();
    assert_eq!(
        (
            hidden.responses,
            hidden.enps.is_none(),
            hidden.questions.is_empty()
        ),
        (3, true, true)
    );

    // Another tenant sees none of it.
    let other_operator = harness.token("globex", "ops", &[Role::Operator]);
    let _: Value = api
        .post(
            "/v1/tenants",
            &other_operator,
            json!({"id": "globex", "name": "Globex"}),
        )
        .await
        .unwrap();
    let _: Value = api.post("/v1/users", &other_operator, json!({"id": "gina", "display_name": "Gina", "email": "g@globex.example", "roles": ["curator", "admin"]})).await.unwrap();
    let gina = harness.token("globex", "gina", &[Role::Curator, Role::Admin]);
    assert_eq!(
        api.get::<Value>(&format!("/v1/posts/{}", everyone.id), &gina)
            .await
            .unwrap_err()
            .status,
        404
    );
    let response = api
        .http
        .put(format!("{}/v1/posts/{}", api.base_url, everyone.id))
        .bearer_auth(&gina)
        .json(&post_body("Taken", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(
        api.post::<Value>(
            &format!("/v1/posts/{}/archive", everyone.id),
            &gina,
            json!({})
        )
        .await
        .unwrap_err()
        .status,
        404
    );
    assert_eq!(
        api.get::<Value>(&format!("/v1/surveys/{}/results", survey.id), &gina)
            .await
            .unwrap_err()
            .status,
        404
    );
    let theirs: Page<Submission> = api.get("/v1/submissions", &gina).await.unwrap();
    assert!(theirs.items.is_empty());
    let theirs: Page<Post> = api.get("/v1/posts", &gina).await.unwrap();
    assert!(theirs.items.is_empty());
    let rules: Vec<Value> = api.get("/v1/compliance/rules", &gina).await.unwrap();
    assert!(rules.is_empty());
    harness.stop().await;
}
