//! The stitch: two camera frames → one panorama through a stitching table.
//!
//! The table format is `polyvision_calibration::lut` (12.4 fixed-point source positions, the
//! weight of camera L in 1/255). What every backend computes, per panorama pixel:
//!
//! 1. for each camera, the bilinear sample at the table's position: the four neighbours (the
//!    right and lower ones clamped to the image) weighted by `(16 − fx)(16 − fy)`, `fx(16 − fy)`,
//!    `(16 − fx)fy`, `fx·fy`, which sum to 256, and `(sum + 128) >> 8` per channel; a camera
//!    whose entry is "not seen" contributes black;
//! 2. `(l·a + r·(255 − a))/255` per channel, rounded exactly (Blinn's `(t + (t >> 8)) >> 8`
//!    with `t = v + 128`), alpha 255.
//!
//! All integer: the CPU reference and the CUDA kernel give the same bytes.
//!
//! NV12 sources are sampled in YUV (luma at full resolution, chroma at half resolution with
//! H.264's default siting) and converted with a limited-range matrix ([`YuvMatrix`]).

use crate::image::{KernelError, Nv12, Rgba, YuvMatrix};
use polyvision_calibration::StitchTable;
use std::sync::Arc;

pub use polyvision_calibration::lut::NOT_SEEN;

/// A stitching table checked and ready for a backend.
#[derive(Debug, Clone)]
pub struct StitchPlan {
    pub(crate) table: Arc<StitchTable>,
}

impl StitchPlan {
    /// Checks the table's planes against its sizes.
    pub fn new(table: Arc<StitchTable>) -> Result<Self, KernelError> {
        let [w, h] = table.panorama_size;
        let n = w as usize * h as usize;
        for (what, len) in [
            ("table plane L", table.left.len()),
            ("table plane R", table.right.len()),
            ("table plane A", table.weight_left.len()),
        ] {
            if len != n {
                return Err(KernelError::BufferSize {
                    what,
                    got: len,
                    needed: n,
                });
            }
        }
        for (what, [sw, sh]) in [
            ("camera L", table.left_size),
            ("camera R", table.right_size),
        ] {
            if sw == 0 || sh == 0 {
                return Err(KernelError::Shape {
                    what,
                    problem: "the table gives it no size".into(),
                });
            }
        }
        Ok(StitchPlan { table })
    }

    /// Panorama width and height.
    pub fn size(&self) -> [u32; 2] {
        self.table.panorama_size
    }

    /// The table.
    pub fn table(&self) -> &StitchTable {
        &self.table
    }

    pub(crate) fn check_rgba(
        &self,
        left: &Rgba<'_>,
        right: &Rgba<'_>,
        out: &[u32],
    ) -> Result<(), KernelError> {
        left.check("camera L")?;
        right.check("camera R")?;
        self.check_sizes([left.width, left.height], [right.width, right.height])?;
        self.check_out(out)
    }

    pub(crate) fn check_nv12(
        &self,
        left: &Nv12<'_>,
        right: &Nv12<'_>,
        out: &[u32],
    ) -> Result<(), KernelError> {
        left.check("camera L")?;
        right.check("camera R")?;
        self.check_sizes([left.width, left.height], [right.width, right.height])?;
        self.check_out(out)
    }

    /// The frames must be the sizes the table was made for.
    fn check_sizes(&self, left: [u32; 2], right: [u32; 2]) -> Result<(), KernelError> {
        for (what, frame, size) in [
            ("camera L", left, self.table.left_size),
            ("camera R", right, self.table.right_size),
        ] {
            if frame != size {
                return Err(KernelError::Shape {
                    what,
                    problem: format!(
                        "frame is {}×{}, the table was made for {}×{}",
                        frame[0], frame[1], size[0], size[1]
                    ),
                });
            }
        }
        Ok(())
    }

    fn check_out(&self, out: &[u32]) -> Result<(), KernelError> {
        let [w, h] = self.table.panorama_size;
        let needed = w as usize * h as usize;
        if out.len() != needed {
            return Err(KernelError::BufferSize {
                what: "panorama",
                got: out.len(),
                needed,
            });
        }
        Ok(())
    }
}

/// A stitch implementation: the CPU reference or the CUDA kernel.
pub trait Stitcher: Send {
    /// Which one, for logs and benchmarks.
    fn name(&self) -> &'static str;
    /// Stitches RGBA8 frames into `out` (panorama width × height words).
    fn stitch_rgba(
        &mut self,
        left: &Rgba<'_>,
        right: &Rgba<'_>,
        out: &mut [u32],
    ) -> Result<(), KernelError>;
    /// Stitches NV12 frames into an RGBA8 panorama.
    fn stitch_nv12(
        &mut self,
        left: &Nv12<'_>,
        right: &Nv12<'_>,
        matrix: YuvMatrix,
        out: &mut [u32],
    ) -> Result<(), KernelError>;
}
