#pragma once
// XNNPACK-style tester: SpmmTester().m(67).k(33).n(13).sparsity(0.9).pattern(p).bias(true)
// .relu(true).Test(impl) packs a fresh random weight (mask drawn for the pattern, pruned entries
// left non-zero in the dense copy so that a kernel ignoring the mask fails), runs the
// implementation on a NaN-poisoned output and compares with the double-accumulation dense
// reference by normalized error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "sparsebench/core/rng.h"
#include "sparsebench/core/tensor.h"
#include "sparsebench/core/threads.h"
#include "sparsebench/kernels/spmm.h"

namespace sb::test {

inline Pattern unstructured() { Pattern p; p.kind = Pattern::Kind::unstructured; return p; }
inline Pattern block(int r, int c) {
  Pattern p; p.kind = Pattern::Kind::block; p.block_rows = r; p.block_cols = c; return p;
}
inline Pattern balanced(int bank) { Pattern p; p.kind = Pattern::Kind::balanced; p.bank = bank; return p; }
inline Pattern nm(int n, int m) { Pattern p; p.kind = Pattern::Kind::nm; p.n = n; p.m = m; return p; }

// What one Test() call did: ran and compared, or the implementation declined (with its reason).
struct Outcome {
  bool ran = false;
  std::string declined;
};

class SpmmTester {
 public:
  SpmmTester& m(std::int64_t v) { m_ = v; return *this; }
  SpmmTester& k(std::int64_t v) { k_ = v; return *this; }
  SpmmTester& n(std::int64_t v) { n_ = v; return *this; }
  SpmmTester& sparsity(double v) { sparsity_ = v; return *this; }
  SpmmTester& pattern(const Pattern& p) { pattern_ = p; return *this; }
  SpmmTester& bias(bool v) { bias_ = v; return *this; }
  SpmmTester& relu(bool v) { relu_ = v; return *this; }
  SpmmTester& empty_rows(bool v) { empty_rows_ = v; return *this; }  // rows 2, 5, 8... pruned whole
  SpmmTester& use_mask(bool v) { use_mask_ = v; return *this; }      // else zeros mark pruned
  SpmmTester& threads(int v) { threads_ = v; return *this; }
  SpmmTester& seed(std::uint64_t v) { seed_ = v; return *this; }
  // X given as SpmmDesc::x_rows: rows at scattered, overlapping, unsorted offsets into one buffer.
  SpmmTester& x_rows(bool v) { x_rows_ = v; return *this; }

  std::string describe() const {
    return fmt::format("{}x{}x{} {} sparsity {} bias {} relu {} empty_rows {} mask {} threads {} x_rows {}",
                       m_, k_, n_, pattern_.to_string(), sparsity_, bias_, relu_, empty_rows_,
                       use_mask_, threads_, x_rows_);
  }

  SpmmWeight weight() const {
    Rng rng(seed_);
    SpmmWeight w;
    w.pattern = pattern_;
    w.dense = Tensor::empty({m_, k_});
    rng.fill_normal(w.dense, 0.f, 1.f);
    w.mask = Tensor::zeros({m_, k_}, DType::u8);
    std::uint8_t* mk = w.mask.data<std::uint8_t>();
    const double keep = 1.0 - sparsity_;
    auto set = [&](std::int64_t i, std::int64_t j) { if (i < m_ && j < k_) mk[i * k_ + j] = 1; };
    switch (pattern_.kind) {
      case Pattern::Kind::block:
        for (std::int64_t i = 0; i < m_; i += pattern_.block_rows)
          for (std::int64_t j = 0; j < k_; j += pattern_.block_cols)
            if (rng.next_double() < keep)
              for (int r = 0; r < pattern_.block_rows; ++r)
                for (int c = 0; c < pattern_.block_cols; ++c) set(i + r, j + c);
        break;
      case Pattern::Kind::balanced:
      case Pattern::Kind::nm: {
        const int bank = pattern_.kind == Pattern::Kind::nm ? pattern_.m : pattern_.bank;
        const int most = pattern_.kind == Pattern::Kind::nm
                             ? pattern_.n
                             : std::max(1, static_cast<int>(std::lround(keep * bank)));
        for (std::int64_t i = 0; i < m_; ++i)
          for (std::int64_t j0 = 0; j0 < k_; j0 += bank) {
            // Some banks keep fewer than the most (padding), a few keep none.
            const int want = static_cast<int>(rng.below(most + 1));
            for (int t = 0; t < want; ++t) set(i, j0 + static_cast<std::int64_t>(rng.below(bank)));
          }
        break;
      }
      case Pattern::Kind::dense:
        for (std::int64_t i = 0; i < m_ * k_; ++i) mk[i] = 1;
        break;
      default:
        for (std::int64_t i = 0; i < m_ * k_; ++i) mk[i] = rng.next_double() < keep;
    }
    if (empty_rows_)
      for (std::int64_t i = 2; i < m_; i += 3)
        for (std::int64_t j = 0; j < k_; ++j) mk[i * k_ + j] = 0;
    // At least one kept entry (row 0 is never forced empty), so the output cannot be legitimately
    // all zero. Added only to an empty mask, so N:M groups never exceed N.
    if (std::none_of(mk, mk + m_ * k_, [](std::uint8_t v) { return v != 0; })) set(0, 0);
    if (!use_mask_) {
      float* d = w.dense.data<float>();
      for (std::int64_t i = 0; i < m_ * k_; ++i) {
        if (!mk[i]) d[i] = 0.f;
        else if (d[i] == 0.f) d[i] = 1.f;  // without a mask, non-zero means kept
      }
      w.mask = Tensor();
    }
    return w;
  }

