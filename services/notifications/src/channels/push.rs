//! Mobile push: FCM HTTP v1 (OAuth 2.0 access token from the service account's signed JWT)
//! and APNs over HTTP/2 (ES256 provider token). Endpoints are configurable, so tests and
//! staging point them at local receivers.

use chorus_kit::config::NotificationsConfig;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// What one push achieved.
pub enum Pushed {
    Accepted,
    /// The device token is no longer valid: forget the device.
    Unregistered(String),
    /// Not worth retrying.
    Refused(String),
    Failed(String),
}

#[derive(Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    #[serde(default = "default_token_uri")]
    token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".to_string()
}

#[derive(Serialize)]
struct GrantClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

pub struct Fcm {
    project_id: String,
    client_email: String,
    key: EncodingKey,
    token_uri: String,
    endpoint: String,
    http: reqwest::Client,
    token: Mutex<Option<(String, Instant)>>,
}

impl Fcm {
    fn from_config(
        config: &NotificationsConfig,
        http: reqwest::Client,
    ) -> anyhow::Result<Option<Fcm>> {
        let (Some(project_id), Some(file)) =
            (&config.fcm_project_id, &config.fcm_service_account_file)
        else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(file).map_err(|error| {
            anyhow::anyhow!(
                "notifications.fcm_service_account_file {}: {error}",
                file.display()
            )
        })?;
        let account: ServiceAccount = serde_json::from_str(&text).map_err(|error| {
            anyhow::anyhow!("the FCM service account file is not a service account key: {error}")
        })?;
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes()).map_err(|error| {
            anyhow::anyhow!("the FCM service account's private_key is not usable: {error}")
        })?;
        Ok(Some(Fcm {
            project_id: project_id.clone(),
            client_email: account.client_email,
            key,
            token_uri: account.token_uri,
            endpoint: config.fcm_endpoint.trim_end_matches('/').to_string(),
            http,
            token: Mutex::new(None),
        }))
    }

    /// An OAuth 2.0 access token, reused until five minutes before it ends.
    async fn access_token(&self) -> Result<String, String> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let now = chrono::Utc::now().timestamp();
        let claims = GrantClaims {
            iss: &self.client_email,
            scope: "https://www.googleapis.com/auth/firebase.messaging",
            aud: &self.token_uri,
            iat: now,
            exp: now + 3_600,
        };
        let assertion = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|error| format!("signing the token request failed: {error}"))?;
        let response = self
            .http
            .post(&self.token_uri)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|error| format!("token request failed: {error}"))?;
        if !response.status().is_success() {
            return Err(format!("token request answered HTTP {}", response.status()));
        }
        #[derive(Deserialize)]
        struct Granted {
            access_token: String,
            expires_in: u64,
        }
        let granted: Granted = response
            .json()
            .await
            .map_err(|error| format!("token answer unreadable: {error}"))?;
        let until =
            Instant::now() + Duration::from_secs(granted.expires_in.saturating_sub(300).max(60));
        *cached = Some((granted.access_token.clone(), until));
        Ok(granted.access_token)
    }

    async fn send(
        &self,
        device_token: &str,
        title: &str,
        body: &str,
        kind: &str,
        id: &str,
    ) -> Pushed {
        let token = match self.access_token().await {
            Ok(token) => token,
            Err(error) => return Pushed::Failed(error),
        };
        let url = format!(
            "{}/v1/projects/{}/messages:send",
            self.endpoint, self.project_id
        );
        let payload = json!({
            "message": {
                "token": device_token,
                "notification": {"title": title, "body": body},
                "data": {"kind": kind, "notification_id": id},
                "android": {"priority": "high"}
            }
        });
        let response = match self
            .http
            .post(url)
            .bearer_auth(token)
            .json(&payload)
            .send()
            .await
        {
            Ok(response) => response,
            Err(error) => return Pushed::Failed(format!("request failed: {error}")),
        };
        let status = response.status().as_u16();
        let text = super::reply_excerpt(response).await;
        match status {
            200..=299 => Pushed::Accepted,
            404 => Pushed::Unregistered(format!("FCM {status}: {text}")),
            400 if text.contains("UNREGISTERED") => {
                Pushed::Unregistered(format!("FCM {status}: {text}"))
            }
            401 => {
                *self.token.lock().await = None;
                Pushed::Failed(format!("FCM {status}: {text}"))
            }
            400 | 403 => Pushed::Refused(format!("FCM {status}: {text}")),
            _ => Pushed::Failed(format!("FCM {status}: {text}")),
        }
    }
}

#[derive(Serialize)]
struct ProviderClaims<'a> {
    iss: &'a str,
    iat: i64,
}

pub struct Apns {
    team_id: String,
    key_id: String,
    key: EncodingKey,
    topic: String,
    endpoint: String,
    http: reqwest::Client,
    jwt: Mutex<Option<(String, Instant)>>,
}

