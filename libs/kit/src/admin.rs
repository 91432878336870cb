//! `/healthz`, `/readyz` and `/metrics` of a process.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};

/// One readiness check: Ok when the dependency answers.
pub type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The readiness checks registered by the services of this process.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<Vec<(String, Check)>>>,
    /// Services expected to start that have not said so yet.
    starting: Arc<Mutex<Vec<String>>>,
}

impl Readiness {
    /// Declares a service that is not ready until it calls `started`.
    pub fn expect(&self, service: &str) {
        self.starting
            .lock()
            .expect("readiness lock")
            .push(service.to_string());
    }

    /// A service has all its endpoints and consumers in place.
    pub fn started(&self, service: &str) {
        self.starting
            .lock()
            .expect("readiness lock")
            .retain(|name| name != service);
    }

    pub fn register(&self, name: impl Into<String>, check: Check) {
        self.checks
            .lock()
            .expect("readiness lock")
            .push((name.into(), check));
    }

    /// Runs every check; returns the failures.
    pub async fn failures(&self) -> Vec<(String, String)> {
        let checks: Vec<(String, Check)> = self.checks.lock().expect("readiness lock").clone();
        let mut failures: Vec<(String, String)> = self
            .starting
            .lock()
            .expect("readiness lock")
            .iter()
            .map(|name| (name.clone(), "starting".to_string()))
            .collect();
        for (name, check) in checks {
            let outcome = tokio::time::timeout(std::time::Duration::from_secs(2), check()).await;
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(error)) => failures.push((name, error)),
                Err(_) => failures.push((name, "timed out".to_string())),
            }
        }
        failures
    }
}

/// A readiness check on the NATS connection.
pub fn nats_check(client: async_nats::Client) -> Check {
    Arc::new(move || {
        let client = client.clone();
        Box::pin(async move {
            match client.connection_state() {
                async_nats::connection::State::Connected => Ok(()),
                state => Err(format!("nats connection is {state}")),
            }
        })
    })
}

/// The admin routes, to serve on their own listener or merge into another router.
pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(readiness)
}

async fn ready(State(readiness): State<Readiness>) -> impl IntoResponse {
    let failures = readiness.failures().await;
    if failures.is_empty() {
        return (StatusCode::OK, "ready".to_string());
    }
    let lines: Vec<String> = failures
        .iter()
        .map(|(name, error)| format!("{name}: {error}"))
        .collect();
    (StatusCode::SERVICE_UNAVAILABLE, lines.join("\n"))
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        chorus_telemetry::metrics::render(),
    )
}

/// Serves the admin routes until `shutdown`; returns the bound address.
pub async fn serve(
    listen: &str,
    readiness: Readiness,
    shutdown: crate::Shutdown,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let served = axum::serve(listener, router(readiness))
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "admin endpoint stopped");
        }
    });
    Ok(address)
}
