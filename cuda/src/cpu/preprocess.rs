//! The CPU preprocessing. Resizing is separable: each output row blends two source rows that
//! were first interpolated horizontally, and those horizontal rows are kept while consecutive
//! output rows share them. The vertical blend, normalisation and the three plane writes then
//! run over contiguous `f32` arrays, which the compiler vectorises.

use crate::image::{KernelError, Rgba};
use crate::preprocess::{Normalisation, Preprocessor, TensorOut, TilePlacement, check};

/// Where each output column samples: left index, right index, fraction.
struct Columns {
    x0: Vec<usize>,
    x1: Vec<usize>,
    fx: Vec<f32>,
}

fn coordinate(o: i32, placed_start: i32, step: f32, extent: i32) -> (usize, usize, f32) {
    let s = ((o - placed_start) as f32 + 0.5) * step - 0.5;
    let s = s.max(0.0).min((extent - 1) as f32);
    let i0 = s as i32;
    let i1 = (i0 + 1).min(extent - 1);
    (i0 as usize, i1 as usize, s - i0 as f32)
}

fn columns(t: &TilePlacement) -> Columns {
    let [px, _, pw, _] = t.placed;
    let mut c = Columns {
        x0: Vec::with_capacity(pw as usize),
        x1: Vec::with_capacity(pw as usize),
        fx: Vec::with_capacity(pw as usize),
    };
    for ox in px..px + pw {
        let (x0, x1, fx) = coordinate(ox, px, t.step[0], t.crop[2]);
        c.x0.push(x0);
        c.x1.push(x1);
        c.fx.push(fx);
    }
    c
}

/// One source row interpolated horizontally: three channel arrays of the placed width. The row
/// is first unpacked into three `f32` arrays (a vectorised pass), then each output column
/// reads its two neighbours from them.
fn horizontal(
    img: &Rgba<'_>,
    t: &TilePlacement,
    cols: &Columns,
    row: usize,
    unpacked: &mut [Vec<f32>; 3],
    out: &mut [Vec<f32>; 3],
) {
    let base = (t.crop[1] as usize + row) * img.stride as usize + t.crop[0] as usize;
    let src = &img.pixels[base..base + t.crop[2] as usize];
    for (c, plane) in unpacked.iter_mut().enumerate() {
        let shift = 8 * c as u32;
        for (d, &p) in plane[..src.len()].iter_mut().zip(src) {
            *d = ((p >> shift) & 255) as f32;
        }
    }
    let n = cols.fx.len();
    for (plane, dst) in unpacked.iter().zip(out.iter_mut()) {
        let plane = &plane[..src.len()];
        for ((d, (&x0, &x1)), &fx) in dst[..n]
            .iter_mut()
            .zip(cols.x0.iter().zip(&cols.x1))
            .zip(&cols.fx)
        {
            *d = plane[x0] * (1.0 - fx) + plane[x1] * fx;
        }
    }
}

/// An output element type: `f32`, or `u16` holding FP16 bits.
trait Element: Copy + Send {
    fn store(dst: &mut [Self], src: &[f32]);
    fn fill(dst: &mut [Self], v: f32);
}

impl Element for f32 {
    fn store(dst: &mut [f32], src: &[f32]) {
        dst.copy_from_slice(src);
    }
    fn fill(dst: &mut [f32], v: f32) {
        dst.fill(v);
    }
}

impl Element for u16 {
    fn store(dst: &mut [u16], src: &[f32]) {
        use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
        let halves: &mut [half::f16] = dst.reinterpret_cast_mut();
        halves.convert_from_f32_slice(src);
    }
    fn fill(dst: &mut [u16], v: f32) {
        dst.fill(half::f16::from_f32(v).to_bits());
    }
}

/// One output row of one tile: its three plane rows.
struct RowJob<'a, T> {
    tile: usize,
    oy: usize,
    planes: [&'a mut [T]; 3],
}

/// Per-thread state: the two cached horizontal rows and a row of values.
struct Worker {
    cache: [(usize, usize, [Vec<f32>; 3]); 2],
    unpacked: [Vec<f32>; 3],
    line: Vec<f32>,
}

