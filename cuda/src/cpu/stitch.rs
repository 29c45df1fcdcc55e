//! The CPU stitch. Per pixel the table decides which path runs: most pixels come from one
//! camera (one bilinear sample), only the seam band blends two. The branch follows long runs of
//! the table, so it predicts well; the results equal the branch-free kernel's because
//! `blend(l, r, 255) = l` and `blend(l, r, 0) = r` exactly.

use crate::image::{KernelError, Nv12, Rgba, YuvMatrix};
use crate::stitch::{NOT_SEEN, StitchPlan, Stitcher};

/// Bilinear tap of a 12.4 fixed-point position: the four source indices and weights.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tap {
    pub(crate) x0: usize,
    pub(crate) y0: usize,
    pub(crate) x1: usize,
    pub(crate) y1: usize,
    pub(crate) w: [u32; 4],
}

#[inline(always)]
pub(crate) fn tap_of(entry: u32, w: u32, h: u32) -> Tap {
    let (x, y) = (entry & 0xFFFF, entry >> 16);
    let x0 = (x >> 4).min(w - 1);
    let y0 = (y >> 4).min(h - 1);
    let (fx, fy) = (x & 15, y & 15);
    Tap {
        x0: x0 as usize,
        y0: y0 as usize,
        x1: (x0 + 1).min(w - 1) as usize,
        y1: (y0 + 1).min(h - 1) as usize,
        w: [
            (16 - fx) * (16 - fy),
            fx * (16 - fy),
            (16 - fx) * fy,
            fx * fy,
        ],
    }
}

/// Four RGBA texels weighted, two channels per 16-bit lane (see the kernel's `bilinear_rgba`).
#[inline(always)]
pub(crate) fn bilinear_rgba(p: [u32; 4], w: [u32; 4]) -> u32 {
    let mut lo = 0u32;
    let mut hi = 0u32;
    for k in 0..4 {
        lo = lo.wrapping_add((p[k] & 0x00FF_00FF).wrapping_mul(w[k]));
        hi = hi.wrapping_add(((p[k] >> 8) & 0x00FF_00FF).wrapping_mul(w[k]));
    }
    (((lo.wrapping_add(0x0080_0080)) >> 8) & 0x00FF_00FF)
        | (hi.wrapping_add(0x0080_0080) & 0xFF00_FF00)
}

#[inline(always)]
pub(crate) fn bilinear_u8(p: [u32; 4], w: [u32; 4]) -> u32 {
    (p[0] * w[0] + p[1] * w[1] + p[2] * w[2] + p[3] * w[3] + 128) >> 8
}

/// `(l·a + r·(255 − a)) / 255` per channel, exactly rounded, alpha 255.
#[inline(always)]
pub(crate) fn blend(l: u32, r: u32, a: u32) -> u32 {
    let b = 255 - a;
    let mut lo = (l & 0x00FF_00FF) * a + (r & 0x00FF_00FF) * b + 0x0080_0080;
    let mut hi = ((l >> 8) & 0x00FF_00FF) * a + ((r >> 8) & 0x00FF_00FF) * b + 0x0080_0080;
    lo = ((lo + ((lo >> 8) & 0x00FF_00FF)) >> 8) & 0x00FF_00FF;
    hi = (hi + ((hi >> 8) & 0x00FF_00FF)) & 0xFF00_FF00;
    lo | hi | 0xFF00_0000
}

#[inline(always)]
fn sample_rgba(img: &Rgba<'_>, entry: u32) -> u32 {
    if entry == NOT_SEEN {
        return 0;
    }
    let t = tap_of(entry, img.width, img.height);
    let s = img.stride as usize;
    let (r0, r1) = (t.y0 * s, t.y1 * s);
    let px = img.pixels;
    bilinear_rgba(
        [px[r0 + t.x0], px[r0 + t.x1], px[r1 + t.x0], px[r1 + t.x1]],
        t.w,
    )
}

#[inline(always)]
fn clamp255(v: i32) -> u32 {
    v.clamp(0, 255) as u32
}

#[inline(always)]
pub(crate) fn yuv_to_rgba(y8: u32, u8_: u32, v8: u32, k: &YuvMatrix) -> u32 {
    let y = k.cy * (y8 as i32 - 16);
    let (u, v) = (u8_ as i32 - 128, v8 as i32 - 128);
    let r = clamp255((y + k.crv * v + 512) >> 10);
    let g = clamp255((y + k.cgu * u + k.cgv * v + 512) >> 10);
    let b = clamp255((y + k.cbu * u + 512) >> 10);
    r | (g << 8) | (b << 16) | 0xFF00_0000
}

