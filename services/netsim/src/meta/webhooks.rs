//! Meta Webhooks for Pages: an app subscribes with `POST /{app-id}/subscriptions`
//! (`object=page`, `callback_url`, `fields=feed`, `verify_token`, an app access token
//! `{app-id}|{app-secret}`); netsim verifies the callback with the GET handshake, then posts
//! a signed delivery (`X-Hub-Signature-256`, HMAC-SHA256 of the body with the app secret)
//! whenever a Facebook post gets reactions, comments or reshares. Deliveries name what
//! changed, never counts, as Meta's do.

use super::{GraphError, GraphRequest, invalid_parameter};
use crate::state::SimState;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::sync::Mutex;

#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub callback_url: String,
    pub app_secret: String,
}

#[derive(Default)]
pub(crate) struct Subscriptions {
    page: Mutex<Option<Subscription>>,
}

impl Subscriptions {
    fn get(&self) -> Option<Subscription> {
        self.page.lock().expect("subscriptions lock").clone()
    }
}

fn oauth_error(message: &str, code: i64) -> GraphError {
    let mut error = invalid_parameter(message);
    error.code = code;
    error.kind = "OAuthException";
    error
}

/// `POST /{app-id}/subscriptions`: verifies the callback, then keeps the subscription.
pub(super) async fn subscribe(
    state: &SimState,
    request: &GraphRequest,
    app_id: &str,
) -> Result<Value, GraphError> {
    let token = request.param("access_token").unwrap_or_default();
    let Some((token_app, app_secret)) = token.split_once('|') else {
        return Err(oauth_error(
            "(#15) This method must be called with an app access_token.",
            15,
        ));
    };
    if token_app != app_id || app_secret.is_empty() {
        return Err(oauth_error("Invalid OAuth access token.", 190));
    }
    if request.param("object") != Some("page") {
        return Err(invalid_parameter("(#100) object must be page"));
    }
    if !request
        .param("fields")
        .is_some_and(|fields| fields.split(',').any(|field| field.trim() == "feed"))
    {
        return Err(invalid_parameter("(#100) fields must include feed"));
    }
    let (Some(callback_url), Some(verify_token)) =
        (request.param("callback_url"), request.param("verify_token"))
    else {
        return Err(invalid_parameter(
            "(#100) callback_url and verify_token are required",
        ));
    };
    let challenge = uuid::Uuid::new_v4().simple().to_string();
    let verified = reqwest::Client::new()
        .get(callback_url)
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.challenge", challenge.as_str()),
            ("hub.verify_token", verify_token),
        ])
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await;
    let echoed = match verified {
        Ok(response) if response.status().is_success() => {
            response.text().await.unwrap_or_default() == challenge
        }
        _ => false,
    };
    if !echoed {
        let mut error = invalid_parameter(
            "(#2200) callback verification failed: the callback did not echo hub.challenge",
        );
        error.code = 2200;
        return Err(error);
    }
    *state
        .meta
        .subscriptions
        .page
        .lock()
        .expect("subscriptions lock") = Some(Subscription {
        callback_url: callback_url.to_string(),
        app_secret: app_secret.to_string(),
    });
    tracing::info!(app_id, callback_url, "netsim page webhook subscribed");
    Ok(json!({"success": true}))
}

/// Sends the feed changes of a Facebook post to the subscribed callback (in the
/// background), one change per reaction, comment and reshare added, as Meta does.
pub(crate) fn post_changed(
    state: &SimState,
    urn: &str,
    reactions: i64,
    comments: i64,
    reshares: i64,
) {
    let Some(subscription) = state.meta.subscriptions.get() else {
        return;
    };
    let Some(post) = state.post(urn) else { return };
    if post.network != "facebook" {
        return;
    }
    let page_id = urn.split('_').next().unwrap_or_default().to_string();
    let now = chrono::Utc::now().timestamp();
    let mut changes = Vec::new();
    for (item, count) in [
        ("reaction", reactions),
        ("comment", comments),
        ("share", reshares),
    ] {
        let verb = if count < 0 { "remove" } else { "add" };
        for index in 0..count.unsigned_abs().min(50) {
            let mut value = json!({
                "item": item,
                "verb": verb,
                "post_id": urn,
                "created_time": now,
                "from": {"id": format!("{}", 9_000_000 + index), "name": "A Visitor"},
            });
            match item {
                "reaction" => value["reaction_type"] = json!("like"),
                "comment" => value["comment_id"] = json!(format!("{urn}_{index}")),
                _ => {}
            }
            changes.push(json!({"field": "feed", "value": value}));
        }
    }
    if changes.is_empty() {
        return;
    }
    let body = json!({
        "object": "page",
        "entry": [{"id": page_id, "time": now, "changes": changes}],
    })
    .to_string();
    let signature = {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(subscription.app_secret.as_bytes())
            .expect("any key length");
        mac.update(body.as_bytes());
        let digest = mac.finalize().into_bytes();
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("sha256={hex}")
    };
    let urn = urn.to_string();
    tokio::spawn(async move {
        let sent = reqwest::Client::new()
            .post(&subscription.callback_url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(body)
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(response) => {
                tracing::info!(%urn, status = response.status().as_u16(), "netsim page webhook delivered")
            }
            Err(error) => tracing::warn!(%urn, %error, "netsim page webhook not delivered"),
        }
    });
}
