//! Publishing at scale: a network's publisher split over replicas, each account owned by
//! exactly one of them.

use crate::harness::{Backend, Harness, eventually, spans};
use chorus_api::scheduling::{Share, ShareStatus};
use chorus_kit::Role;
use opentelemetry::Value;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn attribute(span: &opentelemetry_sdk::trace::SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key.as_str() == key)
        .map(|attribute| match &attribute.value {
            Value::String(text) => text.to_string(),
            other => other.to_string(),
        })
}

/// Two publisher replicas on PostgreSQL, laid out as the Helm chart does: a LinkedIn
/// publisher of two replicas (`publish_networks = linkedin`) beside a publishing process that
/// serves the accounts and publishes nothing (`none`). Every share is posted exactly once,
/// each account's shares are all published by the same replica, and both replicas work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_publisher_replicas_split_the_accounts() {
    let harness = Harness::start(Backend::Postgres, &["publishing"]).await;
    let mut replicas = Vec::new();
    let mut accounts_only = harness.config.clone();
    accounts_only.publishing.publish_networks = "none".into();
    replicas.push(
        chorus::start(accounts_only, &["publishing"], harness.shutdown.clone())
            .await
            .expect("publishing (accounts only) starts"),
    );
    for index in 0..2 {
        let mut config = harness.config.clone();
        config.publishing.publish_networks = "linkedin".into();
        config.publishing.replica_index = index;
        config.publishing.replicas = 2;
        let shutdown = harness.shutdown.clone();
        replicas.push(
            chorus::start(config, &["publishing"], shutdown)
                .await
                .expect("publishing replica starts"),
        );
    }
    let api = &harness.api;
    let advocates: Vec<String> = (0..12).map(|index| format!("adv{index:02}")).collect();
    let names: Vec<&str> = advocates.iter().map(String::as_str).collect();
    let curator = harness.tenant("acme", &names).await;
    let first = harness
        .published_post(&curator, "We are hiring in Lyon")
        .await;
    let second = harness
        .published_post(&curator, "Our new plant opens")
        .await;

    // Connect accounts until both replicas own at least one (accounts hash to partitions).
    let mut accounts = Vec::new();
    let mut owners = BTreeSet::new();
    for advocate in &advocates {
        let token = harness.token("acme", advocate, &[Role::Advocate]);
        let account = api
            .connect_linkedin(&token, &format!("{advocate}-li"))
            .await
            .expect("account connects");
        owners.insert(chorus_events::share_due_partition(&account.id) % 2);
        accounts.push((token, account));
        if owners.len() == 2 && accounts.len() >= 6 {
            break;
        }
    }
    assert_eq!(owners.len(), 2, "accounts landed on both replicas");

    let mut shares = Vec::new();
    for (token, account) in &accounts {
        for post in [&first, &second] {
            let share: Share = api
                .post(
                    "/v1/shares",
                    token,
                    json!({"post_id": post.id, "account_id": account.id,
                    "caption": format!("My words on {}", post.title)}),
                )
                .await
                .expect("share accepted");
            shares.push((token.clone(), share));
        }
    }
    for (token, share) in &shares {
        let done = api
            .wait_final(token, &share.id, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(done.status, ShareStatus::Published, "{done:?}");
    }
    assert_eq!(
        harness.netsim.posts().len(),
        shares.len(),
        "one post per share, none twice"
    );

    // Who published what, from the publishers' spans.
    let share_account: BTreeMap<String, String> = shares
        .iter()
        .map(|(_, share)| (share.id.clone(), share.account_id.clone()))
        .collect();
    let mut replicas_of_account: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for span in spans().get_finished_spans().unwrap() {
        if span.name != "publish" {
            continue;
        }
        let (Some(share_id), Some(replica)) =
            (attribute(&span, "share_id"), attribute(&span, "replica"))
        else {
            continue;
        };
        if let Some(account) = share_account.get(&share_id) {
            replicas_of_account
                .entry(account.clone())
                .or_default()
                .insert(replica);
        }
    }
    assert_eq!(replicas_of_account.len(), accounts.len());
    for (account, replicas) in &replicas_of_account {
        assert_eq!(
            replicas.len(),
            1,
            "account {account} had owners {replicas:?}"
        );
        let expected = format!("{}of2", chorus_events::share_due_partition(account) % 2);
        assert!(replicas.contains(&expected), "{account}: {replicas:?}");
    }
    let used: BTreeSet<&String> = replicas_of_account.values().flatten().collect();
    assert_eq!(used.len(), 2, "both replicas published");

    harness.shutdown.cancel();
    for replica in replicas {
        let _ = tokio::time::timeout(Duration::from_secs(10), replica.join()).await;
    }
    harness.stop().await;
}

