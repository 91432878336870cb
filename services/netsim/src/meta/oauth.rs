//! Facebook Login: the consent dialog (consents at once), the code exchange, the
//! long-lived user token (`fb_exchange_token`) and the Pages of the user (`/me/accounts`)
//! with their Page tokens.

use super::store::{TokenKind, TokenProblem, ig_user_id_of, page_id_of, user_id_of};
use super::{Caller, GraphError, GraphRequest, invalid_parameter, select, token_error};
use crate::state::SimState;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `GET /{version}/dialog/oauth`: consents at once and redirects with a code. The
/// non-Facebook `member` parameter picks the simulated user.
pub(super) fn dialog(state: &SimState, request: &GraphRequest) -> Response {
    let Some(client_id) = request.param("client_id") else {
        return invalid_parameter("The parameter app_id is required").into_response();
    };
    let Some(redirect_uri) = request.param("redirect_uri") else {
        return invalid_parameter("The parameter redirect_uri is required").into_response();
    };
    let Ok(mut location) = url::Url::parse(redirect_uri) else {
        return invalid_parameter("Invalid redirect_uri: not an absolute URL").into_response();
    };
    if request.param("response_type").unwrap_or("code") != "code" {
        return invalid_parameter("netsim only simulates response_type=code").into_response();
    }
    let code_challenge = request.param("code_challenge");
    if code_challenge.is_some() && request.param("code_challenge_method") != Some("S256") {
        return invalid_parameter("code_challenge_method must be S256").into_response();
    }
    let member_id = request
        .param("member")
        .map(str::to_string)
        .unwrap_or_else(crate::state::random_member_id);
    let code = state.meta.grant_code(
        client_id,
        redirect_uri,
        &member_id,
        code_challenge.map(str::to_string),
    );
    {
        let mut pairs = location.query_pairs_mut();
        pairs.append_pair("code", &code);
        if let Some(client_state) = request.param("state") {
            pairs.append_pair("state", client_state);
        }
    }
    tracing::info!(member_id = %member_id, client_id, "netsim facebook login consent granted");
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

fn token_reply(token: String, lifetime: TimeDelta) -> Response {
    axum::Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": lifetime.num_seconds(),
    }))
    .into_response()
}

/// `GET /{version}/oauth/access_token`: the code exchange, or `grant_type=fb_exchange_token`.
pub(super) fn access_token(state: &SimState, request: &GraphRequest) -> Response {
    let Some(client_id) = request.param("client_id") else {
        return GraphError::new(
            StatusCode::BAD_REQUEST,
            101,
            "Error validating application. Invalid application ID.",
        )
        .into_response();
    };
    // Netsim knows no application registry: any non-empty secret authenticates the app.
    if request.param("client_secret").is_none() {
        return GraphError::new(
            StatusCode::BAD_REQUEST,
            1,
            "Error validating client secret.",
        )
        .into_response();
    }
    if request.param("grant_type") == Some("fb_exchange_token") {
        let Some(user_token) = request.param("fb_exchange_token") else {
            return invalid_parameter("The parameter fb_exchange_token is required")
                .into_response();
        };
        let grant = match state.meta.grant(user_token) {
            Ok(grant) => grant,
            Err(problem) => return token_error(Some(problem)).into_response(),
        };
        if grant.client_id != client_id
            || !matches!(grant.kind, TokenKind::ShortUser | TokenKind::LongUser)
        {
            return token_error(Some(TokenProblem::Unknown)).into_response();
        }
        let lifetime =
            TimeDelta::from_std(state.options.access_token_ttl).unwrap_or(TimeDelta::MAX);
        let token = state.meta.mint(&grant, TokenKind::LongUser, Some(lifetime));
        tracing::info!(member_id = %grant.member_id, "netsim facebook long-lived user token issued");
        return token_reply(token, lifetime);
    }
    let (Some(code), Some(redirect_uri)) = (request.param("code"), request.param("redirect_uri"))
    else {
        return invalid_parameter("Missing redirect_uri or code parameter.").into_response();
    };
    match state.meta.exchange_code(
        code,
        client_id,
        redirect_uri,
        request.param("code_verifier"),
        challenge_of,
    ) {
        Ok((token, lifetime)) => {
            tracing::info!(client_id, "netsim facebook user token issued");
            token_reply(token, lifetime)
        }
        Err(refused) => {
            tracing::info!(
                client_id,
                reason = refused.message,
                "netsim facebook code refused"
            );
            invalid_parameter(refused.message)
                .subcode(refused.subcode)
                .into_response()
        }
    }
}

/// `GET /me` with a user token.
pub(super) fn user_node(caller: &Caller, request: &GraphRequest) -> Value {
    let mut node = Map::new();
    node.insert("id".into(), json!(user_id_of(&caller.member_id)));
    node.insert("name".into(), json!(format!("User {}", caller.member_id)));
    let fields = request.fields();
    if fields.is_empty() {
        return Value::Object(node);
    }
    select(node, &fields)
}

/// `GET /me/accounts`: the user's Page, with a Page token. A Page token taken from a
/// long-lived user token never expires; one from a short-lived token dies with it.
pub(super) fn accounts(state: &SimState, caller: &Caller, request: &GraphRequest) -> Value {
    let Ok(grant) = request
        .access_token()
        .ok_or(TokenProblem::Unknown)
        .and_then(|token| state.meta.grant(&token))
    else {
        return json!({"data": []});
    };
    let page_id = page_id_of(&caller.member_id);
    let lifetime = match grant.kind {
        TokenKind::LongUser => None,
        _ => grant
            .expires_at
            .map(|expires_at| expires_at - chrono::Utc::now()),
    };
    let page_token = state.meta.mint(
        &grant,
        TokenKind::Page {
            page_id: page_id.clone(),
        },
        lifetime,
    );
    let mut page = Map::new();
    page.insert("id".into(), json!(page_id));
    page.insert(
        "name".into(),
        json!(format!("Page of {}", caller.member_id)),
    );
    page.insert("access_token".into(), json!(page_token));
    page.insert("category".into(), json!("Personal blog"));
    page.insert(
        "tasks".into(),
        json!([
            "ADVERTISE",
            "ANALYZE",
            "CREATE_CONTENT",
            "MESSAGING",
            "MODERATE",
            "MANAGE"
        ]),
    );
    page.insert(
        "instagram_business_account".into(),
        json!({"id": ig_user_id_of(&caller.member_id)}),
    );
    let fields = request.fields();
    let selected = if fields.is_empty() {
        // Graph's default fields of /me/accounts do not expand the Instagram account.
        page.remove("instagram_business_account");
        Value::Object(page)
    } else {
        select(page, &fields)
    };
    json!({
        "data": [selected],
        "paging": {"cursors": {"before": "QVFIUjAx", "after": "QVFIUjAx"}},
    })
}
