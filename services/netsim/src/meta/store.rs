//! The Graph API's own memory: Facebook Login codes and tokens (short-lived user token,
//! long-lived user token, Page token), the Pages and Instagram accounts of each member,
//! Instagram containers and publishes, and the call counters behind the usage headers.
//!
//! Posts and media themselves live in the shared post store (`SimState::insert_post`).
//! Like `SimState`, every method works under one std mutex and never awaits.

use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Life of an authorisation code.
const CODE_LIFETIME: TimeDelta = TimeDelta::minutes(10);
/// Life of the short-lived user token the code exchange gives ("hours").
pub(crate) const SHORT_USER_TOKEN_LIFETIME: TimeDelta = TimeDelta::hours(2);
/// An unpublished container expires after a day (unconfirmed figure, NETWORKS.md).
pub(crate) const CONTAINER_LIFETIME: TimeDelta = TimeDelta::hours(24);
/// First post number of a Page post (`{page-id}_{post-id}`), in the range of real ids.
const FIRST_OBJECT_NUMBER: u64 = 122_100_000_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    ShortUser,
    LongUser,
    /// A Page token; it expires only when the user token it came from did.
    Page {
        page_id: String,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub member_id: String,
    pub client_id: String,
    pub kind: TokenKind,
    pub expires_at: Option<DateTime<Utc>>,
    /// Set by a "password change" (`expire_tokens_of`): Graph answers 190/460.
    pub revoked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    Unknown,
    Expired,
    Revoked,
}

struct PendingCode {
    client_id: String,
    redirect_uri: String,
    member_id: String,
    code_challenge: Option<String>,
    issued_at: DateTime<Utc>,
}

/// Why the code exchange was refused: Graph's subcode and message.
#[derive(Debug)]
pub(crate) struct CodeRefused {
    pub subcode: i64,
    pub message: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContainerStatus {
    InProgress,
    Finished,
    Published,
    Error,
    Expired,
}

impl ContainerStatus {
    pub(crate) fn code(self) -> &'static str {
        match self {
            ContainerStatus::InProgress => "IN_PROGRESS",
            ContainerStatus::Finished => "FINISHED",
            ContainerStatus::Published => "PUBLISHED",
            ContainerStatus::Error => "ERROR",
            ContainerStatus::Expired => "EXPIRED",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Container {
    pub id: String,
    pub ig_user_id: String,
    pub caption: String,
    pub image_url: String,
    pub created_at: DateTime<Utc>,
    pub ready_at: DateTime<Utc>,
    /// Why processing fails (non-JPEG image), if it does.
    pub failure: Option<String>,
    pub media_id: Option<String>,
}

impl Container {
    pub(crate) fn status(&self, now: DateTime<Utc>) -> ContainerStatus {
        if self.media_id.is_some() {
            ContainerStatus::Published
        } else if now - self.created_at >= CONTAINER_LIFETIME {
            ContainerStatus::Expired
        } else if now < self.ready_at {
            ContainerStatus::InProgress
        } else if self.failure.is_some() {
            ContainerStatus::Error
        } else {
            ContainerStatus::Finished
        }
    }
}

/// Calls counted over a rolling window, for the usage headers and throttling.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UsageReading {
    pub calls: u32,
    pub limit: u32,
    /// Until the oldest counted call leaves the window, when the limit is reached.
    pub regain_in: Option<TimeDelta>,
}

impl UsageReading {
    pub(crate) fn percent(&self) -> u32 {
        if self.limit == 0 {
            return 100;
        }
        (u64::from(self.calls) * 100 / u64::from(self.limit)).min(100) as u32
    }

