//! Development tokens (`chorus token`) and the process's generated secrets.
//!
//! A development token is an HS256 JWT whose claims name the tenant, the user and the
//! roles. Production deployments put an OIDC issuer in front; the claims map the same way.

use crate::caller::{Caller, Role};
use crate::config::Config;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub const DEV_ISSUER: &str = "chorus-dev";
pub const AUDIENCE: &str = "chorus";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub tenant: String,
    pub roles: Vec<String>,
    pub exp: i64,
    pub iat: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token is invalid: {0}")]
    Invalid(String),
    #[error("token names an unknown role {0:?}")]
    UnknownRole(String),
}

/// Mints a development token valid for `ttl`.
pub fn mint(key: &[u8], tenant: &str, user: &str, roles: &[Role], ttl: chrono::Duration) -> String {
    let now = chrono::Utc::now();
    let claims = Claims {
        iss: DEV_ISSUER.to_string(),
        aud: AUDIENCE.to_string(),
        sub: user.to_string(),
        tenant: tenant.to_string(),
        roles: roles.iter().map(|role| role.as_str().to_string()).collect(),
        exp: (now + ttl).timestamp(),
        iat: now.timestamp(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key),
    )
    .expect("HS256 encoding cannot fail")
}

/// Verifies a development token (signature, issuer, audience, expiry) into a caller.
pub fn verify(key: &[u8], token: &str) -> Result<Caller, TokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[DEV_ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.leeway = 5;
    let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key), &validation)
        .map_err(|error| TokenError::Invalid(error.to_string()))?;
    let mut roles = Vec::new();
    for name in &data.claims.roles {
        roles.push(Role::parse(name).ok_or_else(|| TokenError::UnknownRole(name.clone()))?);
    }
    Ok(Caller {
        tenant_id: data.claims.tenant,
        user_id: data.claims.sub,
        roles,
    })
}

/// Secrets of the installation, from configuration or generated once into the data folder.
#[derive(Clone)]
pub struct Secrets {
    pub dev_signing_key: SecretString,
    /// `kid:base64key[,…]`; the first key encrypts.
    pub encryption_keys: SecretString,
    pub visitor_salt: SecretString,
}

#[derive(Serialize, Deserialize)]
struct SecretsFile {
    dev_signing_key: String,
    encryption_keys: String,
    visitor_salt: String,
}

fn random_base64(bytes: usize) -> String {
    let mut buffer = Vec::with_capacity(bytes);
    while buffer.len() < bytes {
        buffer.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    buffer.truncate(bytes);
    base64::engine::general_purpose::STANDARD.encode(buffer)
}

impl Secrets {
    /// Configured secrets win; missing ones are read from (or written to) `<data_dir>/secrets.json`.
    pub fn resolve(config: &Config) -> std::io::Result<Secrets> {
        let security = &config.security;
        let all_configured = security.dev_signing_key.is_some()
            && security.encryption_keys.is_some()
            && security.visitor_salt.is_some();
        let generated = if all_configured {
            None
        } else {
            Some(Self::load_or_generate(&config.data_dir)?)
        };
        let pick =
            |configured: &Option<SecretString>, generated: Option<&String>| -> SecretString {
                configured
                    .clone()
                    .unwrap_or_else(|| SecretString::from(generated.cloned().unwrap_or_default()))
            };
        Ok(Secrets {
            dev_signing_key: pick(
                &security.dev_signing_key,
                generated.as_ref().map(|file| &file.dev_signing_key),
            ),
            encryption_keys: pick(
                &security.encryption_keys,
                generated.as_ref().map(|file| &file.encryption_keys),
            ),
            visitor_salt: pick(
                &security.visitor_salt,
                generated.as_ref().map(|file| &file.visitor_salt),
            ),
        })
    }

    fn load_or_generate(data_dir: &std::path::Path) -> std::io::Result<SecretsFile> {
        let path = data_dir.join("secrets.json");
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(file) = serde_json::from_str::<SecretsFile>(&text)
        {
            return Ok(file);
        }
        std::fs::create_dir_all(data_dir)?;
        let file = SecretsFile {
            dev_signing_key: random_base64(32),
            encryption_keys: format!("k1:{}", random_base64(32)),
            visitor_salt: random_base64(16),
        };
        let text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
        write_private(&path, &text)?;
        Ok(file)
    }

    pub fn dev_signing_key_bytes(&self) -> Vec<u8> {
        self.dev_signing_key.expose_secret().as_bytes().to_vec()
    }
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_and_foreign_ones_do_not() {
        let token = mint(
            b"key-one",
            "acme",
            "alice",
            &[Role::Advocate],
            chrono::Duration::minutes(5),
        );
        let caller = verify(b"key-one", &token).expect("valid token");
        assert_eq!(caller.tenant_id, "acme");
        assert_eq!(caller.user_id, "alice");
        assert_eq!(caller.roles, vec![Role::Advocate]);
        assert!(verify(b"key-two", &token).is_err());
        let expired = mint(
            b"key-one",
            "acme",
            "alice",
            &[Role::Advocate],
            chrono::Duration::minutes(-10),
        );
        assert!(verify(b"key-one", &expired).is_err());
    }
}
