//! Integrator webhooks end to end: a domain event reaches a local receiver as the exact
//! Standard Webhooks request (payload, headers, signature verified here independently),
//! failures are retried on the schedule, a failing endpoint is disabled and its admins
//! told, a failed message is replayed, secrets rotate without a gap, private destinations
//! are refused, and one tenant's events never reach another's endpoint.

use crate::harness::{Backend, Harness, eventually};
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chorus_api::notifications::{
    Inbox, WebhookDeliveries, WebhookDeliveryStatus, WebhookEndpoint, WebhookEndpointCreated,
    WebhookEndpointStatus, WebhookEventTypes, WebhookSecretRotated,
};
use chorus_kit::Role;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the receiver saw it.
#[derive(Clone)]
struct Received {
    headers: HeaderMap,
    body: String,
    at: Instant,
}

/// A local HTTP receiver answering with a status the test can change.
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    answer: Arc<Mutex<u16>>,
}

impl Receiver {
    async fn start(answer: u16) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let answer = Arc::new(Mutex::new(answer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/chorus", listener.local_addr().unwrap());
        let app = {
            let got = got.clone();
            let answer = answer.clone();
            axum::Router::new().route(
                "/hooks/chorus",
                axum::routing::post(move |headers: HeaderMap, body: String| {
                    let got = got.clone();
                    let answer = answer.clone();
                    async move {
                        got.lock().unwrap().push(Received {
                            headers,
                            body,
                            at: Instant::now(),
                        });
                        let status = *answer.lock().unwrap();
                        (
                            axum::http::StatusCode::from_u16(status).unwrap(),
                            "receiver says so",
                        )
                    }
                }),
            )
        };
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, got, answer }
    }

    fn requests(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn answer(&self, status: u16) {
        *self.answer.lock().unwrap() = status;
    }

    async fn wait_for(&self, count: usize, what: &str) -> Vec<Received> {
        eventually(Duration::from_secs(30), what, || async {
            let requests = self.requests();
            (requests.len() >= count).then_some(requests)
        })
        .await
    }
}

/// Verifies a request the way the Standard Webhooks libraries do: HMAC-SHA256 of
/// "{webhook-id}.{webhook-timestamp}.{body}" with the secret's key, base64, any of the
/// space-separated `v1,` signatures matching, and a timestamp within five minutes.
fn verifies(secret: &str, request: &Received) -> bool {
    let header = |name: &str| request.headers[name].to_str().unwrap().to_string();
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let timestamp: i64 = header("webhook-timestamp").parse().unwrap();
    if (chrono::Utc::now().timestamp() - timestamp).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", header("webhook-id"), timestamp, request.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    header("webhook-signature")
        .split(' ')
        .any(|signature| signature == expected)
}

async fn create_user(harness: &Harness, admin: &str, id: &str) {
    let _: Value = harness
        .api
        .post(
            "/v1/users",
            admin,
            json!({"id": id, "display_name": id, "email": format!("{id}@example.com"),
                   "roles": ["advocate"], "department": "sales"}),
        )
        .await
        .unwrap();
}

async fn integrator_webhooks_on(backend: Backend) {
    let harness = Harness::start_with(backend, &[], |config| {
        config.notifications.webhook_retry_schedule_ms = vec![300, 600];
        config.notifications.webhook_disable_after_secs = 0;
    })
    .await;
    let api = &harness.api;
    let admin = harness.tenant("acme", &["alice"]).await;
    let _: Value = api
        .post(
            "/v1/users",
            &admin,
            json!({"id": "zapier", "display_name": "CRM integration", "email": "crm@example.com",
                   "roles": ["integrator"]}),
        )
        .await
        .unwrap();
    let integrator = harness.token("acme", "zapier", &[Role::Integrator]);
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let good = Receiver::start(200).await;
    let failing = Receiver::start(500).await;

    // The catalogue integrators choose from.
    let types: WebhookEventTypes = api
        .get("/v1/webhooks/event-types", &integrator)
        .await
        .unwrap();
    assert!(types.items.contains(&"user.created.v1".to_string()));
    assert!(types.items.contains(&"share.published.v1".to_string()));

    // Advocates do not manage webhooks; integrators cannot open private destinations.
    let endpoint = |url: &str, types: &[&str]| json!({"url": url, "event_types": types, "description": "CRM sync"});
    let refused = api
        .post::<Value>("/v1/webhooks/endpoints", &alice, endpoint(&good.url, &[]))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 403);
    let refused = api
        .send::<Value>(
            reqwest::Method::PUT,
            "/v1/webhooks/settings",
            &integrator,
            Some(json!({"allow_private_destinations": true})),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 403);