    /// Graph's `estimated_time_to_regain_access`, in whole minutes (rounded up).
    pub(crate) fn regain_minutes(&self) -> i64 {
        self.regain_in
            .map(|wait| (wait.num_seconds() + 59) / 60)
            .unwrap_or(0)
    }
}

#[derive(Default)]
struct Inner {
    codes: HashMap<String, PendingCode>,
    tokens: HashMap<String, Grant>,
    /// Page id -> member administering it.
    pages: HashMap<String, String>,
    /// Instagram professional account id -> member.
    ig_accounts: HashMap<String, String>,
    containers: HashMap<String, Container>,
    /// Instagram media id -> container it was published from.
    media: HashMap<String, String>,
    /// Publish times per Instagram account (the rolling 24 h quota).
    publishes: HashMap<String, VecDeque<DateTime<Utc>>>,
    /// Call times per counter key (`page:<id>`, `app:<client id>`).
    calls: HashMap<String, VecDeque<DateTime<Utc>>>,
    objects_created: u64,
}

#[derive(Default)]
pub(crate) struct MetaState {
    inner: Mutex<Inner>,
    /// The app's Webhooks subscription to Page feed changes.
    pub(crate) subscriptions: super::Subscriptions,
}

fn stable_hash(seed: u64, text: &str) -> u64 {
    text.bytes().fold(seed, |hash, byte| {
        hash.wrapping_mul(1_099_511_628_211)
            .wrapping_add(u64::from(byte))
    })
}

/// The Facebook user id of a member (app-scoped ids are numeric).
pub(crate) fn user_id_of(member_id: &str) -> String {
    format!("10{:013}", stable_hash(7, member_id) % 10_000_000_000_000)
}

/// The id of the Page a member administers (one per member in netsim).
pub(crate) fn page_id_of(member_id: &str) -> String {
    format!("61{:013}", stable_hash(13, member_id) % 10_000_000_000_000)
}

/// The id of the Instagram professional account linked to the member's Page.
pub(crate) fn ig_user_id_of(member_id: &str) -> String {
    format!("178414{:011}", stable_hash(29, member_id) % 100_000_000_000)
}

fn random_token() -> String {
    format!(
        "EAA{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn prune(times: &mut VecDeque<DateTime<Utc>>, horizon: DateTime<Utc>) {
    while times.front().is_some_and(|time| *time <= horizon) {
        times.pop_front();
    }
}

impl MetaState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a consent (and the member's Page and Instagram account); returns the code.
    pub(crate) fn grant_code(
        &self,
        client_id: &str,
        redirect_uri: &str,
        member_id: &str,
        code_challenge: Option<String>,
    ) -> String {
        let now = Utc::now();
        let code = format!("AQ{}", uuid::Uuid::new_v4().simple());
        let mut inner = self.lock();
        inner
            .codes
            .retain(|_, pending| now - pending.issued_at < CODE_LIFETIME);
        inner.codes.insert(
            code.clone(),
            PendingCode {
                client_id: client_id.to_string(),
                redirect_uri: redirect_uri.to_string(),
                member_id: member_id.to_string(),
                code_challenge,
                issued_at: now,
            },
        );
        inner
            .pages
            .insert(page_id_of(member_id), member_id.to_string());
        inner
            .ig_accounts
            .insert(ig_user_id_of(member_id), member_id.to_string());
        code
    }

    /// Spends the code (any attempt does) and mints a short-lived user token.
    pub(crate) fn exchange_code(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
        challenge_of: impl Fn(&str) -> String,
    ) -> Result<(String, TimeDelta), CodeRefused> {
        let now = Utc::now();
        let mut inner = self.lock();
        let Some(pending) = inner.codes.remove(code) else {
            return Err(CodeRefused {
                subcode: 36009,
                message: "This authorization code has been used.",
            });
        };
        if now - pending.issued_at >= CODE_LIFETIME {
            return Err(CodeRefused {
                subcode: 36007,
                message: "This authorization code has expired.",
            });
        }
        if pending.client_id != client_id || pending.redirect_uri != redirect_uri {
            return Err(CodeRefused {
                subcode: 36008,
                message: "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
            });
        }
        if let Some(challenge) = &pending.code_challenge {
            let matches =
                code_verifier.is_some_and(|verifier| challenge_of(verifier) == *challenge);
            if !matches {
                return Err(CodeRefused {
                    subcode: 36008,
                    message: "Error validating verification code: code_verifier does not match the code_challenge",
                });
            }
        }
        let token = random_token();
        inner.tokens.insert(
            token.clone(),
            Grant {
                member_id: pending.member_id,
                client_id: pending.client_id,
                kind: TokenKind::ShortUser,
                expires_at: Some(now + SHORT_USER_TOKEN_LIFETIME),
                revoked: false,
            },
        );
        Ok((token, SHORT_USER_TOKEN_LIFETIME))
    }

    /// The grant behind a token, if it is still valid.
    pub(crate) fn grant(&self, token: &str) -> Result<Grant, TokenProblem> {
        let inner = self.lock();
        let grant = inner.tokens.get(token).ok_or(TokenProblem::Unknown)?;
        if grant.revoked {
            return Err(TokenProblem::Revoked);
        }
        if grant
            .expires_at
            .is_some_and(|expires_at| expires_at <= Utc::now())
        {
            return Err(TokenProblem::Expired);
        }
        Ok(grant.clone())
    }

    /// Mints a token for the same member and app.
    pub(crate) fn mint(
        &self,
        from: &Grant,
        kind: TokenKind,
        lifetime: Option<TimeDelta>,
    ) -> String {
        let token = random_token();
        let expires_at = lifetime.map(|lifetime| Utc::now() + lifetime);
        self.lock().tokens.insert(
            token.clone(),
            Grant {
                member_id: from.member_id.clone(),
                client_id: from.client_id.clone(),
                kind,
                expires_at,
                revoked: false,
            },
        );
        token
    }

    /// A password change: every token of the member stops working (190/460).
    pub(crate) fn revoke_tokens_of(&self, member_id: &str) -> usize {
        let mut inner = self.lock();
        let mut revoked = 0;
        for grant in inner
            .tokens
            .values_mut()
            .filter(|grant| grant.member_id == member_id && !grant.revoked)
        {
            grant.revoked = true;
            revoked += 1;
        }
        revoked
    }

    pub(crate) fn page_member(&self, page_id: &str) -> Option<String> {
        self.lock().pages.get(page_id).cloned()
    }

    pub(crate) fn ig_member(&self, ig_user_id: &str) -> Option<String> {
        self.lock().ig_accounts.get(ig_user_id).cloned()
    }

    /// A new numeric object id (posts, containers, media).
    pub(crate) fn next_object_number(&self) -> u64 {
        let mut inner = self.lock();
        inner.objects_created += 1;
        FIRST_OBJECT_NUMBER + inner.objects_created
    }

    /// Counts one call under `key` unless the limit is reached; the reading either way.
    pub(crate) fn count_call(
        &self,
        key: &str,
        limit: u32,
        window: TimeDelta,
    ) -> (bool, UsageReading) {
        let now = Utc::now();
        let mut inner = self.lock();
        let times = inner.calls.entry(key.to_string()).or_default();
        prune(times, now - window);
        let allowed = (times.len() as u32) < limit;
        if allowed {
            times.push_back(now);
        }
        let calls = times.len() as u32;
        let regain_in = (calls >= limit)
            .then(|| times.front().map(|oldest| *oldest + window - now))
            .flatten();
        (
            allowed,
            UsageReading {
                calls,
                limit,
                regain_in,
            },
        )
    }

    pub(crate) fn insert_container(&self, container: Container) {
        self.lock()
            .containers
            .insert(container.id.clone(), container);
    }

    pub(crate) fn container(&self, id: &str) -> Option<Container> {
        self.lock().containers.get(id).cloned()
    }

    pub(crate) fn media_container(&self, media_id: &str) -> Option<Container> {
        let inner = self.lock();
        let container_id = inner.media.get(media_id)?;
        inner.containers.get(container_id).cloned()
    }

    /// Publishes used by the account in the rolling window, and when the oldest frees.
    pub(crate) fn publish_usage(
        &self,
        ig_user_id: &str,
        window: TimeDelta,
    ) -> (u32, Option<DateTime<Utc>>) {
        let now = Utc::now();
        let mut inner = self.lock();
        let times = inner.publishes.entry(ig_user_id.to_string()).or_default();
        prune(times, now - window);
        (
            times.len() as u32,
            times.front().map(|oldest| *oldest + window),
        )
    }

    /// Marks the container published as `media_id` and spends a quota slot, if the
    /// quota allows; `Err` carries when a slot frees.
    pub(crate) fn record_publish(
        &self,
        container_id: &str,
        media_id: &str,
        quota: u32,
        window: TimeDelta,
    ) -> Result<(), Option<DateTime<Utc>>> {
        let now = Utc::now();
        let mut inner = self.lock();
        let ig_user_id = match inner.containers.get(container_id) {
            Some(container) => container.ig_user_id.clone(),
            None => return Err(None),
        };
        let times = inner.publishes.entry(ig_user_id).or_default();
        prune(times, now - window);
        if times.len() as u32 >= quota {
            return Err(times.front().map(|oldest| *oldest + window));
        }
        times.push_back(now);
        if let Some(container) = inner.containers.get_mut(container_id) {
            container.media_id = Some(media_id.to_string());
        }
        inner
            .media
            .insert(media_id.to_string(), container_id.to_string());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_shaped_like_graph_ids() {
        assert_eq!(page_id_of("alice"), page_id_of("alice"));
        assert_ne!(page_id_of("alice"), page_id_of("bob"));
        assert_eq!(page_id_of("alice").len(), 15);
        assert!(ig_user_id_of("alice").starts_with("178414"));
        assert_eq!(ig_user_id_of("alice").len(), 17);
    }

    #[test]
    fn the_call_counter_refuses_at_the_limit_and_says_when_access_returns() {
        let meta = MetaState::default();
        let window = TimeDelta::hours(24);
        assert!(meta.count_call("page:1", 2, window).0);
        let (allowed, reading) = meta.count_call("page:1", 2, window);
        assert!(allowed);
        assert_eq!(reading.percent(), 100);
        let (allowed, reading) = meta.count_call("page:1", 2, window);
        assert!(!allowed);
        assert_eq!(reading.calls, reading.limit);
        assert_eq!(reading.regain_minutes(), 24 * 60);
    }
}
