//! Tracked links: `GET /l/{code}` redirects to the post's link (UTM included) and records
//! the click as a raw event on NATS, so a slow engagement service never loses it.

use crate::AppState;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chorus_api::engagement::LinkTarget;
use chorus_events::engagement::v1::LinkClicked;
use sha2::Digest;
use std::net::SocketAddr;
use std::sync::Arc;

/// User-agent fragments of link-preview bots and crawlers (lower case).
const BOTS: &[&str] = &[
    "linkedinbot",
    "twitterbot",
    "facebookexternalhit",
    "facebot",
    "slackbot",
    "slack-imgproxy",
    "discordbot",
    "telegrambot",
    "whatsapp",
    "googlebot",
    "bingbot",
    "applebot",
    "yandex",
    "baiduspider",
    "duckduckbot",
    "mastodon",
    "bluesky",
    "cardyb",
    "embedly",
    "skypeuripreview",
    "teams",
    "bot",
    "crawler",
    "spider",
    "curl",
    "wget",
    "python-requests",
];

pub fn is_bot(user_agent: &str) -> bool {
    let lower = user_agent.to_ascii_lowercase();
    lower.is_empty() || BOTS.iter().any(|fragment| lower.contains(fragment))
}

fn valid_code(code: &str) -> bool {
    code.len() == 12 && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "This link does not exist.\n",
    )
        .into_response()
}

/// Hash of the visitor for today: counts unique visitors without storing their address.
/// The digest of `salt|day|address|user_agent`, fed in pieces (no formatted copy).
fn visitor_hash(
    salt: &str,
    now: chrono::DateTime<chrono::Utc>,
    address: &str,
    user_agent: &str,
) -> String {
    use std::fmt::Write;
    let mut day = String::with_capacity(10);
    let _ = write!(day, "{}", now.format("%Y-%m-%d"));
    let mut hasher = sha2::Sha256::new();
    for piece in [salt, "|", &day, "|", address, "|", user_agent] {
        hasher.update(piece.as_bytes());
    }
    let digest = hasher.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(32);
    for byte in digest.iter().take(16) {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Resolved links. A link's target never changes once written and links are never
/// deleted, so an entry stays right for as long as it is kept; the cache is bounded (it
/// starts over when full) and a hit is a shared pointer, not a copy.
#[derive(Default)]
pub struct LinkCache {
    entries: std::sync::RwLock<std::collections::HashMap<Box<str>, Arc<LinkTarget>>>,
}

const LINK_CACHE_SIZE: usize = 50_000;

impl LinkCache {
    fn get(&self, code: &str) -> Option<Arc<LinkTarget>> {
        self.entries
            .read()
            .expect("link cache lock")
            .get(code)
            .cloned()
    }

    fn put(&self, code: &str, target: Arc<LinkTarget>) {
        let mut entries = self.entries.write().expect("link cache lock");
        if entries.len() >= LINK_CACHE_SIZE {
            entries.clear();
        }
        entries.insert(code.into(), target);
    }
}

/// The link's target: from the cache, else from the links bucket (written by engagement).
async fn resolve(state: &AppState, code: &str) -> Result<Option<Arc<LinkTarget>>, Response> {
    if let Some(found) = state.link_cache.get(code) {
        return Ok(Some(found));
    }
    let stored = state.links.get(code).await.map_err(|error| {
        tracing::error!(%error, "links bucket unavailable");
        chorus_kit::ServiceError::unavailable("links are unavailable, try again").into_response()
    })?;
    let Some(bytes) = stored else { return Ok(None) };
    let target: LinkTarget = serde_json::from_slice(&bytes)
        .map_err(|error| chorus_kit::ServiceError::internal(&error).into_response())?;
    let target = Arc::new(target);
    state.link_cache.put(code, target.clone());
    Ok(Some(target))
}

pub async fn redirect(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !valid_code(&code) {
        return not_found();
    }
    let target = match resolve(&state, &code).await {
        Ok(Some(target)) => target,
        Ok(None) => return not_found(),
        Err(response) => return response,
    };
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let peer_address;
    let address = match headers
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
    {
        Some(forwarded) => forwarded.trim(),
        None => {
            peer_address = peer.ip().to_string();
            &peer_address
        }
    };
    let bot = is_bot(user_agent);
    let now = chrono::Utc::now();
    let click = LinkClicked {
        tenant_id: target.tenant_id.clone(),
        link_code: code,
        clicked_at: Some(chorus_events::to_timestamp(now)),
        visitor_hash: visitor_hash(&state.visitor_salt, now, address, user_agent),
        is_bot: bot,
        user_agent_family: if bot { "bot".into() } else { "browser".into() },
    };
    // JetStream holds the click until engagement takes it: a slow engagement service delays
    // nothing here and loses nothing. The ack is awaited (and the click re-sent) off the
    // request path.
    if let Err(error) = state
        .bus
        .publish_event_confirmed_later(&click, crate::NAME)
        .await
    {
        tracing::error!(%error, share_id = %target.share_id, "click could not be recorded");
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, target.target_url.as_str())],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_bots_are_told_apart_from_people() {
        assert!(is_bot(
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)"
        ));
        assert!(is_bot("facebookexternalhit/1.1"));
        assert!(is_bot("Slackbot-LinkExpanding 1.0"));
        assert!(!is_bot(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"
        ));
        assert!(valid_code("AbC123xyz789"));
        assert!(!valid_code("../etc"));
    }

    #[test]
    fn a_visitor_is_the_same_digest_of_salt_day_address_and_agent() {
        let now = chrono::Utc::now();
        let text = format!("salt|{}|198.51.100.1|Mozilla/5.0", now.format("%Y-%m-%d"));
        let expected: String = sha2::Sha256::digest(text.as_bytes())
            .iter()
            .take(16)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(
            visitor_hash("salt", now, "198.51.100.1", "Mozilla/5.0"),
            expected
        );
        assert_ne!(
            visitor_hash("salt", now, "198.51.100.2", "Mozilla/5.0"),
            expected
        );
    }
}
