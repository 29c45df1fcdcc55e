// The stitch: two camera frames -> one panorama, through the stitching table
// (calibration/src/lut.rs): per panorama pixel a 12.4 fixed-point source position in camera L
// and in camera R (NOT_SEEN where that camera does not see it) and the weight of L in 1/255.
//
// One thread per panorama pixel, one launch per frame. Neighbouring threads read neighbouring
// table words (the planes are separate arrays), so the table loads are coalesced; the texel
// loads follow the warp's footprint in the source. Both sources are always sampled (an unseen
// one at a clamped position, then replaced by black) so that no thread takes a different path.
#include "common.cuh"

__device__ __forceinline__ u32 sample_rgba(const u32* __restrict__ img, int w, int h, int pitch,
                                           u32 entry) {
  Tap t = tap_of(entry, w, h);
  u32 p00 = __ldg(img + t.y0 * pitch + t.x0), p10 = __ldg(img + t.y0 * pitch + t.x1);
  u32 p01 = __ldg(img + t.y1 * pitch + t.x0), p11 = __ldg(img + t.y1 * pitch + t.x1);
  u32 c = bilinear_rgba(p00, p10, p01, p11, t);
  return entry == NOT_SEEN ? 0u : c;
}

// RGBA8 sources (pitches in pixels), RGBA8 panorama.
extern "C" __global__ void stitch_rgba(const u32* __restrict__ left, int lw, int lh, int lpitch,
                                       const u32* __restrict__ right, int rw, int rh, int rpitch,
                                       const u32* __restrict__ plane_l,
                                       const u32* __restrict__ plane_r,
                                       const u8* __restrict__ weight_l, u32* __restrict__ out,
                                       int width, int height) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= width || y >= height) return;
  int i = y * width + x;
  u32 l = sample_rgba(left, lw, lh, lpitch, __ldg(plane_l + i));
  u32 r = sample_rgba(right, rw, rh, rpitch, __ldg(plane_r + i));
  out[i] = blend(l, r, (u32)__ldg(weight_l + i));
}

// Limited-range YUV -> RGB in 10-bit fixed point; the coefficients come from the host (BT.601
// or BT.709).
struct Yuv {
  int cy, crv, cgu, cgv, cbu;
};

__device__ __forceinline__ u32 clamp255(int v) { return (u32)min(max(v, 0), 255); }

__device__ __forceinline__ u32 yuv_to_rgba(u32 y8, u32 u8_, u32 v8, const Yuv& k) {
  int y = k.cy * ((int)y8 - 16), u = (int)u8_ - 128, v = (int)v8 - 128;
  u32 r = clamp255((y + k.crv * v + 512) >> 10);
  u32 g = clamp255((y + k.cgu * u + k.cgv * v + 512) >> 10);
  u32 b = clamp255((y + k.cbu * u + 512) >> 10);
  return r | (g << 8) | (b << 16) | 0xFF000000u;
}

// Luma at full resolution; chroma (interleaved U, V) at half resolution, co-sited with even luma
// columns and centred between luma rows (H.264's default siting): chroma position x/2,
// (y - 0.5)/2, in the same 12.4 fixed point.
__device__ __forceinline__ u32 sample_nv12(const u8* __restrict__ luma, int ypitch,
                                           const u8* __restrict__ chroma, int cpitch, int w, int h,
                                           u32 entry) {
  Tap t = tap_of(entry, w, h);
  u32 y = bilinear_u8(__ldg(luma + t.y0 * ypitch + t.x0), __ldg(luma + t.y0 * ypitch + t.x1),
                      __ldg(luma + t.y1 * ypitch + t.x0), __ldg(luma + t.y1 * ypitch + t.x1), t);
  u32 ex = (entry & 0xFFFFu) >> 1;
  int ey = (int)(entry >> 16) - 8;
  u32 cy_fixed = (u32)max(ey, 0) >> 1;
  Tap c = tap_of(ex | (cy_fixed << 16), w / 2, h / 2);
  const u8* c00 = chroma + c.y0 * cpitch + 2 * c.x0;
  const u8* c10 = chroma + c.y0 * cpitch + 2 * c.x1;
  const u8* c01 = chroma + c.y1 * cpitch + 2 * c.x0;
  const u8* c11 = chroma + c.y1 * cpitch + 2 * c.x1;
  u32 u = bilinear_u8(__ldg(c00), __ldg(c10), __ldg(c01), __ldg(c11), c);
  u32 v = bilinear_u8(__ldg(c00 + 1), __ldg(c10 + 1), __ldg(c01 + 1), __ldg(c11 + 1), c);
  return (u32)((y << 16) | (u << 8) | v);
}

// NV12 sources (what nvvidconv gives on the Jetson), RGBA8 panorama.
extern "C" __global__ void stitch_nv12(const u8* __restrict__ l_luma, const u8* __restrict__ l_chroma,
                                       int lw, int lh, int l_ypitch, int l_cpitch,
                                       const u8* __restrict__ r_luma, const u8* __restrict__ r_chroma,
                                       int rw, int rh, int r_ypitch, int r_cpitch,
                                       const u32* __restrict__ plane_l,
                                       const u32* __restrict__ plane_r,
                                       const u8* __restrict__ weight_l, u32* __restrict__ out,
                                       int width, int height, Yuv k) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= width || y >= height) return;
  int i = y * width + x;
  u32 el = __ldg(plane_l + i), er = __ldg(plane_r + i);
  u32 yl = sample_nv12(l_luma, l_ypitch, l_chroma, l_cpitch, lw, lh, el);
  u32 yr = sample_nv12(r_luma, r_ypitch, r_chroma, r_cpitch, rw, rh, er);
  u32 l = yuv_to_rgba(yl >> 16, (yl >> 8) & 255u, yl & 255u, k);
  u32 r = yuv_to_rgba(yr >> 16, (yr >> 8) & 255u, yr & 255u, k);
  l = el == NOT_SEEN ? 0u : l;
  r = er == NOT_SEEN ? 0u : r;
  out[i] = blend(l, r, (u32)__ldg(weight_l + i));
}
