//! Single sign-on: bearer tokens from the configured OpenID Connect issuer, verified against
//! its JWKS (fetched through the discovery document, fetched again when a token names an
//! unknown key: rotation), with `iss`, `aud` and `exp` checked and only RS256 or ES256.

use chorus_kit::config::SecurityConfig;
use chorus_kit::{Caller, ServiceError};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Algorithms accepted from the issuer (never `none` or a shared-secret HMAC).
const ALGORITHMS: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256];

/// The JWKS is fetched again for an unknown key at most this often.
const REFRESH_GAP: Duration = Duration::from_secs(10);

/// The issuer's keys by id, and when they were last fetched.
type KeySet = (HashMap<String, (DecodingKey, Algorithm)>, Option<Instant>);

pub struct Oidc {
    issuer: String,
    audience: String,
    tenant_claim: String,
    user_claim: String,
    http: reqwest::Client,
    keys: Mutex<KeySet>,
}

impl Oidc {
    pub fn from_config(config: &SecurityConfig) -> anyhow::Result<Option<Oidc>> {
        let Some(issuer) = &config.oidc_issuer else {
            return Ok(None);
        };
        let audience = config.oidc_audience.clone().ok_or_else(|| {
            anyhow::anyhow!("security.oidc_audience is needed with security.oidc_issuer")
        })?;
        Ok(Some(Oidc {
            issuer: issuer.trim_end_matches('/').to_string(),
            audience,
            tenant_claim: config
                .oidc_tenant_claim
                .clone()
                .unwrap_or_else(|| "chorus_tenant".to_string()),
            user_claim: config
                .oidc_user_claim
                .clone()
                .unwrap_or_else(|| "sub".to_string()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            keys: Mutex::new((HashMap::new(), None)),
        }))
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, (DecodingKey, Algorithm)>, String> {
        #[derive(serde::Deserialize)]
        struct Discovery {
            jwks_uri: String,
        }
        let discovery: Discovery = self
            .http
            .get(format!("{}/.well-known/openid-configuration", self.issuer))
            .send()
            .await
            .map_err(|error| format!("the issuer's discovery document is unreachable: {error}"))?
            .json()
            .await
            .map_err(|error| format!("the issuer's discovery document is unreadable: {error}"))?;
        let set: JwkSet = self
            .http
            .get(&discovery.jwks_uri)
            .send()
            .await
            .map_err(|error| format!("the issuer's JWKS is unreachable: {error}"))?
            .json()
            .await
            .map_err(|error| format!("the issuer's JWKS is unreadable: {error}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Ok(key)) = (&jwk.common.key_id, DecodingKey::from_jwk(jwk)) else {
                continue;
            };
            let algorithm = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                _ => continue,
            };
            keys.insert(kid.clone(), (key, algorithm));
        }
        Ok(keys)
    }

    /// The key a token names, fetching the JWKS when the key is unknown (rotation).
    async fn key(&self, kid: &str) -> Result<(DecodingKey, Algorithm), ServiceError> {
        let mut cached = self.keys.lock().await;
        if let Some(found) = cached.0.get(kid) {
            return Ok(found.clone());
        }
        if cached.1.is_none_or(|at| at.elapsed() >= REFRESH_GAP) {
            cached.1 = Some(Instant::now());
            match self.fetch_keys().await {
                Ok(keys) => {
                    tracing::info!(keys = keys.len(), issuer = %self.issuer, "OIDC keys fetched");
                    cached.0 = keys;
                }
                Err(error) => {
                    tracing::warn!(%error, "fetching the OIDC keys failed");
                    return Err(ServiceError::unavailable(error));
                }
            }
        }
        cached.0.get(kid).cloned().ok_or_else(|| {
            ServiceError::unauthorized(format!("the token's key {kid} is not the issuer's"))
        })
    }

    /// The caller an issuer's token stands for (roles come from identity afterwards).
    pub async fn verify(&self, token: &str) -> Result<Caller, ServiceError> {
        let header = jsonwebtoken::decode_header(token).map_err(|error| {
            ServiceError::unauthorized(format!("the token is malformed: {error}"))
        })?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(ServiceError::unauthorized(format!(
                "tokens signed with {:?} are not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| ServiceError::unauthorized("the token names no key (kid)"))?;
        let (key, algorithm) = self.key(&kid).await?;
        if algorithm != header.alg {
            return Err(ServiceError::unauthorized(
                "the token's algorithm does not match its key",
            ));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_audience(&[self.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 60;
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|error| {
                ServiceError::unauthorized(format!("the token is not valid: {error}"))
            })?
            .claims;
        let claim = |name: &str| {
            claims[name]
                .as_str()
                .filter(|value| !value.is_empty())
                .map(str::to_string)
                .ok_or_else(|| ServiceError::unauthorized(format!("the token has no {name} claim")))
        };
        Ok(Caller {
            tenant_id: claim(&self.tenant_claim)?,
            user_id: claim(&self.user_claim)?,
            roles: Vec::new(),
        })
    }
}
