//! Facebook Pages: the advocate's account is a Page, posted to with its Page token.

use super::{
    CallEffect, Edge, Graph, GraphFailure, PageAccount, Usage, call_span, is_same_post,
    page_token_set,
};
use crate::{
    AppCredentials, Network, NetworkAdapter, NetworkError, PostMetrics, PostRequest, PostedRef,
    Profile, TokenSet,
};
use serde::Deserialize;
use tracing::Instrument;

const SCOPES: &str = "pages_show_list,pages_manage_posts,pages_read_engagement,read_insights";
/// "(#506) Duplicate status message".
const DUPLICATE_CODE: i64 = 506;
/// Posts of `published_posts` read per page, and pages read, when reconciling.
const RECONCILE_PAGE_SIZE: &str = "25";
const RECONCILE_MAX_PAGES: usize = 4;
/// The post's reach: "media views" replaced impressions from v23 (NETWORKS.md).
const VIEWS_METRIC: &str = "post_total_media_view_unique";

pub struct Facebook {
    graph: Graph,
}

impl Facebook {
    pub fn new(credentials: AppCredentials) -> Facebook {
        Facebook {
            graph: Graph::new(Network::Facebook, credentials),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Created {
    id: String,
    permalink_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Node {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    followers_count: Option<i64>,
    #[serde(default)]
    fan_count: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct ListedPost {
    id: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    permalink_url: Option<String>,
    #[serde(default)]
    created_time: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Summary {
    #[serde(default)]
    total_count: i64,
}

#[derive(Debug, Default, Deserialize)]
struct SummarisedEdge {
    #[serde(default)]
    summary: Summary,
}

#[derive(Debug, Default, Deserialize)]
struct Shares {
    #[serde(default)]
    count: i64,
}

#[derive(Debug, Deserialize)]
struct Engagement {
    #[serde(default)]
    reactions: SummarisedEdge,
    #[serde(default)]
    comments: SummarisedEdge,
    /// Absent until someone shares.
    #[serde(default)]
    shares: Shares,
}

#[derive(Debug, Deserialize)]
pub(super) struct Insight {
    pub name: String,
    #[serde(default)]
    pub values: Vec<InsightValue>,
}

#[derive(Debug, Deserialize)]
pub(super) struct InsightValue {
    #[serde(default)]
    pub value: serde_json::Value,
}

/// The lifetime value of `metric` in an insights reply (0 when absent).
pub(super) fn insight_value(insights: &[Insight], metric: &str) -> i64 {
    insights
        .iter()
        .find(|insight| insight.name == metric)
        .and_then(|insight| insight.values.last())
        .and_then(|value| value.value.as_i64())
        .unwrap_or(0)
}

/// `https://www.facebook.com/{page-id}/posts/{post-id}` when Graph gave no permalink
/// (the pattern is unconfirmed, NETWORKS.md).
fn built_permalink(post_id: &str) -> String {
    match post_id.split_once('_') {
        Some((page, post)) => format!("https://www.facebook.com/{page}/posts/{post}"),
        None => format!("https://www.facebook.com/{post_id}"),
    }
}

fn posted_ref(
    id: String,
    permalink: Option<String>,
    already_existed: bool,
    usage: &Usage,
) -> PostedRef {
    PostedRef {
        url: permalink
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| built_permalink(&id)),
        external_id: id,
        already_existed,
        budget: usage.budget(chrono::Utc::now()),
    }
}

impl Facebook {
    /// `POST /{page-id}/feed`; a 506 duplicate is this share's earlier post, found in
    /// `published_posts`.
    async fn create(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<PostedRef, NetworkError> {
        let mut form = vec![("message", post.text.as_str())];
        if let Some(link) = post.link_url.as_deref().filter(|link| !link.is_empty()) {
            form.push(("link", link));
        }
        let path = format!("/{}/feed", post.author_id);
        let reply = self
            .graph
            .post_form::<Created>(
                access_token,
                &path,
                &[("fields", "id,permalink_url")],
                &form,
                CallEffect::SideEffect,
                "post reply",
            )
            .await?;
        match reply {
            Ok((created, usage)) => {
                tracing::info!(external_id = %created.id, "facebook post created");
                Ok(posted_ref(created.id, created.permalink_url, false, &usage))
            }
            Err(failure) if failure.code() == Some(DUPLICATE_CODE) => {
                self.duplicate(access_token, post, &failure).await
            }
            Err(failure) => Err(failure.classify().after_creation()),
        }
    }

    async fn duplicate(
        &self,
        access_token: &str,
        post: &PostRequest,
        failure: &GraphFailure,
    ) -> Result<PostedRef, NetworkError> {
        match self.search(access_token, post).await? {
            Some(found) => {
                tracing::info!(external_id = %found.external_id, "facebook post already existed");
                Ok(found)
            }
            // Graph says the identical text exists but the Page's posts do not show it
            // (deleted, or older than what we read): retrying would be refused again.
            None => Err(NetworkError::Invalid(failure.describe())),
        }
    }

    /// This share's post among the Page's recent `published_posts`, newest first.
    async fn search(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<Option<PostedRef>, NetworkError> {
        let path = format!("/{}/published_posts", post.author_id);
        let mut after: Option<String> = None;
        for _ in 0..RECONCILE_MAX_PAGES {
            let mut query = vec![
                ("fields", "id,message,created_time,permalink_url"),
                ("limit", RECONCILE_PAGE_SIZE),
            ];
            if let Some(cursor) = after.as_deref() {
                query.push(("after", cursor));
            }
            let (page, usage): (Edge<ListedPost>, Usage) = self
                .graph
                .get(access_token, &path, &query, "published_posts")
                .await?;
            let found = page.data.iter().find(|listed| {
                listed.message.as_deref().is_some_and(|message| {
                    is_same_post(message, &post.text, post.link_url.as_deref())
                })
            });
            if let Some(listed) = found {
                return Ok(Some(posted_ref(
                    listed.id.clone(),
                    listed.permalink_url.clone(),
                    true,
                    &usage,
                )));
            }
            let read_past_horizon = super::past_horizon(
                page.data
                    .iter()
                    .map(|listed| listed.created_time.as_deref()),
            );
            match page.next_cursor() {
                _ if read_past_horizon => return Ok(None),
                Some(cursor) => after = Some(cursor),
                None => return Ok(None),
            }
        }
        // Posts newer than the horizon remain unread: absent is not proven.
        Err(NetworkError::OutcomeUnknown(format!(
            "facebook: the post is not among the Page's newest {} posts; older ones were not read",
            RECONCILE_MAX_PAGES * 25
        )))
    }

    async fn me(&self, access_token: &str, fields: &str) -> Result<Node, NetworkError> {
        let (node, _) = self
            .graph
            .get(access_token, "/me", &[("fields", fields)], "page")
            .await?;
        Ok(node)
    }
}

#[async_trait::async_trait]
impl NetworkAdapter for Facebook {
    fn network(&self) -> Network {
        Network::Facebook
    }

    fn authorize_url(&self, state: &str, code_challenge: &str) -> String {
        self.graph.authorize_url(SCOPES, state, code_challenge)
    }

    /// Logs in and returns the Page token of the first Page the user may post to.
    async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
    ) -> Result<TokenSet, NetworkError> {
        async {
            let pages = self
                .graph
                .login(code, code_verifier, "id,name,access_token,tasks")
                .await?;
            let page: Option<PageAccount> = pages
                .into_iter()
                .find(|page| page.access_token.is_some() && page.can_create_content());
            let Some(page) = page else {
                return Err(NetworkError::Forbidden(
                    "the Facebook account manages no Page it may post to (CREATE_CONTENT)".to_string(),
                ));
            };
            tracing::info!(page_id = %page.id, page_name = %page.name, "facebook page token obtained");
            Ok(page_token_set(page.access_token.unwrap_or_default()))
        }
        .instrument(call_span(Network::Facebook, "exchange_code"))
        .await
    }

    /// Graph has no refresh token: a dead Page token means logging in again.
    async fn refresh(&self, _refresh_token: &str) -> Result<TokenSet, NetworkError> {
        Err(NetworkError::Unauthorized(
            "Facebook has no refresh token: log in with Facebook again".to_string(),
        ))
    }

    /// The Page behind the Page token (`/me` is the Page).
    async fn profile(&self, access_token: &str) -> Result<Profile, NetworkError> {
        async {
            let page = self.me(access_token, "id,name").await?;
            Ok(Profile {
                display_name: page
                    .name
                    .filter(|name| !name.is_empty())
                    .unwrap_or_else(|| page.id.clone()),
                id: page.id,
            })
        }
        .instrument(call_span(Network::Facebook, "profile"))
        .await
    }

    async fn publish(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<PostedRef, NetworkError> {
        self.create(access_token, post)
            .instrument(call_span(Network::Facebook, "publish"))
            .await
    }

    /// Graph has no idempotency key: the Page's `published_posts` are searched for the
    /// share's text or tracked link. `None` when the recent posts do not hold it.
    async fn find_post(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<Option<PostedRef>, NetworkError> {
        self.search(access_token, post)
            .instrument(call_span(Network::Facebook, "find_post"))
            .await
    }

    /// Reactions, comments and shares from the post's summaries; views from insights
    /// (`read_insights`; without it, or on a version without the metric, 0).
    async fn metrics(
        &self,
        access_token: &str,
        external_id: &str,
    ) -> Result<PostMetrics, NetworkError> {
        async {
            let (engagement, _): (Engagement, Usage) = self
                .graph
                .get(
                    access_token,
                    &format!("/{external_id}"),
                    &[("fields", "reactions.summary(total_count),comments.summary(total_count),shares")],
                    "post engagement",
                )
                .await?;
            let insights = self
                .graph
                .get::<Edge<Insight>>(
                    access_token,
                    &format!("/{external_id}/insights"),
                    &[("metric", VIEWS_METRIC)],
                    "post insights",
                )
                .await;
            let impressions = match insights {
                Ok((insights, _)) => insight_value(&insights.data, VIEWS_METRIC),
                Err(NetworkError::Forbidden(reason) | NetworkError::Invalid(reason)) => {
                    tracing::warn!(%reason, "facebook post insights unavailable; impressions left at 0");
                    0
                }
                Err(other) => return Err(other),
            };
            Ok(PostMetrics {
                reactions: engagement.reactions.summary.total_count,
                comments: engagement.comments.summary.total_count,
                reshares: engagement.shares.count,
                impressions,
            })
        }
        .instrument(call_span(Network::Facebook, "metrics"))
        .await
    }

    /// The Page's followers.
    async fn audience_size(&self, access_token: &str) -> Result<Option<i64>, NetworkError> {
        async {
            let page = self.me(access_token, "followers_count,fan_count").await?;
            Ok(page.followers_count.or(page.fan_count))
        }
        .instrument(call_span(Network::Facebook, "audience_size"))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::testkit::{Harness, VERIFIER, challenge, start_netsim};
    use chorus_netsim::{Fault, NetsimOptions};
    use std::time::Duration;

    impl Harness {
        fn facebook(&self, request_timeout: Duration) -> Facebook {
            Facebook::new(self.credentials(request_timeout))
        }

        /// Logs `member_id` in; returns the Page token and the Page id.
        async fn connect_page(&self, adapter: &Facebook, member_id: &str) -> (String, String) {
            let url = adapter.authorize_url("state-42", &challenge());
            let code = self.consent(&url, member_id).await;
            let tokens = adapter
                .exchange_code(&code, VERIFIER)
                .await
                .expect("code exchange");
            let page = adapter
                .profile(&tokens.access_token)
                .await
                .expect("profile");
            (tokens.access_token, page.id)
        }

        async fn add_metrics(&self, post_id: &str, metrics: serde_json::Value) {
            let response = reqwest::Client::new()
                .post(format!("{}/_netsim/posts/{post_id}/metrics", self.base_url))
                .json(&metrics)
                .send()
                .await
                .expect("netsim answers");
            assert_eq!(response.status(), reqwest::StatusCode::NO_CONTENT);
        }
    }

    fn post_by(page_id: &str, text: &str, link: Option<&str>) -> PostRequest {
        PostRequest {
            author_id: page_id.to_string(),
            text: text.to_string(),
            link_url: link.map(str::to_string),
            image_url: None,
            image_alt: None,
            idempotency_key: "share-1".to_string(),
        }
    }

    #[tokio::test]
    async fn login_gives_a_non_expiring_page_token_and_the_page_as_profile() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.facebook(Duration::from_secs(5));
        let url = adapter.authorize_url("state-42", &challenge());
        assert!(url.contains("/graph/v21.0/dialog/oauth?"), "{url}");
        let code = harness.consent(&url, "alice").await;

        let tokens = adapter
            .exchange_code(&code, VERIFIER)
            .await
            .expect("exchange");
        assert_eq!(tokens.refresh_token, None);
        assert_eq!(
            tokens.access_expires_at, None,
            "a Page token does not expire"
        );

        let reused = adapter.exchange_code(&code, VERIFIER).await;
        assert!(
            matches!(reused, Err(NetworkError::Unauthorized(_))),
            "{reused:?}"
        );

        let profile = adapter
            .profile(&tokens.access_token)
            .await
            .expect("profile");
        assert_eq!(profile.display_name, "Page of alice");
        assert_eq!(profile.id.len(), 15, "{profile:?}");
        assert!(
            profile
                .id
                .chars()
                .all(|character| character.is_ascii_digit())
        );
        let audience = adapter
            .audience_size(&tokens.access_token)
            .await
            .expect("followers");
        assert!(
            audience.is_some_and(|followers| followers > 0),
            "{audience:?}"
        );
        let refreshed = adapter.refresh("none").await;
        assert!(
            matches!(refreshed, Err(NetworkError::Unauthorized(_))),
            "{refreshed:?}"
        );
    }

    #[tokio::test]
    async fn a_bad_pkce_verifier_is_refused() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.facebook(Duration::from_secs(5));
        let code = harness
            .consent(&adapter.authorize_url("state-42", &challenge()), "alice")
            .await;
        let exchanged = adapter
            .exchange_code(&code, "another-verifier-entirely-0123456789-abcdefghijkl")
            .await;
        assert!(
            matches!(exchanged, Err(NetworkError::Unauthorized(_))),
            "{exchanged:?}"
        );
    }

    #[tokio::test]
    async fn publish_creates_one_post_and_a_506_duplicate_is_the_same_post() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.facebook(Duration::from_secs(5));
        let (token, page_id) = harness.connect_page(&adapter, "bob").await;
        let link = "https://chr.us/s/abc";
        let post = post_by(&page_id, &format!("Our launch {link}"), Some(link));

        let published = adapter.publish(&token, &post).await.expect("publish");
        assert!(
            published.external_id.starts_with(&format!("{page_id}_")),
            "{published:?}"
        );
        let post_number = published.external_id.split_once('_').expect("page_post").1;
        assert_eq!(
            published.url,
            format!("https://www.facebook.com/{page_id}/posts/{post_number}")
        );
        assert!(!published.already_existed);
        let budget = published.budget.expect("usage headers give a budget");
        assert_eq!(budget.limit, 100);
        assert!(
            budget.remaining > 0 && budget.remaining <= 100,
            "{budget:?}"
        );

        let posts = harness.netsim.posts_of("facebook");
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0].urn, published.external_id);
        assert_eq!(posts[0].commentary, post.text);
        assert_eq!(posts[0].author, page_id);

        let resent = adapter
            .publish(&token, &post)
            .await
            .expect("a duplicate is a success");
        assert!(resent.already_existed);
        assert_eq!(resent.external_id, published.external_id);
        assert_eq!(resent.url, published.url);
        assert_eq!(
            harness.netsim.posts_of("facebook").len(),
            1,
            "never posted twice"
        );

        harness
            .add_metrics(
                &published.external_id,
                serde_json::json!({"reactions": 7, "comments": 3, "reshares": 2, "impressions": 120}),
            )
            .await;
        let metrics = adapter
            .metrics(&token, &published.external_id)
            .await
            .expect("metrics");
        assert_eq!(
            metrics,
            PostMetrics {
                reactions: 7,
                comments: 3,
                reshares: 2,
                impressions: 120
            }
        );
    }

    #[tokio::test]
    async fn a_reply_lost_after_accept_is_unknown_and_find_post_reconciles_it() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let (token, page_id) = harness
            .connect_page(&harness.facebook(Duration::from_secs(5)), "dave")
            .await;
        let adapter = harness.facebook(Duration::from_millis(300));
        harness.netsim.inject_on(
            "facebook",
            Fault::HoldAfterAccept {
                hold_ms: 3_000,
                count: 1,
            },
        );
        let link = "https://chr.us/s/held";
        let post = post_by(&page_id, &format!("Held reply {link}"), Some(link));

        let attempt = adapter.publish(&token, &post).await;
        assert!(
            matches!(attempt, Err(NetworkError::OutcomeUnknown(_))),
            "{attempt:?}"
        );

        let found = adapter
            .find_post(&token, &post)
            .await
            .expect("reconcile")
            .expect("the post is found");
        let posts = harness.netsim.posts_of("facebook");
        assert_eq!(posts.len(), 1, "exactly one post on the network");
        assert_eq!(found.external_id, posts[0].urn);
        assert!(found.already_existed);
        assert!(
            found.url.starts_with("https://www.facebook.com/"),
            "{found:?}"
        );
    }

    #[tokio::test]
    async fn find_post_answers_none_when_the_post_never_landed() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.facebook(Duration::from_secs(5));
        let (token, page_id) = harness.connect_page(&adapter, "erin").await;
        adapter
            .publish(
                &token,
                &post_by(&page_id, "Another share https://chr.us/s/other", None),
            )
            .await
            .expect("publish");
        let link = "https://chr.us/s/never";
        let missing = adapter
            .find_post(
                &token,
                &post_by(&page_id, &format!("Never landed {link}"), Some(link)),
            )
            .await
            .expect("listing");
        assert_eq!(missing, None);
    }

    #[tokio::test]
    async fn transient_graph_errors_to_a_post_are_unknown_outcomes() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.facebook(Duration::from_secs(5));
        let (token, page_id) = harness.connect_page(&adapter, "frank").await;
        for status in [500, 503] {
            harness
                .netsim
                .inject_on("facebook", Fault::Status { status, count: 1 });
            let attempt = adapter
                .publish(&token, &post_by(&page_id, "Try later", None))
                .await;
            assert!(
                matches!(attempt, Err(NetworkError::OutcomeUnknown(_))),
                "{status}: {attempt:?}"
            );
        }
        assert!(harness.netsim.posts_of("facebook").is_empty());
    }

    #[tokio::test]
    async fn the_page_limit_is_a_400_code_32_rate_limited_until_access_returns() {
        let harness = start_netsim(NetsimOptions {
            graph_page_calls_per_day: 3,
            ..NetsimOptions::default()
        })
        .await;
        let adapter = harness.facebook(Duration::from_secs(5));
        // Logging in uses the user token; `profile` is the Page's first call.
        let (token, page_id) = harness.connect_page(&adapter, "grace").await;
        let first = adapter
            .publish(&token, &post_by(&page_id, "One", None))
            .await
            .expect("2nd call");
        assert!(first.budget.expect("budget").remaining > 0);
        let second = adapter
            .publish(&token, &post_by(&page_id, "Two", None))
            .await
            .expect("3rd call");
        assert_eq!(
            second.budget.expect("budget").remaining,
            0,
            "the Page used its whole allowance"
        );

        let throttled = adapter
            .publish(&token, &post_by(&page_id, "Three", None))
            .await;
        let Err(NetworkError::RateLimited {
            retry_after: Some(retry_after),
            message,
        }) = throttled
        else {
            panic!("expected a rate limit with a wait: {throttled:?}");
        };
        assert!(message.contains("(#32)"), "{message}");
        // The oldest counted call leaves the rolling 24 h window in about a day.
        assert!(
            retry_after > Duration::from_secs(23 * 3_600),
            "{retry_after:?}"
        );
        assert!(
            retry_after <= Duration::from_secs(24 * 3_600 + 60),
            "{retry_after:?}"
        );
        assert_eq!(harness.netsim.posts_of("facebook").len(), 2);
    }

    #[tokio::test]
    async fn an_injected_throttle_waits_the_usage_headers_estimate() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.facebook(Duration::from_secs(5));
        let (token, page_id) = harness.connect_page(&adapter, "heidi").await;
        harness.netsim.inject_on(
            "facebook",
            Fault::Status {
                status: 429,
                count: 1,
            },
        );
        let throttled = adapter
            .publish(&token, &post_by(&page_id, "Busy", None))
            .await;
        assert!(
            matches!(throttled, Err(NetworkError::RateLimited { retry_after: Some(wait), .. }) if wait == Duration::from_secs(300)),
            "{throttled:?}"
        );
        assert!(harness.netsim.posts_of("facebook").is_empty());
    }

