//! Publishing: connected accounts (tokens encrypted at rest), and one publisher per network
//! that posts due shares within the network's limits, never twice.

mod accounts;
mod entities;
mod keeper;
mod lease;
mod migration;
mod publisher;
mod resolve;

use chorus_bus::rpc::RpcServer;
use chorus_bus::{Bus, Outbox, endpoint};
use chorus_kit::{Context, Shutdown};
use chorus_social::limits::{NetworkQuotas, PublishLimiter};
use chorus_social::{AppCredentials, Network, NetworkAdapter};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use migration::Migrator;

pub const NAME: &str = "publishing";

/// A network's adapter and its limiters.
#[derive(Clone)]
pub struct NetworkClient {
    pub adapter: Arc<dyn NetworkAdapter>,
    pub limiter: PublishLimiter,
    /// Budget of metrics reads (engagement's polls).
    pub reads: chorus_social::limits::ReadLimiter,
}

/// Where netsim serves a network (the real networks have a host each).
pub fn netsim_prefix(network: Network) -> &'static str {
    match network {
        Network::Linkedin => "",
        Network::X => "/x",
        Network::Facebook | Network::Instagram => "/graph",
        Network::Mastodon => "/mastodon",
        Network::Bluesky => "/bluesky",
    }
}

/// Builds the enabled networks' clients from configuration.
pub fn network_clients(
    config: &chorus_kit::Config,
    refs: Arc<dyn chorus_social::AttemptRefs>,
) -> HashMap<Network, NetworkClient> {
    let mut clients = HashMap::new();
    for network in Network::ALL.iter().copied() {
        let Some(settings) = config.publishing.network(network.as_str()) else {
            continue;
        };
        if !settings.enabled {
            continue;
        }
        let simulated = format!("{}{}", config.netsim_url(), netsim_prefix(network));
        let credentials = AppCredentials {
            api_base_url: settings
                .api_base_url
                .clone()
                .unwrap_or_else(|| simulated.clone()),
            auth_base_url: settings.auth_base_url.clone().unwrap_or(simulated),
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.expose_secret().to_string(),
            redirect_url: config.oauth_redirect_url(),
            api_version: settings.api_version.clone(),
            request_timeout: Duration::from_millis(settings.request_timeout_ms),
        };
        let limiter = PublishLimiter::new(NetworkQuotas {
            per_account_per_day: settings.posts_per_account_per_day,
            per_app_per_day: settings.posts_per_app_per_day,
            per_account_window: (settings.window_posts > 0 && settings.window_secs > 0).then(
                || {
                    (
                        settings.window_posts,
                        Duration::from_secs(settings.window_secs),
                    )
                },
            ),
        });
        clients.insert(
            network,
            NetworkClient {
                adapter: chorus_social::adapter_with_refs(network, credentials, refs.clone()),
                limiter,
                reads: chorus_social::limits::ReadLimiter::per_minute(settings.reads_per_minute),
            },
        );
    }
    clients
}

