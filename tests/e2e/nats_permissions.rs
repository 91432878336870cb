//! One NATS user per service (`deploy/nats/services.conf`): the whole pipeline works with
//! each service limited to its subjects, and a service that steps outside them is refused.

use crate::harness::{Backend, Harness, eventually};
use chorus_api::scheduling::{Share, ShareStatus};
use chorus_kit::Role;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;

/// A connection as `user`, with the server's refusals collected.
async fn connect_as(
    port: u16,
    user: &str,
) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let client =
        async_nats::ConnectOptions::with_user_and_password(user.into(), format!("{user}-secret"))
            .event_callback(move |event| {
                let sender = sender.clone();
                async move {
                    if let async_nats::Event::ServerError(error) = event {
                        let _ = sender.send(error.to_string());
                    }
                }
            })
            .connect(format!("127.0.0.1:{port}"))
            .await
            .unwrap();
    (client, receiver)
}

/// The refusals received within a moment.
async fn refusals(receiver: &mut mpsc::UnboundedReceiver<String>) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(700);
    while let Ok(Some(error)) = tokio::time::timeout_at(deadline, receiver.recv()).await {
        seen.push(error.to_lowercase());
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_service_works_within_its_own_nats_permissions() {
    let harness = Harness::start_with_service_users(Backend::Sqlite).await;
    if let Ok(dir) = std::env::var("CHORUS_TEST_KEEP_NATS_LOG") {
        let log = harness.config.data_dir.join("nats/nats-server.log");
        let dir = std::path::PathBuf::from(dir);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let _ = std::fs::copy(&log, dir.join("nats-server.log"));
            }
        });
    }
    let api = &harness.api;
    let admin = harness.tenant("acme", &["alice"]).await;
    let post = harness.published_post(&admin, "Our new office").await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let account = api.connect_linkedin(&alice, "alice-li").await.unwrap();
    let share: Share = api
        .post(
            "/v1/shares",
            &alice,
            json!({"post_id": post.id, "account_id": account.id, "caption": "Come and see"}),
        )
        .await
        .unwrap();
    let published = api
        .wait_final(&alice, &share.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(published.status, ShareStatus::Published, "{published:?}");
    // A click on the tracked link (gateway -> engagement), points (gamification), the inbox
    // (notifications) and the audit log (gateway -> content) all flow.
    let link = published.tracked_url.clone();
    let clicked = api
        .http
        .get(&link)
        .header(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(clicked.status().as_u16(), 302, "{link}");
    let stats_path = format!("/v1/shares/{}/stats", share.id);
    eventually(Duration::from_secs(30), "the click is counted", || async {
        let stats: Value = api.get(&stats_path, &alice).await.ok()?;
        (stats["clicks"].as_i64().unwrap_or_default() >= 1).then_some(())
    })
    .await;
    eventually(
        Duration::from_secs(30),
        "points and a notification arrive",
        || async {
            let points: Value = api.get("/v1/me/points", &alice).await.ok()?;
            let inbox: Value = api.get("/v1/me/notifications", &alice).await.ok()?;
            (points["balance"].as_i64().unwrap_or_default() > 0
                && !inbox["items"].as_array()?.is_empty())
            .then_some(())
        },
    )
    .await;
    let _: Value = api
        .send(
            reqwest::Method::PUT,
            "/v1/audit/settings",
            &admin,
            Some(json!({"retention_days": 400})),
        )
        .await
        .unwrap();
    eventually(Duration::from_secs(30), "the change is audited", || async {
        let page: Value = api
            .get("/v1/audit?action=PUT%20/v1/audit/settings", &admin)
            .await
            .ok()?;
        (!page["items"].as_array()?.is_empty()).then_some(())
    })
    .await;

    // Each service stepping outside its subjects is refused by the server.
    let port: u16 = harness
        .config
        .nats_url
        .as_deref()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    for (user, subject) in [
        ("content", "chorus.acme.share.published.v1"),
        ("gateway", "chorus.acme.user.erased.v1"),
        ("gamification", "rpc.chorus.identity.user_get"),
        (
            "notifications",
            "chorus.acme.gamification.points_awarded.v1",
        ),
        ("scheduling", "$KV.chorus_links.forged"),
    ] {
        let (client, mut errors) = connect_as(port, user).await;
        client.publish(subject, "forged".into()).await.unwrap();
        client.flush().await.unwrap();
        let seen = refusals(&mut errors).await;
        assert!(
            seen.iter().any(|e| e.contains("permissions violation") && e.contains(&subject.to_lowercase())),
            "{user} publishing on {subject}: {seen:?}"
        );
    }
    for (user, subject) in [
        ("gamification", "rpc.chorus.identity.>"),
        ("content", "chorus.>"),
        ("publishing", "chorus.*.user.>"),
    ] {
        let (client, mut errors) = connect_as(port, user).await;
        let _subscription = client.subscribe(subject).await.unwrap();
        client.flush().await.unwrap();
        let seen = refusals(&mut errors).await;
        assert!(
            seen.iter()
                .any(|e| e.contains("permissions violation") && e.contains("subscription")),
            "{user} subscribing to {subject}: {seen:?}"
        );
    }
    // Within its subjects a service is not refused.
    let (client, mut errors) = connect_as(port, "content").await;
    client
        .publish("chorus.acme.content.probe.v1", "ok".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    assert!(refusals(&mut errors).await.is_empty());
    harness.stop().await;
}
