// Versions of the peer libraries that the kernels are measured against.
#include <Eigen/Core>
#include <libxsmm_version.h>

#include <fmt/format.h>

#include "sparsebench/core/system_info.h"

namespace sb {

std::vector<LibraryVersion> extra_library_versions() {
  return {
      {"Eigen", fmt::format("{}.{}.{}", EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION)},
      {"libxsmm", fmt::format("{}.{}.{}", LIBXSMM_CONFIG_VERSION_MAJOR, LIBXSMM_CONFIG_VERSION_MINOR,
                              LIBXSMM_CONFIG_VERSION_UPDATE)},
      // XNNPACK has no version macro or call: the Debian snapshot the build is pinned to
      // (libxnnpack-dev 0.0~git20220216.ae108ef).
      {"XNNPACK", "0.0~git20220216 (Debian snapshot)"},
  };
}

}  // namespace sb
