//! Pairing the two cameras' frames by capture time.
//!
//! The cameras are not triggered together, so a left frame is paired with the right frame
//! nearest in time, if that is within the tolerance (half a frame interval by default). A frame
//! whose partner is missing — dropped by a live source, or lost on the cable — is discarded and
//! counted; the other camera's stream goes on.
//!
//! A known time offset between the cameras (found by `polyvision_calibration::sync` or
//! configured) is taken off the left camera's times before they are compared: with an offset of
//! `k` frames, left frame `n + k` pairs with right frame `n`.

use crate::capture::video::TimedFrame;
use std::collections::VecDeque;

/// Matches two streams of timed frames.
#[derive(Debug)]
pub struct Pairer {
    tolerance_ns: u64,
    /// Taken off the left camera's capture times before pairing, ns.
    left_offset_ns: i64,
    left: VecDeque<TimedFrame>,
    right: VecDeque<TimedFrame>,
    unpaired: u64,
}

impl Pairer {
    /// A pairer that accepts capture times up to `tolerance_ns` apart.
    pub fn new(tolerance_ns: u64) -> Self {
        Pairer::with_offset(tolerance_ns, 0)
    }

    /// A pairer for cameras whose left frame at time `t + left_offset_ns` shows the instant of
    /// the right frame at `t`.
    pub fn with_offset(tolerance_ns: u64, left_offset_ns: i64) -> Self {
        Pairer {
            tolerance_ns,
            left_offset_ns,
            left: VecDeque::new(),
            right: VecDeque::new(),
            unpaired: 0,
        }
    }

    /// From now on take `left_offset_ns` off the left camera's times (a sync check found the
    /// cameras apart); frames already waiting are paired by the new offset.
    pub fn set_offset(&mut self, left_offset_ns: i64) {
        self.left_offset_ns = left_offset_ns;
    }

    /// A left frame arrived.
    pub fn push_left(&mut self, f: TimedFrame) {
        self.left.push_back(f);
    }

    /// A right frame arrived.
    pub fn push_right(&mut self, f: TimedFrame) {
        self.right.push_back(f);
    }

    /// No left frame is waiting.
    pub fn needs_left(&self) -> bool {
        self.left.is_empty()
    }

    /// No right frame is waiting.
    pub fn needs_right(&self) -> bool {
        self.right.is_empty()
    }

    /// Frames discarded without a partner so far.
    pub fn unpaired(&self) -> u64 {
        self.unpaired
    }

    /// The next pair, discarding older heads that cannot be paired any more; `None` when a side
    /// is empty. Streams are in capture order, so a head older than the other head by more than
    /// the tolerance can never find a partner.
    pub fn next_pair(&mut self) -> Option<(TimedFrame, TimedFrame)> {
        loop {
            let l = self.left.front()?.pts_ns as i128 - self.left_offset_ns as i128;
            let r = self.right.front()?.pts_ns as i128;
            if l.abs_diff(r) <= self.tolerance_ns as u128 {
                return Some((self.left.pop_front()?, self.right.pop_front()?));
            }
            if l < r {
                self.left.pop_front();
            } else {
                self.right.pop_front();
            }
            self.unpaired += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::still::RgbaFrame;

    fn frame(pts_ms: u64) -> TimedFrame {
        TimedFrame {
            pts_ns: pts_ms * 1_000_000,
            frame: RgbaFrame {
                width: 1,
                height: 1,
                rgba: vec![0; 4],
            },
        }
    }

    fn pairs(left: &[u64], right: &[u64]) -> (Vec<(u64, u64)>, u64) {
        pairs_offset(left, right, 0)
    }

    fn pairs_offset(left: &[u64], right: &[u64], offset_ms: i64) -> (Vec<(u64, u64)>, u64) {
        let mut p = Pairer::with_offset(20_000_000, offset_ms * 1_000_000);
        left.iter().for_each(|&t| p.push_left(frame(t)));
        right.iter().for_each(|&t| p.push_right(frame(t)));
        let mut out = Vec::new();
        while let Some((l, r)) = p.next_pair() {
            out.push((l.pts_ns / 1_000_000, r.pts_ns / 1_000_000));
        }
        (out, p.unpaired())
    }

    #[test]
    fn streams_with_an_offset_pair_one_to_one() {
        let (p, lost) = pairs(&[0, 40, 80, 120], &[7, 47, 87, 127]);
        assert_eq!(p, vec![(0, 7), (40, 47), (80, 87), (120, 127)]);
        assert_eq!(lost, 0);
    }

    #[test]
    fn a_frame_lost_on_one_side_costs_only_its_partner() {
        // Right lost its 80 ms frame: left's 80 is discarded, everything else pairs.
        let (p, lost) = pairs(&[0, 40, 80, 120, 160], &[2, 42, 122, 162]);
        assert_eq!(p, vec![(0, 2), (40, 42), (120, 122), (160, 162)]);
        assert_eq!(lost, 1);
    }

    #[test]
    fn frames_too_far_apart_are_not_paired() {
        // 50 ms apart with a 20 ms tolerance: each head is older than the other side's head.
        let (p, lost) = pairs(&[0, 100], &[50, 150]);
        assert!(p.is_empty());
        assert_eq!(lost, 3);
    }

    #[test]
    fn a_known_camera_offset_pairs_the_same_instants() {
        // Left is 4 frames (160 ms) ahead: its first four frames have no partner.
        let left: Vec<u64> = (0..8).map(|n| n * 40).collect();
        let right: Vec<u64> = (0..4).map(|n| n * 40).collect();
        let (p, lost) = pairs_offset(&left, &right, 160);
        assert_eq!(p, vec![(160, 0), (200, 40), (240, 80), (280, 120)]);
        assert_eq!(lost, 4);
        // The other way round, and an offset the size of u64 times does not overflow.
        let (p, lost) = pairs_offset(&right, &left, -160);
        assert_eq!(p, vec![(0, 160), (40, 200), (80, 240), (120, 280)]);
        assert_eq!(lost, 4);
        let mut far = Pairer::with_offset(20_000_000, i64::MIN);
        far.push_left(frame(u64::MAX / 1_000_000));
        far.push_right(frame(0));
        assert!(far.next_pair().is_none());
        assert_eq!(far.unpaired(), 1);
    }
}
