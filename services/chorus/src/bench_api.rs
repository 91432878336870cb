//! `chorus bench api`: four API paths through the real gateway (every service running)
//! beside a bare axum handler on the same runtime, loaded by the same separate process:
//! the highest rate at a fixed concurrency and the latency at a fixed rate, and their ratios.
//!
//! `chorus bench memory`: resident memory (VmRSS) of the all-in-one process and of each
//! service run as its own process, idle and under a mixed load of the same four paths.

use crate::bench::{BenchOptions, record};
use crate::demo::Api;
use crate::load::LoadReport;
use chorus_kit::Role;
use futures::StreamExt;
use serde_json::json;
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use tracing::Instrument;

static API_FIGURES: LazyLock<chorus_telemetry::metrics::IntGaugeVec> = LazyLock::new(|| {
    chorus_telemetry::metrics::gauge_vec(
        "chorus_bench_api",
        "Figures of the last `bench api` run: ok requests per second at fixed concurrency \
         (throughput) and p99 microseconds at a fixed rate (p99_us), by path and target",
        &["path", "target", "figure"],
    )
});

static RESIDENT_BYTES: LazyLock<chorus_telemetry::metrics::IntGaugeVec> = LazyLock::new(|| {
    chorus_telemetry::metrics::gauge_vec(
        "chorus_bench_resident_bytes",
        "Resident memory measured by the last `bench memory` run, by deployment, process and phase",
        &["deployment", "process", "phase"],
    )
});

/// Requests in flight during the throughput runs.
const CONCURRENCY: u32 = 32;

/// One measured API path: how the load generator calls it, and the fixed rate of its latency run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Feed,
    ShareCreate,
    Leaderboard,
    Redirect,
}

impl Path {
    const ALL: [Path; 4] = [
        Path::Feed,
        Path::Leaderboard,
        Path::Redirect,
        // Last: every share created leaves work behind it (engagement registers its link).
        Path::ShareCreate,
    ];

    fn name(self) -> &'static str {
        match self {
            Path::Feed => "feed read",
            Path::ShareCreate => "share creation",
            Path::Leaderboard => "leaderboard read",
            Path::Redirect => "redirect",
        }
    }

    fn route(self) -> &'static str {
        match self {
            Path::Feed => "GET /v1/feed",
            Path::ShareCreate => "POST /v1/shares",
            Path::Leaderboard => "GET /v1/leaderboard",
            Path::Redirect => "GET /l/{code}",
        }
    }

    /// Requests per second of the latency runs (full size).
    fn rate(self) -> u32 {
        match self {
            Path::Feed => 200,
            Path::ShareCreate => 100,
            Path::Leaderboard => 200,
            Path::Redirect => 1_000,
        }
    }
}

/// What the load generator needs to call a path of a seeded installation.
struct Workload {
    base_url: String,
    advocate: String,
    post_id: String,
    account_id: String,
    tracked_url: String,
}

