//! netsim over real HTTP: each test serves it on 127.0.0.1:0 and talks to it with reqwest.

use crate::{Fault, Netsim, NetsimOptions};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const CLIENT_ID: &str = "chorus-test";
const CLIENT_SECRET: &str = "test-secret";
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
const VERSION: &str = "202603";

struct Harness {
    netsim: Netsim,
    base_url: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start(options: NetsimOptions) -> Harness {
    let netsim = Netsim::new(options);
    let shutdown = CancellationToken::new();
    let address = netsim
        .serve("127.0.0.1:0", shutdown.clone())
        .await
        .expect("netsim binds");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Harness {
        netsim,
        base_url: format!("http://{address}"),
        http,
        shutdown,
    }
}

fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn minimal_body(member_id: &str, commentary: &str) -> Value {
    json!({
        "author": format!("urn:li:person:{member_id}"),
        "commentary": commentary,
        "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": false,
    })
}

impl Harness {
    /// Runs the authorize page and returns the code from the redirect.
    async fn authorize(&self, member_id: &str, code_challenge: &str) -> String {
        let response = self
            .http
            .get(format!("{}/oauth/v2/authorization", self.base_url))
            .query(&[
                ("response_type", "code"),
                ("client_id", CLIENT_ID),
                ("redirect_uri", REDIRECT_URI),
                ("state", "state-123"),
                ("scope", "openid profile w_member_social"),
                ("code_challenge", code_challenge),
                ("code_challenge_method", "S256"),
                ("member", member_id),
            ])
            .send()
            .await
            .expect("authorize answers");
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = response.headers()["location"]
            .to_str()
            .expect("ascii location");
        let location = url::Url::parse(location).expect("absolute location");
        assert!(location.as_str().starts_with(REDIRECT_URI));
        let pairs: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
        assert_eq!(pairs.get("state").map(String::as_str), Some("state-123"));
        pairs["code"].clone()
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/oauth/v2/accessToken", self.base_url))
            .form(form)
            .send()
            .await
            .expect("token endpoint answers");
        let status = response.status();
        (status, response.json().await.expect("json body"))
    }

    async fn exchange(&self, code: &str, verifier: &str) -> (StatusCode, Value) {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// A member with a valid access token.
    async fn connect(&self, member_id: &str) -> String {
        let verifier = format!("verifier-of-{member_id}-long-enough-for-pkce-0123456789");
        let code = self.authorize(member_id, &challenge_of(&verifier)).await;
        let (status, tokens) = self.exchange(&code, &verifier).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        tokens["access_token"]
            .as_str()
            .expect("access token")
            .to_string()
    }

    async fn post_with_version(
        &self,
        token: &str,
        version: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.http
            .post(format!("{}/rest/posts", self.base_url))
            .bearer_auth(token)
            .header("LinkedIn-Version", version)
            .header("X-Restli-Protocol-Version", "2.0.0")
            .json(body)
            .send()
            .await
            .expect("posts answers")
    }

    async fn post(&self, token: &str, member_id: &str, commentary: &str) -> reqwest::Response {
        self.post_with_version(token, VERSION, &minimal_body(member_id, commentary))
            .await
    }
}

fn restli_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-restli-id")
        .expect("x-restli-id header")
        .to_str()
        .expect("ascii")
        .to_string()
}

#[tokio::test]
async fn oauth_flow_with_pkce_issues_tokens_that_identify_the_member() {
    let harness = start(NetsimOptions::default()).await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    let spoiled_code = harness.authorize("alice", &challenge_of(verifier)).await;
    let (status, refusal) = harness.exchange(&spoiled_code, "not-the-verifier").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refusal["error"], "invalid_grant");

    let code = harness.authorize("alice", &challenge_of(verifier)).await;
    let (status, tokens) = harness.exchange(&code, verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["scope"], "openid profile w_member_social");
    assert_eq!(tokens["expires_in"], 60 * 86_400);
    let refresh_expires_in = tokens["refresh_token_expires_in"]
        .as_i64()
        .expect("refresh lifetime");
    assert!(refresh_expires_in > 364 * 86_400 && refresh_expires_in <= 365 * 86_400);

    let (status, reuse) = harness.exchange(&code, verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "codes are single-use");
    assert_eq!(reuse["error"], "invalid_grant");

    let access_token = tokens["access_token"].as_str().expect("access token");
    let userinfo: Value = harness
        .http
        .get(format!("{}/v2/userinfo", harness.base_url))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo answers")
        .json()
        .await
        .expect("json");
    assert_eq!(userinfo["sub"], "alice");
    assert_eq!(userinfo["name"], "Member alice");

