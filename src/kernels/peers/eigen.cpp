// Eigen 3.4: SparseMatrix<float, RowMajor> times a row-major dense matrix.
//
// Threads: Eigen parallelises this product itself (SparseDenseProduct.h, row-major lhs, dense rhs)
// with OpenMP when the library is compiled with OpenMP, as ours is: rows are split dynamically
// over Eigen::nbThreads(), but only when nnz * n > 20000; below that it runs on one thread
// whatever the setting. We set Eigen::nbThreads() to sb::num_threads() before each product.
#include <Eigen/Core>
#include <Eigen/SparseCore>

#include "kernels/peers/peers.h"
#include "sparsebench/core/threads.h"

namespace sb::detail {
namespace {

using SparseRm = Eigen::SparseMatrix<float, Eigen::RowMajor, int>;
using DenseRm = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

class EigenOp final : public SpmmOp {
 public:
  EigenOp(const SpmmDesc& d, SparseRm w) : d_(d), w_(std::move(w)) {}
  void run(const float* x, float* y, const float* bias) override {
    Eigen::setNbThreads(sb::num_threads());
    Eigen::Map<const DenseRm> X(x, d_.k, d_.n);
    Eigen::Map<DenseRm> Y(y, d_.m, d_.n);
    Y.noalias() = w_ * X;
    peer_epilogue(y, d_.has_bias ? bias : nullptr, d_.relu, d_.m, d_.n);
  }
  Footprint footprint() const override {
    Footprint f;
    f.values = static_cast<std::size_t>(w_.nonZeros()) * sizeof(float);
    f.indices = static_cast<std::size_t>(w_.nonZeros()) * sizeof(int);
    f.pointers = static_cast<std::size_t>(w_.outerSize() + 1) * sizeof(int);
    return f;
  }

 private:
  SpmmDesc d_;
  SparseRm w_;
};

class EigenPeer final : public SpmmImpl {
 public:
  std::string name() const override { return "eigen_csr"; }
  std::string library() const override { return "eigen"; }
  Format format() const override { return Format::csr; }
  Role role() const override { return Role::peer; }
  bool can_implement(const SpmmDesc& d, const SpmmWeight& w, std::string* why) const override {
    if (!check_peer_weight(d, w, why)) return false;
    if (d.m * d.k >= (std::int64_t{1} << 31)) {
      if (why) *why = "Eigen's int indices cannot hold more than 2^31 entries";
      return false;
    }
    return true;
  }
  std::unique_ptr<SpmmOp> initialize(const SpmmDesc& d, const SpmmWeight& w) const override {
    const float* dense = w.dense.data<float>();
    const std::uint8_t* mask = w.mask.defined() ? w.mask.data<std::uint8_t>() : nullptr;
    // Row counts first, so that insertion in row order never moves memory; kept zeros stay stored
    // (the pattern is what pruning decided, as in our formats).
    Eigen::VectorXi counts = Eigen::VectorXi::Zero(d.m);
    for (std::int64_t i = 0; i < d.m; ++i)
      for (std::int64_t j = 0; j < d.k; ++j) counts[i] += peer_kept(w, dense, mask, i * d.k + j) ? 1 : 0;
    SparseRm s(d.m, d.k);
    s.reserve(counts);
    for (std::int64_t i = 0; i < d.m; ++i)
      for (std::int64_t j = 0; j < d.k; ++j)
        if (peer_kept(w, dense, mask, i * d.k + j)) s.insert(i, j) = dense[i * d.k + j];
    s.makeCompressed();
    return std::make_unique<EigenOp>(d, std::move(s));
  }
};

}  // namespace

std::unique_ptr<SpmmImpl> make_eigen_peer() { return std::make_unique<EigenPeer>(); }

}  // namespace sb::detail
