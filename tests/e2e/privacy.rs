//! GDPR: a person's data from every service as one archive, for them or an administrator;
//! erasure (`user.erased`) honoured by every service, shares still counted.

use crate::harness::{Backend, Harness, eventually};
use chorus_api::scheduling::{Share, ShareStatus};
use chorus_bus::rpc::PersonalDataRequest;
use chorus_kit::{Caller, Role};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const SERVICES: [&str; 7] = [
    "identity",
    "content",
    "scheduling",
    "publishing",
    "engagement",
    "gamification",
    "notifications",
];

/// The files of a ZIP archive of stored entries, checked as a reader would.
fn unzip(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let mut files = BTreeMap::new();
    let mut at = 0;
    while u32_at(at) == 0x0403_4b50 {
        assert_eq!(u16_at(at + 8), 0, "stored entries");
        let size = u32_at(at + 18);
        let name_len = u16_at(at + 26);
        let extra_len = u16_at(at + 28);
        let name = String::from_utf8(bytes[at + 30..at + 30 + name_len].to_vec()).unwrap();
        let start = at + 30 + name_len + extra_len;
        files.insert(name, bytes[start..start + size].to_vec());
        at = start + size;
    }
    assert_eq!(
        u32_at(at),
        0x0201_4b50,
        "the central directory follows the files"
    );
    let end = bytes.len() - 22;
    assert_eq!(u32_at(end), 0x0605_4b50);
    assert_eq!(
        u16_at(end + 10),
        files.len(),
        "the end record counts every file"
    );
    files
}

async fn download(
    harness: &Harness,
    path: &str,
    token: &str,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = harness
        .api
        .http
        .get(format!("{}{path}", harness.api.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn keys(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                out.push(key.clone());
                keys(value, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| keys(item, out)),
        _ => {}
    }
}

fn rows(part: &Value) -> usize {
    part.as_object()
        .unwrap()
        .values()
        .map(|rows| rows.as_array().unwrap().len())
        .sum()
}

async fn export_and_erasure(backend: Backend) {
    let harness = Harness::start(backend, &[]).await;
    let admin = harness.tenant("acme", &["alice", "bob"]).await;
    let post = harness.published_post(&admin, "Our new office").await;
    let api = &harness.api;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let bob = harness.token("acme", "bob", &[Role::Advocate]);
    let account = api.connect_linkedin(&alice, "alice-li").await.unwrap();
    let share: Share = api
        .post(
            "/v1/shares",
            &alice,
            json!({"post_id": post.id, "account_id": account.id, "caption": "My own words about the office"}),
        )
        .await
        .unwrap();
    let done = api
        .wait_final(&alice, &share.id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(done.status, ShareStatus::Published, "{done:?}");

    // Her archive: one JSON file per service, with what each holds about her.
    let files = eventually(
        Duration::from_secs(20),
        "points and notifications are in the export",
        || async {
            let (status, headers, bytes) = download(&harness, "/v1/me/personal-data", &alice).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
            assert_eq!(headers["content-type"], "application/zip");
            assert!(
                headers["content-disposition"]
                    .to_str()
                    .unwrap()
                    .starts_with("attachment; filename=\"chorus-personal-data-alice-")
            );
            let files = unzip(&bytes);
            let part = |name: &str| {
                serde_json::from_slice::<Value>(&files[&format!("{name}.json")]).unwrap()
            };
            let ready = !part("gamification")["ledger"]
                .as_array()
                .unwrap()
                .is_empty()
                && !part("notifications")["notifications"]
                    .as_array()
                    .unwrap()
                    .is_empty();
            ready.then_some(files)
        },
    )
    .await;
    let mut names: Vec<&str> = files.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "README.txt",
            "content.json",
            "engagement.json",
            "gamification.json",
            "identity.json",
            "notifications.json",
            "publishing.json",
            "scheduling.json"
        ]
    );
    let part =
        |name: &str| serde_json::from_slice::<Value>(&files[&format!("{name}.json")]).unwrap();
    assert_eq!(part("identity")["users"][0]["email"], "alice@example.com");
    assert_eq!(
        part("scheduling")["shares"][0]["caption"],
        "My own words about the office"
    );
    assert_eq!(part("publishing")["accounts"][0]["network"], "linkedin");
    assert_eq!(part("content")["post_shares"].as_array().unwrap().len(), 1);
    assert!(
        !part("engagement")["tracked_shares"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let mut all_keys = Vec::new();
    for service in SERVICES {
        keys(&part(service), &mut all_keys);
    }
    for secret in [
        "access_token",
        "refresh_token",
        "hash",
        "token",
        "code_verifier",
        "secret",
    ] {
        assert!(
            !all_keys.iter().any(|key| key == secret),
            "{secret} is never exported"
        );
    }

    // Administrators export anyone of their tenant; nobody else does.
    let (status, _, _) = download(&harness, "/v1/users/alice/personal-data", &admin).await;
    assert_eq!(status, 200);
    let (status, _, body) = download(&harness, "/v1/users/alice/personal-data", &bob).await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    let globex = harness.tenant("globex", &[]).await;
    let (status, _, _) = download(&harness, "/v1/users/alice/personal-data", &globex).await;
    assert_eq!(status, 404);
    let (status, _, _) = download(&harness, "/v1/users/nobody/personal-data", &admin).await;
    assert_eq!(status, 404);

    // Erasure: refused for oneself and to others than administrators, then done everywhere.
    let refused = api
        .send::<Value>(reqwest::Method::DELETE, "/v1/users/carol", &admin, None)
        .await
        .unwrap_err();
    assert_eq!(refused.status, 409);
    let refused = api
        .send::<Value>(reqwest::Method::DELETE, "/v1/users/alice", &bob, None)
        .await
        .unwrap_err();
    assert_eq!(refused.status, 403);
    let _: Value = api
        .send(reqwest::Method::DELETE, "/v1/users/alice", &admin, None)
        .await
        .unwrap();
    let administrator = Caller {
        tenant_id: "acme".to_string(),
        user_id: "carol".to_string(),
        roles: vec![Role::Admin],
    };
    for service in SERVICES {
        eventually(
            Duration::from_secs(20),
            &format!("{service} erased alice"),
            || async {
                let left: Value = chorus_bus::rpc::call(
                    &harness.bus.client,
                    &chorus_bus::rpc::subject(service, "personal_data"),
                    &administrator,
                    &PersonalDataRequest {
                        user_id: "alice".to_string(),
                    },
                    Duration::from_secs(5),
                )
                .await
                .unwrap();
                (rows(&left) == 0).then_some(())
            },
        )
        .await;
    }
    let (status, _, _) = download(&harness, "/v1/users/alice/personal-data", &admin).await;
    assert_eq!(status, 404);
    let refused = api.get::<Value>("/v1/me", &alice).await.unwrap_err();
    assert_eq!(refused.status, 401, "{refused}");
    // Her share still counts in the program's figures, without her name.
    let summary: Value = api.get("/v1/analytics/summary", &admin).await.unwrap();
    assert_eq!(summary["figures"]["shares"], 1, "{summary}");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn personal_data_export_and_erasure_on_sqlite() {
    export_and_erasure(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn personal_data_export_and_erasure_on_postgres() {
    export_and_erasure(Backend::Postgres).await;
}
