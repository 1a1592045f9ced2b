#pragma once
// The DLMC pattern format (.smtx, optionally gzip-compressed; see shared/data/dlmc/SOURCE.md):
// line 1 "nrows, ncols, nnz"; line 2 the nrows + 1 row offsets; line 3 the nnz column indices.
// Patterns only: values are filled from `rng`, uniform in [lo, hi).
#include <string>
#include <vector>

#include "sparsebench/core/rng.h"
#include "sparsebench/formats/csr.h"

namespace sb {

// Throws sb::Error naming the file and what is wrong (missing, truncated, counts that disagree,
// offsets that decrease, columns out of range or not ascending).
Csr load_smtx(const std::string& path, Rng& rng, float lo = -1.f, float hi = 1.f);
// Writes a pattern (uncompressed, or gzip when path ends in .gz).
void save_smtx(const std::string& path, const Csr& csr);
// The .smtx / .smtx.gz files of a directory (not recursive), sorted by name; a file path is
// returned as itself.
std::vector<std::string> list_smtx(const std::string& path);

}  // namespace sb
