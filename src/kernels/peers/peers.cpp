// Peer sparse libraries (Eigen, libxsmm, XNNPACK, libtorch): compared, never dispatched.
#include "kernels/internal.h"

namespace sb::detail {
void register_peers(SpmmRegistry&) {}
}  // namespace sb::detail