impl Workload {
    /// A tenant with a curator and an advocate whose LinkedIn account is connected, one share
    /// published (its tracked link is the redirect path), and `posts` more published posts.
    async fn seed(api: &Api, posts: usize) -> anyhow::Result<Workload> {
        let (advocate, share) = crate::bench_links::published_share(api).await?;
        anyhow::ensure!(
            share.status == chorus_api::scheduling::ShareStatus::Published,
            "the seeding share did not publish: {:?} ({})",
            share.status,
            share.failure_reason.unwrap_or_default()
        );
        let curator = api.token("bench", "cur", &[Role::Curator]);
        let topics = ["jobs", "product", "events", "csr", "news"];
        futures::stream::iter(0..posts)
            .map(|index| {
                let api = api.clone();
                let curator = curator.clone();
                async move {
                    let body = json!({"title": format!("Post {index}"),
                        "commentary": format!("Commentary number {index} about our work"),
                        "link_url": format!("https://www.acme.example/{index}"),
                        "content_type": "company_news", "topics": [topics[index % topics.len()]]});
                    let post: chorus_api::content::Post =
                        api.post("/v1/posts", &curator, body).await?;
                    let _: serde_json::Value = api
                        .post(
                            &format!("/v1/posts/{}/publish", post.id),
                            &curator,
                            json!({}),
                        )
                        .await?;
                    Ok::<_, crate::demo::ApiError>(())
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Workload {
            base_url: api.base_url.clone(),
            advocate,
            post_id: share.post_id,
            account_id: share.account_id,
            tracked_url: share.tracked_url,
        })
    }

    /// `chorus load` arguments of one request to `path` (the pace is added by the caller).
    fn gateway_request(&self, path: Path) -> Vec<String> {
        let authorization = format!("Authorization: Bearer {}", self.advocate);
        match path {
            Path::Feed => arguments(
                &format!("{}/v1/feed?limit=20", self.base_url),
                &[authorization],
                200,
            ),
            Path::Leaderboard => arguments(
                &format!("{}/v1/leaderboard?period=all_time", self.base_url),
                &[authorization],
                200,
            ),
            Path::Redirect => arguments(&self.tracked_url, &[], 302),
            Path::ShareCreate => {
                let mut arguments = arguments(
                    &format!("{}/v1/shares", self.base_url),
                    &[authorization],
                    201,
                );
                arguments.extend(share_body_arguments(&self.post_id, &self.account_id));
                arguments
            }
        }
    }
}

/// Scheduled a day ahead: creation is measured, not the publications it would start.
fn share_body_arguments(post_id: &str, account_id: &str) -> Vec<String> {
    let body = json!({"post_id": post_id, "account_id": account_id, "caption": "Worth a read",
        "scheduled_at": chrono::Utc::now() + chrono::Duration::days(1)});
    vec![
        "--method".into(),
        "POST".into(),
        "--body".into(),
        body.to_string(),
        "--unique-header".into(),
        "Idempotency-Key".into(),
    ]
}

fn arguments(url: &str, headers: &[String], status: u16) -> Vec<String> {
    let mut arguments = vec![
        "--url".to_string(),
        url.to_string(),
        "--status".into(),
        status.to_string(),
    ];
    for header in headers {
        arguments.push("--header".into());
        arguments.push(header.clone());
    }
    arguments
}

/// The same request (method, headers, body) sent to the bare handler instead, which answers 200.
fn bare_request(gateway_request: &[String], bare_url: &str) -> Vec<String> {
    let mut arguments = Vec::with_capacity(gateway_request.len());
    let mut pairs = gateway_request.chunks(2);
    while let Some([name, value]) = pairs.next() {
        let value = match name.as_str() {
            "--url" => bare_url.to_string(),
            "--status" => "200".to_string(),
            _ => value.clone(),
        };
        arguments.push(name.clone());
        arguments.push(value);
    }
    arguments
}

fn with_pace(request: &[String], pace: &str, value: u32, seconds: u32) -> Vec<String> {
    let mut arguments = request.to_vec();
    arguments.extend([
        format!("--{pace}"),
        value.to_string(),
        "--seconds".into(),
        seconds.to_string(),
    ]);
    arguments
}

/// A handler that does nothing but answer a small JSON body (reading the request body first).
async fn bare_handler(_body: bytes::Bytes) -> axum::Json<serde_json::Value> {
    axum::Json(json!({"ok": true, "service": "bare"}))
}

/// Serves the bare handler on a free port of this process until `shutdown`.
async fn serve_bare(shutdown: chorus_kit::Shutdown) -> anyhow::Result<String> {
    let app = axum::Router::new().route("/bare", axum::routing::any(bare_handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::warn!(%error, "bare handler stopped");
        }
    });
    Ok(format!("http://{address}/bare"))
}

/// Runs a load and checks that it measured something.
async fn measured(label: &str, arguments: Vec<String>) -> anyhow::Result<LoadReport> {
    let report = crate::load::spawn(arguments)
        .instrument(tracing::info_span!("bench_load", label))
        .await?;
    anyhow::ensure!(
        report.ok > 0,
        "{label}: no request succeeded ({} sent): {}",
        report.sent,
        report.first_error.as_deref().unwrap_or("no error recorded")
    );
    tracing::info!(
        label,
        sent = report.sent,
        ok = report.ok,
        ok_per_second = report.ok_per_second,
        p50_ms = report.p50_ms,
        p99_ms = report.p99_ms,
        "load measured"
    );
    Ok(report)
}

/// Throughput at fixed concurrency and latency at a fixed rate of one path.
struct PathFigures {
    throughput: LoadReport,
    latency: LoadReport,
}

fn errors_note(report: &LoadReport) -> String {
    match &report.first_error {
        Some(error) if report.errors > 0 => format!(
            " ({} of {} failed, first: {error})",
            report.errors, report.sent
        ),
        _ => String::new(),
    }
}

pub async fn api(config: &chorus_kit::Config, options: &BenchOptions) -> anyhow::Result<()> {
    let span = tracing::info_span!("bench_api", quick = options.quick);
    api_scenario(config, options).instrument(span).await
}

async fn api_scenario(config: &chorus_kit::Config, options: &BenchOptions) -> anyhow::Result<()> {
    use chorus_gamification::bench::seed_leaderboard;
    let (posts, advocates, entries, seconds, concurrency) = if options.quick {
        (20, 1_000, 10_000, 1, 8)
    } else {
        (1_000, 10_000, 200_000, 10, CONCURRENCY)
    };
    let folder = tempfile::tempdir()?;
    let config = crate::bench::fresh_config(config, folder.path())?;
    seed_leaderboard(
        &config.database_url("gamification"),
        "bench",
        advocates,
        entries,
        chrono::Utc::now(),
    )
    .await?;
    let (api, shutdown, running) = crate::bench::start_ready(&config, crate::TARGETS).await?;
    let seeding = Instant::now();
    let workload = Workload::seed(&api, posts).await?;
    let seeded = seeding.elapsed();
    let bare_url = serve_bare(shutdown.clone()).await?;
    tracing::info!(posts, advocates, entries, seeded_ms = seeded.as_millis() as u64, %bare_url, "api bench seeded");

    let mut results = Vec::new();
    for path in Path::ALL {
        let rate = if options.quick { 20 } else { path.rate() };
        let gateway_request = workload.gateway_request(path);
        let bare = bare_request(&gateway_request, &bare_url);
        // Warm the gateway's caches (caller, link) and the database's pages (a smoke run
        // goes without).
        if !options.quick {
            measured("warm-up", with_pace(&gateway_request, "concurrency", 2, 1)).await?;
        }
        // Fixed-rate runs first: a throughput run leaves work behind (shares to register).
        let bare_latency = measured("bare rate", with_pace(&bare, "rate", rate, seconds)).await?;
        let gateway_latency = measured(
            "gateway rate",
            with_pace(&gateway_request, "rate", rate, seconds),
        )
        .await?;
        let bare_throughput = measured(
            "bare concurrency",
            with_pace(&bare, "concurrency", concurrency, seconds),
        )
        .await?;
        let gateway_throughput = measured(
            "gateway concurrency",
            with_pace(&gateway_request, "concurrency", concurrency, seconds),
        )
        .await?;
        let gateway = PathFigures {
            throughput: gateway_throughput,
            latency: gateway_latency,
        };
        let bare = PathFigures {
            throughput: bare_throughput,
            latency: bare_latency,
        };
        for (target, figures) in [("gateway", &gateway), ("bare", &bare)] {
            API_FIGURES
                .with_label_values(&[path.name(), target, "throughput"])
                .set(figures.throughput.ok_per_second.round() as i64);
            API_FIGURES
                .with_label_values(&[path.name(), target, "p99_us"])
                .set((figures.latency.p99_ms * 1e3).round() as i64);
        }
        results.push((path, rate, gateway, bare));
    }
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), running.join()).await;

    for (path, rate, gateway, bare) in &results {
        let figures = format!(
            "{} through the gateway with every service ({posts} posts, {advocates} advocates on the board) beside a bare axum handler (small JSON) in the same process, \
             load from a separate process: throughput at {concurrency} in flight: gateway {:.0}/s{}, bare {:.0}/s{}, ratio {:.3}; \
             at {rate} req/s for {seconds} s: gateway p50 {:.2} ms, p99 {:.2} ms{}, bare p50 {:.2} ms, p99 {:.2} ms{}, p99 ratio {:.1}",
            path.route(),
            gateway.throughput.ok_per_second,
            errors_note(&gateway.throughput),
            bare.throughput.ok_per_second,
            errors_note(&bare.throughput),
            gateway.throughput.ok_per_second / bare.throughput.ok_per_second.max(f64::EPSILON),
            gateway.latency.p50_ms,
            gateway.latency.p99_ms,
            errors_note(&gateway.latency),
            bare.latency.p50_ms,
            bare.latency.p99_ms,
            errors_note(&bare.latency),
            gateway.latency.p99_ms / bare.latency.p99_ms.max(f64::EPSILON),
        );
        record(
            options,
            &format!("api {}", path.name()),
            &figures,
            "gateway/bare ratios of the same run",
        )?;
    }
    Ok(())
}

