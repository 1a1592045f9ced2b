// Depthwise plane loop, avx512 build (ISA flags: src/runtime/CMakeLists.txt).
#include "runtime/depthwise_impl.h"

namespace sb::rt {
void dw_plane_avx512(const float* in, const float* w, float bias, float* out, const DwGeom& g) {
  dw_plane_impl(in, w, bias, out, g);
}
}  // namespace sb::rt