  Outcome Test(const SpmmImpl& impl) const {
    Outcome out;
    SpmmDesc desc{m_, k_, n_, bias_, relu_, {}};
    const SpmmDesc plain = desc;  // the reference reads X as k x n
    const SpmmWeight w = weight();
    std::string why;
    Rng rng(seed_ ^ 0x9e3779b97f4a7c15ull);
    Tensor x = Tensor::empty({k_, n_});
    Tensor xbuf = x;  // what the implementation reads
    if (x_rows_) {
      const std::int64_t span = 3 * k_ + 5;
      xbuf = Tensor::empty({span + n_});
      rng.fill_uniform(xbuf, -1.f, 1.f);
      desc.x_rows.resize(static_cast<std::size_t>(k_));
      for (std::int64_t j = 0; j < k_; ++j) {
        desc.x_rows[j] = (j * 37 + 11) % span;
        std::copy_n(xbuf.data<float>() + desc.x_rows[j], n_, x.data<float>() + j * n_);
      }
    } else {
      rng.fill_uniform(x, -1.f, 1.f);
    }
    if (!impl.can_implement(desc, w, &why)) {
      EXPECT_FALSE(why.empty()) << impl.name() << " declined " << describe() << " without a reason";
      out.declined = why;
      return out;
    }
    Tensor b = Tensor::empty({m_});
    rng.fill_uniform(b, -0.5f, 0.5f);
    Tensor y = Tensor::empty({m_, n_});
    y.fill_nan();
    Tensor ref = Tensor::empty({m_, n_});
    ref.fill_nan();

    const SpmmImpl* ref_impl = SpmmRegistry::instance().find("f64acc_spmm_dense__ref");
    EXPECT_NE(ref_impl, nullptr);
    if (!ref_impl) return out;
    ref_impl->initialize(plain, w)->run(x.data<float>(), ref.data<float>(), bias_ ? b.data<float>() : nullptr);

    const int saved = num_threads();
    set_num_threads(threads_);
    auto op = impl.initialize(desc, w);
    op->run(xbuf.data<float>(), y.data<float>(), bias_ ? b.data<float>() : nullptr);
    set_num_threads(saved);
    EXPECT_GT(op->footprint().total(), 0u) << impl.name();

    const float* yp = y.data<float>();
    const float* rp = ref.data<float>();
    double max_ref = 0, max_err = 0, norm_y = 0;
    std::int64_t nan_at = -1;
    for (std::int64_t i = 0; i < m_ * n_; ++i) {
      if (std::isnan(yp[i]) && nan_at < 0) nan_at = i;
      max_ref = std::max(max_ref, std::abs(static_cast<double>(rp[i])));
      max_err = std::max(max_err, std::abs(static_cast<double>(yp[i]) - rp[i]));
      norm_y += static_cast<double>(yp[i]) * yp[i];
    }
    EXPECT_LT(nan_at, 0) << impl.name() << " left Y[" << nan_at / n_ << ", " << nan_at % n_
                         << "] unwritten (NaN) in " << describe();
    // ReLU of a handful of outputs may zero them all legitimately; anything larger is a broken case.
    if (!relu_ || m_ * n_ >= 16)
      EXPECT_GT(max_ref, 0.0) << "degenerate case, all-zero reference: " << describe();
    if (max_ref > 0)
      EXPECT_GT(norm_y, 0.0) << impl.name() << " wrote an all-zero output in " << describe();
    // fp32 accumulation over k terms against a double reference: error grows ~ k * eps.
    const double tol = 1e-5 + 2e-7 * static_cast<double>(k_);
    const double rel = max_err / std::max(max_ref, 1e-30);
    EXPECT_LE(rel, tol) << impl.name() << " in " << describe() << ": max |y - ref| = " << max_err
                        << ", max |ref| = " << max_ref;
    out.ran = true;
    return out;
  }

 private:
  std::int64_t m_ = 1, k_ = 1, n_ = 1;
  double sparsity_ = 0.5;
  Pattern pattern_ = unstructured();
  bool bias_ = false, relu_ = false, empty_rows_ = false, use_mask_ = true, x_rows_ = false;
  int threads_ = 1;
  std::uint64_t seed_ = 1;
};

}  // namespace sb::test
