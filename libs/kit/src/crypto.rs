//! Secrets encrypted at rest (social tokens, webhook signing secrets): AES-256-GCM, a random 96-bit nonce per value, and a key
//! id stored beside the ciphertext so keys can be rotated (the first key encrypts, every
//! listed key decrypts).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;

#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<(String, Aes256Gcm)>,
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("encryption keys are malformed: {0}")]
    BadKeys(String),
    #[error("no key {0} to decrypt with")]
    UnknownKey(String),
    #[error("ciphertext does not decrypt")]
    Corrupt,
}

impl KeyRing {
    /// Parses `kid:base64key[,kid:base64key…]`.
    pub fn parse(spec: &str) -> Result<KeyRing, CryptoError> {
        let mut keys = Vec::new();
        for entry in spec
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let (key_id, encoded) = entry
                .split_once(':')
                .ok_or_else(|| CryptoError::BadKeys("each key is kid:base64".into()))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| CryptoError::BadKeys(format!("key {key_id} is not base64")))?;
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| CryptoError::BadKeys(format!("key {key_id} must be 32 bytes")))?;
            keys.push((key_id.to_string(), cipher));
        }
        if keys.is_empty() {
            return Err(CryptoError::BadKeys("no key configured".into()));
        }
        Ok(KeyRing { keys })
    }

    /// Encrypts with the active key; returns (key id, nonce || ciphertext).
    pub fn encrypt(&self, plaintext: &str) -> (String, Vec<u8>) {
        let (key_id, cipher) = &self.keys[0];
        let random = uuid::Uuid::new_v4();
        let mut nonce_bytes = [0u8; 12];
        nonce_bytes.copy_from_slice(&random.as_bytes()[..12]);
        let nonce = Nonce::from(nonce_bytes);
        let ciphertext = cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .expect("AES-GCM encryption of a secret cannot fail");
        let mut stored = nonce_bytes.to_vec();
        stored.extend_from_slice(&ciphertext);
        (key_id.clone(), stored)
    }

    pub fn decrypt(&self, key_id: &str, stored: &[u8]) -> Result<String, CryptoError> {
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(id, _)| id == key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_string()))?;
        if stored.len() < 12 {
            return Err(CryptoError::Corrupt);
        }
        let mut nonce_bytes = [0u8; 12];
        nonce_bytes.copy_from_slice(&stored[..12]);
        let plaintext = cipher
            .decrypt(&Nonce::from(nonce_bytes), &stored[12..])
            .map_err(|_| CryptoError::Corrupt)?;
        String::from_utf8(plaintext).map_err(|_| CryptoError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "a:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    const KEY_B: &str = "b:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

    #[test]
    fn tokens_round_trip_and_rotate() {
        let old = KeyRing::parse(KEY_A).unwrap();
        let (key_id, stored) = old.encrypt("secret-token");
        assert_eq!(key_id, "a");
        assert!(!stored.windows(12).any(|window| window == b"secret-token"));
        let rotated = KeyRing::parse(&format!("{KEY_B},{KEY_A}")).unwrap();
        assert_eq!(rotated.decrypt(&key_id, &stored).unwrap(), "secret-token");
        assert_eq!(rotated.encrypt("x").0, "b");
        let mut tampered = stored.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(rotated.decrypt("a", &tampered).is_err());
        assert!(KeyRing::parse("a:short").is_err());
    }
}
