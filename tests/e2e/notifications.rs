//! The in-app channel: triggers reach the inbox, and web frontends follow it live over
//! Server-Sent Events, catching up after a reconnect with `Last-Event-ID`.

use crate::harness::{Backend, Harness, eventually};
use chorus_api::notifications::Inbox;
use chorus_kit::Role;
use serde_json::{Value, json};
use std::time::Duration;

/// One Server-Sent Event.
#[derive(Debug)]
struct SseEvent {
    event: String,
    id: String,
    data: Value,
}

/// Reads events off a `text/event-stream` response, skipping keep-alive comments.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    async fn open(harness: &Harness, token: &str, last_event_id: Option<&str>) -> SseReader {
        let mut request = harness
            .api
            .http
            .get(format!(
                "{}/v1/me/notifications/stream",
                harness.api.base_url
            ))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        SseReader {
            response,
            buffer: String::new(),
        }
    }

    async fn next(&mut self) -> SseEvent {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let (mut event, mut id, mut data) =
                        (String::new(), String::new(), String::new());
                    for line in block.lines() {
                        if let Some(value) = line.strip_prefix("event:") {
                            event = value.trim().to_string();
                        } else if let Some(value) = line.strip_prefix("id:") {
                            id = value.trim().to_string();
                        } else if let Some(value) = line.strip_prefix("data:") {
                            data.push_str(value.trim());
                        }
                    }
                    if event.is_empty() {
                        continue; // a keep-alive comment
                    }
                    return SseEvent {
                        event,
                        id,
                        data: serde_json::from_str(&data).unwrap(),
                    };
                }
                let chunk = self
                    .response
                    .chunk()
                    .await
                    .unwrap()
                    .expect("the stream stays open");
                self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .expect("an event within 30 s")
    }
}

