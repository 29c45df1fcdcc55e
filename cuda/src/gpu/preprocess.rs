//! The preprocessing kernel's host side.

use super::{GpuDevice, cuda_error};
use crate::image::{KernelError, Rgba};
use crate::preprocess::{Normalisation, Preprocessor, TensorOut, TilePlacement, check};
use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};
use std::sync::Arc;

// SAFETY: `#[repr(C)]` structs of i32/f32 with the layouts of the kernel's `Tile` and `Norm`.
unsafe impl DeviceRepr for TilePlacement {}
unsafe impl DeviceRepr for Normalisation {}
// SAFETY: all-zero bits are a valid (empty) placement.
unsafe impl cudarc::driver::ValidAsZeroBits for TilePlacement {}

/// Device buffers of the preprocessing.
pub struct GpuPreprocessor {
    device: Arc<GpuDevice>,
    image: Option<CudaSlice<u32>>,
    tiles: Option<CudaSlice<TilePlacement>>,
    out_f32: Option<CudaSlice<f32>>,
    out_f16: Option<CudaSlice<u16>>,
}

impl GpuPreprocessor {
    /// Buffers are allocated on first use and kept while sizes stay the same.
    pub fn new(device: Arc<GpuDevice>) -> Self {
        GpuPreprocessor {
            device,
            image: None,
            tiles: None,
            out_f32: None,
            out_f16: None,
        }
    }
}

fn ensure<T: DeviceRepr + cudarc::driver::ValidAsZeroBits>(
    slot: &mut Option<CudaSlice<T>>,
    device: &GpuDevice,
    len: usize,
) -> Result<(), KernelError> {
    if slot.as_ref().is_none_or(|s| s.len() != len) {
        *slot = Some(device.stream.alloc_zeros::<T>(len).map_err(cuda_error)?);
    }
    Ok(())
}

impl Preprocessor for GpuPreprocessor {
    fn name(&self) -> &'static str {
        "cuda"
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
        if tiles.is_empty() {
            return Ok(());
        }
        let device = self.device.clone();
        let s = &device.stream;
        let used = (img.height as usize - 1) * img.stride as usize + img.width as usize;
        ensure(&mut self.image, &device, used)?;
        ensure(&mut self.tiles, &device, tiles.len())?;
        let (Some(image), Some(dev_tiles)) = (self.image.as_mut(), self.tiles.as_mut()) else {
            return Err(KernelError::Cuda("buffers missing".into()));
        };
        s.memcpy_htod(&img.pixels[..used], image)
            .map_err(cuda_error)?;
        s.memcpy_htod(tiles, dev_tiles).map_err(cuda_error)?;
        let (pitch, side) = (img.stride as i32, size as i32);
        let cfg = LaunchConfig {
            grid_dim: (size.div_ceil(128), size, tiles.len() as u32),
            block_dim: (128, 1, 1),
            shared_mem_bytes: 0,
        };
        let (image, dev_tiles) = (&*image, &*dev_tiles);
        match out {
            TensorOut::F32(host) => {
                ensure(&mut self.out_f32, &device, host.len())?;
                let dev = self
                    .out_f32
                    .as_mut()
                    .ok_or_else(|| KernelError::Cuda("no output".into()))?;
                let mut b = s.launch_builder(&device.preprocess_f32);
                b.arg(image)
                    .arg(&pitch)
                    .arg(dev_tiles)
                    .arg(norm)
                    .arg(&side)
                    .arg(&mut *dev);
                // SAFETY: arguments follow `preprocess_f32`; `check` validated every crop
                // against the frame (uploaded whole) and the output holds N·3·S·S floats.
                unsafe { b.launch(cfg) }.map_err(cuda_error)?;
                s.memcpy_dtoh(&*dev, host).map_err(cuda_error)?;
            }
            TensorOut::F16(host) => {
                ensure(&mut self.out_f16, &device, host.len())?;
                let dev = self
                    .out_f16
                    .as_mut()
                    .ok_or_else(|| KernelError::Cuda("no output".into()))?;
                let mut b = s.launch_builder(&device.preprocess_f16);
                b.arg(image)
                    .arg(&pitch)
                    .arg(dev_tiles)
                    .arg(norm)
                    .arg(&side)
                    .arg(&mut *dev);
                // SAFETY: as above, with N·3·S·S halves.
                unsafe { b.launch(cfg) }.map_err(cuda_error)?;
                s.memcpy_dtoh(&*dev, host).map_err(cuda_error)?;
            }
        }
        device.synchronize()
    }
}
