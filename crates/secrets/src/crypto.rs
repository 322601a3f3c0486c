//! Envelope encryption: each secret has its own AES-256-GCM data key, stored only wrapped
//! (AES-256-GCM) by the master key; every value is sealed under the data key. Associated data
//! binds each ciphertext to its secret and version, so a ciphertext can't be moved to another.

use crate::error::SecretsError;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A 256-bit key that is wiped from memory when dropped.
#[derive(Clone)]
pub struct KeyBytes(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBytes(..)")
    }
}

impl KeyBytes {
    /// A fresh random key from the operating system's generator.
    pub fn random() -> KeyBytes {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(k.as_mut());
        KeyBytes(k)
    }

    /// Exactly 32 bytes, else `None`.
    pub fn from_slice(bytes: &[u8]) -> Option<KeyBytes> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(KeyBytes(Zeroizing::new(arr)))
    }

    /// 32 bytes in standard base64 (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Option<KeyBytes> {
        let bytes = Zeroizing::new(B64.decode(text.trim()).ok()?);
        Self::from_slice(&bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.0.as_ref()))
    }
}

/// A sealed blob as stored: nonce and ciphertext (with tag), both base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub nonce: String,
    pub ciphertext: String,
}

/// Encrypts `plaintext` under `key`, bound to `aad`.
pub fn seal(key: &KeyBytes, plaintext: &[u8], aad: &str) -> Result<Sealed, SecretsError> {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = key
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| SecretsError::Internal("encryption failed".into()))?;
    Ok(Sealed {
        nonce: B64.encode(nonce),
        ciphertext: B64.encode(ct),
    })
}

/// Decrypts a blob sealed with `seal(key, _, aad)`; `what` names it in the error.
pub fn open(
    key: &KeyBytes,
    sealed: &Sealed,
    aad: &str,
    what: &str,
) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    let corrupt = || SecretsError::Internal(format!("{what}: corrupt sealed record"));
    let nonce = B64.decode(&sealed.nonce).map_err(|_| corrupt())?;
    if nonce.len() != 12 {
        return Err(corrupt());
    }
    let ct = B64.decode(&sealed.ciphertext).map_err(|_| corrupt())?;
    key.cipher()
        .decrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &ct,
                aad: aad.as_bytes(),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| SecretsError::Decrypt(what.to_string()))
}

/// A new data key for a secret, and its wrapped form under the master key.
pub fn new_data_key(master: &KeyBytes, arn: &str) -> Result<(KeyBytes, Sealed), SecretsError> {
    let dk = KeyBytes::random();
    let wrapped = seal(master, dk.bytes(), &format!("datakey:{arn}"))?;
    Ok((dk, wrapped))
}

/// Unwraps a secret's data key.
pub fn unwrap_data_key(
    master: &KeyBytes,
    wrapped: &Sealed,
    arn: &str,
) -> Result<KeyBytes, SecretsError> {
    let raw = open(
        master,
        wrapped,
        &format!("datakey:{arn}"),
        &format!("the data key of {arn}"),
    )?;
    KeyBytes::from_slice(&raw)
        .ok_or_else(|| SecretsError::Internal(format!("the data key of {arn} is not 32 bytes")))
}
