//! NATS for Chorus: streams, event publishing with `Nats-Msg-Id` and CloudEvents headers,
//! the transactional outbox and its relay, inbox de-duplication, consumers with retries and
//! dead letters, W3C trace context in headers, and request/reply for the gateway's calls.

pub mod consumer;
pub mod entities;
pub mod inbox;
pub mod migration;
pub mod outbox;
pub mod rpc;
pub mod trace;

use async_nats::jetstream;
use async_nats::jetstream::stream;
use chorus_events::{DOMAINS, Event};
use std::time::Duration;

pub use consumer::{ConsumerSpec, Delivery, HandlerError};
pub use outbox::{Outbox, OutboxRelay};

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("nats: {0}")]
    Nats(String),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
}

impl BusError {
    pub fn nats(error: impl std::fmt::Display) -> Self {
        BusError::Nats(error.to_string())
    }
}

/// Key-value bucket of tracked links: code -> tenant, share and target (JSON). Written by
/// engagement, read by the gateway's redirect without asking any service.
pub const LINKS_BUCKET: &str = "chorus_links";

/// Key-value bucket of the gateway's `Idempotency-Key` records (caller and key hashed ->
/// request fingerprint and response), each kept for a day.
pub const IDEMPOTENCY_BUCKET: &str = "chorus_idempotency";

/// How long JetStream remembers message ids for de-duplication.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// A connection to NATS with its JetStream context.
#[derive(Clone)]
pub struct Bus {
    pub client: async_nats::Client,
    pub jetstream: jetstream::Context,
}

/// The user and password written in a NATS URL, percent-decoded (async-nats does not send
/// them by itself).
pub fn url_credentials(url: &str) -> Option<(String, String)> {
    let address: async_nats::ServerAddr = url.parse().ok()?;
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    match (address.username(), address.password()) {
        (Some(user), Some(password)) if !user.is_empty() => Some((decode(user), decode(password))),
        _ => None,
    }
}

/// How the streams and buckets are created (existing ones are never changed).
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    /// Copies of each stream and bucket (3 on a three-server NATS cluster).
    pub replicas: usize,
    /// Bytes each domain's stream keeps at most (-1: no limit).
    pub max_bytes: i64,
    /// How long each domain's stream keeps its messages.
    pub max_age: Duration,
}

