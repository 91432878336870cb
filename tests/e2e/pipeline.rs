//! The path that must work end to end: curator publishes, advocate connects and shares,
//! the share is posted exactly once, clicks and reactions become points and notifications,
//! and the whole journey is one trace.

use crate::harness::{Backend, Harness, eventually, spans};
use chorus_api::gamification::PointsSummary;
use chorus_api::notifications::Inbox;
use chorus_api::scheduling::ShareStatus;
use chorus_kit::Role;
use opentelemetry::Value;
use std::collections::BTreeSet;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn share_journey_on_sqlite() {
    share_journey(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn share_journey_on_postgres() {
    share_journey(Backend::Postgres).await;
}

async fn share_journey(backend: Backend) {
    let harness = Harness::start(backend, &[]).await;
    let api = &harness.api;
    let curator = harness.tenant("acme", &["alice"]).await;
    let post = harness
        .published_post(&curator, "We are hiring in Lyon")
        .await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);

    let account = api
        .connect_linkedin(&alice, "alice-li")
        .await
        .expect("account connects");
    assert_eq!(account.network, "linkedin");
    assert_eq!(account.external_id, "alice-li");

    let caption = "Proud of my team in Lyon, we are hiring engineers!";
    let scheduled_at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let share = api
        .share_at(&alice, &post.id, &account.id, caption, scheduled_at)
        .await
        .expect("share accepted");
    assert_eq!(share.status, ShareStatus::Scheduled);
    assert!(
        harness.netsim.posts().is_empty(),
        "nothing is posted before it is due"
    );

    let published = api
        .wait_final(&alice, &share.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(published.status, ShareStatus::Published, "{published:?}");
    assert!(
        published.published_at.unwrap() >= scheduled_at,
        "published on time, not early"
    );

    // Exactly one post on the network, with the advocate's words and the tracked link.
    let posts = harness.netsim.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].author, "urn:li:person:alice-li");
    assert_eq!(
        posts[0].commentary,
        format!("{caption}\n\n{}", share.tracked_url)
    );
    assert_eq!(
        published.external_id.as_deref(),
        Some(posts[0].urn.as_str())
    );

    // A person clicks the tracked link: redirected to the post's link with UTM parameters.
    let browser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36";
    let target = api
        .click(&share.tracked_url, browser, "198.51.100.7")
        .await
        .expect("redirect");
    assert!(target.starts_with("https://careers.example.com/lyon?team=eng&utm_source=linkedin&utm_medium=employee_advocacy"), "{target}");
    assert!(target.contains(&format!("utm_content={}", post.id)));
    // A link-preview bot is counted apart and earns nothing.
    api.click(
        &share.tracked_url,
        "LinkedInBot/1.0 (compatible; Mozilla/5.0)",
        "203.0.113.9",
    )
    .await
    .expect("bot redirect");
    assert_eq!(
        api.click(
            &format!("{}/l/AAAAAAAAAAAA", api.base_url),
            browser,
            "198.51.100.7"
        )
        .await,
        None,
        "unknown code"
    );

    // Reactions and a comment arrive on the network; engagement polls them.
    assert!(harness.netsim.add_reactions(&posts[0].urn, 3, 1));

    // Points: share 10, the person's click 20 (more than the share), 3 reactions x 15, 1 comment x 30.
    let points: PointsSummary = eventually(
        Duration::from_secs(30),
        "points for share, click and reactions",
        || async {
            let points: PointsSummary = api.get("/v1/me/points", &alice).await.ok()?;
            (points.balance == 10 + 20 + 45 + 30).then_some(points)
        },
    )
    .await;
    let earned = |action: &str| {
        points
            .entries
            .iter()
            .filter(|e| e.action == action)
            .map(|e| e.points)
            .sum::<i64>()
    };
    assert_eq!(earned("share"), 10);
    assert_eq!(earned("click"), 20);
    assert!(earned("click") > earned("share"));
    assert_eq!(earned("reaction"), 45);
    assert_eq!(earned("comment"), 30);

    let stats: chorus_api::engagement::ShareStats = api
        .get(&format!("/v1/shares/{}/stats", share.id), &alice)
        .await
        .unwrap();
    assert_eq!(
        (
            stats.clicks,
            stats.bot_clicks,
            stats.unique_visitors,
            stats.reactions,
            stats.comments
        ),
        (1, 1, 1, 3, 1)
    );

    // Notifications: "your share was published", "you earned points" (four times) and, the
    // balance having passed 100, "you reached 100 points".
    let inbox: Inbox = eventually(Duration::from_secs(20), "notifications", || async {
        let inbox: Inbox = api.get("/v1/me/notifications", &alice).await.ok()?;
        let kinds: BTreeSet<&str> = inbox.items.iter().map(|item| item.kind.as_str()).collect();
        let points_notes = inbox
            .items
            .iter()
            .filter(|item| item.kind == "points_awarded")
            .count();
        (kinds.contains("share_published")
            && kinds.contains("points_milestone")
            && points_notes == 4)
            .then_some(inbox)
    })
    .await;
    assert_eq!(inbox.unread as usize, inbox.items.len());

    // The journey from the share request to the notifications is one trace across services.
    let services = eventually(
        Duration::from_secs(10),
        "one trace across five services",
        || async {
            let finished = spans().get_finished_spans().ok()?;
            let request = finished
                .iter()
                .find(|span| span.name == "POST /v1/shares")?;
            let trace_id = request.span_context.trace_id();
            let services: BTreeSet<String> = finished
                .iter()
                .filter(|span| span.span_context.trace_id() == trace_id)
                .flat_map(|span| span.attributes.iter())
                .filter(|attribute| attribute.key.as_str() == "service")
                .map(|attribute| match &attribute.value {
                    Value::String(name) => name.to_string(),
                    other => other.to_string(),
                })
                .collect();
            (services.len() >= 6).then_some(services)
        },
    )
    .await;
    for service in [
        "gateway",
        "scheduling",
        "publishing",
        "engagement",
        "gamification",
        "notifications",
    ] {
        assert!(
            services.contains(service),
            "trace misses {service}: {services:?}"
        );
    }

    redelivered_events_change_nothing(&harness, &alice, &points, &inbox).await;
    harness.stop().await;
}

