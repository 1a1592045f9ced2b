// Versions of the peer libraries that the kernels are measured against.
#include <Eigen/Core>

#include <fmt/format.h>

#include "sparsebench/core/system_info.h"

namespace sb {

std::vector<LibraryVersion> extra_library_versions() {
  return {{"Eigen", fmt::format("{}.{}.{}", EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION)}};
}

}  // namespace sb