impl StreamSettings {
    /// One copy, no byte limit, 30 days (tests and tools).
    pub fn single() -> StreamSettings {
        StreamSettings {
            replicas: 1,
            max_bytes: -1,
            max_age: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl Bus {
    pub fn new(client: async_nats::Client) -> Bus {
        let jetstream = jetstream::new(client.clone());
        Bus { client, jetstream }
    }

    /// Connects to `url` (retrying while the server starts). A user and password in the
    /// URL (`nats://chorus:secret@nats:4222`, percent-encoded) are sent to the server.
    pub async fn connect(url: &str) -> Result<Bus, BusError> {
        let mut options = async_nats::ConnectOptions::new();
        if let Some((user, password)) = url_credentials(url) {
            options = options.user_and_password(user, password);
        }
        let client = options
            .name("chorus")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(BusError::nats)?;
        Ok(Bus::new(client))
    }

    /// Creates the stream of every domain and the buckets if missing (idempotent, safe from
    /// many processes). An existing stream or bucket is left as it is: replicas and limits
    /// an operator changed (`nats stream edit`) are never reset by a start.
    pub async fn ensure_streams(&self, settings: &StreamSettings) -> Result<(), BusError> {
        let replicas = settings.replicas.max(1);
        for domain in DOMAINS {
            let config = stream::Config {
                name: domain.stream.to_string(),
                subjects: vec![domain.stream_subjects()],
                storage: stream::StorageType::File,
                retention: stream::RetentionPolicy::Limits,
                duplicate_window: DUPLICATE_WINDOW,
                max_age: settings.max_age,
                // Past the limit the oldest messages go: history that consumers have read
                // long ago; `chorus_consumer_pending` tells when a consumer falls behind.
                max_bytes: settings.max_bytes,
                discard: stream::DiscardPolicy::Old,
                num_replicas: replicas,
                ..Default::default()
            };
            self.jetstream
                .get_or_create_stream(config)
                .await
                .map_err(BusError::nats)?;
        }
        // Tracked links never expire; idempotency records are kept for a day.
        for (bucket, description, max_age) in [
            (
                LINKS_BUCKET,
                "tracked link code -> tenant, share and target",
                Duration::ZERO,
            ),
            (
                IDEMPOTENCY_BUCKET,
                "gateway Idempotency-Key records: fingerprint and response",
                Duration::from_secs(24 * 3600),
            ),
        ] {
            let config = async_nats::jetstream::kv::Config {
                bucket: bucket.to_string(),
                description: description.to_string(),
                history: 1,
                max_age,
                storage: stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            };
            if self.jetstream.get_key_value(bucket).await.is_ok() {
                continue;
            }
            if let Err(error) = self.jetstream.create_key_value(config).await {
                // Another process created it meanwhile: that is the bucket.
                if self.jetstream.get_key_value(bucket).await.is_err() {
                    return Err(BusError::nats(error));
                }
            }
        }
        Ok(())
    }

    /// A bucket created by `ensure_streams`.
    async fn bucket(&self, name: &str) -> Result<async_nats::jetstream::kv::Store, BusError> {
        self.jetstream
            .get_key_value(name)
            .await
            .map_err(BusError::nats)
    }

    /// The gateway's idempotency bucket (created by `ensure_streams`).
    pub async fn idempotency(&self) -> Result<async_nats::jetstream::kv::Store, BusError> {
        self.bucket(IDEMPOTENCY_BUCKET).await
    }

    /// The tracked links bucket (created by `ensure_streams`).
    pub async fn links(&self) -> Result<async_nats::jetstream::kv::Store, BusError> {
        self.bucket(LINKS_BUCKET).await
    }

    /// Publishes an event directly (not through an outbox) and waits for the ack. For facts
    /// that have no database change behind them, such as a raw click seen by the gateway.
    pub async fn publish_event<E: Event>(
        &self,
        event: &E,
        source: &str,
    ) -> Result<String, BusError> {
        let event_id = uuid::Uuid::now_v7().to_string();
        let subject = event.subject();
        let mut headers =
            outbox::event_headers(&event_id, E::TYPE, source, &subject, chrono::Utc::now());
        trace::inject_current(&mut headers);
        let payload = prost::Message::encode_to_vec(event);
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers, payload.into())
            .await
            .map_err(BusError::nats)?;
        ack.await.map_err(BusError::nats)?;
        Ok(event_id)
    }

    /// Publishes an event without waiting for JetStream's ack in the caller: the ack is
    /// awaited in the background, and a message JetStream did not confirm is sent again
    /// with the same `Nats-Msg-Id` (de-duplicated) until it is, for about a minute. For hot
    /// paths such as tracked-link redirects.
    pub async fn publish_event_confirmed_later<E: Event>(
        &self,
        event: &E,
        source: &str,
    ) -> Result<String, BusError> {
        let event_id = uuid::Uuid::now_v7().to_string();
        let subject = event.subject();
        let mut headers =
            outbox::event_headers(&event_id, E::TYPE, source, &subject, chrono::Utc::now());
        trace::inject_current(&mut headers);
        let payload: bytes::Bytes = prost::Message::encode_to_vec(event).into();
        let ack = self
            .jetstream
            .publish_with_headers(subject.clone(), headers.clone(), payload.clone())
            .await
            .map_err(BusError::nats)?;
        let jetstream = self.jetstream.clone();
        let id = event_id.clone();
        tokio::spawn(async move {
            if ack.await.is_ok() {
                return;
            }
            for attempt in 1..=12u32 {
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
                let resent = match jetstream
                    .publish_with_headers(subject.clone(), headers.clone(), payload.clone())
                    .await
                {
                    Ok(ack) => ack.await.is_ok(),
                    Err(_) => false,
                };
                if resent {
                    return;
                }
            }
            tracing::error!(event_id = %id, %subject, "event not confirmed by JetStream after a minute of retries");
        });
        Ok(event_id)
    }
}

/// Registers an RPC endpoint answered by a method of a shared state:
/// `endpoint!(rpc, "post_create", state, create_post)` calls `state.create_post(caller, request)`.
#[macro_export]
macro_rules! endpoint {
    ($rpc:expr, $name:literal, $state:expr, $method:ident) => {{
        let state = $state.clone();
        $rpc.endpoint($name, move |caller, request| {
            let state = state.clone();
            async move { state.$method(caller, request).await }
        })
        .await
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_are_decoded() {
        assert_eq!(
            url_credentials("nats://chorus:s%40cr%3At@nats:4222"),
            Some(("chorus".to_string(), "s@cr:t".to_string()))
        );
        assert_eq!(url_credentials("nats://127.0.0.1:4222"), None);
        assert_eq!(url_credentials("not a url"), None);
    }
}
