#pragma once
// Small files that several processes may read while one writes (the plan cache, the CPUs'
// core-to-core reference): written whole to a temporary next to the target, then renamed over
// it, so that a reader sees the old file or the new one, never half of one.
#include <string>

namespace sb {

// Creates the parent folders. False (and nothing left behind) when the file cannot be written;
// callers whose file is only a cache carry on without it.
bool write_file_atomically(const std::string& path, const std::string& text);

}  // namespace sb
