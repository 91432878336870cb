//! Request/reply (subjects `rpc.chorus.<service>.<endpoint>`) between the gateway and the services, on the NATS service API: queue
//! groups balance replicas, and `$SRV.PING|INFO|STATS` come for free. Bodies are JSON
//! (`libs/api` types); the caller context and trace context travel in headers; errors come
//! back as `Nats-Service-Error` (message) and `Nats-Service-Error-Code` (HTTP status).

use crate::trace;
use async_nats::service::ServiceExt;
use chorus_kit::caller::CALLER_HEADER;
use chorus_kit::{Caller, ErrorCode, ServiceError, ServiceResult, Shutdown};
use chorus_telemetry::metrics;
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tracing::Instrument;

static RPC_SECONDS: LazyLock<metrics::HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "chorus_rpc_server_seconds",
        "Time to answer a request",
        &["endpoint", "outcome"],
    )
});

/// Subject of an endpoint: `rpc.chorus.<service>.<endpoint>` (outside the event subjects `chorus.<tenant>.>`, which streams capture).
pub fn subject(service: &str, endpoint: &str) -> String {
    format!("rpc.chorus.{service}.{endpoint}")
}

/// The request/reply endpoints of one service.
pub struct RpcServer {
    service: async_nats::service::Service,
    name: &'static str,
    shutdown: Shutdown,
    limit: Arc<tokio::sync::Semaphore>,
}

impl RpcServer {
    pub async fn start(
        client: &async_nats::Client,
        name: &'static str,
        shutdown: Shutdown,
    ) -> Result<Self, crate::BusError> {
        let service = client
            .service_builder()
            .description(format!("chorus {name} service"))
            .start(name, env!("CARGO_PKG_VERSION"))
            .await
            .map_err(crate::BusError::nats)?;
        Ok(RpcServer {
            service,
            name,
            shutdown,
            limit: Arc::new(tokio::sync::Semaphore::new(256)),
        })
    }

    /// Adds an endpoint answered by `handler(caller, request)`.
    pub async fn endpoint<Req, Resp, F, Fut>(
        &self,
        endpoint: &'static str,
        handler: F,
    ) -> Result<(), crate::BusError>
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(Caller, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ServiceResult<Resp>> + Send + 'static,
    {
        let group = self.service.group(format!("rpc.chorus.{}", self.name));
        let mut requests = group
            .endpoint(endpoint)
            .await
            .map_err(crate::BusError::nats)?;
        let handler = Arc::new(handler);
        let shutdown = self.shutdown.clone();
        let limit = self.limit.clone();
        let service_name = self.name;
        tokio::spawn(async move {
            loop {
                let request = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    request = requests.next() => match request { Some(request) => request, None => break },
                };
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    break;
                };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let started = std::time::Instant::now();
                    let span = tracing::info_span!(
                        "rpc",
                        otel.name = %format!("{service_name}.{endpoint}"),
                        otel.kind = "server",
                        service = service_name,
                        endpoint,
                        tenant_id = tracing::field::Empty,
                        outcome = tracing::field::Empty,
                    );
                    trace::set_parent_from_headers(&span, request.message.headers.as_ref());
                    // A handler that panics answers at once with an internal error instead
                    // of leaving the caller to time out.
                    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
                        answer(&request.message, handler.as_ref()),
                    ))
                    .instrument(span.clone())
                    .await
                    .unwrap_or_else(|panic| {
                        let what = panic
                            .downcast_ref::<String>()
                            .map(String::as_str)
                            .or_else(|| panic.downcast_ref::<&str>().copied())
                            .unwrap_or("a panic");
                        tracing::error!(parent: &span, panic = %what, "handler panicked");
                        Err(ServiceError::new(ErrorCode::Internal, "internal error"))
                    });
                    let label = match &outcome {
                        Ok(_) => "ok",
                        Err(error) => error.code.as_str(),
                    };
                    span.record("outcome", label);
                    RPC_SECONDS
                        .with_label_values(&[&format!("{service_name}.{endpoint}"), label])
                        .observe(started.elapsed().as_secs_f64());
                    let reply = match outcome {
                        Ok(body) => Ok(body.into()),
                        Err(error) => Err(async_nats::service::error::Error {
                            status: single_line(&error.message),
                            code: error.code.http_status() as usize,
                        }),
                    };
                    if let Err(error) = request.respond(reply).await {
                        tracing::warn!(parent: &span, %error, "reply could not be sent");
                    }
                });
            }
        });
        Ok(())
    }
}

