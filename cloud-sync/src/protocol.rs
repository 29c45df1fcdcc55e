//! The JSON messages of the device endpoints, shared by the uploader and the cloud service.

use serde::{Deserialize, Serialize};

/// Path of the challenge endpoint.
pub const CHALLENGE_PATH: &str = "/v1/devices/challenge";
/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/v1/devices/token";
/// Path of the batch ingest endpoint.
pub const INGEST_PATH: &str = "/v1/ingest/batches";
/// Path of the match summary endpoint.
pub const SUMMARY_PATH: &str = "/v1/ingest/summaries";
/// Content type of a match summary.
pub const SUMMARY_CONTENT_TYPE: &str = "application/vnd.polyvision.summary";
/// Header carrying the serial on authentication requests, for load-balancer routing.
pub const SERIAL_HEADER: &str = "X-Polyvision-Serial";
/// Content type of a batch.
pub const BATCH_CONTENT_TYPE: &str = "application/vnd.polyvision.batch";

/// Device → cloud: give me a nonce.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChallengeRequest {
    /// Device serial.
    pub serial: String,
}

/// Cloud → device: sign this within `expires_in_s`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChallengeResponse {
    /// Single-use nonce.
    pub nonce: String,
    /// Seconds it stays valid.
    pub expires_in_s: u64,
}

/// Device → cloud: the signed nonce.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRequest {
    /// Device serial.
    pub serial: String,
    /// The nonce received.
    pub nonce: String,
    /// Ed25519 signature of [`crate::identity::challenge_message`], base64url.
    pub signature: String,
}

/// Cloud → device: a device token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    /// EdDSA JWT.
    pub token: String,
    /// Seconds it stays valid (counted on the device's own clock, so skew does not matter).
    pub expires_in_s: u64,
}

/// Cloud → device: the batch (or match summary) is stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestResponse {
    /// Batch id, hex (a summary: the match id).
    pub batch_id: String,
    /// Rows in the batch (a summary: players).
    pub rows: u32,
    /// True when the batch had already been stored (nothing written twice).
    pub duplicate: bool,
}

/// Any error answer from the cloud.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// What went wrong, for logs.
    pub error: String,
}
