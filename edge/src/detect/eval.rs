//! Scoring a detector against true boxes: COCO-style average precision per class, and precision
//! and recall at the score threshold the daemon runs with.
//!
//! The matching is COCO's (`pycocotools` `COCOeval`, area range "all", up to 100 detections per
//! image and class), so the figures can be cross-checked against it
//! (`scripts/compare-coco.py`): detections in falling score order each take the unmatched true
//! box they overlap best at IoU ≥ t; true boxes marked `ignore` (people less than a quarter
//! visible) behave like COCO's crowd regions — overlap measured as intersection over the
//! detection's area, a detection matched to one counts neither as hit nor as false alarm, and
//! they are not counted in recall. AP is the mean of the interpolated precision at 101 recall
//! points; mAP@0.5:0.95 averages it over IoU 0.50, 0.55, … 0.95.

use super::tiling::iou;

/// A true box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TruthBox {
    /// Which image.
    pub image: usize,
    /// Class index (model order).
    pub class: usize,
    /// `[left, top, width, height]`, pixels.
    pub bbox: [f64; 4],
    /// Neither a miss when not found nor a hit when found.
    pub ignore: bool,
}

/// A detection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredBox {
    /// Which image.
    pub image: usize,
    /// Class index (model order).
    pub class: usize,
    /// `[left, top, width, height]`, pixels.
    pub bbox: [f64; 4],
    /// Score.
    pub score: f32,
}

/// The figures of one class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassScore {
    /// Class index.
    pub class: usize,
    /// True boxes counted (not ignored).
    pub truths: usize,
    /// Detections (all scores kept by the detector).
    pub detections: usize,
    /// AP at IoU 0.5; `None` without true boxes.
    pub ap50: Option<f64>,
    /// AP averaged over IoU 0.50:0.05:0.95; `None` without true boxes.
    pub ap50_95: Option<f64>,
    /// Recall at IoU 0.5 of the detections scoring at least the operating threshold.
    pub recall: f64,
    /// Precision at IoU 0.5 of those detections.
    pub precision: f64,
    /// Recall when a hit is a centre within [`centre_tolerance`] of the true centre (the
    /// ball's criterion: IoU 0.5 on a 4-pixel box allows barely one pixel of error).
    pub centre_recall: f64,
    /// Precision by the same criterion.
    pub centre_precision: f64,
}

/// How far a detection's centre may be from the true centre to be a hit by the centre
/// criterion: half the true box's diagonal, at least 5 pixels (about one ball diameter in the
/// panorama).
pub fn centre_tolerance(truth: [f64; 4]) -> f64 {
    (0.5 * truth[2].hypot(truth[3])).max(5.0)
}

/// Hits and counted detections of `class` at `threshold` by the centre criterion: each
/// detection, best score first, takes the nearest unmatched true centre within tolerance; one
/// near an ignored true box counts neither way.
fn centre_matches(
    truths: &[TruthBox],
    dets: &[ScoredBox],
    class: usize,
    threshold: f32,
) -> (usize, usize) {
    let centre = |b: [f64; 4]| [b[0] + b[2] / 2.0, b[1] + b[3] / 2.0];
    let mut kept: Vec<&ScoredBox> = dets
        .iter()
        .filter(|d| d.class == class && d.score >= threshold)
        .collect();
    kept.sort_by(|a, b| b.score.total_cmp(&a.score));
    let gts: Vec<&TruthBox> = truths.iter().filter(|t| t.class == class).collect();
    let mut taken = vec![false; gts.len()];
    let (mut hits, mut counted) = (0, 0);
    for d in kept {
        let c = centre(d.bbox);
        let mut best: Option<(usize, f64)> = None;
        for (g, t) in gts.iter().enumerate() {
            if t.image != d.image || (taken[g] && !t.ignore) {
                continue;
            }
            let tc = centre(t.bbox);
            let dist = (c[0] - tc[0]).hypot(c[1] - tc[1]);
            if dist <= centre_tolerance(t.bbox) && best.is_none_or(|(_, b)| dist < b) {
                best = Some((g, dist));
            }
        }
        match best {
            Some((g, _)) if gts[g].ignore => {}
            Some((g, _)) => {
                taken[g] = true;
                hits += 1;
                counted += 1;
            }
            None => counted += 1,
        }
    }
    (hits, counted)
}

const MAX_DETECTIONS: usize = 100;

/// Overlap used for matching: IoU, or intersection over the detection's area for an ignored
/// (crowd-like) true box.
fn overlap(det: [f64; 4], truth: &TruthBox) -> f64 {
    if !truth.ignore {
        return iou(det, truth.bbox);
    }
    let b = truth.bbox;
    let w = (det[0] + det[2]).min(b[0] + b[2]) - det[0].max(b[0]);
    let h = (det[1] + det[3]).min(b[1] + b[3]) - det[1].max(b[1]);
    let area = det[2] * det[3];
    if w <= 0.0 || h <= 0.0 || area <= 0.0 {
        0.0
    } else {
        w * h / area
    }
}