/// Disconnecting an account deletes its tokens and cancels its pending shares with a
/// visible reason; another user cannot disconnect it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disconnecting_an_account_cancels_its_pending_shares() {
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let api = &harness.api;
    let curator = harness.tenant("acme", &["alice", "bob"]).await;
    let post = harness
        .published_post(&curator, "We are hiring in Lyon")
        .await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let bob = harness.token("acme", "bob", &[Role::Advocate]);
    let account = api.connect_linkedin(&alice, "alice-li").await.unwrap();
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    let share = api
        .share_at(&alice, &post.id, &account.id, "Have a look", later)
        .await
        .unwrap();
    assert_eq!(share.status, ShareStatus::Scheduled);

    let path = format!("/v1/accounts/{}", account.id);
    for someone_else in [bob.clone(), curator.clone()] {
        let refused = api
            .send(reqwest::Method::DELETE, &path, &someone_else, None)
            .await
            .map(|_: serde_json::Value| ())
            .unwrap_err();
        assert_eq!(refused.status, 404, "{refused:?}");
    }
    let disconnected: chorus_api::publishing::Account = api
        .send(reqwest::Method::DELETE, &path, &alice, None)
        .await
        .unwrap();
    assert_eq!(
        disconnected.status,
        chorus_api::publishing::AccountStatus::Disconnected
    );
    assert_eq!(disconnected.access_expires_at, None);

    let cancelled = crate::harness::eventually(
        Duration::from_secs(20),
        "pending share cancelled",
        || async {
            let current: Share = api
                .get(&format!("/v1/shares/{}", share.id), &alice)
                .await
                .ok()?;
            (current.status == ShareStatus::Cancelled).then_some(current)
        },
    )
    .await;
    assert_eq!(
        cancelled.failure_reason.as_deref(),
        Some("the account was disconnected")
    );
    // New shares on it are refused.
    let refused = api
        .post::<Share>(
            "/v1/shares",
            &alice,
            json!({"post_id": post.id, "account_id": account.id,
            "caption": "Again"}),
        )
        .await
        .unwrap_err();
    assert!(
        refused.status == 422 || refused.status == 409,
        "{refused:?}"
    );
    assert!(harness.netsim.posts().is_empty());
    harness.stop().await;
}

/// One share on each OAuth network, through the gateway's connect flow and the network's
/// own publisher: each is posted exactly once, on its network, with the tracked link.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_share_reaches_each_network_once() {
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let api = &harness.api;
    let curator = harness.tenant("acme", &["alice"]).await;
    let post = harness
        .published_post(&curator, "We are hiring in Lyon")
        .await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let mut shares = Vec::new();
    for network in ["linkedin", "x", "facebook", "mastodon"] {
        let account = api
            .connect(&alice, network, &format!("alice-{network}"))
            .await
            .unwrap_or_else(|error| panic!("{network} connects: {error:?}"));
        assert_eq!(account.network, network);
        let share: Share = api
            .post(
                "/v1/shares",
                &alice,
                json!({"post_id": post.id, "account_id": account.id,
                "caption": format!("Proud of my team, from {network}")}),
            )
            .await
            .unwrap_or_else(|error| panic!("{network} share: {error:?}"));
        shares.push((network, share));
    }
    // Bluesky signs in with an app password, never stored.
    let bluesky: chorus_api::publishing::Account = api
        .post(
            "/v1/accounts/app-password",
            &alice,
            json!({"network": "bluesky",
            "identifier": "alice.bsky.social", "app_password": "abcd-efgh-ijkl-mnop"}),
        )
        .await
        .expect("bluesky connects");
    assert_eq!(bluesky.network, "bluesky");
    assert!(bluesky.external_id.starts_with("did:plc:"), "{bluesky:?}");
    let refused = api
        .post::<chorus_api::publishing::Account>("/v1/accounts/app-password", &alice,
            json!({"network": "linkedin", "identifier": "alice", "app_password": "abcd-efgh-ijkl-mnop"}))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 422, "{refused:?}");
    // ... and never through the OAuth round trip (which it has not).
    let refused = api
        .post::<serde_json::Value>(
            "/v1/accounts/connect",
            &alice,
            json!({"network": "bluesky"}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 422, "{refused:?}");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("/v1/accounts/app-password")
    );
    let share: Share = api
        .post(
            "/v1/shares",
            &alice,
            json!({"post_id": post.id, "account_id": bluesky.id,
            "caption": "Proud of my team, from bluesky"}),
        )
        .await
        .expect("bluesky share");
    shares.push(("bluesky", share));
    for (network, share) in &shares {
        let done = api
            .wait_final(&alice, &share.id, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(done.status, ShareStatus::Published, "{network}: {done:?}");
        let posts = harness.netsim.posts_of(network);
        assert_eq!(posts.len(), 1, "{network}: {posts:?}");
        assert_eq!(done.external_id.as_deref(), Some(posts[0].urn.as_str()));
        assert!(
            posts[0].commentary.contains(&share.tracked_url),
            "{network}: {}",
            posts[0].commentary
        );
    }
    assert_eq!(harness.netsim.posts().len(), shares.len());
    harness.stop().await;
}