impl Worker {
    fn new(size: usize, widest: usize) -> Self {
        let row = || std::array::from_fn(|_| vec![0.0f32; size]);
        Worker {
            cache: [
                (usize::MAX, usize::MAX, row()),
                (usize::MAX, usize::MAX, row()),
            ],
            unpacked: std::array::from_fn(|_| vec![0.0f32; widest]),
            line: vec![0.0; size],
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn row<T: Element>(
        &mut self,
        img: &Rgba<'_>,
        t: &TilePlacement,
        tile: usize,
        cols: &Columns,
        norm: &Normalisation,
        oy: usize,
        planes: [&mut [T]; 3],
    ) {
        let [px, py, pw, ph] = t.placed.map(|v| v as usize);
        if oy < py || oy >= py + ph {
            for (c, p) in planes.into_iter().enumerate() {
                T::fill(p, norm.pad[c]);
            }
            return;
        }
        let (y0, y1, fy) = coordinate(oy as i32, py as i32, t.step[1], t.crop[3]);
        // Keep the horizontal rows this output row needs (keyed by tile and source row).
        for want in [y0, y1] {
            let hit = |e: &(usize, usize, [Vec<f32>; 3])| e.0 == tile && e.1 == want;
            if !hit(&self.cache[0]) && !hit(&self.cache[1]) {
                let needed =
                    |e: &(usize, usize, [Vec<f32>; 3])| e.0 == tile && (e.1 == y0 || e.1 == y1);
                let slot = if needed(&self.cache[0]) { 1 } else { 0 };
                horizontal(
                    img,
                    t,
                    cols,
                    want,
                    &mut self.unpacked,
                    &mut self.cache[slot].2,
                );
                self.cache[slot].0 = tile;
                self.cache[slot].1 = want;
            }
        }
        let find = |y: usize| {
            if self.cache[0].0 == tile && self.cache[0].1 == y {
                0
            } else {
                1
            }
        };
        let (top, bottom) = (find(y0), find(y1));
        let scale = 1.0f32 / 255.0;
        for (c, dst) in planes.into_iter().enumerate() {
            let (mean, inv) = (norm.mean[c], norm.inv_std[c]);
            let line = &mut self.line[..pw];
            let (a, b) = (&self.cache[top].2[c][..pw], &self.cache[bottom].2[c][..pw]);
            for ((d, &a), &b) in line.iter_mut().zip(a).zip(b) {
                let v = a * (1.0 - fy) + b * fy;
                *d = (v * scale - mean) * inv;
            }
            T::fill(&mut dst[..px], norm.pad[c]);
            T::store(&mut dst[px..px + pw], line);
            T::fill(&mut dst[px + pw..], norm.pad[c]);
        }
    }
}

/// Fills the tensor: all rows of all tiles, split into one contiguous run per thread.
fn fill<T: Element>(
    threads: usize,
    img: &Rgba<'_>,
    tiles: &[TilePlacement],
    norm: &Normalisation,
    size: usize,
    out: &mut [T],
) {
    let cols: Vec<Columns> = tiles.iter().map(columns).collect();
    let widest = tiles.iter().map(|t| t.crop[2] as usize).max().unwrap_or(0);
    // Rows of the output, grouped per (tile, oy) across the three planes.
    let mut jobs: Vec<RowJob<'_, T>> = Vec::with_capacity(tiles.len() * size);
    for (tile, block) in out.chunks_mut(3 * size * size).enumerate() {
        let mut planes = block.chunks_mut(size * size);
        let (Some(a), Some(b), Some(c)) = (planes.next(), planes.next(), planes.next()) else {
            continue;
        };
        for (oy, ((a, b), c)) in a
            .chunks_mut(size)
            .zip(b.chunks_mut(size))
            .zip(c.chunks_mut(size))
            .enumerate()
        {
            jobs.push(RowJob {
                tile,
                oy,
                planes: [a, b, c],
            });
        }
    }
    let per = jobs.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let mut rest = jobs;
        while !rest.is_empty() {
            let tail = rest.split_off(per.min(rest.len()));
            let band = std::mem::replace(&mut rest, tail);
            let cols = &cols;
            let work = move || {
                let mut worker = Worker::new(size, widest);
                for job in band {
                    let t = &tiles[job.tile];
                    worker.row(img, t, job.tile, &cols[job.tile], norm, job.oy, job.planes);
                }
            };
            if rest.is_empty() {
                work();
            } else {
                s.spawn(work);
            }
        }
    });
}

/// The CPU preprocessor.
#[derive(Debug, Clone)]
pub struct CpuPreprocessor {
    threads: usize,
}

impl CpuPreprocessor {
    /// On `threads` threads (all cores when `None`).
    pub fn new(threads: Option<usize>) -> Self {
        CpuPreprocessor {
            threads: super::threads(threads),
        }
    }
}

impl Preprocessor for CpuPreprocessor {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn run(
        &mut self,
        img: &Rgba<'_>,
        tiles: &[TilePlacement],
        norm: &Normalisation,
        size: u32,
        out: TensorOut<'_>,
    ) -> Result<(), KernelError> {
        check(img, tiles, size, out.len())?;
        let size = size as usize;
        match out {
            TensorOut::F32(out) => fill(self.threads, img, tiles, norm, size, out),
            TensorOut::F16(out) => fill(self.threads, img, tiles, norm, size, out),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_tiles_are_named() {
        let pixels = vec![0u32; 100 * 50];
        let img = Rgba::packed(100, 50, &pixels);
        let mut out = vec![0.0f32; 3 * 32 * 32];
        let err = CpuPreprocessor::new(Some(1))
            .run(
                &img,
                &[TilePlacement::letterbox([90, 0, 20, 20], 32)],
                &Normalisation::yolo(),
                32,
                TensorOut::F32(&mut out),
            )
            .unwrap_err();
        assert!(err.to_string().contains("tiles[0]"), "{err}");
    }
}
