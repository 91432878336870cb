//! What every Chorus service needs: layered configuration, database connection and
//! migrations, the health/ready/metrics endpoint, graceful shutdown, the error codes shared
//! by RPC and HTTP, the caller context, and development tokens.

pub mod admin;
pub mod auth;
pub mod caller;
pub mod config;
pub mod crypto;
pub mod db;
pub mod error;

pub use caller::{Caller, Role};
pub use config::Config;
pub use error::{ErrorCode, ServiceError, ServiceResult};
pub use tokio_util::sync::CancellationToken as Shutdown;

/// Everything a service's `run` receives from the process that hosts it.
#[derive(Clone)]
pub struct Context {
    pub config: std::sync::Arc<Config>,
    pub nats: async_nats::Client,
    /// The address `nats` is connected to, for a service that needs a connection of its
    /// own (a hot path that must not queue behind the other services of the process).
    pub nats_url: String,
    pub readiness: admin::Readiness,
}
