//! MOTChallenge files: detections in, tracks out.
//!
//! Detections: `frame,id,left,top,width,height,conf[,class[,…]]`, 1-based frames, pixels of the
//! view the calibration was solved for. The eighth column, when it holds 1–4, is this project's
//! class (1 player, 2 goalkeeper, 3 referee, 4 ball, as in the simulator's ground truth);
//! anything else there (MOT17 writes −1) means a player. Columns 9–11, when all within 0–255,
//! are the mean shirt colour R, G, B the detector measured (the appearance cue); MOT17's −1
//! there means none.
//!
//! Tracks: `frame,id,left,top,width,height,conf,x,y,z` with `x, y` the position on the pitch in
//! metres (MOTChallenge's world coordinates) and `z = −1`.

use super::tracker::{Class, TrackPoint};
use std::collections::BTreeMap;
use std::path::Path;

/// A detection as read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawDetection {
    /// Box `[left, top, width, height]`.
    pub bbox: [f64; 4],
    /// Confidence.
    pub conf: f64,
    /// Class.
    pub class: Class,
    /// Mean shirt colour, RGB 0–255.
    pub colour: Option<[f32; 3]>,
}

/// Reads a detections file into frames (1-based, in order); errors name the line.
pub fn read_detections(path: &Path) -> Result<BTreeMap<u64, Vec<RawDetection>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_detections(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses the text of a detections file.
pub fn parse_detections(text: &str) -> Result<BTreeMap<u64, Vec<RawDetection>>, String> {
    let mut frames: BTreeMap<u64, Vec<RawDetection>> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        if cols.len() < 7 {
            return Err(format!(
                "line {}: {} columns; expected frame,id,left,top,width,height,conf[,class]",
                n + 1,
                cols.len()
            ));
        }
        let num = |i: usize, what: &str| -> Result<f64, String> {
            cols[i]
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("line {}: {what} \"{}\" is not a number", n + 1, cols[i]))
        };
        let frame = num(0, "frame")?;
        if frame < 1.0 || frame.fract() != 0.0 {
            return Err(format!(
                "line {}: frame {frame} is not a 1-based frame number",
                n + 1
            ));
        }
        let bbox = [
            num(2, "left")?,
            num(3, "top")?,
            num(4, "width")?,
            num(5, "height")?,
        ];
        if bbox[2] <= 0.0 || bbox[3] <= 0.0 {
            return Err(format!(
                "line {}: box {}×{} has no area",
                n + 1,
                bbox[2],
                bbox[3]
            ));
        }
        let conf = num(6, "confidence")?;
        let class = cols
            .get(7)
            .and_then(|c| c.parse::<f64>().ok())
            .and_then(|c| Class::from_mot(c as i64))
            .unwrap_or(Class::Player);
        let colour = (cols.len() >= 11)
            .then(|| {
                let c: Vec<f32> = cols[8..11]
                    .iter()
                    .filter_map(|v| v.parse::<f32>().ok())
                    .collect();
                (c.len() == 3 && c.iter().all(|v| (0.0..=255.0).contains(v)))
                    .then(|| [c[0], c[1], c[2]])
            })
            .flatten();
        frames.entry(frame as u64).or_default().push(RawDetection {
            bbox,
            conf,
            class,
            colour,
        });
    }
    Ok(frames)
}

/// One track row.
pub fn track_row(p: &TrackPoint) -> String {
    let [l, t, w, h] = p.bbox;
    format!(
        "{},{},{:.2},{:.2},{:.2},{:.2},{:.3},{:.3},{:.3},-1",
        p.frame,
        p.id,
        l,
        t,
        w,
        h,
        if p.conf > 0.0 { p.conf } else { 0.5 },
        p.pitch[0],
        p.pitch[1]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_classes_and_names_bad_lines() {
        let f = parse_detections(
            "1,-1,10,20,5,15,0.9,-1,-1,-1\n1,-1,30,20,2,2,0.8,4\n2,-1,1,1,1,1,0.5,1,200,30,38\n",
        )
        .expect("parses");
        assert_eq!(f[&1][0].colour, None);
        assert_eq!(f[&2][0].colour, Some([200.0, 30.0, 38.0]));
        assert_eq!(f[&1].len(), 2);
        assert_eq!(f[&1][0].class, Class::Player);
        assert_eq!(f[&1][1].class, Class::Ball);
        let err = parse_detections("1,-1,10,20,5,15,0.9\n1,-1,x,20,5,15,0.9\n").unwrap_err();
        assert_eq!(err, "line 2: left \"x\" is not a number");
        let err = parse_detections("0,-1,10,20,5,15,0.9\n").unwrap_err();
        assert!(err.contains("1-based"), "{err}");
    }
}
