//! Slack and Microsoft Teams incoming webhooks: the JSON each expects, sent only to
//! addresses that pass the same destination checks as integrator webhooks.

use crate::webhooks::destination;
use chorus_kit::config::NotificationsConfig;
use serde_json::{Value, json};
use std::time::Duration;

pub fn client_builder(config: &NotificationsConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(config.channel_timeout_ms))
        .connect_timeout(Duration::from_millis(config.channel_timeout_ms.min(5_000)))
        .user_agent(concat!("Chorus-Notifications/", env!("CARGO_PKG_VERSION")))
}

/// A Slack message: `text` is the fallback shown in notifications, `blocks` the message.
pub fn slack_payload(title: &str, body: &str) -> Value {
    // Slack's mrkdwn treats &, < and > as control characters.
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    json!({
        "text": format!("{}: {}", escape(title), escape(body)),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": true}},
            {"type": "section", "text": {"type": "mrkdwn", "text": escape(body)}}
        ]
    })
}

/// A Teams message: one Adaptive Card, as incoming webhooks (Workflows) accept it.
pub fn teams_payload(title: &str, body: &str) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": true},
                    {"type": "TextBlock", "text": body, "wrap": true}
                ]
            }
        }]
    })
}

/// What a post to a team channel achieved.
pub enum Posted {
    Accepted,
    /// Not worth retrying (4xx other than 408/429, refused destination).
    Refused(String),
    Failed(String),
}

/// POSTs `payload` to `url`, connecting only to the addresses checked now (unless the
/// tenant allows private destinations).
pub async fn post(
    client: &reqwest::Client,
    config: &NotificationsConfig,
    url: &str,
    allow_private: bool,
    payload: &Value,
) -> Posted {
    let parsed = match destination::parse(url, allow_private) {
        Ok(parsed) => parsed,
        Err(refused) => return Posted::Refused(format!("refused: {refused}")),
    };
    let client = if allow_private {
        client.clone()
    } else {
        let addresses = match destination::resolve(&parsed, false).await {
            Ok(addresses) => addresses,
            Err(refused) => return Posted::Refused(format!("refused: {refused}")),
        };
        let mut builder = client_builder(config);
        if let Some(url::Host::Domain(name)) = parsed.host() {
            builder = builder.resolve_to_addrs(name, &addresses);
        }
        match builder.build() {
            Ok(client) => client,
            Err(error) => return Posted::Failed(error.to_string()),
        }
    };
    match client.post(parsed).json(payload).send().await {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                return Posted::Accepted;
            }
            let text = super::reply_excerpt(response).await;
            let message = format!("HTTP {}: {}", status.as_u16(), text.trim());
            if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
                Posted::Refused(message)
            } else {
                Posted::Failed(message)
            }
        }
        Err(error) => Posted::Failed(format!("request failed: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_escapes_its_control_characters_in_mrkdwn() {
        let payload = slack_payload("Endpoint <off>", "a & b <https://x>");
        assert_eq!(
            payload["blocks"][1]["text"]["text"],
            "a &amp; b &lt;https://x&gt;"
        );
        assert_eq!(payload["blocks"][0]["text"]["text"], "Endpoint <off>");
    }

    #[test]
    fn teams_sends_an_adaptive_card() {
        let payload = teams_payload("T", "B");
        assert_eq!(
            payload["attachments"][0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(payload["attachments"][0]["content"]["body"][1]["text"], "B");
    }
}
