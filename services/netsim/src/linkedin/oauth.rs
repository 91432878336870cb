//! LinkedIn's 3-legged OAuth 2.0: an authorize page that consents at once, and the token
//! endpoint for authorization_code (with optional PKCE S256) and refresh_token grants.

use super::AppState;
use crate::state::{CodeExchange, Consent, GrantRefused, IssuedTokens, random_member_id};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;

const GRANTED_SCOPE: &str = "openid profile w_member_social";

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn invalid_request(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn present<'a>(fields: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    fields
        .get(name)
        .map(String::as_str)
        .filter(|value| !value.is_empty())
}

/// `GET /oauth/v2/authorization`: the member consents at once and is sent back with a
/// code. The non-LinkedIn `member` parameter picks the simulated member.
pub(super) async fn authorize(
    State(state): AppState,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if present(&query, "response_type") != Some("code") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_response_type",
            "response_type must be code",
        );
    }
    let Some(client_id) = present(&query, "client_id") else {
        return invalid_request("client_id is required");
    };
    let Some(redirect_uri) = present(&query, "redirect_uri") else {
        return invalid_request("redirect_uri is required");
    };
    let Ok(mut location) = url::Url::parse(redirect_uri) else {
        return invalid_request("redirect_uri must be an absolute URL");
    };
    let code_challenge = present(&query, "code_challenge");
    if code_challenge.is_some()
        && present(&query, "code_challenge_method").unwrap_or("plain") != "S256"
    {
        return invalid_request("code_challenge_method must be S256");
    }
    let member_id = present(&query, "member")
        .map(str::to_string)
        .unwrap_or_else(random_member_id);

    let code = state.grant_code(Consent {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        member_id: member_id.clone(),
        code_challenge: code_challenge.map(str::to_string),
    });
    {
        let mut pairs = location.query_pairs_mut();
        pairs.append_pair("code", &code);
        if let Some(client_state) = query.get("state") {
            pairs.append_pair("state", client_state);
        }
    }
    tracing::info!(member_id = %member_id, client_id, pkce = code_challenge.is_some(), "netsim consent granted");
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

/// `POST /oauth/v2/accessToken`, form-encoded.
pub(super) async fn access_token(State(state): AppState, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let Some(client_id) = present(&form, "client_id") else {
        return invalid_request("client_id is required");
    };
    // Netsim knows no application registry: any non-empty secret authenticates the client.
    if present(&form, "client_secret").is_none() {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    let grant_type = present(&form, "grant_type").unwrap_or_default();
    let issued = match grant_type {
        "authorization_code" => {
            let (Some(code), Some(redirect_uri)) =
                (present(&form, "code"), present(&form, "redirect_uri"))
            else {
                return invalid_request("code and redirect_uri are required");
            };
            state.exchange_code(CodeExchange {
                code,
                redirect_uri,
                client_id,
                code_verifier: present(&form, "code_verifier"),
            })
        }
        "refresh_token" => {
            let Some(refresh_token) = present(&form, "refresh_token") else {
                return invalid_request("refresh_token is required");
            };
            state.refresh(refresh_token, client_id)
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            );
        }
    };
    match issued {
        Ok(tokens) => {
            tracing::info!(client_id, grant_type, "netsim tokens issued");
            token_reply(tokens)
        }
        Err(GrantRefused(description)) => {
            tracing::info!(
                client_id,
                grant_type,
                reason = description,
                "netsim grant refused"
            );
            oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
        }
    }
}

fn token_reply(tokens: IssuedTokens) -> Response {
    axum::Json(json!({
        "access_token": tokens.access_token,
        "expires_in": tokens.access_expires_in_secs,
        "refresh_token": tokens.refresh_token,
        "refresh_token_expires_in": tokens.refresh_expires_in_secs,
        "scope": GRANTED_SCOPE,
    }))
    .into_response()
}
