//! The detection stage: panorama → tiles → inference → boxes on the panorama.

use super::backend::InferenceBackend;
use super::card::ModelCard;
use super::decode::decode;
use super::tiling::{PanoramaBox, TileLayout, nms, to_panorama};
use crate::track::tracker::Class;
use polyvision_cuda::{Normalisation, Preprocessor, Rgba, TensorOut};

/// Settings of the stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    /// Candidates below this score are dropped.
    pub score_threshold: f32,
    /// Same-class boxes overlapping more than this are one object.
    pub nms_iou: f64,
    /// Overlap of neighbouring tiles, pixels (at least the largest object).
    pub tile_overlap: u32,
    /// A box this close to an inner tile edge is a cut-off piece, pixels.
    pub edge_px: f64,
    /// Apply the card's per-class `min_scores` on top of `score_threshold` (off only to score
    /// a model over all its candidates).
    pub card_min_scores: bool,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            score_threshold: 0.25,
            nms_iou: 0.5,
            tile_overlap: 200,
            edge_px: 2.0,
            card_min_scores: true,
        }
    }
}

/// A detection ready for the tracker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection2d {
    /// `[left, top, width, height]` in panorama pixels.
    pub bbox: [f64; 4],
    /// Score.
    pub score: f32,
    /// Class.
    pub class: Class,
}

/// Runs a model over whole panoramas.
pub struct Detector {
    backend: Box<dyn InferenceBackend>,
    preprocessor: Box<dyn Preprocessor>,
    card: ModelCard,
    classes: Vec<Option<Class>>,
    config: DetectorConfig,
    layout: Option<TileLayout>,
    input: Vec<f32>,
    min_score: Vec<f32>,
}

impl Detector {
    /// A detector from its parts (each chosen once at start-up).
    pub fn new(
        backend: Box<dyn InferenceBackend>,
        preprocessor: Box<dyn Preprocessor>,
        card: ModelCard,
        config: DetectorConfig,
    ) -> Self {
        let min_score = if config.card_min_scores {
            card.class_thresholds(config.score_threshold)
        } else {
            vec![config.score_threshold; card.classes.len()]
        };
        Detector {
            backend,
            preprocessor,
            min_score,
            classes: card.tracker_classes(),
            card,
            config,
            layout: None,
            input: Vec::new(),
        }
    }

    /// The tiles used for panoramas of `size` (computed once per size).
    pub fn layout(&mut self, size: [u32; 2]) -> Result<&TileLayout, String> {
        if self.layout.as_ref().is_none_or(|l| l.panorama != size) {
            self.layout = Some(TileLayout::new(
                size,
                self.card.input_size,
                self.config.tile_overlap,
            )?);
        }
        self.layout
            .as_ref()
            .ok_or_else(|| "no tile layout".to_string())
    }

    /// Detects people and the ball in one panorama.
    pub fn detect(&mut self, panorama: &Rgba<'_>) -> Result<Vec<Detection2d>, String> {
        let layout = self.layout([panorama.width, panorama.height])?.clone();
        let s = self.card.input_size as usize;
        let per = 3 * s * s;
        let batch = self.backend.batch();
        let mut boxes: Vec<PanoramaBox> = Vec::new();
        for (chunk_index, tiles) in layout.tiles.chunks(batch).enumerate() {
            self.input.resize(batch * per, 0.0);
            let used = tiles.len() * per;
            self.preprocessor
                .run(
                    panorama,
                    tiles,
                    &Normalisation::yolo(),
                    s as u32,
                    TensorOut::F32(&mut self.input[..used]),
                )
                .map_err(|e| e.to_string())?;
            // A short last batch is padded with zeros; their outputs are not read.
            self.input[used..].fill(0.0);
            let (out, shape) = self.backend.run(&self.input)?;
            let per_image = out.len() / batch.max(1);
            let single: Vec<usize> = std::iter::once(1)
                .chain(shape.iter().skip(1).copied())
                .collect();
            for (k, _) in tiles.iter().enumerate() {
                let head = &out[k * per_image..(k + 1) * per_image];
                for b in decode(
                    head,
                    &single,
                    self.card.classes.len(),
                    self.config.score_threshold,
                )? {
                    if b.score < self.min_score.get(b.class).copied().unwrap_or(1.0) {
                        continue;
                    }
                    let tile = chunk_index * batch + k;
                    if let Some(bbox) = to_panorama(&layout, tile, b.bbox, self.config.edge_px) {
                        boxes.push(PanoramaBox {
                            bbox,
                            score: b.score,
                            class: b.class,
                        });
                    }
                }
            }
        }
        Ok(nms(boxes, self.config.nms_iou)
            .into_iter()
            .filter_map(|b| {
                Some(Detection2d {
                    bbox: b.bbox,
                    score: b.score,
                    class: (*self.classes.get(b.class)?)?,
                })
            })
            .collect())
    }

    /// The backend's name.
    pub fn backend(&self) -> &'static str {
        self.backend.name()
    }
}
