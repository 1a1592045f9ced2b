// IDX reader: small files written here (raw and gzip, good and corrupt), and the real
// Fashion-MNIST when the Debian package is installed.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "sparsebench/core/error.h"
#include "sparsebench/data/idx.h"

namespace sb {
namespace {

namespace fs = std::filesystem;

std::vector<unsigned char> idx_bytes(std::uint32_t magic, const std::vector<std::uint32_t>& dims,
                                     const std::vector<unsigned char>& data) {
  std::vector<unsigned char> b;
  auto put = [&](std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(v >> s));
  };
  put(magic);
  for (auto d : dims) put(d);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

class Idx : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sb_idx_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write_raw(const std::string& name, const std::vector<unsigned char>& bytes) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return p;
  }
  std::string write_gz(const std::string& name, const std::vector<unsigned char>& bytes) {
    const std::string p = (dir_ / name).string();
    gzFile f = gzopen(p.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
    return p;
  }
  fs::path dir_;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::vector<unsigned char> pixels(std::size_t n) {
  std::vector<unsigned char> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<unsigned char>(i * 7 + 3);
  return v;
}

TEST_F(Idx, ReadsRawAndGzip) {
  const auto bytes = idx_bytes(kIdxImagesMagic, {3, 4, 5}, pixels(60));
  for (const std::string& p : {write_raw("a.idx", bytes), write_gz("a.idx.gz", bytes)}) {
    const Tensor t = read_idx(p, kIdxImagesMagic);
    ASSERT_EQ(t.shape(), (Shape{3, 4, 5})) << p;
    ASSERT_EQ(t.dtype(), DType::u8);
    for (int i = 0; i < 60; ++i) EXPECT_EQ(t.data<std::uint8_t>()[i], static_cast<std::uint8_t>(i * 7 + 3)) << p;
  }
  const Tensor l = read_idx(write_gz("l.gz", idx_bytes(kIdxLabelsMagic, {4}, {0, 9, 3, 1})), kIdxLabelsMagic);
  EXPECT_EQ(l.shape(), (Shape{4}));
  EXPECT_EQ(l.data<std::uint8_t>()[1], 9);
}

TEST_F(Idx, RejectsCorruptFiles) {
  const auto good = idx_bytes(kIdxImagesMagic, {2, 3, 3}, pixels(18));
  // Wrong magic: labels where images are expected, and a non-byte type.
  EXPECT_NE(error_of([&] { read_idx(write_raw("m", good), kIdxLabelsMagic); }).find("magic"), std::string::npos);
  EXPECT_NE(error_of([&] { read_idx(write_raw("t", idx_bytes(0x00000d03, {2, 3, 3}, pixels(72))), kIdxImagesMagic); })
                .find("magic"),
            std::string::npos);
  // Truncated body (raw and gzip), truncated header, trailing data, a zero dimension.
  auto cut = good;
  cut.resize(good.size() - 5);
  EXPECT_NE(error_of([&] { read_idx(write_raw("c", cut), kIdxImagesMagic); }).find("truncated"), std::string::npos);
  EXPECT_NE(error_of([&] { read_idx(write_gz("c.gz", cut), kIdxImagesMagic); }).find("truncated"), std::string::npos);
  std::vector<unsigned char> head(good.begin(), good.begin() + 9);
  EXPECT_NE(error_of([&] { read_idx(write_raw("h", head), kIdxImagesMagic); }).find("truncated"), std::string::npos);
  auto longer = good;
  longer.push_back(1);
  EXPECT_NE(error_of([&] { read_idx(write_raw("x", longer), kIdxImagesMagic); }).find("data left"), std::string::npos);
  EXPECT_NE(error_of([&] { read_idx(write_raw("z", idx_bytes(kIdxImagesMagic, {0, 3, 3}, {})), kIdxImagesMagic); })
                .find("size 0"),
            std::string::npos);
  // A gzip file cut in the middle of its compressed stream.
  const std::string gz = write_gz("g.gz", idx_bytes(kIdxImagesMagic, {50, 28, 28}, pixels(50 * 784)));
  fs::resize_file(gz, fs::file_size(gz) / 2);
  const std::string msg = error_of([&] { read_idx(gz, kIdxImagesMagic); });
  EXPECT_NE(msg.find(gz), std::string::npos) << msg;
  // Missing file: named.
  EXPECT_NE(error_of([&] { read_idx((dir_ / "nope").string(), kIdxImagesMagic); }).find("nope"), std::string::npos);
}

TEST_F(Idx, FashionMnistLayoutAndErrors) {
  // A miniature data set in the Debian layout: raw training files, gzip test files.
  write_raw("train-images-idx3-ubyte", idx_bytes(kIdxImagesMagic, {3, 28, 28}, pixels(3 * 784)));
  write_raw("train-labels-idx1-ubyte", idx_bytes(kIdxLabelsMagic, {3}, {1, 2, 3}));
  write_gz("t10k-images-idx3-ubyte.gz", idx_bytes(kIdxImagesMagic, {2, 28, 28}, pixels(2 * 784)));
  write_gz("t10k-labels-idx1-ubyte.gz", idx_bytes(kIdxLabelsMagic, {2}, {9, 0}));
  const FashionMnist fm = load_fashion_mnist(dir_.string());
  EXPECT_EQ(fm.train.images.shape(), (Shape{3, 28, 28}));
  EXPECT_EQ(fm.test.labels.data<std::uint8_t>()[0], 9);
  // Count mismatch, bad label, missing file naming the package and --data.
  write_gz("t10k-labels-idx1-ubyte.gz", idx_bytes(kIdxLabelsMagic, {3}, {9, 0, 1}));
  EXPECT_NE(error_of([&] { load_fashion_mnist(dir_.string()); }).find("labels"), std::string::npos);
  write_gz("t10k-labels-idx1-ubyte.gz", idx_bytes(kIdxLabelsMagic, {2}, {9, 10}));
  EXPECT_NE(error_of([&] { load_fashion_mnist(dir_.string()); }).find("label 10"), std::string::npos);
  fs::remove(dir_ / "t10k-labels-idx1-ubyte.gz");
  const std::string msg = error_of([&] { load_fashion_mnist(dir_.string()); });
  EXPECT_NE(msg.find("t10k-labels-idx1-ubyte"), std::string::npos) << msg;
  EXPECT_NE(msg.find("apt-get install dataset-fashion-mnist"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--data DIR"), std::string::npos) << msg;
  const std::string nodir = error_of([&] { load_fashion_mnist((dir_ / "absent").string()); });
  EXPECT_NE(nodir.find("dataset-fashion-mnist"), std::string::npos) << nodir;
}

TEST(FashionMnist, RealDataSet) {
  if (!fs::exists(std::string(kFashionMnistDir) + "/t10k-labels-idx1-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)";
  const FashionMnist fm = load_fashion_mnist();
  EXPECT_EQ(fm.train.images.shape(), (Shape{60000, 28, 28}));
  EXPECT_EQ(fm.test.images.shape(), (Shape{10000, 28, 28}));
  // Balanced classes: 6000 / 1000 of each.
  std::vector<int> count(10, 0);
  for (std::int64_t i = 0; i < 10000; ++i) ++count[fm.test.labels.data<std::uint8_t>()[i]];
  for (int c : count) EXPECT_EQ(c, 1000);
}

}  // namespace
}  // namespace sb
