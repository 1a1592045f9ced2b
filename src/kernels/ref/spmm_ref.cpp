// Reference kernels: one per format, straight from the format's own arrays, double accumulation.
// They verify our kernels, the baseline and the peers, so they favour obviousness over speed
// (rows in parallel where rows are independent, no blocking, no vectors).
#include <algorithm>
#include <vector>

#include "kernels/cpu/common.h"
#include "kernels/internal.h"
#include "sparsebench/formats/balanced.h"
#include "sparsebench/formats/bsr.h"
#include "sparsebench/formats/csr.h"

namespace sb {
namespace {

// acc (m x n, double) -> y, with bias and ReLU, in the order the kernels use: (sum + bias), then max.
void finish(const std::vector<double>& acc, const SpmmDesc& d, const float* bias, float* y) {
  for (std::int64_t i = 0; i < d.m; ++i)
    for (std::int64_t j = 0; j < d.n; ++j) {
      double v = acc[i * d.n + j] + (d.has_bias ? bias[i] : 0.0);
      if (d.relu && v < 0) v = 0;
      y[i * d.n + j] = static_cast<float>(v);
    }
}

// One reference op: the packed format plus a double accumulator, both made at initialize.
template <class Format, class Body>
class RefOp final : public SpmmOp {
 public:
  RefOp(const SpmmDesc& d, Format f, Footprint fp, Body body)
      : d_(d), f_(std::move(f)), fp_(fp), body_(body), acc_(d.m * d.n) {}
  void run(const float* x, float* y, const float* bias) override {
    std::fill(acc_.begin(), acc_.end(), 0.0);
    body_(f_, d_, x, acc_.data());
    finish(acc_, d_, bias, y);
  }
  Footprint footprint() const override { return fp_; }

 private:
  SpmmDesc d_;
  Format f_;
  Footprint fp_;
  Body body_;
  std::vector<double> acc_;
};

// acc[i, :] += w * x[j, :]
inline void axpy_row(double* acc_row, double w, const float* x_row, std::int64_t n) {
  for (std::int64_t t = 0; t < n; ++t) acc_row[t] += w * static_cast<double>(x_row[t]);
}

using PackFn = std::unique_ptr<SpmmOp> (*)(const SpmmDesc&, const SpmmWeight&);
using CheckFn = bool (*)(const SpmmDesc&, const SpmmWeight&, std::string*);

class RefImpl final : public SpmmImpl {
 public:
  RefImpl(std::string name, Format f, PackFn pack, CheckFn check)
      : name_(std::move(name)), f_(f), pack_(pack), check_(check) {}
  std::string name() const override { return name_; }
  std::string library() const override { return "sparsebench"; }
  Format format() const override { return f_; }
  Role role() const override { return Role::reference; }
  bool can_implement(const SpmmDesc& d, const SpmmWeight& w, std::string* why) const override {
    return cpu::check_weight(d, w, why) && (!check_ || check_(d, w, why));
  }
  std::unique_ptr<SpmmOp> initialize(const SpmmDesc& d, const SpmmWeight& w) const override {
    return pack_(d, w);
  }

