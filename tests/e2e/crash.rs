//! The publisher process is killed after the network accepted the post but before it
//! recorded the result; restarted, it reconciles and the post still exists exactly once.

use crate::harness::{Backend, Harness, eventually, nats_server_bin};
use chorus_api::scheduling::{Share, ShareStatus};
use chorus_kit::Role;
use serde_json::json;
use std::time::Duration;

fn publisher_process(harness: &Harness) -> tokio::process::Child {
    let config = &harness.config;
    tokio::process::Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["run", "--target", "publishing"])
        .env("CHORUS_NATS_URL", config.nats_url.clone().unwrap())
        .env("CHORUS_NATS_SERVER_BIN", nats_server_bin())
        .env("CHORUS_DATA_DIR", &config.data_dir)
        .env("CHORUS_NETSIM__LISTEN", &config.netsim.listen)
        .env("CHORUS_PUBLIC_URL", &config.public_url)
        .env("CHORUS_ADMIN_LISTEN", "127.0.0.1:0")
        .env("CHORUS_LOG", "warn")
        .env("CHORUS_PUBLISHING__LINKEDIN__REQUEST_TIMEOUT_MS", "120000")
        .kill_on_drop(true)
        .spawn()
        .expect("chorus binary starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publisher_killed_after_network_accepted_posts_once() {
    let harness = Harness::start(Backend::Sqlite, &["publishing"]).await;
    let mut publisher = publisher_process(&harness);
    let api = &harness.api;
    let curator = harness.tenant("crashco", &["bob"]).await;
    let post = harness.published_post(&curator, "Quarterly results").await;
    let bob = harness.token("crashco", "bob", &[Role::Advocate]);
    let account = eventually(
        Duration::from_secs(20),
        "publisher process answering",
        || async { api.connect_linkedin(&bob, "bob-li").await.ok() },
    )
    .await;

    // The network will accept the next post, then hold its answer for a minute.
    harness
        .netsim
        .inject(chorus_netsim::Fault::HoldAfterAccept {
            hold_ms: 60_000,
            count: 1,
        });
    let share: Share = api
        .post("/v1/shares", &bob, json!({"post_id": post.id, "account_id": account.id, "caption": "Great quarter for us"}))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(20),
        "the network accepted the post",
        || async { (harness.netsim.posts().len() == 1).then_some(()) },
    )
    .await;
    publisher.kill().await.unwrap();
    let during_crash: Share = api
        .get(&format!("/v1/shares/{}", share.id), &bob)
        .await
        .unwrap();
    assert_eq!(
        during_crash.status,
        ShareStatus::Due,
        "the outcome is not known yet"
    );

    let mut restarted = publisher_process(&harness);
    let done = api
        .wait_final(&bob, &share.id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.status, ShareStatus::Published, "{done:?}");
    let posts = harness.netsim.posts();
    assert_eq!(posts.len(), 1, "posted exactly once: {posts:?}");
    assert_eq!(done.external_id.as_deref(), Some(posts[0].urn.as_str()));
    restarted.kill().await.unwrap();
    harness.stop().await;
}
