//! Gamification through the gateway, fed with events as the other services publish them:
//! default points and caps, versioned rules, submissions and surveys, badges and streaks,
//! company and department boards with hidden names and deactivated people, my rank and
//! neighbours, contests (frozen results, winners event, team contests, conflicts), special
//! badges, rewards (concurrent redemptions, approval, refunds), redelivery, and a replay of
//! the whole history into a fresh database.
//!
//! Figures with the default rules (share 10, at most 10 per post and 50 a day; click 20;
//! reaction 15; comment 30; reshare 25; submission 50; survey 5, at most 15 a day):
//! - alice: 7 shares (s1 and s2 of p-jobs, 5 other posts) = 10 + 0 (per-post cap) + 40 +
//!   0 (daily cap) = 50; 2 clicks = 40; 1 comment = 30 -> 120
//! - bob: share of p-csr 10; 3 reactions 45; approved submission 50; 4 surveys 5+5+5+0 -> 120
//! - ceo (an executive): share of p-csr 10; 2 comments 60 -> 70
//! - dan (hides his name): share 10; reshare 25 -> 35
//! - erin (engineering): share of p-jobs 10; 1 click 20 -> 30
//! - gus: one share a week for four weeks -> 10 this week, 40 all time, streak badge
//! - frank: share 10, then deactivated -> not on boards
//!
//! Weekly company board: alice 120 and bob 120 (tie broken by id), ceo 70, an advocate 35,
//! erin 30, gus 10.