 private:
  std::string name_;
  Format f_;
  PackFn pack_;
  CheckFn check_;
};

template <class F, class Body>
std::unique_ptr<SpmmOp> make_op(const SpmmDesc& d, F f, Footprint fp, Body body) {
  return std::make_unique<RefOp<F, Body>>(d, std::move(f), fp, body);
}

std::unique_ptr<SpmmOp> pack_dense(const SpmmDesc& d, const SpmmWeight& w) {
  // Pruned entries are zero whether or not the dense copy had them zeroed.
  Tensor wd = w.dense.clone();
  if (w.mask.defined()) {
    float* p = wd.data<float>();
    const std::uint8_t* m = w.mask.data<std::uint8_t>();
    for (std::int64_t i = 0; i < wd.numel(); ++i)
      if (!m[i]) p[i] = 0.f;
  }
  Footprint fp;
  fp.values = static_cast<std::size_t>(d.m * d.k) * sizeof(float);
  return make_op(d, wd, fp, [](const Tensor& wd, const SpmmDesc& d, const float* x, double* acc) {
    const float* wp = wd.data<float>();
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < d.m; ++i)
      for (std::int64_t j = 0; j < d.k; ++j) axpy_row(acc + i * d.n, wp[i * d.k + j], x + j * d.n, d.n);
  });
}

std::unique_ptr<SpmmOp> pack_csr(const SpmmDesc& d, const SpmmWeight& w) {
  Csr c = Csr::from_dense(w.dense, w.mask);
  const Footprint fp = c.footprint();
  return make_op(d, std::move(c), fp, [](const Csr& c, const SpmmDesc& d, const float* x, double* acc) {
#pragma omp parallel for schedule(dynamic, 16)
    for (std::int64_t i = 0; i < d.m; ++i)
      for (std::int64_t p = c.row_ptr[i]; p < c.row_ptr[i + 1]; ++p)
        axpy_row(acc + i * d.n, c.values[p], x + c.col(p) * d.n, d.n);
  });
}

std::unique_ptr<SpmmOp> pack_csc(const SpmmDesc& d, const SpmmWeight& w) {
  Csc c = Csc::from_dense(w.dense, w.mask);
  const Footprint fp = c.footprint();
  // Column by column: every non-zero of column j scatters w * X[j, :] into its row.
  return make_op(d, std::move(c), fp, [](const Csc& c, const SpmmDesc& d, const float* x, double* acc) {
    for (std::int64_t j = 0; j < d.k; ++j)
      for (std::int64_t p = c.col_ptr[j]; p < c.col_ptr[j + 1]; ++p)
        axpy_row(acc + c.row(p) * d.n, c.values[p], x + j * d.n, d.n);
  });
}

std::unique_ptr<SpmmOp> pack_coo(const SpmmDesc& d, const SpmmWeight& w) {
  Coo c = Coo::from_dense(w.dense, w.mask);
  const Footprint fp = c.footprint();
  return make_op(d, std::move(c), fp, [](const Coo& c, const SpmmDesc& d, const float* x, double* acc) {
    for (std::int64_t p = 0; p < c.nnz(); ++p)
      axpy_row(acc + c.row_idx[p] * d.n, c.values[p], x + c.col_idx[p] * d.n, d.n);
  });
}

bool check_bsr(const SpmmDesc&, const SpmmWeight& w, std::string* why) {
  int br = 0, bc = 0;
  return cpu::bsr_block_shape(w, &br, &bc, why);
}

std::unique_ptr<SpmmOp> pack_bsr(const SpmmDesc& d, const SpmmWeight& w) {
  Bsr b = Bsr::from_dense(w.dense, w.pattern.block_rows, w.pattern.block_cols, w.mask);
  const Footprint fp = b.footprint();
  return make_op(d, std::move(b), fp, [](const Bsr& b, const SpmmDesc& d, const float* x, double* acc) {
    const std::int64_t br = b.block_rows, bc = b.block_cols;
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t I = 0; I < b.block_row_count(); ++I)
      for (std::int64_t q = b.block_row_ptr[I]; q < b.block_row_ptr[I + 1]; ++q) {
        const std::int64_t j0 = static_cast<std::int64_t>(b.block_col(q)) * bc;
        for (std::int64_t r = 0; r < br; ++r) {
          const std::int64_t i = I * br + r;
          if (i >= d.m) break;  // padded rows exist only in the block
          for (std::int64_t c = 0; c < bc && j0 + c < d.k; ++c)
            axpy_row(acc + i * d.n, b.values[(q * br + r) * bc + c], x + (j0 + c) * d.n, d.n);
        }
      }
  });
}

bool check_balanced(const SpmmDesc&, const SpmmWeight& w, std::string* why) {
  int bank = 0;
  return cpu::balanced_shape(w, &bank, why);
}

std::unique_ptr<SpmmOp> pack_balanced(const SpmmDesc& d, const SpmmWeight& w) {
  Balanced b = cpu::pack_balanced_format(w);
  const Footprint fp = b.footprint();
  return make_op(d, std::move(b), fp, [](const Balanced& b, const SpmmDesc& d, const float* x, double* acc) {
    const std::int64_t banks = b.banks();
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < d.m; ++i)
      for (std::int64_t q = 0; q < banks; ++q)
        for (std::int64_t t = 0; t < b.k; ++t) {
          const std::int64_t e = (i * banks + q) * b.k + t;
          const std::int64_t j = q * b.bank + b.offset(e);
          axpy_row(acc + i * d.n, b.values[e], x + j * d.n, d.n);
        }
  });
}

}  // namespace

namespace detail {
void register_reference_kernels(SpmmRegistry& r) {
  r.add(std::make_unique<RefImpl>("f64acc_spmm_dense__ref", Format::dense, pack_dense, nullptr));
  r.add(std::make_unique<RefImpl>("f64acc_spmm_csr__ref", Format::csr, pack_csr, nullptr));
  r.add(std::make_unique<RefImpl>("f64acc_spmm_csc__ref", Format::csc, pack_csc, nullptr));
  r.add(std::make_unique<RefImpl>("f64acc_spmm_coo__ref", Format::coo, pack_coo, nullptr));
  r.add(std::make_unique<RefImpl>("f64acc_spmm_bsr__ref", Format::bsr, pack_bsr, check_bsr));
  r.add(std::make_unique<RefImpl>("f64acc_spmm_balanced__ref", Format::balanced, pack_balanced,
                                  check_balanced));
}
}  // namespace detail

}  // namespace sb
