//! Live notifications for web frontends: `GET /v1/me/notifications/stream` is a
//! Server-Sent Events stream of the caller's in-app notifications as they are delivered.
//! One NATS subscription per gateway feeds every open stream; a reconnecting client sends
//! `Last-Event-ID` and first receives what it missed, from the inbox.

use crate::AppState;
use crate::auth::Authenticated;
use crate::routes::call;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use chorus_api::Empty;
use chorus_api::notifications::{Inbox, Notification};
use chorus_events::notification::v1::NotificationDelivered;
use chorus_kit::ServiceResult;
use chorus_telemetry::metrics;
use futures::{Stream, StreamExt};
use std::convert::Infallible;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::broadcast;

static STREAMS: LazyLock<metrics::IntGaugeVec> = LazyLock::new(|| {
    metrics::gauge_vec(
        "chorus_gateway_live_streams",
        "Open Server-Sent Events streams of notifications",
        &["kind"],
    )
});
static SENT: LazyLock<metrics::IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "chorus_gateway_live_events_total",
        "Notifications pushed on live streams (live or caught up after a reconnect), and streams that lagged",
        &["source"],
    )
});

/// Fans delivered notifications out to the open streams of this gateway.
pub struct LiveHub {
    sender: broadcast::Sender<Arc<NotificationDelivered>>,
    /// Ends every stream, so that a stopping gateway does not wait for its clients.
    shutdown: chorus_kit::Shutdown,
}

impl LiveHub {
    /// Subscribes to every tenant's delivered notifications until the connection closes.
    pub async fn start(
        nats: async_nats::Client,
        shutdown: chorus_kit::Shutdown,
    ) -> anyhow::Result<Arc<LiveHub>> {
        let (sender, _) = broadcast::channel(4_096);
        let subject = format!(
            "{}.*.{}.delivered.v1",
            chorus_events::SUBJECT_ROOT,
            chorus_events::NOTIFICATION.token
        );
        let mut subscription = nats.subscribe(subject).await?;
        let hub = Arc::new(LiveHub { sender, shutdown });
        let feed = hub.sender.clone();
        tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                match <NotificationDelivered as prost::Message>::decode(message.payload.as_ref()) {
                    // No open stream is not an error.
                    Ok(event) => {
                        let _ = feed.send(Arc::new(event));
                    }
                    Err(error) => tracing::warn!(%error, "undecodable notification event"),
                }
            }
        });
        Ok(hub)
    }
}

fn event_of(notification: &Notification) -> Event {
    Event::default()
        .event("notification")
        .id(notification.id.clone())
        .json_data(notification)
        .unwrap_or_else(|_| Event::default().comment("unserialisable notification"))
}

/// Decrements the open-stream gauge when the client goes away.
struct Open;

impl Drop for Open {
    fn drop(&mut self) {
        STREAMS.with_label_values(&["notifications"]).dec();
    }
}

/// The caller's notifications, live, as Server-Sent Events (`event: notification`, `id`:
/// the notification id, `data`: the notification as JSON); a comment every 15 s keeps
/// proxies from closing the connection. Send `Last-Event-ID` when reconnecting to receive
/// the notifications delivered meanwhile (up to the inbox's latest 100) first.
#[utoipa::path(get, path = "/v1/me/notifications/stream", tag = "notifications",
    params(("Last-Event-ID" = Option<String>, Header, description = "The last notification id received")),
    responses((status = 200, content_type = "text/event-stream", description = "A stream of `notification` events")))]
pub async fn stream(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
) -> ServiceResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // Subscribe before reading the inbox, so nothing falls between the two.
    let receiver = state.live.sender.subscribe();
    let last_seen = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let mut missed: Vec<Notification> = Vec::new();
    if let Some(last_seen) = &last_seen {
        let inbox: Inbox = call(&state, "notifications", "inbox_list", &caller, &Empty {}).await?;
        // Ids are UUIDv7: ordered by time.
        missed = inbox
            .items
            .into_iter()
            .filter(|item| item.id.as_str() > last_seen.as_str())
            .collect();
        missed.reverse();
    }
    let newest_sent = missed
        .last()
        .map(|item| item.id.clone())
        .or(last_seen)
        .unwrap_or_default();
    SENT.with_label_values(&["caught_up"])
        .inc_by(missed.len() as u64);
    STREAMS.with_label_values(&["notifications"]).inc();
    let open = Arc::new(Open);
    let tenant_id = caller.tenant_id.clone();
    let user_id = caller.user_id.clone();
    let backlog = futures::stream::iter(missed.into_iter().map(|item| Ok(event_of(&item))));
    let live = futures::stream::unfold(receiver, |mut receiver| async move {
        match receiver.recv().await {
            Ok(event) => Some((Some(event), receiver)),
            Err(broadcast::error::RecvError::Lagged(skipped)) => {
                tracing::warn!(
                    skipped,
                    "live stream lagged; the client can catch up with Last-Event-ID"
                );
                SENT.with_label_values(&["lagged"]).inc();
                Some((None, receiver))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
    .filter_map(move |event| {
        let open = open.clone();
        let mine = event.filter(|event| {
            event.tenant_id == tenant_id
                && event.user_id == user_id
                && event.channel == "in_app"
                && event.notification_id > newest_sent
        });
        async move {
            let _open = open;
            let event = mine?;
            SENT.with_label_values(&["live"]).inc();
            let notification = Notification {
                id: event.notification_id.clone(),
                kind: event.kind.clone(),
                title: event.title.clone(),
                body: event.body.clone(),
                created_at: chorus_events::from_timestamp(event.delivered_at.as_ref())
                    .unwrap_or_else(chrono::Utc::now),
                read_at: None,
            };
            Some(Ok(event_of(&notification)))
        }
    });
    // A stopping gateway ends the streams (clients reconnect to another replica).
    let stream = backlog
        .chain(live)
        .take_until(state.live.shutdown.clone().cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