/// Resident memory of a process in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn resident_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|error| anyhow::anyhow!("cannot read /proc/{pid}/status: {error}"))?;
    vm_rss_bytes(&status).ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/{pid}/status"))
}

/// The `VmRSS:  1234 kB` line of a `/proc/<pid>/status` text, in bytes.
fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut fields = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => Some(value * 1024),
        _ => None,
    }
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A `chorus run` child process.
struct ServiceProcess {
    name: String,
    child: tokio::process::Child,
    pid: u32,
    admin_url: String,
    log: std::path::PathBuf,
}

impl ServiceProcess {
    /// Starts `chorus run --target <target>` with the deployment's settings and waits until
    /// its own `/readyz` answers.
    async fn start(
        target: &str,
        environment: &[(String, String)],
        folder: &std::path::Path,
    ) -> anyhow::Result<ServiceProcess> {
        let admin_listen = format!("127.0.0.1:{}", crate::nats::free_port()?);
        let log = folder.join(format!("{}.log", target.replace(',', "-")));
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["run", "--target", target])
            .envs(environment.iter().map(|(name, value)| (name, value)))
            .env("CHORUS_ADMIN_LISTEN", &admin_listen)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow::anyhow!("{target} exited at once"))?;
        let mut process = ServiceProcess {
            name: target.to_string(),
            child,
            pid,
            admin_url: format!("http://{admin_listen}"),
            log,
        };
        process.wait_ready().await?;
        Ok(process)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("{} exited with {status}: {}", self.name, self.log_tail());
            }
            let ready = http
                .get(format!("{}/readyz", self.admin_url))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("{} not ready within 60 s: {}", self.name, self.log_tail())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(2_000);
        text[text.floor_char_boundary(start)..].to_string()
    }

    fn resident_bytes(&mut self) -> anyhow::Result<u64> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!("{} exited with {status}: {}", self.name, self.log_tail());
        }
        resident_bytes(self.pid)
    }
}

