//! User tokens: RS256 JWTs (RSA 2048) of coaches and admins, checked against the public keys of
//! a JWKS file by key id.
//!
//! Claims: `sub` (the user), `org` (organisation UUID; every query is scoped by it), `role`
//! (`coach` reads its organisation; `admin` also enrols devices), `aud` `polyvision-api`, `exp`,
//! `nbf`/`iat`. The algorithm is pinned to RS256 and the header must name a key id that the
//! JWKS file holds. Rotation without downtime: add the new public key to the file, issue tokens
//! with it, remove the old key once its tokens expired; the service re-reads the file when it
//! changes (looked at before every check, at most once a second) and keeps the last good set
//! when a new version does not parse. Tokens from an external identity provider work the same
//! way when its JWKS is written to the file and its tokens carry these claims.
//!
//! The admin side (`polyvision-cloud-api keys new`, `polyvision-cloud-api token`) makes key
//! pairs and issues tokens for a self-hosted install.

use crate::auth::{AuthError, CLOCK_LEEWAY_S, now_s};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Instant, SystemTime};
use uuid::Uuid;

/// Audience of user tokens.
pub const USER_AUDIENCE: &str = "polyvision-api";

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads its organisation's matches.
    Coach,
    /// Also enrols devices.
    Admin,
}

/// Claims of a user token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserClaims {
    /// The user.
    pub sub: String,
    /// Organisation id.
    pub org: String,
    /// Role.
    pub role: Role,
    /// Audience: one string or an array of them (RFC 7519 §4.1.3); the validation requires
    /// `polyvision-api` among them.
    pub aud: Audience,
    /// Expiry, s since 1970.
    pub exp: u64,
    /// Not before.
    #[serde(default)]
    pub nbf: Option<u64>,
    /// Issued at.
    #[serde(default)]
    pub iat: Option<u64>,
}

/// The `aud` claim in either of its standard forms.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    /// `"aud": "polyvision-api"`.
    One(String),
    /// `"aud": ["polyvision-api", …]`.
    Many(Vec<String>),
}

