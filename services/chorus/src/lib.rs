//! The one Chorus binary's library: starts any set of services in one process (`--target
//! all` for a laptop or a small company, one target per Deployment in Kubernetes), with a
//! private nats-server child process when no NATS URL is configured.

pub mod bench;
pub mod bench_api;
pub mod bench_links;
pub mod bench_notify;
pub mod bench_pipeline;
pub mod demo;
pub mod load;
pub mod nats;

use chorus_kit::{Config, Context, Shutdown};
use std::net::SocketAddr;
use std::sync::Arc;

/// Every target `chorus run` accepts.
pub const TARGETS: &[&str] = chorus_kit::config::SERVICES;

/// Parses `all` or a comma-separated list of targets.
pub fn parse_targets(text: &str) -> anyhow::Result<Vec<&'static str>> {
    if text.trim() == "all" {
        return Ok(TARGETS.to_vec());
    }
    let mut targets = Vec::new();
    for name in text
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        let target = TARGETS
            .iter()
            .find(|candidate| **candidate == name)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown target {name:?}; targets are all, {}",
                    TARGETS.join(", ")
                )
            })?;
        targets.push(*target);
    }
    if targets.is_empty() {
        anyhow::bail!("no target given; use --target all or a list such as gateway,content");
    }
    Ok(targets)
}

/// A running set of services.
pub struct Running {
    pub nats_url: String,
    pub admin_address: SocketAddr,
    pub tasks: Vec<(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>)>,
    /// The private nats-server, when this process started one.
    pub nats_server: Option<nats::NatsServer>,
    pub netsim: Option<chorus_netsim::Netsim>,
}

impl Running {
    /// Waits for every service to stop (after `shutdown`), reporting the first failure.
    pub async fn join(self) -> anyhow::Result<()> {
        let mut first_error = None;
        for (name, task) in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::error!(service = name, error = %format!("{error:#}"), "service failed");
                    first_error.get_or_insert(error);
                }
                Err(join_error) => {
                    first_error.get_or_insert(anyhow::anyhow!("{name} panicked: {join_error}"));
                }
            }
        }
        drop(self.nats_server);
        first_error.map_or(Ok(()), Err)
    }
}