/// The processes of one deployment, their idle memory and their peak under load.
struct Deployment {
    label: &'static str,
    processes: Vec<ServiceProcess>,
    nats: crate::nats::NatsServer,
    api: Api,
    _folder: tempfile::TempDir,
}

/// Per process (then nats-server): (name, idle bytes, peak bytes under load).
type MemoryTable = Vec<(String, u64, u64)>;

impl Deployment {
    /// Starts the `groups` of targets (one process each) on a fresh nats-server and folder.
    async fn start(
        label: &'static str,
        config: &chorus_kit::Config,
        groups: &[&str],
    ) -> anyhow::Result<Deployment> {
        let folder = tempfile::tempdir()?;
        let nats =
            crate::nats::NatsServer::start(&config.nats_server_bin, &folder.path().join("nats"))
                .await?;
        let settings = crate::bench::fresh_config(config, folder.path())?;
        // Every process reads the keys generated here instead of racing to generate them.
        let secrets = chorus_kit::auth::Secrets::resolve(&settings)?;
        let environment: Vec<(String, String)> = vec![
            (
                "CHORUS_DATA_DIR".into(),
                folder.path().display().to_string(),
            ),
            ("CHORUS_NATS_URL".into(), nats.url()),
            (
                "CHORUS_GATEWAY__LISTEN".into(),
                settings.gateway.listen.clone(),
            ),
            (
                "CHORUS_NETSIM__LISTEN".into(),
                settings.netsim.listen.clone(),
            ),
            ("CHORUS_PUBLIC_URL".into(), settings.public_url.clone()),
            ("CHORUS_LOG".into(), "warn".into()),
        ];
        let mut processes = Vec::with_capacity(groups.len());
        for group in groups {
            processes.push(ServiceProcess::start(group, &environment, folder.path()).await?);
        }
        let api = Api::new(&settings.public_url, secrets.dev_signing_key_bytes());
        tracing::info!(
            deployment = label,
            processes = processes.len(),
            "deployment ready"
        );
        Ok(Deployment {
            label,
            processes,
            nats,
            api,
            _folder: folder,
        })
    }