/// A verified user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user.
    pub sub: String,
    /// Organisation.
    pub org: Uuid,
    /// Role.
    pub role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Jwk {
    kty: String,
    kid: String,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    n: String,
    e: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

struct KeySet {
    keys: HashMap<String, DecodingKey>,
    modified: Option<SystemTime>,
    checked: Instant,
}

/// The public keys of a JWKS file, re-read when the file changes.
pub struct UserKeys {
    path: PathBuf,
    set: RwLock<KeySet>,
}

fn parse_jwks(text: &str) -> Result<HashMap<String, DecodingKey>, String> {
    let jwks: Jwks = serde_json::from_str(text).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = HashMap::new();
    for k in jwks.keys {
        if k.kty != "RSA" || k.alg.as_deref().is_some_and(|a| a != "RS256") {
            continue;
        }
        let key = DecodingKey::from_rsa_components(&k.n, &k.e)
            .map_err(|e| format!("key {}: {e}", k.kid))?;
        keys.insert(k.kid, key);
    }
    Ok(keys)
}

impl UserKeys {
    /// Loads `path` (a JWKS document with RSA keys).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("JWKS file {}: {e}", path.display()))?;
        let keys = parse_jwks(&text).map_err(|e| format!("JWKS file {}: {e}", path.display()))?;
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        Ok(UserKeys {
            path: path.to_owned(),
            set: RwLock::new(KeySet {
                keys,
                modified,
                checked: Instant::now(),
            }),
        })
    }

    /// Key ids loaded now.
    pub fn key_ids(&self) -> Vec<String> {
        self.refresh();
        let set = self.set.read().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<String> = set.keys.keys().cloned().collect();
        ids.sort();
        ids
    }

    fn refresh(&self) {
        {
            let set = self.set.read().unwrap_or_else(|p| p.into_inner());
            if set.checked.elapsed().as_millis() < 1000 {
                return;
            }
        }
        let mut set = self.set.write().unwrap_or_else(|p| p.into_inner());
        set.checked = Instant::now();
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if modified.is_none() || modified == set.modified {
            return;
        }
        match std::fs::read_to_string(&self.path)
            .map_err(|e| e.to_string())
            .and_then(|t| parse_jwks(&t))
        {
            Ok(keys) => {
                tracing::info!(path = %self.path.display(), keys = keys.len(), "user keys reloaded");
                set.keys = keys;
                set.modified = modified;
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "user keys not reloaded; keeping the previous set");
                set.modified = modified;
            }
        }
    }

    /// Verifies a user token (see the module doc).
    pub fn verify(&self, token: &str) -> Result<User, AuthError> {
        let bad = |m: String| AuthError::Unauthenticated(format!("user token refused: {m}"));
        let header = jsonwebtoken::decode_header(token).map_err(|e| bad(e.to_string()))?;
        crate::auth::refuse_critical_extensions(token).map_err(bad)?;
        if header.alg != Algorithm::RS256 {
            return Err(bad(format!(
                "algorithm {:?}, only RS256 is accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| bad("no key id (kid) in the header".into()))?;
        self.refresh();
        let set = self.set.read().unwrap_or_else(|p| p.into_inner());
        let key = set
            .keys
            .get(&kid)
            .ok_or_else(|| bad(format!("unknown key id {kid:?}")))?;
        let mut v = Validation::new(Algorithm::RS256);
        v.leeway = CLOCK_LEEWAY_S;
        v.validate_nbf = true;
        v.set_audience(&[USER_AUDIENCE]);
        v.set_required_spec_claims(&["exp", "aud", "sub"]);
        let data =
            jsonwebtoken::decode::<UserClaims>(token, key, &v).map_err(|e| bad(e.to_string()))?;
        let org = Uuid::parse_str(&data.claims.org).map_err(|_| bad("org is not a UUID".into()))?;
        Ok(User {
            sub: data.claims.sub,
            org,
            role: data.claims.role,
        })
    }
}

/// Makes an RSA 2048 key pair: writes `DIR/KID.pem` (private, PKCS#8, mode 0600) and adds the
/// public key to `DIR/jwks.json` (created if missing). Returns the JWKS path.
pub fn new_key(dir: &Path, kid: &str) -> anyhow::Result<PathBuf> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    anyhow::ensure!(
        !kid.is_empty()
            && kid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "key id {kid:?}: use letters, digits, '-', '_', '.'"
    );
    std::fs::create_dir_all(dir)?;
    let private_path = dir.join(format!("{kid}.pem"));
    anyhow::ensure!(
        !private_path.exists(),
        "{} exists; choose another key id",
        private_path.display()
    );
    let jwks_path = dir.join("jwks.json");
    let mut jwks: Jwks = match std::fs::read_to_string(&jwks_path) {
        Ok(t) => {
            serde_json::from_str(&t).map_err(|e| anyhow::anyhow!("{}: {e}", jwks_path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Jwks::default(),
        Err(e) => return Err(e.into()),
    };
    anyhow::ensure!(
        jwks.keys.iter().all(|k| k.kid != kid),
        "{} already has key id {kid}",
        jwks_path.display()
    );
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)?;
    let pem = key.to_pkcs8_pem(LineEnding::LF)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&private_path)?;
    f.write_all(pem.as_bytes())?;
    f.sync_all()?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    jwks.keys.push(Jwk {
        kty: "RSA".into(),
        kid: kid.into(),
        alg: Some("RS256".into()),
        use_: Some("sig".into()),
        n: b64.encode(key.n().to_bytes_be()),
        e: b64.encode(key.e().to_bytes_be()),
    });
    let tmp = jwks_path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&jwks)? + "\n")?;
    std::fs::rename(&tmp, &jwks_path)?;
    Ok(jwks_path)
}

/// Issues a user token signed with the private key `key_pem` under key id `kid`.
pub fn issue(
    key_pem: &[u8],
    kid: &str,
    sub: &str,
    org: Uuid,
    role: Role,
    lifetime_s: u64,
) -> anyhow::Result<String> {
    let now = now_s();
    let claims = UserClaims {
        sub: sub.into(),
        org: org.to_string(),
        role,
        aud: Audience::One(USER_AUDIENCE.into()),
        exp: now + lifetime_s,
        nbf: Some(now),
        iat: Some(now),
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    Ok(jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(key_pem)?,
    )?)
}