/// Access tokens are refreshed before they end (netsim issues 30-second tokens here), and an
/// authorisation that cannot be renewed (LinkedIn's refresh token ends after a year; the
/// reminder window is widened to 400 days here) is announced to the advocate once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_are_refreshed_ahead_and_their_end_is_announced_once() {
    use crate::harness::eventually;
    let harness = Harness::start_with(Backend::Sqlite, &[], |config| {
        config.netsim.access_token_ttl_secs = 30;
        config.publishing.token_refresh_margin_secs = 25;
        config.publishing.token_check_interval_ms = 200;
        config.publishing.expiry_reminder_secs = 400 * 86_400;
    })
    .await;
    let api = &harness.api;
    harness.tenant("acme", &["alice"]).await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let account = api.connect(&alice, "linkedin", "alice-li").await.unwrap();
    let first = account.access_expires_at.expect("LinkedIn tokens expire");
    assert!(first < chrono::Utc::now() + chrono::TimeDelta::seconds(31));
    let later = eventually(
        Duration::from_secs(30),
        "a refresh ahead of expiry",
        || async {
            let accounts: Vec<chorus_api::publishing::Account> =
                api.get("/v1/accounts", &alice).await.ok()?;
            let current = accounts.iter().find(|a| a.id == account.id)?;
            current
                .access_expires_at
                .filter(|at| *at > first + chrono::TimeDelta::seconds(1))
        },
    )
    .await;
    assert!(later > first);
    let reminded = |inbox: &chorus_api::notifications::Inbox| {
        inbox
            .items
            .iter()
            .filter(|n| n.kind == "account_expiring")
            .count()
    };
    let inbox = eventually(Duration::from_secs(30), "the expiry reminder", || async {
        let inbox: chorus_api::notifications::Inbox =
            api.get("/v1/me/notifications", &alice).await.ok()?;
        (reminded(&inbox) > 0).then_some(inbox)
    })
    .await;
    let notice = inbox
        .items
        .iter()
        .find(|n| n.kind == "account_expiring")
        .unwrap();
    assert!(notice.title.contains("LinkedIn"), "{notice:?}");
    // More rounds (and refreshes) pass: the same expiry is not announced again, and the
    // account still publishes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let inbox: chorus_api::notifications::Inbox =
        api.get("/v1/me/notifications", &alice).await.unwrap();
    assert_eq!(reminded(&inbox), 1, "{inbox:?}");
    harness.stop().await;
}

