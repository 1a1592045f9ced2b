#pragma once
// Y[M x N] = W[M x K] * X[K x N] (+ bias[M], optional fused ReLU), fp32.
// W is a (sparse) weight, X a dense activation matrix, row-major with N contiguous (N = batch x
// spatial positions, or tokens). Every linear layer, and every convolution lowered to GEMM.
//
// One operator protocol for our kernels, the dense baseline, the peers and the references
// (CUTLASS / oneDNN style):  can_implement -> initialize (packs the weight once) -> run.
// Implementations live in an ordered registry per (op, format, dtype): fastest first, reference
// last; each rejection states its reason.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sparsebench/core/tensor.h"
#include "sparsebench/formats/common.h"
#include "sparsebench/prune/pattern.h"

namespace sb {

// The storage format an implementation runs on.
enum class Format { dense, csr, csc, coo, bsr, balanced };
const char* format_name(Format f);
Format parse_format(const std::string& text);

// What an implementation is in the comparison.
enum class Role {
  kernel,     // ours, dispatchable
  baseline,   // the best dense library (oneDNN): every speedup is against this
  peer,       // another sparse library (Eigen, libxsmm, XNNPACK, libtorch): compared, never dispatched
  reference,  // double accumulation, for verification
};
const char* role_name(Role r);

struct SpmmDesc {
  std::int64_t m = 0, k = 0, n = 0;  // Y is m x n, W is m x k, X is k x n
  bool has_bias = false;
  bool relu = false;
  // Empty: X is k x n row-major (row j at x + j * n). Otherwise k offsets in floats, each >= 0:
  // row j is the n floats from x + x_rows[j], and rows may overlap. A k x k stride-1 convolution
  // runs this way on its zero-padded input without an im2col copy (row (c, ky, kx) is channel c
  // shifted by ky padded rows and kx columns). Only implementations whose reads_x_rows() is true
  // accept such a desc.
  std::vector<std::int64_t> x_rows;
};

// The logical weight, as pruning left it. `dense` is [m, k] f32 with pruned entries zero; `mask`
// is [m, k] u8 (1 = kept) or undefined (kept = non-zero). `pattern` tells the structure the mask
// was made with (block shape, bank, N:M), so a format can be chosen without guessing.
struct SpmmWeight {
  Tensor dense;
  Tensor mask;
  Pattern pattern;
};

// A packed, ready-to-run operator. run() may be called many times; it allocates nothing.
class SpmmOp {
 public:
  virtual ~SpmmOp() = default;
  // x: k x n row-major (ld = n); y: m x n row-major (ld = n), every element written;
  // bias: m values, or nullptr when the desc has none. Threads: sb::num_threads().
  virtual void run(const float* x, float* y, const float* bias) = 0;
  // Bytes of the packed weight (values + indices + pointers + metadata), as stored.
  virtual Footprint footprint() const = 0;
};

class SpmmImpl {
 public:
  virtual ~SpmmImpl() = default;
  // Our kernels: <dtype>_<op>_<format>_<tile>__<isa>, e.g. f32_spmm_csr_8x32__avx512.
  // Others: the library's name and variant, e.g. "onednn_sgemm", "eigen_csr", "xnnpack_spmm".
  virtual std::string name() const = 0;
  virtual std::string library() const = 0;     // "sparsebench", "onednn", "eigen", "libxsmm", ...
  virtual Format format() const = 0;
  virtual Role role() const = 0;
  // False, with the reason in *why, when this implementation cannot run the case (ISA missing,
  // shape constraint, pattern it does not exploit, library missing).
  virtual bool can_implement(const SpmmDesc& desc, const SpmmWeight& w, std::string* why) const = 0;
  // True when it reads X through SpmmDesc::x_rows (can_implement decides the rest).
  virtual bool reads_x_rows() const { return false; }
  // Packs the weight once. Call only after can_implement returned true.
  virtual std::unique_ptr<SpmmOp> initialize(const SpmmDesc& desc, const SpmmWeight& w) const = 0;
};

// The ordered list of every implementation, built once.
class SpmmRegistry {
 public:
  static const SpmmRegistry& instance();
  const std::vector<std::unique_ptr<SpmmImpl>>& all() const { return impls_; }
  // nullptr when no implementation has that name.
  const SpmmImpl* find(const std::string& name) const;
  // The first implementation of `role` kernel in `format` that can run the case, in registry
  // order; if none, the first baseline (the dense format's only fast implementation), else the
  // reference; peers are never chosen. Throws sb::Error listing every rejection when nothing can
  // run it. `forced` (--kernel NAME) picks that one, or throws saying why it cannot (unknown name,
  // other format, or its can_implement reason). With SB_VERBOSE=dispatch, each choice and
  // rejection is appended to *log as "dispatch: <format> m x k x n: chose X; rejected Y: <why>"
  // (the CLI prints it).
  const SpmmImpl& select(const SpmmDesc& desc, const SpmmWeight& w, Format format,
                         const std::string& forced = {}, std::string* log = nullptr) const;

  void add(std::unique_ptr<SpmmImpl> impl) { impls_.push_back(std::move(impl)); }

 private:
  std::vector<std::unique_ptr<SpmmImpl>> impls_;
};

// True when SB_VERBOSE contains "dispatch".
bool verbose_dispatch();

}  // namespace sb
