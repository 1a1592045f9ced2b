// Every registered kernel, baseline and reference against the double-accumulation dense reference,
// on fresh random data per case; and the registry's dispatch.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <map>

#include "kernels/spmm_tester.h"
#include "sparsebench/core/cpu_info.h"
#include "sparsebench/core/error.h"

namespace sb::test {
namespace {

struct Shape3 { std::int64_t m, k, n; };
// Not multiples of any tile (16-lane vectors, 128-column tiles, 4-row blocks, 32-wide banks),
// plus exact tiles, n = 1 (GEMV) and n past one full tile.
const Shape3 kShapes[] = {{1, 1, 1},    {7, 13, 1},   {13, 7, 33},  {33, 67, 13},  {67, 33, 129},
                          {129, 67, 7}, {33, 129, 67}, {64, 64, 128}, {67, 129, 200}, {129, 67, 1},
                          {67, 300, 1}, {20, 520, 17}};
const double kSparsities[] = {0.0, 0.5, 0.9, 0.99};
// Formats with many patterns (BSR, balanced) sweep every other shape per pattern, alternating,
// so every shape still meets every format while the suite stays fast.
bool shape_for_pattern(std::size_t shape, std::size_t pattern, std::size_t patterns) {
  return patterns <= 2 || (shape + pattern) % 2 == 0;
}

std::vector<Pattern> patterns_for(Format f) {
  switch (f) {
    case Format::bsr:
      return {block(1, 4), block(4, 1), block(4, 4), block(8, 8), block(16, 16), block(2, 3), block(3, 5)};
    case Format::balanced:
      return {balanced(32), balanced(8), balanced(300), nm(1, 8), nm(2, 4), nm(1, 4)};
    case Format::dense: {
      Pattern d;
      return {unstructured(), d};
    }
    default:
      return {unstructured()};
  }
}

std::vector<std::string> impl_names() {
  std::vector<std::string> names;
  for (const auto& impl : SpmmRegistry::instance().all())
    if (impl->role() != Role::peer) names.push_back(impl->name());  // peers: tests/peers
  return names;
}

// Reasons grouped by their wording: "n = 7", "n = 13" are one reason for the summary.
std::string without_numbers(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool digit = std::isdigit(static_cast<unsigned char>(s[i])) || (s[i] == '.' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])) && !out.empty() && out.back() == '#');
    if (!digit) out += s[i];
    else if (out.empty() || out.back() != '#') out += '#';
  }
  return out;
}

class EveryImpl : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryImpl, MatchesReference) {
  const SpmmImpl* impl = SpmmRegistry::instance().find(GetParam());
  ASSERT_NE(impl, nullptr);
  // A variant for an ISA this machine (or SB_ISA) does not offer is skipped, with the reason.
  {
    SpmmTester probe;
    probe.m(4).k(4).n(4).sparsity(0).pattern(patterns_for(impl->format())[0]);
    std::string why;
    const SpmmDesc d{4, 4, 4, false, false, {}};
    if (!impl->can_implement(d, probe.weight(), &why) && why.rfind("needs ", 0) == 0)
      GTEST_SKIP() << impl->name() << ": " << why;
  }
  int ran = 0, case_index = 0;
  std::map<std::string, int> declined;
  const std::vector<Pattern> pats = patterns_for(impl->format());
  for (std::size_t pi = 0; pi < pats.size(); ++pi)
    for (std::size_t si = 0; si < std::size(kShapes); ++si)
      for (double sp : kSparsities) {
        if (!shape_for_pattern(si, pi, pats.size())) continue;
        const Pattern& p = pats[pi];
        const Shape3& s = kShapes[si];
        const int c = case_index++;
        SpmmTester t;
        t.m(s.m).k(s.k).n(s.n).pattern(p).sparsity(sp).bias(c % 2 == 0).relu(c % 3 == 0)
            .empty_rows(c % 4 == 1).use_mask(c % 5 != 2).threads(1 + c % 2).seed(1000 + c);
        const Outcome o = t.Test(*impl);
        if (o.ran) ++ran;
        else ++declined[without_numbers(o.declined)];
        // X as offset rows (SpmmDesc::x_rows): run by the implementations that read them, declined
        // with a reason by the others.
        const Outcome r = t.x_rows(true).Test(*impl);
        if (impl->reads_x_rows()) {
          EXPECT_EQ(r.ran, o.ran) << impl->name() << " with x_rows: " << r.declined;
        } else {
          EXPECT_FALSE(r.ran) << impl->name() << " ran x_rows without reading them";
        }
        if (::testing::Test::HasFailure()) return;  // one case's report is enough
      }
  for (const auto& [why, count] : declined)
    std::cout << "[ note     ] " << impl->name() << " declined " << count << " case(s): " << why << "\n";
  EXPECT_GT(ran, 0) << impl->name() << " declined every case: never pass without running";
}

INSTANTIATE_TEST_SUITE_P(Spmm, EveryImpl, ::testing::ValuesIn(impl_names()),
                         [](const auto& info) { return info.param; });