/// Instagram publishes images only: a share of a post with an image goes out in Instagram's
/// two steps with the post's image; a share of a text-only post is refused at once with the
/// reason, and nothing reaches the network.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instagram_publishes_the_post_image() {
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let api = &harness.api;
    let curator = harness.tenant("acme", &["alice"]).await;
    let with_image = harness.published_image_post(&curator).await;
    let text_only = harness.published_post(&curator, "We are hiring").await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let account = api
        .connect(&alice, "instagram", "alice-instagram")
        .await
        .expect("instagram connects");
    assert_eq!(account.network, "instagram");

    let refused = api
        .post::<Share>(
            "/v1/shares",
            &alice,
            json!({"post_id": text_only.id, "account_id": account.id, "caption": "Join us"}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 422, "{refused:?}");
    assert!(
        refused.body["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("instagram posts need an image")),
        "{refused:?}"
    );

    let share: Share = api
        .post(
            "/v1/shares",
            &alice,
            json!({"post_id": with_image.id, "account_id": account.id, "caption": "Meet my team"}),
        )
        .await
        .expect("a share of a post with an image");
    let done = api
        .wait_final(&alice, &share.id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.status, ShareStatus::Published, "{done:?}");
    let posts = harness.netsim.posts_of("instagram");
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(done.external_id.as_deref(), Some(posts[0].urn.as_str()));
    assert_eq!(
        posts[0].media_url.as_deref(),
        Some("https://cdn.acme.example/lyon-team.jpg")
    );
    assert!(posts[0].commentary.starts_with("Meet my team"), "{posts:?}");
    assert!(posts[0].commentary.contains(&share.tracked_url));
    assert_eq!(harness.netsim.posts().len(), 1);
    harness.stop().await;
}

/// An advocate edits their own scheduled share (caption, then time) until it is due; the
/// network receives the edited words at the new time. Others cannot edit it, bad edits are
/// refused without changing it, and a published share can no longer be edited.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scheduled_share_is_edited_by_its_advocate_until_it_is_due() {
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let api = &harness.api;
    let curator = harness.tenant("acme", &["alice", "bob"]).await;
    let post = harness.published_post(&curator, "Open day in Lyon").await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let bob = harness.token("acme", "bob", &[Role::Advocate]);
    let account = api.connect_linkedin(&alice, "alice-li").await.unwrap();
    let later = chrono::Utc::now() + chrono::Duration::days(3);
    let share = api
        .share_at(&alice, &post.id, &account.id, "First words", later)
        .await
        .unwrap();
    let path = format!("/v1/shares/{}", share.id);
    let patch = |token: String, body: serde_json::Value| {
        let path = path.clone();
        async move {
            api.send::<Share>(reqwest::Method::PATCH, &path, &token, Some(body))
                .await
        }
    };

    // The caption: the text is rebuilt with the same tracked link; the time is kept.
    let edited = patch(alice.clone(), json!({"caption": "  Better words  "}))
        .await
        .unwrap();
    assert_eq!(edited.caption, "Better words");
    assert_eq!(
        edited.text,
        format!("Better words\n\n{}", share.tracked_url)
    );
    assert_eq!(edited.due_at, share.due_at);
    assert_eq!(edited.status, ShareStatus::Scheduled);

    // Refused, and the share is unchanged: someone else, nothing to change, an empty
    // caption, a caption over LinkedIn's limit, a time in the past.
    let refused = patch(bob.clone(), json!({"caption": "Mine now"}))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 404, "{refused:?}");
    let refused = patch(curator.clone(), json!({"caption": "Mine now"}))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 403, "{refused:?}");
    for body in [
        json!({}),
        json!({"caption": "   "}),
        json!({"caption": "a".repeat(2_990)}),
        json!({"scheduled_at": chrono::Utc::now() - chrono::Duration::hours(1)}),
    ] {
        let refused = patch(alice.clone(), body.clone()).await.unwrap_err();
        assert_eq!(refused.status, 422, "{body}: {refused:?}");
    }
    let current: Share = api.get(&path, &alice).await.unwrap();
    assert_eq!(current.text, edited.text);
    assert_eq!(current.due_at, share.due_at);
    assert!(harness.netsim.posts().is_empty());

    // The time: now. The due-loop is woken and the edited words are published.
    let moved = patch(alice.clone(), json!({"scheduled_at": chrono::Utc::now()}))
        .await
        .unwrap();
    assert!(moved.due_at < share.due_at);
    let done = api
        .wait_final(&alice, &share.id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.status, ShareStatus::Published, "{done:?}");
    let posts = harness.netsim.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(posts[0].commentary.starts_with("Better words"), "{posts:?}");

    // Published: no more edits.
    let refused = patch(alice.clone(), json!({"caption": "Too late"}))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 409, "{refused:?}");
    assert_eq!(harness.netsim.posts().len(), 1);
    harness.stop().await;
}

