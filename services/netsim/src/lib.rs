//! netsim: a local simulator of the social networks Chorus publishes to.
//!
//! It speaks each network's real wire format (paths, bodies, status codes, odd headers)
//! under an overridable base URL, with token lifetimes, quotas, duplicate detection and
//! injectable faults, so the adapters and the publisher are tested against behaviour, not
//! mocks (see `NETWORKS.md`).
//!
//! LinkedIn answers at the root; the other networks under a prefix each, their real hosts
//! being distinct: `/x` (api.x.com), `/graph` (graph.facebook.com, Facebook Pages and
//! Instagram), `/mastodon` (an instance), `/bluesky` (a PDS). Test-control routes live under
//! `/_netsim`; everything else mirrors a network.

mod bluesky;
mod control;
mod linkedin;
mod mastodon;
mod meta;
mod state;
#[cfg(test)]
mod tests;
mod x;

pub use bluesky::BlueskyOptions;
pub use mastodon::MastodonOptions;
use state::SimState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
pub use x::XOptions;

/// LinkedIn-Version values answered by default; anything else is a retired version (426).
pub const DEFAULT_ACTIVE_VERSIONS: &[&str] =
    &["202601", "202602", "202603", "202604", "202605", "202606"];

/// Behaviour knobs of the simulator; shrink the lifetimes and limits in tests.
#[derive(Debug, Clone)]
pub struct NetsimOptions {
    /// Lifetime of access tokens (LinkedIn: 60 days).
    pub access_token_ttl: Duration,
    /// Posts a member may create per UTC day before a bare 429.
    pub member_daily_posts: u32,
    /// Interval of simulated engagement; `None` (or zero) disables it.
    pub engagement_tick: Option<Duration>,
    /// Reactions every young post gains per engagement tick.
    pub reactions_per_tick: u32,
    /// Active `LinkedIn-Version` values; remove one to stage a sunset.
    pub active_versions: Vec<String>,
    /// How long an identical commentary by the same author is refused as a duplicate.
    pub duplicate_window: Duration,
    /// X: token lifetime and tweet quotas.
    pub x: XOptions,
    /// Mastodon: character limit, rate windows and idempotency memory.
    pub mastodon: MastodonOptions,
    /// Graph calls a Page token may make per rolling 24 h (Business Use Case limit:
    /// 4,800 x engaged users; netsim counts one engaged user) before code 32.
    pub graph_page_calls_per_day: u32,
    /// Instagram publishes per account per rolling 24 h (`content_publishing_limit`).
    pub instagram_publish_quota: u32,
    /// How long an Instagram container stays IN_PROGRESS before FINISHED (or ERROR).
    pub instagram_container_delay: Duration,
    /// How long a new post stays out of the Graph listings (a Page's `published_posts`, an
    /// Instagram account's `media`): Meta's listings are eventually consistent, so a
    /// reconciliation right after a publish can miss it (0: listed at once).
    pub listing_lag: Duration,
    /// Bluesky's token lifetimes and rate limits.
    pub bluesky: BlueskyOptions,
}

impl Default for NetsimOptions {
    fn default() -> NetsimOptions {
        NetsimOptions {
            access_token_ttl: Duration::from_secs(60 * 86_400),
            // The old Share-on-LinkedIn table's figure (unconfirmed for the Posts API).
            member_daily_posts: 150,
            engagement_tick: None,
            reactions_per_tick: 1,
            active_versions: DEFAULT_ACTIVE_VERSIONS
                .iter()
                .map(|version| version.to_string())
                .collect(),
            duplicate_window: Duration::from_secs(48 * 3_600),
            x: XOptions::default(),
            mastodon: MastodonOptions::default(),
            graph_page_calls_per_day: 4_800,
            instagram_publish_quota: 50,
            instagram_container_delay: Duration::from_millis(1_500),
            listing_lag: Duration::ZERO,
            bluesky: BlueskyOptions::default(),
        }
    }
}

/// What netsim answered one network (`GET /_netsim/stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct NetworkStats {
    /// Requests answered, whatever their status.
    pub requests: u64,
    /// Requests answered 429 Too Many Requests.
    pub rate_limited: u64,
    /// Posts the network absorbed as copies of an earlier one: refused as duplicates
    /// (LinkedIn, X, Facebook), an `Idempotency-Key` repeated (Mastodon) or a record key
    /// taken (Bluesky). Counted under the post's network (`facebook`, not `graph`). Each is a
    /// second post on a network that would not have noticed: the target is zero.
    #[serde(default)]
    pub duplicates_refused: u64,
}

/// Counters of every network netsim answered, by network (`linkedin`, `x`, `graph` for
/// Facebook Pages and Instagram, `mastodon`, `bluesky`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Stats {
    pub networks: std::collections::BTreeMap<String, NetworkStats>,
}

impl Stats {
    /// The counters of one network (zero when it was never called).
    pub fn of(&self, network: &str) -> NetworkStats {
        self.networks.get(network).copied().unwrap_or_default()
    }
}

/// Amounts to add to a post's counters.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize, serde::Serialize)]
pub struct MetricsDelta {
    #[serde(default)]
    pub reactions: i64,
    #[serde(default)]
    pub comments: i64,
    #[serde(default)]
    pub reshares: i64,
    #[serde(default)]
    pub impressions: i64,
}

/// Size of a member's network (first-degree connections), stable for a member id.
pub fn network_size(member_id: &str) -> i64 {
    let hash = member_id.bytes().fold(17u64, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(u64::from(byte))
    });
    200 + (hash % 1800) as i64
}

