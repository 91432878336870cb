//! An open-loop HTTP load generator, run by `chorus bench` as a separate process so that the
//! measured server does not share its runtime with the load. Latency is measured from each
//! request's intended start, so a stalled server cannot hide its queue (coordinated omission).

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Serialize, Deserialize)]
pub struct LoadReport {
    pub sent: usize,
    pub ok: usize,
    pub errors: usize,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Sends GET `url` at `rate` requests per second for `seconds`, expecting `expected_status`.
pub async fn run(
    url: &str,
    rate: u32,
    seconds: u32,
    expected_status: u16,
) -> anyhow::Result<LoadReport> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(10))
        .build()?;
    let total = (rate * seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let limit = Arc::new(tokio::sync::Semaphore::new(512));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for index in 0..total {
        let intended = started + interval.mul_f64(index as f64);
        tokio::time::sleep_until(intended.into()).await;
        let permit = limit.clone().acquire_owned().await?;
        let client = client.clone();
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let outcome = client
                .get(&url)
                .header(
                    reqwest::header::USER_AGENT,
                    "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36",
                )
                .header(
                    "x-forwarded-for",
                    format!("198.18.{}.{}", (index / 250) % 250, index % 250),
                )
                .send()
                .await;
            let ok =
                matches!(&outcome, Ok(response) if response.status().as_u16() == expected_status);
            (intended.elapsed(), ok)
        }));
    }
    let mut samples = Vec::with_capacity(total);
    let mut ok = 0;
    for task in tasks {
        let (latency, success) = task.await?;
        samples.push(latency);
        ok += usize::from(success);
    }
    let seconds = started.elapsed().as_secs_f64();
    let summary = crate::bench::summarize(samples, started.elapsed());
    Ok(LoadReport {
        sent: total,
        ok,
        errors: total - ok,
        seconds,
        p50_ms: summary.p50.as_secs_f64() * 1e3,
        p99_ms: summary.p99.as_secs_f64() * 1e3,
        max_ms: summary.max.as_secs_f64() * 1e3,
    })
}
