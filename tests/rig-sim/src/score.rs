//! Judging a tracker against the truth: realistic detections made from the true boxes, and the
//! scores of the tracks that come back.
//!
//! **Degraded truth** ([`degrade`]): each true box (people and ball) of a view gets σ-pixel
//! jitter on each edge; objects go missing in bursts (a two-state chain per object with the
//! given miss rate and mean burst length); overlapping people (IoU above a threshold) come out
//! as one merged box; false positives of people's size appear at the given rate; confidences
//! are high for clear boxes, low for half-hidden ones and spread for false ones. With the cast's
//! shirt colours, each detection carries its player's shirt colour with σ-level noise per channel
//! (the mean of both shirts for a merged box, a random colour for a false one), as a detector's
//! crop of the upper body would measure it.
//!
//! **Scores** ([`score`]), people only (classes 1–3): CLEAR-MOT's MOTA (IoU ≥ 0.5, previous
//! matches kept while they hold), IDF1 (one global identity matching maximising frames in
//! common), ID switches, position RMSE in metres (tracks carry pitch `x, y` in the MOTChallenge
//! world columns), and per-player metric errors (distance, high-speed distance, top speed)
//! against metrics computed here from the true positions and velocities, independently of the
//! tracker's code. True boxes less than 10 % visible are "don't care": a track on one is
//! neither right nor wrong.

use crate::scene::Rng;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One row of a ground-truth file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GtBox {
    /// Frame, 1-based.
    pub frame: u64,
    /// Object id.
    pub id: u32,
    /// `[left, top, width, height]`.
    pub bbox: [f64; 4],
    /// Class (1 player, 2 goalkeeper, 3 referee, 4 ball).
    pub class: u32,
    /// Visible fraction.
    pub visibility: f64,
}

/// The rows of a comma-separated numeric file, each with at least `columns` values; errors
/// name the file and the line.
fn numeric_rows(path: &Path, columns: usize) -> Result<Vec<Vec<f64>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            let v: Vec<f64> = line
                .split(',')
                .map(|c| c.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|_| format!("{}: line {}: not numbers", path.display(), n + 1))?;
            if v.len() < columns {
                return Err(format!(
                    "{}: line {}: {} columns, expected {columns}",
                    path.display(),
                    n + 1,
                    v.len()
                ));
            }
            Ok(v)
        })
        .collect()
}

/// Reads a MOTChallenge ground-truth file of this project.
pub fn read_gt(path: &Path) -> Result<Vec<GtBox>, String> {
    Ok(numeric_rows(path, 9)?
        .into_iter()
        .map(|v| GtBox {
            frame: v[0] as u64,
            id: v[1] as u32,
            bbox: [v[2], v[3], v[4], v[5]],
            class: v[7] as u32,
            visibility: v[8],
        })
        .collect())
}

/// How detections are degraded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Degradation {
    /// Jitter of each box edge, pixels (1σ).
    pub jitter_px: f64,
    /// Fraction of true boxes missed.
    pub miss_rate: f64,
    /// Mean length of a run of misses, frames.
    pub miss_burst: f64,
    /// False positives per true detection.
    pub false_rate: f64,
    /// People boxes overlapping more than this (IoU) come out merged (a detector's NMS).
    pub merge_iou: f64,
    /// Noise of the measured shirt colour, levels (1σ per channel).
    pub colour_noise: f64,
}

impl Default for Degradation {
    fn default() -> Self {
        Degradation {
            jitter_px: 2.0,
            miss_rate: 0.10,
            miss_burst: 5.0,
            false_rate: 0.02,
            merge_iou: 0.5,
            colour_noise: 12.0,
        }
    }
}

/// Intersection over union of two `[l, t, w, h]` boxes.
pub fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let (x0, y0) = (a[0].max(b[0]), a[1].max(b[1]));
    let (x1, y1) = (
        (a[0] + a[2]).min(b[0] + b[2]),
        (a[1] + a[3]).min(b[1] + b[3]),
    );
    let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Shirt colours of the cast by id, from `truth/objects.json`.
