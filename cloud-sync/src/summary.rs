//! The match summary: each player's metrics as the rig computed them at the end of a match.
//!
//! The metrics come from the rig's smoothed, fragment-linked trajectories (Rauch–Tung–Striebel
//! smoother over every measurement with its covariance, see the edge's `track::metrics`), which
//! the cloud cannot recompute from the stored positions: so the rig sends its own numbers and the
//! coaches read exactly what the rig measured. A player is one linked track; `fragments` lists
//! the tracker's track ids that make it up, which is how the cloud finds the player's rows.
//!
//! On the wire (all integers little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `PVMS` |
//! | 1 | format version, 1 |
//! | 4 | length *n* of the JSON document |
//! | *n* | [`MatchSummary`] as JSON (UTF-8) |
//! | 64 | Ed25519 signature over everything before it, by the device key |
//!
//! [`SignedSummary::parse`] never panics and names the field it refuses.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Magic bytes.
pub const MAGIC: [u8; 4] = *b"PVMS";
/// Format version.
pub const FORMAT_VERSION: u8 = 1;
/// Largest JSON document accepted.
pub const MAX_JSON_BYTES: usize = 4 << 20;
/// Most players in one summary (tracks of people of one match, fragments linked).
pub const MAX_PLAYERS: usize = 5_000;
/// Most fragment ids in one summary.
pub const MAX_FRAGMENTS: usize = 100_000;

/// What a rig sends at the end of a match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchSummary {
    /// Device serial.
    pub serial: String,
    /// Match id (UUID text).
    pub match_id: String,
    /// Match start, ms since 1970.
    pub match_started_ms: i64,
    /// Frames per second.
    pub fps: f64,
    /// One entry per player.
    pub players: Vec<PlayerSummary>,
}

/// One player's metrics (same definitions as the edge's `TrackMetrics`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerSummary {
    /// Player id: the linked track's id (the first fragment's).
    pub player: u32,
    /// MOT class: 1 player, 2 goalkeeper, 3 referee.
    pub class: u8,
    /// `team_a`, `team_b`, `goalkeeper`, `referee` or `unknown`.
    pub team: String,
    /// The tracker's track ids linked into this player (the cloud's rows carry these).
    pub fragments: Vec<u32>,
    /// Frames from the first to the last measurement.
    pub frames: u32,
    /// Distance covered, m.
    pub distance_m: f64,
    /// Distance per speed zone (walking, jogging, running, high-speed running, sprinting), m.
    pub zone_m: [f64; 5],
    /// Distance at or above high-speed running, m.
    pub high_speed_m: f64,
    /// Top speed, m/s.
    pub top_speed_mps: f64,
    /// Sprints.
    pub sprints: u32,
    /// Accelerations.
    pub accelerations: u32,
    /// Decelerations.
    pub decelerations: u32,
}

/// The team names a summary may carry.
pub const TEAMS: [&str; 5] = ["team_a", "team_b", "goalkeeper", "referee", "unknown"];

