//! `chorus bench`: measured figures, each appended to `BENCHMARKS.md` with the machine,
//! the command and the date.

use crate::demo::Api;
use chorus_api::Page;
use chorus_api::content::{FeedItem, Post};
use chorus_kit::Role;
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub scenario: String,
    pub quick: bool,
    /// Where to append the results (none: print only).
    pub record: Option<std::path::PathBuf>,
    pub command_line: String,
    /// A PostgreSQL server (admin URL) for the scenarios that also run on PostgreSQL.
    pub postgres: Option<String>,
}

/// Latency summary of a sample.
pub struct Latency {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub per_second: f64,
}

pub fn summarize(mut samples: Vec<Duration>, wall: Duration) -> Latency {
    samples.sort();
    let at = |quantile: f64| {
        samples[((samples.len() as f64 * quantile).ceil() as usize).clamp(1, samples.len()) - 1]
    };
    Latency {
        count: samples.len(),
        p50: at(0.50),
        p99: at(0.99),
        max: *samples.last().unwrap_or(&Duration::ZERO),
        per_second: samples.len() as f64 / wall.as_secs_f64().max(f64::EPSILON),
    }
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1_000.0)
}

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .next()
                .map(|line| line.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{} GiB", kb / 1024 / 1024))
        .unwrap_or_else(|| "?".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .map(|line| line.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let profile = if cfg!(debug_assertions) {
        "debug build"
    } else {
        "release build"
    };
    format!("{cores} cores, {memory}, {cpu}, {profile}")
}

/// Adds one row to the benchmark record: at the end of its table, before any notes below it.
pub fn record(
    options: &BenchOptions,
    scenario: &str,
    figures: &str,
    target: &str,
) -> anyhow::Result<()> {
    println!("{scenario}: {figures} (target: {target})");
    let Some(path) = &options.record else {
        return Ok(());
    };
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error.into()),
    };
    let row = format!(
        "| {} | {} | `{}` | {scenario} | {figures} | {target} |",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine(),
        options.command_line
    );
    std::fs::write(path, with_row(&existing, &row))?;
    Ok(())
}

