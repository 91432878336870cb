//! An HTTP load generator, run by `chorus bench` as a separate process so that the measured
//! server does not share its runtime with the load. Two paces:
//! - a fixed rate (open loop): latency is measured from each request's intended start, so a
//!   stalled server cannot hide its queue (coordinated omission);
//! - a fixed concurrency (closed loop): that many requests in flight back to back, which
//!   gives the highest rate the server reaches from this process.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use tracing::Instrument;

static REQUESTS: LazyLock<chorus_telemetry::metrics::IntCounterVec> = LazyLock::new(|| {
    chorus_telemetry::metrics::counter_vec(
        "chorus_load_requests_total",
        "Requests sent by the load generator, by pace and outcome (ok: the expected status)",
        &["pace", "outcome"],
    )
});

#[derive(Debug, Serialize, Deserialize)]
pub struct LoadReport {
    pub sent: usize,
    pub ok: usize,
    pub errors: usize,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Requests answered with the expected status per second of the run.
    #[serde(default)]
    pub ok_per_second: f64,
    /// The first unexpected answer (status and the start of its body) or transport error.
    #[serde(default)]
    pub first_error: Option<String>,
}

/// What each request is.
#[derive(Debug, Clone)]
pub struct RequestShape {
    pub url: String,
    pub method: reqwest::Method,
    pub headers: HeaderMap,
    pub body: Option<bytes::Bytes>,
    /// A header that gets a fresh UUID on every request (such as `Idempotency-Key`).
    pub unique_header: Option<HeaderName>,
    pub expected_status: u16,
}

impl RequestShape {
    /// A GET of `url` expecting `expected_status`.
    pub fn get(url: &str, expected_status: u16) -> RequestShape {
        RequestShape {
            url: url.to_string(),
            method: reqwest::Method::GET,
            headers: HeaderMap::new(),
            body: None,
            unique_header: None,
            expected_status,
        }
    }

    /// Adds `Name: value` headers given on the command line.
    pub fn with_header_lines(mut self, lines: &[String]) -> anyhow::Result<RequestShape> {
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("header {line:?} is not `Name: value`"))?;
            self.headers.append(
                HeaderName::try_from(name.trim())?,
                HeaderValue::try_from(value.trim())?,
            );
        }
        Ok(self)
    }
}

/// How the load is paced.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// `rate` requests per second, whatever the answers (open loop).
    Rate { rate: u32 },
    /// `workers` requests in flight, each sent when the previous answer arrived (closed loop).
    Concurrency { workers: u32 },
}

impl Pace {
    fn label(&self) -> &'static str {
        match self {
            Pace::Rate { .. } => "rate",
            Pace::Concurrency { .. } => "concurrency",
        }
    }
}

/// Sends GET `url` at `rate` requests per second for `seconds`, expecting `expected_status`.
pub async fn run(
    url: &str,
    rate: u32,
    seconds: u32,
    expected_status: u16,
) -> anyhow::Result<LoadReport> {
    run_shaped(
        RequestShape::get(url, expected_status),
        Pace::Rate { rate },
        seconds,
    )
    .await
}

/// Sends requests of `shape` for `seconds` at `pace`.
pub async fn run_shaped(
    shape: RequestShape,
    pace: Pace,
    seconds: u32,
) -> anyhow::Result<LoadReport> {
    let span = tracing::info_span!(
        "load",
        url = %shape.url,
        method = %shape.method,
        pace = pace.label(),
        seconds,
    );
    async move {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(512)
            .timeout(Duration::from_secs(10))
            .build()?;
        let sender = Sender {
            client,
            shape: Arc::new(shape),
            pace: pace.label(),
        };
        let report = match pace {
            Pace::Rate { rate } => at_rate(&sender, rate, seconds).await?,
            Pace::Concurrency { workers } => at_concurrency(&sender, workers, seconds).await?,
        };
        tracing::info!(
            sent = report.sent,
            ok = report.ok,
            ok_per_second = report.ok_per_second,
            p99_ms = report.p99_ms,
            "load finished"
        );
        Ok(report)
    }
    .instrument(span)
    .await
}