/// Every event is delivered again (the consumers are reset and a second replica of the
/// consuming services starts): balances, ledgers, notifications and posts stay the same.
async fn redelivered_events_change_nothing(
    harness: &Harness,
    alice: &str,
    points: &PointsSummary,
    inbox: &Inbox,
) {
    let api = &harness.api;
    for (stream, durable) in [
        ("CHORUS_SHARE", "gamification-share-published"),
        ("CHORUS_ENGAGEMENT", "gamification-engagement-recorded"),
        ("CHORUS_SHARE", "notifications-share-published"),
        ("CHORUS_GAMIFICATION", "notifications-points-awarded"),
        ("CHORUS_SHARE", "publishing-share-due-linkedin-0of1"),
        ("CHORUS_ENGAGEMENT", "engagement-link-clicked"),
    ] {
        let stream = harness.bus.jetstream.get_stream(stream).await.unwrap();
        stream.delete_consumer(durable).await.unwrap();
    }
    let replica_shutdown = chorus_kit::Shutdown::new();
    let replica = chorus::start(
        harness.config.clone(),
        &["gamification", "notifications", "publishing", "engagement"],
        replica_shutdown.clone(),
    )
    .await
    .unwrap();
    // Wait until the recreated consumers have seen every message again.
    for (stream, durable) in [
        ("CHORUS_SHARE", "gamification-share-published"),
        ("CHORUS_ENGAGEMENT", "gamification-engagement-recorded"),
        ("CHORUS_SHARE", "notifications-share-published"),
        ("CHORUS_GAMIFICATION", "notifications-points-awarded"),
        ("CHORUS_SHARE", "publishing-share-due-linkedin-0of1"),
        ("CHORUS_ENGAGEMENT", "engagement-link-clicked"),
    ] {
        let jetstream = harness.bus.jetstream.clone();
        eventually(Duration::from_secs(20), "redelivery drained", || {
            let jetstream = jetstream.clone();
            async move {
                let stream = jetstream.get_stream(stream).await.ok()?;
                let mut consumer: async_nats::jetstream::consumer::PullConsumer =
                    stream.get_consumer(durable).await.ok()?;
                let info = consumer.info().await.ok()?;
                (info.num_pending == 0
                    && info.num_ack_pending == 0
                    && info.delivered.stream_sequence > 0)
                    .then_some(())
            }
        })
        .await;
    }
    let after: PointsSummary = api.get("/v1/me/points", alice).await.unwrap();
    assert_eq!(after.balance, points.balance);
    assert_eq!(after.entries.len(), points.entries.len());
    let inbox_after: Inbox = api.get("/v1/me/notifications", alice).await.unwrap();
    // No notification of the journey came twice (other news may have arrived meanwhile).
    let count =
        |inbox: &Inbox, kind: &str| inbox.items.iter().filter(|item| item.kind == kind).count();
    for kind in ["share_published", "points_awarded", "points_milestone"] {
        assert_eq!(count(&inbox_after, kind), count(inbox, kind), "{kind}");
    }
    assert_eq!(
        harness.netsim.posts().len(),
        1,
        "a redelivered due share is not posted again"
    );
    replica_shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), replica.join()).await;
}
