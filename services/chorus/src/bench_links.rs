//! Tracked-link redirects under load (from a separate process) and click ingestion into
//! aggregates, beside the raw JetStream rate.

use crate::bench::{BenchOptions, record};
use crate::load::LoadReport;
use chorus_api::engagement::ShareStats;
use chorus_api::scheduling::Share;
use chorus_kit::Role;
use serde_json::json;
use std::time::{Duration, Instant};

pub async fn redirect(config: &chorus_kit::Config, options: &BenchOptions) -> anyhow::Result<()> {
    let (rate, seconds) = if options.quick { (200, 3) } else { (2_000, 15) };
    let (api, shutdown, running, _folder) = crate::bench::install(config, crate::TARGETS).await?;
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
