//! Instagram professional accounts through Facebook Login: two-step publishing
//! (container, then `media_publish`), the rolling 24 h publishing quota, and
//! reconciliation through the container status and the account's media listing.

use super::facebook::{Insight, insight_value};
use super::{
    CallEffect, Edge, Graph, GraphFailure, NodeId, PageAccount, Usage, call_span, is_same_post,
    page_token_set,
};
use crate::{
    AppCredentials, AttemptRefs, MemoryRefs, Network, NetworkAdapter, NetworkError, PostMetrics,
    PostRequest, PostedRef, Profile, RateBudget, TokenSet,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

const SCOPES: &str = "instagram_basic,instagram_content_publish,instagram_manage_insights,pages_show_list,pages_read_engagement";
const MAX_CAPTION_CHARS: usize = 2_200;
const QUOTA_SUBCODE: i64 = 2_207_042;
const NOT_READY_SUBCODE: i64 = 2_207_027;
/// How long `publish` waits for a container to leave IN_PROGRESS.
const PROCESSING_WAIT: Duration = Duration::from_secs(60);
const FIRST_POLL: Duration = Duration::from_millis(200);
const LONGEST_POLL: Duration = Duration::from_secs(5);
/// The documented quota window when Graph does not say.
const DEFAULT_QUOTA_DURATION_SECS: i64 = 86_400;
const RECONCILE_PAGE_SIZE: &str = "25";
const RECONCILE_MAX_PAGES: usize = 4;

pub struct Instagram {
    graph: Graph,
    /// The container created for each share (idempotency key), until its media is found:
    /// the handle NETWORKS.md recommends. The publisher keeps it with the attempt, so that a
    /// restart continues with it (a lagging media listing cannot then cause a second post).
    containers: Arc<dyn AttemptRefs>,
}

impl Instagram {
    pub fn new(credentials: AppCredentials) -> Instagram {
        Instagram::with_refs(credentials, Arc::new(MemoryRefs::default()))
    }

    pub fn with_refs(credentials: AppCredentials, containers: Arc<dyn AttemptRefs>) -> Instagram {
        Instagram {
            graph: Graph::new(Network::Instagram, credentials),
            containers,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Created {
    id: String,
}

#[derive(Debug, Deserialize)]
struct ContainerState {
    #[serde(default)]
    status_code: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Media {
    id: String,
    #[serde(default)]
    caption: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    permalink: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MediaCounts {
    #[serde(default)]
    like_count: i64,
    #[serde(default)]
    comments_count: i64,
}

#[derive(Debug, Deserialize)]
struct PageWithAccount {
    #[serde(default)]
    instagram_business_account: Option<Account>,
}

#[derive(Debug, Deserialize)]
struct Account {
    id: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    followers_count: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct PublishingLimit {
    #[serde(default)]
    quota_usage: u32,
    #[serde(default)]
    config: Option<QuotaConfig>,
}

#[derive(Debug, Deserialize)]
struct QuotaConfig {
    quota_total: u32,
    #[serde(default)]
    quota_duration: Option<i64>,
}

use super::graph_time as parse_time;

fn posted_ref(media_id: String, permalink: Option<String>, already_existed: bool) -> PostedRef {
    PostedRef {
        // Without the permalink the profile is the closest public page (it needs a read).
        url: permalink
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| "https://www.instagram.com/".to_string()),
        external_id: media_id,
        already_existed,
        budget: None,
    }
}

/// Checks what Instagram would refuse, before any call.
fn validate(post: &PostRequest) -> Result<&str, NetworkError> {
    let image_url = post
        .image_url
        .as_deref()
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .ok_or_else(|| {
            NetworkError::Invalid(
                "Instagram posts need an image: text-only posts do not exist on Instagram"
                    .to_string(),
            )
        })?;
    let caption_chars = post.text.chars().count();
    if caption_chars > MAX_CAPTION_CHARS {
        return Err(NetworkError::Invalid(format!(
            "the caption has {caption_chars} characters; Instagram allows {MAX_CAPTION_CHARS}"
        )));
    }
    Ok(image_url)
}

impl Instagram {
    async fn remembered(&self, key: &str) -> Option<String> {
        self.containers.get(key).await
    }

    async fn remember(&self, key: &str, container_id: &str) -> Result<(), NetworkError> {
        self.containers.put(key, container_id).await
    }

    async fn forget(&self, key: &str) {
        self.containers.forget(key).await
    }

    async fn container_status(
        &self,
        access_token: &str,
        container_id: &str,
    ) -> Result<ContainerState, NetworkError> {
        let (state, _) = self
            .graph
            .get(
                access_token,
                &format!("/{container_id}"),
                &[("fields", "status_code,status")],
                "container status",
            )
            .await?;
        Ok(state)
    }

    /// `POST /{ig-user-id}/media`. A container is not a post, so a lost reply only costs
    /// an orphan container (it expires): the call is repeatable.
    async fn create_container(
        &self,
        access_token: &str,
        post: &PostRequest,
        image_url: &str,
    ) -> Result<String, NetworkError> {
        let mut form = vec![("image_url", image_url), ("caption", post.text.as_str())];
        if let Some(alt) = post.image_alt.as_deref().filter(|alt| !alt.is_empty()) {
            form.push(("alt_text", alt));
        }
        let (created, _): (Created, Usage) = self
            .graph
            .post_form(
                access_token,
                &format!("/{}/media", post.author_id),
                &[],
                &form,
                CallEffect::Repeatable,
                "container reply",
            )
            .await?
            .map_err(|failure| failure.classify())?;
        tracing::info!(container_id = %created.id, "instagram container created");
        self.remember(&post.idempotency_key, &created.id).await?;
        Ok(created.id)
    }

    /// Polls the container until FINISHED. `Ok(false)` when it turns out PUBLISHED.
    async fn wait_until_finished(
        &self,
        access_token: &str,
        post: &PostRequest,
        container_id: &str,
    ) -> Result<bool, NetworkError> {
        let deadline = tokio::time::Instant::now() + PROCESSING_WAIT;
        let mut pause = FIRST_POLL;
        loop {
            let state = self.container_status(access_token, container_id).await?;
            match state.status_code.as_deref() {
                Some("FINISHED") => return Ok(true),
                Some("PUBLISHED") => return Ok(false),
                Some("ERROR") => {
                    self.forget(&post.idempotency_key).await;
                    return Err(NetworkError::Invalid(state.status.unwrap_or_else(|| {
                        "Instagram could not process the image".to_string()
                    })));
                }
                Some("EXPIRED") => {
                    self.forget(&post.idempotency_key).await;
                    return Err(NetworkError::Unavailable(
                        "the Instagram container expired before publishing".to_string(),
                    ));
                }
                _ => {}
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(NetworkError::Unavailable(format!(
                    "the Instagram container {container_id} is still processing"
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LONGEST_POLL);
        }
    }

    async fn create(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<PostedRef, NetworkError> {
        let image_url = validate(post)?;
        let mut reusable = None;
        if let Some(container_id) = self.remembered(&post.idempotency_key).await {
            match self.container_status(access_token, &container_id).await {
                Ok(state) => match state.status_code.as_deref() {
                    Some("FINISHED" | "IN_PROGRESS") => reusable = Some(container_id),
                    Some("PUBLISHED") => return self.published_earlier(access_token, post).await,
                    _ => self.forget(&post.idempotency_key).await,
                },
                Err(NetworkError::Invalid(_)) => self.forget(&post.idempotency_key).await,
                Err(other) => return Err(other),
            }
        }
        let container_id = match reusable {
            Some(container_id) => container_id,
            None => self.create_container(access_token, post, image_url).await?,
        };
        if !self
            .wait_until_finished(access_token, post, &container_id)
            .await?
        {
            return self.published_earlier(access_token, post).await;
        }
        let reply = self
            .graph
            .post_form::<Created>(
                access_token,
                &format!("/{}/media_publish", post.author_id),
                &[],
                &[("creation_id", container_id.as_str())],
                CallEffect::SideEffect,
                "publish reply",
            )
            .await?;
        let media_id = match reply {
            Ok((created, _)) => created.id,
            Err(failure) => return Err(self.publish_refused(access_token, post, &failure).await),
        };
        self.forget(&post.idempotency_key).await;
        tracing::info!(external_id = %media_id, "instagram media published");
        // The media exists now: reads that fail only cost the permalink and the budget.
        let permalink = match self
            .graph
            .get::<Media>(
                access_token,
                &format!("/{media_id}"),
                &[("fields", "id,permalink")],
                "media",
            )
            .await
        {
            Ok((media, _)) => media.permalink,
            Err(error) => {
                tracing::warn!(error = %error, "instagram permalink not read");
                None
            }
        };
        let mut posted = posted_ref(media_id, permalink, false);
        posted.budget = self
            .read_budget(access_token, &post.author_id)
            .await
            .inspect_err(
                |error| tracing::warn!(error = %error, "instagram publishing limit not read"),
            )
            .ok();
        Ok(posted)
    }

    /// The container was published by an earlier attempt: find the media.
    async fn published_earlier(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<PostedRef, NetworkError> {
        match self.search(access_token, post).await? {
            Some(found) => {
                self.forget(&post.idempotency_key).await;
                Ok(found)
            }
            // The media exists (its container is published): the listing lags. Keep the
            // container and look again; never publish another.
            None => Err(NetworkError::OutcomeUnknown(
                "the Instagram container is published but its media is not listed yet".to_string(),
            )),
        }
    }

    async fn publish_refused(
        &self,
        access_token: &str,
        post: &PostRequest,
        failure: &GraphFailure,
    ) -> NetworkError {
        match (failure.code(), failure.subcode()) {
            (Some(9), Some(QUOTA_SUBCODE)) => {
                let retry_after = match self.slot_frees_at(access_token, &post.author_id).await {
                    Ok(frees_at) => (frees_at - Utc::now()).to_std().ok(),
                    Err(error) => {
                        tracing::warn!(error = %error, "instagram quota window not read");
                        None
                    }
                };
                NetworkError::RateLimited {
                    retry_after: retry_after.or(Some(Duration::from_secs(
                        DEFAULT_QUOTA_DURATION_SECS as u64,
                    ))),
                    message: failure.describe(),
                }
            }
            // Published too early: the container is kept, the next attempt waits for it.
            (_, Some(NOT_READY_SUBCODE)) => NetworkError::Unavailable(failure.describe()),
            _ => failure.classify().after_creation(),
        }
    }

    /// This share's media among the account's recent media (newest first).
    async fn search(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<Option<PostedRef>, NetworkError> {
        let path = format!("/{}/media", post.author_id);
        let mut after: Option<String> = None;
        for _ in 0..RECONCILE_MAX_PAGES {
            let mut query = vec![
                ("fields", "id,caption,timestamp,permalink"),
                ("limit", RECONCILE_PAGE_SIZE),
            ];
            if let Some(cursor) = after.as_deref() {
                query.push(("after", cursor));
            }
            let (page, _): (Edge<Media>, Usage) = self
                .graph
                .get(access_token, &path, &query, "media listing")
                .await?;
            let next = page.next_cursor();
            let read_past_horizon =
                super::past_horizon(page.data.iter().map(|media| media.timestamp.as_deref()));
            let found = page.data.into_iter().find(|media| {
                media.caption.as_deref().is_some_and(|caption| {
                    is_same_post(caption, &post.text, post.link_url.as_deref())
                })
            });
            if let Some(media) = found {
                tracing::info!(external_id = %media.id, "instagram media found");
                return Ok(Some(posted_ref(media.id, media.permalink, true)));
            }
            match next {
                _ if read_past_horizon => return Ok(None),
                Some(cursor) => after = Some(cursor),
                None => return Ok(None),
            }
        }
        // Media newer than the horizon remain unread: absent is not proven.
        Err(NetworkError::OutcomeUnknown(format!(
            "instagram: the media is not among the account's newest {} media; older ones were not read",
            RECONCILE_MAX_PAGES * 25
        )))
    }

    async fn limit(
        &self,
        access_token: &str,
        ig_user_id: &str,
    ) -> Result<(u32, u32, i64), NetworkError> {
        let (limits, _): (Edge<PublishingLimit>, Usage) = self
            .graph
            .get(
                access_token,
                &format!("/{ig_user_id}/content_publishing_limit"),
                &[("fields", "quota_usage,config")],
                "content_publishing_limit",
            )
            .await?;
        let limit = limits.data.into_iter().next().ok_or_else(|| {
            NetworkError::Unavailable("content_publishing_limit answered no data".to_string())
        })?;
        let config = limit.config.ok_or_else(|| {
            NetworkError::Unavailable("content_publishing_limit answered no config".to_string())
        })?;
        let duration = config
            .quota_duration
            .filter(|seconds| *seconds > 0)
            .unwrap_or(DEFAULT_QUOTA_DURATION_SECS);
        Ok((limit.quota_usage, config.quota_total, duration))
    }

    /// When the oldest publish still counted leaves the rolling window: the `usage`-th
    /// newest media inside it, plus the window (the whole window when it cannot be told).
    async fn slot_frees_at(
        &self,
        access_token: &str,
        ig_user_id: &str,
    ) -> Result<DateTime<Utc>, NetworkError> {
        let (usage, _, duration) = self.limit(access_token, ig_user_id).await?;
        self.oldest_counted(access_token, ig_user_id, usage, duration)
            .await
    }

    async fn oldest_counted(
        &self,
        access_token: &str,
        ig_user_id: &str,
        usage: u32,
        duration: i64,
    ) -> Result<DateTime<Utc>, NetworkError> {
        let now = Utc::now();
        let window = TimeDelta::seconds(duration);
        let fallback = now + window;
        if usage == 0 {
            return Ok(now);
        }
        let limit = usage.clamp(1, 100).to_string();
        let (media, _): (Edge<Media>, Usage) = self
            .graph
            .get(
                access_token,
                &format!("/{ig_user_id}/media"),
                &[("fields", "id,timestamp"), ("limit", limit.as_str())],
                "media listing",
            )
            .await?;
        let counted: Vec<DateTime<Utc>> = media
            .data
            .iter()
            .filter_map(|media| media.timestamp.as_deref().and_then(parse_time))
            .filter(|published| *published > now - window)
            .collect();
        // Media posted outside the API do not count, so this may be early: then the
        // refusal comes again with a fresh estimate.
        Ok(counted
            .get(usage as usize - 1)
            .or(counted.last())
            .map(|oldest| *oldest + window)
            .unwrap_or(fallback))
    }

    async fn read_budget(
        &self,
        access_token: &str,
        ig_user_id: &str,
    ) -> Result<RateBudget, NetworkError> {
        let (usage, total, duration) = self.limit(access_token, ig_user_id).await?;
        let remaining = total.saturating_sub(usage);
        let resets_at = if remaining == 0 {
            self.oldest_counted(access_token, ig_user_id, usage, duration)
                .await?
        } else {
            Utc::now() + TimeDelta::seconds(duration)
        };
        Ok(RateBudget {
            limit: total,
            remaining,
            resets_at,
            reset_precision: std::time::Duration::ZERO,
        })
    }

    /// The Instagram account linked to the Page behind the token.
    async fn account(&self, access_token: &str, fields: &str) -> Result<Account, NetworkError> {
        let expansion = format!("instagram_business_account{{{fields}}}");
        let (page, _): (PageWithAccount, Usage) = self
            .graph
            .get(
                access_token,
                "/me",
                &[("fields", expansion.as_str())],
                "page",
            )
            .await?;
        page.instagram_business_account.ok_or_else(no_account)
    }
}

fn no_account() -> NetworkError {
    NetworkError::Forbidden(
        "no Instagram professional account is linked to your Facebook Page".to_string(),
    )
}

#[async_trait::async_trait]
impl NetworkAdapter for Instagram {
    fn network(&self) -> Network {
        Network::Instagram
    }

    fn authorize_url(&self, state: &str, code_challenge: &str) -> String {
        self.graph.authorize_url(SCOPES, state, code_challenge)
    }

    /// Logs in and returns the Page token of the first Page with a linked Instagram
    /// professional account (it publishes for that account).
    async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
    ) -> Result<TokenSet, NetworkError> {
        async {
            let pages = self
                .graph
                .login(code, code_verifier, "id,name,access_token,tasks,instagram_business_account")
                .await?;
            let page: Option<PageAccount> = pages
                .into_iter()
                .find(|page| page.access_token.is_some() && page.instagram_business_account.is_some());
            let Some(page) = page else {
                return Err(no_account());
            };
            let account: Option<&NodeId> = page.instagram_business_account.as_ref();
            tracing::info!(page_id = %page.id, page_name = %page.name, ig_user_id = ?account.map(|account| &account.id), "instagram account token obtained");
            Ok(page_token_set(page.access_token.unwrap_or_default()))
        }
        .instrument(call_span(Network::Instagram, "exchange_code"))
        .await
    }

    /// Through Facebook Login there is no refresh token: a dead token means log in again.
    async fn refresh(&self, _refresh_token: &str) -> Result<TokenSet, NetworkError> {
        Err(NetworkError::Unauthorized(
            "Instagram through Facebook Login has no refresh token: log in again".to_string(),
        ))
    }

    async fn profile(&self, access_token: &str) -> Result<Profile, NetworkError> {
        async {
            let account = self.account(access_token, "id,username").await?;
            Ok(Profile {
                display_name: account
                    .username
                    .filter(|name| !name.is_empty())
                    .unwrap_or_else(|| account.id.clone()),
                id: account.id,
            })
        }
        .instrument(call_span(Network::Instagram, "profile"))
        .await
    }

    async fn publish(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<PostedRef, NetworkError> {
        self.create(access_token, post)
            .instrument(call_span(Network::Instagram, "publish"))
            .await
    }

    /// Through the container when this process created it (PUBLISHED: find the media;
    /// FINISHED or IN_PROGRESS: not published, `None`, and `publish` reuses it), else
    /// through the account's media listing matched on the caption or tracked link.
    async fn find_post(
        &self,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<Option<PostedRef>, NetworkError> {
        async {
            if let Some(container_id) = self.remembered(&post.idempotency_key).await {
                let state = self.container_status(access_token, &container_id).await;
                match state.as_ref().map(|state| state.status_code.as_deref()) {
                    Ok(Some("PUBLISHED")) => {
                        return self.published_earlier(access_token, post).await.map(Some);
                    }
                    Ok(Some("FINISHED" | "IN_PROGRESS")) => return Ok(None),
                    Ok(_) | Err(NetworkError::Invalid(_)) => {
                        self.forget(&post.idempotency_key).await
                    }
                    Err(_) => return state.map(|_| None),
                }
            }
            self.search(access_token, post).await
        }
        .instrument(call_span(Network::Instagram, "find_post"))
        .await
    }

    /// Likes and comments from the media; views and shares from its insights
    /// (`instagram_manage_insights`; without it, 0).
    async fn metrics(
        &self,
        access_token: &str,
        external_id: &str,
    ) -> Result<PostMetrics, NetworkError> {
        async {
            let (counts, _): (MediaCounts, Usage) = self
                .graph
                .get(
                    access_token,
                    &format!("/{external_id}"),
                    &[("fields", "like_count,comments_count")],
                    "media counts",
                )
                .await?;
            let insights = self
                .graph
                .get::<Edge<Insight>>(
                    access_token,
                    &format!("/{external_id}/insights"),
                    &[("metric", "views,reach,shares")],
                    "media insights",
                )
                .await;
            let (impressions, reshares) = match insights {
                Ok((insights, _)) => (
                    insight_value(&insights.data, "views"),
                    insight_value(&insights.data, "shares"),
                ),
                Err(NetworkError::Forbidden(reason) | NetworkError::Invalid(reason)) => {
                    tracing::warn!(%reason, "instagram media insights unavailable; views left at 0");
                    (0, 0)
                }
                Err(other) => return Err(other),
            };
            Ok(PostMetrics {
                reactions: counts.like_count,
                comments: counts.comments_count,
                reshares,
                impressions,
            })
        }
        .instrument(call_span(Network::Instagram, "metrics"))
        .await
    }

    async fn audience_size(&self, access_token: &str) -> Result<Option<i64>, NetworkError> {
        async {
            let account = self.account(access_token, "id,followers_count").await?;
            Ok(account.followers_count)
        }
        .instrument(call_span(Network::Instagram, "audience_size"))
        .await
    }

    /// `content_publishing_limit`: the quota left in the rolling window; when none is
    /// left, `resets_at` is when the oldest counted publish frees its slot.
    async fn publish_budget(
        &self,
        access_token: &str,
        author_id: &str,
    ) -> Result<Option<RateBudget>, NetworkError> {
        self.read_budget(access_token, author_id)
            .instrument(call_span(Network::Instagram, "publish_budget"))
            .await
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::testkit::{Harness, VERIFIER, challenge, start_netsim};
    use chorus_netsim::{Fault, NetsimOptions};

    const IMAGE: &str = "https://cdn.chorus.example/images/launch.jpg";

    fn options() -> NetsimOptions {
        NetsimOptions {
            instagram_container_delay: Duration::from_millis(60),
            ..NetsimOptions::default()
        }
    }

    impl Harness {
        fn instagram(&self, request_timeout: Duration) -> Instagram {
            Instagram::new(self.credentials(request_timeout))
        }

        /// Logs `member_id` in; returns the token and the Instagram account id.
        async fn connect_account(&self, adapter: &Instagram, member_id: &str) -> (String, String) {
            let url = adapter.authorize_url("state-42", &challenge());
            let code = self.consent(&url, member_id).await;
            let tokens = adapter
                .exchange_code(&code, VERIFIER)
                .await
                .expect("code exchange");
            let account = adapter
                .profile(&tokens.access_token)
                .await
                .expect("profile");
            (tokens.access_token, account.id)
        }
    }

    fn post_by(ig_user_id: &str, text: &str, image: Option<&str>) -> PostRequest {
        PostRequest {
            author_id: ig_user_id.to_string(),
            text: text.to_string(),
            link_url: None,
            image_url: image.map(str::to_string),
            image_alt: Some("The launch".to_string()),
            idempotency_key: format!("share-{text}"),
        }
    }

    #[tokio::test]
    async fn login_gives_the_linked_instagram_account_and_its_username() {
        let harness = start_netsim(options()).await;
        let adapter = harness.instagram(Duration::from_secs(5));
        let code = harness
            .consent(&adapter.authorize_url("state-42", &challenge()), "carol")
            .await;
        let tokens = adapter
            .exchange_code(&code, VERIFIER)
            .await
            .expect("exchange");
        assert_eq!(
            (tokens.refresh_token.as_deref(), tokens.access_expires_at),
            (None, None)
        );
        let profile = adapter
            .profile(&tokens.access_token)
            .await
            .expect("profile");
        assert!(profile.id.starts_with("178414"), "{profile:?}");
        assert_eq!(profile.display_name, "carol");
        let audience = adapter
            .audience_size(&tokens.access_token)
            .await
            .expect("followers");
        assert!(
            audience.is_some_and(|followers| followers > 0),
            "{audience:?}"
        );
    }

    #[tokio::test]
    async fn publish_goes_through_the_container_and_creates_exactly_one_media() {
        let harness = start_netsim(options()).await;
        let adapter = harness.instagram(Duration::from_secs(5));
        let (token, ig_user_id) = harness.connect_account(&adapter, "dave").await;
        let post = post_by(&ig_user_id, "Launch day https://chr.us/s/ig1", Some(IMAGE));

        let published = adapter.publish(&token, &post).await.expect("publish");
        assert!(
            published.url.starts_with("https://www.instagram.com/p/"),
            "{published:?}"
        );
        assert!(!published.already_existed);
        let budget = published.budget.expect("content_publishing_limit read");
        assert_eq!((budget.limit, budget.remaining), (50, 49));
        let media = harness.netsim.posts_of("instagram");
        assert_eq!(media.len(), 1);
        assert_eq!(media[0].urn, published.external_id);
        assert_eq!(media[0].commentary, post.text);
        assert_eq!(media[0].author, ig_user_id);

        let response = reqwest::Client::new()
            .post(format!("{}/_netsim/posts/{}/metrics", harness.base_url, published.external_id))
            .json(&serde_json::json!({"reactions": 11, "comments": 4, "reshares": 2, "impressions": 300}))
            .send()
            .await
            .expect("netsim answers");
        assert_eq!(response.status(), reqwest::StatusCode::NO_CONTENT);
        let metrics = adapter
            .metrics(&token, &published.external_id)
            .await
            .expect("metrics");
        assert_eq!(
            metrics,
            PostMetrics {
                reactions: 11,
                comments: 4,
                reshares: 2,
                impressions: 300
            }
        );
    }

    #[tokio::test]
    async fn an_image_is_required_and_the_caption_is_limited_before_any_call() {
        // Nothing listens: a call would be Unavailable, so Invalid proves none was made.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let adapter = Instagram::new(AppCredentials {
            api_base_url: format!("http://{address}/graph"),
            auth_base_url: format!("http://{address}/graph"),
            client_id: "c".to_string(),
            client_secret: "s".to_string(),
            redirect_url: "http://127.0.0.1:9/cb".to_string(),
            api_version: "v21.0".to_string(),
            request_timeout: Duration::from_secs(2),
        });
        let without_image = adapter
            .publish("token", &post_by("178414", "Text only", None))
            .await;
        assert!(
            matches!(without_image, Err(NetworkError::Invalid(_))),
            "{without_image:?}"
        );
        let too_long = adapter
            .publish("token", &post_by("178414", &"x".repeat(2_201), Some(IMAGE)))
            .await;
        assert!(
            matches!(too_long, Err(NetworkError::Invalid(_))),
            "{too_long:?}"
        );
    }

    #[tokio::test]
    async fn a_container_that_ends_in_error_is_invalid() {
        let harness = start_netsim(options()).await;
        let adapter = harness.instagram(Duration::from_secs(5));
        let (token, ig_user_id) = harness.connect_account(&adapter, "erin").await;
        let attempt = adapter
            .publish(
                &token,
                &post_by(&ig_user_id, "A PNG", Some("https://cdn.example/a.png")),
            )
            .await;
        assert!(
            matches!(&attempt, Err(NetworkError::Invalid(message)) if message.contains("JPEG")),
            "{attempt:?}"
        );
        assert!(harness.netsim.posts_of("instagram").is_empty());
    }

    #[tokio::test]
    async fn a_publish_reply_lost_after_accept_is_unknown_and_find_post_reconciles_it() {
        let harness = start_netsim(options()).await;
        let (token, ig_user_id) = harness
            .connect_account(&harness.instagram(Duration::from_secs(5)), "frank")
            .await;
        let adapter = harness.instagram(Duration::from_millis(400));
        harness.netsim.inject_on(
            "instagram",
            Fault::HoldAfterAccept {
                hold_ms: 3_000,
                count: 1,
            },
        );
        let post = post_by(&ig_user_id, "Held https://chr.us/s/held", Some(IMAGE));

        let attempt = adapter.publish(&token, &post).await;
        assert!(
            matches!(attempt, Err(NetworkError::OutcomeUnknown(_))),
            "{attempt:?}"
        );

        // Through the container this process created (PUBLISHED -> the media listing).
        let found = adapter
            .find_post(&token, &post)
            .await
            .expect("reconcile")
            .expect("found");
        let media = harness.netsim.posts_of("instagram");
        assert_eq!(media.len(), 1, "exactly one media");
        assert_eq!(found.external_id, media[0].urn);
        assert!(found.already_existed);

        // And by another process, through the listing alone.
        let restarted = harness.instagram(Duration::from_secs(5));
        let again = restarted
            .find_post(&token, &post)
            .await
            .expect("reconcile")
            .expect("found");
        assert_eq!(again.external_id, media[0].urn);
        let absent = restarted
            .find_post(&token, &post_by(&ig_user_id, "Never posted", Some(IMAGE)))
            .await
            .expect("listing");
        assert_eq!(absent, None);
    }

    #[tokio::test]
    async fn a_transient_error_to_a_publish_is_an_unknown_outcome_and_the_retry_reuses_the_container()
     {
        let harness = start_netsim(options()).await;
        let adapter = harness.instagram(Duration::from_secs(5));
        let (token, ig_user_id) = harness.connect_account(&adapter, "grace").await;
        harness.netsim.inject_on(
            "instagram",
            Fault::Status {
                status: 500,
                count: 1,
            },
        );
        let post = post_by(&ig_user_id, "Retry me", Some(IMAGE));

        let attempt = adapter.publish(&token, &post).await;
        assert!(
            matches!(attempt, Err(NetworkError::OutcomeUnknown(_))),
            "{attempt:?}"
        );
        assert!(harness.netsim.posts_of("instagram").is_empty());
        let container = adapter
            .remembered(&post.idempotency_key)
            .await
            .expect("container kept");

        assert_eq!(
            adapter.find_post(&token, &post).await.expect("status"),
            None
        );
        let published = adapter.publish(&token, &post).await.expect("retry");
        assert_eq!(harness.netsim.posts_of("instagram").len(), 1);
        assert_eq!(adapter.remembered(&post.idempotency_key).await, None);
        assert!(!published.external_id.is_empty() && published.external_id != container);
    }

    #[tokio::test]
    async fn quota_exhaustion_is_rate_limited_and_the_budget_shows_none_left() {
        let harness = start_netsim(NetsimOptions {
            instagram_publish_quota: 2,
            ..options()
        })
        .await;
        let adapter = harness.instagram(Duration::from_secs(5));
        let (token, ig_user_id) = harness.connect_account(&adapter, "heidi").await;
        let before = adapter
            .publish_budget(&token, &ig_user_id)
            .await
            .expect("budget")
            .expect("some");
        assert_eq!((before.limit, before.remaining), (2, 2));

        adapter
            .publish(&token, &post_by(&ig_user_id, "One", Some(IMAGE)))
            .await
            .expect("first");
        let second = adapter
            .publish(&token, &post_by(&ig_user_id, "Two", Some(IMAGE)))
            .await
            .expect("second");
        assert_eq!(second.budget.expect("budget").remaining, 0);

        let budget = adapter
            .publish_budget(&token, &ig_user_id)
            .await
            .expect("budget")
            .expect("some");
        assert_eq!((budget.limit, budget.remaining), (2, 0));
        let a_day = chrono::Utc::now() + TimeDelta::hours(24);
        assert!(
            budget.resets_at > a_day - TimeDelta::minutes(1) && budget.resets_at <= a_day,
            "{budget:?}"
        );

        let refused = adapter
            .publish(&token, &post_by(&ig_user_id, "Three", Some(IMAGE)))
            .await;
        let Err(NetworkError::RateLimited {
            retry_after: Some(wait),
            message,
        }) = refused
        else {
            panic!("expected a rate limit: {refused:?}");
        };
        assert!(message.contains("2207042"), "{message}");
        assert!(
            wait > Duration::from_secs(23 * 3_600) && wait <= Duration::from_secs(24 * 3_600),
            "{wait:?}"
        );
        assert_eq!(harness.netsim.posts_of("instagram").len(), 2);
    }

    #[tokio::test]
    async fn throttling_and_a_revoked_token_map_to_their_classes() {
        let harness = start_netsim(options()).await;
        let adapter = harness.instagram(Duration::from_secs(5));
        let (token, ig_user_id) = harness.connect_account(&adapter, "ivan").await;
        harness.netsim.inject_on(
            "instagram",
            Fault::Status {
                status: 429,
                count: 1,
            },
        );
        let throttled = adapter
            .publish(&token, &post_by(&ig_user_id, "Busy", Some(IMAGE)))
            .await;
        assert!(
            matches!(throttled, Err(NetworkError::RateLimited { retry_after: Some(wait), .. }) if wait == Duration::from_secs(300)),
            "{throttled:?}"
        );

        harness.netsim.expire_tokens_of("ivan");
        let revoked = adapter
            .publish(&token, &post_by(&ig_user_id, "Later", Some(IMAGE)))
            .await;
        assert!(
            matches!(revoked, Err(NetworkError::Unauthorized(_))),
            "{revoked:?}"
        );
        assert!(harness.netsim.posts_of("instagram").is_empty());
    }
}
