//! The stitch kernel's host side: the table lives on the GPU, frames go up, the panorama down.

use super::{GpuDevice, cuda_error};
use crate::image::{KernelError, Nv12, Rgba, YuvMatrix};
use crate::stitch::{StitchPlan, Stitcher};
use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};
use std::sync::Arc;

// SAFETY: `#[repr(C)]` struct of five i32, the layout of the kernel's `Yuv`.
unsafe impl DeviceRepr for YuvMatrix {}

/// Block of 128 × 2 threads: a warp covers 32 consecutive pixels of one row.
const BLOCK: (u32, u32) = (128, 2);

fn grid(width: u32, height: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (width.div_ceil(BLOCK.0), height.div_ceil(BLOCK.1), 1),
        block_dim: (BLOCK.0, BLOCK.1, 1),
        shared_mem_bytes: 0,
    }
}

/// Device buffers of one stitch.
pub struct GpuStitcher {
    device: Arc<GpuDevice>,
    plan: StitchPlan,
    plane_l: CudaSlice<u32>,
    plane_r: CudaSlice<u32>,
    weight_l: CudaSlice<u8>,
    out: CudaSlice<u32>,
    /// Source buffers, reallocated when a frame's size changes.
    sources: [Option<CudaSlice<u8>>; 4],
}

impl GpuStitcher {
    /// Uploads the table.
    pub fn new(device: Arc<GpuDevice>, plan: StitchPlan) -> Result<Self, KernelError> {
        let t = plan.table();
        let s = &device.stream;
        let plane_l = s.clone_htod(&t.left).map_err(cuda_error)?;
        let plane_r = s.clone_htod(&t.right).map_err(cuda_error)?;
        let weight_l = s.clone_htod(&t.weight_left).map_err(cuda_error)?;
        let out = s.alloc_zeros::<u32>(t.left.len()).map_err(cuda_error)?;
        Ok(GpuStitcher {
            device,
            plan,
            plane_l,
            plane_r,
            weight_l,
            out,
            sources: [None, None, None, None],
        })
    }

    /// Uploads `bytes` into source slot `k`.
    fn upload(&mut self, k: usize, bytes: &[u8]) -> Result<(), KernelError> {
        let s = &self.device.stream;
        let fits = self.sources[k]
            .as_ref()
            .is_some_and(|b| b.len() == bytes.len());
        if !fits {
            self.sources[k] = Some(s.alloc_zeros::<u8>(bytes.len()).map_err(cuda_error)?);
        }
        if let Some(buf) = self.sources[k].as_mut() {
            s.memcpy_htod(bytes, buf).map_err(cuda_error)?;
        }
        Ok(())
    }

    fn download(&self, out: &mut [u32]) -> Result<(), KernelError> {
        self.device
            .stream
            .memcpy_dtoh(&self.out, out)
            .map_err(cuda_error)?;
        self.device.synchronize()
    }

    fn source(&self, k: usize) -> Result<&CudaSlice<u8>, KernelError> {
        self.sources[k]
            .as_ref()
            .ok_or_else(|| KernelError::Cuda("source not uploaded".into()))
    }

    /// Launches the RGBA kernel on frames already uploaded (for benchmarks: no copies).
    pub fn launch_rgba(&mut self, left: [u32; 3], right: [u32; 3]) -> Result<(), KernelError> {
        let [w, h] = self.plan.size();
        let (lw, lh, lp) = (left[0] as i32, left[1] as i32, left[2] as i32);
        let (rw, rh, rp) = (right[0] as i32, right[1] as i32, right[2] as i32);
        let (width, height) = (w as i32, h as i32);
        let (l, r) = (self.source(0)?, self.source(1)?);
        let mut b = self.device.stream.launch_builder(&self.device.stitch_rgba);
        b.arg(l).arg(&lw).arg(&lh).arg(&lp);
        b.arg(r).arg(&rw).arg(&rh).arg(&rp);
        b.arg(&self.plane_l).arg(&self.plane_r).arg(&self.weight_l);
        b.arg(&self.out).arg(&width).arg(&height);
        // SAFETY: the arguments follow `stitch_rgba`'s parameter list; the sources hold
        // (h − 1)·pitch + w pixels (checked by `check_rgba` before the upload), the planes and
        // `out` hold width·height elements (allocated from the checked table).
        unsafe { b.launch(grid(w, h)) }.map_err(cuda_error)?;
        Ok(())
    }

    /// Uploads both RGBA frames.
    pub fn upload_rgba(&mut self, left: &Rgba<'_>, right: &Rgba<'_>) -> Result<(), KernelError> {
        let used = |f: &Rgba<'_>| (f.height as usize - 1) * f.stride as usize + f.width as usize;
        self.upload(0, crate::image::bytes_of(&left.pixels[..used(left)]))?;
        self.upload(1, crate::image::bytes_of(&right.pixels[..used(right)]))
    }
}

impl Stitcher for GpuStitcher {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn stitch_rgba(
        &mut self,
        left: &Rgba<'_>,
        right: &Rgba<'_>,
        out: &mut [u32],
    ) -> Result<(), KernelError> {
        self.plan.check_rgba(left, right, out)?;
        self.upload_rgba(left, right)?;
        self.launch_rgba(
            [left.width, left.height, left.stride],
            [right.width, right.height, right.stride],
        )?;
        self.download(out)
    }

    fn stitch_nv12(
        &mut self,
        left: &Nv12<'_>,
        right: &Nv12<'_>,
        matrix: YuvMatrix,
        out: &mut [u32],
    ) -> Result<(), KernelError> {
        self.plan.check_nv12(left, right, out)?;
        let luma =
            |f: &Nv12<'_>| (f.height as usize - 1) * f.luma_stride as usize + f.width as usize;
        let chroma = |f: &Nv12<'_>| {
            (f.height as usize / 2 - 1) * f.chroma_stride as usize + f.width as usize
        };
        self.upload(0, &left.luma[..luma(left)])?;
        self.upload(1, &right.luma[..luma(right)])?;
        self.upload(2, &left.chroma[..chroma(left)])?;
        self.upload(3, &right.chroma[..chroma(right)])?;
        let [w, h] = self.plan.size();
        let dims = |f: &Nv12<'_>| {
            [
                f.width as i32,
                f.height as i32,
                f.luma_stride as i32,
                f.chroma_stride as i32,
            ]
        };
        let (ld, rd) = (dims(left), dims(right));
        let (width, height) = (w as i32, h as i32);
        let (ly, ry, lc, rc) = (
            self.source(0)?,
            self.source(1)?,
            self.source(2)?,
            self.source(3)?,
        );
        let mut b = self.device.stream.launch_builder(&self.device.stitch_nv12);
        b.arg(ly)
            .arg(lc)
            .arg(&ld[0])
            .arg(&ld[1])
            .arg(&ld[2])
            .arg(&ld[3]);
        b.arg(ry)
            .arg(rc)
            .arg(&rd[0])
            .arg(&rd[1])
            .arg(&rd[2])
            .arg(&rd[3]);
        b.arg(&self.plane_l).arg(&self.plane_r).arg(&self.weight_l);
        b.arg(&self.out).arg(&width).arg(&height).arg(&matrix);
        // SAFETY: the arguments follow `stitch_nv12`'s parameter list; the planes were checked
        // by `check_nv12` and uploaded whole; the table buffers hold width·height elements.
        unsafe { b.launch(grid(w, h)) }.map_err(cuda_error)?;
        self.download(out)
    }
}