    // SSRF: private, loopback and link-local destinations are refused by default, and so is
    // plain http; nothing is created.
    for (url, says) in [
        (good.url.as_str(), "https"),
        ("https://127.0.0.1:9/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "private"),
        ("https://10.0.0.7/hook", "private"),
        ("https://[::1]/hook", "private"),
        ("https://[::ffff:192.168.0.1]/hook", "private"),
        ("https://localhost/hook", "private"),
        ("https://user:secret@hooks.example.com/", "credentials"),
        ("gopher://hooks.example.com/", "scheme"),
    ] {
        let refused = api
            .post::<Value>(
                "/v1/webhooks/endpoints",
                &integrator,
                endpoint(url, &["user.created.v1"]),
            )
            .await
            .unwrap_err();
        assert_eq!(refused.status, 422, "{url}: {}", refused.body);
        let detail = refused.body["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(detail.contains(says), "{url}: {detail}");
    }
    let refused = api
        .post::<Value>(
            "/v1/webhooks/endpoints",
            &integrator,
            json!({"url": "https://hooks.example.com/", "event_types": ["user.invented.v9"]}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 422);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("user.invented.v9")
    );
    let listed: Value = api
        .get("/v1/webhooks/endpoints", &integrator)
        .await
        .unwrap();
    assert_eq!(listed["items"], json!([]));

    // An admin allows private destinations (the receivers listen on 127.0.0.1).
    let settings: Value = api
        .send(
            reqwest::Method::PUT,
            "/v1/webhooks/settings",
            &admin,
            Some(json!({"allow_private_destinations": true})),
        )
        .await
        .unwrap();
    assert_eq!(settings["allow_private_destinations"], true);
    let good_endpoint: WebhookEndpointCreated = api
        .post(
            "/v1/webhooks/endpoints",
            &integrator,
            endpoint(&good.url, &["user.created.v1"]),
        )
        .await
        .unwrap();
    assert!(good_endpoint.secret.starts_with("whsec_"));
    assert_eq!(
        good_endpoint.endpoint.status,
        WebhookEndpointStatus::Enabled
    );
    let failing_endpoint: WebhookEndpointCreated = api
        .post(
            "/v1/webhooks/endpoints",
            &integrator,
            endpoint(&failing.url, &["user.created.v1"]),
        )
        .await
        .unwrap();
    // The secret is shown once: the list does not carry it.
    let listed: Value = api
        .get("/v1/webhooks/endpoints", &integrator)
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains(&good_endpoint.secret));

    // Another tenant with its own endpoint.
    let globex_admin = harness.tenant("globex", &[]).await;
    let globex_receiver = Receiver::start(200).await;
    let _: Value = api
        .send(
            reqwest::Method::PUT,
            "/v1/webhooks/settings",
            &globex_admin,
            Some(json!({"allow_private_destinations": true})),
        )
        .await
        .unwrap();
    let globex_endpoint: WebhookEndpointCreated = api
        .post(
            "/v1/webhooks/endpoints",
            &globex_admin,
            endpoint(&globex_receiver.url, &[]),
        )
        .await
        .unwrap();
    // acme's integrator cannot see globex's endpoint.
    let hidden = api
        .get::<WebhookEndpoint>(
            &format!("/v1/webhooks/endpoints/{}", globex_endpoint.endpoint.id),
            &integrator,
        )
        .await
        .unwrap_err();
    assert_eq!(hidden.status, 404);

    // The trigger: an admin adds a person, identity announces user.created.v1.
    create_user(&harness, &admin, "dave").await;

    // The good endpoint receives exactly the event, signed.
    let requests = good
        .wait_for(1, "the good endpoint receives user.created")
        .await;
    let request = &requests[0];
    assert_eq!(request.headers["content-type"], "application/json");
    assert!(
        request.headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("Chorus-Webhooks/")
    );
    assert!(
        verifies(&good_endpoint.secret, request),
        "signature verifies"
    );
    assert!(
        !verifies(&failing_endpoint.secret, request),
        "another secret does not verify"
    );
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["type"], "user.created.v1");
    assert!(chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());
    assert_eq!(body["data"]["tenant_id"], "acme");
    assert_eq!(body["data"]["user_id"], "dave");
    assert_eq!(body["data"]["roles"], json!(["advocate"]));
    assert_eq!(body["data"]["department"], "sales");
    let message_id = request.headers["webhook-id"].to_str().unwrap().to_string();

    // The failing endpoint: the first attempt and two retries, same message, each signed,
    // spaced by the schedule (300 ms and 600 ms, ±20%).
    let attempts = failing
        .wait_for(3, "the failing endpoint sees three attempts")
        .await;
    for attempt in &attempts {
        assert_eq!(attempt.headers["webhook-id"].to_str().unwrap(), message_id);
        assert!(verifies(&failing_endpoint.secret, attempt));
        assert_eq!(
            attempt.body, request.body,
            "every attempt sends the same bytes"
        );
    }
    assert!(attempts[1].at - attempts[0].at >= Duration::from_millis(240));
    assert!(attempts[2].at - attempts[1].at >= Duration::from_millis(480));