/// A summary the cloud will not take.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("match summary: {field}: {problem}")]
pub struct SummaryError {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

fn refuse(field: &'static str, problem: impl Into<String>) -> SummaryError {
    SummaryError {
        field,
        problem: problem.into(),
    }
}

impl MatchSummary {
    /// Checks what JSON cannot: limits, finite non-negative figures, known names, each fragment
    /// in one player only.
    pub fn validate(&self) -> Result<(), SummaryError> {
        if self.serial.is_empty() || self.serial.len() > crate::wire::MAX_SERIAL_LEN {
            return Err(refuse("serial", "empty or longer than 64 bytes"));
        }
        if !(self.fps.is_finite() && self.fps > 0.0 && self.fps <= 1000.0) {
            return Err(refuse("fps", format!("{} is not in (0, 1000]", self.fps)));
        }
        if self.players.len() > MAX_PLAYERS {
            return Err(refuse(
                "players",
                format!("{} > {MAX_PLAYERS}", self.players.len()),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let mut fragments = 0usize;
        for p in &self.players {
            if !(1..=3).contains(&p.class) {
                return Err(refuse(
                    "class",
                    format!(
                        "player {}: {} (1 player, 2 goalkeeper, 3 referee)",
                        p.player, p.class
                    ),
                ));
            }
            if !TEAMS.contains(&p.team.as_str()) {
                return Err(refuse(
                    "team",
                    format!("player {}: {:?} is none of {TEAMS:?}", p.player, p.team),
                ));
            }
            fragments += p.fragments.len();
            if p.fragments.is_empty() || fragments > MAX_FRAGMENTS {
                return Err(refuse(
                    "fragments",
                    format!("player {}: none, or over {MAX_FRAGMENTS} in all", p.player),
                ));
            }
            if let Some(f) = p.fragments.iter().find(|&&f| !seen.insert(f)) {
                return Err(refuse(
                    "fragments",
                    format!("track {f} belongs to two players"),
                ));
            }
            let figures = [
                p.distance_m,
                p.high_speed_m,
                p.top_speed_mps,
                p.zone_m[0],
                p.zone_m[1],
                p.zone_m[2],
                p.zone_m[3],
                p.zone_m[4],
            ];
            if figures.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(refuse(
                    "metrics",
                    format!("player {}: a figure is negative or not finite", p.player),
                ));
            }
        }
        Ok(())
    }
}

/// Signs a summary for the wire.
pub fn encode(summary: &MatchSummary, key: &SigningKey) -> Result<Vec<u8>, SummaryError> {
    summary.validate()?;
    let json = serde_json::to_vec(summary).map_err(|e| refuse("json", e.to_string()))?;
    if json.len() > MAX_JSON_BYTES {
        return Err(refuse(
            "json",
            format!("{} bytes > {MAX_JSON_BYTES}", json.len()),
        ));
    }
    let mut out = Vec::with_capacity(json.len() + 73);
    out.extend_from_slice(&MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    let signature = key.sign(&out);
    out.extend_from_slice(&signature.to_bytes());
    Ok(out)
}

/// A received summary, parsed and checked, its signature not yet verified.
#[derive(Debug)]
pub struct SignedSummary<'a> {
    /// The summary.
    pub summary: MatchSummary,
    signed: &'a [u8],
    signature: Signature,
}

impl<'a> SignedSummary<'a> {
    /// Parses the wire bytes.
    pub fn parse(data: &'a [u8]) -> Result<Self, SummaryError> {
        if data.len() < 9 + 64 {
            return Err(refuse(
                "length",
                format!("{} bytes is shorter than any summary", data.len()),
            ));
        }
        if data[..4] != MAGIC {
            return Err(refuse("magic", "not a match summary"));
        }
        if data[4] != FORMAT_VERSION {
            return Err(refuse(
                "version",
                format!("format {} (this service reads {FORMAT_VERSION})", data[4]),
            ));
        }
        let n = u32::from_le_bytes([data[5], data[6], data[7], data[8]]) as usize;
        if n > MAX_JSON_BYTES || data.len() != 9 + n + 64 {
            return Err(refuse(
                "length",
                format!(
                    "document of {n} bytes does not fit a message of {} bytes",
                    data.len()
                ),
            ));
        }
        let (signed, sig) = data.split_at(9 + n);
        let signature =
            Signature::from_slice(sig).map_err(|e| refuse("signature", e.to_string()))?;
        let summary: MatchSummary =
            serde_json::from_slice(&signed[9..]).map_err(|e| refuse("json", e.to_string()))?;
        summary.validate()?;
        Ok(SignedSummary {
            summary,
            signed,
            signature,
        })
    }

    /// Checks the device's signature.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), SummaryError> {
        key.verify_strict(self.signed, &self.signature)
            .map_err(|_| refuse("signature", "does not verify with the device's key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> MatchSummary {
        MatchSummary {
            serial: "PV-TEST-1".into(),
            match_id: "0190a1b2-0000-7000-8000-0000000000cc".into(),
            match_started_ms: 1_700_000_000_000,
            fps: 25.0,
            players: vec![PlayerSummary {
                player: 3,
                class: 1,
                team: "team_a".into(),
                fragments: vec![3, 17],
                frames: 1500,
                distance_m: 412.5,
                zone_m: [100.0, 200.0, 80.0, 30.0, 2.5],
                high_speed_m: 32.5,
                top_speed_mps: 7.2,
                sprints: 1,
                accelerations: 4,
                decelerations: 3,
            }],
        }
    }

    #[test]
    fn a_signed_summary_round_trips_and_a_changed_byte_fails() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let bytes = encode(&sample(), &key).expect("encode");
        let parsed = SignedSummary::parse(&bytes).expect("parse");
        assert_eq!(parsed.summary, sample());
        parsed.verify(&key.verifying_key()).expect("verify");
        let mut bad = bytes.clone();
        let at = bytes.len() - 70;
        bad[at] ^= 1;
        let refused = SignedSummary::parse(&bad).and_then(|s| s.verify(&key.verifying_key()));
        assert!(refused.is_err(), "a changed byte was accepted");
    }

    #[test]
    fn bad_summaries_name_the_field() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut s = sample();
        s.players[0].team = "home".into();
        assert_eq!(encode(&s, &key).expect_err("team").field, "team");
        let mut s = sample();
        s.players.push(s.players[0].clone());
        assert_eq!(encode(&s, &key).expect_err("twice").field, "fragments");
        let mut s = sample();
        s.players[0].distance_m = f64::NAN;
        assert_eq!(encode(&s, &key).expect_err("nan").field, "metrics");
        assert_eq!(
            SignedSummary::parse(b"PVMS").expect_err("short").field,
            "length"
        );
        let mut bytes = encode(&sample(), &key).expect("encode");
        bytes[5] = 0xFF;
        assert_eq!(
            SignedSummary::parse(&bytes).expect_err("length").field,
            "length"
        );
    }
}