pub fn read_shirts(path: &Path) -> Result<HashMap<u32, [f64; 3]>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = HashMap::new();
    for p in v["people"].as_array().into_iter().flatten() {
        let (Some(id), Some(shirt)) = (p["id"].as_u64(), p["look"]["shirt"].as_array()) else {
            continue;
        };
        let c: Vec<f64> = shirt.iter().filter_map(|x| x.as_f64()).collect();
        if c.len() == 3 {
            out.insert(id as u32, [c[0], c[1], c[2]]);
        }
    }
    Ok(out)
}

/// Detection rows `frame,-1,left,top,width,height,conf,class[,r,g,b]` made from the truth;
/// with `shirts`, each row carries a measured shirt colour.
pub fn degrade(
    gt: &[GtBox],
    d: &Degradation,
    seed: u64,
    shirts: Option<&HashMap<u32, [f64; 3]>>,
) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut frames: BTreeMap<u64, Vec<GtBox>> = BTreeMap::new();
    for g in gt {
        frames.entry(g.frame).or_default().push(*g);
    }
    // P(start a burst) so that the stationary miss fraction is `miss_rate`.
    let start = d.miss_rate / ((1.0 - d.miss_rate) * d.miss_burst);
    let mut missing: HashMap<u32, bool> = HashMap::new();
    let mut rows = Vec::new();
    for (frame, boxes) in frames {
        let mut kept: Vec<(GtBox, f64)> = Vec::new();
        for g in boxes {
            let m = missing.entry(g.id).or_insert(false);
            *m = if *m {
                rng.unit() > 1.0 / d.miss_burst
            } else {
                rng.unit() < start
            };
            if *m || g.visibility < 0.1 {
                continue;
            }
            let conf = if g.visibility >= 0.5 {
                rng.range(0.6, 0.98)
            } else {
                rng.range(0.2, 0.5)
            };
            kept.push((g, conf));
        }
        // Overlapping people merge into one box (the detector sees one blob).
        let mut merged: Vec<bool> = vec![false; kept.len()];
        // Box, confidence, class, shirt colour.
        type Row = ([f64; 4], f64, u32, Option<[f64; 3]>);
        let mut out: Vec<Row> = Vec::new();
        let shirt = |id: u32| shirts.and_then(|s| s.get(&id)).copied();
        for i in 0..kept.len() {
            if merged[i] {
                continue;
            }
            let (gi, ci) = kept[i];
            let mut b = gi.bbox;
            let mut conf = ci;
            let mut colour = shirt(gi.id);
            if gi.class != 4 {
                for j in i + 1..kept.len() {
                    let gj = kept[j].0;
                    if !merged[j] && gj.class != 4 && iou(b, gj.bbox) > d.merge_iou {
                        let (x0, y0) = (b[0].min(gj.bbox[0]), b[1].min(gj.bbox[1]));
                        let x1 = (b[0] + b[2]).max(gj.bbox[0] + gj.bbox[2]);
                        let y1 = (b[1] + b[3]).max(gj.bbox[1] + gj.bbox[3]);
                        b = [x0, y0, x1 - x0, y1 - y0];
                        conf = conf.min(kept[j].1).min(0.7);
                        merged[j] = true;
                        if let (Some(a), Some(c)) = (colour, shirt(gj.id)) {
                            colour = Some(std::array::from_fn(|k| (a[k] + c[k]) / 2.0));
                        }
                    }
                }
            }
            out.push((b, conf, gi.class, if gi.class == 4 { None } else { colour }));
        }
        let people: Vec<[f64; 4]> = out.iter().filter(|o| o.2 != 4).map(|o| o.0).collect();
        let n_false = {
            let lambda = d.false_rate * out.len() as f64;
            // Poisson by inversion (small λ).
            let (mut k, mut p, u) = (0u32, (-lambda).exp(), rng.unit());
            let mut cdf = p;
            while u > cdf && k < 20 {
                k += 1;
                p *= lambda / k as f64;
                cdf += p;
            }
            k
        };
        for _ in 0..n_false {
            if people.is_empty() {
                break;
            }
            let like = people[rng.index(people.len())];
            let other = people[rng.index(people.len())];
            let b = [
                other[0] + rng.range(-150.0, 150.0),
                other[1] + rng.range(-40.0, 40.0),
                like[2],
                like[3],
            ];
            let colour = shirts.map(|_| {
                [
                    rng.range(0.0, 255.0),
                    rng.range(0.0, 255.0),
                    rng.range(0.0, 255.0),
                ]
            });
            out.push((b, rng.range(0.2, 0.8), 1, colour));
        }
        for (b, conf, class, colour) in out {
            let j = |rng: &mut Rng| d.jitter_px * rng.normal();
            let (l, t) = (b[0] + j(&mut rng), b[1] + j(&mut rng));
            let (r, bottom) = (b[0] + b[2] + j(&mut rng), b[1] + b[3] + j(&mut rng));
            let (w, h) = ((r - l).max(1.0), (bottom - t).max(1.0));
            let mut row = format!("{frame},-1,{l:.2},{t:.2},{w:.2},{h:.2},{conf:.3},{class}");
            if shirts.is_some() {
                match colour {
                    Some(c) => {
                        let n: [f64; 3] = std::array::from_fn(|k| {
                            (c[k] + d.colour_noise * rng.normal()).clamp(0.0, 255.0)
                        });
                        row.push_str(&format!(",{:.0},{:.0},{:.0}", n[0], n[1], n[2]));
                    }
                    None => row.push_str(",-1,-1,-1"),
                }
            }
            rows.push(row);
        }
    }
    rows
}

