#include "sparsebench/formats/compare.h"

#include <cstring>
#include <functional>

#include "sparsebench/formats/balanced.h"
#include "sparsebench/formats/bsr.h"
#include "sparsebench/formats/csr.h"

namespace sb {
namespace {

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

template <class F>
FormatCost build(const std::string& name, const Tensor& want, std::size_t dense_bytes, DType vt, F&& make) {
  FormatCost c;
  c.format = name;
  try {
    auto fmt = make(c.detail);
    fmt.validate();
    c.footprint = fmt.footprint(vt);
    c.round_trip_exact = same_bits(fmt.to_dense(), want);
  } catch (const Error& e) {
    c.available = false;
    c.reason = e.what();
    return c;
  }
  c.ratio_to_dense = dense_bytes ? double(c.footprint.total()) / double(dense_bytes) : 0.0;
  return c;
}

}  // namespace

std::vector<FormatCost> compare_formats(const Tensor& dense, const Tensor& mask, const Pattern& pattern,
                                        DType value_type) {
  check_dense_and_mask(dense, mask, "compare_formats");
  // The reference every round trip must reproduce: the weight with pruned entries exactly 0.
  Tensor want = dense.clone();
  if (mask.defined()) {
    float* w = want.data<float>();
    const std::uint8_t* m = mask.data<std::uint8_t>();
    for (std::int64_t i = 0; i < want.numel(); ++i)
      if (!m[i]) w[i] = 0.f;
  }
  const std::size_t dense_bytes = static_cast<std::size_t>(dense.numel()) * dtype_size(value_type);
  std::vector<FormatCost> out;

  FormatCost d;
  d.format = "dense";
  d.detail = fmt::format("{}x{} {}", dense.size(0), dense.size(1), dtype_name(value_type));
  d.footprint.values = dense_bytes;
  d.ratio_to_dense = 1.0;
  d.round_trip_exact = true;
  out.push_back(d);

  out.push_back(build("csr", want, dense_bytes, value_type, [&](std::string& detail) {
    Csr c = Csr::from_dense(dense, mask);
    detail = fmt::format("nnz={}, {} column indices", c.nnz(), index_width_name(c.index_width));
    return c;
  }));
  out.push_back(build("csc", want, dense_bytes, value_type, [&](std::string& detail) {
    Csc c = Csc::from_dense(dense, mask);
    detail = fmt::format("nnz={}, {} row indices", c.nnz(), index_width_name(c.index_width));
    return c;
  }));
  out.push_back(build("coo", want, dense_bytes, value_type, [&](std::string& detail) {
    Coo c = Coo::from_dense(dense, mask);
    detail = fmt::format("nnz={}, u32 row and column indices", c.nnz());
    return c;
  }));
  const int br = pattern.kind == Pattern::Kind::block ? pattern.block_rows : 4;
  const int bc = pattern.kind == Pattern::Kind::block ? pattern.block_cols : 4;
  out.push_back(build(fmt::format("bsr:{}x{}", br, bc), want, dense_bytes, value_type, [&](std::string& detail) {
    Bsr b = Bsr::from_dense(dense, br, bc, mask);
    detail = fmt::format("{} blocks, {} block-column indices", b.nblocks(), index_width_name(b.index_width));
    return b;
  }));
  const int bank = pattern.kind == Pattern::Kind::balanced ? pattern.bank
                   : pattern.kind == Pattern::Kind::nm     ? pattern.m
                                                           : 32;
  out.push_back(build(fmt::format("balanced:bank={}", bank), want, dense_bytes, value_type, [&](std::string& detail) {
    Balanced b = Balanced::from_dense_infer_k(dense, bank, mask);
    detail = fmt::format("k={} per bank of {}, {} offsets", b.k, b.bank, b.wide_offsets() ? "u16" : "u8");
    return b;
  }));
  out.push_back(build("nv24", want, dense_bytes, value_type, [&](std::string& detail) {
    Sparse24 s = Sparse24::from_dense(dense, mask);
    detail = "2 of every 4 values + 2-bit indices (NVIDIA sparse tensor cores)";
    return s;
  }));
  return out;
}

}  // namespace sb
