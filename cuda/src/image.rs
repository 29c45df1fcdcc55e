//! Frames as the kernels see them.
//!
//! RGBA8 pixels are `u32` words with red in the lowest byte (the byte order R, G, B, A in
//! memory on a little-endian machine, which every target of this project is). NV12 is a luma
//! plane and a half-resolution plane of interleaved U, V bytes. Strides may exceed the width
//! (camera buffers are often padded).

use std::borrow::Cow;

/// Why a frame or buffer cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// A buffer is too small for the sizes given.
    #[error("{what}: {got} elements, {needed} needed")]
    BufferSize {
        /// Which buffer.
        what: &'static str,
        /// Its length.
        got: usize,
        /// What the sizes need.
        needed: usize,
    },
    /// A frame does not match what the table or plan expects.
    #[error("{what}: {problem}")]
    Shape {
        /// Which frame.
        what: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The GPU failed.
    #[error("CUDA: {0}")]
    Cuda(String),
}

/// A borrowed RGBA8 frame.
#[derive(Debug, Clone, Copy)]
pub struct Rgba<'a> {
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Distance between rows, pixels (≥ width).
    pub stride: u32,
    /// The pixels.
    pub pixels: &'a [u32],
}

impl<'a> Rgba<'a> {
    /// A tightly packed frame.
    pub fn packed(width: u32, height: u32, pixels: &'a [u32]) -> Self {
        Rgba {
            width,
            height,
            stride: width,
            pixels,
        }
    }

    /// Checks that the sizes are usable and the buffer holds them.
    pub fn check(&self, what: &'static str) -> Result<(), KernelError> {
        if self.width == 0 || self.height == 0 || self.stride < self.width {
            return Err(KernelError::Shape {
                what,
                problem: format!(
                    "{}×{} with stride {} is not a frame",
                    self.width, self.height, self.stride
                ),
            });
        }
        let needed = (self.height as usize - 1) * self.stride as usize + self.width as usize;
        if self.pixels.len() < needed {
            return Err(KernelError::BufferSize {
                what,
                got: self.pixels.len(),
                needed,
            });
        }
        Ok(())
    }
}

/// A borrowed NV12 frame.
#[derive(Debug, Clone, Copy)]
pub struct Nv12<'a> {
    /// Width, pixels (even).
    pub width: u32,
    /// Height, pixels (even).
    pub height: u32,
    /// Luma row stride, bytes.
    pub luma_stride: u32,
    /// Chroma row stride, bytes (≥ width: width/2 pairs of U, V).
    pub chroma_stride: u32,
    /// Luma plane.
    pub luma: &'a [u8],
    /// Chroma plane: height/2 rows of interleaved U, V.
    pub chroma: &'a [u8],
}

impl Nv12<'_> {
    /// Checks that the sizes are usable and the buffers hold them.
    pub fn check(&self, what: &'static str) -> Result<(), KernelError> {
        let (w, h) = (self.width as usize, self.height as usize);
        if w < 2 || h < 2 || w % 2 == 1 || h % 2 == 1 {
            return Err(KernelError::Shape {
                what,
                problem: format!("NV12 needs an even size, got {w}×{h}"),
            });
        }
        if (self.luma_stride as usize) < w || (self.chroma_stride as usize) < w {
            return Err(KernelError::Shape {
                what,
                problem: format!(
                    "strides {} and {} are less than the width {w}",
                    self.luma_stride, self.chroma_stride
                ),
            });
        }
        let luma = (h - 1) * self.luma_stride as usize + w;
        let chroma = (h / 2 - 1) * self.chroma_stride as usize + w;
        if self.luma.len() < luma {
            return Err(KernelError::BufferSize {
                what,
                got: self.luma.len(),
                needed: luma,
            });
        }
        if self.chroma.len() < chroma {
            return Err(KernelError::BufferSize {
                what,
                got: self.chroma.len(),
                needed: chroma,
            });
        }
        Ok(())
    }
}

/// RGBA bytes as pixel words, without a copy when the bytes are 4-byte aligned (as every large
/// allocation is).
pub fn pixels_of(bytes: &[u8]) -> Cow<'_, [u32]> {
    match bytemuck::try_cast_slice(bytes) {
        Ok(words) => Cow::Borrowed(words),
        Err(_) => Cow::Owned(
            bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
    }
}

/// Pixel words as RGBA bytes.
pub fn bytes_of(pixels: &[u32]) -> &[u8] {
    bytemuck::cast_slice(pixels)
}

/// YUV → RGB coefficients (limited range, 10-bit fixed point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct YuvMatrix {
    /// Luma gain.
    pub cy: i32,
    /// V into red.
    pub crv: i32,
    /// U into green (negative).
    pub cgu: i32,
    /// V into green (negative).
    pub cgv: i32,
    /// U into blue.
    pub cbu: i32,
}

impl YuvMatrix {
    /// ITU-R BT.601 (standard definition, and what many CSI cameras report).
    pub const BT601: YuvMatrix = YuvMatrix {
        cy: 1192,
        crv: 1634,
        cgu: -401,
        cgv: -832,
        cbu: 2066,
    };
    /// ITU-R BT.709 (HD).
    pub const BT709: YuvMatrix = YuvMatrix {
        cy: 1192,
        crv: 1836,
        cgu: -218,
        cgv: -546,
        cbu: 2163,
    };
}
