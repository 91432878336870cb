//! Tracked-link redirects under load (from a separate process) and click ingestion into
//! aggregates, beside the raw JetStream rate.

use crate::bench::{BenchOptions, record};
use crate::demo::Api;
use crate::load::LoadReport;
use chorus_api::engagement::ShareStats;
use chorus_api::scheduling::Share;
use chorus_kit::Role;
use serde_json::json;
use std::time::{Duration, Instant};

/// A tenant with a curator and an advocate, a published post and the advocate's share of it,
/// published on netsim's LinkedIn.
pub(crate) async fn published_share(api: &Api) -> anyhow::Result<(String, Share)> {
    let operator = api.token("bench", "ops", &[Role::Operator]);
    let _: serde_json::Value = api
        .post(
            "/v1/tenants",
            &operator,
            json!({"id": "bench", "name": "Bench"}),
        )
        .await?;
    for (id, roles) in [("cur", json!(["curator"])), ("adv", json!(["advocate"]))] {
        let _: serde_json::Value = api
            .post("/v1/users", &operator, json!({"id": id, "display_name": id, "email": format!("{id}@bench.example"), "roles": roles}))
            .await?;
    }
    let curator = api.token("bench", "cur", &[Role::Curator]);
    let advocate = api.token("bench", "adv", &[Role::Advocate]);
    let post: chorus_api::content::Post = api
        .post("/v1/posts", &curator, json!({"title": "Load", "commentary": "x", "link_url": "https://www.acme.example/load", "content_type": "brand"}))
        .await?;
    let _: serde_json::Value = api
        .post(
            &format!("/v1/posts/{}/publish", post.id),
            &curator,
            json!({}),
        )
        .await?;
    let account = api.connect_linkedin(&advocate, "bench-member").await?;
    let share: Share = api
        .post(
            "/v1/shares",
            &advocate,
            json!({"post_id": post.id, "account_id": account.id, "caption": "Have a look"}),
        )
        .await?;
    let share = api
        .wait_final(&advocate, &share.id, Duration::from_secs(30))
        .await?;
    Ok((advocate, share))
}

pub async fn redirect(config: &chorus_kit::Config, options: &BenchOptions) -> anyhow::Result<()> {
    let (rate, seconds) = if options.quick { (200, 3) } else { (2_000, 15) };
    let (api, shutdown, running, _folder) = crate::bench::install(config, crate::TARGETS).await?;
    let (advocate, share) = published_share(&api).await?;
    // Warm the link cache and the connection pool.
    for _ in 0..20 {
        api.click(
            &share.tracked_url,
            "Mozilla/5.0 Chrome/130.0",
            "198.51.100.1",
        )
        .await;
    }
    let binary = std::env::current_exe()?;
    let output = tokio::process::Command::new(binary)
        .args([
            "load",
            "--url",
            &share.tracked_url,
            "--rate",
            &rate.to_string(),
            "--seconds",
            &seconds.to_string(),
            "--status",
            "302",
        ])
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "load generator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: LoadReport = serde_json::from_slice(&output.stdout)?;
    let figures = format!(
        "{} requests at {rate}/s from a separate process: {} ok, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        report.sent, report.ok, report.p50_ms, report.p99_ms, report.max_ms
    );
    record(
        options,
        "redirect /l/{code}",
        &figures,
        "p99 < 5 ms at 2,000 req/s",
    )?;

    // Ingestion: every click through JetStream into the share's aggregates.
    let expected = (report.ok + 20) as i64;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    let mut counted = 0;
    while Instant::now() < deadline {
        let stats: ShareStats = api
            .get(&format!("/v1/shares/{}/stats", share.id), &advocate)
            .await?;
        counted = stats.clicks;
        if counted >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Clicks kept arriving while the load ran; the drain after it is what remains.
    let ingest_seconds = report.seconds + started.elapsed().as_secs_f64();
    let rate_in = counted as f64 / ingest_seconds;
    let figures = format!(
        "{counted} of {expected} clicks in aggregates within {ingest_seconds:.1} s of the first: {rate_in:.0} events/s end to end (redirect, JetStream, engagement, aggregates, recorded event)"
    );
    record(
        options,
        "click ingestion",
        &figures,
        "compare with the bus baseline of the same run",
    )?;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), running.join()).await;
    Ok(())
}

