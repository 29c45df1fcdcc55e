//! Device authentication: nonces, device tokens, and the admin token of the factory API.
//!
//! **Nonces** are stateless to issue and single-use to redeem: a nonce is
//! `issued_at ‖ 16 random bytes ‖ HMAC-SHA-256(serial ‖ issued_at ‖ random)` (truncated to 16
//! bytes), base64url. Any instance that shares the service key can check one; it lives 60 s.
//! Single use is enforced by the instance that redeems it (an in-memory set of redeemed nonces
//! until they expire), and a nonce issued before this instance started is refused, so a restart
//! does not reopen redeemed nonces. With several instances behind a load balancer, route
//! `POST /v1/devices/token` by the `X-Polyvision-Serial` header (consistent hashing, which every
//! common balancer offers): a nonce is bound to its serial, so all redemptions of a nonce meet
//! the same instance, and single use holds across the fleet without a shared store.
//!
//! **Device tokens** are EdDSA JWTs (the service's Ed25519 key), valid 30 days, with `sub` the
//! serial, `org` the organisation, `aud` `polyvision-ingest`, `kind` `device`. Verification pins
//! the algorithm (EdDSA only: `alg: none`, HS256 made with the public key, RS256 are all
//! refused), checks expiry and not-before with 60 s of leeway for clock skew, and the audience.

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::sync::Mutex;
use std::time::Duration;

/// Audience of device tokens.
pub const DEVICE_AUDIENCE: &str = "polyvision-ingest";
/// Issuer of device tokens.
pub const ISSUER: &str = "polyvision-cloud";
/// How long a nonce may be redeemed.
pub const NONCE_LIFETIME_S: u64 = 60;
/// Leeway for clocks that disagree.
pub const CLOCK_LEEWAY_S: u64 = 60;

/// Claims of a device token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceClaims {
    /// Device serial.
    pub sub: String,
    /// Organisation id (UUID text).
    pub org: String,
    /// Token kind, `device`.
    pub kind: String,
    /// Audience.
    pub aud: String,
    /// Issuer.
    pub iss: String,
    /// Issued at, s since 1970.
    pub iat: u64,
    /// Not before.
    pub nbf: u64,
    /// Expiry.
    pub exp: u64,
}

/// Why authentication failed (each maps to an HTTP status in the service).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No or malformed credentials, or a token that does not verify.
    #[error("{0}")]
    Unauthenticated(String),
    /// Valid credentials that do not allow this.
    #[error("{0}")]
    Forbidden(String),
}

/// Seconds since 1970.
pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC (RFC 2104) over SHA-256, block size 64.
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let mut inner = Sha256::new();
    inner.update(ipad);
    for p in parts {
        inner.update(p);
    }
    let mut outer = Sha256::new();
    outer.update(opad);
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Compares secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (ha, hb) = (Sha256::digest(a), Sha256::digest(b));
    ha.iter()
        .zip(hb.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Issues and checks nonces and device tokens.
pub struct DeviceAuth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    nonce_key: [u8; 32],
    started_ms: u64,
    token_lifetime: Duration,
    redeemed: Mutex<Redeemed>,
}

/// Nonces redeemed and not yet expired: a set to look one up, and a queue in redemption order
/// to forget them, so a redemption costs the same however many came before.
#[derive(Default)]
struct Redeemed {
    nonces: std::collections::HashSet<String>,
    /// (expiry, s since 1970; nonce). Nearly in expiry order: a nonce lives 60 s from issue.
    by_expiry: std::collections::VecDeque<(u64, String)>,
}

