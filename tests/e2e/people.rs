//! People: managers, changes by an administrator (followed by every service), and where each
//! person stands in getting started.

use crate::harness::{Backend, Harness, eventually};
use chorus_kit::Role;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn administrators_change_people_and_people_get_started() {
    let harness = Harness::start(Backend::Sqlite, &[]).await;
    let api = &harness.api;
    let admin = harness.tenant("acme", &["alice", "bob"]).await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let _: Value = api
        .post(
            "/v1/users",
            &admin,
            json!({"id": "dan", "display_name": "Dan", "email": "dan@acme.example",
            "roles": ["advocate"], "manager_id": "carol"}),
        )
        .await
        .unwrap();
    let refused = api
        .post::<Value>(
            "/v1/users",
            &admin,
            json!({"id": "eve", "display_name": "Eve", "email": "eve@acme.example",
            "roles": ["advocate"], "manager_id": "nobody"}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 422);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("manager_id"),
        "{}",
        refused.body
    );

    // An administrator moves alice to marketing under carol (the services follow `user.updated`).
    let patch = |user: &str, body: Value| {
        let path = format!("/v1/users/{user}");
        let admin = admin.clone();
        async move {
            api.send::<Value>(reqwest::Method::PATCH, &path, &admin, Some(body))
                .await
        }
    };
    let alice_now = patch(
        "alice",
        json!({"department": "Marketing", "manager_id": "carol", "time_zone": "Europe/Paris"}),
    )
    .await
    .unwrap();
    assert_eq!(alice_now["department"], "Marketing");
    assert_eq!(alice_now["manager_id"], "carol");
    assert_eq!(alice_now["display_name"], "alice", "absent fields stay");
    let me: Value = api.get("/v1/me", &alice).await.unwrap();
    assert_eq!(me["time_zone"], "Europe/Paris");
    for (body, says) in [
        (json!({"manager_id": "alice"}), "own manager"),
        (json!({"time_zone": "Mars/Olympus"}), "time_zone"),
        (json!({"roles": []}), "roles"),
        (json!({"manager_id": "nobody"}), "manager_id"),
    ] {
        let refused = patch("alice", body).await.unwrap_err();
        assert_eq!(refused.status, 422, "{refused:?}");
        assert!(
            refused.body["detail"].as_str().unwrap().contains(says),
            "{}",
            refused.body
        );
    }
    let refused = patch("carol", json!({"active": false})).await.unwrap_err();
    assert_eq!(refused.status, 409, "no administrator locks themselves out");
    let refused = api
        .send::<Value>(
            reqwest::Method::PATCH,
            "/v1/users/bob",
            &alice,
            Some(json!({"department": "x"})),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 403);
    // Deactivated by an administrator: refused on the next request.
    let bob = harness.token("acme", "bob", &[Role::Advocate]);
    let _: Value = api.get("/v1/me", &bob).await.unwrap();
    patch("bob", json!({"active": false})).await.unwrap();
    eventually(Duration::from_secs(10), "bob is refused", || async {
        api.get::<Value>("/v1/me", &bob)
            .await
            .err()
            .filter(|e| e.status == 403)
    })
    .await;

    // Getting started: guidelines, an account, topics.
    let onboarding: Value = api.get("/v1/me/onboarding", &alice).await.unwrap();
    assert_eq!(
        onboarding,
        json!({"guidelines_accepted_at": null, "accounts_connected": 0, "topics_chosen": 0, "complete": false})
    );
    let accepted: Value = api
        .post("/v1/me/guidelines/accept", &alice, json!({}))
        .await
        .unwrap();
    let first = accepted["guidelines_accepted_at"].clone();
    assert!(first.is_string());
    let again: Value = api
        .post("/v1/me/guidelines/accept", &alice, json!({}))
        .await
        .unwrap();
    assert_eq!(
        again["guidelines_accepted_at"], first,
        "the first acceptance is kept"
    );
    api.connect_linkedin(&alice, "alice-li").await.unwrap();
    let _: Value = api
        .send(reqwest::Method::PUT, "/v1/me/topics/jobs", &alice, None)
        .await
        .unwrap();
    let onboarding: Value = api.get("/v1/me/onboarding", &alice).await.unwrap();
    assert_eq!(onboarding["accounts_connected"], 1);
    assert_eq!(onboarding["topics_chosen"], 1);
    assert_eq!(onboarding["complete"], true);

    // Erasing a manager leaves those they managed without one.
    let _: Value = api
        .send(reqwest::Method::DELETE, "/v1/users/dan", &admin, None)
        .await
        .unwrap();
    let _: Value = patch("alice", json!({"manager_id": ""})).await.unwrap();
    let me: Value = api.get("/v1/me", &alice).await.unwrap();
    assert!(me["manager_id"].is_null());
    harness.stop().await;
}