/// Engagement ingestion end to end: clicks published on JetStream as fast as the bus takes
/// them, until they are in the share's aggregates, and until gamification has applied every
/// resulting `engagement.recorded` event; beside the raw JetStream rate of the same run.
pub async fn ingest(config: &chorus_kit::Config, options: &BenchOptions) -> anyhow::Result<()> {
    use chorus_events::engagement::v1::LinkClicked;
    let clicks: usize = if options.quick { 1_000 } else { 20_000 };
    let baseline = crate::bench::bus_rates(&config.nats_server_bin, clicks.max(20_000)).await?;
    let (api, shutdown, running, _folder) = crate::bench::install(config, crate::TARGETS).await?;
    let (advocate, share) = published_share(&api).await?;
    let code = share
        .tracked_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let bus = chorus_bus::Bus::connect(&running.nats_url).await?;

    let started = Instant::now();
    let mut acks = Vec::with_capacity(1_000);
    let mut bots = 0;
    for index in 0..clicks {
        let is_bot = index % 10 == 9;
        bots += usize::from(is_bot);
        let click = LinkClicked {
            tenant_id: "bench".into(),
            link_code: code.clone(),
            clicked_at: Some(chorus_events::to_timestamp(chrono::Utc::now())),
            // One visitor in four is new.
            visitor_hash: format!("v{}", index / 4),
            is_bot,
            user_agent_family: if is_bot { "LinkedInBot" } else { "Chrome" }.into(),
        };
        let subject = chorus_events::Event::subject(&click);
        let event_id = uuid::Uuid::now_v7().to_string();
        let headers = chorus_bus::outbox::event_headers(
            &event_id,
            <LinkClicked as chorus_events::Event>::TYPE,
            "bench",
            &subject,
            chrono::Utc::now(),
        );
        let payload = prost::Message::encode_to_vec(&click);
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

    let deadline = started + Duration::from_secs(600);
    let mut stats: ShareStats;
    loop {
        stats = api
            .get(&format!("/v1/shares/{}/stats", share.id), &advocate)
            .await?;
        if (stats.clicks + stats.bot_clicks) as usize >= clicks || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let aggregated = started.elapsed();
    let counted = (stats.clicks + stats.bot_clicks) as usize;
    anyhow::ensure!(
        counted == clicks && stats.bot_clicks as usize == bots,
        "aggregates hold {counted} clicks ({} by bots) of {clicks} ({bots} by bots)",
        stats.bot_clicks
    );
    // Points: gamification's consumer of engagement.recorded has applied every event the
    // clicks produced (the engagement outbox has relayed them all once the stream holds them).
    let stream = bus.jetstream.get_stream("CHORUS_ENGAGEMENT").await?;
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_consumer("gamification-engagement-recorded")
        .await
        .map_err(|error| anyhow::anyhow!("gamification consumer: {error}"))?;
    loop {
        let info = consumer.info().await?;
        let stream_info = bus
            .jetstream
            .get_stream("CHORUS_ENGAGEMENT")
            .await?
            .info()
            .await?
            .clone();
        let recorded = stream_info.state.messages as usize;
        if recorded >= clicks
            && info.num_pending == 0
            && info.num_ack_pending == 0
            && info.ack_floor.stream_sequence >= stream_info.state.last_sequence
        {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "gamification did not catch up: {} pending, {} in flight",
            info.num_pending,
            info.num_ack_pending
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pointed = started.elapsed();
    let into_aggregates = clicks as f64 / aggregated.as_secs_f64();
    let into_points = clicks as f64 / pointed.as_secs_f64();
    let figures = format!(
        "{clicks} clicks ({bots} by bots, {} unique visitors) published in {:.1} s: in aggregates after {:.1} s = {into_aggregates:.0} events/s, applied by gamification after {:.1} s = {into_points:.0} events/s; bus baseline of the same run: publish {:.0}/s, consume {:.0}/s; ratio to the consume rate {:.3} (aggregates) and {:.3} (points)",
        stats.unique_visitors,
        published.as_secs_f64(),
        aggregated.as_secs_f64(),
        pointed.as_secs_f64(),
        baseline.publish,
        baseline.consume,
        into_aggregates / baseline.consume,
        into_points / baseline.consume,
    );
    record(
        options,
        "engagement ingestion",
        &figures,
        "events/s end to end beside the raw JetStream rate of the same run",
    )?;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), running.join()).await;
    Ok(())
}