#[derive(Clone)]
struct Sender {
    client: reqwest::Client,
    shape: Arc<RequestShape>,
    pace: &'static str,
}

/// The outcome of one request: did it get the expected status, and if not, what instead.
type Outcome = Result<(), String>;

impl Sender {
    async fn send(&self, index: usize) -> Outcome {
        let shape = &self.shape;
        let mut request = self
            .client
            .request(shape.method.clone(), &shape.url)
            .headers(shape.headers.clone())
            .header(
                reqwest::header::USER_AGENT,
                "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36",
            )
            // Visitors from many addresses, as tracked links see them.
            .header(
                "x-forwarded-for",
                format!("198.18.{}.{}", (index / 250) % 250, index % 250),
            );
        if let Some(name) = &shape.unique_header {
            request = request.header(name.clone(), uuid::Uuid::now_v7().to_string());
        }
        if let Some(body) = &shape.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let outcome =
            match request.send().await {
                Ok(response) if response.status().as_u16() == shape.expected_status => {
                    // Read the whole answer: a client does, and the connection is then reused.
                    response.bytes().await.map(|_| ()).map_err(|error| {
                        format!("reading the answer failed: {}", error.without_url())
                    })
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body = response.text().await.unwrap_or_default();
                    Err(format!(
                        "status {status} instead of {}: {}",
                        shape.expected_status,
                        body.chars().take(300).collect::<String>()
                    ))
                }
                Err(error) => Err(format!("request failed: {}", error.without_url())),
            };
        REQUESTS
            .with_label_values(&[self.pace, if outcome.is_ok() { "ok" } else { "error" }])
            .inc();
        outcome
    }
}

async fn at_rate(sender: &Sender, rate: u32, seconds: u32) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(rate > 0, "the rate must be at least 1 request per second");
    let total = (rate * seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let limit = Arc::new(tokio::sync::Semaphore::new(512));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for index in 0..total {
        let intended = started + interval.mul_f64(index as f64);
        tokio::time::sleep_until(intended.into()).await;
        let permit = limit.clone().acquire_owned().await?;
        let sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let outcome = sender.send(index).await;
            (intended.elapsed(), outcome)
        }));
    }
    let mut samples = Vec::with_capacity(total);
    let mut outcomes = Vec::with_capacity(total);
    for task in tasks {
        let (latency, outcome) = task.await?;
        samples.push(latency);
        outcomes.push(outcome);
    }
    Ok(report(samples, outcomes, started.elapsed()))
}

async fn at_concurrency(sender: &Sender, workers: u32, seconds: u32) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(workers > 0, "the concurrency must be at least 1");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(u64::from(seconds));
    let next_index = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(workers as usize);
    for _ in 0..workers {
        let sender = sender.clone();
        let next_index = next_index.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut outcomes = Vec::new();
            while Instant::now() < deadline {
                let index = next_index.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let one = Instant::now();
                let outcome = sender.send(index).await;
                samples.push(one.elapsed());
                outcomes.push(outcome);
            }
            (samples, outcomes)
        }));
    }
    let mut samples = Vec::new();
    let mut outcomes = Vec::new();
    for task in tasks {
        let (worker_samples, worker_outcomes) = task.await?;
        samples.extend(worker_samples);
        outcomes.extend(worker_outcomes);
    }
    Ok(report(samples, outcomes, started.elapsed()))
}

fn report(samples: Vec<Duration>, outcomes: Vec<Outcome>, wall: Duration) -> LoadReport {
    debug_assert_eq!(samples.len(), outcomes.len());
    let sent = outcomes.len();
    let ok = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let first_error = outcomes.into_iter().find_map(Result::err);
    let seconds = wall.as_secs_f64();
    let (p50_ms, p99_ms, max_ms) = if samples.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        let summary = crate::bench::summarize(samples, wall);
        (
            summary.p50.as_secs_f64() * 1e3,
            summary.p99.as_secs_f64() * 1e3,
            summary.max.as_secs_f64() * 1e3,
        )
    };
    LoadReport {
        sent,
        ok,
        errors: sent - ok,
        seconds,
        p50_ms,
        p99_ms,
        max_ms,
        ok_per_second: ok as f64 / seconds.max(f64::EPSILON),
        first_error,
    }
}