    fn sample(&mut self) -> anyhow::Result<Vec<u64>> {
        let mut sizes = Vec::with_capacity(self.processes.len() + 1);
        for process in &mut self.processes {
            sizes.push(process.resident_bytes()?);
        }
        let nats_pid = self
            .nats
            .pid()
            .ok_or_else(|| anyhow::anyhow!("nats-server exited"))?;
        sizes.push(resident_bytes(nats_pid)?);
        Ok(sizes)
    }

    /// Idle memory (after a settling pause), then the peak while the four paths are loaded
    /// at once, each from its own load process.
    async fn measure(
        &mut self,
        posts: usize,
        rate_divisor: u32,
        seconds: u32,
    ) -> anyhow::Result<MemoryTable> {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = self.sample()?;
        let workload = Workload::seed(&self.api, posts).await?;
        let loads: Vec<_> = Path::ALL
            .iter()
            .map(|path| {
                let arguments = with_pace(
                    &workload.gateway_request(*path),
                    "rate",
                    (path.rate() / rate_divisor).max(1),
                    seconds,
                );
                tokio::spawn(crate::load::spawn(arguments))
            })
            .collect();
        let mut peak = idle.clone();
        while loads.iter().any(|load| !load.is_finished()) {
            for (highest, now) in peak.iter_mut().zip(self.sample()?) {
                *highest = (*highest).max(now);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for (path, load) in Path::ALL.iter().zip(loads) {
            let report = load.await??;
            anyhow::ensure!(
                report.ok > 0,
                "{} under {}: no request succeeded: {}",
                path.name(),
                self.label,
                report.first_error.as_deref().unwrap_or("no error recorded")
            );
        }
        let names = self
            .processes
            .iter()
            .map(|process| process.name.clone())
            .chain(["nats-server".to_string()]);
        let table: MemoryTable = names
            .zip(idle)
            .zip(peak)
            .map(|((name, idle), peak)| (name, idle, peak))
            .collect();
        for (name, idle, peak) in &table {
            RESIDENT_BYTES
                .with_label_values(&[self.label, name, "idle"])
                .set(*idle as i64);
            RESIDENT_BYTES
                .with_label_values(&[self.label, name, "loaded"])
                .set(*peak as i64);
            tracing::info!(deployment = self.label, process = %name, idle_bytes = idle, loaded_bytes = peak, "resident memory");
        }
        Ok(table)
    }

    async fn stop(mut self) {
        for process in &mut self.processes {
            let _ = process.child.kill().await;
        }
    }
}

pub async fn memory(config: &chorus_kit::Config, options: &BenchOptions) -> anyhow::Result<()> {
    let span = tracing::info_span!("bench_memory", quick = options.quick);
    memory_scenario(config, options).instrument(span).await
}

async fn memory_scenario(
    config: &chorus_kit::Config,
    options: &BenchOptions,
) -> anyhow::Result<()> {
    let (posts, rate_divisor, seconds) = if options.quick {
        (20, 20, 2)
    } else {
        (1_000, 2, 20)
    };
    let load = Path::ALL
        .iter()
        .map(|path| {
            format!(
                "{} at {}/s",
                path.route(),
                (path.rate() / rate_divisor).max(1)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");

    let mut together = Deployment::start("all-in-one", config, &["all"]).await?;
    let together_table = together.measure(posts, rate_divisor, seconds).await;
    together.stop().await;
    let together_table = together_table?;

    let mut apart = Deployment::start("one process per service", config, crate::TARGETS).await?;
    let apart_table = apart.measure(posts, rate_divisor, seconds).await;
    apart.stop().await;
    let apart_table = apart_table?;

    let describe = |table: &MemoryTable| {
        table
            .iter()
            .map(|(name, idle, peak)| format!("{name} {}/{}", mebibytes(*idle), mebibytes(*peak)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let services_total = |table: &MemoryTable| -> (u64, u64) {
        table
            .iter()
            .filter(|(name, _, _)| name != "nats-server")
            .fold((0, 0), |(idle, peak), row| (idle + row.1, peak + row.2))
    };
    let (together_idle, together_peak) = services_total(&together_table);
    let (apart_idle, apart_peak) = services_total(&apart_table);
    let figures = format!(
        "VmRSS idle/peak under load ({load} for {seconds} s, {posts} posts, separate load processes), SQLite: \
         one process `chorus run --target all`: {}/{} ({}); \
         one process per service: total {}/{} ({})",
        mebibytes(together_idle),
        mebibytes(together_peak),
        describe(&together_table),
        mebibytes(apart_idle),
        mebibytes(apart_peak),
        describe(&apart_table),
    );
    record(
        options,
        "memory",
        &figures,
        "resident memory of the processes, nats-server apart",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_from_the_vm_rss_line() {
        let status =
            "Name:\tchorus\nVmPeak:\t  900000 kB\nVmRSS:\t   45056 kB\nRssAnon:\t 30000 kB\n";
        assert_eq!(vm_rss_bytes(status), Some(45_056 * 1024));
        assert_eq!(vm_rss_bytes("Name:\tkthreadd\n"), None);
        let own = resident_bytes(std::process::id()).unwrap();
        assert!(
            own > 1024 * 1024,
            "this test process holds more than 1 MiB: {own}"
        );
    }

    #[test]
    fn the_bare_request_keeps_method_headers_and_body() {
        let gateway = Workload {
            base_url: "http://127.0.0.1:1".into(),
            advocate: "t0k".into(),
            post_id: "p1".into(),
            account_id: "a1".into(),
            tracked_url: "http://127.0.0.1:1/l/abcdefabcdef".into(),
        }
        .gateway_request(Path::ShareCreate);
        let bare = bare_request(&gateway, "http://127.0.0.1:2/bare");
        assert_eq!(gateway.len(), bare.len());
        let value = |arguments: &[String], name: &str| {
            let at = arguments
                .iter()
                .position(|argument| argument == name)
                .unwrap();
            arguments[at + 1].clone()
        };
        assert_eq!(value(&gateway, "--url"), "http://127.0.0.1:1/v1/shares");
        assert_eq!(value(&bare, "--url"), "http://127.0.0.1:2/bare");
        assert_eq!(
            (value(&gateway, "--status"), value(&bare, "--status")),
            ("201".into(), "200".into())
        );
        for name in ["--method", "--header", "--body", "--unique-header"] {
            assert_eq!(value(&gateway, name), value(&bare, name), "{name}");
        }
        assert_eq!(value(&bare, "--header"), "Authorization: Bearer t0k");
    }
}