/// A post as netsim holds it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SimPost {
    /// `linkedin`, `x`, `facebook`, `instagram`, `mastodon` or `bluesky`.
    pub network: String,
    /// The network's id of the post (LinkedIn URN, tweet id, Graph id, status id, at-uri).
    pub urn: String,
    /// `urn:li:person:<member id>`.
    pub author: String,
    pub commentary: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub reactions: i64,
    pub comments: i64,
    pub reshares: i64,
    pub impressions: i64,
    /// The image posted with it (Instagram's container `image_url`).
    pub media_url: Option<String>,
}

/// A fault for the next POST /rest/posts requests, consumed in the order injected,
/// whatever the outcome of the request that consumes it. A `count` of 0 fires once.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer `count` posts with `status` and a LinkedIn-like body; nothing is created.
    Status { status: u16, count: u32 },
    /// Wait `delay_ms` before handling each of `count` posts (a slow network).
    DelayMs { delay_ms: u64, count: u32 },
    /// Handle the post (creating it), then wait `hold_ms` before replying: a reply lost
    /// after the network accepted, once the client has timed out.
    HoldAfterAccept { hold_ms: u64, count: u32 },
    /// Create the post, then answer `status` (a 5xx): the network failed after its write,
    /// as LinkedIn, X and Meta do; the client cannot tell it from a refusal by the status.
    StatusAfterCreate { status: u16, count: u32 },
}

/// The simulator; cheap to clone, every clone shares the same state.
#[derive(Clone)]
pub struct Netsim {
    state: Arc<SimState>,
}

impl Netsim {
    pub fn new(options: NetsimOptions) -> Netsim {
        Netsim {
            state: Arc::new(SimState::new(options)),
        }
    }

    /// Every route: the networks' and the `/_netsim` test controls.
    pub fn router(&self) -> axum::Router {
        linkedin::routes()
            .nest("/x", x::routes())
            .nest("/graph", meta::routes())
            .nest("/mastodon", mastodon::routes())
            .nest("/bluesky", bluesky::routes())
            .merge(control::routes())
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&self.state),
                control::count_answers,
            ))
            .with_state(Arc::clone(&self.state))
    }

    /// Requests answered and refusals for a rate limit (429) per network so far.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// Binds `listen` (port 0 picks a free port), serves until `shutdown` is cancelled
    /// and runs the engagement ticker; returns the bound address.
    pub async fn serve(
        &self,
        listen: &str,
        shutdown: CancellationToken,
    ) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let router = self.router();
        let server_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let server = axum::serve(listener, router)
                .with_graceful_shutdown(server_shutdown.cancelled_owned());
            if let Err(error) = server.await {
                tracing::error!(error = %error, "netsim server stopped with an error");
            }
        });
        if let Some(tick) = self
            .state
            .options
            .engagement_tick
            .filter(|tick| !tick.is_zero())
        {
            tokio::spawn(run_engagement_ticker(
                Arc::clone(&self.state),
                tick,
                shutdown,
            ));
        }
        tracing::info!(address = %address, "netsim listening");
        Ok(address)
    }

    /// Every post ever created, in creation order.
    pub fn posts(&self) -> Vec<SimPost> {
        self.state.posts()
    }

    /// Queues a fault for the next POST /rest/posts.
    pub fn inject(&self, fault: Fault) {
        self.inject_on("linkedin", fault);
    }

    /// Queues a fault for the next post request of `network` (LinkedIn `/rest/posts`, X
    /// `/2/tweets`, Graph `/feed` and `/media_publish`, Mastodon `/statuses`, Bluesky
    /// `createRecord`).
    pub fn inject_on(&self, network: &str, fault: Fault) {
        tracing::info!(fault = ?fault, network, "netsim fault injected");
        self.state.push_fault(network, fault);
    }

    /// Posts of one network, in creation order.
    pub fn posts_of(&self, network: &str) -> Vec<SimPost> {
        self.state.posts_of(network)
    }

    /// Adds engagement to a post; false when no post has that URN.
    pub fn add_reactions(&self, urn: &str, reactions: i64, comments: i64) -> bool {
        self.state.add_engagement(urn, reactions, comments)
    }

    /// Adds exact amounts to a post's reactions, comments, reshares and impressions.
    pub fn add_metrics(&self, urn: &str, metrics: MetricsDelta) -> bool {
        let added = self.state.add_metrics(urn, &metrics);
        if added {
            crate::meta::post_changed(
                &self.state,
                urn,
                metrics.reactions,
                metrics.comments,
                metrics.reshares,
            );
        }
        added
    }

    /// Expires every access token of the member (its refresh tokens stay valid).
    /// The bytes of an image uploaded to LinkedIn's Images API.
    pub fn linkedin_image(&self, urn: &str) -> Option<Vec<u8>> {
        self.state.linkedin_image(urn)
    }

    /// Makes the member's access tokens invalid now; returns how many there were.
    pub fn expire_tokens_of(&self, member_id: &str) -> usize {
        let expired = self.state.expire_tokens_of(member_id);
        tracing::info!(member_id, expired, "netsim access tokens expired");
        expired
    }
}

async fn run_engagement_ticker(state: Arc<SimState>, tick: Duration, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // The first tick completes at once; engagement starts one period after start.
    interval.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = interval.tick() => {
                let touched = state.tick_engagement();
                tracing::debug!(posts = touched, "netsim engagement tick");
            }
        }
    }
}
