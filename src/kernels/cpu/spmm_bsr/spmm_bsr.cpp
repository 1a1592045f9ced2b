// BSR kernels: packing (once, at initialize) and registration, fastest first.
#include "kernels/cpu/spmm_bsr/spmm_bsr.h"

namespace sb::cpu {

namespace {
BsrPacked pack(const SpmmDesc& desc, const SpmmWeight& w, Footprint* fp) {
  int br = 1, bc = 1;
  std::string why;
  SB_CHECK(bsr_block_shape(w, &br, &bc, &why), "BSR kernel: {}", why);
  BsrPacked p;
  p.bsr = Bsr::from_dense(w.dense, br, bc, w.mask);
  *fp = p.bsr.footprint();
  const std::int64_t rows = p.bsr.block_row_count();
  std::vector<std::int64_t> prefix(rows + 1);
  // Per block row: its blocks (each r x c FMAs per column of N) plus a row-tile overhead.
  const std::int64_t block_cost = static_cast<std::int64_t>(br) * bc;
  for (std::int64_t I = 0; I <= rows; ++I)
    prefix[I] = p.bsr.block_row_ptr[I] * block_cost + I * 2 * br;
  p.parts = Partitions(prefix, partition_threads());
  p.x_off = x_row_table(desc, desc.k);
  return p;
}

bool check(const SpmmDesc&, const SpmmWeight& w, std::string* why) {
  int br = 0, bc = 0;
  return bsr_block_shape(w, &br, &bc, why);
}
}  // namespace

void register_bsr_kernels(SpmmRegistry& r) {
  using Impl = KernelImpl<BsrPacked>;
  r.add(std::make_unique<Impl>("f32_spmm_bsr_4x64__avx512", Format::bsr, Isa::avx512,
                               bsr_spmm_avx512, pack, check, /*x_rows=*/true));
  r.add(std::make_unique<Impl>("f32_spmm_bsr_4x16__avx2", Format::bsr, Isa::avx2, bsr_spmm_avx2,
                               pack, check, /*x_rows=*/true));
  r.add(std::make_unique<Impl>("f32_spmm_bsr_4x8__scalar", Format::bsr, Isa::scalar,
                               bsr_spmm_scalar, pack, check, /*x_rows=*/true));
}

}  // namespace sb::cpu