#[inline(always)]
fn sample_nv12(img: &Nv12<'_>, entry: u32, k: &YuvMatrix) -> u32 {
    if entry == NOT_SEEN {
        return 0;
    }
    let t = tap_of(entry, img.width, img.height);
    let ys = img.luma_stride as usize;
    let l = img.luma;
    let luma = |x: usize, y: usize| l[y * ys + x] as u32;
    let y = bilinear_u8(
        [
            luma(t.x0, t.y0),
            luma(t.x1, t.y0),
            luma(t.x0, t.y1),
            luma(t.x1, t.y1),
        ],
        t.w,
    );
    // Chroma: x/2, (y − 0.5)/2 in the half-resolution grid, same fixed point.
    let ex = (entry & 0xFFFF) >> 1;
    let ey = ((entry >> 16) as i32 - 8).max(0) as u32 >> 1;
    let c = tap_of(ex | (ey << 16), img.width / 2, img.height / 2);
    let cs = img.chroma_stride as usize;
    let ch = img.chroma;
    let at = |x: usize, y: usize, k: usize| ch[y * cs + 2 * x + k] as u32;
    let u = bilinear_u8(
        [
            at(c.x0, c.y0, 0),
            at(c.x1, c.y0, 0),
            at(c.x0, c.y1, 0),
            at(c.x1, c.y1, 0),
        ],
        c.w,
    );
    let v = bilinear_u8(
        [
            at(c.x0, c.y0, 1),
            at(c.x1, c.y0, 1),
            at(c.x0, c.y1, 1),
            at(c.x1, c.y1, 1),
        ],
        c.w,
    );
    yuv_to_rgba(y, u, v, k)
}

/// The CPU stitcher.
#[derive(Debug, Clone)]
pub struct CpuStitcher {
    plan: StitchPlan,
    threads: usize,
}

impl CpuStitcher {
    /// A stitcher for `plan` on `threads` threads (all cores when `None`).
    pub fn new(plan: StitchPlan, threads: Option<usize>) -> Self {
        CpuStitcher {
            plan,
            threads: super::threads(threads),
        }
    }

    /// Runs `pixel(i, l_entry, r_entry, a)` for every panorama pixel, rows split over threads.
    fn run(&self, out: &mut [u32], pixel: &(dyn Fn(u32, u32, u32) -> u32 + Sync)) {
        let table = &self.plan.table;
        let width = table.panorama_size[0] as usize;
        let rows = table.panorama_size[1] as usize;
        let per = rows.div_ceil(self.threads).max(1) * width;
        let bands = out.len().div_ceil(per);
        std::thread::scope(|s| {
            for (k, chunk) in out.chunks_mut(per).enumerate() {
                let start = k * per;
                let (l, r, a) = (
                    &table.left[start..start + chunk.len()],
                    &table.right[start..start + chunk.len()],
                    &table.weight_left[start..start + chunk.len()],
                );
                let mut job = move || {
                    for (((o, &el), &er), &a) in chunk.iter_mut().zip(l).zip(r).zip(a) {
                        *o = pixel(el, er, a as u32);
                    }
                };
                if k + 1 == bands {
                    // The last band runs on the calling thread: one spawn fewer.
                    job();
                } else {
                    s.spawn(job);
                }
            }
        });
    }
}

impl Stitcher for CpuStitcher {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn stitch_rgba(
        &mut self,
        left: &Rgba<'_>,
        right: &Rgba<'_>,
        out: &mut [u32],
    ) -> Result<(), KernelError> {
        self.plan.check_rgba(left, right, out)?;
        self.run(out, &|el, er, a| match a {
            255 => sample_rgba(left, el) | 0xFF00_0000,
            0 => sample_rgba(right, er) | 0xFF00_0000,
            _ => blend(sample_rgba(left, el), sample_rgba(right, er), a),
        });
        Ok(())
    }

    fn stitch_nv12(
        &mut self,
        left: &Nv12<'_>,
        right: &Nv12<'_>,
        matrix: YuvMatrix,
        out: &mut [u32],
    ) -> Result<(), KernelError> {
        self.plan.check_nv12(left, right, out)?;
        let k = &matrix;
        self.run(out, &|el, er, a| match a {
            255 => sample_nv12(left, el, k) | 0xFF00_0000,
            0 => sample_nv12(right, er, k) | 0xFF00_0000,
            _ => blend(sample_nv12(left, el, k), sample_nv12(right, er, k), a),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straightforward per-channel statement of the arithmetic.
    fn bilinear_plain(p: [u32; 4], w: [u32; 4]) -> u32 {
        let mut out = 0;
        for c in 0..4 {
            let s: u32 = (0..4).map(|k| ((p[k] >> (8 * c)) & 255) * w[k]).sum();
            out |= ((s + 128) >> 8) << (8 * c);
        }
        out
    }

    fn blend_plain(l: u32, r: u32, a: u32) -> u32 {
        let mut out = 0xFF00_0000;
        for c in 0..3 {
            let v = ((l >> (8 * c)) & 255) * a + ((r >> (8 * c)) & 255) * (255 - a);
            out |= ((v as f64 / 255.0).round() as u32) << (8 * c);
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn lane_arithmetic_equals_per_channel_arithmetic(p in proptest::array::uniform4(proptest::num::u32::ANY), fx in 0u32..16, fy in 0u32..16, l: u32, r: u32, a in 0u32..=255) {
            let w = [(16 - fx) * (16 - fy), fx * (16 - fy), (16 - fx) * fy, fx * fy];
            proptest::prop_assert_eq!(bilinear_rgba(p, w), bilinear_plain(p, w));
            proptest::prop_assert_eq!(blend(l, r, a), blend_plain(l, r, a));
        }
    }

    #[test]
    fn full_weight_blends_are_the_source() {
        for v in [0u32, 1, 127, 128, 254, 255, 0x12_34_56, 0xFF_FF_FF] {
            assert_eq!(blend(v, 0xABCDEF, 255), v | 0xFF00_0000);
            assert_eq!(blend(0xABCDEF, v, 0), v | 0xFF00_0000);
        }
    }
}
