// CSR kernels: packing (once, at initialize) and registration, fastest first.
#include "kernels/cpu/spmm_csr/spmm_csr.h"

#include <algorithm>

#include <fmt/format.h>

namespace sb::cpu {

namespace {
CsrPacked pack(const SpmmDesc& desc, const SpmmWeight& w, Footprint* fp) {
  CsrPacked p;
  p.csr = Csr::from_dense(w.dense, w.mask);
  if (fp) *fp = p.csr.footprint();
  // Lookahead padding (kernel-only, not counted): col[nnz .. nnz + pad) = 0, a row that exists.
  if (p.csr.index_width == IndexWidth::u16)
    p.csr.col16.resize(p.csr.col16.size() + kPrefetchPad, 0);
  else
    p.csr.col32.resize(p.csr.col32.size() + kPrefetchPad, 0);
  std::vector<std::int64_t> prefix(desc.m + 1);
  // Per-row cost: its non-zeros plus ~2 for loading the accumulators and storing the row.
  for (std::int64_t i = 0; i <= desc.m; ++i) prefix[i] = p.csr.row_ptr[i] + 2 * i;
  p.parts = Partitions(prefix, partition_threads());
  // The X panel (k rows x tile) is re-read by every row: keep it within about half of a 1 MiB L2
  // so that W's stream and Y's stores do not push it out. Narrower tiles cost one more pass over
  // W's indices and values per tile, cheap next to X.
  constexpr std::int64_t kCsrPanelBudget = 512 * 1024;
  p.tile_vectors = 8;
  while (p.tile_vectors > 2 && desc.k * p.tile_vectors * 64 > kCsrPanelBudget) p.tile_vectors /= 2;
  return p;
}

// Panel geometry, measured (docs/PERFORMANCE-kernels-draft.md, 1 thread, Zen 4): 128-column N
// tiles (8 zmm accumulators) and 64-column panels (an X panel of 32 KiB, the whole L1) beat
// {64 x 64, 64 x 128, 128 x 32, 32 x 128, 32 x 256, 128 x 128, 64 x 256, 128 x 256} on the BERT
// and ResNet shapes at 70 % and 90 %: wider tiles amortise each non-zero's index and broadcast
// over more FMAs. Below 15 % density 128-column panels (64 KiB of X, from L1 and L2) were better
// (768x768x128 at 90 %, min ratio 6.3x vs 5.8x for balanced bank 32): a row needs enough
// non-zeros per panel to pay for Y's load + store; at 70 % 64 columns win (2.3x vs 2.1x).
CsrPanelPacked pack_panels(const SpmmDesc& desc, const SpmmWeight& w, Footprint* fp) {
  const Csr c = Csr::from_dense(w.dense, w.mask);
  if (fp) *fp = c.footprint();
  CsrPanelPacked p;
  p.m = c.rows;
  p.k = c.cols;
  const double density = c.rows * c.cols > 0 ? static_cast<double>(c.nnz()) / (c.rows * c.cols) : 0;
  p.tile_vectors = 8;
  p.panel_cols = density < kPanelWideBelowDensity ? 128 : 64;
  p.panels = static_cast<int>(std::max<std::int64_t>(1, (c.cols + p.panel_cols - 1) / p.panel_cols));
  p.ptr.assign(static_cast<std::size_t>(p.panels) * (p.m + 1), 0);
  p.col.resize(c.nnz() + kPrefetchPad, 0);
  p.values.resize(c.nnz());
  // Count per (panel, row), prefix within each panel (offsets continue from panel to panel).
  std::vector<std::int64_t> count(static_cast<std::size_t>(p.panels) * p.m, 0);
  for (std::int64_t i = 0; i < p.m; ++i)
    for (std::int64_t q = c.row_ptr[i]; q < c.row_ptr[i + 1]; ++q) ++count[(c.col(q) / p.panel_cols) * p.m + i];
  std::int64_t at = 0;
  for (int pn = 0; pn < p.panels; ++pn) {
    std::int32_t* rp = p.ptr.data() + static_cast<std::int64_t>(pn) * (p.m + 1);
    for (std::int64_t i = 0; i < p.m; ++i) {
      rp[i] = static_cast<std::int32_t>(at);
      at += count[pn * p.m + i];
    }
    rp[p.m] = static_cast<std::int32_t>(at);
  }
  std::vector<std::int64_t> fill(static_cast<std::size_t>(p.panels) * p.m);
  for (int pn = 0; pn < p.panels; ++pn)
    for (std::int64_t i = 0; i < p.m; ++i) fill[pn * p.m + i] = p.ptr[pn * (p.m + 1) + i];
  for (std::int64_t i = 0; i < p.m; ++i)
    for (std::int64_t q = c.row_ptr[i]; q < c.row_ptr[i + 1]; ++q) {
      const std::uint32_t j = c.col(q);
      const std::int64_t slot = fill[(j / p.panel_cols) * p.m + i]++;
      p.col[slot] = static_cast<std::uint8_t>(j % p.panel_cols);
      p.values[slot] = c.values[q];
    }
  if (!desc.x_rows.empty()) p.x_off = x_row_table(desc, static_cast<std::int64_t>(p.panels) * p.panel_cols);
  std::vector<std::int64_t> prefix(p.m + 1);
  // Per row: its non-zeros plus a Y load + store per panel it touches (~2 per panel).
  for (std::int64_t i = 0; i <= p.m; ++i) prefix[i] = c.row_ptr[i] + 2 * i * p.panels;
  p.parts = Partitions(prefix, partition_threads());
  return p;
}

bool panel_case(const SpmmDesc& desc, const SpmmWeight& w, std::string* why) {
  return panel_worthwhile(desc, w, why);
}

bool gemv_only(const SpmmDesc& desc, const SpmmWeight&, std::string* why) {
  if (desc.n == 1) return true;
  if (why) *why = fmt::format("GEMV kernel: runs n = 1 only, the case has n = {}", desc.n);
  return false;
}
}  // namespace

CsrPacked pack_csr(const SpmmDesc& desc, const SpmmWeight& w) { return pack(desc, w, nullptr); }

void register_csr_kernels(SpmmRegistry& r) {
  using Impl = KernelImpl<CsrPacked>;
  r.add(std::make_unique<Impl>("f32_spmm_csr_gemv32__avx512", Format::csr, Isa::avx512,
                               csr_gemv_avx512, pack, gemv_only));
  r.add(std::make_unique<KernelImpl<CsrPanelPacked>>("f32_spmm_csr_kpanel__avx512", Format::csr,
                                                     Isa::avx512, csr_panel_avx512, pack_panels,
                                                     panel_case, /*x_rows=*/true));
  r.add(std::make_unique<Impl>("f32_spmm_csr_1x128__avx512", Format::csr, Isa::avx512,
                               csr_spmm_avx512, pack, nullptr));
  r.add(std::make_unique<Impl>("f32_spmm_csr_gemv16__avx2", Format::csr, Isa::avx2,
                               csr_gemv_avx2, pack, gemv_only));
  r.add(std::make_unique<KernelImpl<CsrPanelPacked>>("f32_spmm_csr_kpanel__avx2", Format::csr,
                                                     Isa::avx2, csr_panel_avx2, pack_panels,
                                                     panel_case, /*x_rows=*/true));
  r.add(std::make_unique<Impl>("f32_spmm_csr_1x64__avx2", Format::csr, Isa::avx2, csr_spmm_avx2,
                               pack, nullptr));
  r.add(std::make_unique<Impl>("f32_spmm_csr_gemv4__scalar", Format::csr, Isa::scalar,
                               csr_gemv_scalar, pack, gemv_only));
  r.add(std::make_unique<Impl>("f32_spmm_csr_1x8__scalar", Format::csr, Isa::scalar,
                               csr_spmm_scalar, pack, nullptr));
}

}  // namespace sb::cpu
