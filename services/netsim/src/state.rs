//! The simulated network's memory: authorisation codes, tokens, posts and queued faults.
//!
//! Every method works under one std mutex and returns before any `.await`, so handlers
//! never hold the lock across a suspension point and a dropped request never leaves half
//! a change behind.

use crate::{Fault, NetsimOptions, SimPost};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Life of an authorisation code.
const CODE_LIFETIME: TimeDelta = TimeDelta::minutes(10);
/// Life of a refresh token, counted from the member's first consent to the application.
const REFRESH_LIFETIME: TimeDelta = TimeDelta::days(365);
/// Posts older than this no longer gain simulated engagement.
const ENGAGEMENT_HORIZON: TimeDelta = TimeDelta::days(7);
/// Impressions each simulated reaction stands for.
const IMPRESSIONS_PER_REACTION: i64 = 12;
/// First share number handed out, in the range of real LinkedIn share ids.
const FIRST_SHARE_NUMBER: u64 = 7_141_000_000_000_000_000;

pub(crate) const ACCESS_TOKEN_PREFIX: &str = "AQV";
pub(crate) const REFRESH_TOKEN_PREFIX: &str = "AQX";

pub(crate) struct SimState {
    pub(crate) options: NetsimOptions,
    pub(crate) bluesky: crate::bluesky::BlueskyState,
    inner: Mutex<Inner>,
    /// X's own memory (rotating refresh tokens, rendered tweets, rate windows).
    pub(crate) x: crate::x::XState,
    /// Mastodon's own memory (idempotency keys, rate windows, revoked tokens).
    pub(crate) mastodon: crate::mastodon::MastodonState,
    /// Graph API (Facebook Pages, Instagram) logins, containers and counters.
    pub(crate) meta: crate::meta::MetaState,
    /// Requests and refusals for a rate limit, per network (`GET /_netsim/stats`).
    stats: Mutex<BTreeMap<&'static str, crate::NetworkStats>>,
    /// LinkedIn images: URN -> owner and the bytes once uploaded.
    pub(crate) linkedin_images: Mutex<HashMap<String, crate::linkedin::Image>>,
}

#[derive(Default)]
struct Inner {
    codes: HashMap<String, AuthorizationCode>,
    access_tokens: HashMap<String, AccessGrant>,
    refresh_tokens: HashMap<String, RefreshGrant>,
    /// First consent of a (member, client id) pair: refresh tokens expire a year after it.
    consents: HashMap<(String, String), DateTime<Utc>>,
    posts: Vec<SimPost>,
    post_positions: HashMap<String, usize>,
    /// Positions of each author's posts, oldest first (the quota and duplicate checks look
    /// at one member's posts, not at every post).
    author_positions: HashMap<String, Vec<usize>>,
    /// Queued faults per network (`linkedin`, `x`, `facebook`, ...).
    faults: HashMap<String, VecDeque<Fault>>,
    shares_created: u64,
}

struct AuthorizationCode {
    client_id: String,
    redirect_uri: String,
    member_id: String,
    code_challenge: Option<String>,
    issued_at: DateTime<Utc>,
}

struct AccessGrant {
    member_id: String,
    expires_at: DateTime<Utc>,
}

struct RefreshGrant {
    member_id: String,
    client_id: String,
    expires_at: DateTime<Utc>,
}

/// What the authorize page was asked for.
pub(crate) struct Consent {
    pub client_id: String,
    pub redirect_uri: String,
    pub member_id: String,
    pub code_challenge: Option<String>,
}

/// The form of an authorization_code grant, already checked for presence.
pub(crate) struct CodeExchange<'a> {
    pub code: &'a str,
    pub redirect_uri: &'a str,
    pub client_id: &'a str,
    pub code_verifier: Option<&'a str>,
}

/// Tokens handed out by the token endpoint.
pub(crate) struct IssuedTokens {
    pub access_token: String,
    pub access_expires_in_secs: i64,
    pub refresh_token: String,
    pub refresh_expires_in_secs: i64,
}