    let refresh_token = tokens["refresh_token"].as_str().expect("refresh token");
    let (status, refreshed) = harness
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_ne!(refreshed["access_token"], tokens["access_token"]);
    assert!(
        refreshed["refresh_token_expires_in"]
            .as_i64()
            .expect("lifetime")
            <= refresh_expires_in
    );

    let unknown = harness
        .http
        .get(format!("{}/v2/userinfo", harness.base_url))
        .bearer_auth("not-a-token")
        .send()
        .await
        .expect("userinfo answers");
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let body: Value = unknown.json().await.expect("json");
    assert_eq!(body["code"], "INVALID_ACCESS_TOKEN");
}

#[tokio::test]
async fn authorize_without_client_id_is_a_400() {
    let harness = start(NetsimOptions::default()).await;
    let response = harness
        .http
        .get(format!("{}/oauth/v2/authorization", harness.base_url))
        .query(&[("response_type", "code"), ("redirect_uri", REDIRECT_URI)])
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn a_post_is_created_with_201_and_x_restli_id() {
    let harness = start(NetsimOptions::default()).await;
    let token = harness.connect("bob").await;

    let response = harness
        .post(&token, "bob", "Hello from Chorus https://chr.us/a1")
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let urn = restli_id(&response);
    assert!(urn.starts_with("urn:li:share:"), "{urn}");
    assert!(response.bytes().await.expect("body").is_empty());

    let posts = harness.netsim.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].urn, urn);
    assert_eq!(posts[0].author, "urn:li:person:bob");

    let encoded_urn = urn.replace(':', "%3A");
    let read: Value = harness
        .http
        .get(format!("{}/rest/posts/{encoded_urn}", harness.base_url))
        .bearer_auth(&token)
        .header("LinkedIn-Version", VERSION)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(read["id"], urn.as_str());
    assert_eq!(read["commentary"], "Hello from Chorus https://chr.us/a1");

    let second = harness.post(&token, "bob", "Another text").await;
    assert_eq!(second.status(), StatusCode::CREATED);
    let first_number: u64 = urn
        .trim_start_matches("urn:li:share:")
        .parse()
        .expect("number");
    let second_number: u64 = restli_id(&second)
        .trim_start_matches("urn:li:share:")
        .parse()
        .expect("number");
    assert!(second_number > first_number);

    assert!(harness.netsim.add_reactions(&urn, 5, 2));
    let actions: Value = harness
        .http
        .get(format!(
            "{}/rest/socialActions/{encoded_urn}",
            harness.base_url
        ))
        .bearer_auth(&token)
        .header("LinkedIn-Version", VERSION)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(actions["likesSummary"]["totalLikes"], 5);
    assert_eq!(actions["commentsSummary"]["aggregatedTotalComments"], 2);
}

#[tokio::test]
async fn a_post_as_someone_else_is_forbidden() {
    let harness = start(NetsimOptions::default()).await;
    let token = harness.connect("carol").await;
    let response = harness.post(&token, "dave", "Not mine").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "ACCESS_DENIED");
    assert!(harness.netsim.posts().is_empty());
}

#[tokio::test]
async fn an_identical_post_is_a_422_naming_the_existing_urn() {
    let harness = start(NetsimOptions::default()).await;
    let token = harness.connect("erin").await;
    let first = harness.post(&token, "erin", "Same words").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let urn = restli_id(&first);

    let again = harness.post(&token, "erin", "Same words").await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = again.json().await.expect("json");
    assert_eq!(body["message"], format!("Content is a duplicate of {urn}"));
    assert_eq!(
        body["errorDetails"]["inputErrors"][0]["code"],
        "DUPLICATE_POST"
    );
    assert_eq!(body["status"], 422);
    assert_eq!(harness.netsim.posts().len(), 1);
}

#[tokio::test]
async fn a_retired_version_is_a_426_and_a_missing_one_a_400() {
    let harness = start(NetsimOptions::default()).await;
    let token = harness.connect("frank").await;
    let body = minimal_body("frank", "Versioned");

    let retired = harness.post_with_version(&token, "202401", &body).await;
    assert_eq!(retired.status(), StatusCode::UPGRADE_REQUIRED);
    let refusal: Value = retired.json().await.expect("json");
    assert_eq!(refusal["code"], "NONEXISTENT_VERSION");
    assert_eq!(refusal["message"], "Requested version 202401 is not active");

    let missing = harness
        .http
        .post(format!("{}/rest/posts", harness.base_url))
        .bearer_auth(&token)
        .header("X-Restli-Protocol-Version", "2.0.0")
        .json(&body)
        .send()
        .await
        .expect("answers");
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert!(harness.netsim.posts().is_empty());
}