/// The due-loop hands a share to the publisher ahead of its time (the emit lead), so that a
/// burst due at one instant is in the publisher's hands when it falls due. Once handed over
/// the share can no longer be edited or cancelled (409, nothing changes), and it reaches the
/// network at its time, not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_share_handed_over_ahead_goes_out_at_its_time_not_before() {
    let harness = Harness::start_with(Backend::Sqlite, &[], |config| {
        config.scheduling.emit_lead_ms = 4_000;
    })
    .await;
    let api = &harness.api;
    let curator = harness.tenant("acme", &["alice"]).await;
    let post = harness.published_post(&curator, "Open day in Lyon").await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let account = api.connect_linkedin(&alice, "alice-li").await.unwrap();
    let at = chrono::Utc::now() + chrono::Duration::seconds(7);
    let share = api
        .share_at(&alice, &post.id, &account.id, "See you there", at)
        .await
        .unwrap();
    let path = format!("/v1/shares/{}", share.id);

    // Handed over about four seconds ahead: the API says so before the time.
    crate::harness::eventually(Duration::from_secs(10), "share handed over", || async {
        let current: Share = api.get(&path, &alice).await.ok()?;
        (current.status == ShareStatus::Due).then_some(())
    })
    .await;
    assert!(chrono::Utc::now() < at, "handed over ahead of its time");
    let refused = api
        .post::<Share>(&format!("{path}/cancel"), &alice, json!({}))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 409, "{refused:?}");
    let detail = refused.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("handed to the publisher") && detail.contains("goes out at"),
        "{detail}"
    );
    let refused = api
        .send::<Share>(
            reqwest::Method::PATCH,
            &path,
            &alice,
            Some(json!({"caption": "Changed my mind"})),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 409, "{refused:?}");
    assert!(harness.netsim.posts().is_empty(), "nothing posted early");

    let done = api
        .wait_final(&alice, &share.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.status, ShareStatus::Published, "{done:?}");
    let posts = harness.netsim.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0].created_at >= at,
        "posted at {} for {at}",
        posts[0].created_at
    );
    assert!(
        posts[0].commentary.starts_with("See you there"),
        "{posts:?}"
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shares_of_one_post_by_many_advocates_are_spread_over_the_window() {
    let harness = Harness::start_with(Backend::Sqlite, &[], |config| {
        config.scheduling.stagger_window_secs = 600;
    })
    .await;
    let api = &harness.api;
    let advocates = ["alice", "bob", "dan", "eve", "fay", "gus"];
    let curator = harness.tenant("acme", &advocates).await;
    let post = harness.published_post(&curator, "Launch day").await;
    let other = harness.published_post(&curator, "Another story").await;
    let at = chrono::Utc::now() + chrono::Duration::hours(2);
    let mut due = Vec::new();
    for advocate in advocates {
        let token = harness.token("acme", advocate, &[Role::Advocate]);
        let account = api
            .connect_linkedin(&token, &format!("{advocate}-li"))
            .await
            .unwrap();
        let share = api
            .share_at(&token, &post.id, &account.id, "Launch!", at)
            .await
            .unwrap();
        due.push(share.due_at);
        if advocate == "alice" {
            // Another post at the same moment is not held back by this one.
            let share = api
                .share_at(&token, &other.id, &account.id, "Read this", at)
                .await
                .unwrap();
            assert_eq!(share.due_at, at);
        }
    }
    // The first share keeps its time; the others fall within the ten minutes after it, at
    // different moments.
    assert_eq!(due[0], at);
    for moment in &due[1..] {
        assert!(
            *moment >= at && *moment < at + chrono::Duration::minutes(10),
            "{moment} outside the window after {at}"
        );
    }
    let distinct: BTreeSet<_> = due.iter().collect();
    assert_eq!(distinct.len(), due.len(), "{due:?}");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shares_go_into_the_advocates_next_free_slot() {
    use chrono::{Datelike, TimeZone};
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let api = &harness.api;
    let curator = harness.tenant("acme", &["alice", "bob"]).await;
    let post = harness.published_post(&curator, "Slots news").await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let bob = harness.token("acme", "bob", &[Role::Advocate]);
    let account = api.connect_linkedin(&alice, "alice-li").await.unwrap();
    let day = |offset: i64| {
        let date = (chrono::Utc::now() + chrono::Duration::days(offset)).date_naive();
        (
            date.weekday().to_string(),
            chrono::Utc.from_utc_datetime(&date.and_hms_opt(10, 0, 0).unwrap()),
        )
    };
    let ((first_day, first), (second_day, second)) = (day(1), day(2));
    let weekday_name = |short: &str| {
        [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ]
        .into_iter()
        .find(|name| name.starts_with(&short.to_lowercase()))
        .unwrap()
    };
    let slots: serde_json::Value = api
        .send(
            reqwest::Method::PUT,
            "/v1/me/slots",
            &alice,
            Some(json!({"time_zone": "UTC", "slots": [
                {"day": weekday_name(&first_day), "time": "10:00"},
                {"day": weekday_name(&second_day), "time": "10:00"}]})),
        )
        .await
        .unwrap();
    let upcoming: Vec<chrono::DateTime<chrono::Utc>> =
        serde_json::from_value(slots["upcoming"].clone()).unwrap();
    assert_eq!(upcoming[..2], [first, second]);
    let share = |body: serde_json::Value| async {
        let mut body = body;
        body["post_id"] = json!(post.id);
        body["account_id"] = json!(account.id);
        body["caption"] = json!("In my slot");
        api.post::<Share>("/v1/shares", &alice, body).await
    };
    let one = share(json!({"next_slot": true})).await.unwrap();
    let two = share(json!({"next_slot": true})).await.unwrap();
    let three = share(json!({"next_slot": true})).await.unwrap();
    assert_eq!(one.due_at, first);
    assert_eq!(two.due_at, second);
    assert_eq!(
        three.due_at,
        first + chrono::Duration::days(7),
        "a week later"
    );
    // Cancelling frees a slot; a time of its own frees it too.
    let _: Share = api
        .post(&format!("/v1/shares/{}/cancel", one.id), &alice, json!({}))
        .await
        .unwrap();
    assert_eq!(
        share(json!({"next_slot": true})).await.unwrap().due_at,
        first
    );
    let _: Share = api
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/shares/{}", two.id),
            &alice,
            Some(json!({"scheduled_at": second + chrono::Duration::hours(3)})),
        )
        .await
        .unwrap();
    assert_eq!(
        share(json!({"next_slot": true})).await.unwrap().due_at,
        second
    );

    // Clear refusals.
    let refused = share(json!({"next_slot": true, "scheduled_at": second}))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 422);
    let bob_account = api.connect_linkedin(&bob, "bob-li").await.unwrap();
    let refused = api
        .post::<Share>(
            "/v1/shares",
            &bob,
            json!({"post_id": post.id, "account_id": bob_account.id, "caption": "Mine", "next_slot": true}),
        )
        .await
        .unwrap_err();
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("PUT /v1/me/slots"),
        "{}",
        refused.body
    );
    for (body, says) in [
        (
            json!({"time_zone": "Mars/Olympus", "slots": []}),
            "time_zone",
        ),
        (
            json!({"time_zone": "UTC", "slots": [{"day": "funday", "time": "10:00"}]}),
            "not a day",
        ),
        (
            json!({"time_zone": "UTC", "slots": [{"day": "monday", "time": "7pm"}]}),
            "not a time",
        ),
    ] {
        let refused = api
            .send::<serde_json::Value>(reqwest::Method::PUT, "/v1/me/slots", &bob, Some(body))
            .await
            .unwrap_err();
        assert_eq!(refused.status, 422);
        assert!(
            refused.body["detail"].as_str().unwrap().contains(says),
            "{}",
            refused.body
        );
    }
    harness.stop().await;
}

