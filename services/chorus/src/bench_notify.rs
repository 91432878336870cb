//! Notifications under load: points events become in-app notifications, and the same events
//! go to integrator webhook endpoints (a local receiver verifying every signature).

use crate::bench::{BenchOptions, record};
use chorus_events::gamification::v1::PointsAwarded;
use chorus_kit::Role;
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the receiver counted.
#[derive(Default)]
struct Tally {
    requests: usize,
    bad_signatures: usize,
    /// (endpoint path, webhook-id) pairs seen.
    seen: HashSet<(String, String)>,
    duplicates: usize,
    last_at: Option<Instant>,
}

/// A local HTTP receiver for `endpoints` endpoints (`/hook/<n>`), verifying signatures with
/// their secrets once they are known.
async fn receiver(
    secrets: Arc<Mutex<Vec<String>>>,
    tally: Arc<Mutex<Tally>>,
) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/hook/{index}",
        axum::routing::post(
            move |axum::extract::Path(index): axum::extract::Path<usize>,
                  headers: axum::http::HeaderMap,
                  body: String| {
                let secrets = secrets.clone();
                let tally = tally.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or_default()
                            .to_string()
                    };
                    let id = header("webhook-id");
                    let timestamp: i64 = header("webhook-timestamp").parse().unwrap_or_default();
                    let secret = secrets
                        .lock()
                        .unwrap()
                        .get(index)
                        .cloned()
                        .unwrap_or_default();
                    let expected = chorus_notifications::webhooks::signing::sign(
                        &secret,
                        &id,
                        timestamp,
                        body.as_bytes(),
                    );
                    let verified = expected.is_some_and(|expected| {
                        header("webhook-signature")
                            .split(' ')
                            .any(|signature| signature == expected)
                    });
                    let mut tally = tally.lock().unwrap();
                    tally.requests += 1;
                    tally.bad_signatures += usize::from(!verified);
                    if !tally.seen.insert((index.to_string(), id)) {
                        tally.duplicates += 1;
                    }
                    tally.last_at = Some(Instant::now());
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

pub async fn notifications(
    config: &chorus_kit::Config,
    options: &BenchOptions,
) -> anyhow::Result<()> {
    let events: usize = if options.quick { 300 } else { 5_000 };
    let endpoints: usize = 4;
    let baseline = crate::bench::bus_rates(&config.nats_server_bin, events.max(20_000)).await?;
    let (api, shutdown, running, _folder) = crate::bench::install(config, crate::TARGETS).await?;
    let operator = api.token("bench", "ops", &[Role::Operator]);
    let _: serde_json::Value = api
        .post(
            "/v1/tenants",
            &operator,
            json!({"id": "bench", "name": "Bench"}),
        )
        .await?;
    let _: serde_json::Value = api
        .post(
            "/v1/users",
            &operator,
            json!({"id": "admin", "display_name": "Admin",
            "email": "admin@bench.example", "roles": ["admin"]}),
        )
        .await?;
    let admin = api.token("bench", "admin", &[Role::Admin]);
    // The advocates the points go to, known to notifications (language, roles) as in a
    // real tenant.
    for index in 0..200 {
        let _: serde_json::Value = api
            .post(
                "/v1/users",
                &admin,
                json!({"id": format!("advocate-{index}"), "display_name": format!("Advocate {index}"),
                "email": format!("advocate-{index}@bench.example"), "roles": ["advocate"],
                "language": if index % 2 == 0 { "en" } else { "fr" }}),
            )
            .await?;
    }
    let _: serde_json::Value = api
        .send(
            reqwest::Method::PUT,
            "/v1/webhooks/settings",
            &admin,
            Some(json!({"allow_private_destinations": true})),
        )
        .await?;
    let secrets: Arc<Mutex<Vec<String>>> = Arc::default();
    let tally: Arc<Mutex<Tally>> = Arc::default();
    let base = receiver(secrets.clone(), tally.clone()).await?;
    for index in 0..endpoints {
        let created: chorus_api::notifications::WebhookEndpointCreated = api
            .post(
                "/v1/webhooks/endpoints",
                &admin,
                json!({"url": format!("{base}/hook/{index}"), "event_types": ["gamification.points_awarded.v1"]}),
            )
            .await?;
        secrets.lock().unwrap().push(created.secret);
    }
    let bus = chorus_bus::Bus::connect(&running.nats_url).await?;
    // Let identity's user events reach notifications before the measured burst.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let delivered_before = bus
        .jetstream
        .get_stream("CHORUS_NOTIFICATION")
        .await?
        .info()
        .await?
        .state
        .messages as usize;

    let started = Instant::now();
    let mut acks = Vec::with_capacity(1_000);
    for index in 0..events {
        let event = PointsAwarded {
            tenant_id: "bench".into(),
            user_id: format!("advocate-{}", index % 200),
            points: 10,
            action: "share".into(),
            source_event_id: uuid::Uuid::now_v7().to_string(),
            share_id: format!("share-{index}"),
            // A balance below every milestone: one notification per event.
            balance: 10,
            awarded_at: Some(chorus_events::to_timestamp(chrono::Utc::now())),
        };
        let subject = chorus_events::Event::subject(&event);
        let event_id = uuid::Uuid::now_v7().to_string();
        let headers = chorus_bus::outbox::event_headers(
            &event_id,
            <PointsAwarded as chorus_events::Event>::TYPE,
            "bench",
            &subject,
            chrono::Utc::now(),
        );
        let payload = prost::Message::encode_to_vec(&event);
        acks.push(
            bus.jetstream
                .publish_with_headers(subject, headers, payload.into())
                .await?,
        );
        if acks.len() == 1_000 {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks.drain(..) {
        ack.await?;
    }
    let published = started.elapsed();

    // In-app: every event became a notification once its delivery was announced.
    let deadline = started + Duration::from_secs(900);
    let in_app = loop {
        let announced = bus
            .jetstream
            .get_stream("CHORUS_NOTIFICATION")
            .await?
            .info()
            .await?
            .state
            .messages as usize
            - delivered_before;
        if announced >= events || Instant::now() > deadline {
            break (announced, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Webhooks: every event reached every endpoint.
    let expected = events * endpoints;
    let webhooks = loop {
        let (requests, last_at) = {
            let tally = tally.lock().unwrap();
            (tally.requests, tally.last_at)
        };
        if requests >= expected || Instant::now() > deadline {
            break (
                requests,
                last_at.map_or(started.elapsed(), |at| at - started),
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Nothing more arrives afterwards (no duplicate sent late).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), running.join()).await;
    anyhow::ensure!(
        in_app.0 == events,
        "{} of {events} in-app notifications delivered",
        in_app.0
    );
    anyhow::ensure!(
        tally.requests == expected && tally.duplicates == 0 && tally.bad_signatures == 0,
        "webhooks: {} requests of {expected}, {} duplicates, {} bad signatures",
        tally.requests,
        tally.duplicates,
        tally.bad_signatures
    );
    let in_app_rate = events as f64 / in_app.1.as_secs_f64();
    let webhook_rate = expected as f64 / webhooks.1.as_secs_f64();
    let figures = format!(
        "{events} points events (published in {:.2} s): {events} in-app notifications in {:.2} s = {in_app_rate:.0}/s; \
         {expected} webhook deliveries to {endpoints} endpoints in {:.2} s = {webhook_rate:.0}/s, every signature verified, 0 duplicates; \
         JetStream consume {:.0}/s in the same run -> ratios {:.3} (in-app) and {:.3} (webhooks)",
        published.as_secs_f64(),
        in_app.1.as_secs_f64(),
        webhooks.1.as_secs_f64(),
        baseline.consume,
        in_app_rate / baseline.consume,
        webhook_rate / baseline.consume,
    );
    record(
        options,
        "notifications",
        &figures,
        "delivered notifications per second, every one once",
    )
}
