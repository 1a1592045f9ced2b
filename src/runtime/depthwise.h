#pragma once
// The direct depthwise convolution of one (channel, image) plane, compiled once per ISA
// (depthwise_<isa>.cpp carry the ISA flags; the executor picks by sb::max_isa() at run time).
#include <cstdint>

namespace sb::rt {

struct DwGeom {
  std::int64_t H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw;
  int act;  // 0 none, 1 relu, 2 relu6
};

using DwPlaneFn = void (*)(const float* in, const float* w, float bias, float* out, const DwGeom& g);
void dw_plane_scalar(const float* in, const float* w, float bias, float* out, const DwGeom& g);
void dw_plane_avx2(const float* in, const float* w, float bias, float* out, const DwGeom& g);
void dw_plane_avx512(const float* in, const float* w, float bias, float* out, const DwGeom& g);

}  // namespace sb::rt