/// A post's image goes to LinkedIn through the Images API: fetched from the company's host,
/// uploaded for the member, and referenced by the post.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linkedin_posts_carry_the_post_image_through_the_images_api() {
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let api = &harness.api;
    let curator = harness.tenant("acme", &["alice"]).await;
    let image_url = format!("http://{}/cdn/lyon-team.png", harness.config.netsim.listen);
    let draft: chorus_api::content::Post = api
        .post("/v1/posts", &curator, json!({"title": "Our Lyon team", "commentary": "Suggested words",
            "link_url": "https://careers.example.com/lyon", "content_type": "employer_branding", "topics": ["jobs"],
            "media": [{"url": image_url, "kind": "image", "mime_type": "image/png",
                "size_bytes": 67, "alt_text": "Twelve engineers in front of the Lyon office"}]}))
        .await
        .unwrap();
    let post: chorus_api::content::Post = api
        .post(
            &format!("/v1/posts/{}/publish", draft.id),
            &curator,
            json!({}),
        )
        .await
        .unwrap();
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let account = api.connect_linkedin(&alice, "alice-li").await.unwrap();
    let share: Share = api
        .post(
            "/v1/shares",
            &alice,
            json!({"post_id": post.id, "account_id": account.id, "caption": "Meet my team"}),
        )
        .await
        .unwrap();
    let done = api
        .wait_final(&alice, &share.id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.status, ShareStatus::Published, "{done:?}");
    let posts = harness.netsim.posts_of("linkedin");
    assert_eq!(posts.len(), 1, "{posts:?}");
    let image = posts[0]
        .media_url
        .clone()
        .expect("the post references an image");
    assert!(image.starts_with("urn:li:image:"), "{image}");
    let uploaded = harness.netsim.linkedin_image(&image).expect("uploaded");
    assert_eq!(&uploaded[..4], b"\x89PNG", "the image's own bytes");

    // An image that is gone fails the share with the reason, and posts nothing.
    let missing = format!("http://{}/cdn/gone.gif", harness.config.netsim.listen);
    let draft: chorus_api::content::Post = api
        .post("/v1/posts", &curator, json!({"title": "Gone", "commentary": "Words",
            "link_url": "https://careers.example.com/gone", "content_type": "employer_branding",
            "media": [{"url": missing, "kind": "image", "mime_type": "image/gif", "size_bytes": 10, "alt_text": "gone"}]}))
        .await
        .unwrap();
    let gone: chorus_api::content::Post = api
        .post(
            &format!("/v1/posts/{}/publish", draft.id),
            &curator,
            json!({}),
        )
        .await
        .unwrap();
    let share: Share = api
        .post(
            "/v1/shares",
            &alice,
            json!({"post_id": gone.id, "account_id": account.id, "caption": "Look at this"}),
        )
        .await
        .unwrap();
    let done = api
        .wait_final(&alice, &share.id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.status, ShareStatus::Failed, "{done:?}");
    assert!(done.failure_reason.unwrap_or_default().contains("404"));
    assert_eq!(harness.netsim.posts_of("linkedin").len(), 1);
    harness.stop().await;
}

