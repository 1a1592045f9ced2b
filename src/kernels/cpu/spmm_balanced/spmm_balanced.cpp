// Balanced / N:M kernels: packing (once, at initialize) and registration, fastest first.
#include "kernels/cpu/spmm_balanced/spmm_balanced.h"

#include <algorithm>

#include <fmt/format.h>

namespace sb::cpu {

namespace {
BalancedPacked pack(const SpmmDesc& desc, const SpmmWeight& w, Footprint* fp) {
  BalancedPacked p;
  p.bal = pack_balanced_format(w);
  *fp = p.bal.footprint();
  // The kernel reads the next bank's offsets to prefetch: k entries past the end must exist.
  if (p.bal.wide_offsets())
    p.bal.off16.resize(p.bal.off16.size() + p.bal.k, 0);
  else
    p.bal.off8.resize(p.bal.off8.size() + p.bal.k, 0);
  std::vector<std::int64_t> prefix(desc.m + 1);
  for (std::int64_t i = 0; i <= desc.m; ++i) prefix[i] = i;  // every row costs the same
  p.parts = Partitions(prefix, partition_threads());
  // Panel geometry as measured for CSR (spmm_csr.cpp): 128-column N tiles, panels of 64 columns
  // (whole banks; one bank when the bank is wider), 128 below 15 % density.
  p.tile_vectors = 8;
  const double density = static_cast<double>(p.bal.k) / p.bal.bank;
  p.panel_banks = std::max(1, (density < kPanelWideBelowDensity ? 128 : 64) / p.bal.bank);
  return p;
}

// The panel kernel walks all rows of one panel before the next: store each panel's entries
// contiguously (panel-major: [panel][row][bank in panel][k]), so that a panel pass streams them.
// In the row-major balanced layout a pass strides by a whole row (banks x k entries) and, once
// the weight outgrows L2 (3072x768 at 70 %: 2.9 MB), misses on every row: measured 2-4x slower.
BalancedPacked pack_panels(const SpmmDesc& desc, const SpmmWeight& w, Footprint* fp) {
  BalancedPacked p = pack(desc, w, fp);
  Balanced& b = p.bal;
  const std::int64_t m = b.rows, banks = b.banks(), k = b.k;
  AlignedVector<float> values(b.values.size());
  AlignedVector<std::uint8_t> off8(b.off8.size());
  AlignedVector<std::uint16_t> off16(b.off16.size());
  std::int64_t at = 0;
  for (std::int64_t q0 = 0; q0 < banks; q0 += p.panel_banks) {
    const std::int64_t q1 = std::min<std::int64_t>(banks, q0 + p.panel_banks);
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t e = (i * banks + q0) * k; e < (i * banks + q1) * k; ++e, ++at) {
        values[at] = b.values[e];
        if (b.wide_offsets()) off16[at] = b.off16[e];
        else off8[at] = b.off8[e];
      }
  }
  b.values = std::move(values);
  b.off8 = std::move(off8);
  b.off16 = std::move(off16);
  if (!desc.x_rows.empty()) p.x_off = x_row_table(desc, banks * b.bank);
  return p;
}

bool panel_case(const SpmmDesc& desc, const SpmmWeight& w, std::string* why) {
  int bank = 0;
  return balanced_shape(w, &bank, why) && panel_worthwhile(desc, w, why);
}

bool check(const SpmmDesc&, const SpmmWeight& w, std::string* why) {
  int bank = 0;
  return balanced_shape(w, &bank, why);
}
}  // namespace

void register_balanced_kernels(SpmmRegistry& r) {
  using Impl = KernelImpl<BalancedPacked>;
  r.add(std::make_unique<Impl>("f32_spmm_balanced_kpanel__avx512", Format::balanced, Isa::avx512,
                               balanced_panel_avx512, pack_panels, panel_case, /*x_rows=*/true));
  r.add(std::make_unique<Impl>("f32_spmm_balanced_1x128__avx512", Format::balanced, Isa::avx512,
                               balanced_spmm_avx512, pack, check));
  r.add(std::make_unique<Impl>("f32_spmm_balanced_kpanel__avx2", Format::balanced, Isa::avx2,
                               balanced_panel_avx2, pack_panels, panel_case, /*x_rows=*/true));
  r.add(std::make_unique<Impl>("f32_spmm_balanced_1x64__avx2", Format::balanced, Isa::avx2,
                               balanced_spmm_avx2, pack, check));
  r.add(std::make_unique<Impl>("f32_spmm_balanced_1x8__scalar", Format::balanced, Isa::scalar,
                               balanced_spmm_scalar, pack, check));
}

}  // namespace sb::cpu