impl Redeemed {
    fn forget_expired(&mut self, now_s: u64) {
        while let Some((exp, _)) = self.by_expiry.front()
            && *exp < now_s
        {
            if let Some((_, nonce)) = self.by_expiry.pop_front() {
                self.nonces.remove(&nonce);
            }
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl DeviceAuth {
    /// Uses the service's Ed25519 key for tokens and (derived from it) nonces.
    pub fn new(key: &SigningKey, token_lifetime: Duration) -> Result<Self, String> {
        let der = key
            .to_pkcs8_der()
            .map_err(|e| format!("service key: {e}"))?;
        let mut h = Sha256::new();
        h.update(b"polyvision-nonce-key\0");
        h.update(key.to_bytes());
        Ok(DeviceAuth {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_der(key.verifying_key().as_bytes()),
            nonce_key: h.finalize().into(),
            started_ms: now_ms(),
            token_lifetime,
            redeemed: Mutex::default(),
        })
    }

    /// A new nonce for `serial`.
    pub fn nonce(&self, serial: &str) -> Result<String, String> {
        // Milliseconds: an instance restarted within the same second must still tell its
        // predecessor's nonces from its own.
        let issued = now_ms().to_le_bytes();
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|e| format!("no randomness: {e}"))?;
        let mac = hmac_sha256(&self.nonce_key, &[serial.as_bytes(), &issued, &random]);
        let mut raw = Vec::with_capacity(40);
        raw.extend(issued);
        raw.extend(random);
        raw.extend(&mac[..16]);
        Ok(base64::Engine::encode(&b64(), raw))
    }

    /// Redeems a nonce: genuine, for this serial, fresh, issued since this instance started, and
    /// not redeemed before.
    pub fn redeem_nonce(&self, serial: &str, nonce: &str) -> Result<(), AuthError> {
        let bad = |why: &str| AuthError::Unauthenticated(format!("nonce refused: {why}"));
        let raw = base64::Engine::decode(&b64(), nonce).map_err(|_| bad("not base64url"))?;
        if raw.len() != 40 {
            return Err(bad("wrong length"));
        }
        let mac = hmac_sha256(
            &self.nonce_key,
            &[serial.as_bytes(), &raw[..8], &raw[8..24]],
        );
        if !constant_time_eq(&mac[..16], &raw[24..]) {
            return Err(bad("not issued by this service for this device"));
        }
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&raw[..8]);
        let issued_ms = u64::from_le_bytes(issued);
        if issued_ms < self.started_ms {
            return Err(bad(
                "issued before this service instance started; ask again",
            ));
        }
        let (issued, now) = (issued_ms / 1000, now_s());
        if now > issued + NONCE_LIFETIME_S {
            return Err(bad("expired; ask for a new one"));
        }
        let mut redeemed = self
            .redeemed
            .lock()
            .map_err(|_| bad("internal state poisoned"))?;
        redeemed.forget_expired(now);
        if !redeemed.nonces.insert(nonce.to_string()) {
            return Err(bad("already used"));
        }
        redeemed
            .by_expiry
            .push_back((issued + NONCE_LIFETIME_S, nonce.to_string()));
        Ok(())
    }

    /// A device token for `serial` in organisation `org`; returns it and its lifetime in s.
    pub fn issue(&self, serial: &str, org: &str) -> Result<(String, u64), String> {
        let now = now_s();
        let lifetime = self.token_lifetime.as_secs();
        let claims = DeviceClaims {
            sub: serial.to_string(),
            org: org.to_string(),
            kind: "device".into(),
            aud: DEVICE_AUDIENCE.into(),
            iss: ISSUER.into(),
            iat: now,
            nbf: now,
            exp: now + lifetime,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.encoding)
            .map_err(|e| format!("signing a token: {e}"))?;
        Ok((token, lifetime))
    }

    /// Verifies a device token (see the module doc).
    pub fn verify(&self, token: &str) -> Result<DeviceClaims, AuthError> {
        let mut v = Validation::new(Algorithm::EdDSA);
        v.leeway = CLOCK_LEEWAY_S;
        v.validate_nbf = true;
        v.set_audience(&[DEVICE_AUDIENCE]);
        v.set_issuer(&[ISSUER]);
        v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        refuse_critical_extensions(token)
            .map_err(|e| AuthError::Unauthenticated(format!("device token refused: {e}")))?;
        let data = jsonwebtoken::decode::<DeviceClaims>(token, &self.decoding, &v)
            .map_err(|e| AuthError::Unauthenticated(format!("device token refused: {e}")))?;
        if data.claims.kind != "device" {
            return Err(AuthError::Forbidden(format!(
                "a {} token cannot send batches",
                data.claims.kind
            )));
        }
        Ok(data.claims)
    }
}

/// Refuses a token whose header lists critical extensions (`crit`): this service implements
/// none, and RFC 7515 §4.1.11 requires refusing a token whose critical extensions are not
/// understood (the JWT library ignores the member).
pub fn refuse_critical_extensions(token: &str) -> Result<(), String> {
    let header = token.split('.').next().unwrap_or_default();
    let bytes = base64::Engine::decode(&b64(), header)
        .map_err(|_| "the header is not base64url".to_string())?;
    let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes)
        .map_err(|_| "the header is not a JSON object".to_string())?;
    match fields.get("crit") {
        None => Ok(()),
        Some(_) => Err("critical header extensions (crit) are not supported".into()),
    }
}

