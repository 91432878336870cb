//! What every adapter does around an HTTP call: a `network.call` span, the status on it,
//! and the classification of failures that carry no HTTP status.

use crate::{Network, NetworkError};
use reqwest::{RequestBuilder, Response};

/// Whether a call changes something on the network, which decides what a transport
/// failure after sending means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallEffect {
    /// Safe to repeat (reads, refreshing a non-rotating refresh token, an Instagram
    /// container): a lost reply is only `Unavailable`.
    Repeatable,
    /// May have taken effect (creating a post, spending a code or a rotating refresh
    /// token): a lost reply is `OutcomeUnknown`.
    SideEffect,
}

/// The span of one call to `network`; `send` records the HTTP status on it.
pub(crate) fn call_span(network: Network, operation: &'static str) -> tracing::Span {
    tracing::info_span!(
        "network.call",
        otel.kind = "client",
        network = network.as_str(),
        operation,
        http.status_code = tracing::field::Empty,
    )
}

/// Sends the request and records the status on the current `network.call` span.
pub(crate) async fn send(
    network: Network,
    request: RequestBuilder,
    effect: CallEffect,
) -> Result<Response, NetworkError> {
    match request.send().await {
        Ok(response) => {
            tracing::Span::current().record("http.status_code", response.status().as_u16());
            Ok(response)
        }
        Err(error) => {
            let classified = classify_transport_error(network, error, effect);
            tracing::warn!(error.code = classified.code(), error = %classified, "{network} call failed in transport");
            Err(classified)
        }
    }
}

/// Reads a successful reply's JSON body.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    network: Network,
    response: Response,
    effect: CallEffect,
    what: &str,
) -> Result<T, NetworkError> {
    let bytes = response
        .bytes()
        .await
        .map_err(|error| classify_transport_error(network, error, effect))?;
    serde_json::from_slice(&bytes).map_err(|error| unreadable(network, effect, what, &error))
}

/// A reply that arrived but cannot be read: for a side effect, the call happened and only
/// its result is unknown.
pub(crate) fn unreadable(
    network: Network,
    effect: CallEffect,
    what: &str,
    error: &serde_json::Error,
) -> NetworkError {
    let message = format!("{network} sent an unreadable {what}: {error}");
    match effect {
        CallEffect::Repeatable => NetworkError::Unavailable(message),
        CallEffect::SideEffect => NetworkError::OutcomeUnknown(message),
    }
}

/// The error and its causes on one line.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A failure without an HTTP status. Connecting failed: nothing was sent. Anything later
/// (timeout, reset, unreadable body) may have happened after the network acted. The URL
/// is dropped from the message: some networks carry tokens in the query.
pub(crate) fn classify_transport_error(
    network: Network,
    error: reqwest::Error,
    effect: CallEffect,
) -> NetworkError {
    let (is_builder, is_connect) = (error.is_builder(), error.is_connect());
    let detail = error_chain(&error.without_url());
    if is_builder {
        return NetworkError::Configuration(format!(
            "{network} request could not be built: {detail}"
        ));
    }
    if is_connect {
        return NetworkError::Unavailable(format!("{network} unreachable: {detail}"));
    }
    match effect {
        CallEffect::Repeatable => {
            NetworkError::Unavailable(format!("{network} reply lost: {detail}"))
        }
        CallEffect::SideEffect => {
            NetworkError::OutcomeUnknown(format!("{network} reply lost: {detail}"))
        }
    }
}
