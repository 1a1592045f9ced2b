// IDX reader (gz or raw) and the Fashion-MNIST loader.
#include "sparsebench/data/idx.h"

#include <zlib.h>

#include <filesystem>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "sparsebench/core/error.h"

namespace sb {

namespace {

struct GzCloser {
  void operator()(gzFile_s* f) const {
    if (f) gzclose_r(f);
  }
};
using GzPtr = std::unique_ptr<gzFile_s, GzCloser>;

// Reads exactly `n` bytes or throws; `what` names the part being read for the message.
void read_exact(gzFile f, const std::string& path, void* out, std::size_t n, const char* what) {
  auto* p = static_cast<unsigned char*>(out);
  std::size_t done = 0;
  while (done < n) {
    // gzread takes an unsigned count: read in chunks well below its limit.
    const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n - done, 1u << 30));
    const int got = gzread(f, p + done, chunk);
    if (got < 0) {
      int err = 0;
      const char* msg = gzerror(f, &err);
      fail(fmt::format("{}: cannot read the {}: {} (a truncated or corrupt gzip stream?)", path, what, msg));
    }
    if (got == 0)
      fail(fmt::format("{}: truncated: the {} needs {} bytes, the file ends after {}", path, what, n, done));
    done += static_cast<std::size_t>(got);
  }
}

std::uint32_t big_endian_u32(const unsigned char* b) {
  return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
}

const char* kGetData =
    "install the data set with `apt-get install dataset-fashion-mnist` (files under {}), or pass "
    "--data DIR naming a directory with the same IDX files (raw or .gz)";

}  // namespace

Tensor read_idx(const std::string& path, std::uint32_t expected_magic) {
  SB_CHECK(std::filesystem::is_regular_file(path), "{}: no such file", path);
  GzPtr f(gzopen(path.c_str(), "rb"));
  SB_CHECK(f != nullptr, "{}: cannot open", path);
  unsigned char header[4];
  read_exact(f.get(), path, header, 4, "magic number");
  const std::uint32_t magic = big_endian_u32(header);
  SB_CHECK(magic == expected_magic, "{}: IDX magic number 0x{:08x}, expected 0x{:08x} ({})", path, magic,
           expected_magic,
           expected_magic == kIdxImagesMagic   ? "unsigned-byte images, 3 dimensions"
           : expected_magic == kIdxLabelsMagic ? "unsigned-byte labels, 1 dimension"
                                               : "unsigned bytes");
  SB_CHECK((magic & 0xffffff00u) == 0x00000800u, "{}: IDX type 0x{:02x} is not unsigned bytes (0x08)", path,
           (magic >> 8) & 0xff);
  const int rank = static_cast<int>(magic & 0xff);
  SB_CHECK(rank >= 1 && rank <= 8, "{}: IDX with {} dimensions, expected 1 to 8", path, rank);
  std::vector<unsigned char> dims_raw(static_cast<std::size_t>(rank) * 4);
  read_exact(f.get(), path, dims_raw.data(), dims_raw.size(), "dimension sizes");
  Shape shape;
  std::int64_t total = 1;
  for (int d = 0; d < rank; ++d) {
    const std::int64_t n = big_endian_u32(&dims_raw[static_cast<std::size_t>(d) * 4]);
    SB_CHECK(n >= 1, "{}: dimension {} has size 0", path, d);
    total *= n;
    SB_CHECK(total <= (std::int64_t{1} << 31), "{}: {} bytes of data is more than this reader accepts (2^31)", path,
             total);
    shape.push_back(n);
  }
  Tensor t = Tensor::empty(shape, DType::u8);
  read_exact(f.get(), path, t.data<std::uint8_t>(), static_cast<std::size_t>(total),
             fmt::format("data of shape {}", shape_to_string(shape)).c_str());
  unsigned char extra;
  const int more = gzread(f.get(), &extra, 1);
  SB_CHECK(more == 0, "{}: {} after the {} bytes of shape {}", path,
           more > 0 ? "data left" : "a corrupt gzip stream", total, shape_to_string(shape));
  const int closed = gzclose_r(f.release());
  SB_CHECK(closed == Z_OK, "{}: the gzip stream is truncated or corrupt (zlib error {})", path, closed);
  return t;
}

namespace {

std::string find_file(const std::string& dir, const std::string& name) {
  for (const std::string& candidate : {name + ".gz", name}) {
    const std::string p = (std::filesystem::path(dir) / candidate).string();
    if (std::filesystem::exists(p)) return p;
  }
  fail(fmt::format("Fashion-MNIST file {}/{}(.gz) not found: {}", dir, name, fmt::format(fmt::runtime(kGetData), kFashionMnistDir)));
}

ImageSet load_split(const std::string& dir, const std::string& prefix) {
  ImageSet s;
  const std::string ipath = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string lpath = find_file(dir, prefix + "-labels-idx1-ubyte");
  s.images = read_idx(ipath, kIdxImagesMagic);
  s.labels = read_idx(lpath, kIdxLabelsMagic);
  SB_CHECK(s.images.size(1) == 28 && s.images.size(2) == 28, "{}: images are {}x{}, Fashion-MNIST's are 28x28", ipath,
           s.images.size(1), s.images.size(2));
  SB_CHECK(s.images.size(0) == s.labels.size(0), "{} holds {} images but {} holds {} labels", ipath, s.images.size(0),
           lpath, s.labels.size(0));
  const std::uint8_t* l = s.labels.data<std::uint8_t>();
  for (std::int64_t i = 0; i < s.labels.numel(); ++i)
    SB_CHECK(l[i] < FashionMnist::kClasses, "{}: label {} at index {} is not a class id 0..9", lpath, int{l[i]}, i);
  return s;
}

}  // namespace

FashionMnist load_fashion_mnist(const std::string& dir) {
  const std::string d = dir.empty() ? std::string(kFashionMnistDir) : dir;
  SB_CHECK(std::filesystem::is_directory(d), "Fashion-MNIST directory {} not found: {}", d,
           fmt::format(fmt::runtime(kGetData), kFashionMnistDir));
  FashionMnist fm;
  fm.train = load_split(d, "train");
  fm.test = load_split(d, "t10k");
  return fm;
}

}  // namespace sb
