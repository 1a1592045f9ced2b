#include "sparsebench/core/error.h"

namespace sb {
void fail(std::string message) { throw Error(std::move(message)); }
}  // namespace sb