fn single_line(message: &str) -> String {
    message.replace(['\r', '\n'], " ")
}

async fn answer<Req, Resp, F, Fut>(
    message: &async_nats::Message,
    handler: &F,
) -> ServiceResult<Vec<u8>>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: Fn(Caller, Req) -> Fut,
    Fut: Future<Output = ServiceResult<Resp>>,
{
    let caller = message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(CALLER_HEADER))
        .and_then(|value| serde_json::from_str::<Caller>(value.as_str()).ok())
        .ok_or_else(|| ServiceError::unauthorized("request carries no caller"))?;
    tracing::Span::current().record("tenant_id", caller.tenant_id.as_str());
    let request: Req = serde_json::from_slice(&message.payload)
        .map_err(|error| ServiceError::invalid(format!("request body is not valid: {error}")))?;
    let response = handler(caller, request).await?;
    serde_json::to_vec(&response).map_err(|error| ServiceError::internal(&error))
}

/// Calls an endpoint as `caller`; maps transport failures to `unavailable`.
pub async fn call<Req, Resp>(
    client: &async_nats::Client,
    subject: &str,
    caller: &Caller,
    request: &Req,
    timeout: Duration,
) -> ServiceResult<Resp>
where
    Req: Serialize,
    Resp: DeserializeOwned,
{
    let body = serde_json::to_vec(request).map_err(|error| ServiceError::internal(&error))?;
    let mut headers = async_nats::HeaderMap::new();
    let caller_json =
        serde_json::to_string(caller).map_err(|error| ServiceError::internal(&error))?;
    headers.insert(CALLER_HEADER, caller_json.as_str());
    trace::inject_current(&mut headers);
    let request = async_nats::Request::new()
        .payload(body.into())
        .headers(headers)
        .timeout(Some(timeout));
    let response = client
        .send_request(subject.to_string(), request)
        .await
        .map_err(|error| {
            use async_nats::RequestErrorKind;
            match error.kind() {
                RequestErrorKind::NoResponders => {
                    ServiceError::unavailable(format!("no service answers {subject}"))
                }
                // Sent, and maybe acted on: only the answer is missing.
                RequestErrorKind::TimedOut => {
                    ServiceError::outcome_unknown(format!("{subject} did not answer in time"))
                }
                _ => ServiceError::outcome_unknown(format!("{subject} failed: {error}")),
            }
        })?;
    if let Some(headers) = &response.headers
        && let Some(code) = headers.get(async_nats::service::NATS_SERVICE_ERROR_CODE)
    {
        let status: u16 = code.as_str().parse().unwrap_or(500);
        let message = headers
            .get(async_nats::service::NATS_SERVICE_ERROR)
            .map(|value| value.as_str().to_string())
            .unwrap_or_default();
        return Err(ServiceError::new(
            ErrorCode::from_http_status(status),
            message,
        ));
    }
    serde_json::from_slice(&response.payload).map_err(|error| {
        tracing::error!(%subject, payload = %String::from_utf8_lossy(&response.payload), "reply does not decode");
        ServiceError::internal(&error)
    })
}

/// The request of every service's `personal_data` endpoint (GDPR export).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PersonalDataRequest {
    pub user_id: String,
}

impl RpcServer {
    /// Serves `personal_data`: the rows of `tables` that concern a person, for the export
    /// the gateway assembles from every service.
    pub async fn personal_data(
        &self,
        db: sea_orm::DatabaseConnection,
        tables: &'static [chorus_kit::db::PersonalTable],
    ) -> Result<(), crate::BusError> {
        self.endpoint(
            "personal_data",
            move |caller: Caller, request: PersonalDataRequest| {
                let db = db.clone();
                async move {
                    chorus_kit::db::personal_data(&db, &caller, &request.user_id, tables).await
                }
            },
        )
        .await
    }
}
