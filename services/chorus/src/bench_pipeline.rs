//! Publishing under load: shares from due to published with every service running
//! (`pipeline`), schedule lateness with many pending shares and a burst due at one instant
//! (`lateness`, on SQLite and PostgreSQL), and publish efficiency under a network's
//! enforced rate limit (`efficiency`).
//!
//! Shares are seeded straight into the scheduling database (in the shape the API writes),
//! due far in the future, then moved to one instant by a single statement: what is
//! measured starts when they are due and goes through the due-loop, the outbox relay,
//! JetStream, the publisher and netsim.

use crate::bench::{BenchOptions, record, summarize};
use crate::demo::Api;
use chorus_kit::Role;
use chorus_scheduling::bench::SeedShare;
use chorus_telemetry::metrics;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::json;
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use tracing::Instrument;

static RUNS: LazyLock<metrics::HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "chorus_bench_run_seconds",
        "Duration of one benchmark scenario",
        &["scenario"],
    )
});

const TENANT: &str = "bench";

/// Where the services keep their data for one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// A running installation for one measurement, with fresh databases.
struct Install {
    api: Api,
    config: chorus_kit::Config,
    shutdown: chorus_kit::Shutdown,
    running: Option<crate::Running>,
    netsim: chorus_netsim::Netsim,
    netsim_url: String,
    postgres: Option<(String, Vec<String>)>,
    _folder: tempfile::TempDir,
}

/// A burst measured by `Install::linkedin_burst`.
struct Burst {
    due_at: DateTime<Utc>,
    done: DateTime<Utc>,
    overhead_before: (f64, f64),
}

