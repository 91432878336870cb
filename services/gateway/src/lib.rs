//! The gateway: the one REST API (OpenAPI at `/openapi.json`) that web and mobile frontends
//! and integrators call. It authenticates, builds the caller context, validates input, and
//! asks the services over NATS request/reply. It also serves tracked-link redirects.

mod analytics_routes;
mod audit;
mod auth;
mod channel_routes;
mod content_routes;
mod error;
mod gamification_routes;
pub mod idempotency;
mod key_routes;
mod links;
mod live;
mod oidc;
mod openapi;
mod privacy_routes;
mod routes;
mod scim_routes;
mod webhook_routes;
pub mod webhooks;

use axum::Router;
use chorus_bus::Bus;
use chorus_kit::{Context, Shutdown};
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;

pub use openapi::openapi_json;

pub const NAME: &str = "gateway";

/// Shared by every handler.
pub struct Gateway {
    pub nats: async_nats::Client,
    /// The gateway's own connection, on which redirects publish clicks.
    pub bus: Bus,
    pub rpc_timeout: Duration,
    pub dev_signing_key: Vec<u8>,
    /// The OpenID Connect issuer whose tokens are accepted, when configured.
    pub oidc: Option<oidc::Oidc>,
    pub visitor_salt: String,
    pub callers: auth::CallerCache,
    /// Tracked links (code -> target), read without asking any service.
    pub links: async_nats::jetstream::kv::Store,
    pub link_cache: links::LinkCache,
    /// `Idempotency-Key` records shared by every gateway replica.
    pub idempotency: async_nats::jetstream::kv::Store,
    /// Verifies network webhooks (the app secrets and verify tokens).
    pub webhooks: webhooks::WebhookSecrets,
    /// Base URL under which the gateway is reachable (SCIM resource locations).
    pub public_url: String,
    /// Feeds the live notification streams.
    pub live: Arc<live::LiveHub>,
}

pub type AppState = Arc<Gateway>;

/// The gateway's routes (the API, tracked links, OpenAPI, health).
pub fn router(state: AppState, readiness: chorus_kit::admin::Readiness) -> Router {
    routes::router(state).merge(chorus_kit::admin::router(readiness))
}

/// Runs the gateway until `shutdown`; the bound address is sent on `bound` when given.
pub async fn run(ctx: Context, shutdown: Shutdown) -> anyhow::Result<()> {
    serve(ctx, shutdown, None).await
}

pub async fn serve(
    ctx: Context,
    shutdown: Shutdown,
    bound: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> anyhow::Result<()> {
    let secrets = chorus_kit::auth::Secrets::resolve(&ctx.config)?;
    let state = Arc::new(Gateway {
        nats: ctx.nats.clone(),
        // Clicks are published on a connection of the gateway's own: in a process that
        // hosts every service, the shared connection also carries the consumers' pulls,
        // acks and outbox relays, and a redirect must not wait behind them.
        bus: Bus::connect(&ctx.nats_url).await?,
        rpc_timeout: Duration::from_millis(ctx.config.gateway.rpc_timeout_ms),
        dev_signing_key: secrets.dev_signing_key_bytes(),
        oidc: oidc::Oidc::from_config(&ctx.config.security)?,
        visitor_salt: secrets.visitor_salt.expose_secret().to_string(),
        callers: auth::CallerCache::default(),
        links: Bus::new(ctx.nats.clone()).links().await?,
        link_cache: links::LinkCache::default(),
        idempotency: Bus::new(ctx.nats.clone()).idempotency().await?,
        webhooks: webhooks::WebhookSecrets::from_config(&ctx.config),
        public_url: ctx.config.public_url.clone(),
        live: live::LiveHub::start(ctx.nats.clone(), shutdown.clone()).await?,
    });
    auth::follow_user_changes(&ctx.nats, Arc::downgrade(&state)).await?;
    let listener = tokio::net::TcpListener::bind(&ctx.config.gateway.listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(service = NAME, %address, "listening");
    ctx.readiness.started(NAME);
    if let Some(bound) = bound {
        let _ = bound.send(address);
    }
    let app = router(state, ctx.readiness.clone());
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await?;
    Ok(())
}