/// Starts `targets` with `config` until `shutdown`.
pub async fn start(
    config: Config,
    targets: &[&'static str],
    shutdown: Shutdown,
) -> anyhow::Result<Running> {
    let simulator = netsim_options(&config);
    start_with_netsim(config, targets, shutdown, simulator).await
}

/// Like `start`, with the network simulator's own knobs (the demo shortens X's 15-minute
/// tweet window so that a rate-limit wait fits in the run).
pub async fn start_with_netsim(
    config: Config,
    targets: &[&'static str],
    shutdown: Shutdown,
    simulator_options: chorus_netsim::NetsimOptions,
) -> anyhow::Result<Running> {
    let (nats_url, nats_server) = match &config.nats_url {
        Some(url) => (url.clone(), None),
        None => {
            let server =
                nats::NatsServer::start(&config.nats_server_bin, &config.data_dir.join("nats"))
                    .await?;
            (server.url(), Some(server))
        }
    };
    let bus = chorus_bus::Bus::connect(&nats_url).await?;
    bus.ensure_streams(&chorus_bus::StreamSettings {
        replicas: config.nats_stream_replicas,
        max_bytes: config.nats_stream_max_bytes,
        max_age: std::time::Duration::from_secs(config.nats_stream_max_age_days.max(1) * 86_400),
    })
    .await?;
    let readiness = chorus_kit::admin::Readiness::default();
    readiness.register("nats", chorus_kit::admin::nats_check(bus.client.clone()));
    let admin_address =
        chorus_kit::admin::serve(&config.admin_listen, readiness.clone(), shutdown.clone()).await?;
    let config = Arc::new(config);
    let ctx = Context {
        config: config.clone(),
        nats: bus.client.clone(),
        nats_url: nats_url.clone(),
        readiness,
    };

    let mut netsim = None;
    if targets.contains(&"netsim") {
        let simulator = chorus_netsim::Netsim::new(simulator_options);
        let address = simulator
            .serve(&config.netsim.listen, shutdown.clone())
            .await?;
        tracing::info!(service = "netsim", %address, "network simulator listening");
        netsim = Some(simulator);
    }
    for target in targets.iter().filter(|target| **target != "netsim") {
        ctx.readiness.expect(target);
    }
    let mut tasks = Vec::new();
    for target in targets {
        let ctx = ctx.clone();
        let watched_shutdown = shutdown.clone();
        let shutdown = shutdown.clone();
        let task: tokio::task::JoinHandle<anyhow::Result<()>> = match *target {
            "identity" => tokio::spawn(chorus_identity::run(ctx, shutdown)),
            "content" => tokio::spawn(chorus_content::run(ctx, shutdown)),
            "scheduling" => tokio::spawn(chorus_scheduling::run(ctx, shutdown)),
            "publishing" => tokio::spawn(chorus_publishing::run(ctx, shutdown)),
            "engagement" => tokio::spawn(chorus_engagement::run(ctx, shutdown)),
            "gamification" => tokio::spawn(chorus_gamification::run(ctx, shutdown)),
            "notifications" => tokio::spawn(chorus_notifications::run(ctx, shutdown)),
            "gateway" => tokio::spawn(chorus_gateway::run(ctx, shutdown)),
            "netsim" => continue,
            other => anyhow::bail!("unknown target {other}"),
        };
        // A service that fails stops the process at once (the orchestrator restarts it)
        // instead of leaving the others running without it.
        let name = *target;
        let task = tokio::spawn(async move {
            let outcome = match task.await {
                Ok(outcome) => outcome,
                Err(join_error) => Err(anyhow::anyhow!("{name} panicked: {join_error}")),
            };
            if let Err(error) = &outcome {
                tracing::error!(service = name, error = %format!("{error:#}"), "service failed, stopping");
                watched_shutdown.cancel();
            }
            outcome
        });
        tasks.push((*target, task));
    }
    Ok(Running {
        nats_url,
        admin_address,
        tasks,
        nats_server,
        netsim,
    })
}

pub fn netsim_options(config: &Config) -> chorus_netsim::NetsimOptions {
    let tick = config.netsim.engagement_tick_ms;
    chorus_netsim::NetsimOptions {
        access_token_ttl: std::time::Duration::from_secs(config.netsim.access_token_ttl_secs),
        member_daily_posts: config.netsim.linkedin_member_daily_posts,
        engagement_tick: (tick > 0).then(|| std::time::Duration::from_millis(tick)),
        reactions_per_tick: config.netsim.reactions_per_tick,
        ..Default::default()
    }
}

/// Applies every service's migrations (the Helm pre-install/pre-upgrade hook runs this).
pub async fn migrate(config: &Config, targets: &[&'static str]) -> anyhow::Result<()> {
    use sea_orm_migration::MigratorTrait;
    for target in targets {
        let url = config.database_url(target);
        let db = chorus_kit::db::connect(&url).await?;
        match *target {
            "identity" => chorus_identity::Migrator::up(&db, None).await?,
            "content" => chorus_content::Migrator::up(&db, None).await?,
            "scheduling" => chorus_scheduling::Migrator::up(&db, None).await?,
            "publishing" => chorus_publishing::Migrator::up(&db, None).await?,
            "engagement" => chorus_engagement::Migrator::up(&db, None).await?,
            "gamification" => chorus_gamification::Migrator::up(&db, None).await?,
            "notifications" => chorus_notifications::Migrator::up(&db, None).await?,
            _ => continue,
        }
        tracing::info!(service = *target, database = %chorus_kit::db::redact_url(&url), "migrated");
    }
    Ok(())
}