use crate::harness::{Backend, Harness, eventually};
use chorus_api::Page;
use chorus_api::gamification::{
    Badges, Contest, ContestStatus, Leaderboard, PointsSummary, Redemption, RedemptionStatus,
    Reward, RulesHistory, Standing,
};
use chorus_events::content::v1::{PostPublished, SubmissionApproved, SurveyAnswered};
use chorus_events::engagement::v1::{EngagementRecorded, Metric};
use chorus_events::identity::v1::UserDeactivated;
use chorus_events::share::v1::SharePublished;
use chorus_kit::Role;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gamification_on_sqlite() {
    gamification(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gamification_on_postgres() {
    gamification(Backend::Postgres).await;
}

const TENANT: &str = "acme";

fn shared(share_id: &str, user: &str, post: &str, at: DateTime<Utc>) -> SharePublished {
    SharePublished {
        tenant_id: TENANT.into(),
        share_id: share_id.into(),
        user_id: user.into(),
        post_id: post.into(),
        network: "linkedin".into(),
        published_at: Some(chorus_events::to_timestamp(at)),
        ..Default::default()
    }
}

fn engaged(
    share_id: &str,
    user: &str,
    post: &str,
    metric: Metric,
    delta: i64,
) -> EngagementRecorded {
    EngagementRecorded {
        tenant_id: TENANT.into(),
        share_id: share_id.into(),
        user_id: user.into(),
        post_id: post.into(),
        network: "linkedin".into(),
        metric: metric as i32,
        delta,
        total: delta,
        observed_at: Some(chorus_events::to_timestamp(Utc::now())),
        unique_visitor: metric == Metric::Click,
    }
}

async fn publish<E: chorus_events::Event>(harness: &Harness, event: &E) {
    harness.bus.publish_event(event, "test").await.unwrap();
}

/// Starts the gamification service alone, so that the test can stop and replay it.
async fn start_gamification(
    config: &chorus_kit::Config,
) -> (chorus_kit::Shutdown, chorus::Running) {
    let shutdown = chorus_kit::Shutdown::new();
    let running = chorus::start(config.clone(), &["gamification"], shutdown.clone())
        .await
        .expect("gamification starts");
    (shutdown, running)
}

async fn stop_gamification(shutdown: chorus_kit::Shutdown, running: chorus::Running) {
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(15), running.join()).await;
}

async fn board(harness: &Harness, token: &str, query: &str) -> Leaderboard {
    harness
        .api
        .get(&format!("/v1/leaderboard?{query}"), token)
        .await
        .unwrap()
}

fn rows(standings: &[Standing]) -> Vec<(u64, String, i64)> {
    standings
        .iter()
        .map(|standing| {
            (
                standing.rank,
                standing.display_name.clone(),
                standing.points,
            )
        })
        .collect()
}

async fn gamification(backend: Backend) {
    let harness = Harness::start(backend, &["gamification"]).await;
    let (shutdown, running) = start_gamification(&harness.config).await;
    let api = &harness.api;
    let carol = harness
        .tenant(TENANT, &["alice", "bob", "dan", "frank", "gus"])
        .await;
    for (id, department, roles) in [
        ("erin", "engineering", json!(["advocate"])),
        ("ceo", "executive", json!(["advocate", "admin"])),
    ] {
        let _: Value = api
            .post("/v1/users", &carol, json!({"id": id, "display_name": format!("{id} name"), "email": format!("{id}@example.com"),
                "roles": roles, "department": department}))
            .await
            .unwrap();
    }
    let token = |user: &str| harness.token(TENANT, user, &[Role::Advocate]);
    let (alice, bob, dan, erin, gus) = (
        token("alice"),
        token("bob"),
        token("dan"),
        token("erin"),
        token("gus"),
    );
    let admin = harness.token(TENANT, "carol", &[Role::Admin, Role::Curator]);
    eventually(Duration::from_secs(10), "gamification answers", || async {
        api.get::<PointsSummary>("/v1/me/points", &alice).await.ok()
    })
    .await;

    // Rules that make no sense are refused with the reason.
    let history: RulesHistory = api.get("/v1/gamification/rules", &alice).await.unwrap();
    assert_eq!(history.current.version, 1);
    assert_eq!(history.current.rules.comment.points, 30);
    assert_eq!(history.current.rules.submission_approved.points, 50);
    let mut negative = serde_json::to_value(&history.current.rules).unwrap();
    negative["click"]["daily_cap"] = json!(-1);
    let refused = api
        .send::<Value>(
            reqwest::Method::PUT,
            "/v1/gamification/rules",
            &admin,
            Some(json!({"rules": negative})),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 422);
    assert_eq!(
        refused.body["detail"],
        "click.daily_cap must not be negative"
    );
    let past = api
        .send::<Value>(
            reqwest::Method::PUT,
            "/v1/gamification/rules",
            &admin,
            Some(json!({"rules": history.current.rules, "effective_from": "2020-01-01T00:00:00Z"})),
        )
        .await
        .unwrap_err();
    assert_eq!(past.status, 422, "history is never rewritten");
    let forbidden = api
        .send::<Value>(
            reqwest::Method::PUT,
            "/v1/gamification/rules",
            &alice,
            Some(json!({"rules": history.current.rules})),
        )
        .await
        .unwrap_err();
    assert_eq!(forbidden.status, 403);

    // Posts and their topics, then contests on them.
    for (post_id, topic) in [("p-jobs", "jobs"), ("p-csr", "csr")] {
        publish(
            &harness,
            &PostPublished {
                tenant_id: TENANT.into(),
                post_id: post_id.into(),
                topics: vec![topic.into()],
                ..Default::default()
            },
        )
        .await;
    }
    let start = Utc::now();
    let end = start + chrono::Duration::seconds(15);
    let clicks_contest: Contest = api
        .post("/v1/contests", &admin, json!({"name": "Jobs clicks", "starts_at": start, "ends_at": end, "metric": "clicks", "topic": "jobs"}))
        .await
        .unwrap();
    assert_eq!(clicks_contest.status, ContestStatus::Running);
    let conflicting = api
        .post::<Value>("/v1/contests", &admin, json!({"name": "Jobs points", "starts_at": start, "ends_at": end, "metric": "points", "topic": "jobs"}))
        .await
        .unwrap_err();
    assert_eq!(conflicting.status, 409, "{}", conflicting.body);
    let backwards = api
        .post::<Value>(
            "/v1/contests",
            &admin,
            json!({"name": "Backwards", "starts_at": end, "ends_at": start, "metric": "points"}),
        )
        .await
        .unwrap_err();
    assert_eq!(backwards.status, 422);
    let team_contest: Contest = api
        .post("/v1/contests", &admin, json!({"name": "CSR by team", "starts_at": start, "ends_at": end, "metric": "points", "topic": "csr", "teams": true}))
        .await
        .unwrap();

    // Shares, with caps biting on alice's spam.
    let now = Utc::now();
    publish(&harness, &shared("s1", "alice", "p-jobs", now)).await;
    publish(&harness, &shared("s2", "alice", "p-jobs", now)).await;
    for index in 3..=7 {
        publish(
            &harness,
            &shared(&format!("s{index}"), "alice", &format!("p{index}"), now),
        )
        .await;
    }
    publish(&harness, &shared("b1", "bob", "p-csr", now)).await;
    publish(&harness, &shared("c1", "ceo", "p-csr", now)).await;
    publish(&harness, &shared("d1", "dan", "p-dan", now)).await;
    publish(&harness, &shared("e1", "erin", "p-jobs", now)).await;
    publish(&harness, &shared("f1", "frank", "p-frank", now)).await;
    for weeks_ago in [3, 2, 1, 0] {
        let at = now - chrono::Duration::weeks(weeks_ago);
        publish(
            &harness,
            &shared(
                &format!("g{weeks_ago}"),
                "gus",
                &format!("p-gus-{weeks_ago}"),
                at,
            ),
        )
        .await;
    }
    // Engagement by people; vanity and robots earn nothing.
    publish(
        &harness,
        &engaged("s1", "alice", "p-jobs", Metric::Click, 2),
    )
    .await;
    publish(
        &harness,
        &engaged("s1", "alice", "p-jobs", Metric::Comment, 1),
    )
    .await;
    publish(
        &harness,
        &engaged("s1", "alice", "p-jobs", Metric::Impression, 100),
    )
    .await;
    publish(
        &harness,
        &engaged("s1", "alice", "p-jobs", Metric::BotClick, 5),
    )
    .await;
    publish(
        &harness,
        &engaged("b1", "bob", "p-csr", Metric::Reaction, 3),
    )
    .await;
    publish(&harness, &engaged("c1", "ceo", "p-csr", Metric::Comment, 2)).await;
    publish(&harness, &engaged("d1", "dan", "p-dan", Metric::Reshare, 1)).await;
    publish(&harness, &engaged("e1", "erin", "p-jobs", Metric::Click, 1)).await;
    publish(
        &harness,
        &SubmissionApproved {
            tenant_id: TENANT.into(),
            submission_id: "sub1".into(),
            author_id: "bob".into(),
            post_id: "p-sub".into(),
            approved_by: "carol".into(),
        },
    )
    .await;
    for survey in 1..=4 {
        publish(
            &harness,
            &SurveyAnswered {
                tenant_id: TENANT.into(),
                survey_id: format!("survey{survey}"),
                user_id: "bob".into(),
                period: "2026-11".into(),
            },
        )
        .await;
    }
    publish(
        &harness,
        &UserDeactivated {
            tenant_id: TENANT.into(),
            user_id: "frank".into(),
            reason: "left".into(),
        },
    )
    .await;
    let _: Value = api
        .send(
            reqwest::Method::PUT,
            "/v1/me/preferences/gamification",
            &dan,
            Some(json!({"hide_name": true})),
        )
        .await
        .unwrap();

    // Waits for a balance made of `entries` ledger entries (capped ones earn 0).
    let balance = |token: String, expected: i64, entries: usize| {
        let api = api.clone();
        async move {
            eventually(
                Duration::from_secs(15),
                &format!("balance {expected}"),
                || {
                    let api = api.clone();
                    let token = token.clone();
                    async move {
                        let points: PointsSummary = api.get("/v1/me/points", &token).await.ok()?;
                        (points.balance == expected && points.entries.len() == entries)
                            .then_some(points)
                    }
                },
            )
            .await
        }
    };
    let alice_points = balance(alice.clone(), 120, 9).await;
    let bob_points = balance(bob.clone(), 120, 7).await;
    balance(token("ceo"), 70, 2).await;
    balance(dan.clone(), 35, 2).await;
    balance(erin.clone(), 30, 2).await;
    balance(gus.clone(), 40, 4).await;
    balance(token("frank"), 10, 1).await;

    // Every entry names its source; capped ones are kept with 0 points.
    let alice_shares: Vec<(i64, i64)> = alice_points
        .entries
        .iter()
        .filter(|entry| entry.action == "share")
        .map(|entry| (entry.requested_points, entry.points))
        .collect();
    assert_eq!(alice_shares.len(), 7);
    assert_eq!(
        alice_shares.iter().map(|(_, points)| points).sum::<i64>(),
        50
    );
    assert!(alice_shares.iter().all(|(requested, _)| *requested == 10));
    assert_eq!(
        alice_points
            .entries
            .iter()
            .filter(|entry| entry.action == "click")
            .map(|entry| entry.points)
            .sum::<i64>(),
        40
    );
    assert!(
        !alice_points
            .entries
            .iter()
            .any(|entry| entry.action == "impression" || entry.action == "bot_click")
    );
    let surveys: Vec<i64> = bob_points
        .entries
        .iter()
        .filter(|entry| entry.action == "survey_answered")
        .map(|entry| entry.points)
        .collect();
    assert_eq!(
        surveys.iter().sum::<i64>(),
        15,
        "the fourth survey of the day is capped"
    );
    assert_eq!(surveys.len(), 4);
    assert!(
        bob_points
            .entries
            .iter()
            .any(|entry| entry.action == "submission_approved" && entry.points == 50)
    );

    // Boards: executives like anyone else, hidden names, deactivated people gone, ties by id.
    let company = board(&harness, &erin, "board=company&period=week").await;
    assert_eq!(
        rows(&company.top),
        vec![
            (1, "alice".into(), 120),
            (2, "bob".into(), 120),
            (3, "ceo name".into(), 70),
            (4, "an advocate".into(), 35),
            (5, "erin name".into(), 30),
            (6, "gus".into(), 10),
        ]
    );
    assert_eq!(
        company.top[3].user_id, None,
        "a hidden name hides the id too"
    );
    assert_eq!(
        company.me.as_ref().map(|me| (me.rank, me.points)),
        Some((5, 30))
    );
    assert_eq!(
        rows(&company.neighbours),
        vec![
            (3, "ceo name".into(), 70),
            (4, "an advocate".into(), 35),
            (5, "erin name".into(), 30),
            (6, "gus".into(), 10)
        ]
    );
    let dan_sees: Leaderboard = api.get("/v1/me/rank?period=week", &dan).await.unwrap();
    assert_eq!(
        dan_sees
            .me
            .as_ref()
            .map(|me| (me.rank, me.display_name.as_str(), me.points)),
        Some((4, "dan", 35))
    );
    assert!(dan_sees.top.is_empty());
    let sales = board(&harness, &bob, "board=department&period=week").await;
    assert_eq!(sales.department.as_deref(), Some("sales"));
    assert_eq!(
        rows(&sales.top),
        vec![
            (1, "alice".into(), 120),
            (2, "bob".into(), 120),
            (3, "an advocate".into(), 35),
            (4, "gus".into(), 10)
        ]
    );
    let engineering = board(&harness, &erin, "board=department&period=all_time").await;
    assert_eq!(rows(&engineering.top), vec![(1, "erin name".into(), 30)]);
    let all_time = board(&harness, &gus, "period=all_time&limit=2").await;
    assert_eq!(
        rows(&all_time.top),
        vec![(1, "alice".into(), 120), (2, "bob".into(), 120)]
    );
    assert_eq!(
        all_time.me.as_ref().map(|me| (me.rank, me.points)),
        Some((4, 40)),
        "all time: alice 120, bob 120, ceo 70, gus 40, dan 35"
    );

    // Badges: thresholds and the four-week streak.
    let badges = |token: String| {
        let api = api.clone();
        async move {
            let badges: Badges = api.get("/v1/me/badges", &token).await.unwrap();
            badges
                .items
                .into_iter()
                .map(|badge| badge.badge)
                .collect::<Vec<_>>()
        }
    };
    let mut alice_badges = badges(alice.clone()).await;
    alice_badges.sort();
    assert_eq!(alice_badges, vec!["first_comment", "first_share"]);
    let mut gus_badges = badges(gus.clone()).await;
    gus_badges.sort();
    assert_eq!(gus_badges, vec!["first_share", "streak_4_weeks"]);
    let mut bob_badges = badges(bob.clone()).await;
    bob_badges.sort();
    assert_eq!(bob_badges, vec!["first_share", "first_submission"]);
    let granted: Value = api
        .post(
            "/v1/badges",
            &admin,
            json!({"user_id": "erin", "badge": "community_hero", "title": "Community hero"}),
        )
        .await
        .unwrap();
    assert_eq!(granted["granted_by"], "carol");
    let again = api
        .post::<Value>(
            "/v1/badges",
            &admin,
            json!({"user_id": "erin", "badge": "community_hero", "title": "Community hero"}),
        )
        .await
        .unwrap_err();
    assert_eq!(again.status, 409);
    assert!(
        badges(erin.clone())
            .await
            .contains(&"community_hero".to_string())
    );

    // Ranks move within a second of the engagement.
    let started = Instant::now();
    publish(&harness, &engaged("e1", "erin", "p-jobs", Metric::Click, 2)).await;
    let moved = eventually(Duration::from_secs(5), "erin's rank moves", || async {
        let mine: Leaderboard = api.get("/v1/me/rank?period=week", &erin).await.ok()?;
        mine.me.filter(|me| me.points == 70)
    })
    .await;
    let lag = started.elapsed();
    assert!(lag < Duration::from_secs(1), "rank updated after {lag:?}");
    // 70 ties with the ceo: "ceo" sorts before "erin".
    assert_eq!(moved.rank, 4);

    // Contests end with frozen results and announced winners.
    let contest_path = format!("/v1/contests/{}", clicks_contest.id);
    let finished: Contest = eventually(Duration::from_secs(30), "contest finished", || async {
        let contest: Contest = api.get(&contest_path, &alice).await.ok()?;
        (contest.status == ContestStatus::Finished).then_some(contest)
    })
    .await;
    let results: Vec<(u32, Option<String>, i64)> = finished
        .standings
        .iter()
        .map(|standing| (standing.rank, standing.user_id.clone(), standing.score))
        .collect();
    assert_eq!(
        results,
        vec![(1, Some("erin".into()), 3), (2, Some("alice".into()), 2)]
    );
    let teams: Contest = api
        .get(&format!("/v1/contests/{}", team_contest.id), &alice)
        .await
        .unwrap();
    let team_results: Vec<(u32, Option<String>, i64)> = teams
        .standings
        .iter()
        .map(|standing| (standing.rank, standing.team.clone(), standing.score))
        .collect();
    assert_eq!(
        team_results,
        vec![
            (1, Some("executive".into()), 70),
            (2, Some("sales".into()), 55)
        ]
    );
    let stream = harness
        .bus
        .jetstream
        .get_stream("CHORUS_GAMIFICATION")
        .await
        .unwrap();
    let announced = eventually(
        Duration::from_secs(10),
        "contest_finished announced",
        || async {
            let message = stream
                .get_last_raw_message_by_subject(&format!(
                    "chorus.{TENANT}.gamification.contest_finished.v1"
                ))
                .await
                .ok()?;
            let contains = |text: &str| {
                message
                    .payload
                    .windows(text.len())
                    .any(|window| window == text.as_bytes())
            };
            (contains(&clicks_contest.id) || contains(&team_contest.id)).then_some(message)
        },
    )
    .await;
    let event_type = announced
        .headers
        .get("ce-type")
        .map(|value| value.to_string());
    assert_eq!(
        event_type.as_deref(),
        Some("chorus.gamification.v1.ContestFinished")
    );
    // A click that happened inside the window but arrives after the end changes nothing.
    let mut late = engaged("s1", "alice", "p-jobs", Metric::Click, 1);
    late.observed_at = Some(chorus_events::to_timestamp(
        start + chrono::Duration::seconds(1),
    ));
    publish(&harness, &late).await;
    balance(alice.clone(), 140, 10).await;
    let still: Contest = api.get(&contest_path, &alice).await.unwrap();
    assert_eq!(still.standings, finished.standings);

    // A new version of the rules applies from its effective time only.
    let mut doubled = history.current.rules.clone();
    doubled.comment.points = 40;
    let changed: RulesHistory = api
        .send(
            reqwest::Method::PUT,
            "/v1/gamification/rules",
            &admin,
            Some(json!({"rules": doubled})),
        )
        .await
        .unwrap();
    assert_eq!(changed.current.version, 2);
    assert_eq!(changed.versions.len(), 2);
    publish(
        &harness,
        &engaged("s1", "alice", "p-jobs", Metric::Comment, 1),
    )
    .await;
    let after_change = balance(alice.clone(), 180, 11).await;
    let comments: Vec<(i64, i64)> = after_change
        .entries
        .iter()
        .filter(|entry| entry.action == "comment")
        .map(|entry| (entry.rule_version, entry.points))
        .collect();
    assert_eq!(
        comments,
        vec![(2, 40), (1, 30)],
        "the first comment keeps the version that priced it"
    );

    // Rewards: the cost is held at once, concurrent requests never spend the same points,
    // a rejection gives them back, the balance never goes negative.
    let refused = api
        .post::<Value>(
            "/v1/rewards",
            &admin,
            json!({"name": "Free lunch", "cost": -5}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 422);
    let mug: Reward = api
        .post("/v1/rewards", &admin, json!({"name": "Mug", "cost": 100}))
        .await
        .unwrap();
    let redeem_path = format!("/v1/rewards/{}/redeem", mug.id);
    let attempts = futures::future::join_all(
        (0..3).map(|_| api.post::<Redemption>(&redeem_path, &alice, json!({}))),
    )
    .await;
    let granted: Vec<&Redemption> = attempts
        .iter()
        .filter_map(|attempt| attempt.as_ref().ok())
        .collect();
    assert_eq!(
        granted.len(),
        1,
        "180 points pay for one mug of 100, not three"
    );
    assert!(
        attempts
            .iter()
            .filter_map(|attempt| attempt.as_ref().err())
            .all(|error| error.status == 409)
    );
    assert_eq!(granted[0].balance, Some(80));
    assert_eq!(granted[0].status, RedemptionStatus::Pending);
    let short = api
        .post::<Value>(&redeem_path, &alice, json!({}))
        .await
        .unwrap_err();
    assert_eq!(short.status, 409);
    let not_admin = api
        .post::<Value>(
            &format!("/v1/redemptions/{}/approve", granted[0].id),
            &alice,
            json!({}),
        )
        .await
        .unwrap_err();
    assert_eq!(not_admin.status, 403);
    let rejected: Redemption = api
        .post(
            &format!("/v1/redemptions/{}/reject", granted[0].id),
            &admin,
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(rejected.status, RedemptionStatus::Rejected);
    let twice = api
        .post::<Value>(
            &format!("/v1/redemptions/{}/approve", granted[0].id),
            &admin,
            json!({}),
        )
        .await
        .unwrap_err();
    assert_eq!(twice.status, 409, "a redemption is decided once");
    let points: PointsSummary = api.get("/v1/me/points", &alice).await.unwrap();
    assert_eq!(points.balance, 180);
    let second: Redemption = api.post(&redeem_path, &alice, json!({})).await.unwrap();
    let approved: Redemption = api
        .post(
            &format!("/v1/redemptions/{}/approve", second.id),
            &admin,
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(approved.status, RedemptionStatus::Approved);
    let points: PointsSummary = api.get("/v1/me/points", &alice).await.unwrap();
    assert_eq!(points.balance, 80);
    let moves: Vec<(String, i64)> = points
        .entries
        .iter()
        .filter(|entry| entry.action.starts_with("redemption"))
        .map(|entry| (entry.action.clone(), entry.points))
        .collect();
    assert_eq!(
        moves,
        vec![
            ("redemption".into(), -100),
            ("redemption_refund".into(), 100),
            ("redemption".into(), -100)
        ]
    );
    let mine: Page<Redemption> = api.get("/v1/redemptions", &alice).await.unwrap();
    assert_eq!(mine.items.len(), 2);
    // Spending does not move the boards.
    let all_time = board(&harness, &alice, "period=all_time").await;
    assert_eq!(all_time.me.as_ref().map(|me| me.points), Some(180));

    // Redelivery of every event changes nothing (the unique ledger key and the inbox).
    let before = snapshot(&harness.config.database_url("gamification")).await;
    stop_gamification(shutdown, running).await;
    delete_consumers(&harness).await;
    let (shutdown, running) = start_gamification(&harness.config).await;
    wait_drained(&harness).await;
    let redelivered = snapshot(&harness.config.database_url("gamification")).await;
    assert_eq!(
        redelivered, before,
        "redelivered events changed the ledger or the boards"
    );
    stop_gamification(shutdown, running).await;

    // Replaying the whole history into a fresh database gives the same ledger and boards.
    let replay_dir = tempfile::tempdir().unwrap();
    let replay_url = format!(
        "sqlite://{}?mode=rwc",
        replay_dir.path().join("replay.db").display()
    );
    copy_configuration(&harness.config.database_url("gamification"), &replay_url).await;
    let mut replay_config = harness.config.clone();
    replay_config.gamification.database_url = Some(replay_url.clone());
    delete_consumers(&harness).await;
    let (shutdown, running) = start_gamification(&replay_config).await;
    wait_drained(&harness).await;
    let replayed = snapshot(&replay_url).await;
    // Redemptions are requests, not events: the replay has the earned entries only.
    let earned: Vec<String> = before
        .ledger
        .iter()
        .filter(|line| !line.contains("\"redemption"))
        .cloned()
        .collect();
    assert_eq!(replayed.ledger, earned);
    assert_eq!(replayed.scores, before.scores);
    assert_eq!(replayed.badges, before.badges);
    stop_gamification(shutdown, running).await;
    harness.stop().await;
}

async fn delete_consumers(harness: &Harness) {
    for (stream, durable) in chorus_gamification::DURABLES {
        let stream = harness.bus.jetstream.get_stream(stream).await.unwrap();
        let _ = stream.delete_consumer(durable).await;
    }
}

async fn wait_drained(harness: &Harness) {
    for (stream, durable) in chorus_gamification::DURABLES {
        let jetstream = harness.bus.jetstream.clone();
        eventually(Duration::from_secs(30), "redelivery drained", || {
            let jetstream = jetstream.clone();
            async move {
                let stream = jetstream.get_stream(stream).await.ok()?;
                let mut consumer: async_nats::jetstream::consumer::PullConsumer =
                    stream.get_consumer(durable).await.ok()?;
                let info = consumer.info().await.ok()?;
                (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
            }
        })
        .await;
    }
    // The last message may be acked just before its transaction's effects are visible.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    ledger: Vec<String>,
    scores: Vec<String>,
    badges: Vec<String>,
    balances: Vec<String>,
}

async fn lines(db: &sea_orm::DatabaseConnection, sql: &str, columns: &[&str]) -> Vec<String> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql.to_string()))
        .await
        .unwrap();
    let mut lines: Vec<String> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|spec| {
                    let (column, kind) = spec.split_once(':').expect("column:kind");
                    match kind {
                        "s" => format!("{:?}", row.try_get::<Option<String>>("", column).unwrap()),
                        "i" => row.try_get::<i64>("", column).unwrap().to_string(),
                        "b" => row.try_get::<bool>("", column).unwrap().to_string(),
                        "t" => row
                            .try_get::<DateTime<Utc>>("", column)
                            .unwrap()
                            .to_rfc3339(),
                        other => panic!("unknown kind {other}"),
                    }
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    lines.sort();
    lines
}

/// Ledger, boards (not contests: their results are frozen configuration), threshold
/// badges and balances, in a backend-independent form.
async fn snapshot(url: &str) -> Snapshot {
    let db = chorus_kit::db::connect(url).await.unwrap();
    let ledger_columns = [
        "tenant_id:s",
        "user_id:s",
        "action:s",
        "source_event_id:s",
        "points:i",
        "requested_points:i",
        "units:i",
        "share_id:s",
        "post_id:s",
        "rule_version:i",
        "day:s",
        "week:s",
        "awarded_at:t",
    ];
    let names: Vec<&str> = ledger_columns
        .iter()
        .map(|spec| spec.split(':').next().unwrap())
        .collect();
    let snapshot = Snapshot {
        ledger: lines(&db, &format!("SELECT {} FROM ledger", names.join(", ")), &ledger_columns).await,
        scores: lines(
            &db,
            "SELECT tenant_id, period, user_id, department, visible, points FROM scores WHERE period NOT LIKE 'contest:%'",
            &["tenant_id:s", "period:s", "user_id:s", "department:s", "visible:b", "points:i"],
        )
        .await,
        badges: lines(
            &db,
            "SELECT tenant_id, user_id, badge, title, earned_at FROM badges WHERE granted_by IS NULL",
            &["tenant_id:s", "user_id:s", "badge:s", "title:s", "earned_at:t"],
        )
        .await,
        balances: lines(&db, "SELECT tenant_id, user_id, balance FROM balances", &["tenant_id:s", "user_id:s", "balance:i"]).await,
    };
    db.close().await.ok();
    snapshot
}

/// Rule versions are configuration, not events: a replay starts from the same versions.
async fn copy_configuration(from: &str, to: &str) {
    let source = chorus_kit::db::connect(from).await.unwrap();
    let target = chorus_kit::db::connect_and_migrate::<chorus_gamification::Migrator>(to)
        .await
        .unwrap();
    let backend = source.get_database_backend();
    let rows = source
        .query_all_raw(Statement::from_string(backend, "SELECT tenant_id, version, effective_from, rules, created_by, created_at FROM rule_versions"))
        .await
        .unwrap();
    for row in rows {
        let values: Vec<sea_orm::Value> = vec![
            row.try_get::<String>("", "tenant_id").unwrap().into(),
            row.try_get::<i64>("", "version").unwrap().into(),
            row.try_get::<DateTime<Utc>>("", "effective_from")
                .unwrap()
                .into(),
            row.try_get::<String>("", "rules").unwrap().into(),
            row.try_get::<String>("", "created_by").unwrap().into(),
            row.try_get::<DateTime<Utc>>("", "created_at")
                .unwrap()
                .into(),
        ];
        target
            .execute_raw(Statement::from_sql_and_values(
                target.get_database_backend(),
                "INSERT INTO rule_versions (tenant_id, version, effective_from, rules, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                values,
            ))
            .await
            .unwrap();
    }
    source.close().await.ok();
    target.close().await.ok();
}