/// One row of a tracks file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HypBox {
    /// Frame.
    pub frame: u64,
    /// Track id.
    pub id: u32,
    /// Box.
    pub bbox: [f64; 4],
    /// Pitch position, metres (MOTChallenge world x, y).
    pub pitch: [f64; 2],
}

/// Reads a tracks file.
pub fn read_tracks(path: &Path) -> Result<Vec<HypBox>, String> {
    Ok(numeric_rows(path, 9)?
        .into_iter()
        .map(|v| HypBox {
            frame: v[0] as u64,
            id: v[1] as u32,
            bbox: [v[2], v[3], v[4], v[5]],
            pitch: [v[7], v[8]],
        })
        .collect())
}

/// A true trajectory sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TruePosition {
    /// Position, metres.
    pub pos: [f64; 2],
    /// Velocity, m/s.
    pub vel: [f64; 2],
}

/// Reads `positions.csv`: `(frame, id) → position and velocity`.
pub fn read_positions(path: &Path) -> Result<HashMap<(u64, u32), TruePosition>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let c: Vec<&str> = line.split(',').collect();
        if c.len() < 10 {
            continue;
        }
        let num = |i: usize| {
            c[i].parse::<f64>()
                .map_err(|_| format!("{}: line {}: column {i}", path.display(), n + 1))
        };
        out.insert(
            (num(0)? as u64, num(2)? as u32),
            TruePosition {
                pos: [num(5)?, num(6)?],
                vel: [num(8)?, num(9)?],
            },
        );
    }
    Ok(out)
}

/// The scores of a tracking run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Scores {
    /// True boxes counted (people, ≥ 10 % visible).
    pub gt_boxes: usize,
    /// Track boxes counted.
    pub hyp_boxes: usize,
    /// Missed true boxes.
    pub false_negatives: usize,
    /// Track boxes matching nothing.
    pub false_positives: usize,
    /// Identity switches.
    pub id_switches: usize,
    /// ID switches per 1,000 frames.
    pub id_switches_per_1000_frames: f64,
    /// 1 − (FN + FP + IDSW) / GT.
    pub mota: f64,
    /// Identity F1.
    pub idf1: f64,
    /// RMS distance between matched tracks and true positions, m.
    pub position_rmse_m: f64,
    /// HOTA (mean over IoU thresholds 0.05–0.95), with its detection and association parts.
    pub hota: f64,
    /// Detection accuracy part of HOTA.
    pub det_a: f64,
    /// Association accuracy part of HOTA.
    pub ass_a: f64,
    /// Per-player metric errors, where metrics were given.
    pub players: Vec<PlayerError>,
}