// The ISA variants once more through dispatch: with SB_ISA capping the ISA, select() must pick
// the variant of that ISA and the result must still be right.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    setenv(name, value, 1);
  }
  ~ScopedEnv() { had_ ? setenv(name_, old_.c_str(), 1) : unsetenv(name_); }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST(SpmmDispatch, SbIsaForcesEachVariant) {
  const Isa hw = max_isa();
  for (const char* isa : {"scalar", "avx2", "avx512"}) {
    ScopedEnv env("SB_ISA", isa);
    if (max_isa() != (std::string(isa) == "scalar" ? Isa::scalar : std::string(isa) == "avx2" ? Isa::avx2 : Isa::avx512)) {
      std::cout << "[ note     ] SB_ISA=" << isa << " not available here (hardware: " << isa_name(hw) << ")\n";
      continue;
    }
    for (Format f : {Format::csr, Format::bsr, Format::balanced}) {
      SpmmTester t;
      t.m(67).k(129).n(33).sparsity(0.9).pattern(patterns_for(f)[0]).bias(true).relu(true).seed(7);
      const SpmmDesc d{67, 129, 33, true, true, {}};
      const SpmmImpl& impl = SpmmRegistry::instance().select(d, t.weight(), f);
      EXPECT_NE(impl.name().find(std::string("__") + isa), std::string::npos)
          << "SB_ISA=" << isa << " chose " << impl.name();
      EXPECT_TRUE(t.Test(impl).ran);
    }
  }
}

TEST(SpmmDispatch, SelectsKernelsThenReference) {
  const auto& reg = SpmmRegistry::instance();
  SpmmTester t;
  t.m(33).k(67).n(1).sparsity(0.9);
  const SpmmWeight w = t.weight();
  const SpmmDesc gemv{33, 67, 1, false, false, {}};
  const SpmmDesc spmm{33, 67, 16, false, false, {}};
  EXPECT_EQ(reg.select(spmm, w, Format::csr).role(), Role::kernel);
  EXPECT_NE(reg.select(gemv, w, Format::csr).name().find("gemv"), std::string::npos);
  EXPECT_EQ(reg.select(spmm, w, Format::csr).name().find("gemv"), std::string::npos);
  EXPECT_EQ(reg.select(spmm, w, Format::coo).role(), Role::reference);
  EXPECT_EQ(reg.select(spmm, w, Format::csc).role(), Role::reference);
  EXPECT_EQ(reg.select(spmm, w, Format::dense).role(), Role::baseline);
  // BSR of an unstructured weight: nothing can run it, and the error lists every reason.
  try {
    reg.select(spmm, w, Format::bsr);
    ADD_FAILURE() << "select(bsr) of an unstructured weight should throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block:RxC"), std::string::npos) << e.what();
  }
}

TEST(SpmmDispatch, ForcedNames) {
  const auto& reg = SpmmRegistry::instance();
  SpmmTester t;
  t.m(33).k(67).n(16).sparsity(0.9);
  const SpmmWeight w = t.weight();
  const SpmmDesc d{33, 67, 16, false, false, {}};
  EXPECT_EQ(reg.select(d, w, Format::csr, "f64acc_spmm_csr__ref").name(), "f64acc_spmm_csr__ref");
  auto message = [&](Format f, const std::string& name) -> std::string {
    try {
      reg.select(d, w, f, name);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message(Format::csr, "no_such_kernel").find("no implementation has that name"), std::string::npos);
  EXPECT_NE(message(Format::csr, "f64acc_spmm_coo__ref").find("runs the coo format"), std::string::npos);
  const std::string gemv = message(Format::csr, "f32_spmm_csr_gemv4__scalar");
  EXPECT_NE(gemv.find("n = 1 only"), std::string::npos) << gemv;
}

TEST(SpmmDispatch, VerboseLog) {
  const auto& reg = SpmmRegistry::instance();
  SpmmTester t;
  t.m(33).k(67).n(16).sparsity(0.9);
  const SpmmDesc d{33, 67, 16, false, false, {}};
  std::string log;
  {
    ScopedEnv env("SB_VERBOSE", "dispatch");
    ASSERT_TRUE(verbose_dispatch());
    reg.select(d, t.weight(), Format::csr, {}, &log);
  }
  EXPECT_NE(log.find("dispatch: csr 33 x 67 x 16: chose "), std::string::npos) << log;
  if (max_isa() == Isa::avx512)
    EXPECT_NE(log.find("rejected f32_spmm_csr_gemv32__avx512: GEMV kernel"), std::string::npos) << log;
  std::string quiet;
  {
    ScopedEnv env("SB_VERBOSE", "");
    EXPECT_FALSE(verbose_dispatch());
    reg.select(d, t.weight(), Format::csr, {}, &quiet);
  }
  EXPECT_TRUE(quiet.empty()) << quiet;
}

TEST(SpmmRegistry, NamesFormatsRoles) {
  for (Format f : {Format::dense, Format::csr, Format::csc, Format::coo, Format::bsr, Format::balanced})
    EXPECT_EQ(parse_format(format_name(f)), f);
  EXPECT_THROW(parse_format("ellpack"), Error);
  EXPECT_STREQ(role_name(Role::baseline), "baseline");
  const auto& reg = SpmmRegistry::instance();
  std::map<std::string, int> seen;
  for (const auto& impl : reg.all()) {
    EXPECT_EQ(seen[impl->name()]++, 0) << "duplicate name " << impl->name();
    if (impl->role() == Role::kernel) {
      EXPECT_EQ(impl->name().rfind("f32_spmm_", 0), 0u) << impl->name();
      EXPECT_NE(impl->name().find("__"), std::string::npos) << impl->name();
      EXPECT_EQ(impl->library(), "sparsebench");
    }
  }
  // A reference for every format, the dense baseline in both forms.
  for (Format f : {Format::dense, Format::csr, Format::csc, Format::coo, Format::bsr, Format::balanced}) {
    bool has_ref = false;
    for (const auto& impl : reg.all()) has_ref |= impl->format() == f && impl->role() == Role::reference;
    EXPECT_TRUE(has_ref) << format_name(f);
  }
  EXPECT_NE(reg.find("onednn_sgemm"), nullptr);
  EXPECT_NE(reg.find("onednn_matmul"), nullptr);
  EXPECT_EQ(reg.find("nothing"), nullptr);
}

}  // namespace
}  // namespace sb::test