/// The bearer token of an `Authorization` header.
pub fn bearer(headers: &axum::http::HeaderMap) -> Result<&str, AuthError> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| AuthError::Unauthenticated("no Authorization header".into()))?
        .to_str()
        .map_err(|_| AuthError::Unauthenticated("Authorization header is not text".into()))?;
    // The scheme is case-insensitive (RFC 9110 §11.1).
    v.split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AuthError::Unauthenticated("Authorization is not \"Bearer TOKEN\"".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> DeviceAuth {
        DeviceAuth::new(
            &SigningKey::from_bytes(&[9; 32]),
            Duration::from_secs(30 * 86_400),
        )
        .expect("auth")
    }

    #[test]
    fn a_nonce_is_redeemed_once_and_only_for_its_serial() {
        let a = auth();
        let n = a.nonce("PV-1").expect("nonce");
        assert!(a.redeem_nonce("PV-2", &n).is_err());
        a.redeem_nonce("PV-1", &n).expect("first use");
        let e = a.redeem_nonce("PV-1", &n).expect_err("second use");
        assert!(e.to_string().contains("already used"), "{e}");
        let other = auth();
        let n2 = other.nonce("PV-1").expect("nonce");
        // Same key, another instance: genuine.
        a.redeem_nonce("PV-1", &n2).expect("shared key");
        assert!(a.redeem_nonce("PV-1", "AAAA").is_err());
    }

    /// Finding 9: a nonce redeemed just before a restart was accepted again by an instance
    /// started within the same second.
    #[test]
    fn a_restarted_instance_refuses_its_predecessors_nonces_within_the_same_second() {
        let before = auth();
        let n = before.nonce("PV-1").expect("nonce");
        before.redeem_nonce("PV-1", &n).expect("first use");
        std::thread::sleep(Duration::from_millis(3));
        let restarted = auth();
        let e = restarted
            .redeem_nonce("PV-1", &n)
            .expect_err("replayed after the restart");
        assert!(
            e.to_string()
                .contains("before this service instance started"),
            "{e}"
        );
        let fresh = restarted.nonce("PV-1").expect("nonce");
        restarted
            .redeem_nonce("PV-1", &fresh)
            .expect("its own nonce");
    }

    #[test]
    fn redeemed_nonces_are_forgotten_once_expired() {
        let mut r = Redeemed::default();
        for (exp, n) in [(10, "a"), (11, "b"), (20, "c")] {
            r.nonces.insert(n.into());
            r.by_expiry.push_back((exp, n.into()));
        }
        r.forget_expired(12);
        assert_eq!(r.nonces.len(), 1);
        assert!(r.nonces.contains("c"));
    }

    #[test]
    fn tokens_verify_only_with_their_algorithm_and_key() {
        let a = auth();
        let (t, life) = a.issue("PV-1", "org").expect("issue");
        assert_eq!(life, 30 * 86_400);
        let c = a.verify(&t).expect("verify");
        assert_eq!((c.sub.as_str(), c.org.as_str()), ("PV-1", "org"));
        let other = DeviceAuth::new(&SigningKey::from_bytes(&[8; 32]), Duration::from_secs(60))
            .expect("other");
        assert!(other.verify(&t).is_err(), "another service key");
        // alg: none
        let claims = t.split('.').nth(1).expect("claims");
        let none = format!(
            "{}.{claims}.",
            base64::Engine::encode(&b64(), r#"{"alg":"none","typ":"JWT"}"#)
        );
        assert!(a.verify(&none).is_err());
    }
}