/// One player's metric errors.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlayerError {
    /// True id.
    pub id: u32,
    /// The track it was matched to.
    pub track: u32,
    /// True distance, m.
    pub distance_m: f64,
    /// Relative distance error.
    pub distance_error: f64,
    /// True distance at or above `high_speed_mps`, m.
    pub high_speed_m: f64,
    /// Relative high-speed distance error.
    pub high_speed_error: f64,
    /// True top speed, m/s.
    pub top_speed_mps: f64,
    /// Top speed error, m/s.
    pub top_speed_error_mps: f64,
}

/// Metrics the tracker reported for one track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReportedMetrics {
    /// Distance, m.
    pub distance_m: f64,
    /// High-speed distance, m.
    pub high_speed_m: f64,
    /// Top speed, m/s.
    pub top_speed_mps: f64,
}

/// Reads the tracker's metrics CSV (`track_id, …, distance_m, …, high_speed_m, top_speed_mps`).
pub fn read_metrics(path: &Path) -> Result<HashMap<u32, ReportedMetrics>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| format!("{}: no `{name}` column", path.display()))
    };
    let (id, dist, hs, top) = (
        col("track_id")?,
        col("distance_m")?,
        col("high_speed_m")?,
        col("top_speed_mps")?,
    );
    let mut out = HashMap::new();
    for line in lines {
        let c: Vec<&str> = line.split(',').collect();
        let num = |i: usize| {
            c.get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        out.insert(
            num(id) as u32,
            ReportedMetrics {
                distance_m: num(dist),
                high_speed_m: num(hs),
                top_speed_mps: num(top),
            },
        );
    }
    Ok(out)
}