/// Runs `chorus load` (this executable) as a separate process with `arguments` and reads its
/// report.
pub async fn spawn(arguments: Vec<String>) -> anyhow::Result<LoadReport> {
    let binary = std::env::current_exe()?;
    let output = tokio::process::Command::new(binary)
        .arg("load")
        .args(&arguments)
        .kill_on_drop(true)
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "load generator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).map_err(|error| {
        anyhow::anyhow!(
            "unreadable load report ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    /// A server that records the keys, bodies and methods it receives and answers 201.
    async fn recording_server() -> (String, Arc<Mutex<Vec<(String, String, String)>>>) {
        let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
        let app = axum::Router::new().route(
            "/things",
            axum::routing::any({
                let seen = seen.clone();
                move |method: axum::http::Method, headers: axum::http::HeaderMap, body: String| {
                    let seen = seen.clone();
                    async move {
                        let key = headers
                            .get("idempotency-key")
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
                            == Some("Bearer t0k");
                        seen.lock().unwrap().push((method.to_string(), key, body));
                        if authorized {
                            axum::http::StatusCode::CREATED
                        } else {
                            axum::http::StatusCode::UNAUTHORIZED
                        }
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{address}/things"), seen)
    }

    fn post_shape(url: &str, token: &str) -> RequestShape {
        RequestShape {
            url: url.to_string(),
            method: reqwest::Method::POST,
            headers: HeaderMap::new(),
            body: Some(bytes::Bytes::from_static(br#"{"caption":"hi"}"#)),
            unique_header: Some(HeaderName::from_static("idempotency-key")),
            expected_status: 201,
        }
        .with_header_lines(&[format!("Authorization: Bearer {token}")])
        .unwrap()
    }

    #[tokio::test]
    async fn each_request_carries_the_body_the_headers_and_its_own_key() {
        let (url, seen) = recording_server().await;
        let report = run_shaped(post_shape(&url, "t0k"), Pace::Rate { rate: 50 }, 1)
            .await
            .unwrap();
        assert_eq!((report.sent, report.ok, report.errors), (50, 50, 0));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 50);
        assert!(
            seen.iter()
                .all(|(method, _, body)| method == "POST" && body == r#"{"caption":"hi"}"#)
        );
        let keys: HashSet<&str> = seen.iter().map(|(_, key, _)| key.as_str()).collect();
        assert_eq!(keys.len(), 50, "every request has its own idempotency key");
    }

    #[tokio::test]
    async fn a_closed_loop_counts_what_it_sent_and_names_the_first_failure() {
        let (url, seen) = recording_server().await;
        let report = run_shaped(
            post_shape(&url, "wrong"),
            Pace::Concurrency { workers: 4 },
            1,
        )
        .await
        .unwrap();
        assert!(report.sent > 4, "{report:?}");
        assert_eq!(report.sent, seen.lock().unwrap().len());
        assert_eq!(report.ok, 0);
        assert_eq!(report.ok_per_second, 0.0);
        let error = report.first_error.expect("the failure is reported");
        assert!(error.starts_with("status 401 instead of 201"), "{error}");
    }

    #[test]
    fn header_lines_must_have_a_name_and_a_value() {
        let shape = RequestShape::get("http://127.0.0.1:1/", 200);
        assert!(
            shape
                .clone()
                .with_header_lines(&["no colon".into()])
                .is_err()
        );
        let shape = shape.with_header_lines(&["X-One: 1".into()]).unwrap();
        assert_eq!(shape.headers.get("x-one").unwrap(), "1");
    }
}
