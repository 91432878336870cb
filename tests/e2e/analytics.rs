//! Engagement and analytics on a known data set, every figure worked out by hand.

use crate::harness::{Backend, Harness, eventually};
use chorus_api::engagement::{BreakdownRow, PersonalDashboard, ProgramSummary};
use chorus_api::scheduling::{Share, ShareStatus};
use chorus_kit::Role;
use chorus_netsim::MetricsDelta;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn analytics_on_sqlite() {
    analytics(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn analytics_on_postgres() {
    analytics(Backend::Postgres).await;
}

const BROWSER: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36";

fn row<'a>(rows: &'a [BreakdownRow], key: &str) -> &'a BreakdownRow {
    rows.iter()
        .find(|row| row.key == key)
        .unwrap_or_else(|| panic!("no row {key} in {rows:?}"))
}

async fn analytics(backend: Backend) {
    let harness = Harness::start(backend, &[]).await;
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
    for (id, roles, department) in [
        ("carol", json!(["curator", "admin"]), "marketing"),
        ("alice", json!(["advocate"]), "sales"),
        ("bob", json!(["advocate"]), "engineering"),
        ("dan", json!(["advocate"]), "engineering"),
        ("erin", json!(["advocate"]), "sales"),
    ] {
        let body = json!({"id": id, "display_name": format!("{id} name"), "email": format!("{id}@acme.example"), "roles": roles, "department": department});
        let _: Value = api.post("/v1/users", &operator, body).await.unwrap();
    }
    let carol = harness.token("acme", "carol", &[Role::Curator, Role::Admin]);
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let bob = harness.token("acme", "bob", &[Role::Advocate]);
    let erin = harness.token("acme", "erin", &[Role::Advocate]);

    // Settings: Paris days, EUR, reaction weight 0.5, LinkedIn at CPM 20 and CPC 2.
    let error = api.send::<Value>(reqwest::Method::PUT, "/v1/analytics/settings", &carol,
        Some(json!({"time_zone": "Mars/Olympus", "currency": "EUR", "reaction_weight": 0.5, "rates": []}))).await.unwrap_err();
    assert_eq!(error.status, 422);
    let _: Value = api.send(reqwest::Method::PUT, "/v1/analytics/settings", &carol,
        Some(json!({"time_zone": "Europe/Paris", "currency": "EUR", "reaction_weight": 0.5, "rates": [{"network": "linkedin", "cpm": 20.0, "cpc": 2.0}]}))).await.unwrap();

    let jobs = harness.published_post(&carol, "Hiring in Lyon").await;
    let product: chorus_api::content::Post = api
        .post("/v1/posts", &carol, json!({"title": "New product", "commentary": "Out now", "link_url": "https://www.acme.example/product",
            "content_type": "brand", "topics": ["product"]}))
        .await
        .unwrap();
    let _: Value = api
        .post(
            &format!("/v1/posts/{}/publish", product.id),
            &carol,
            json!({}),
        )
        .await
        .unwrap();
    let alice_account = api.connect_linkedin(&alice, "alice-li").await.unwrap();
    let bob_account = api.connect_linkedin(&bob, "bob-li").await.unwrap();
    let share = |token: &str, post: &str, account: &str| {
        let body = json!({"post_id": post, "account_id": account, "caption": format!("My words {}", uuid::Uuid::new_v4())});
        let token = token.to_string();
        async move {
            let created: Share = api.post("/v1/shares", &token, body).await.unwrap();
            let done = api
                .wait_final(&token, &created.id, Duration::from_secs(30))
                .await
                .unwrap();
            assert_eq!(done.status, ShareStatus::Published);
            done
        }
    };
    let alice_jobs = share(&alice, &jobs.id, &alice_account.id).await;
    let alice_product = share(&alice, &product.id, &alice_account.id).await;
    let bob_jobs = share(&bob, &jobs.id, &bob_account.id).await;

    // Clicks: alice's jobs link by two people (one of them twice) and a bot; bob's by one person.
    for address in ["198.51.100.1", "198.51.100.2", "198.51.100.1"] {
        api.click(&alice_jobs.tracked_url, BROWSER, address)
            .await
            .expect("redirect");
    }
    api.click(
        &alice_jobs.tracked_url,
        "facebookexternalhit/1.1",
        "203.0.113.5",
    )
    .await
    .expect("redirect");
    api.click(&bob_jobs.tracked_url, BROWSER, "198.51.100.3")
        .await
        .expect("redirect");
    // What the network reports.
    let metrics = |reactions, comments, reshares, impressions| MetricsDelta {
        reactions,
        comments,
        reshares,
        impressions,
    };
    assert!(harness.netsim.add_metrics(
        alice_jobs.external_id.as_deref().unwrap(),
        metrics(4, 1, 0, 1000)
    ));
    assert!(harness.netsim.add_metrics(
        alice_product.external_id.as_deref().unwrap(),
        metrics(0, 0, 1, 500)
    ));
    assert!(harness.netsim.add_metrics(
        bob_jobs.external_id.as_deref().unwrap(),
        metrics(2, 0, 0, 300)
    ));
    // Erin creates: her submission is approved.
    let submission: Value = api
        .post(
            "/v1/submissions",
            &erin,
            json!({"title": "Hackathon", "link_url": "https://blog.example.org/h", "text": "48 h"}),
        )
        .await
        .unwrap();
    let _: Value = api
        .post(
            &format!(
                "/v1/submissions/{}/approve",
                submission["id"].as_str().unwrap()
            ),
            &carol,
            json!({}),
        )
        .await
        .unwrap();

    let summary: ProgramSummary = eventually(
        Duration::from_secs(30),
        "every observation counted",
        || async {
            let summary: ProgramSummary = api.get("/v1/analytics/summary", &carol).await.ok()?;
            let f = &summary.figures;
            (f.impressions == 1800
                && f.clicks == 4
                && f.reactions == 6
                && f.reshares == 1
                && summary.creators == 1)
                .then_some(summary)
        },
    )
    .await;
    let figures = &summary.figures;
    assert_eq!(
        (
            figures.shares,
            figures.clicks,
            figures.bot_clicks,
            figures.unique_visitors
        ),
        (3, 4, 1, 3)
    );
    assert_eq!(
        (
            figures.reactions,
            figures.comments,
            figures.reshares,
            figures.impressions
        ),
        (6, 1, 1, 1800)
    );
    // (4 clicks + 6 reactions + 1 comment + 1 reshare) / 1800 impressions = 0.67 %.
    assert_eq!(figures.engagement_rate, Some(0.67));
    // 20 x 1800 / 1000 + 2 x (4 + 0.5 x 6) = 36 + 14.
    assert_eq!(figures.emv, 50.0);
    assert_eq!(summary.emv.value, 50.0);
    assert_eq!(summary.emv.currency, "EUR");
    assert!(
        summary
            .emv
            .formula
            .contains("CPM x impressions / 1000 + CPC x (clicks + reaction weight x reactions)")
    );
    assert_eq!(
        summary.potential_reach,
        chorus_netsim::network_size("alice-li") + chorus_netsim::network_size("bob-li")
    );
    // Advocates: alice, bob, dan, erin. Sharers alice and bob; creator erin; lurker dan.
    assert_eq!(
        (
            summary.advocates,
            summary.sharers,
            summary.creators,
            summary.lurkers
        ),
        (4, 2, 1, 1)
    );
    assert_eq!(summary.active_advocates_percent, 50.0);
    assert_eq!(summary.top_posts[0].key, jobs.id);
    assert_eq!(summary.top_posts[0].label, "Hiring in Lyon");
    assert_eq!(summary.top_advocates[0].key, "alice");
    assert_eq!(summary.top_advocates[0].label, "alice name");

    let by = |dimension: &str| format!("/v1/analytics/breakdown?by={dimension}");
    let departments: Vec<BreakdownRow> = api.get(&by("department"), &carol).await.unwrap();
    let sales = &row(&departments, "sales").figures;
    assert_eq!(
        (
            sales.shares,
            sales.clicks,
            sales.reactions,
            sales.comments,
            sales.reshares,
            sales.impressions
        ),
        (2, 3, 4, 1, 1, 1500)
    );
    let engineering = &row(&departments, "engineering").figures;
    assert_eq!(
        (
            engineering.shares,
            engineering.clicks,
            engineering.reactions,
            engineering.impressions
        ),
        (1, 1, 2, 300)
    );
    // 20 x 0.3 + 2 x (1 + 0.5 x 2) = 6 + 4.
    assert_eq!(engineering.emv, 10.0);
    let topics: Vec<BreakdownRow> = api.get(&by("topic"), &carol).await.unwrap();
    let jobs_topic = &row(&topics, "jobs").figures;
    assert_eq!(
        (
            jobs_topic.shares,
            jobs_topic.clicks,
            jobs_topic.reactions,
            jobs_topic.impressions
        ),
        (2, 4, 6, 1300)
    );
    assert_eq!(row(&topics, "product").figures.reshares, 1);
    let shares: Vec<BreakdownRow> = api.get(&by("share"), &carol).await.unwrap();
    assert_eq!(row(&shares, &alice_jobs.id).figures.unique_visitors, 2);
    let networks: Vec<BreakdownRow> = api.get(&by("network"), &carol).await.unwrap();
    assert_eq!(row(&networks, "linkedin").figures.impressions, 1800);
    let days: Vec<BreakdownRow> = api.get(&by("day"), &carol).await.unwrap();
    let paris_today = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(0).unwrap());
    assert_eq!(
        days.iter().map(|day| day.figures.shares).sum::<i64>(),
        3,
        "{days:?} around {paris_today}"
    );
    let advocates: Vec<BreakdownRow> = api.get(&by("advocate"), &carol).await.unwrap();
    assert_eq!(row(&advocates, "bob").figures.clicks, 1);

    // CSV export of any report.
    let response = api
        .http
        .get(format!("{}{}&format=csv", api.base_url, by("department")))
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    assert!(text.starts_with("department,label,shares,clicks,bot_clicks,unique_visitors,reactions,comments,reshares,impressions,engagement_rate_percent,emv\n"), "{text}");
    assert!(
        text.contains("\nengineering,engineering,1,1,0,1,2,0,0,300,1.00,10.00\n"),
        "{text}"
    );

    // The advocate's own dashboard: 20 x 1.5 + 2 x (3 + 0.5 x 4) = 30 + 10.
    let mine: PersonalDashboard = api.get("/v1/me/analytics", &alice).await.unwrap();
    assert_eq!(
        (
            mine.figures.shares,
            mine.figures.clicks,
            mine.figures.reactions,
            mine.figures.impressions
        ),
        (2, 3, 4, 1500)
    );
    assert_eq!(mine.figures.emv, 40.0);
    assert_eq!(
        mine.potential_reach,
        chorus_netsim::network_size("alice-li")
    );
    assert_eq!(
        mine.trend.iter().map(|day| day.figures.clicks).sum::<i64>(),
        3
    );

    // A reaction removed on the network is a negative delta.
    assert!(harness.netsim.add_metrics(
        alice_jobs.external_id.as_deref().unwrap(),
        metrics(-1, 0, 0, 0)
    ));
    eventually(Duration::from_secs(30), "the removed reaction", || async {
        let summary: ProgramSummary = api.get("/v1/analytics/summary", &carol).await.ok()?;
        (summary.figures.reactions == 5).then_some(())
    })
    .await;

    // Reports are for staff, and for one tenant.
    assert_eq!(
        api.get::<Value>("/v1/analytics/summary", &alice)
            .await
            .unwrap_err()
            .status,
        403
    );
    assert_eq!(
        api.get::<Value>(
            "/v1/analytics/summary?from=2026-02-01&to=2026-01-01",
            &carol
        )
        .await
        .unwrap_err()
        .status,
        422
    );
    let _: Value = api
        .post(
            "/v1/tenants",
            &harness.token("globex", "ops", &[Role::Operator]),
            json!({"id": "globex", "name": "Globex"}),
        )
        .await
        .unwrap();
    let _: Value = api
        .post("/v1/users", &harness.token("globex", "ops", &[Role::Operator]), json!({"id": "gus", "display_name": "Gus", "email": "g@globex.example", "roles": ["admin"]}))
        .await
        .unwrap();
    let gus = harness.token("globex", "gus", &[Role::Admin]);
    let theirs: ProgramSummary = api.get("/v1/analytics/summary", &gus).await.unwrap();
    assert_eq!(
        (
            theirs.figures.shares,
            theirs.figures.clicks,
            theirs.potential_reach
        ),
        (0, 0, 0)
    );
    assert_eq!(
        api.get::<Value>(&format!("/v1/shares/{}/stats", alice_jobs.id), &gus)
            .await
            .unwrap_err()
            .status,
        404
    );
    harness.stop().await;
}

