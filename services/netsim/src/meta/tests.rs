//! The Graph simulator over real HTTP, at the wire level (the adapters' tests in
//! libs/social cover the flows end to end).

use super::{Field, parse_fields};
use crate::{Netsim, NetsimOptions};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct Harness {
    netsim: Netsim,
    graph: String,
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
    Harness {
        netsim,
        graph: format!("http://{address}/graph/v21.0"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        shutdown,
    }
}

impl Harness {
    /// Logs `member` in and returns (page id, page token, ig user id).
    async fn login(&self, member: &str) -> (String, String, String) {
        let redirect = "http://127.0.0.1:9/cb";
        let consent = self
            .http
            .get(format!("{}/dialog/oauth", self.graph))
            .query(&[
                ("client_id", "app"),
                ("redirect_uri", redirect),
                ("state", "s"),
                ("member", member),
            ])
            .send()
            .await
            .expect("dialog");
        assert_eq!(consent.status(), StatusCode::FOUND);
        let location =
            url::Url::parse(consent.headers()["location"].to_str().expect("ascii")).expect("url");
        let code = location
            .query_pairs()
            .find(|(name, _)| name == "code")
            .map(|(_, value)| value.into_owned())
            .expect("code");
        let short: Value = self
            .http
            .get(format!("{}/oauth/access_token", self.graph))
            .query(&[
                ("client_id", "app"),
                ("client_secret", "s"),
                ("redirect_uri", redirect),
                ("code", code.as_str()),
            ])
            .send()
            .await
            .expect("exchange")
            .json()
            .await
            .expect("json");
        let short = short["access_token"].as_str().expect("token").to_string();
        let long: Value = self
            .http
            .get(format!("{}/oauth/access_token", self.graph))
            .query(&[
                ("grant_type", "fb_exchange_token"),
                ("client_id", "app"),
                ("client_secret", "s"),
                ("fb_exchange_token", short.as_str()),
            ])
            .send()
            .await
            .expect("long")
            .json()
            .await
            .expect("json");
        assert!(long["expires_in"].as_i64().expect("expiry") > 59 * 86_400);
        let accounts: Value = self
            .http
            .get(format!("{}/me/accounts", self.graph))
            .query(&[("fields", "id,name,access_token,instagram_business_account")])
            .bearer_auth(long["access_token"].as_str().expect("token"))
            .send()
            .await
            .expect("accounts")
            .json()
            .await
            .expect("json");
        let page = &accounts["data"][0];
        (
            page["id"].as_str().expect("id").to_string(),
            page["access_token"].as_str().expect("token").to_string(),
            page["instagram_business_account"]["id"]
                .as_str()
                .expect("ig")
                .to_string(),
        )
    }
}

#[test]
fn fields_with_modifiers_and_expansions_parse() {
    let fields =
        parse_fields("id,reactions.summary(total_count),instagram_business_account{id,username}");
    assert_eq!(
        fields,
        vec![
            Field {
                name: "id".into(),
                subfields: None,
                raw: "id".into()
            },
            Field {
                name: "reactions".into(),
                subfields: None,
                raw: "reactions.summary(total_count)".into()
            },
            Field {
                name: "instagram_business_account".into(),
                subfields: Some("id,username".into()),
                raw: "instagram_business_account{id,username}".into(),
            },
        ]
    );
}

#[tokio::test]
async fn a_page_post_is_a_200_with_page_underscore_post_and_a_duplicate_is_506() {
    let harness = start(NetsimOptions::default()).await;
    let (page_id, token, _) = harness.login("alice").await;
    let post = || {
        harness
            .http
            .post(format!("{}/{page_id}/feed", harness.graph))
            .bearer_auth(&token)
            .form(&[("message", "Hello https://chr.us/s/1")])
            .send()
    };
    let created = post().await.expect("post");
    assert_eq!(created.status(), StatusCode::OK);
    let usage: Value = serde_json::from_str(
        created.headers()["x-business-use-case-usage"]
            .to_str()
            .expect("ascii"),
    )
    .expect("json header");
    assert_eq!(usage[page_id.as_str()][0]["type"], "pages");
    let body: Value = created.json().await.expect("json");
    let id = body["id"].as_str().expect("id");
    assert!(id.starts_with(&format!("{page_id}_")), "{id}");

    let duplicate = post().await.expect("post");
    assert_eq!(duplicate.status(), StatusCode::BAD_REQUEST);
    let body: Value = duplicate.json().await.expect("json");
    assert_eq!(body["error"]["code"], 506);
    assert_eq!(body["error"]["type"], "OAuthException");
    assert_eq!(harness.netsim.posts_of("facebook").len(), 1);
}

#[tokio::test]
async fn an_instagram_container_needs_an_image_and_processes_before_publishing() {
    let harness = start(NetsimOptions {
        instagram_container_delay: Duration::from_millis(150),
        ..NetsimOptions::default()
    })
    .await;
    let (_, token, ig_user_id) = harness.login("bob").await;
    let media = format!("{}/{ig_user_id}/media", harness.graph);
    let without_image = harness
        .http
        .post(&media)
        .bearer_auth(&token)
        .form(&[("caption", "No image")])
        .send()
        .await
        .expect("answers");
    assert_eq!(without_image.status(), StatusCode::BAD_REQUEST);
    let body: Value = without_image.json().await.expect("json");
    assert_eq!(body["error"]["code"], 100);

    let container: Value = harness
        .http
        .post(&media)
        .bearer_auth(&token)
        .form(&[
            ("caption", "With image"),
            ("image_url", "https://cdn.example/a.jpg"),
        ])
        .send()
        .await
        .expect("container")
        .json()
        .await
        .expect("json");
    let container_id = container["id"].as_str().expect("id").to_string();
    let publish = || {
        harness
            .http
            .post(format!("{}/{ig_user_id}/media_publish", harness.graph))
            .bearer_auth(&token)
            .form(&[("creation_id", container_id.as_str())])
            .send()
    };
    let early: Value = publish()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(early["error"]["error_subcode"], 2_207_027, "{early}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status: Value = harness
        .http
        .get(format!("{}/{container_id}", harness.graph))
        .query(&[("fields", "status_code")])
        .bearer_auth(&token)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    assert_eq!(status["status_code"], "FINISHED");
    let published: Value = publish()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert!(published["id"].is_string(), "{published}");
    let posts = harness.netsim.posts_of("instagram");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].commentary, "With image");
}