    // Retries exhausted with the endpoint failing all along (disable_after = 0 here):
    // disabled, with the reason, and the tenant's admin is told in the inbox.
    let path = format!("/v1/webhooks/endpoints/{}", failing_endpoint.endpoint.id);
    let disabled: WebhookEndpoint = eventually(
        Duration::from_secs(30),
        "the failing endpoint is disabled",
        || async {
            let endpoint: WebhookEndpoint = api.get(&path, &integrator).await.unwrap();
            (endpoint.status == WebhookEndpointStatus::Disabled).then_some(endpoint)
        },
    )
    .await;
    assert!(disabled.disabled_reason.unwrap().contains("HTTP 500"));
    let deliveries: WebhookDeliveries = api
        .get(&format!("{path}/deliveries"), &integrator)
        .await
        .unwrap();
    let failed = deliveries
        .items
        .iter()
        .find(|delivery| delivery.message_id == message_id)
        .unwrap();
    assert_eq!(failed.status, WebhookDeliveryStatus::Failed);
    assert_eq!(failed.attempts, 3);
    assert_eq!(failed.last_status_code, Some(500));
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap()
            .contains("receiver says so")
    );
    let told: Inbox = eventually(Duration::from_secs(30), "the admin is told", || async {
        let inbox: Inbox = api.get("/v1/me/notifications", &admin).await.unwrap();
        inbox
            .items
            .iter()
            .any(|item| item.kind == "webhook_endpoint_disabled")
            .then_some(inbox)
    })
    .await;
    let notice = told
        .items
        .iter()
        .find(|item| item.kind == "webhook_endpoint_disabled")
        .unwrap();
    assert!(notice.body.contains(&failing.url));
    // Advocates are not told about integrations.
    let inbox: Inbox = api.get("/v1/me/notifications", &alice).await.unwrap();
    assert!(
        inbox
            .items
            .iter()
            .all(|item| item.kind != "webhook_endpoint_disabled")
    );
    assert_eq!(
        failing.requests().len(),
        3,
        "a disabled endpoint is not called again"
    );

    // Replay: refused while disabled, then the receiver is fixed, the endpoint enabled and
    // the message sent again with the same webhook-id.
    let replay = format!("{path}/deliveries/{message_id}/replay");
    let refused = api
        .post::<Value>(&replay, &integrator, json!({}))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 409);
    failing.answer(204);
    let enabled: WebhookEndpoint = api
        .post(&format!("{path}/enable"), &integrator, json!({}))
        .await
        .unwrap();
    assert_eq!(enabled.status, WebhookEndpointStatus::Enabled);
    let _: Value = api.post(&replay, &integrator, json!({})).await.unwrap();
    let again = failing.wait_for(4, "the replayed message arrives").await;
    assert_eq!(again[3].headers["webhook-id"].to_str().unwrap(), message_id);
    assert!(verifies(&failing_endpoint.secret, &again[3]));
    eventually(
        Duration::from_secs(30),
        "the replay is recorded",
        || async {
            let deliveries: WebhookDeliveries = api
                .get(&format!("{path}/deliveries"), &integrator)
                .await
                .unwrap();
            deliveries
                .items
                .iter()
                .any(|delivery| {
                    delivery.message_id == message_id
                        && delivery.status == WebhookDeliveryStatus::Succeeded
                })
                .then_some(())
        },
    )
    .await;

    // Rotation: for a day, messages carry both signatures, so the receiver can switch.
    let rotated: WebhookSecretRotated = api
        .post(
            &format!(
                "/v1/webhooks/endpoints/{}/rotate-secret",
                good_endpoint.endpoint.id
            ),
            &integrator,
            json!({}),
        )
        .await
        .unwrap();
    assert_ne!(rotated.secret, good_endpoint.secret);
    create_user(&harness, &admin, "erin").await;
    let requests = good
        .wait_for(2, "the good endpoint receives the second event")
        .await;
    let second = &requests[1];
    assert!(verifies(&rotated.secret, second), "the new secret verifies");
    assert!(
        verifies(&good_endpoint.secret, second),
        "the old secret still verifies"
    );
    assert_eq!(
        second.headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    let body: Value = serde_json::from_str(&second.body).unwrap();
    assert_eq!(body["data"]["user_id"], "erin");

    // Tenant isolation: globex's endpoint (subscribed to everything) got only globex events.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for request in globex_receiver.requests() {
        let body: Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(body["data"]["tenant_id"], "globex", "{}", request.body);
        assert!(verifies(&globex_endpoint.secret, &request));
    }
    // Each event once per endpoint: the good endpoint got dave and erin, nothing else.
    assert_eq!(good.requests().len(), 2);

    // Unsubscribe.
    let deleted = api
        .http
        .delete(format!(
            "{}/v1/webhooks/endpoints/{}",
            api.base_url, good_endpoint.endpoint.id
        ))
        .bearer_auth(&integrator)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    create_user(&harness, &admin, "frank").await;
    failing
        .wait_for(5, "the remaining endpoint receives frank")
        .await;
    assert_eq!(
        good.requests().len(),
        2,
        "a deleted endpoint receives nothing"
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn integrator_webhooks_are_signed_retried_disabled_and_replayed() {
    integrator_webhooks_on(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn integrator_webhooks_on_postgres() {
    integrator_webhooks_on(Backend::Postgres).await;
}