    #[tokio::test]
    async fn a_revoked_token_is_unauthorized_and_another_page_is_forbidden() {
        let harness = start_netsim(NetsimOptions::default()).await;
        let adapter = harness.facebook(Duration::from_secs(5));
        let (token, page_id) = harness.connect_page(&adapter, "ivan").await;
        let (_, other_page) = harness.connect_page(&adapter, "judy").await;

        let elsewhere = adapter
            .publish(&token, &post_by(&other_page, "Not my Page", None))
            .await;
        assert!(
            matches!(elsewhere, Err(NetworkError::Forbidden(_))),
            "{elsewhere:?}"
        );

        harness.netsim.expire_tokens_of("ivan");
        let published = adapter
            .publish(&token, &post_by(&page_id, "After a password change", None))
            .await;
        assert!(
            matches!(&published, Err(NetworkError::Unauthorized(message)) if message.contains("190")),
            "{published:?}"
        );
        let profile = adapter.profile(&token).await;
        assert!(
            matches!(profile, Err(NetworkError::Unauthorized(_))),
            "{profile:?}"
        );
        assert!(harness.netsim.posts_of("facebook").is_empty());
    }

    #[test]
    fn usage_headers_give_the_highest_percentage_and_the_wait() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "x-app-usage",
            r#"{"call_count":28,"total_cputime":25,"total_time":25}"#
                .parse()
                .expect("header"),
        );
        headers.insert(
            "x-business-use-case-usage",
            r#"{"1234":[{"type":"pages","call_count":95,"total_cputime":20,"total_time":20,"estimated_time_to_regain_access":5}]}"#
                .parse()
                .expect("header"),
        );
        let usage = crate::meta::Usage::from_headers(&headers);
        assert_eq!(usage.percent, Some(95));
        assert_eq!(usage.retry_after(), Some(Duration::from_secs(300)));
        let now = chrono::Utc::now();
        let budget = usage.budget(now).expect("budget");
        assert_eq!((budget.limit, budget.remaining), (100, 5));
        assert_eq!(budget.resets_at, now + chrono::TimeDelta::minutes(5));
    }

    #[test]
    fn graph_codes_map_to_the_publisher_classes() {
        let failure =
            |code: i64, subcode: Option<i64>, transient: bool| crate::meta::GraphFailure {
                status: reqwest::StatusCode::BAD_REQUEST,
                body: crate::meta::GraphErrorBody {
                    message: Some(format!("(#{code}) something")),
                    code: Some(code),
                    error_subcode: subcode,
                    is_transient: Some(transient),
                    error_user_msg: None,
                },
                raw: String::new(),
                usage: crate::meta::Usage::default(),
            };
        assert_eq!(
            failure(190, Some(463), false).classify().code(),
            "unauthorized"
        );
        assert_eq!(failure(200, None, false).classify().code(), "forbidden");
        assert_eq!(failure(10, None, false).classify().code(), "forbidden");
        for throttle in [4, 17, 32, 613, 80_001] {
            assert_eq!(
                failure(throttle, None, false).classify().code(),
                "rate_limited"
            );
        }
        assert_eq!(failure(1, None, true).classify().code(), "unavailable");
        assert_eq!(failure(2, None, true).classify().code(), "unavailable");
        assert_eq!(failure(100, None, false).classify().code(), "invalid");
        assert_eq!(
            failure(9, Some(2_207_042), false).classify().code(),
            "rate_limited"
        );
        assert_eq!(
            failure(-1, Some(2_207_001), true).classify().code(),
            "unavailable"
        );
    }
}