impl Install {
    /// Every service, netsim with `netsim_options`, on `backend` (PostgreSQL databases are
    /// created under `postgres_url`'s server and dropped by `stop`).
    async fn start(
        config: &chorus_kit::Config,
        backend: Backend,
        postgres_url: Option<&str>,
        netsim_options: chorus_netsim::NetsimOptions,
        adjust: impl FnOnce(&mut chorus_kit::Config),
    ) -> anyhow::Result<Install> {
        let folder = tempfile::tempdir()?;
        let mut config = config.clone();
        config.data_dir = folder.path().to_path_buf();
        let gateway_port = crate::nats::free_port()?;
        config.gateway.listen = format!("127.0.0.1:{gateway_port}");
        config.netsim.listen = format!("127.0.0.1:{}", crate::nats::free_port()?);
        config.public_url = format!("http://127.0.0.1:{gateway_port}");
        config.admin_listen = "127.0.0.1:0".into();
        config.log = "warn".into();
        // Shares of one post are due together on purpose: the burst is what is measured.
        config.scheduling.stagger_window_secs = 0;
        // No simulated engagement: only publishing is measured.
        config.netsim.engagement_tick_ms = 0;
        adjust(&mut config);
        let mut postgres = None;
        if backend == Backend::Postgres {
            let admin_url =
                postgres_url.ok_or_else(|| anyhow::anyhow!("PostgreSQL needs --postgres <URL>"))?;
            let databases = create_databases(admin_url, &mut config).await?;
            postgres = Some((admin_url.to_string(), databases));
        }
        let secrets = chorus_kit::auth::Secrets::resolve(&config)?;
        let shutdown = chorus_kit::Shutdown::new();
        // netsim is served here, with the options of the scenario.
        let netsim = chorus_netsim::Netsim::new(netsim_options);
        let address = netsim
            .serve(&config.netsim.listen, shutdown.clone())
            .await?;
        let targets: Vec<&'static str> = crate::TARGETS
            .iter()
            .copied()
            .filter(|target| *target != "netsim")
            .collect();
        let running = crate::start(config.clone(), &targets, shutdown.clone()).await?;
        let api = Api::new(&config.public_url, secrets.dev_signing_key_bytes());
        let mut ready = false;
        for _ in 0..800 {
            ready = api
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
        anyhow::ensure!(ready, "the services did not become ready within 20 s");
        Ok(Install {
            api,
            config,
            shutdown,
            running: Some(running),
            netsim,
            netsim_url: format!("http://{address}"),
            postgres,
            _folder: folder,
        })
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), running.join()).await;
        }
        if let Some((admin_url, databases)) = &self.postgres {
            drop_databases(admin_url, databases).await;
        }
    }

    /// A tenant, a curator's published post and `advocates` advocates with an account of
    /// `network` each (connected through the OAuth flow of netsim).
    async fn advocates(&self, network: &str, advocates: usize) -> anyhow::Result<Cohort> {
        let api = &self.api;
        let operator = api.token(TENANT, "ops", &[Role::Operator]);
        let _: serde_json::Value = api
            .post(
                "/v1/tenants",
                &operator,
                json!({"id": TENANT, "name": "Bench"}),
            )
            .await?;
        let _: serde_json::Value = api
            .post("/v1/users", &operator, json!({"id": "cur", "display_name": "Curator", "email": "cur@bench.example", "roles": ["curator"]}))
            .await?;
        let curator = api.token(TENANT, "cur", &[Role::Curator]);
        let link_url = "https://www.acme.example/launch".to_string();
        let post: chorus_api::content::Post = api
            .post("/v1/posts", &curator, json!({"title": "Launch", "commentary": "Our launch", "link_url": link_url, "content_type": "company_news"}))
            .await?;
        let _: serde_json::Value = api
            .post(
                &format!("/v1/posts/{}/publish", post.id),
                &curator,
                json!({}),
            )
            .await?;
        let connected: Vec<(String, String)> = futures::stream::iter(0..advocates)
            .map(|index| {
                let api = api.clone();
                let operator = operator.clone();
                let network = network.to_string();
                async move {
                    let user = format!("adv{index:05}");
                    let _: serde_json::Value = api
                        .post(
                            "/v1/users",
                            &operator,
                            json!({"id": user, "display_name": format!("Advocate {index}"),
                            "email": format!("{user}@bench.example"), "roles": ["advocate"]}),
                        )
                        .await?;
                    let token = api.token(TENANT, &user, &[Role::Advocate]);
                    let account = api
                        .connect(&token, &network, &format!("member{index:05}"))
                        .await?;
                    Ok::<_, crate::demo::ApiError>((user, account.id))
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        Ok(Cohort {
            network: network.to_string(),
            post_id: post.id,
            link_url,
            accounts: connected,
        })
    }

    /// The instant the parked shares are moved to: far enough ahead that the due-loop,
    /// which is not told of the move, has looked again (it sleeps at most `max_idle_ms`)
    /// and waits for exactly that instant, as it does for shares created through the API.
    /// `shares` over `advocates` LinkedIn accounts, seeded parked, made due at one instant and
    /// waited for until every one is published; the publisher's overhead reading taken just
    /// before they fell due (see `publisher_overhead`).
    async fn linkedin_burst(
        &self,
        advocates: usize,
        shares: usize,
        label: &str,
        timeout: Duration,
    ) -> anyhow::Result<Burst> {
        let cohort = self.advocates("linkedin", advocates).await?;
        let db = self.scheduling_db().await?;
        let ids = chorus_scheduling::bench::seed_shares(
            &db,
            &self.config.public_url,
            cohort.shares(shares, label, |_| parked()),
        )
        .await?;
        let due_at = self.due_instant();
        let overhead_before = publisher_overhead();
        let moved = chorus_scheduling::bench::reschedule(&db, parked(), due_at).await?;
        anyhow::ensure!(
            moved as usize == shares,
            "{moved} of {shares} shares made due"
        );
        let done = until_published(&db, &ids, timeout).await?;
        Ok(Burst {
            due_at,
            done,
            overhead_before,
        })
    }

    /// An instant the due-loop, however long it last slept, sees coming with its whole lead.
    fn due_instant(&self) -> DateTime<Utc> {
        Utc::now()
            + chrono::Duration::milliseconds(
                (self.config.scheduling.max_idle_ms + self.config.scheduling.emit_lead_ms) as i64
                    + 500,
            )
    }

    async fn scheduling_db(&self) -> anyhow::Result<sea_orm::DatabaseConnection> {
        Ok(chorus_scheduling::bench::connect(&self.config.database_url("scheduling")).await?)
    }

    /// netsim's counters, read over HTTP like any client would.
    async fn netsim_stats(&self) -> anyhow::Result<chorus_netsim::Stats> {
        Ok(self
            .api
            .http
            .get(format!("{}/_netsim/stats", self.netsim_url))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}

/// Advocates with one connected account each, and the post they share.
struct Cohort {
    network: String,
    post_id: String,
    link_url: String,
    /// (user id, account id)
    accounts: Vec<(String, String)>,
}

impl Cohort {
    /// `count` shares spread round-robin over the accounts, all due at `due_at`.
    fn shares(
        &self,
        count: usize,
        label: &str,
        due_at: impl Fn(usize) -> DateTime<Utc>,
    ) -> Vec<SeedShare> {
        (0..count)
            .map(|index| {
                let (user, account) = &self.accounts[index % self.accounts.len()];
                SeedShare {
                    tenant_id: TENANT.into(),
                    user_id: user.clone(),
                    post_id: self.post_id.clone(),
                    account_id: account.clone(),
                    network: self.network.clone(),
                    caption: format!("Proud of our launch ({label} {index})"),
                    link_url: self.link_url.clone(),
                    due_at: due_at(index),
                }
            })
            .collect()
    }
}

/// A due time no seeded share will reach: shares wait there until moved to the instant
/// measured from.
fn parked() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2099-01-01T00:00:00Z")
        .expect("a valid instant")
        .with_timezone(&Utc)
}

/// Creates one database per service next to `admin_url`'s and points `config` at them.
async fn create_databases(
    admin_url: &str,
    config: &mut chorus_kit::Config,
) -> anyhow::Result<Vec<String>> {
    let admin = chorus_kit::db::connect(admin_url).await?;
    let prefix = format!(
        "chorus_bench_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let base = admin_url
        .split('?')
        .next()
        .unwrap_or(admin_url)
        .rsplit_once('/')
        .map(|(base, _)| base.to_string())
        .ok_or_else(|| anyhow::anyhow!("the PostgreSQL URL names no database"))?;
    let mut created = Vec::new();
    for service in chorus_kit::config::SERVICES_WITH_DATABASE {
        let name = format!("{prefix}_{service}");
        sea_orm::ConnectionTrait::execute_unprepared(&admin, &format!("CREATE DATABASE {name}"))
            .await?;
        let url = Some(format!("{base}/{name}"));
        match *service {
            "identity" => config.identity.database_url = url,
            "content" => config.content.database_url = url,
            "scheduling" => config.scheduling.database_url = url,
            "publishing" => config.publishing.database_url = url,
            "engagement" => config.engagement.database_url = url,
            "gamification" => config.gamification.database_url = url,
            "notifications" => config.notifications.database_url = url,
            _ => {}
        }
        created.push(name);
    }
    tracing::info!(prefix = %prefix, databases = created.len(), "PostgreSQL databases created for the benchmark");
    Ok(created)
}

async fn drop_databases(admin_url: &str, databases: &[String]) {
    let Ok(admin) = chorus_kit::db::connect(admin_url).await else {
        tracing::warn!("PostgreSQL unreachable: benchmark databases left behind");
        return;
    };
    for name in databases {
        if let Err(error) = sea_orm::ConnectionTrait::execute_unprepared(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await
        {
            tracing::warn!(database = %name, %error, "benchmark database not dropped");
        }
    }
}

/// No limits on the simulated LinkedIn and in the publisher: only throughput is measured.
fn unlimited_linkedin(config: &mut chorus_kit::Config) {
    config.netsim.linkedin_member_daily_posts = 1_000_000;
    config.publishing.linkedin.posts_per_account_per_day = 1_000_000;
    config.publishing.linkedin.posts_per_app_per_day = 100_000_000;
}

fn unlimited_netsim(config: &chorus_kit::Config) -> chorus_netsim::NetsimOptions {
    let mut options = crate::netsim_options(config);
    options.member_daily_posts = 1_000_000;
    options.engagement_tick = None;
    options
}

/// Waits until all `ids` are published (or one failed, or `timeout`); returns the instant
/// the last one was seen published.
async fn until_published(
    db: &sea_orm::DatabaseConnection,
    ids: &[String],
    timeout: Duration,
) -> anyhow::Result<DateTime<Utc>> {
    let deadline = Instant::now() + timeout;
    loop {
        let published = chorus_scheduling::bench::count_with_status(db, ids, "published").await?;
        if published as usize == ids.len() {
            return Ok(Utc::now());
        }
        let failed = chorus_scheduling::bench::count_with_status(db, ids, "failed").await?;
        anyhow::ensure!(
            failed == 0,
            "{failed} shares failed ({published} published)"
        );
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {published} of {} shares published within {} s",
            ids.len(),
            timeout.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn seconds(duration: chrono::TimeDelta) -> f64 {
    duration.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

fn late_by(times: &[DateTime<Utc>], due_at: DateTime<Utc>) -> Vec<Duration> {
    times
        .iter()
        .map(|time| (*time - due_at).to_std().unwrap_or(Duration::ZERO))
        .collect()
}

fn millis(duration: Duration) -> String {
    format!("{:.0} ms", duration.as_secs_f64() * 1_000.0)
}

/// Times relative to `due_at` in milliseconds, negative when ahead of it, sorted.
fn relative_millis(times: &[DateTime<Utc>], due_at: DateTime<Utc>) -> Vec<i64> {
    let mut relative: Vec<i64> = times
        .iter()
        .map(|time| (*time - due_at).num_milliseconds())
        .collect();
    relative.sort_unstable();
    relative
}

/// The publisher's own time per attempt so far (outside the network's calls, the limiters
/// and the due time): the sum and count of `chorus_publish_overhead_seconds`, read from
/// this process's metrics. Differences of two readings cover what happened between them.
fn publisher_overhead() -> (f64, f64) {
    let text = chorus_telemetry::metrics::render();
    let total = |suffix: &str| -> f64 {
        text.lines()
            .filter(|line| line.starts_with(&format!("chorus_publish_overhead_seconds_{suffix}")))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    (total("sum"), total("count"))
}

/// Mean publisher overhead per attempt between two readings of `publisher_overhead`.
fn overhead_between(before: (f64, f64), after: (f64, f64)) -> String {
    let count = after.1 - before.1;
    if count < 1.0 {
        return "not measured".into();
    }
    format!("{:.2} ms", (after.0 - before.0) / count * 1_000.0)
}

/// Shares per second from due to published, every service running, beside the raw
/// JetStream consume rate of the same run.
pub async fn pipeline(config: &chorus_kit::Config, options: &BenchOptions) -> anyhow::Result<()> {
    let (shares, advocates, bus_messages) = if options.quick {
        (300, 20, 5_000)
    } else {
        (10_000, 200, 50_000)
    };
    let span = tracing::info_span!("bench.pipeline", shares, advocates);
    async {
        let started = Instant::now();
        let rates = crate::bench::bus_rates(&config.nats_server_bin, bus_messages).await?;
        let install = Install::start(
            config,
            Backend::Sqlite,
            None,
            unlimited_netsim(config),
            unlimited_linkedin,
        )
        .await?;
        let outcome = async {
            let timeout = Duration::from_secs(if options.quick { 60 } else { 900 });
            let burst = install.linkedin_burst(advocates, shares, "pipeline", timeout).await?;
            let elapsed = seconds(burst.done - burst.due_at);
            let per_second = shares as f64 / elapsed;
            let posted = install.netsim.posts_of("linkedin").len();
            anyhow::ensure!(posted == shares, "netsim holds {posted} posts for {shares} shares");
            Ok::<_, anyhow::Error>(format!(
                "{shares} shares over {advocates} LinkedIn accounts due at once, all services running: published after {elapsed:.2} s = {per_second:.0} shares/s; \
                 bus baseline of the same run: publish {:.0}/s, consume {:.0}/s; ratio to the consume rate 1/{:.0}; \
                 publisher overhead per attempt (outside network and limiter waits) mean {}",
                rates.publish,
                rates.consume,
                rates.consume / per_second,
                overhead_between(burst.overhead_before, publisher_overhead()),
            ))
        }
        .await;
        install.stop().await;
        let figures = outcome?;
        RUNS.with_label_values(&["pipeline"]).observe(started.elapsed().as_secs_f64());
        record(
            options,
            "publish pipeline",
            &figures,
            "shares/s from due to published, beside the raw JetStream consume rate",
        )
    }
    .instrument(span)
    .await
}

/// Publisher overhead per share excluding network time: shares due at once, handled one at a
/// time (`publishing.concurrency = 1`), so that no attempt queues behind another for the
/// database; the publisher's own time per attempt beside the whole time per share.
pub async fn overhead(config: &chorus_kit::Config, options: &BenchOptions) -> anyhow::Result<()> {
    let (shares, advocates) = if options.quick {
        (100, 10)
    } else {
        (1_000, 50)
    };
    let span = tracing::info_span!("bench.overhead", shares, advocates);
    async {
        let started = Instant::now();
        let install = Install::start(
            config,
            Backend::Sqlite,
            None,
            unlimited_netsim(config),
            |config| {
                unlimited_linkedin(config);
                config.publishing.concurrency = 1;
            },
        )
        .await?;
        let outcome = async {
            let timeout = Duration::from_secs(if options.quick { 60 } else { 900 });
            let burst = install.linkedin_burst(advocates, shares, "overhead", timeout).await?;
            let (before, after) = (burst.overhead_before, publisher_overhead());
            anyhow::ensure!(
                after.1 - before.1 >= shares as f64,
                "{} attempts measured for {shares} shares",
                after.1 - before.1
            );
            let per_share = seconds(burst.done - burst.due_at) / shares as f64;
            Ok::<_, anyhow::Error>(format!(
                "{shares} shares over {advocates} LinkedIn accounts due at once, one attempt at a time, SQLite, every service running: \
                 publisher overhead per attempt (its own work: recording the attempt, reading the account, recording the outcome and its event; \
                 outside netsim's answer and the limiter) mean {}; whole time per share {:.2} ms",
                overhead_between(before, after),
                per_share * 1_000.0,
            ))
        }
        .await;
        install.stop().await;
        let figures = outcome?;
        RUNS.with_label_values(&["overhead"]).observe(started.elapsed().as_secs_f64());
        record(options, "publisher overhead", &figures, "per share, excluding network time")
    }
    .instrument(span)
    .await
}

/// Schedule lateness: many shares pending (due later) and a burst due at the same instant;
/// lateness of each is the time its post reached netsim minus its due time.
pub async fn lateness(config: &chorus_kit::Config, options: &BenchOptions) -> anyhow::Result<()> {
    let mut backends = vec![Backend::Sqlite];
    if options.postgres.is_some() {
        backends.push(Backend::Postgres);
    }
    for backend in backends {
        lateness_on(config, options, backend).await?;
    }
    Ok(())
}

async fn lateness_on(
    config: &chorus_kit::Config,
    options: &BenchOptions,
    backend: Backend,
) -> anyhow::Result<()> {
    let (pending, due, advocates) = if options.quick {
        (2_000, 150, 20)
    } else {
        (100_000, 5_000, 200)
    };
    let span = tracing::info_span!("bench.lateness", backend = backend.name(), pending, due);
    async {
        let started = Instant::now();
        let install = Install::start(
            config,
            backend,
            options.postgres.as_deref(),
            unlimited_netsim(config),
            unlimited_linkedin,
        )
        .await?;
        let outcome = async {
            let cohort = install.advocates("linkedin", advocates).await?;
            let db = install.scheduling_db().await?;
            let seeding = Instant::now();
            // Pending: due over the coming days, one every few seconds.
            let later = Utc::now() + chrono::Duration::days(1);
            chorus_scheduling::bench::seed_shares(
                &db,
                &install.config.public_url,
                cohort.shares(pending, "later", |index| {
                    later + chrono::Duration::seconds(index as i64 * 3)
                }),
            )
            .await?;
            let ids = chorus_scheduling::bench::seed_shares(
                &db,
                &install.config.public_url,
                cohort.shares(due, "now", |_| parked()),
            )
            .await?;
            let seeded = seeding.elapsed();
            let due_at = install.due_instant();
            let overhead_before = publisher_overhead();
            let moved = chorus_scheduling::bench::reschedule(&db, parked(), due_at).await?;
            anyhow::ensure!(moved as usize == due, "{moved} of {due} shares made due");
            let done = until_published(&db, &ids, Duration::from_secs(if options.quick { 60 } else { 900 })).await?;
            let reached: Vec<DateTime<Utc>> = install
                .netsim
                .posts_of("linkedin")
                .into_iter()
                .map(|post| post.created_at)
                .collect();
            anyhow::ensure!(reached.len() == due, "netsim holds {} posts for {due} due shares", reached.len());
            let emitted = chorus_scheduling::bench::due_handed_over_at(&db, &ids).await?;
            anyhow::ensure!(emitted.len() == due, "{} of {due} share.due events relayed", emitted.len());
            let wall = (done - due_at).to_std().unwrap_or_default();
            let at_netsim = summarize(late_by(&reached, due_at), wall);
            // Schedule lateness: how long after its due time a share was in the publisher's
            // hands (0 when handed over ahead of it, the publisher then waits for the time).
            let handed = summarize(late_by(&emitted, due_at), wall);
            let relative = relative_millis(&emitted, due_at);
            let ahead = relative.iter().filter(|ms| **ms <= 0).count();
            let early = reached.iter().filter(|time| **time < due_at).count();
            anyhow::ensure!(early == 0, "{early} posts reached netsim before their due time");
            Ok::<_, anyhow::Error>(format!(
                "{} backend, {pending} shares pending (due later) and {due} due at one instant over {advocates} LinkedIn accounts (seeded in {:.1} s), emit lead {} ms: \
                 schedule lateness (share in the publisher's hands after its due time) p50 {}, p99 {}, max {}; {ahead} of {due} handed over ahead, from {} ms to {} ms relative to the due time; \
                 until the post reached netsim p50 {}, p99 {}, max {} (none early); all published after {:.2} s = {:.0} shares/s; publisher overhead per attempt (outside network, limiter and due-time waits) mean {}",
                backend.name(),
                seeded.as_secs_f64(),
                install.config.scheduling.emit_lead_ms,
                millis(handed.p50),
                millis(handed.p99),
                millis(handed.max),
                relative.first().copied().unwrap_or_default(),
                relative.last().copied().unwrap_or_default(),
                millis(at_netsim.p50),
                millis(at_netsim.p99),
                millis(at_netsim.max),
                wall.as_secs_f64(),
                due as f64 / wall.as_secs_f64().max(f64::EPSILON),
                overhead_between(overhead_before, publisher_overhead()),
            ))
        }
        .await;
        install.stop().await;
        let figures = outcome?;
        RUNS.with_label_values(&["lateness"]).observe(started.elapsed().as_secs_f64());
        record(
            options,
            &format!("schedule lateness ({})", backend.name()),
            &figures,
            "p99 < 200 ms",
        )
    }
    .instrument(span)
    .await
}

/// Publish efficiency under X's enforced per-user window: more shares queued for one
/// account than the window allows; the achieved rate against the allowed one, and the
/// 429s netsim answered.
pub async fn efficiency(config: &chorus_kit::Config, options: &BenchOptions) -> anyhow::Result<()> {
    let (per_window, window_secs, windows) = if options.quick {
        (20, 4, 3)
    } else {
        (50, 10, 6)
    };
    let shares = per_window * windows;
    let window = Duration::from_secs(window_secs);
    let span = tracing::info_span!("bench.efficiency", per_window, window_secs, shares);
    async {
        let started = Instant::now();
        let mut netsim_options = unlimited_netsim(config);
        netsim_options.x = chorus_netsim::XOptions {
            tweets_per_window: per_window as u32,
            tweet_window: window,
            user_tweets_per_day: 1_000_000,
            app_tweets_per_day: 10_000_000,
            ..chorus_netsim::XOptions::default()
        };
        let install = Install::start(config, Backend::Sqlite, None, netsim_options, |config| {
            let x = &mut config.publishing.x;
            x.posts_per_account_per_day = 1_000_000;
            x.posts_per_app_per_day = 10_000_000;
            x.window_posts = per_window as u32;
            x.window_secs = window_secs;
        })
        .await?;
        let outcome = async {
            let cohort = install.advocates("x", 1).await?;
            let db = install.scheduling_db().await?;
            let ids = chorus_scheduling::bench::seed_shares(
                &db,
                &install.config.public_url,
                cohort.shares(shares, "efficiency", |_| parked()),
            )
            .await?;
            let before = install.netsim_stats().await?.of("x");
            let due_at = install.due_instant();
            chorus_scheduling::bench::reschedule(&db, parked(), due_at).await?;
            let timeout = window * (windows as u32 * 3 + 2);
            until_published(&db, &ids, timeout).await?;
            let after = install.netsim_stats().await?.of("x");
            let refused = after.rate_limited - before.rate_limited;
            let mut posted: Vec<DateTime<Utc>> = install
                .netsim
                .posts_of("x")
                .into_iter()
                .map(|post| post.created_at)
                .collect();
            posted.sort();
            anyhow::ensure!(posted.len() == shares, "netsim holds {} tweets for {shares} shares", posted.len());
            let span = seconds(posted[posted.len() - 1] - posted[0]);
            // The window allows a burst of `per_window` at its start: the fastest any
            // client may post them all is one burst per window, the last one starting
            // `windows - 1` windows after the first.
            let bursts = shares.div_ceil(per_window);
            let fastest = (bursts - 1) as f64 * window_secs as f64;
            let efficiency = fastest / span.max(f64::EPSILON);
            // The same without the last window's own duration (how fast the publisher
            // posts a burst, which `pipeline` measures): the time from the first post to
            // the first post of the last window, against the windows it spans.
            let last_window = seconds(posted[(bursts - 1) * per_window] - posted[0]);
            let cadence = fastest / last_window.max(f64::EPSILON);
            Ok::<_, anyhow::Error>(format!(
                "{shares} shares of one X account queued at once, netsim enforcing {per_window} posts per {window_secs} s: posted in {span:.2} s where the limit allows {fastest:.0} s, \
                 achieved/allowed {efficiency:.3} (first post of the last window after {last_window:.2} s for {fastest:.0} s: {cadence:.3}); 429s answered by netsim: {refused}"
            ))
        }
        .await;
        install.stop().await;
        let figures = outcome?;
        RUNS.with_label_values(&["efficiency"]).observe(started.elapsed().as_secs_f64());
        record(options, "publish efficiency under limits", &figures, "near 1.0 with zero 429s")
    }
    .instrument(span)
    .await
}