/// Per detection (in the order given): `Some(true)` hit, `Some(false)` false alarm, `None`
/// ignored; for one image and class at IoU `threshold`.
fn match_image(dets: &[&ScoredBox], truths: &[&TruthBox], threshold: f64) -> Vec<Option<bool>> {
    // Real true boxes first, then ignored ones, as COCO sorts them.
    let mut order: Vec<&TruthBox> = truths.iter().filter(|t| !t.ignore).copied().collect();
    order.extend(truths.iter().filter(|t| t.ignore).copied());
    let mut taken = vec![false; order.len()];
    dets.iter()
        .map(|d| {
            let mut best: Option<usize> = None;
            let mut best_iou = threshold.min(1.0 - 1e-10);
            for (g, t) in order.iter().enumerate() {
                if taken[g] && !t.ignore {
                    continue;
                }
                if best.is_some_and(|m| !order[m].ignore) && t.ignore {
                    break;
                }
                let o = overlap(d.bbox, t);
                if o < best_iou {
                    continue;
                }
                best_iou = o;
                best = Some(g);
            }
            best.map(|g| {
                taken[g] = true;
                if order[g].ignore { None } else { Some(true) }
            })
            .unwrap_or(Some(false))
        })
        .collect()
}

/// Hits and false alarms of every counted detection of `class`, in falling score order, at IoU
/// `threshold`; and the number of counted true boxes.
fn outcomes(
    truths: &[TruthBox],
    dets: &[ScoredBox],
    class: usize,
    threshold: f64,
) -> (Vec<(f32, bool)>, usize) {
    let images = truths
        .iter()
        .map(|t| t.image)
        .chain(dets.iter().map(|d| d.image))
        .max()
        .map_or(0, |m| m + 1);
    let mut per_truth: Vec<Vec<&TruthBox>> = vec![Vec::new(); images];
    let mut per_det: Vec<Vec<&ScoredBox>> = vec![Vec::new(); images];
    for t in truths.iter().filter(|t| t.class == class) {
        per_truth[t.image].push(t);
    }
    for d in dets.iter().filter(|d| d.class == class) {
        per_det[d.image].push(d);
    }
    let counted = truths
        .iter()
        .filter(|t| t.class == class && !t.ignore)
        .count();
    let mut all = Vec::new();
    for (gts, mut ds) in per_truth.into_iter().zip(per_det) {
        // Stable sort: equal scores keep their input order, as COCO's mergesort does.
        ds.sort_by(|a, b| b.score.total_cmp(&a.score));
        ds.truncate(MAX_DETECTIONS);
        for (d, m) in ds.iter().zip(match_image(&ds, &gts, threshold)) {
            if let Some(hit) = m {
                all.push((d.score, hit));
            }
        }
    }
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    (all, counted)
}

/// Point `k` of numpy's `linspace(start, stop, num)`, to the last bit: COCO's IoU and recall
/// thresholds are made that way, and a recall landing exactly on a threshold must compare the
/// same.
fn linspace(start: f64, stop: f64, num: usize, k: usize) -> f64 {
    if k + 1 == num {
        return stop;
    }
    let step = (stop - start) / (num - 1) as f64;
    k as f64 * step + start
}