/// A share waiting for its account's posting window says so: the advocate sees what it waits
/// for instead of a due time already past, and cancelling explains why it cannot be.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_share_waiting_for_its_window_says_what_it_waits_for() {
    let harness = Harness::start_with(Backend::Sqlite, &[], |config| {
        config.publishing.x.window_posts = 1;
        config.publishing.x.window_secs = 12;
    })
    .await;
    let api = &harness.api;
    let curator = harness.tenant("waitco", &["alice"]).await;
    let alice = harness.token("waitco", "alice", &[Role::Advocate]);
    let account = api.connect(&alice, "x", "alice-x").await.unwrap();
    let mut shares = Vec::new();
    for index in 0..2 {
        let post = harness
            .published_post(&curator, &format!("Window story {index}"))
            .await;
        let share: Share = api
            .post(
                "/v1/shares",
                &alice,
                json!({"post_id": post.id, "account_id": account.id, "caption": format!("Window {index}")}),
            )
            .await
            .unwrap();
        shares.push(share);
    }
    let path = |share: &Share| format!("/v1/shares/{}", share.id);
    let waiting = eventually(Duration::from_secs(20), "a share says it waits", || async {
        for share in &shares {
            let current: Share = api.get(&path(share), &alice).await.ok()?;
            if current.waiting_for.is_some() {
                return Some(current);
            }
        }
        None
    })
    .await;
    assert_eq!(waiting.status, ShareStatus::Due, "{waiting:?}");
    assert_eq!(
        waiting.waiting_for.as_deref(),
        Some("the account's posting window on X")
    );
    let refused = api
        .post::<Share>(&format!("{}/cancel", path(&waiting)), &alice, json!({}))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 409, "{refused:?}");
    assert!(
        refused.body["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("waits for the account's posting window on X")),
        "{refused:?}"
    );
    for share in &shares {
        let done = api
            .wait_final(&alice, &share.id, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(done.status, ShareStatus::Published, "{done:?}");
        assert!(
            done.waiting_for.is_none(),
            "no wait once published: {done:?}"
        );
    }
    assert_eq!(harness.netsim.posts_of("x").len(), 2);
    harness.stop().await;
}
