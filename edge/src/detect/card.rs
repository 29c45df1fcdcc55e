//! The model card: what a detector model is, in a small JSON file next to the ONNX file
//! (`players.onnx` → `players.card.json`).
//!
//! ```json
//! { "name": "polyvision-players", "input_size": 640,
//!   "classes": ["player", "goalkeeper", "referee", "ball"] }
//! ```
//!
//! `classes` are in the order of the model's class scores; names this project knows (`player`,
//! `goalkeeper`, `referee`, `ball`, and COCO's `person` and `sports ball`, so a stock YOLO model
//! works too) map onto the tracker's classes, others are ignored. `min_scores` (optional) raises
//! the score a class needs above the daemon's threshold, where the model's scores of that class
//! are calibrated differently (`{"ball": 0.5}`): the operating point belongs to the model.

use crate::track::tracker::Class;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A model card.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    /// Model name.
    pub name: String,
    /// Side of the square input, pixels.
    pub input_size: u32,
    /// Class names in output order.
    pub classes: Vec<String>,
    /// Lowest score per class name, where a class needs more than the daemon's threshold.
    #[serde(default)]
    pub min_scores: std::collections::BTreeMap<String, f32>,
    /// Free text: training data, metrics, speed.
    #[serde(default)]
    pub notes: Option<String>,
    /// Multiply-accumulates of one input tile, billions (counted by the export script), so
    /// `bench-detect` can state the work per panorama beside its timings.
    #[serde(default)]
    pub gmacs_per_tile: Option<f64>,
}

impl ModelCard {
    /// The card of `model` (`X.onnx` → `X.card.json`); errors name the file and the field.
    pub fn for_model(model: &Path) -> Result<(PathBuf, Self), String> {
        if !model.is_file() {
            return Err(format!(
                "{}: no such model file{}",
                model.display(),
                if model.is_relative() {
                    " (a relative path is taken from the current folder; give --model or [detect] model)"
                } else {
                    ""
                }
            ));
        }
        let path = model.with_extension("card.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: {e} (every model needs its card)", path.display()))?;
        let card: ModelCard =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        card.validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((path, card))
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if !(32..=4096).contains(&self.input_size) || !self.input_size.is_multiple_of(32) {
            return Err(format!(
                "field `input_size`: {} is not a multiple of 32 within 32–4096",
                self.input_size
            ));
        }
        if self.classes.is_empty() {
            return Err("field `classes`: at least one class is needed".into());
        }
        for (name, score) in &self.min_scores {
            if !self.classes.contains(name) {
                return Err(format!(
                    "field `min_scores`: {name:?} is not one of the classes {:?}",
                    self.classes
                ));
            }
            if !(0.0..=1.0).contains(score) {
                return Err(format!(
                    "field `min_scores`: {name:?} must be within 0–1, got {score}"
                ));
            }
        }
        if self.tracker_classes().iter().all(Option::is_none) {
            return Err(format!(
                "field `classes`: none of {:?} is a class the tracker knows (player, goalkeeper, referee, ball, person, sports ball)",
                self.classes
            ));
        }
        Ok(())
    }

    /// The lowest score of each model class, given the daemon's `threshold`.
    pub fn class_thresholds(&self, threshold: f32) -> Vec<f32> {
        self.classes
            .iter()
            .map(|c| {
                self.min_scores
                    .get(c)
                    .map_or(threshold, |m| m.max(threshold))
            })
            .collect()
    }

    /// The tracker's class for each model class (`None`: ignored).
    pub fn tracker_classes(&self) -> Vec<Option<Class>> {
        self.classes
            .iter()
            .map(|c| match c.as_str() {
                "player" | "person" => Some(Class::Player),
                "goalkeeper" => Some(Class::Goalkeeper),
                "referee" => Some(Class::Referee),
                "ball" | "sports ball" => Some(Class::Ball),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_are_validated_with_the_field_named() {
        let ok: ModelCard =
            serde_json::from_str(r#"{"name":"m","input_size":640,"classes":["player","ball"]}"#)
                .expect("parses");
        assert!(ok.validate().is_ok());
        assert_eq!(
            ok.tracker_classes(),
            [Some(Class::Player), Some(Class::Ball)]
        );
        let bad: ModelCard =
            serde_json::from_str(r#"{"name":"m","input_size":600,"classes":["player"]}"#)
                .expect("parses");
        assert!(bad.validate().unwrap_err().contains("input_size"));
        let bad: ModelCard =
            serde_json::from_str(r#"{"name":"m","input_size":640,"classes":["cat"]}"#)
                .expect("parses");
        assert!(bad.validate().unwrap_err().contains("classes"));
        assert!(
            serde_json::from_str::<ModelCard>(
                r#"{"name":"m","input_size":640,"classes":["player"],"colour":1}"#
            )
            .is_err()
        );
    }
}