/// Minimum-cost assignment for the scorer (its own, so the judge shares no code with the
/// judged): a greedy-free Hungarian on a dense matrix.
fn hungarian(cost: &[Vec<f64>]) -> Vec<Option<usize>> {
    let n = cost.len();
    let m = cost.first().map_or(0, Vec::len);
    if n == 0 || m == 0 {
        return vec![None; n];
    }
    let size = n.max(m);
    let big = 1e9;
    let at = |i: usize, j: usize| if i < n && j < m { cost[i][j] } else { big };
    let (mut u, mut v, mut p, mut way) = (
        vec![0.0; size + 1],
        vec![0.0; size + 1],
        vec![0usize; size + 1],
        vec![0usize; size + 1],
    );
    for i in 1..=size {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![f64::INFINITY; size + 1];
        let mut used = vec![false; size + 1];
        loop {
            used[j0] = true;
            let (i0, mut delta, mut j1) = (p[j0], f64::INFINITY, 0);
            for j in 1..=size {
                if !used[j] {
                    let cur = at(i0 - 1, j - 1) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=size {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut out = vec![None; n];
    for j in 1..=size {
        if p[j] != 0 && p[j] - 1 < n && j - 1 < m && cost[p[j] - 1][j - 1] < big / 2.0 {
            out[p[j] - 1] = Some(j - 1);
        }
    }
    out
}

/// HOTA (Luiten et al. 2021) over IoU thresholds α = 0.05, 0.10, …, 0.95, as TrackEval
/// computes it: per frame, true and track boxes are matched by Hungarian on IoU weighted by the
/// pair's global alignment (frames in common relative to both lengths, from unthresholded IoU),
/// keeping pairs with IoU ≥ α; DetA = TP/(TP + FN + FP); AssA is the mean over true positives of
/// TPA/(TPA + FNA + FPA) of their pair. Don't-care boxes (< 10 % visible) are left out on both
/// sides along with the tracks on them. Returns (HOTA, DetA, AssA), each the mean over α.
fn hota(
    gt_frames: &BTreeMap<u64, Vec<&GtBox>>,
    hyp_frames: &BTreeMap<u64, Vec<&HypBox>>,
    frames: &[u64],
) -> (f64, f64, f64) {
    let empty_g: Vec<&GtBox> = Vec::new();
    let empty_h: Vec<&HypBox> = Vec::new();
    // Per frame: the cared-for boxes and the IoU matrix (tracks on don't-care boxes dropped).
    struct Frame {
        g: Vec<u32>,
        h: Vec<u32>,
        iou: Vec<Vec<f64>>,
    }
    let mut data = Vec::with_capacity(frames.len());
    let mut g_count: HashMap<u32, f64> = HashMap::new();
    let mut h_count: HashMap<u32, f64> = HashMap::new();
    let mut pair_sim: HashMap<(u32, u32), f64> = HashMap::new();
    for f in frames {
        let gs = gt_frames.get(f).unwrap_or(&empty_g);
        let hs = hyp_frames.get(f).unwrap_or(&empty_h);
        let dont_care: Vec<&&GtBox> = gs.iter().filter(|g| g.visibility < 0.1).collect();
        let hs: Vec<&&HypBox> = hs
            .iter()
            .filter(|h| !dont_care.iter().any(|g| iou(g.bbox, h.bbox) >= 0.5))
            .collect();
        let gs: Vec<&&GtBox> = gs.iter().filter(|g| g.visibility >= 0.1).collect();
        let iou_m: Vec<Vec<f64>> = gs
            .iter()
            .map(|g| hs.iter().map(|h| iou(g.bbox, h.bbox)).collect())
            .collect();
        for g in &gs {
            *g_count.entry(g.id).or_default() += 1.0;
        }
        for h in &hs {
            *h_count.entry(h.id).or_default() += 1.0;
        }
        // Similarity shares for the global alignment (normalised per row and column as
        // TrackEval does).
        for (i, g) in gs.iter().enumerate() {
            for (j, h) in hs.iter().enumerate() {
                let row: f64 = iou_m[i].iter().sum();
                let col: f64 = iou_m.iter().map(|r| r[j]).sum();
                let denom = row + col - iou_m[i][j];
                if denom > 0.0 && iou_m[i][j] > 0.0 {
                    *pair_sim.entry((g.id, h.id)).or_default() += iou_m[i][j] / denom;
                }
            }
        }
        data.push(Frame {
            g: gs.iter().map(|g| g.id).collect(),
            h: hs.iter().map(|h| h.id).collect(),
            iou: iou_m,
        });
    }
    let align = |g: u32, h: u32| {
        let s = pair_sim.get(&(g, h)).copied().unwrap_or(0.0);
        let d =
            g_count.get(&g).copied().unwrap_or(0.0) + h_count.get(&h).copied().unwrap_or(0.0) - s;
        if d > 0.0 { s / d } else { 0.0 }
    };
    let alphas: Vec<f64> = (1..=19).map(|k| k as f64 * 0.05).collect();
    let (mut sum_h, mut sum_d, mut sum_a) = (0.0, 0.0, 0.0);
    for &alpha in &alphas {
        let (mut tp, mut fn_, mut fp) = (0.0, 0.0, 0.0);
        let mut tpa: HashMap<(u32, u32), f64> = HashMap::new();
        let mut matches: Vec<(u32, u32)> = Vec::new();
        for fr in &data {
            let cost: Vec<Vec<f64>> =
                fr.g.iter()
                    .enumerate()
                    .map(|(i, &g)| {
                        fr.h.iter()
                            .enumerate()
                            .map(|(j, &h)| {
                                let o = fr.iou[i][j];
                                if o >= alpha - 1e-12 {
                                    -(align(g, h) * o) - 1e-6 * o
                                } else {
                                    1e9
                                }
                            })
                            .collect()
                    })
                    .collect();
            let assigned = hungarian(&cost);
            let mut n = 0.0;
            for (i, m) in assigned.iter().enumerate() {
                if let Some(j) = m {
                    n += 1.0;
                    *tpa.entry((fr.g[i], fr.h[*j])).or_default() += 1.0;
                    matches.push((fr.g[i], fr.h[*j]));
                }
            }
            tp += n;
            fn_ += fr.g.len() as f64 - n;
            fp += fr.h.len() as f64 - n;
        }
        let det_a = if tp + fn_ + fp > 0.0 {
            tp / (tp + fn_ + fp)
        } else {
            0.0
        };
        let ass_a = if matches.is_empty() {
            0.0
        } else {
            matches
                .iter()
                .map(|&(g, h)| {
                    let t = tpa[&(g, h)];
                    t / (g_count[&g] + h_count[&h] - t)
                })
                .sum::<f64>()
                / matches.len() as f64
        };
        sum_h += (det_a * ass_a).sqrt();
        sum_d += det_a;
        sum_a += ass_a;
    }
    let n = alphas.len() as f64;
    (sum_h / n, sum_d / n, sum_a / n)
}

/// Scores tracks against the truth of a view. `high_speed_mps` is the threshold of the
/// high-speed distance (19.8 km/h).
pub fn score(
    gt: &[GtBox],
    hyps: &[HypBox],
    truth: &HashMap<(u64, u32), TruePosition>,
    metrics: Option<&HashMap<u32, ReportedMetrics>>,
    high_speed_mps: f64,
) -> Scores {
    let people: Vec<&GtBox> = gt.iter().filter(|g| g.class != 4).collect();
    let mut gt_frames: BTreeMap<u64, Vec<&GtBox>> = BTreeMap::new();
    for g in &people {
        gt_frames.entry(g.frame).or_default().push(g);
    }
    let mut hyp_frames: BTreeMap<u64, Vec<&HypBox>> = BTreeMap::new();
    for h in hyps {
        hyp_frames.entry(h.frame).or_default().push(h);
    }
    let frames: Vec<u64> = gt_frames
        .keys()
        .chain(hyp_frames.keys())
        .copied()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let empty_g: Vec<&GtBox> = Vec::new();
    let empty_h: Vec<&HypBox> = Vec::new();
    let (mut fn_, mut fp, mut idsw, mut n_gt, mut n_hyp) = (0, 0, 0, 0, 0);
    let (mut err2, mut n_err) = (0.0, 0usize);
    let mut last_match: HashMap<u32, u32> = HashMap::new();
    // frames in common per (gt id, hyp id), for IDF1.
    let mut common: HashMap<(u32, u32), usize> = HashMap::new();
    let mut gt_count: HashMap<u32, usize> = HashMap::new();
    let mut hyp_count: HashMap<u32, usize> = HashMap::new();
    for f in &frames {
        let gs = gt_frames.get(f).unwrap_or(&empty_g);
        let hs = hyp_frames.get(f).unwrap_or(&empty_h);
        let cares: Vec<bool> = gs.iter().map(|g| g.visibility >= 0.1).collect();
        // Previous matches that still hold are kept (CLEAR MOT).
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        let mut g_used = vec![false; gs.len()];
        let mut h_used = vec![false; hs.len()];
        for (gi, g) in gs.iter().enumerate() {
            if let Some(&hid) = last_match.get(&g.id)
                && let Some(hi) = hs.iter().position(|h| h.id == hid)
                && !h_used[hi]
                && iou(g.bbox, hs[hi].bbox) >= 0.5
            {
                pairs.push((gi, hi));
                g_used[gi] = true;
                h_used[hi] = true;
            }
        }
        let free_g: Vec<usize> = (0..gs.len()).filter(|&i| !g_used[i]).collect();
        let free_h: Vec<usize> = (0..hs.len()).filter(|&i| !h_used[i]).collect();
        let cost: Vec<Vec<f64>> = free_g
            .iter()
            .map(|&gi| {
                free_h
                    .iter()
                    .map(|&hi| {
                        let o = iou(gs[gi].bbox, hs[hi].bbox);
                        if o >= 0.5 { 1.0 - o } else { 1e9 }
                    })
                    .collect()
            })
            .collect();
        for (k, m) in hungarian(&cost).into_iter().enumerate() {
            if let Some(j) = m {
                pairs.push((free_g[k], free_h[j]));
                h_used[free_h[j]] = true;
                g_used[free_g[k]] = true;
            }
        }
        // Tracks on "don't care" boxes count for nothing.
        for (gi, hi) in &pairs {
            let (g, h) = (gs[*gi], hs[*hi]);
            if !cares[*gi] {
                continue;
            }
            if let Some(prev) = last_match.insert(g.id, h.id)
                && prev != h.id
            {
                idsw += 1;
            }
            if let Some(t) = truth.get(&(g.frame, g.id)) {
                err2 += (h.pitch[0] - t.pos[0]).powi(2) + (h.pitch[1] - t.pos[1]).powi(2);
                n_err += 1;
            }
            *common.entry((g.id, h.id)).or_default() += 1;
        }
        let matched_dont_care: Vec<usize> = pairs
            .iter()
            .filter(|(gi, _)| !cares[*gi])
            .map(|(_, hi)| *hi)
            .collect();
        for (gi, g) in gs.iter().enumerate() {
            if cares[gi] {
                n_gt += 1;
                *gt_count.entry(g.id).or_default() += 1;
                if !g_used[gi] {
                    fn_ += 1;
                }
            }
        }
        for (hi, h) in hs.iter().enumerate() {
            if matched_dont_care.contains(&hi) {
                continue;
            }
            n_hyp += 1;
            *hyp_count.entry(h.id).or_default() += 1;
            if !h_used[hi] {
                fp += 1;
            }
        }
    }
    // IDF1: one-to-one identity matching maximising frames in common.
    let gids: Vec<u32> = gt_count.keys().copied().collect();
    let hids: Vec<u32> = hyp_count.keys().copied().collect();
    let cost: Vec<Vec<f64>> = gids
        .iter()
        .map(|g| {
            hids.iter()
                .map(|h| -(common.get(&(*g, *h)).copied().unwrap_or(0) as f64))
                .collect()
        })
        .collect();
    let mut idtp = 0usize;
    let mut identity: HashMap<u32, u32> = HashMap::new();
    for (k, m) in hungarian(&cost).into_iter().enumerate() {
        if let Some(j) = m {
            let c = common.get(&(gids[k], hids[j])).copied().unwrap_or(0);
            if c > 0 {
                idtp += c;
                identity.insert(gids[k], hids[j]);
            }
        }
    }
    let n_frames = frames.len().max(1);
    let (hota, det_a, ass_a) = hota(&gt_frames, &hyp_frames, &frames);
    let mut players = Vec::new();
    if let Some(reported) = metrics {
        for (&gid, &hid) in &identity {
            let Some(r) = reported.get(&hid) else {
                continue;
            };
            let mut samples: Vec<(u64, TruePosition)> = truth
                .iter()
                .filter(|((_, id), _)| *id == gid)
                .map(|((f, _), t)| (*f, *t))
                .collect();
            samples.sort_by_key(|s| s.0);
            if samples.len() < 2 {
                continue;
            }
            let (mut dist, mut hs) = (0.0, 0.0);
            for w in samples.windows(2) {
                let step = (w[1].1.pos[0] - w[0].1.pos[0]).hypot(w[1].1.pos[1] - w[0].1.pos[1]);
                let speed = |t: &TruePosition| t.vel[0].hypot(t.vel[1]);
                dist += step;
                if (speed(&w[0].1) + speed(&w[1].1)) / 2.0 >= high_speed_mps {
                    hs += step;
                }
            }
            let top = samples
                .iter()
                .map(|s| s.1.vel[0].hypot(s.1.vel[1]))
                .fold(0.0, f64::max);
            let rel = |got: f64, want: f64| {
                if want > 1.0 {
                    (got - want).abs() / want
                } else {
                    0.0
                }
            };
            players.push(PlayerError {
                id: gid,
                track: hid,
                distance_m: dist,
                distance_error: rel(r.distance_m, dist),
                high_speed_m: hs,
                high_speed_error: rel(r.high_speed_m, hs),
                top_speed_mps: top,
                top_speed_error_mps: (r.top_speed_mps - top).abs(),
            });
        }
        players.sort_by_key(|p| p.id);
    }
    Scores {
        gt_boxes: n_gt,
        hyp_boxes: n_hyp,
        false_negatives: fn_,
        false_positives: fp,
        id_switches: idsw,
        id_switches_per_1000_frames: 1000.0 * idsw as f64 / n_frames as f64,
        mota: 1.0 - (fn_ + fp + idsw) as f64 / n_gt.max(1) as f64,
        idf1: 2.0 * idtp as f64 / (n_gt + n_hyp).max(1) as f64,
        position_rmse_m: if n_err > 0 {
            (err2 / n_err as f64).sqrt()
        } else {
            f64::NAN
        },
        hota,
        det_a,
        ass_a,
        players,
    }
}