/// The record with `row` added as the last row of its table (a new record if it is empty).
fn with_row(record: &str, row: &str) -> String {
    if !record.contains("\n|---") {
        return format!(
            "# Chorus benchmarks\n\nEach row is one run of `chorus bench`, added by the command itself.\n\n\
             | date | machine | command | scenario | figures | target |\n|---|---|---|---|---|---|\n{row}\n"
        );
    }
    let mut lines: Vec<&str> = record.lines().collect();
    let header = lines
        .iter()
        .position(|line| line.starts_with("|---"))
        .expect("a table separator");
    let end = lines[header..]
        .iter()
        .position(|line| !line.starts_with('|'))
        .map_or(lines.len(), |offset| header + offset);
    lines.insert(end, row);
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

pub async fn run(config: chorus_kit::Config, options: BenchOptions) -> anyhow::Result<()> {
    let scenarios: Vec<&str> = match options.scenario.as_str() {
        "all" => vec![
            "bus",
            "feed",
            "redirect",
            "ingest",
            "leaderboard",
            "pipeline",
            "overhead",
            "lateness",
            "efficiency",
            "api",
            "memory",
            "notifications",
        ],
        other => vec![other],
    };
    for scenario in scenarios {
        match scenario {
            "bus" => bus_baseline(&config, &options).await?,
            "feed" => feed(&config, &options).await?,
            "leaderboard" => leaderboard(&config, &options).await?,
            "redirect" => crate::bench_links::redirect(&config, &options).await?,
            "ingest" => crate::bench_links::ingest(&config, &options).await?,
            "pipeline" => crate::bench_pipeline::pipeline(&config, &options).await?,
            "overhead" => crate::bench_pipeline::overhead(&config, &options).await?,
            "lateness" => crate::bench_pipeline::lateness(&config, &options).await?,
            "efficiency" => crate::bench_pipeline::efficiency(&config, &options).await?,
            "api" => crate::bench_api::api(&config, &options).await?,
            "memory" => crate::bench_api::memory(&config, &options).await?,
            "notifications" => crate::bench_notify::notifications(&config, &options).await?,
            other => anyhow::bail!(
                "unknown scenario {other}; scenarios are all, bus, feed, redirect, ingest, leaderboard, pipeline, overhead, lateness, efficiency, api, memory, notifications"
            ),
        }
    }
    Ok(())
}

/// A fresh embedded installation in a temporary folder.
pub async fn install(
    config: &chorus_kit::Config,
    targets: &[&'static str],
) -> anyhow::Result<(Api, chorus_kit::Shutdown, crate::Running, tempfile::TempDir)> {
    let folder = tempfile::tempdir()?;
    let config = fresh_config(config, folder.path())?;
    let (api, shutdown, running) = start_ready(&config, targets).await?;
    Ok((api, shutdown, running, folder))
}

/// `config` for an installation in `folder`: free ports, quiet logs.
pub fn fresh_config(
    config: &chorus_kit::Config,
    folder: &std::path::Path,
) -> anyhow::Result<chorus_kit::Config> {
    let mut config = config.clone();
    config.data_dir = folder.to_path_buf();
    let gateway_port = crate::nats::free_port()?;
    config.gateway.listen = format!("127.0.0.1:{gateway_port}");
    config.netsim.listen = format!("127.0.0.1:{}", crate::nats::free_port()?);
    config.public_url = format!("http://127.0.0.1:{gateway_port}");
    config.admin_listen = "127.0.0.1:0".into();
    config.log = "warn".into();
    // The benchmarks time the pipeline from the moment a share is due, all at once.
    config.scheduling.stagger_window_secs = 0;
    Ok(config)
}

/// Starts `targets` in this process and waits until the gateway is ready.
pub async fn start_ready(
    config: &chorus_kit::Config,
    targets: &[&'static str],
) -> anyhow::Result<(Api, chorus_kit::Shutdown, crate::Running)> {
    let secrets = chorus_kit::auth::Secrets::resolve(config)?;
    let shutdown = chorus_kit::Shutdown::new();
    let running = crate::start(config.clone(), targets, shutdown.clone()).await?;
    let api = Api::new(&config.public_url, secrets.dev_signing_key_bytes());
    for _ in 0..400 {
        if api
            .http
            .get(format!("{}/readyz", api.base_url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok((api, shutdown, running))
}

/// The physical limit of this machine's messaging: JetStream publish (acked) and consume.
async fn bus_baseline(config: &chorus_kit::Config, options: &BenchOptions) -> anyhow::Result<()> {
    let messages: usize = if options.quick { 5_000 } else { 100_000 };
    let rates = bus_rates(&config.nats_server_bin, messages).await?;
    let figures = format!(
        "{messages} messages of 200 B: publish {:.0}/s (acked), consume {:.0}/s (acked one by one)",
        rates.publish, rates.consume
    );
    record(
        options,
        "bus baseline",
        &figures,
        "the limit the pipeline is compared with",
    )
}

/// Raw JetStream rates measured on a private nats-server.
pub struct BusRates {
    /// Messages per second published and acknowledged by JetStream.
    pub publish: f64,
    /// Messages per second consumed and acknowledged one by one.
    pub consume: f64,
}

/// Publishes `messages` messages of 200 bytes to a fresh stream, then consumes them.
pub async fn bus_rates(nats_server_bin: &str, messages: usize) -> anyhow::Result<BusRates> {
    use async_nats::jetstream;
    use futures::StreamExt;
    let folder = tempfile::tempdir()?;
    let server = crate::nats::NatsServer::start(nats_server_bin, folder.path()).await?;
    let client = async_nats::connect(server.url()).await?;
    let js = jetstream::new(client);
    js.create_stream(jetstream::stream::Config {
        name: "BENCH".into(),
        subjects: vec!["bench.>".into()],
        ..Default::default()
    })
    .await?;
    let payload = bytes::Bytes::from(vec![7u8; 200]);
    let started = Instant::now();
    let mut acks = Vec::with_capacity(1_000);
    for index in 0..messages {
        acks.push(
            js.publish(format!("bench.{}", index % 16), payload.clone())
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
    let stream = js.get_stream("BENCH").await?;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("bench".into()),
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    let mut stream = consumer.messages().await?;
    let mut consumed = 0;
    while consumed < messages {
        let message = stream
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("stream ended"))??;
        message
            .ack()
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        consumed += 1;
    }
    let consume = started.elapsed();
    Ok(BusRates {
        publish: messages as f64 / published.as_secs_f64(),
        consume: messages as f64 / consume.as_secs_f64(),
    })
}

/// p99 of a feed page for an advocate, with 10,000 posts in the tenant.
async fn feed(config: &chorus_kit::Config, options: &BenchOptions) -> anyhow::Result<()> {
    let posts: usize = if options.quick { 500 } else { 10_000 };
    let reads: usize = if options.quick { 200 } else { 2_000 };
    let (api, shutdown, running, _folder) =
        install(config, &["identity", "content", "gateway"]).await?;
    let operator = api.token("bench", "ops", &[Role::Operator]);
    let _: serde_json::Value = api
        .post(
            "/v1/tenants",
            &operator,
            json!({"id": "bench", "name": "Bench"}),
        )
        .await?;
    let _: serde_json::Value = api
        .post("/v1/users", &operator, json!({"id": "cur", "display_name": "Curator", "email": "c@b.example", "roles": ["curator", "admin"]}))
        .await?;
    let _: serde_json::Value = api
        .post("/v1/users", &operator, json!({"id": "adv", "display_name": "Advocate", "email": "a@b.example", "roles": ["advocate"],
            "department": "sales", "language": "fr"}))
        .await?;
    let curator = api.token("bench", "cur", &[Role::Curator, Role::Admin]);
    let advocate = api.token("bench", "adv", &[Role::Advocate]);
    let seeding = Instant::now();
    let departments = ["sales", "engineering", "hr", "support"];
    let topics = ["jobs", "product", "events", "csr", "news"];
    futures::stream::iter(0..posts)
        .map(|index| {
            let api = api.clone();
            let curator = curator.clone();
            async move {
                let mut body = json!({"title": format!("Post {index}"), "commentary": format!("Commentary number {index} about our work"),
                    "link_url": format!("https://www.acme.example/{index}"), "content_type": "company_news",
                    "topics": [topics[index % topics.len()]]});
                if index % 3 == 0 {
                    body["targeting"] = json!({"departments": [departments[index % departments.len()]]});
                }
                if index % 4 == 0 {
                    body["variants"] = json!([{"language": "fr", "title": format!("Article {index}"), "commentary": "En français"}]);
                }
                let post: Post = api.post("/v1/posts", &curator, body).await?;
                let _: Post = api.post(&format!("/v1/posts/{}/publish", post.id), &curator, json!({})).await?;
                Ok::<_, crate::demo::ApiError>(())
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let seeded = seeding.elapsed();
    let _: serde_json::Value = api
        .send(
            reqwest::Method::PUT,
            "/v1/me/topics/events",
            &advocate,
            None,
        )
        .await?;
    // Warm up, then read first pages and deeper pages one after another.
    let _: Page<FeedItem> = api.get("/v1/feed", &advocate).await?;
    let mut samples = Vec::with_capacity(reads);
    let started = Instant::now();
    let mut cursor: Option<String> = None;
    for index in 0..reads {
        let path = match (&cursor, index % 10) {
            (Some(cursor), step) if step != 0 => format!("/v1/feed?limit=20&cursor={cursor}"),
            _ => "/v1/feed?limit=20".to_string(),
        };
        let one = Instant::now();
        let page: Page<FeedItem> = api.get(&path, &advocate).await?;
        samples.push(one.elapsed());
        cursor = page.next_cursor;
    }
    let latency = summarize(samples, started.elapsed());
    let figures = format!(
        "{posts} posts (seeded in {:.0} s), {} page reads of 20 through the gateway: p50 {}, p99 {}, max {}",
        seeded.as_secs_f64(),
        latency.count,
        millis(latency.p50),
        millis(latency.p99),
        millis(latency.max)
    );
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), running.join()).await;
    record(options, "feed page latency", &figures, "p99 < 20 ms")
}

use futures::StreamExt;

/// Leaderboard reads and points lag: top-50 and my-rank p99 through the gateway with
/// 100,000 advocates and 10 million ledger entries (seeded by the database), then the lag
/// from an engagement event to its points under a sustained stream of engagement.
async fn leaderboard(config: &chorus_kit::Config, options: &BenchOptions) -> anyhow::Result<()> {
    use chorus_events::engagement::v1::{EngagementRecorded, Metric};
    use chorus_gamification::bench::{advocate_id, department_of, seed_leaderboard};
    let advocates: u64 = if options.quick { 10_000 } else { 100_000 };
    let entries: u64 = if options.quick { 200_000 } else { 10_000_000 };
    let reads: usize = if options.quick { 200 } else { 2_000 };
    let (events, rate_per_second): (usize, u64) = if options.quick {
        (200, 100)
    } else {
        (4_000, 100)
    };
    let tenant = "bench";
    let folder = tempfile::tempdir()?;
    let mut config = config.clone();
    config.data_dir = folder.path().to_path_buf();
    config.scheduling.stagger_window_secs = 0;
    let gateway_port = crate::nats::free_port()?;
    config.gateway.listen = format!("127.0.0.1:{gateway_port}");
    config.netsim.listen = format!("127.0.0.1:{}", crate::nats::free_port()?);
    config.public_url = format!("http://127.0.0.1:{gateway_port}");
    config.admin_listen = "127.0.0.1:0".into();
    config.log = "warn".into();
    let seeding = Instant::now();
    seed_leaderboard(
        &config.database_url("gamification"),
        tenant,
        advocates,
        entries,
        chrono::Utc::now(),
    )
    .await?;
    let seeded = seeding.elapsed();
    let secrets = chorus_kit::auth::Secrets::resolve(&config)?;
    let shutdown = chorus_kit::Shutdown::new();
    let running = crate::start(
        config.clone(),
        &["identity", "gamification", "gateway"],
        shutdown.clone(),
    )
    .await?;
    let api = Api::new(&config.public_url, secrets.dev_signing_key_bytes());
    for _ in 0..400 {
        let ready = api
            .http
            .get(format!("{}/readyz", api.base_url))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success());
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let operator = api.token(tenant, "ops", &[Role::Operator]);
    let _: serde_json::Value = api
        .post(
            "/v1/tenants",
            &operator,
            json!({"id": tenant, "name": "Bench"}),
        )
        .await?;
    // Twenty readers spread over the board (identity must know them to sign in).
    let mut readers = Vec::new();
    for sample in 0..20u64 {
        let index = (sample * advocates / 20 + sample * 37) % advocates;
        let id = advocate_id(index);
        let _: serde_json::Value = api
            .post("/v1/users", &operator, json!({"id": id, "display_name": format!("Advocate {id}"),
                "email": format!("{id}@bench.example"), "roles": ["advocate"], "department": department_of(index)}))
            .await?;
        readers.push(api.token(tenant, &id, &[Role::Advocate]));
    }
    for reader in &readers {
        let _: serde_json::Value = api.get("/v1/leaderboard?period=all_time", reader).await?;
    }
    let measure = |path: &'static str| {
        let api = api.clone();
        let readers = readers.clone();
        async move {
            let mut samples = Vec::with_capacity(reads);
            let started = Instant::now();
            for index in 0..reads {
                let query = match index % 3 {
                    0 => "period=all_time",
                    1 => "period=week",
                    _ => "board=department&period=month",
                };
                let one = Instant::now();
                let _: serde_json::Value = api
                    .get(&format!("{path}?{query}"), &readers[index % readers.len()])
                    .await?;
                samples.push(one.elapsed());
            }
            Ok::<_, crate::demo::ApiError>(summarize(samples, started.elapsed()))
        }
    };
    let top = measure("/v1/leaderboard").await?;
    let rank = measure("/v1/me/rank").await?;
    // Points lag under sustained load: engagement events at a steady rate, each timed
    // until its `points_awarded` event (published after the commit that moved the ranks).
    let bus = chorus_bus::Bus::connect(&running.nats_url).await?;
    let mut awarded = bus
        .client
        .subscribe(format!("chorus.{tenant}.gamification.points_awarded.v1"))
        .await?;
    let sent: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>> =
        Default::default();
    let receiver = tokio::spawn({
        let sent = sent.clone();
        async move {
            let mut lags = Vec::with_capacity(events);
            while lags.len() < events {
                let Ok(Some(message)) =
                    tokio::time::timeout(Duration::from_secs(30), awarded.next()).await
                else {
                    break;
                };
                let arrived = Instant::now();
                let source = message
                    .headers
                    .as_ref()
                    .and_then(|headers| headers.get("Nats-Msg-Id"))
                    .map(|id| id.to_string())
                    .and_then(|id| id.strip_prefix("points-click-").map(str::to_string));
                if let Some(source) = source
                    && let Some(started) = sent.lock().expect("lag map").remove(&source)
                {
                    lags.push(arrived - started);
                }
            }
            lags
        }
    });
    let interval = Duration::from_secs(1) / rate_per_second as u32;
    let load_started = Instant::now();
    let mut ticker = tokio::time::interval(interval);
    for index in 0..events {
        ticker.tick().await;
        let user = advocate_id((index as u64 * 7_919) % advocates);
        let event = EngagementRecorded {
            tenant_id: tenant.into(),
            share_id: format!("bench-share-{index}"),
            user_id: user,
            post_id: format!("bench-post-{index}"),
            network: "linkedin".into(),
            metric: Metric::Click as i32,
            delta: 1,
            total: 1,
            observed_at: Some(chorus_events::to_timestamp(chrono::Utc::now())),
            unique_visitor: true,
        };
        let started = Instant::now();
        let event_id = bus.publish_event(&event, "bench").await?;
        sent.lock().expect("lag map").insert(event_id, started);
    }
    let lags = receiver.await?;
    let lag = summarize(lags, load_started.elapsed());
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), running.join()).await;
    let figures = format!(
        "{advocates} advocates, {entries} ledger entries (seeded in {:.0} s); through the gateway: top-50 p50 {}, p99 {}, max {}; \
         my-rank p50 {}, p99 {}, max {}; points lag at {rate_per_second} engagement events/s ({} of {events} measured): p50 {}, p99 {}, max {}",
        seeded.as_secs_f64(),
        millis(top.p50),
        millis(top.p99),
        millis(top.max),
        millis(rank.p50),
        millis(rank.p99),
        millis(rank.max),
        lag.count,
        millis(lag.p50),
        millis(lag.p99),
        millis(lag.max),
    );
    record(
        options,
        "leaderboard",
        &figures,
        "top-50 and my-rank p99 < 20 ms; points lag p99 < 1 s",
    )
}

#[cfg(test)]
mod tests {
    use super::with_row;

    #[test]
    fn rows_go_to_the_end_of_the_table_before_the_notes() {
        let record = "# B\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nA note.\n";
        assert_eq!(
            with_row(record, "| 3 | 4 |"),
            "# B\n\n| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\nA note.\n"
        );
        let fresh = with_row("", "| 3 | 4 |");
        assert!(
            fresh.ends_with("|---|---|---|---|---|---|\n| 3 | 4 |\n"),
            "{fresh}"
        );
    }
}