#[tokio::test]
async fn past_the_daily_limit_posts_are_a_bare_429() {
    let harness = start(NetsimOptions {
        member_daily_posts: 2,
        ..NetsimOptions::default()
    })
    .await;
    let token = harness.connect("grace").await;
    for text in ["one", "two"] {
        assert_eq!(
            harness.post(&token, "grace", text).await.status(),
            StatusCode::CREATED
        );
    }
    let throttled = harness.post(&token, "grace", "three").await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers().get("retry-after").is_none());
    let body: Value = throttled.json().await.expect("json");
    assert_eq!(body["status"], 429);
    assert_eq!(harness.netsim.posts().len(), 2);

    let other_token = harness.connect("heidi").await;
    assert_eq!(
        harness.post(&other_token, "heidi", "one").await.status(),
        StatusCode::CREATED
    );

    // The refusal is counted, the test controls are not.
    let stats: crate::Stats = harness
        .http
        .get(format!("{}/_netsim/stats", harness.base_url))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    let linkedin = stats.of("linkedin");
    assert_eq!(linkedin.rate_limited, 1);
    assert!(linkedin.requests >= 4, "{stats:?}");
    assert_eq!(stats.of("x"), crate::NetworkStats::default());
    assert!(!stats.networks.contains_key("_netsim"));
    assert_eq!(harness.netsim.stats(), stats);
}

#[tokio::test]
async fn an_expired_token_is_a_401_expired_access_token() {
    let harness = start(NetsimOptions::default()).await;
    let token = harness.connect("ivan").await;
    harness.netsim.expire_tokens_of("ivan");
    let response = harness.post(&token, "ivan", "Too late").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "EXPIRED_ACCESS_TOKEN");
}

#[tokio::test]
async fn hold_after_accept_creates_the_post_before_the_reply() {
    let harness = start(NetsimOptions::default()).await;
    let token = harness.connect("judy").await;
    harness.netsim.inject(Fault::HoldAfterAccept {
        hold_ms: 5_000,
        count: 1,
    });

    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let attempt = impatient
        .post(format!("{}/rest/posts", harness.base_url))
        .bearer_auth(&token)
        .header("LinkedIn-Version", VERSION)
        .header("X-Restli-Protocol-Version", "2.0.0")
        .json(&minimal_body("judy", "Lost reply"))
        .send()
        .await;
    let error = attempt.expect_err("the reply is held past the client's timeout");
    assert!(error.is_timeout(), "{error}");

    let posts = harness.netsim.posts();
    assert_eq!(
        posts.len(),
        1,
        "the post exists although the client never saw the reply"
    );
    assert_eq!(posts[0].commentary, "Lost reply");

    // The fault is spent: the resend answers at once, as a duplicate of the held post.
    let resend = harness.post(&token, "judy", "Lost reply").await;
    assert_eq!(resend.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = resend.json().await.expect("json");
    assert_eq!(
        body["message"],
        format!("Content is a duplicate of {}", posts[0].urn)
    );
}

#[tokio::test]
async fn injected_503_creates_nothing_and_is_spent() {
    let harness = start(NetsimOptions::default()).await;
    let token = harness.connect("ken").await;
    let injected = harness
        .http
        .post(format!("{}/_netsim/faults", harness.base_url))
        .json(&json!({"kind": "status", "status": 503, "count": 1}))
        .send()
        .await
        .expect("answers");
    assert_eq!(injected.status(), StatusCode::NO_CONTENT);

    let failed = harness.post(&token, "ken", "Retry me").await;
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(harness.netsim.posts().is_empty());

    let retried = harness.post(&token, "ken", "Retry me").await;
    assert_eq!(retried.status(), StatusCode::CREATED);
    let listed: Value = harness
        .http
        .get(format!("{}/_netsim/posts", harness.base_url))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn the_engagement_ticker_grows_young_posts() {
    let options = NetsimOptions {
        engagement_tick: Some(Duration::from_millis(20)),
        reactions_per_tick: 3,
        ..NetsimOptions::default()
    };
    let harness = start(options).await;
    let token = harness.connect("leo").await;
    assert_eq!(
        harness.post(&token, "leo", "Watch me grow").await.status(),
        StatusCode::CREATED
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let post = &harness.netsim.posts()[0];
    assert!(post.reactions >= 3, "{post:?}");
    assert!(post.impressions > post.reactions, "{post:?}");
}
