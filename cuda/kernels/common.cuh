// Integer helpers shared by the kernels. The CPU references in src/ use the same arithmetic,
// operation for operation, so that both give identical bytes.
#pragma once

typedef unsigned int u32;
typedef unsigned char u8;
typedef unsigned short u16;

// Table entry meaning "this camera does not see the pixel".
#define NOT_SEEN 0xFFFFFFFFu
// Fractional bits of table coordinates (calibration/src/lut.rs).
#define FRACTION_BITS 4

// Bilinear weights of a 12.4 fixed-point position: they sum to 256.
struct Tap {
  int x0, y0, x1, y1;
  u32 w00, w10, w01, w11;
};

__device__ __forceinline__ Tap tap_of(u32 entry, int w, int h) {
  int x = (int)(entry & 0xFFFFu), y = (int)(entry >> 16);
  Tap t;
  t.x0 = min(x >> FRACTION_BITS, w - 1);
  t.y0 = min(y >> FRACTION_BITS, h - 1);
  t.x1 = min(t.x0 + 1, w - 1);
  t.y1 = min(t.y0 + 1, h - 1);
  u32 fx = (u32)(x & 15), fy = (u32)(y & 15);
  t.w00 = (16 - fx) * (16 - fy);
  t.w10 = fx * (16 - fy);
  t.w01 = (16 - fx) * fy;
  t.w11 = fx * fy;
  return t;
}

// Weighted sum of four RGBA8 texels, two channels per 32-bit lane pair: each 16-bit lane holds
// at most 255 * 256, so no carry crosses lanes. Returns (sum + 128) >> 8 per channel.
__device__ __forceinline__ u32 bilinear_rgba(u32 p00, u32 p10, u32 p01, u32 p11, const Tap& t) {
  u32 lo = (p00 & 0x00FF00FFu) * t.w00 + (p10 & 0x00FF00FFu) * t.w10 +
           (p01 & 0x00FF00FFu) * t.w01 + (p11 & 0x00FF00FFu) * t.w11;
  u32 hi = ((p00 >> 8) & 0x00FF00FFu) * t.w00 + ((p10 >> 8) & 0x00FF00FFu) * t.w10 +
           ((p01 >> 8) & 0x00FF00FFu) * t.w01 + ((p11 >> 8) & 0x00FF00FFu) * t.w11;
  return (((lo + 0x00800080u) >> 8) & 0x00FF00FFu) | ((hi + 0x00800080u) & 0xFF00FF00u);
}

// Weighted sum of four 8-bit samples, rounded.
__device__ __forceinline__ u32 bilinear_u8(u32 p00, u32 p10, u32 p01, u32 p11, const Tap& t) {
  return (p00 * t.w00 + p10 * t.w10 + p01 * t.w01 + p11 * t.w11 + 128u) >> 8;
}

// l·a + r·(255 − a), divided by 255 with exact rounding (Blinn), per channel, alpha forced to
// 255. Lanes hold at most 255 · 255 + 128 + 254 < 65536.
__device__ __forceinline__ u32 blend(u32 l, u32 r, u32 a) {
  u32 b = 255u - a;
  u32 lo = (l & 0x00FF00FFu) * a + (r & 0x00FF00FFu) * b + 0x00800080u;
  u32 hi = ((l >> 8) & 0x00FF00FFu) * a + ((r >> 8) & 0x00FF00FFu) * b + 0x00800080u;
  lo = ((lo + ((lo >> 8) & 0x00FF00FFu)) >> 8) & 0x00FF00FFu;
  hi = (hi + ((hi >> 8) & 0x00FF00FFu)) & 0xFF00FF00u;
  return lo | hi | 0xFF000000u;
}