/// Runs the publishing service until `shutdown`.
pub async fn run(ctx: Context, shutdown: Shutdown) -> anyhow::Result<()> {
    let db =
        chorus_kit::db::connect_and_migrate::<Migrator>(&ctx.config.database_url(NAME)).await?;
    ctx.readiness
        .register(NAME, chorus_kit::db::readiness_check(db.clone()));
    let secrets = chorus_kit::auth::Secrets::resolve(&ctx.config)?;
    let keys = chorus_kit::crypto::KeyRing::parse(secrets.encryption_keys.expose_secret())?;
    let bus = Bus::new(ctx.nats.clone());
    let outbox = Outbox::new(NAME);
    let relay = outbox.spawn_relay(db.clone(), bus.clone(), shutdown.clone());
    let refs = Arc::new(publisher::PublicationRefs { db: db.clone() });
    let networks = Arc::new(network_clients(&ctx.config, refs));
    let published: Vec<Network> = ctx
        .config
        .publishing
        .published_networks()
        .map_err(anyhow::Error::msg)?
        .into_iter()
        .filter_map(Network::parse)
        .collect();
    let accounts = Arc::new(accounts::Accounts {
        db: db.clone(),
        outbox: outbox.clone(),
        keys,
        networks: networks.clone(),
    });
    let publisher = Arc::new(publisher::Publisher {
        db: db.clone(),
        outbox,
        accounts: accounts.clone(),
        networks,
        ownership: publisher::Ownership::new(
            ctx.config.publishing.replica_index,
            ctx.config.publishing.replicas,
        )?,
        concurrency: ctx.config.publishing.concurrency,
        lease_duration: Duration::from_secs(ctx.config.publishing.lease_secs),
        max_attempts: ctx.config.publishing.max_attempts,
        retry_delays: ctx
            .config
            .publishing
            .retry_delays_ms
            .iter()
            .map(|delay| Duration::from_millis(*delay))
            .collect(),
    });
    publisher::spawn(&bus, publisher.clone(), &published, shutdown.clone()).await?;
    let keeper = keeper::Keeper {
        accounts: accounts.clone(),
        refresh_margin: chrono::TimeDelta::seconds(
            ctx.config.publishing.token_refresh_margin_secs as i64,
        ),
        reminder_window: chrono::TimeDelta::seconds(
            ctx.config.publishing.expiry_reminder_secs as i64,
        ),
        interval: Duration::from_millis(ctx.config.publishing.token_check_interval_ms.max(100)),
        replica_index: ctx.config.publishing.replica_index,
        replicas: ctx.config.publishing.replicas,
        networks: published
            .iter()
            .map(|network| network.as_str().to_string())
            .collect(),
    };
    let keeper_task = tokio::spawn(keeper.run(shutdown.clone()));
    let erased_db = db.clone();
    chorus_bus::consumer::spawn::<chorus_events::identity::v1::UserErased, _, _>(
        &bus,
        db.clone(),
        chorus_bus::consumer::ConsumerSpec::new(NAME, "publishing-user-erased"),
        shutdown.clone(),
        move |delivery| {
            let db = erased_db.clone();
            async move {
                accounts::forget_person(&db, &delivery.tenant_id, &delivery.event.user_id).await
            }
        },
    )
    .await?;
    let server = RpcServer::start(&ctx.nats, NAME, shutdown.clone()).await?;
    server
        .personal_data(accounts.db.clone(), PERSONAL_DATA)
        .await?;
    endpoint!(server, "account_connect_start", accounts, start_connect)?;
    endpoint!(
        server,
        "account_connect_complete",
        accounts,
        complete_connect
    )?;
    endpoint!(server, "account_get", accounts, get_account)?;
    endpoint!(server, "account_list", accounts, list_accounts)?;
    endpoint!(server, "account_disconnect", accounts, disconnect)?;
    endpoint!(
        server,
        "account_connect_app_password",
        accounts,
        connect_with_app_password
    )?;
    endpoint!(server, "share_metrics", accounts, share_metrics)?;
    endpoint!(server, "share_resolve", publisher, resolve)?;
    ctx.readiness.started(NAME);
    tracing::info!(service = NAME, "started");
    shutdown.cancelled().await;
    let _ = keeper_task.await;
    let _ = relay.await;
    Ok(())
}

/// What this service holds about a person: read by the GDPR export, emptied of them on
/// `user.erased`.
pub(crate) const PERSONAL_DATA: &[chorus_kit::db::PersonalTable] = &[
    chorus_kit::db::PersonalTable::deleted("accounts", "user_id").exporting(&[
        "id",
        "user_id",
        "network",
        "external_id",
        "display_name",
        "status",
        "access_expires_at",
        "refresh_expires_at",
        "audience_size",
        "connected_at",
        "updated_at",
    ]),
    chorus_kit::db::PersonalTable::deleted("oauth_states", "user_id").exporting(&[
        "user_id",
        "network",
        "created_at",
    ]),
    chorus_kit::db::PersonalTable::kept("publications", "user_id").blanking(&["text"]),
];