/// Why a grant was refused (the `error_description` of an `invalid_grant`).
#[derive(Debug)]
pub(crate) struct GrantRefused(pub &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenRejection {
    Unknown,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PostRefusal {
    DailyLimitReached,
    Duplicate { existing_urn: String },
}

/// The effect of the fault at the front of the queue on one POST /rest/posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultAction {
    AnswerStatus(u16),
    DelayBefore(Duration),
    HoldAfter(Duration),
    StatusAfter(u16),
}

fn to_time_delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn random_token(prefix: &str) -> String {
    format!("{prefix}{}{}", random_hex(), random_hex())
}

pub(crate) fn random_member_id() -> String {
    format!("m_{}", &random_hex()[..8])
}

pub(crate) fn person_urn(member_id: &str) -> String {
    format!("urn:li:person:{member_id}")
}

/// PKCE S256: base64url-no-pad(sha256(verifier)).
fn pkce_challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl SimState {
    pub(crate) fn new(options: NetsimOptions) -> SimState {
        SimState {
            options,
            bluesky: crate::bluesky::BlueskyState::default(),
            inner: Mutex::new(Inner::default()),
            x: crate::x::XState::default(),
            mastodon: crate::mastodon::MastodonState::default(),
            meta: crate::meta::MetaState::default(),
            stats: Mutex::default(),
            linkedin_images: Mutex::default(),
        }
    }

    /// Counts one answered request of `network` (and its 429, if it was one).
    pub(crate) fn count_answer(&self, network: &'static str, rate_limited: bool) {
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        let counts = stats.entry(network).or_default();
        counts.requests += 1;
        counts.rate_limited += u64::from(rate_limited);
    }

    /// Counts a post the network absorbed as a copy of an earlier one.
    pub(crate) fn count_duplicate(&self, network: &'static str) {
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        stats.entry(network).or_default().duplicates_refused += 1;
    }

    pub(crate) fn stats(&self) -> crate::Stats {
        let stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        crate::Stats {
            networks: stats
                .iter()
                .map(|(network, counts)| (network.to_string(), *counts))
                .collect(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in another handler must not take the whole simulator down with it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_active_version(&self, version: &str) -> bool {
        self.options
            .active_versions
            .iter()
            .any(|active| active == version)
    }

    /// Records an auto-granted consent and returns its single-use code.
    pub(crate) fn grant_code(&self, consent: Consent) -> String {
        let now = Utc::now();
        let code = random_token("AQT");
        let mut inner = self.lock();
        inner
            .codes
            .retain(|_, pending| now - pending.issued_at < CODE_LIFETIME);
        inner.codes.insert(
            code.clone(),
            AuthorizationCode {
                client_id: consent.client_id,
                redirect_uri: consent.redirect_uri,
                member_id: consent.member_id,
                code_challenge: consent.code_challenge,
                issued_at: now,
            },
        );
        code
    }

    /// Spends an authorisation code (client, redirect URI and PKCE checked) and returns
    /// the member who consented; the caller issues its network's tokens.
    pub(crate) fn redeem_code(&self, exchange: CodeExchange<'_>) -> Result<String, GrantRefused> {
        let mut inner = self.lock();
        Self::redeem_code_in(&mut inner, &exchange, Utc::now()).map(|pending| pending.member_id)
    }

    fn redeem_code_in(
        inner: &mut Inner,
        exchange: &CodeExchange<'_>,
        now: DateTime<Utc>,
    ) -> Result<AuthorizationCode, GrantRefused> {
        // Any attempt spends the code, as with real authorisation servers.
        let pending = inner
            .codes
            .remove(exchange.code)
            .ok_or(GrantRefused("authorization code not found or already used"))?;
        if now - pending.issued_at >= CODE_LIFETIME {
            return Err(GrantRefused("authorization code expired"));
        }
        if pending.client_id != exchange.client_id {
            return Err(GrantRefused(
                "client_id does not match the authorization code",
            ));
        }
        if pending.redirect_uri != exchange.redirect_uri {
            return Err(GrantRefused(
                "redirect_uri does not match the authorization request",
            ));
        }
        if let Some(challenge) = &pending.code_challenge {
            let verifier = exchange
                .code_verifier
                .ok_or(GrantRefused("code_verifier is required"))?;
            if &pkce_challenge_of(verifier) != challenge {
                return Err(GrantRefused(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        Ok(pending)
    }

    /// Mints an access token of `lifetime` for the member (networks whose token lifetime
    /// differs from LinkedIn's); `member_of` and `expire_tokens_of` apply to it.
    pub(crate) fn issue_access_token(
        &self,
        member_id: &str,
        prefix: &str,
        lifetime: Duration,
    ) -> (String, i64) {
        let lifetime = to_time_delta(lifetime);
        let access_token = random_token(prefix);
        self.lock().access_tokens.insert(
            access_token.clone(),
            AccessGrant {
                member_id: member_id.to_string(),
                expires_at: Utc::now() + lifetime,
            },
        );
        (access_token, lifetime.num_seconds())
    }

    pub(crate) fn exchange_code(
        &self,
        exchange: CodeExchange<'_>,
    ) -> Result<IssuedTokens, GrantRefused> {
        let now = Utc::now();
        let mut inner = self.lock();
        let pending = Self::redeem_code_in(&mut inner, &exchange, now)?;

        let consent_key = (pending.member_id.clone(), pending.client_id.clone());
        let first_consent = match inner.consents.get(&consent_key) {
            Some(consented_at) if now - *consented_at < REFRESH_LIFETIME => *consented_at,
            _ => now,
        };
        inner.consents.insert(consent_key, first_consent);

        let refresh_token = random_token(REFRESH_TOKEN_PREFIX);
        let refresh_expires_at = first_consent + REFRESH_LIFETIME;
        inner.refresh_tokens.insert(
            refresh_token.clone(),
            RefreshGrant {
                member_id: pending.member_id.clone(),
                client_id: pending.client_id,
                expires_at: refresh_expires_at,
            },
        );
        let (access_token, access_expires_in_secs) =
            self.mint_access_token(&mut inner, &pending.member_id, now);
        Ok(IssuedTokens {
            access_token,
            access_expires_in_secs,
            refresh_token,
            refresh_expires_in_secs: (refresh_expires_at - now).num_seconds(),
        })
    }

    /// Mints a new access token; the refresh token and its expiry stay as they were.
    pub(crate) fn refresh(
        &self,
        refresh_token: &str,
        client_id: &str,
    ) -> Result<IssuedTokens, GrantRefused> {
        let now = Utc::now();
        let mut inner = self.lock();
        let grant = inner
            .refresh_tokens
            .get(refresh_token)
            .ok_or(GrantRefused("refresh token not found"))?;
        if grant.client_id != client_id {
            return Err(GrantRefused("client_id does not match the refresh token"));
        }
        if grant.expires_at <= now {
            return Err(GrantRefused("refresh token expired"));
        }
        let member_id = grant.member_id.clone();
        let refresh_expires_in_secs = (grant.expires_at - now).num_seconds();
        let (access_token, access_expires_in_secs) =
            self.mint_access_token(&mut inner, &member_id, now);
        Ok(IssuedTokens {
            access_token,
            access_expires_in_secs,
            refresh_token: refresh_token.to_string(),
            refresh_expires_in_secs,
        })
    }

    fn mint_access_token(
        &self,
        inner: &mut Inner,
        member_id: &str,
        now: DateTime<Utc>,
    ) -> (String, i64) {
        let lifetime = to_time_delta(self.options.access_token_ttl);
        let access_token = random_token(ACCESS_TOKEN_PREFIX);
        inner.access_tokens.insert(
            access_token.clone(),
            AccessGrant {
                member_id: member_id.to_string(),
                expires_at: now + lifetime,
            },
        );
        (access_token, lifetime.num_seconds())
    }

    /// The member behind a bearer token.
    pub(crate) fn member_of(&self, access_token: &str) -> Result<String, TokenRejection> {
        let inner = self.lock();
        let grant = inner
            .access_tokens
            .get(access_token)
            .ok_or(TokenRejection::Unknown)?;
        if grant.expires_at <= Utc::now() {
            return Err(TokenRejection::Expired);
        }
        Ok(grant.member_id.clone())
    }

    pub(crate) fn expire_tokens_of(&self, member_id: &str) -> usize {
        let expired_at = Utc::now() - TimeDelta::seconds(1);
        let mut inner = self.lock();
        let mut expired = 0;
        for grant in inner
            .access_tokens
            .values_mut()
            .filter(|grant| grant.member_id == member_id)
        {
            grant.expires_at = grant.expires_at.min(expired_at);
            expired += 1;
        }
        drop(inner);
        // Graph tokens die on a "password change" (code 190, subcode 460).
        expired + self.meta.revoke_tokens_of(member_id) + self.bluesky.expire_tokens_of(member_id)
    }

    pub(crate) fn push_fault(&self, network: &str, fault: Fault) {
        self.lock()
            .faults
            .entry(network.to_string())
            .or_default()
            .push_back(fault);
    }

    /// Spends one use of the fault at the front of `network`'s queue (its post endpoint).
    pub(crate) fn take_fault(&self, network: &str) -> Option<FaultAction> {
        let mut inner = self.lock();
        let queue = inner.faults.get_mut(network)?;
        let front = queue.front_mut()?;
        let (action, remaining) = match front {
            Fault::Status { status, count } => (FaultAction::AnswerStatus(*status), count),
            Fault::DelayMs { delay_ms, count } => (
                FaultAction::DelayBefore(Duration::from_millis(*delay_ms)),
                count,
            ),
            Fault::HoldAfterAccept { hold_ms, count } => (
                FaultAction::HoldAfter(Duration::from_millis(*hold_ms)),
                count,
            ),
            Fault::StatusAfterCreate { status, count } => {
                (FaultAction::StatusAfter(*status), count)
            }
        };
        // A fault injected with count 0 still fires once: injecting it says it is wanted.
        *remaining = remaining.saturating_sub(1);
        if *remaining == 0 {
            queue.pop_front();
        }
        Some(action)
    }

    /// Creates a post after the member's daily quota and the duplicate rule.
    /// Records the image a post carries (`SimPost::media_url`).
    pub(crate) fn attach_media(&self, urn: &str, media: &str) {
        let mut inner = self.lock();
        if let Some(position) = inner.post_positions.get(urn).copied() {
            inner.posts[position].media_url = Some(media.to_string());
        }
    }

    pub(crate) fn create_post(
        &self,
        member_id: &str,
        commentary: &str,
    ) -> Result<SimPost, PostRefusal> {
        let now = Utc::now();
        let author = person_urn(member_id);
        let duplicate_horizon = now - to_time_delta(self.options.duplicate_window);
        let today = now.date_naive();
        let mut inner = self.lock();

        let own: &[usize] = inner
            .author_positions
            .get(&author)
            .map_or(&[], Vec::as_slice);
        // LinkedIn throttles at the edge, so the quota answers before content checks.
        let posted_today = own
            .iter()
            .filter(|position| inner.posts[**position].created_at.date_naive() == today)
            .count();
        if posted_today >= self.options.member_daily_posts as usize {
            return Err(PostRefusal::DailyLimitReached);
        }
        let duplicate = own
            .iter()
            .rev()
            .map(|position| &inner.posts[*position])
            .find(|post| post.commentary == commentary && post.created_at > duplicate_horizon);
        if let Some(existing) = duplicate {
            return Err(PostRefusal::Duplicate {
                existing_urn: existing.urn.clone(),
            });
        }

        let share_number = FIRST_SHARE_NUMBER + inner.shares_created;
        inner.shares_created += 1;
        let post = SimPost {
            network: "linkedin".to_string(),
            urn: format!("urn:li:share:{share_number}"),
            author,
            commentary: commentary.to_string(),
            created_at: now,
            reactions: 0,
            comments: 0,
            reshares: 0,
            impressions: 0,
            media_url: None,
        };
        let position = inner.posts.len();
        inner.post_positions.insert(post.urn.clone(), position);
        inner
            .author_positions
            .entry(post.author.clone())
            .or_default()
            .push(position);
        inner.posts.push(post.clone());
        Ok(post)
    }

    /// Stores a post of any network (its `urn` is the network's id of the post), so that
    /// listing, engagement and metrics work the same for every network.
    #[allow(dead_code)]
    pub(crate) fn insert_post(&self, post: SimPost) {
        let mut inner = self.lock();
        let position = inner.posts.len();
        inner.post_positions.insert(post.urn.clone(), position);
        inner
            .author_positions
            .entry(post.author.clone())
            .or_default()
            .push(position);
        inner.posts.push(post);
    }

    /// Posts of one network, in creation order.
    pub(crate) fn posts_of(&self, network: &str) -> Vec<SimPost> {
        self.lock()
            .posts
            .iter()
            .filter(|post| post.network == network)
            .cloned()
            .collect()
    }

    pub(crate) fn post(&self, urn: &str) -> Option<SimPost> {
        let inner = self.lock();
        inner
            .post_positions
            .get(urn)
            .map(|position| inner.posts[*position].clone())
    }

    pub(crate) fn posts(&self) -> Vec<SimPost> {
        self.lock().posts.clone()
    }

    pub(crate) fn add_engagement(&self, urn: &str, reactions: i64, comments: i64) -> bool {
        let mut inner = self.lock();
        let Some(position) = inner.post_positions.get(urn).copied() else {
            return false;
        };
        let post = &mut inner.posts[position];
        post.reactions += reactions;
        post.comments += comments;
        post.impressions += reactions.max(0) * IMPRESSIONS_PER_REACTION;
        true
    }

    /// Adds exact amounts to a post's counters (nothing derived); false when no such post.
    pub(crate) fn add_metrics(&self, urn: &str, metrics: &crate::MetricsDelta) -> bool {
        let mut inner = self.lock();
        let Some(position) = inner.post_positions.get(urn).copied() else {
            return false;
        };
        let post = &mut inner.posts[position];
        post.reactions += metrics.reactions;
        post.comments += metrics.comments;
        post.reshares += metrics.reshares;
        post.impressions += metrics.impressions;
        true
    }

    /// One engagement tick: every post younger than a week gains reactions and impressions.
    pub(crate) fn tick_engagement(&self) -> usize {
        let reactions = i64::from(self.options.reactions_per_tick);
        let horizon = Utc::now() - ENGAGEMENT_HORIZON;
        let mut inner = self.lock();
        let mut touched = 0;
        for post in inner
            .posts
            .iter_mut()
            .filter(|post| post.created_at > horizon)
        {
            post.reactions += reactions;
            // Reach grows even when nobody reacts.
            post.impressions += reactions * IMPRESSIONS_PER_REACTION + 1;
            touched += 1;
        }
        touched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_matches_rfc_7636_example() {
        assert_eq!(
            pkce_challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn fault_counts_are_spent_in_order() {
        let state = SimState::new(NetsimOptions::default());
        state.push_fault(
            "linkedin",
            Fault::Status {
                status: 503,
                count: 2,
            },
        );
        state.push_fault(
            "linkedin",
            Fault::DelayMs {
                delay_ms: 5,
                count: 0,
            },
        );
        assert_eq!(state.take_fault("x"), None);
        assert_eq!(
            state.take_fault("linkedin"),
            Some(FaultAction::AnswerStatus(503))
        );
        assert_eq!(
            state.take_fault("linkedin"),
            Some(FaultAction::AnswerStatus(503))
        );
        assert_eq!(
            state.take_fault("linkedin"),
            Some(FaultAction::DelayBefore(Duration::from_millis(5)))
        );
        assert_eq!(state.take_fault("linkedin"), None);
    }

    #[test]
    fn duplicate_window_forgets_old_posts() {
        let options = NetsimOptions {
            duplicate_window: Duration::ZERO,
            ..NetsimOptions::default()
        };
        let state = SimState::new(options);
        let first = state.create_post("alice", "hello").expect("first post");
        let second = state
            .create_post("alice", "hello")
            .expect("outside the window");
        assert_ne!(first.urn, second.urn);
    }
}