/// Facebook's Page webhook: netsim subscribes the gateway (the GET handshake), then signs a
/// delivery when a post gets reactions and comments; the share's metrics are read at once,
/// long before the scheduled poll (an hour away here). Forged and malformed deliveries
/// change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn facebook_webhooks_refresh_metrics_at_once() {
    use hmac::Mac;
    let harness = Harness::start_with(Backend::Sqlite, &[], |config| {
        config.engagement.poll_schedule_secs = vec![3600];
        config.engagement.facebook_webhook_verify_token = "verify-me".to_string().into();
    })
    .await;
    let api = &harness.api;
    let curator = harness.tenant("acme", &["alice"]).await;
    let post = harness.published_post(&curator, "Our new plant").await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let account = api.connect(&alice, "facebook", "alice-page").await.unwrap();
    let share: chorus_api::scheduling::Share = api
        .post(
            "/v1/shares",
            &alice,
            serde_json::json!({"post_id": post.id, "account_id": account.id, "caption": "Look at this"}),
        )
        .await
        .unwrap();
    let share = api
        .wait_final(&alice, &share.id, Duration::from_secs(60))
        .await
        .unwrap();
    let urn = share.external_id.clone().expect("published");
    let gateway = &harness.config.public_url;
    let http = reqwest::Client::new();

    // The handshake wants the configured verify token.
    let refused = http
        .get(format!("{gateway}/webhooks/facebook"))
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", "wrong"),
            ("hub.challenge", "42"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let facebook = &harness.config.publishing.facebook;
    let subscribed: serde_json::Value = http
        .post(format!(
            "http://{}/graph/v21.0/{}/subscriptions",
            harness.config.netsim.listen, facebook.client_id
        ))
        .form(&[
            ("object", "page"),
            ("fields", "feed"),
            ("callback_url", &format!("{gateway}/webhooks/facebook")),
            ("verify_token", "verify-me"),
            (
                "access_token",
                &format!(
                    "{}|{}",
                    facebook.client_id,
                    secrecy::ExposeSecret::expose_secret(&facebook.client_secret)
                ),
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(subscribed["success"], true, "{subscribed}");

    // A forged delivery (wrong secret) and a malformed one (signed, not a delivery).
    let forge = |secret: &str, body: &str| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256={hex}")
    };
    let delivery = format!(
        r#"{{"object":"page","entry":[{{"id":"1","time":1,"changes":[{{"field":"feed","value":{{"item":"reaction","verb":"add","post_id":"{urn}"}}}}]}}]}}"#
    );
    let forged = http
        .post(format!("{gateway}/webhooks/facebook"))
        .header("x-hub-signature-256", forge("not-the-secret", &delivery))
        .body(delivery.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let secret = secrecy::ExposeSecret::expose_secret(&facebook.client_secret).to_string();
    let malformed =
        r#"{"object":"page","entry":[{"changes":[{"field":"feed","value":{"item":"reaction"}}]}]}"#;
    let refused = http
        .post(format!("{gateway}/webhooks/facebook"))
        .header("x-hub-signature-256", forge(&secret, malformed))
        .body(malformed)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("post_id"),
        "{problem}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats: chorus_api::engagement::ShareStats = api
        .get(&format!("/v1/shares/{}/stats", share.id), &alice)
        .await
        .unwrap();
    assert_eq!(
        (stats.reactions, stats.comments),
        (0, 0),
        "nothing read yet: {stats:?}"
    );

    // Engagement on the network: netsim's signed delivery makes engagement read the
    // metrics now.
    assert!(harness.netsim.add_metrics(
        &urn,
        chorus_netsim::MetricsDelta {
            reactions: 3,
            comments: 2,
            ..Default::default()
        }
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let stats: chorus_api::engagement::ShareStats = api
            .get(&format!("/v1/shares/{}/stats", share.id), &alice)
            .await
            .unwrap();
        if (stats.reactions, stats.comments) == (3, 2) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the webhook did not refresh the metrics: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    harness.stop().await;
}