/// COCO's interpolated average precision (101 recall points).
fn average_precision(outcomes: &[(f32, bool)], counted: usize) -> Option<f64> {
    if counted == 0 {
        return None;
    }
    let (mut tp, mut fp) = (0.0f64, 0.0f64);
    let mut recall = Vec::with_capacity(outcomes.len());
    let mut precision = Vec::with_capacity(outcomes.len());
    for &(_, hit) in outcomes {
        if hit {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        recall.push(tp / counted as f64);
        precision.push(tp / (tp + fp).max(f64::EPSILON));
    }
    for i in (1..precision.len()).rev() {
        if precision[i] > precision[i - 1] {
            precision[i - 1] = precision[i];
        }
    }
    let mut sum = 0.0;
    for k in 0..=100 {
        let r = linspace(0.0, 1.0, 101, k);
        let at = recall.partition_point(|&x| x < r);
        sum += precision.get(at).copied().unwrap_or(0.0);
    }
    Some(sum / 101.0)
}

/// Scores `dets` against `truths` for classes `0..thresholds.len()`; recall and precision of
/// each class are taken at its threshold (the daemon's operating point).
pub fn evaluate(truths: &[TruthBox], dets: &[ScoredBox], thresholds: &[f32]) -> Vec<ClassScore> {
    (0..thresholds.len())
        .map(|class| {
            let threshold = thresholds[class];
            let (at50, counted) = outcomes(truths, dets, class, 0.5);
            let ap50 = average_precision(&at50, counted);
            let ap50_95 = (0..10)
                .map(|k| {
                    let (o, n) = outcomes(truths, dets, class, linspace(0.5, 0.95, 10, k));
                    average_precision(&o, n)
                })
                .sum::<Option<f64>>()
                .map(|s| s / 10.0);
            let kept: Vec<&(f32, bool)> = at50.iter().filter(|o| o.0 >= threshold).collect();
            let hits = kept.iter().filter(|o| o.1).count();
            let (near_hits, near_counted) = centre_matches(truths, dets, class, threshold);
            let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
            ClassScore {
                class,
                truths: counted,
                detections: dets.iter().filter(|d| d.class == class).count(),
                ap50,
                ap50_95,
                recall: if counted == 0 {
                    0.0
                } else {
                    hits as f64 / counted as f64
                },
                precision: if kept.is_empty() {
                    0.0
                } else {
                    hits as f64 / kept.len() as f64
                },
                centre_recall: ratio(near_hits, counted),
                centre_precision: ratio(near_hits, near_counted),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(image: usize, bbox: [f64; 4]) -> TruthBox {
        TruthBox {
            image,
            class: 0,
            bbox,
            ignore: false,
        }
    }
    fn det(image: usize, bbox: [f64; 4], score: f32) -> ScoredBox {
        ScoredBox {
            image,
            class: 0,
            bbox,
            score,
        }
    }

    #[test]
    fn perfect_detections_score_one_and_misses_cost_recall() {
        let t = vec![
            truth(0, [0.0, 0.0, 10.0, 20.0]),
            truth(1, [5.0, 5.0, 10.0, 20.0]),
        ];
        let d = vec![
            det(0, [0.0, 0.0, 10.0, 20.0], 0.9),
            det(1, [5.0, 5.0, 10.0, 20.0], 0.8),
        ];
        let s = evaluate(&t, &d, &[0.25])[0];
        assert_eq!(s.ap50, Some(1.0));
        assert_eq!(s.ap50_95, Some(1.0));
        assert_eq!((s.recall, s.precision), (1.0, 1.0));
        let s = evaluate(&t, &d[..1], &[0.25])[0];
        // Half the truth found at full precision: recall points 0..=0.5 → 51 of 101.
        assert!((s.ap50.unwrap_or(0.0) - 51.0 / 101.0).abs() < 1e-12);
        assert_eq!((s.recall, s.precision), (0.5, 1.0));
    }

    #[test]
    fn a_high_scoring_false_alarm_lowers_precision_and_ap() {
        let t = vec![truth(0, [0.0, 0.0, 10.0, 20.0])];
        let d = vec![
            det(0, [50.0, 50.0, 10.0, 20.0], 0.9),
            det(0, [0.0, 0.0, 10.0, 20.0], 0.5),
        ];
        let s = evaluate(&t, &d, &[0.25])[0];
        assert!((s.ap50.unwrap_or(0.0) - 0.5).abs() < 1e-12);
        assert_eq!(s.precision, 0.5);
        // Only the false alarm scores above 0.6.
        let s = evaluate(&t, &d, &[0.6])[0];
        assert_eq!((s.recall, s.precision), (0.0, 0.0));
    }

    #[test]
    fn duplicates_are_false_alarms_and_ignored_truth_is_neutral() {
        let mut hidden = truth(0, [100.0, 0.0, 10.0, 20.0]);
        hidden.ignore = true;
        let t = vec![truth(0, [0.0, 0.0, 10.0, 20.0]), hidden];
        let d = vec![
            det(0, [0.0, 0.0, 10.0, 20.0], 0.9),
            det(0, [0.5, 0.0, 10.0, 20.0], 0.8),
            det(0, [101.0, 2.0, 6.0, 10.0], 0.7),
        ];
        let s = evaluate(&t, &d, &[0.25])[0];
        assert_eq!(s.truths, 1);
        // One hit, one duplicate (false alarm), one on the ignored box (not counted).
        assert_eq!((s.recall, s.precision), (1.0, 0.5));
        assert_eq!(s.ap50, Some(1.0));
    }

    #[test]
    fn a_ball_one_and_a_half_pixels_off_misses_by_iou_but_hits_by_centre() {
        let t = vec![truth(0, [100.0, 100.0, 4.0, 4.0])];
        let d = vec![
            det(0, [101.5, 101.5, 4.0, 4.0], 0.9),
            det(0, [140.0, 100.0, 4.0, 4.0], 0.8),
        ];
        let s = evaluate(&t, &d, &[0.25])[0];
        assert_eq!(s.recall, 0.0);
        assert_eq!((s.centre_recall, s.centre_precision), (1.0, 0.5));
    }

    #[test]
    fn loose_boxes_pass_at_iou_half_but_not_at_strict_thresholds() {
        let t = vec![truth(0, [0.0, 0.0, 10.0, 20.0])];
        // IoU = 160 / 240 = 0.67.
        let d = vec![det(0, [0.0, 4.0, 10.0, 20.0], 0.9)];
        let s = evaluate(&t, &d, &[0.25])[0];
        assert_eq!(s.ap50, Some(1.0));
        // Passes at 0.50, 0.55, 0.60 and 0.65: 4 of 10 thresholds.
        assert!((s.ap50_95.unwrap_or(0.0) - 0.4).abs() < 1e-12);
    }
}
