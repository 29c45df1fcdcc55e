//! YOLO detection heads to boxes.
//!
//! YOLOv8/YOLO11 exports give `[1, 4 + classes, N]`: for each of `N` candidates the box centre,
//! width and height in input pixels, then one score per class (no objectness). Some exports
//! transpose it to `[1, N, 4 + classes]`; both are read. When `N = 4 + classes` the layout is
//! ambiguous and the standard `[1, 4 + classes, N]` is assumed.

/// A candidate box in the model's input pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputBox {
    /// `[left, top, width, height]`.
    pub bbox: [f32; 4],
    /// Best class score.
    pub score: f32,
    /// Index of that class.
    pub class: usize,
}

/// Decodes one image's head output (`data` laid out as `shape`); keeps candidates whose best
/// score reaches `threshold`. The error says what was expected and what was found.
pub fn decode(
    data: &[f32],
    shape: &[usize],
    classes: usize,
    threshold: f32,
) -> Result<Vec<InputBox>, String> {
    let width = 4 + classes;
    let dims: Vec<usize> = shape.iter().copied().filter(|&d| d != 1).collect();
    let (n, channels_first) = match (shape.len(), dims.as_slice()) {
        (3, _) if shape[0] == 1 && shape[1] == width => (shape[2], true),
        (3, _) if shape[0] == 1 && shape[2] == width => (shape[1], false),
        _ => {
            return Err(format!(
                "the model's output is {shape:?}; a YOLO head for {classes} class(es) is [1, {width}, N] or [1, N, {width}]"
            ));
        }
    };
    if data.len() != n * width {
        return Err(format!(
            "the output holds {} values, its shape {shape:?} says {}",
            data.len(),
            n * width
        ));
    }
    let at = |k: usize, i: usize| {
        if channels_first {
            data[k * n + i]
        } else {
            data[i * width + k]
        }
    };
    let mut out = Vec::new();
    for i in 0..n {
        let (mut best, mut class) = (f32::NEG_INFINITY, 0);
        for c in 0..classes {
            let s = at(4 + c, i);
            if s > best {
                best = s;
                class = c;
            }
        }
        if best >= threshold && best.is_finite() {
            let (cx, cy, w, h) = (at(0, i), at(1, i), at(2, i), at(3, i));
            if w > 0.0 && h > 0.0 && cx.is_finite() && cy.is_finite() {
                out.push(InputBox {
                    bbox: [cx - w / 2.0, cy - h / 2.0, w, h],
                    score: best,
                    class,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_head_gives_known_boxes_in_both_layouts() {
        // Two classes, three candidates: (100, 50, 20, 40) class 1 at 0.9; (10, 10, 4, 4) class 0
        // at 0.2 (below the threshold); (300, 200, 8, 8) class 0 at 0.6.
        let rows = [
            [100.0, 50.0, 20.0, 40.0, 0.1, 0.9],
            [10.0, 10.0, 4.0, 4.0, 0.2, 0.1],
            [300.0, 200.0, 8.0, 8.0, 0.6, 0.3],
        ];
        let transposed: Vec<f32> = rows.iter().flatten().copied().collect();
        let standard: Vec<f32> = (0..6)
            .flat_map(|k| rows.iter().map(move |r| r[k]))
            .collect();
        let want = vec![
            InputBox {
                bbox: [90.0, 30.0, 20.0, 40.0],
                score: 0.9,
                class: 1,
            },
            InputBox {
                bbox: [296.0, 196.0, 8.0, 8.0],
                score: 0.6,
                class: 0,
            },
        ];
        assert_eq!(
            decode(&standard, &[1, 6, 3], 2, 0.5).expect("standard"),
            want
        );
        assert_eq!(
            decode(&transposed, &[1, 3, 6], 2, 0.5).expect("transposed"),
            want
        );
        let err = decode(&standard, &[1, 7, 3], 2, 0.5).unwrap_err();
        assert!(
            err.contains("[1, 6, N] or [1, N, 6]") && err.contains("[1, 7, 3]"),
            "{err}"
        );
    }
}
