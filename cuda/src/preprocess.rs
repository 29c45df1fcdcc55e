//! Detector preprocessing: tiles of the panorama → a batched, normalised, planar tensor.
//!
//! For each tile (a rectangle of the panorama) the output is one `3 × S × S` block of an
//! `N × 3 × S × S` tensor: the crop resized with its aspect kept to fit the square, centred, the
//! border filled with the pad colour; every value `(v / 255 − mean) · (1 / std)` per channel.
//! Resizing is bilinear with half-pixel centres (OpenCV's `INTER_LINEAR`), in `f32`:
//!
//! ```text
//! sx = ((ox − left) + 0.5) · (w / placed_w) − 0.5, clamped to the crop   (same for y)
//! top = a·(1 − fx) + b·fx;  bottom = c·(1 − fx) + d·fx;  v = top·(1 − fy) + bottom·fy
//! ```
//!
//! evaluated in that order without fused multiply-adds on both backends, so FP32 outputs agree
//! bit for bit; FP16 is the round-to-nearest-even of the same `f32`.

use crate::image::{KernelError, Rgba};

/// A tile's placement in the square, computed once per tile shape.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct TilePlacement {
    /// Crop: left, top, width, height (panorama pixels).
    pub crop: [i32; 4],
    /// Placed image inside the square: left, top, width, height.
    pub placed: [i32; 4],
    /// Source pixels per output pixel, x and y.
    pub step: [f32; 2],
}

impl TilePlacement {
    /// Letterboxes the crop `[x, y, w, h]` into a `size × size` square.
    pub fn letterbox(crop: [u32; 4], size: u32) -> Self {
        let [x, y, w, h] = crop;
        let scale = (size as f64 / w as f64).min(size as f64 / h as f64);
        let pw = ((w as f64 * scale).round() as u32).clamp(1, size);
        let ph = ((h as f64 * scale).round() as u32).clamp(1, size);
        TilePlacement {
            crop: [x as i32, y as i32, w as i32, h as i32],
            placed: [
                ((size - pw) / 2) as i32,
                ((size - ph) / 2) as i32,
                pw as i32,
                ph as i32,
            ],
            step: [w as f32 / pw as f32, h as f32 / ph as f32],
        }
    }
}

/// Per-channel normalisation, and the fill of the letterbox border.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct Normalisation {
    /// Mean of R, G, B on the 0–1 scale.
    pub mean: [f32; 3],
    /// 1 / standard deviation of R, G, B.
    pub inv_std: [f32; 3],
    /// The border, already normalised.
    pub pad: [f32; 3],
}

impl Normalisation {
    /// `(v/255 − mean)/std`, border of grey `pad` (0–255, YOLO uses 114).
    pub fn new(mean: [f32; 3], std: [f32; 3], pad: u8) -> Self {
        let inv_std = std.map(|s| 1.0 / s);
        let mut n = Normalisation {
            mean,
            inv_std,
            pad: [0.0; 3],
        };
        for c in 0..3 {
            n.pad[c] = (pad as f32 * (1.0f32 / 255.0) - mean[c]) * inv_std[c];
        }
        n
    }

    /// YOLO's: values 0–1, border 114.
    pub fn yolo() -> Self {
        Normalisation::new([0.0; 3], [1.0; 3], 114)
    }
}

/// The tensor to fill.
#[derive(Debug)]
pub enum TensorOut<'a> {
    /// 32-bit floats.
    F32(&'a mut [f32]),
    /// 16-bit floats, as their bit patterns.
    F16(&'a mut [u16]),
}

impl TensorOut<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            TensorOut::F32(v) => v.len(),
            TensorOut::F16(v) => v.len(),
        }
    }
}

/// Checks tiles against the frame and the output size.
pub(crate) fn check(
    img: &Rgba<'_>,
    tiles: &[TilePlacement],
    size: u32,
    out_len: usize,
) -> Result<(), KernelError> {
    img.check("panorama")?;
    if size == 0 || size > 8192 {
        return Err(KernelError::Shape {
            what: "tensor",
            problem: format!("square size {size} is outside 1–8192"),
        });
    }
    for (i, t) in tiles.iter().enumerate() {
        let [x, y, w, h] = t.crop;
        if x < 0
            || y < 0
            || w < 1
            || h < 1
            || (x + w) as u32 > img.width
            || (y + h) as u32 > img.height
        {
            return Err(KernelError::Shape {
                what: "tile",
                problem: format!(
                    "tiles[{i}] crop {:?} is not inside the {}×{} panorama",
                    t.crop, img.width, img.height
                ),
            });
        }
        let [px, py, pw, ph] = t.placed;
        if px < 0 || py < 0 || pw < 1 || ph < 1 || px + pw > size as i32 || py + ph > size as i32 {
            return Err(KernelError::Shape {
                what: "tile",
                problem: format!(
                    "tiles[{i}] placement {:?} is not inside the {size}² square",
                    t.placed
                ),
            });
        }
    }
    let needed = tiles.len() * 3 * size as usize * size as usize;
    if out_len != needed {
        return Err(KernelError::BufferSize {
            what: "tensor",
            got: out_len,
            needed,
        });
    }
    Ok(())
}

/// A preprocessing implementation: the CPU reference or the CUDA kernel.
pub trait Preprocessor: Send {
    /// Which one.
    fn name(&self) -> &'static str;
    /// Fills `out` (`tiles.len() × 3 × size × size`) from `img`.
    fn run(
        &mut self,
        img: &Rgba<'_>,
        tiles: &[TilePlacement],
        norm: &Normalisation,
        size: u32,
        out: TensorOut<'_>,
    ) -> Result<(), KernelError>;
}
