// Detector preprocessing: crop tiles of the panorama, letterbox each into an S x S square
// (aspect kept, centred, the rest filled), normalise ((v / 255 - mean) / std per channel) and
// write a batched planar tensor N x 3 x S x S, as FP32 or FP16.
//
// One thread per output pixel of one tile: it reads one bilinear RGBA sample and writes three
// planes, so neighbouring threads write neighbouring words of each plane (coalesced). The
// arithmetic is plain float in a fixed order, compiled without fused multiply-add
// (--fmad=false), which makes the result bit-identical to the CPU reference; FP16 is the
// round-to-nearest-even of that float, as on the CPU.
#include "common.cuh"

// Where one tile goes: the crop in the panorama and its letterbox in the square.
struct Tile {
  int x, y, w, h;        // crop, panorama pixels
  int ox, oy, ow, oh;    // placed image inside the S x S square
  float sx, sy;          // source pixels per output pixel (w / ow, h / oh)
};

struct Norm {
  float mean[3];
  float inv_std[3];
  float pad[3];          // already normalised
};

__device__ __forceinline__ float lerp_channel(u32 p0, u32 p1, int shift, float fx) {
  float a = (float)((p0 >> shift) & 255u), b = (float)((p1 >> shift) & 255u);
  return a * (1.0f - fx) + b * fx;
}

__device__ __forceinline__ void sample(const u32* __restrict__ img, int pitch, const Tile& t,
                                       int ox, int oy, float out[3]) {
  // Half-pixel centres, as OpenCV's INTER_LINEAR; clamped to the crop.
  float fxs = ((float)(ox - t.ox) + 0.5f) * t.sx - 0.5f;
  float fys = ((float)(oy - t.oy) + 0.5f) * t.sy - 0.5f;
  fxs = fminf(fmaxf(fxs, 0.0f), (float)(t.w - 1));
  fys = fminf(fmaxf(fys, 0.0f), (float)(t.h - 1));
  int x0 = (int)fxs, y0 = (int)fys;
  int x1 = min(x0 + 1, t.w - 1), y1 = min(y0 + 1, t.h - 1);
  float fx = fxs - (float)x0, fy = fys - (float)y0;
  const u32* r0 = img + (t.y + y0) * pitch + t.x;
  const u32* r1 = img + (t.y + y1) * pitch + t.x;
  u32 p00 = __ldg(r0 + x0), p10 = __ldg(r0 + x1), p01 = __ldg(r1 + x0), p11 = __ldg(r1 + x1);
  for (int c = 0; c < 3; ++c) {
    float top = lerp_channel(p00, p10, 8 * c, fx);
    float bottom = lerp_channel(p01, p11, 8 * c, fx);
    out[c] = top * (1.0f - fy) + bottom * fy;
  }
}

__device__ __forceinline__ void pixel(const u32* __restrict__ img, int pitch,
                                      const Tile* __restrict__ tiles, const Norm& n, int s,
                                      int ox, int oy, int tile, float v[3]) {
  Tile t = tiles[tile];
  bool inside = ox >= t.ox && ox < t.ox + t.ow && oy >= t.oy && oy < t.oy + t.oh;
  float raw[3];
  sample(img, pitch, t, inside ? ox : t.ox, inside ? oy : t.oy, raw);
  for (int c = 0; c < 3; ++c) {
    float norm = (raw[c] * (1.0f / 255.0f) - n.mean[c]) * n.inv_std[c];
    v[c] = inside ? norm : n.pad[c];
  }
}

extern "C" __global__ void preprocess_f32(const u32* __restrict__ img, int pitch,
                                          const Tile* __restrict__ tiles, Norm n, int s,
                                          float* __restrict__ out) {
  int ox = blockIdx.x * blockDim.x + threadIdx.x;
  int oy = blockIdx.y;
  int tile = blockIdx.z;
  if (ox >= s) return;
  float v[3];
  pixel(img, pitch, tiles, n, s, ox, oy, tile, v);
  size_t plane = (size_t)s * s;
  size_t at = (size_t)tile * 3 * plane + (size_t)oy * s + ox;
  out[at] = v[0];
  out[at + plane] = v[1];
  out[at + 2 * plane] = v[2];
}

__device__ __forceinline__ u16 to_half(float f) {
  u16 h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

extern "C" __global__ void preprocess_f16(const u32* __restrict__ img, int pitch,
                                          const Tile* __restrict__ tiles, Norm n, int s,
                                          u16* __restrict__ out) {
  int ox = blockIdx.x * blockDim.x + threadIdx.x;
  int oy = blockIdx.y;
  int tile = blockIdx.z;
  if (ox >= s) return;
  float v[3];
  pixel(img, pitch, tiles, n, s, ox, oy, tile, v);
  size_t plane = (size_t)s * s;
  size_t at = (size_t)tile * 3 * plane + (size_t)oy * s + ox;
  out[at] = to_half(v[0]);
  out[at + plane] = to_half(v[1]);
  out[at + 2 * plane] = to_half(v[2]);
}
