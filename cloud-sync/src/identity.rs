//! The device's identity: an Ed25519 key pair made on the rig at first start, and the messages
//! of the challenge–response that turns it into a device token.
//!
//! The private key is a PKCS#8 PEM file (`openssl pkey -in device.key -pubout` reads it) created
//! with mode 0600 and never sent anywhere; only the public key is printed for enrolment. A key
//! file that others can read is refused rather than used.

use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use ed25519_dalek::{SigningKey, VerifyingKey};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Errors of the key file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading or writing the file failed.
    #[error("device key {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not an Ed25519 PKCS#8 key.
    #[error("device key {path}: not an Ed25519 PKCS#8 PEM private key ({problem})")]
    Format {
        /// The file.
        path: String,
        /// What the parser said.
        problem: String,
    },
    /// Group or others may read the private key.
    #[error(
        "device key {path}: mode {mode:o} lets others read the private key; run `chmod 600 {path}`"
    )]
    Permissions {
        /// The file.
        path: String,
        /// Its mode.
        mode: u32,
    },
    /// The system has no randomness.
    #[error("no randomness for a device key: {0}")]
    Random(String),
}

/// Loads the device key at `path`, creating it (mode 0600, parent directories too) when the
/// file does not exist. Returns the key and whether it was created now.
pub fn load_or_create(path: &Path) -> Result<(SigningKey, bool), IdentityError> {
    let shown = path.display().to_string();
    let io = |source| IdentityError::Io {
        path: shown.clone(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(IdentityError::Permissions { path: shown, mode });
            }
            let pem = std::fs::read_to_string(path).map_err(io)?;
            let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| IdentityError::Format {
                path: shown.clone(),
                problem: e.to_string(),
            })?;
            Ok((key, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| IdentityError::Random(e.to_string()))?;
            let key = SigningKey::from_bytes(&seed);
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| IdentityError::Format {
                    path: shown.clone(),
                    problem: e.to_string(),
                })?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            // Written to a temporary name and renamed, so a power cut never leaves half a key.
            let tmp = path.with_extension("tmp");
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io)?;
            f.write_all(pem.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            std::fs::rename(&tmp, path).map_err(io)?;
            Ok((key, true))
        }
        Err(e) => Err(io(e)),
    }
}

/// A public key as text: unpadded base64url of its 32 bytes (what enrolment takes).
pub fn public_key_text(key: &VerifyingKey) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// Parses [`public_key_text`]'s output.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|e| format!("public key is not unpadded base64url: {e}"))?;
    let arr: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| format!("public key has {} bytes, expected 32", bytes.len()))?;
    let key = VerifyingKey::from_bytes(&arr)
        .map_err(|_| "public key is not a valid Ed25519 point".to_string())?;
    // A small-order point verifies signatures that nobody made: never a device's key.
    if key.is_weak() {
        return Err("public key is a weak (small-order) Ed25519 point".into());
    }
    Ok(key)
}

/// What the device signs to answer a challenge. The prefix keeps these signatures apart from
/// batch signatures (a batch starts with "PVSB"), so one can never stand in for the other.
pub fn challenge_message(serial: &str, nonce: &str) -> Vec<u8> {
    let mut m = b"polyvision-device-auth-v1\0".to_vec();
    m.extend(serial.as_bytes());
    m.push(0);
    m.extend(nonce.as_bytes());
    m
}

/// Base64url text of a signature.
pub fn signature_text(sig: &ed25519_dalek::Signature) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig.to_bytes())
}

/// Parses [`signature_text`]'s output.
pub fn parse_signature(text: &str) -> Result<ed25519_dalek::Signature, String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|e| format!("signature is not unpadded base64url: {e}"))?;
    let arr: [u8; 64] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| format!("signature has {} bytes, expected 64", bytes.len()))?;
    Ok(ed25519_dalek::Signature::from_bytes(&arr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_private_and_loaded_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state/device.key");
        let (a, created) = load_or_create(&path).expect("create");
        assert!(created);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (b, created) = load_or_create(&path).expect("load");
        assert!(!created);
        assert_eq!(a.to_bytes(), b.to_bytes());
        let text = public_key_text(&a.verifying_key());
        assert_eq!(parse_public_key(&text).expect("parse"), a.verifying_key());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = load_or_create(&path).expect_err("world-readable");
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::write(&path, "garbage").expect("write");
        let e = load_or_create(&path).expect_err("garbage");
        assert!(e.to_string().contains("PKCS#8"), "{e}");
    }
}
