#pragma once
// The plane loop behind depthwise.h, included by each ISA's translation unit. Written so that the
// inner loops (contiguous for stride 1) auto-vectorize at the width the file is compiled for.
#include <algorithm>

#include "runtime/depthwise.h"

namespace sb::rt {

inline void dw_plane_impl(const float* __restrict in, const float* __restrict w, float bias, float* __restrict out,
                          const DwGeom& g) {
  for (std::int64_t oy = 0; oy < g.Ho; ++oy) {
    float* __restrict o = out + oy * g.Wo;
    for (std::int64_t ox = 0; ox < g.Wo; ++ox) o[ox] = bias;
    for (std::int64_t ky = 0; ky < g.kh; ++ky) {
      const std::int64_t iy = oy * g.sh - g.ph + ky * g.dh;
      if (iy < 0 || iy >= g.H) continue;
      const float* row = in + iy * g.W;
      for (std::int64_t kx = 0; kx < g.kw; ++kx) {
        const float wv = w[ky * g.kw + kx];
        const std::int64_t off = kx * g.dw - g.pw;
        // Output columns whose input column ox * sw + off lies inside the row.
        const std::int64_t lo = off >= 0 ? 0 : (-off + g.sw - 1) / g.sw;
        const std::int64_t hi = g.W - 1 - off < 0 ? 0 : std::min(g.Wo, (g.W - 1 - off) / g.sw + 1);
        if (g.sw == 1) {
          const float* __restrict r = row + off;
          for (std::int64_t ox = lo; ox < hi; ++ox) o[ox] += wv * r[ox];
        } else {
          for (std::int64_t ox = lo; ox < hi; ++ox) o[ox] += wv * row[ox * g.sw + off];
        }
      }
    }
    if (g.act == 1)
      for (std::int64_t ox = 0; ox < g.Wo; ++ox) o[ox] = std::max(o[ox], 0.f);
    else if (g.act == 2)
      for (std::int64_t ox = 0; ox < g.Wo; ++ox) o[ox] = std::min(std::max(o[ox], 0.f), 6.f);
  }
}

}  // namespace sb::rt
