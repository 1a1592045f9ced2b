// The peer libraries are part of the comparison, so they are checked like our kernels: against the
// double-accumulating reference kernel, on fresh random data, odd shapes, empty rows, with the
// output poisoned (NaN) before each call. A peer that declines a case must say why.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "sparsebench/core/rng.h"
#include "sparsebench/core/tensor.h"
#include "sparsebench/core/threads.h"
#include "sparsebench/kernels/spmm.h"

namespace sb {
namespace {

struct Problem {
  SpmmDesc d;
  SpmmWeight w;
  std::vector<float> x, bias;
};

// Random weight with a Bernoulli mask of `sparsity`; rows listed in `empty_rows` keep nothing.
Problem make_problem(std::int64_t m, std::int64_t k, std::int64_t n, double sparsity, bool bias, bool relu,
                     std::uint64_t seed, std::vector<std::int64_t> empty_rows = {}) {
  Rng rng(seed);
  Problem p;
  p.d = {m, k, n, bias, relu};
  Tensor dense = Tensor::empty({m, k});
  Tensor mask = Tensor::zeros({m, k}, DType::u8);
  float* w = dense.data<float>();
  std::uint8_t* mk = mask.data<std::uint8_t>();
  for (std::int64_t i = 0; i < m * k; ++i) {
    const bool keep = rng.next_double() >= sparsity;
    // Values away from 0 so that "kept" and "non-zero" agree for every library.
    const float v = rng.uniform(0.25f, 1.f) * (rng.next_u32() & 1 ? 1.f : -1.f);
    mk[i] = keep;
    w[i] = keep ? v : 0.f;
  }
  for (std::int64_t r : empty_rows)
    for (std::int64_t j = 0; j < k; ++j) {
      mk[r * k + j] = 0;
      w[r * k + j] = 0.f;
    }
  p.w = {dense, mask, Pattern::parse("unstructured")};
  p.x.resize(static_cast<std::size_t>(k * n));
  for (float& v : p.x) v = rng.uniform(-1.f, 1.f);
  p.bias.resize(static_cast<std::size_t>(m));
  for (float& v : p.bias) v = rng.uniform(-1.f, 1.f);
  return p;
}

const SpmmImpl& reference_for(const Problem& p) {
  for (const auto& impl : SpmmRegistry::instance().all())
    if (impl->role() == Role::reference && impl->format() == Format::csr && impl->can_implement(p.d, p.w, nullptr))
      return *impl;
  for (const auto& impl : SpmmRegistry::instance().all())
    if (impl->role() == Role::reference && impl->can_implement(p.d, p.w, nullptr)) return *impl;
  throw std::runtime_error("no reference kernel registered");
}

std::vector<float> run_impl(const SpmmImpl& impl, const Problem& p) {
  auto op = impl.initialize(p.d, p.w);
  std::vector<float> y(static_cast<std::size_t>(p.d.m * p.d.n), std::numeric_limits<float>::quiet_NaN());
  op->run(p.x.data(), y.data(), p.d.has_bias ? p.bias.data() : nullptr);
  return y;
}

std::vector<std::string> peer_names() {
  std::vector<std::string> out;
  for (const auto& impl : SpmmRegistry::instance().all())
    if (impl->role() == Role::peer) out.push_back(impl->name());
  return out;
}

TEST(Peers, EveryPeerLibraryIsRegistered) {
  std::vector<std::string> libs;
  for (const auto& impl : SpmmRegistry::instance().all())
    if (impl->role() == Role::peer) libs.push_back(impl->library());
  for (const char* want : {"eigen", "libxsmm", "xnnpack", "libtorch"})
    EXPECT_NE(std::find(libs.begin(), libs.end(), want), libs.end()) << want << " peer missing";
}

class PeerAgreement : public ::testing::TestWithParam<std::string> {};

TEST_P(PeerAgreement, MatchesReference) {
  const SpmmImpl* impl = SpmmRegistry::instance().find(GetParam());
  ASSERT_NE(impl, nullptr);
  EXPECT_EQ(impl->role(), Role::peer);
  struct Shape { std::int64_t m, k, n; };
  const Shape shapes[] = {{1, 1, 1}, {7, 13, 5}, {33, 65, 17}, {64, 128, 1}, {130, 257, 97}, {600, 300, 100}};
  const double sparsities[] = {0.0, 0.5, 0.9, 0.99};
  std::string declined;
  int ran = 0;
  std::uint64_t seed = 1;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (const Shape& s : shapes)
      for (double sp : sparsities)
        for (int epilogue = 0; epilogue < 3; ++epilogue) {
          const bool bias = epilogue >= 1, relu = epilogue == 2;
          std::vector<std::int64_t> empty_rows;
          if (s.m > 4) empty_rows = {0, s.m / 2, s.m - 1};
          const Problem p = make_problem(s.m, s.k, s.n, sp, bias, relu, seed++, empty_rows);
          const std::string what = fmt::format("{} {}x{}x{} sparsity {} bias {} relu {} threads {}", impl->name(), s.m,
                                               s.k, s.n, sp, bias, relu, threads);
          std::string why;
          if (!impl->can_implement(p.d, p.w, &why)) {
            EXPECT_FALSE(why.empty()) << what << ": declined without a reason";
            if (declined.empty()) declined = why;
            continue;
          }
          ++ran;
          const std::vector<float> ref = run_impl(reference_for(p), p);
          const std::vector<float> y = run_impl(*impl, p);
          double max_ref = 0, max_err = 0, norm = 0;
          for (std::size_t i = 0; i < y.size(); ++i) {
            ASSERT_FALSE(std::isnan(y[i])) << what << ": element " << i << " not written";
            max_ref = std::max(max_ref, static_cast<double>(std::fabs(ref[i])));
            max_err = std::max(max_err, static_cast<double>(std::fabs(y[i] - ref[i])));
            norm += static_cast<double>(y[i]) * y[i];
          }
          EXPECT_LE(max_err, 1e-5 * std::max(1.0, max_ref) * std::sqrt(static_cast<double>(s.k))) << what;
          // An all-zero output cannot pass where the reference is not all zero.
          if (max_ref > 0) EXPECT_GT(norm, 0) << what;
        }
  }
  set_num_threads(0);
  if (ran == 0) GTEST_SKIP() << impl->name() << " declined every case: " << declined;
}

INSTANTIATE_TEST_SUITE_P(All, PeerAgreement, ::testing::ValuesIn(peer_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(Peers, FootprintCountsStoredEntries) {
  const Problem p = make_problem(96, 200, 8, 0.9, false, false, 42);
  std::int64_t nnz = 0;
  for (std::int64_t i = 0; i < p.w.mask.numel(); ++i) nnz += p.w.mask.data<std::uint8_t>()[i];
  for (const auto& impl : SpmmRegistry::instance().all()) {
    if (impl->role() != Role::peer || !impl->can_implement(p.d, p.w, nullptr)) continue;
    const Footprint f = impl->initialize(p.d, p.w)->footprint();
    EXPECT_GE(f.values, static_cast<std::size_t>(nnz) * sizeof(float)) << impl->name();
    EXPECT_GT(f.indices, 0u) << impl->name();
    // Far below the dense 96 x 200 x 4 bytes at 90 % sparsity.
    EXPECT_LT(f.total(), 96u * 200u * 4u / 2u) << impl->name();
  }
}

}  // namespace
}  // namespace sb
