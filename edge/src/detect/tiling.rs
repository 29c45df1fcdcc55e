//! The panorama in tiles the model can take, and the boxes put back together.
//!
//! The panorama (3840 × 726 on the default rig) is far wider than a detector's square input.
//! It is cut into squares of the model's input size **at native resolution**: nothing is
//! shrunk, so the ball keeps the 5–8 pixels it has in the panorama (shrinking a 3840-pixel-wide
//! panorama to one 640-pixel input would leave it one pixel). Neighbouring tiles overlap by at
//! least the largest thing to detect (a player lying along the image near a corner, about
//! 200 pixels), so everything lies whole inside at least one tile. Merging then needs no
//! guesswork: a box that touches a tile's edge where another tile continues is a cut-off piece
//! and is dropped (its whole version comes from the neighbour); the rest go through
//! class-aware non-maximum suppression, which removes the duplicates of the overlaps.

use polyvision_cuda::TilePlacement;

/// How the panorama is cut.
#[derive(Debug, Clone, PartialEq)]
pub struct TileLayout {
    /// Panorama width and height.
    pub panorama: [u32; 2],
    /// Side of the model's square input.
    pub size: u32,
    /// Each tile: its crop and where the crop sits in the square.
    pub tiles: Vec<TilePlacement>,
}

/// Tile positions along one axis: `count` starts from 0 to `extent − tile`, evenly spread.
fn starts(extent: u32, tile: u32, overlap: u32) -> Vec<u32> {
    if extent <= tile {
        return vec![0];
    }
    let step = tile - overlap;
    let count = (extent - overlap).div_ceil(step);
    let last = extent - tile;
    (0..count)
        .map(|i| ((last as u64 * i as u64) / (count as u64 - 1).max(1)) as u32)
        .collect()
}

impl TileLayout {
    /// Tiles of `size` over a `panorama`, overlapping by at least `overlap` pixels.
    pub fn new(panorama: [u32; 2], size: u32, overlap: u32) -> Result<Self, String> {
        if overlap >= size {
            return Err(format!(
                "tile overlap {overlap} must be less than the tile size {size}"
            ));
        }
        let [w, h] = panorama;
        if w == 0 || h == 0 {
            return Err("the panorama has no pixels".into());
        }
        let (tw, th) = (size.min(w), size.min(h));
        let mut tiles = Vec::new();
        for y in starts(h, th, overlap.min(th.saturating_sub(1))) {
            for x in starts(w, tw, overlap.min(tw.saturating_sub(1))) {
                tiles.push(TilePlacement::letterbox([x, y, tw, th], size));
            }
        }
        Ok(TileLayout {
            panorama,
            size,
            tiles,
        })
    }
}

/// A detection in panorama pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PanoramaBox {
    /// `[left, top, width, height]`.
    pub bbox: [f64; 4],
    /// Score.
    pub score: f32,
    /// Model class index.
    pub class: usize,
}

/// Intersection over union.
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

/// Maps a box from the model's input (of tile `tile`) to the panorama; `None` when it touches an
/// edge of the crop that another tile continues (a cut-off piece).
pub fn to_panorama(
    layout: &TileLayout,
    tile: usize,
    bbox: [f32; 4],
    edge_px: f64,
) -> Option<[f64; 4]> {
    let t = layout.tiles.get(tile)?;
    let [cx, cy, cw, ch] = t.crop.map(f64::from);
    let [px, py, _, _] = t.placed.map(f64::from);
    let (sx, sy) = (t.step[0] as f64, t.step[1] as f64);
    let l = (bbox[0] as f64 - px) * sx + cx;
    let top = (bbox[1] as f64 - py) * sy + cy;
    let (w, h) = (bbox[2] as f64 * sx, bbox[3] as f64 * sy);
    let [pw, ph] = layout.panorama.map(f64::from);
    let cut =
        |at: f64, edge: f64, panorama_edge: bool| !panorama_edge && (at - edge).abs() <= edge_px;
    if cut(l, cx, cx <= 0.0)
        || cut(top, cy, cy <= 0.0)
        || cut(l + w, cx + cw, cx + cw >= pw)
        || cut(top + h, cy + ch, cy + ch >= ph)
    {
        return None;
    }
    Some([l, top, w, h])
}

/// Class-aware non-maximum suppression: the best box of each cluster overlapping above
/// `iou_threshold` survives.
pub fn nms(mut boxes: Vec<PanoramaBox>, iou_threshold: f64) -> Vec<PanoramaBox> {
    boxes.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<PanoramaBox> = Vec::with_capacity(boxes.len());
    for b in boxes {
        if !kept
            .iter()
            .any(|k| k.class == b.class && iou(k.bbox, b.bbox) > iou_threshold)
        {
            kept.push(b);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_panorama_with_the_overlap() {
        let layout = TileLayout::new([3840, 726], 640, 200).expect("layout");
        let xs: Vec<i32> = layout
            .tiles
            .iter()
            .filter(|t| t.crop[1] == 0)
            .map(|t| t.crop[0])
            .collect();
        assert_eq!(*xs.first().expect("one"), 0);
        assert_eq!(*xs.last().expect("one") + 640, 3840);
        for w in xs.windows(2) {
            assert!(640 - (w[1] - w[0]) >= 200, "{xs:?}");
        }
        let ys: std::collections::BTreeSet<i32> = layout.tiles.iter().map(|t| t.crop[1]).collect();
        assert_eq!(ys.into_iter().collect::<Vec<_>>(), [0, 86]);
        // Native scale: one input pixel is one panorama pixel.
        assert!(layout.tiles.iter().all(|t| t.step == [1.0, 1.0]));
    }

    #[test]
    fn a_player_on_a_tile_border_is_detected_once() {
        let layout = TileLayout::new([1000, 640], 640, 200).expect("layout");
        assert_eq!(layout.tiles.len(), 2);
        let (a, b) = (layout.tiles[0].crop, layout.tiles[1].crop);
        // Tile B starts at x = 360; a player standing at x 345–375 crosses its left edge and lies
        // whole inside tile A.
        assert_eq!(b[0], 360);
        let player = [345.0f32, 300.0, 30.0, 80.0];
        let in_a = [player[0] - a[0] as f32, player[1], 30.0, 80.0];
        // Tile B sees only the part from its edge on.
        let in_b = [0.0f32, player[1], 15.0, 80.0];
        let mut found = Vec::new();
        for (tile, bbox, score) in [(0usize, in_a, 0.9f32), (1, in_b, 0.8)] {
            if let Some(p) = to_panorama(&layout, tile, bbox, 2.0) {
                found.push(PanoramaBox {
                    bbox: p,
                    score,
                    class: 0,
                });
            }
        }
        let merged = nms(found, 0.5);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].bbox, [345.0, 300.0, 30.0, 80.0]);
        // A player inside both tiles' overlap, seen whole by both, is kept once.
        let both = [
            PanoramaBox {
                bbox: [600.0, 100.0, 30.0, 80.0],
                score: 0.9,
                class: 0,
            },
            PanoramaBox {
                bbox: [601.0, 101.0, 30.0, 79.0],
                score: 0.85,
                class: 0,
            },
            PanoramaBox {
                bbox: [601.0, 101.0, 8.0, 8.0],
                score: 0.7,
                class: 1,
            },
        ];
        assert_eq!(nms(both.to_vec(), 0.5).len(), 2);
    }
}