impl Apns {
    fn from_config(config: &NotificationsConfig) -> anyhow::Result<Option<Apns>> {
        let (Some(team_id), Some(key_id), Some(file), Some(topic)) = (
            &config.apns_team_id,
            &config.apns_key_id,
            &config.apns_key_file,
            &config.apns_topic,
        ) else {
            return Ok(None);
        };
        let pem = std::fs::read(file).map_err(|error| {
            anyhow::anyhow!("notifications.apns_key_file {}: {error}", file.display())
        })?;
        let key = EncodingKey::from_ec_pem(&pem)
            .map_err(|error| anyhow::anyhow!("the APNs key is not a P-256 key in PEM: {error}"))?;
        let endpoint = config.apns_endpoint.trim_end_matches('/').to_string();
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.channel_timeout_ms))
            .redirect(reqwest::redirect::Policy::none());
        // APNs speaks HTTP/2 only: negotiated over TLS, spoken at once over plain http
        // (local receivers).
        if endpoint.starts_with("http://") {
            builder = builder.http2_prior_knowledge();
        }
        Ok(Some(Apns {
            team_id: team_id.clone(),
            key_id: key_id.clone(),
            key,
            topic: topic.clone(),
            endpoint,
            http: builder.build()?,
            jwt: Mutex::new(None),
        }))
    }

    /// The provider token, renewed every 50 minutes (Apple accepts one for an hour and
    /// refuses renewals more often than every 20 minutes).
    async fn provider_token(&self) -> Result<String, String> {
        let mut cached = self.jwt.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let claims = ProviderClaims {
            iss: &self.team_id,
            iat: chrono::Utc::now().timestamp(),
        };
        let token = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|error| format!("signing the provider token failed: {error}"))?;
        *cached = Some((token.clone(), Instant::now() + Duration::from_secs(50 * 60)));
        Ok(token)
    }

    async fn send(
        &self,
        device_token: &str,
        title: &str,
        body: &str,
        kind: &str,
        id: &str,
    ) -> Pushed {
        let token = match self.provider_token().await {
            Ok(token) => token,
            Err(error) => return Pushed::Failed(error),
        };
        let payload = json!({
            "aps": {"alert": {"title": title, "body": body}, "sound": "default"},
            "kind": kind,
            "notification_id": id
        });
        let response = match self
            .http
            .post(format!("{}/3/device/{device_token}", self.endpoint))
            .header("authorization", format!("bearer {token}"))
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "alert")
            .header("apns-priority", "10")
            .header("apns-id", apns_id(id))
            .json(&payload)
            .send()
            .await
        {
            Ok(response) => response,
            Err(error) => return Pushed::Failed(format!("request failed: {error}")),
        };
        let status = response.status().as_u16();
        let text = super::reply_excerpt(response).await;
        match status {
            200..=299 => Pushed::Accepted,
            410 => Pushed::Unregistered(format!("APNs {status}: {text}")),
            400 if text.contains("BadDeviceToken") || text.contains("DeviceTokenNotForTopic") => {
                Pushed::Unregistered(format!("APNs {status}: {text}"))
            }
            403 if text.contains("ExpiredProviderToken")
                || text.contains("InvalidProviderToken") =>
            {
                *self.jwt.lock().await = None;
                Pushed::Failed(format!("APNs {status}: {text}"))
            }
            400 | 403 | 404 | 405 | 413 => Pushed::Refused(format!("APNs {status}: {text}")),
            _ => Pushed::Failed(format!("APNs {status}: {text}")),
        }
    }
}

/// A stable UUID for `apns-id` from the message id, so a retried push is the same push.
fn apns_id(message_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(message_id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The configured push services.
pub struct Push {
    fcm: Option<Fcm>,
    apns: Option<Apns>,
}

impl Push {
    pub fn from_config(config: &NotificationsConfig) -> anyhow::Result<Push> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.channel_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Push {
            fcm: Fcm::from_config(config, http)?,
            apns: Apns::from_config(config)?,
        })
    }

    /// Platforms devices may register for.
    pub fn platforms(&self) -> Vec<&'static str> {
        let mut platforms = Vec::new();
        if self.fcm.is_some() {
            platforms.push("fcm");
        }
        if self.apns.is_some() {
            platforms.push("apns");
        }
        platforms
    }

    pub fn available(&self) -> bool {
        self.fcm.is_some() || self.apns.is_some()
    }

    pub async fn send(
        &self,
        platform: &str,
        device_token: &str,
        title: &str,
        body: &str,
        kind: &str,
        id: &str,
    ) -> Pushed {
        match (platform, &self.fcm, &self.apns) {
            ("fcm", Some(fcm), _) => fcm.send(device_token, title, body, kind, id).await,
            ("apns", _, Some(apns)) => apns.send(device_token, title, body, kind, id).await,
            (other, _, _) => Pushed::Refused(format!("push to {other} is not configured")),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn apns_ids_are_stable_uuids() {
        let first = super::apns_id("cm_1");
        assert_eq!(first, super::apns_id("cm_1"));
        assert_ne!(first, super::apns_id("cm_2"));
        assert!(uuid::Uuid::parse_str(&first).is_ok());
    }
}
