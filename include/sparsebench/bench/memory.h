#pragma once
// Resident memory of this process (Linux /proc).
#include <cstddef>
#include <optional>

namespace sb {

// Resets the kernel's peak-RSS mark (VmHWM) to the current RSS by writing "5" to
// /proc/self/clear_refs (Linux >= 4.0), so that a later peak_rss_bytes() covers only what ran in
// between. Returns false when the file cannot be written (the peak then covers the whole process).
bool reset_peak_rss();

// VmHWM of /proc/self/status (bytes), else getrusage's ru_maxrss; nullopt when neither is readable.
std::optional<std::size_t> peak_rss_bytes();

}  // namespace sb