async fn grant(harness: &Harness, admin: &str, user: &str, badge: &str, title: &str) {
    let _: Value = harness
        .api
        .post(
            "/v1/badges",
            admin,
            json!({"user_id": user, "badge": badge, "title": title}),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notifications_stream_live_and_catch_up_after_a_reconnect() {
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let admin = harness.tenant("acme", &["alice", "bob"]).await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let mut stream = SseReader::open(&harness, &alice, None).await;

    // Someone else's notification never reaches alice's stream; hers does, live.
    grant(&harness, &admin, "bob", "early_bird", "Early bird").await;
    grant(&harness, &admin, "alice", "first_share", "First share").await;
    let first = stream.next().await;
    assert_eq!(first.event, "notification");
    assert_eq!(first.data["kind"], "badge_earned");
    assert_eq!(first.data["title"], "You earned the badge First share");
    assert_eq!(first.data["id"], first.id.as_str());
    let inbox: Inbox = harness
        .api
        .get("/v1/me/notifications", &alice)
        .await
        .unwrap();
    assert!(
        inbox.items.iter().any(|item| item.id == first.id),
        "the stream carries inbox items"
    );

    // Disconnected while another arrives: the reconnect with Last-Event-ID catches up
    // first, then stays live.
    drop(stream);
    grant(&harness, &admin, "alice", "storyteller", "Storyteller").await;
    eventually(
        Duration::from_secs(30),
        "the second badge is in the inbox",
        || async {
            let inbox: Inbox = harness
                .api
                .get("/v1/me/notifications", &alice)
                .await
                .unwrap();
            inbox
                .items
                .iter()
                .any(|item| item.title.contains("Storyteller"))
                .then_some(())
        },
    )
    .await;
    let mut stream = SseReader::open(&harness, &alice, Some(&first.id)).await;
    let missed = stream.next().await;
    assert_eq!(missed.data["title"], "You earned the badge Storyteller");
    assert!(missed.id > first.id);
    grant(&harness, &admin, "alice", "connector", "Connector").await;
    let live = stream.next().await;
    assert_eq!(live.data["title"], "You earned the badge Connector");

    // Without a token there is no stream.
    let anonymous = harness
        .api
        .http
        .get(format!(
            "{}/v1/me/notifications/stream",
            harness.api.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    harness.stop().await;
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reviewers_are_told_when_a_post_awaits_review() {
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let curator = harness.tenant("acme", &["ann"]).await;
    let _: Value = harness
        .api
        .post(
            "/v1/users",
            &curator,
            json!({"id": "abe", "display_name": "Abe Approver", "email": "abe@example.com",
                   "roles": ["approver"]}),
        )
        .await
        .unwrap();
    let post: chorus_api::content::Post = harness
        .api
        .post(
            "/v1/posts",
            &curator,
            json!({"title": "Quarterly results", "commentary": "About results",
                   "link_url": "https://www.acme.example/news", "content_type": "company_news",
                   "topics": ["finance"]}),
        )
        .await
        .unwrap();
    let _: Value = harness
        .api
        .post(
            &format!("/v1/posts/{}/submit", post.id),
            &curator,
            json!({}),
        )
        .await
        .unwrap();
    let abe = harness.token("acme", "abe", &[Role::Approver]);
    let told = eventually(Duration::from_secs(30), "the approver is told", || async {
        let inbox: Inbox = harness.api.get("/v1/me/notifications", &abe).await.unwrap();
        inbox
            .items
            .into_iter()
            .find(|item| item.kind == "post_waiting_review")
    })
    .await;
    assert_eq!(told.title, "A post is waiting for your review");
    assert!(told.body.contains(&post.id), "{}", told.body);
    // Neither the author (an admin too) nor an advocate is told.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (user, roles) in [
        ("carol", &[Role::Curator, Role::Admin][..]),
        ("ann", &[Role::Advocate][..]),
    ] {
        let token = harness.token("acme", user, roles);
        let inbox: Inbox = harness
            .api
            .get("/v1/me/notifications", &token)
            .await
            .unwrap();
        assert!(
            inbox
                .items
                .iter()
                .all(|item| item.kind != "post_waiting_review"),
            "{user} was told"
        );
    }
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_content_and_surveys_reach_followers_and_targeted_people() {
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let curator = harness.tenant("acme", &["ann", "ben"]).await;
    let api = &harness.api;
    let ann = harness.token("acme", "ann", &[Role::Advocate]);
    let ben = harness.token("acme", "ben", &[Role::Advocate]);
    let _: Value = api
        .send(reqwest::Method::PUT, "/v1/me/topics/hiring", &ann, None)
        .await
        .unwrap();
    // A post in a topic ann follows reaches ann only.
    publish(
        &harness,
        &curator,
        "We are hiring in Lyon",
        json!({"topics": ["hiring"]}),
    )
    .await;
    // A post targeted at sales reaches everyone in sales, followers or not.
    publish(
        &harness,
        &curator,
        "Sales kick-off",
        json!({"topics": ["events"], "targeting": {"departments": ["sales"]}}),
    )
    .await;
    // A post for nobody in particular, in a topic nobody follows, reaches nobody.
    publish(
        &harness,
        &curator,
        "Office plants",
        json!({"topics": ["facilities"]}),
    )
    .await;
    let told = eventually(
        Duration::from_secs(30),
        "ann hears of both posts",
        || async {
            let titles = news(&harness, &ann).await;
            (titles.len() >= 2).then_some(titles)
        },
    )
    .await;
    assert!(told.contains(&"New to share: We are hiring in Lyon".to_string()));
    assert!(told.contains(&"New to share: Sales kick-off".to_string()));
    let told = eventually(
        Duration::from_secs(30),
        "ben hears of the sales post",
        || async {
            let titles = news(&harness, &ben).await;
            (!titles.is_empty()).then_some(titles)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(told, vec!["New to share: Sales kick-off".to_string()]);
    assert_eq!(
        news(&harness, &ann).await.len(),
        2,
        "nothing about office plants"
    );
    assert!(
        news(&harness, &curator).await.is_empty(),
        "the author is not told"
    );

    // A survey for sales reaches both advocates, not its author.
    let _: Value = harness
        .api
        .post(
            "/v1/surveys",
            &curator,
            json!({"title": "Monthly pulse", "recurrence": "monthly",
                   "targeting": {"departments": ["sales"]},
                   "questions": [{"id": "enps", "kind": "enps"}]}),
        )
        .await
        .unwrap();
    for token in [&ann, &ben] {
        let waiting = eventually(
            Duration::from_secs(30),
            "the survey is announced",
            || async {
                let inbox: Inbox = harness
                    .api
                    .get("/v1/me/notifications", token)
                    .await
                    .unwrap();
                inbox
                    .items
                    .into_iter()
                    .find(|item| item.kind == "survey_waiting")
            },
        )
        .await;
        assert_eq!(waiting.title, "A survey is waiting for you: Monthly pulse");
    }
    let inbox: Inbox = harness
        .api
        .get("/v1/me/notifications", &curator)
        .await
        .unwrap();
    assert!(inbox.items.iter().all(|item| item.kind != "survey_waiting"));
    harness.stop().await;
}

async fn publish(harness: &Harness, curator: &str, title: &str, extra: Value) {
    let mut body = json!({"title": title, "commentary": "Suggested words",
        "link_url": "https://www.acme.example/news", "content_type": "company_news"});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    let post: chorus_api::content::Post =
        harness.api.post("/v1/posts", curator, body).await.unwrap();
    let _: Value = harness
        .api
        .post(
            &format!("/v1/posts/{}/publish", post.id),
            curator,
            json!({}),
        )
        .await
        .unwrap();
}

async fn news(harness: &Harness, token: &str) -> Vec<String> {
    let inbox: Inbox = harness
        .api
        .get("/v1/me/notifications", token)
        .await
        .unwrap();
    inbox
        .items
        .into_iter()
        .filter(|item| item.kind == "new_content")
        .map(|item| item.title)
        .collect()
}

/// Publishes a share outcome as the publishing service would.
async fn outcome(harness: &Harness, tenant: &str, index: usize, failed: bool) {
    use chorus_events::Event;
    use chorus_events::share::v1::{ShareFailed, SharePublished};
    let now = chorus_events::to_timestamp(chrono::Utc::now());
    let (subject, kind, payload) = if failed {
        let event = ShareFailed {
            tenant_id: tenant.into(),
            share_id: format!("sh-{index}"),
            user_id: "ann".into(),
            network: "linkedin".into(),
            error_code: "invalid_request".into(),
            reason: "The network refused the post".into(),
            attempts: 1,
            failed_at: Some(now),
        };
        (
            event.subject(),
            ShareFailed::TYPE,
            prost::Message::encode_to_vec(&event),
        )
    } else {
        let event = SharePublished {
            tenant_id: tenant.into(),
            share_id: format!("sh-{index}"),
            user_id: "ben".into(),
            network: "linkedin".into(),
            published_at: Some(now),
            ..Default::default()
        };
        (
            event.subject(),
            SharePublished::TYPE,
            prost::Message::encode_to_vec(&event),
        )
    };
    let headers = chorus_bus::outbox::event_headers(
        &uuid::Uuid::now_v7().to_string(),
        kind,
        "test",
        &subject,
        chrono::Utc::now(),
    );
    harness
        .bus
        .jetstream
        .publish_with_headers(subject, headers, payload.into())
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admins_are_alerted_once_when_publishing_fails_too_often() {
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let admin = harness.tenant("acme", &["ann", "ben"]).await;
    let other_admin = harness.tenant("globex", &["gus"]).await;
    let alerts = |token: String| {
        let harness = &harness;
        async move {
            let inbox: Inbox = harness
                .api
                .get("/v1/me/notifications", &token)
                .await
                .unwrap();
            inbox
                .items
                .into_iter()
                .filter(|item| item.kind == "publishing_failure_rate")
                .collect::<Vec<_>>()
        }
    };
    // Globex: 5 failures among 100 outcomes (5%) is no alarm.
    for index in 0..95 {
        outcome(&harness, "globex", index, false).await;
    }
    for index in 95..100 {
        outcome(&harness, "globex", index, true).await;
    }
    // Acme: 6 failures among 16 outcomes is.
    for index in 0..10 {
        outcome(&harness, "acme", index, false).await;
    }
    for index in 10..16 {
        outcome(&harness, "acme", index, true).await;
    }
    let told = eventually(
        Duration::from_secs(30),
        "acme's admin is alerted",
        || async {
            let found = alerts(admin.clone()).await;
            (!found.is_empty()).then_some(found)
        },
    )
    .await;
    assert!(
        told[0].title.starts_with("Publishing is failing: "),
        "{}",
        told[0].title
    );
    // More failures within the cool-down: no second alert.
    for index in 16..22 {
        outcome(&harness, "acme", index, true).await;
    }
    eventually(
        Duration::from_secs(30),
        "ann is told of her last failure",
        || async {
            let ann = harness.token("acme", "ann", &[Role::Advocate]);
            let inbox: Inbox = harness.api.get("/v1/me/notifications", &ann).await.unwrap();
            (inbox
                .items
                .iter()
                .filter(|item| item.kind == "share_failed")
                .count()
                == 12)
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        alerts(admin.clone()).await.len(),
        1,
        "one alert per cool-down"
    );
    assert!(
        alerts(other_admin.clone()).await.is_empty(),
        "globex is fine"
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn advocates_hear_when_a_contest_begins_and_nears_its_end() {
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let admin = harness.tenant("acme", &["ann"]).await;
    let ann = harness.token("acme", "ann", &[Role::Advocate]);
    let start = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
    let end = start + chrono::TimeDelta::seconds(4);
    let _: Value = harness
        .api
        .post(
            "/v1/contests",
            &admin,
            json!({"name": "Spring sprint", "starts_at": start, "ends_at": end, "metric": "shares"}),
        )
        .await
        .unwrap();
    let kinds = eventually(Duration::from_secs(30), "start, end and result", || async {
        let inbox: Inbox = harness.api.get("/v1/me/notifications", &ann).await.unwrap();
        let kinds: Vec<(String, String)> = inbox
            .items
            .into_iter()
            .filter(|item| item.kind.starts_with("contest_"))
            .map(|item| (item.kind, item.title))
            .collect();
        (kinds.len() >= 2).then_some(kinds)
    })
    .await;
    assert!(
        kinds.contains(&(
            "contest_started".into(),
            "A contest has begun: Spring sprint".into()
        )),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("contest_ending".into(), "Spring sprint ends soon".into())),
        "{kinds:?}"
    );
    // Once each, however long the loops keep looking.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let inbox: Inbox = harness.api.get("/v1/me/notifications", &ann).await.unwrap();
    assert_eq!(
        inbox
            .items
            .iter()
            .filter(|item| item.kind == "contest_started")
            .count(),
        1
    );
    assert_eq!(
        inbox
            .items
            .iter()
            .filter(|item| item.kind == "contest_ending")
            .count(),
        1
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suggestions_milestones_and_wins_reach_the_right_people() {
    use chorus_events::gamification::v1::{ContestFinished, ContestWinner, PointsAwarded};
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let curator = harness.tenant("acme", &["ann", "ben"]).await;
    let api = &harness.api;
    let ann = harness.token("acme", "ann", &[Role::Advocate]);
    let ben = harness.token("acme", "ben", &[Role::Advocate]);
    let inbox_of = |token: String, kind: &'static str| {
        let harness = &harness;
        async move {
            let inbox: Inbox = harness
                .api
                .get("/v1/me/notifications", &token)
                .await
                .unwrap();
            inbox
                .items
                .into_iter()
                .filter(|item| item.kind == kind)
                .map(|item| item.title)
                .collect::<Vec<_>>()
        }
    };
    let wait = |token: String, kind: &'static str| {
        let inbox_of = &inbox_of;
        async move {
            eventually(Duration::from_secs(30), kind, || async {
                let titles = inbox_of(token.clone(), kind).await;
                (!titles.is_empty()).then_some(titles)
            })
            .await
        }
    };

    // Suggestions: curators hear of them; authors hear the decision.
    let suggestion = |title: &str| {
        json!({"title": title, "link_url": "https://blog.example.org/hack",
               "text": "48 hours, one tracker", "topics": ["engineering"]})
    };
    let accepted: Value = api
        .post("/v1/submissions", &ann, suggestion("Our hackathon"))
        .await
        .unwrap();
    let turned_down: Value = api
        .post("/v1/submissions", &ben, suggestion("Our lunch menu"))
        .await
        .unwrap();
    let waiting = wait(curator.clone(), "submission_waiting").await;
    assert!(
        waiting.contains(&"A suggestion is waiting: Our hackathon".to_string()),
        "{waiting:?}"
    );
    let _: Value = api
        .post(
            &format!(
                "/v1/submissions/{}/approve",
                accepted["id"].as_str().unwrap()
            ),
            &curator,
            json!({}),
        )
        .await
        .unwrap();
    let _: Value = api
        .post(
            &format!(
                "/v1/submissions/{}/reject",
                turned_down["id"].as_str().unwrap()
            ),
            &curator,
            json!({"reason": "Not about our work"}),
        )
        .await
        .unwrap();
    wait(ann.clone(), "submission_approved").await;
    wait(ben.clone(), "submission_rejected").await;
    assert!(
        inbox_of(ann.clone(), "submission_rejected")
            .await
            .is_empty()
    );

    // Points: crossing 100 is a milestone, once.
    for (points, balance) in [(60, 60), (50, 110), (20, 130)] {
        harness
            .bus
            .publish_event(
                &PointsAwarded {
                    tenant_id: "acme".into(),
                    user_id: "ann".into(),
                    points,
                    action: "share".into(),
                    source_event_id: uuid::Uuid::now_v7().to_string(),
                    balance,
                    ..Default::default()
                },
                "test",
            )
            .await
            .unwrap();
    }
    let milestones = wait(ann.clone(), "points_milestone").await;
    assert_eq!(milestones, vec!["You reached 100 points".to_string()]);

    // A contest's individual winners hear their place.
    harness
        .bus
        .publish_event(
            &ContestFinished {
                tenant_id: "acme".into(),
                contest_id: "c1".into(),
                name: "Spring sprint".into(),
                metric: "shares".into(),
                winners: vec![
                    ContestWinner {
                        rank: 1,
                        user_id: "ben".into(),
                        score: 9,
                        ..Default::default()
                    },
                    ContestWinner {
                        rank: 2,
                        user_id: "ann".into(),
                        score: 7,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            "test",
        )
        .await
        .unwrap();
    assert_eq!(
        wait(ben.clone(), "contest_won").await,
        vec!["You placed #1 in Spring sprint".to_string()]
    );
    assert_eq!(
        wait(ann.clone(), "contest_won").await,
        vec!["You placed #2 in Spring sprint".to_string()]
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(inbox_of(ann.clone(), "points_milestone").await.len(), 1);
    harness.stop().await;
}
