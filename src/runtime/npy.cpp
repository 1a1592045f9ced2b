// NumPy .npy reading and writing.
#include "sparsebench/runtime/npy.h"

#include <cstring>
#include <fstream>
#include <limits>
#include <vector>

#include <fmt/format.h>

#include "sparsebench/core/error.h"

namespace sb {

namespace {

// The value of `key` in the header dict text: "'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".
std::string header_field(const std::string& header, const std::string& key, const std::string& path) {
  const auto k = header.find("'" + key + "'");
  SB_CHECK(k != std::string::npos, "{}: .npy header has no '{}': {}", path, key, header);
  auto p = header.find(':', k);
  SB_CHECK(p != std::string::npos, "{}: malformed .npy header: {}", path, header);
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  std::size_t e = p;
  if (header[p] == '(') {
    e = header.find(')', p);
    SB_CHECK(e != std::string::npos, "{}: malformed shape in .npy header: {}", path, header);
    return header.substr(p + 1, e - p - 1);
  }
  if (header[p] == '\'') {
    e = header.find('\'', p + 1);
    SB_CHECK(e != std::string::npos, "{}: malformed .npy header: {}", path, header);
    return header.substr(p + 1, e - p - 1);
  }
  while (e < header.size() && header[e] != ',' && header[e] != '}') ++e;
  return header.substr(p, e - p);
}

}  // namespace

Tensor read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  SB_CHECK(f.good(), "{}: cannot open for reading", path);
  char magic[8] = {};
  f.read(magic, 8);
  SB_CHECK(f.gcount() == 8 && std::memcmp(magic, "\x93NUMPY", 6) == 0, "{}: not a .npy file (bad magic)", path);
  const int major = static_cast<unsigned char>(magic[6]);
  SB_CHECK(major >= 1 && major <= 3, "{}: .npy format version {} not supported (1 to 3)", path, major);
  std::uint32_t hlen = 0;
  if (major == 1) {
    unsigned char b[2];
    f.read(reinterpret_cast<char*>(b), 2);
    hlen = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    f.read(reinterpret_cast<char*>(b), 4);
    hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
  }
  SB_CHECK(f.good() && hlen < (1u << 20), "{}: truncated or oversized .npy header", path);
  std::string header(hlen, '\0');
  f.read(header.data(), hlen);
  SB_CHECK(f.good(), "{}: truncated .npy header", path);
  const std::string descr = header_field(header, "descr", path);
  const std::string fortran = header_field(header, "fortran_order", path);
  SB_CHECK(fortran.find("False") != std::string::npos, "{}: Fortran-order arrays are not supported (save with C order)",
           path);
  Shape shape;
  const std::string dims = header_field(header, "shape", path);
  std::size_t p = 0;
  while (p < dims.size()) {
    while (p < dims.size() && (dims[p] == ' ' || dims[p] == ',')) ++p;
    if (p >= dims.size()) break;
    std::size_t used = 0;
    const long long d = std::stoll(dims.substr(p), &used);
    SB_CHECK(used > 0 && d >= 0, "{}: bad shape '({})' in .npy header", path, dims);
    shape.push_back(d);
    p += used;
  }
  const std::int64_t n = shape_numel(shape);
  auto read_raw = [&](std::size_t bytes, void* dst) {
    f.read(static_cast<char*>(dst), static_cast<std::streamsize>(bytes));
    SB_CHECK(static_cast<std::size_t>(f.gcount()) == bytes, "{}: truncated data ({} of {} bytes)", path, f.gcount(), bytes);
  };
  if (descr == "<f4" || descr == "|f4") {
    Tensor t = Tensor::empty(shape);
    read_raw(static_cast<std::size_t>(n) * 4, t.raw_data());
    return t;
  }
  if (descr == "<i4") {
    Tensor t = Tensor::empty(shape, DType::i32);
    read_raw(static_cast<std::size_t>(n) * 4, t.raw_data());
    return t;
  }
  if (descr == "<f8") {
    std::vector<double> v(static_cast<std::size_t>(n));
    read_raw(v.size() * 8, v.data());
    Tensor t = Tensor::empty(shape);
    for (std::int64_t i = 0; i < n; ++i) t.data<float>()[i] = static_cast<float>(v[i]);
    return t;
  }
  if (descr == "<i8") {
    std::vector<std::int64_t> v(static_cast<std::size_t>(n));
    read_raw(v.size() * 8, v.data());
    Tensor t = Tensor::empty(shape, DType::i32);
    for (std::int64_t i = 0; i < n; ++i) {
      SB_CHECK(v[i] >= std::numeric_limits<std::int32_t>::min() && v[i] <= std::numeric_limits<std::int32_t>::max(),
               "{}: int64 value {} at element {} does not fit int32", path, v[i], i);
      t.data<std::int32_t>()[i] = static_cast<std::int32_t>(v[i]);
    }
    return t;
  }
  fail(fmt::format("{}: dtype '{}' not supported (expected <f4, <f8, <i4 or <i8)", path, descr));
}

void write_npy(const std::string& path, const Tensor& tensor) {
  SB_CHECK(tensor.defined() && (tensor.dtype() == DType::f32 || tensor.dtype() == DType::i32),
           "{}: only f32 and i32 tensors can be written", path);
  const Tensor t = tensor.contiguous();
  std::string dims;
  for (auto d : t.shape()) dims += fmt::format("{}, ", d);
  if (t.dim() > 1) dims.resize(dims.size() - 2);
  if (t.dim() == 1) dims.resize(dims.size() - 1);
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}",
                                   t.dtype() == DType::f32 ? "<f4" : "<i4", dims);
  // Magic (6) + version (2) + length (2) + header + '\n', padded to a multiple of 64.
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream f(path, std::ios::binary);
  SB_CHECK(f.good(), "{}: cannot open for writing", path);
  const auto hlen = static_cast<std::uint16_t>(header.size());
  const char pre[10] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<char>(hlen & 0xff), static_cast<char>(hlen >> 8)};
  f.write(pre, 10);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(static_cast<const char*>(t.raw_data()), static_cast<std::streamsize>(t.nbytes()));
  SB_CHECK(f.good(), "{}: write failed", path);
}

}  // namespace sb
