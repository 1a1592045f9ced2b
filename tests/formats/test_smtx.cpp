// The DLMC .smtx loader: the repository's sample, the full shared subset when present, bad files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

#include "formats/helpers.h"
#include "sparsebench/formats/smtx.h"

using namespace sb;
namespace fs = std::filesystem;

namespace {

const std::string kRepoDlmc = SB_SOURCE_DIR "/data/dlmc";
const std::string kSharedDlmc = SB_SOURCE_DIR "/../shared/data/dlmc";

// A scratch directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("sb_formats_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name, const std::string& content) const {
    const std::string p = (path_ / name).string();
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  std::string path(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& dir() const { return path_; }

 private:
  fs::path path_;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void expect_same_pattern(const Csr& a, const Csr& b) {
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.cols, b.cols);
  ASSERT_EQ(a.nnz(), b.nnz());
  EXPECT_TRUE(std::equal(a.row_ptr.begin(), a.row_ptr.end(), b.row_ptr.begin(), b.row_ptr.end()));
  for (std::int64_t e = 0; e < a.nnz(); ++e) ASSERT_EQ(a.col(e), b.col(e)) << "entry " << e;
}

struct Expected {
  const char* path;
  std::int64_t rows, cols, nnz;
};
// The headers of the sample in data/dlmc (also listed in its README.md).
const Expected kRepoFiles[] = {
    {"rn50/magnitude_pruning/0.7/bottleneck_2_block_group2_1_1.smtx.gz", 128, 1152, 44236},
    {"rn50/magnitude_pruning/0.7/bottleneck_3_block_group1_1_1.smtx.gz", 256, 64, 4915},
    {"rn50/magnitude_pruning/0.9/bottleneck_1_block_group_projection_block_group1.smtx.gz", 64, 64, 409},
    {"rn50/magnitude_pruning/0.9/bottleneck_2_block_group1_1_1.smtx.gz", 64, 576, 3686},
    {"rn50/magnitude_pruning/0.9/final_dense.smtx.gz", 1000, 2048, 204800},
    {"rn50/magnitude_pruning/0.9/initial_conv.smtx.gz", 64, 147, 940},
    {"transformer/magnitude_pruning/0.7/"
     "body_encoder_layer_0_self_attention_multihead_attention_q_fully_connected.smtx.gz",
     512, 512, 78643},
    {"transformer/magnitude_pruning/0.9/"
     "body_encoder_layer_0_self_attention_multihead_attention_q_fully_connected.smtx.gz",
     512, 512, 26214},
};

}  // namespace

TEST(FormatSmtx, RepoDlmcSample) {
  for (const auto& x : kRepoFiles) {
    SCOPED_TRACE(x.path);
    Rng rng(11);
    const Csr c = load_smtx(kRepoDlmc + "/" + x.path, rng, -0.5f, 0.25f);
    EXPECT_EQ(c.rows, x.rows);
    EXPECT_EQ(c.cols, x.cols);
    EXPECT_EQ(c.nnz(), x.nnz);
    EXPECT_EQ(c.index_width, IndexWidth::u16);
    c.validate();
    for (float v : c.values) {
      ASSERT_GE(v, -0.5f);
      ASSERT_LT(v, 0.25f);
    }
    Rng same(11);
    const Csr again = load_smtx(kRepoDlmc + "/" + x.path, same, -0.5f, 0.25f);
    EXPECT_TRUE(std::equal(c.values.begin(), c.values.end(), again.values.begin(), again.values.end()))
        << "the same seed must give the same values";
  }
  const auto listed = list_smtx(kRepoDlmc + "/rn50/magnitude_pruning/0.9");
  ASSERT_EQ(listed.size(), 4u);
  EXPECT_EQ(fs::path(listed[0]).filename(), "bottleneck_1_block_group_projection_block_group1.smtx.gz");
  EXPECT_EQ(fs::path(listed[3]).filename(), "initial_conv.smtx.gz");
}

TEST(FormatSmtx, SharedDlmcSweep) {
  if (!fs::is_directory(kSharedDlmc))
    GTEST_SKIP() << "the shared DLMC subset is absent (" << kSharedDlmc << "); the repository sample is tested above";
  // dlmc.csv gives every matrix's shape and nnz independently of the files themselves.
  std::map<std::string, std::tuple<std::int64_t, std::int64_t, std::int64_t>> csv;
  {
    std::ifstream in(kSharedDlmc + "/dlmc.csv");
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::vector<std::string> f;
      std::stringstream ss(line);
      for (std::string item; std::getline(ss, item, ',');) f.push_back(item);
      if (f.size() < 7) continue;
      csv[f[3]] = {std::stoll(f[4]), std::stoll(f[5]), static_cast<std::int64_t>(std::stod(f[6]))};
    }
  }
  int files = 0, checked = 0;
  Rng rng(12);
  for (const auto& entry : fs::recursive_directory_iterator(kSharedDlmc)) {
    if (!entry.is_directory()) continue;
    for (const std::string& path : list_smtx(entry.path().string())) {
      if (path.size() < 8 || path.substr(path.size() - 8) != ".smtx.gz") continue;
      SCOPED_TRACE(path);
      const Csr c = load_smtx(path, rng);
      c.validate();
      ++files;
      std::string name = fs::relative(path, kSharedDlmc).string();
      name = name.substr(0, name.size() - 8);
      if (auto it = csv.find(name); it != csv.end()) {
        EXPECT_EQ(c.rows, std::get<0>(it->second));
        EXPECT_EQ(c.cols, std::get<1>(it->second));
        EXPECT_EQ(c.nnz(), std::get<2>(it->second));
        ++checked;
      }
    }
  }
  EXPECT_GT(files, 0) << "no .smtx.gz under " << kSharedDlmc;
  EXPECT_GT(checked, 0) << "no file matched dlmc.csv";
  RecordProperty("files", files);
  RecordProperty("checked_against_csv", checked);
}

TEST(FormatSmtx, SaveLoadRoundTrip) {
  TempDir tmp;
  Rng rng(13);
  auto s = sb::test::random_sample(rng, 37, 70000, 0.001);  // u32 columns
  const Csr c = Csr::from_dense(s.dense, s.mask);
  ASSERT_EQ(c.index_width, IndexWidth::u32);
  for (const char* name : {"m.smtx", "m.smtx.gz"}) {
    SCOPED_TRACE(name);
    save_smtx(tmp.path(name), c);
    Rng r(1);
    expect_same_pattern(load_smtx(tmp.path(name), r), c);
  }
  EXPECT_EQ(read_bytes(tmp.path("m.smtx")).substr(0, 15), "37, 70000, " + std::to_string(c.nnz()).substr(0, 4));
  EXPECT_NE(read_bytes(tmp.path("m.smtx.gz")).substr(0, 2), read_bytes(tmp.path("m.smtx")).substr(0, 2))
      << ".gz output must be compressed";
  // An empty pattern: line 3 is empty.
  const Csr empty = Csr::from_dense(Tensor::zeros({3, 4}));
  save_smtx(tmp.path("empty.smtx"), empty);
  EXPECT_EQ(read_bytes(tmp.path("empty.smtx")), "3, 4, 0\n0 0 0 0\n\n");
  Rng r(1);
  expect_same_pattern(load_smtx(tmp.path("empty.smtx"), r), empty);
  // A DLMC file survives a save and reload unchanged.
  const std::string dlmc = kRepoDlmc + "/" + kRepoFiles[5].path;
  const Csr real = load_smtx(dlmc, r);
  save_smtx(tmp.path("real.smtx.gz"), real);
  expect_same_pattern(load_smtx(tmp.path("real.smtx.gz"), r), real);
}

TEST(FormatSmtx, BadFiles) {
  TempDir tmp;
  Rng rng(14);
  const std::string good = "2, 4, 3\n0 2 3\n1 3 0\n";
  Rng r0(1);
  const Csr ok = load_smtx(tmp.file("good.smtx", good), r0);
  EXPECT_EQ(ok.nnz(), 3);
  // Trailing blanks, CRLF and a missing final newline are tolerated.
  Rng r1(1);
  expect_same_pattern(load_smtx(tmp.file("crlf.smtx", "2, 4, 3\r\n0 2 3 \r\n1 3 0"), r1), ok);

  const std::string missing = tmp.path("nope.smtx.gz");
  EXPECT_SB_ERROR(load_smtx(missing, rng), "smtx file '" + missing + "': cannot open (No such file or directory)");
  EXPECT_SB_ERROR(load_smtx(tmp.dir().string(), rng), "is a directory, expected a file");
  EXPECT_SB_ERROR(load_smtx(tmp.file("empty.smtx", ""), rng), "empty, expected line 1 'nrows, ncols, nnz'");
  EXPECT_SB_ERROR(load_smtx(tmp.file("h.smtx", "2, 4\n0 2 3\n1 3 0\n"), rng),
                  "line 1 has 2 numbers, expected 3 (nrows, ncols, nnz)");
  EXPECT_SB_ERROR(load_smtx(tmp.file("x.smtx", "2, 4, 3\n0 2 x\n1 3 0\n"), rng),
                  "line 2 (row offsets), item 3: 'x' is not a non-negative integer");
  EXPECT_SB_ERROR(load_smtx(tmp.file("neg.smtx", "2, 4, 3\n0 2 3\n1 -3 0\n"), rng),
                  "line 3 (column indices), item 2: '-3' is not a non-negative integer");
  // Truncated: plain text cut inside line 3, cut before line 3, and a gzip stream cut short.
  const std::string cut = tmp.file("cut.smtx", "2, 4, 3\n0 2 3\n1 3");
  EXPECT_SB_ERROR(load_smtx(cut, rng), "smtx file '" + cut + "': line 3 has 2 column indices, expected 3 (nnz)");
  EXPECT_SB_ERROR(load_smtx(tmp.file("cut2.smtx", "2, 4, 3\n0 2 3\n"), rng),
                  "line 3 missing, expected 3 column indices (nnz); truncated?");
  EXPECT_SB_ERROR(load_smtx(tmp.file("cut1.smtx", "2, 4, 3\n"), rng), "line 2 missing, expected 3 row offsets");
  {
    Rng r(2);
    auto s = sb::test::random_sample(r, 64, 64, 0.3);
    save_smtx(tmp.path("big.smtx.gz"), Csr::from_dense(s.dense, s.mask));
    const std::string bytes = read_bytes(tmp.path("big.smtx.gz"));
    const std::string trunc = tmp.file("trunc.smtx.gz", bytes.substr(0, bytes.size() / 2));
    EXPECT_SB_ERROR(load_smtx(trunc, rng),
                    "smtx file '" + trunc + "': read failed (unexpected end of file); truncated or corrupt?");
  }
  // Counts that disagree.
  const std::string lines2 = tmp.file("rows.smtx", "64, 64, 3\n0 1 2 3 3 3 3 3 3 3\n1 3 0\n");
  EXPECT_SB_ERROR(load_smtx(lines2, rng),
                  "smtx file '" + lines2 + "': line 2 has 10 row offsets, expected 65 (nrows + 1)");
  EXPECT_SB_ERROR(load_smtx(tmp.file("nnz.smtx", "2, 4, 4\n0 2 3\n1 3 0\n"), rng),
                  "line 2: the last row offset is 3, expected 4 (nnz)");
  EXPECT_SB_ERROR(load_smtx(tmp.file("nnz2.smtx", "2, 4, 3\n0 2 3\n1 3 0 2\n"), rng),
                  "line 3 has 4 column indices, expected 3 (nnz)");
  EXPECT_SB_ERROR(load_smtx(tmp.file("first.smtx", "2, 4, 3\n1 2 3\n1 3 0\n"), rng),
                  "line 2: the first row offset is 1, expected 0");
  EXPECT_SB_ERROR(load_smtx(tmp.file("dec.smtx", "3, 4, 3\n0 2 1 3\n1 3 0\n"), rng),
                  "line 2: row offsets decrease at row 1 (2 then 1)");
  EXPECT_SB_ERROR(load_smtx(tmp.file("dense.smtx", "1, 2, 3\n0 3\n0 1 1\n"), rng),
                  "nnz=3 is more than nrows x ncols = 1 x 2");
  // Column indices.
  EXPECT_SB_ERROR(load_smtx(tmp.file("col.smtx", "2, 4, 3\n0 2 3\n1 3 4\n"), rng),
                  "line 3: column index 4 (entry 2, row 1) is out of range, expected < 4 (ncols)");
  EXPECT_SB_ERROR(load_smtx(tmp.file("asc.smtx", "2, 4, 3\n0 2 3\n3 1 0\n"), rng),
                  "line 3: column indices of row 0 are not strictly ascending (1 after 3 at entry 1)");
  EXPECT_SB_ERROR(load_smtx(tmp.file("extra.smtx", good + "5 6\n"), rng), "line 4 is unexpected");
  EXPECT_SB_ERROR(load_smtx(tmp.file("range.smtx", good), rng, 1.f, 0.f), "is not a finite interval with lo <= hi");
  // save_smtx refuses a corrupt matrix and an unwritable path.
  Csr bad = ok;
  bad.col16[0] = 9;
  EXPECT_SB_ERROR(save_smtx(tmp.path("bad.smtx"), bad), "out of range");
  EXPECT_SB_ERROR(save_smtx(tmp.path("no/such/dir/x.smtx"), ok), "cannot open for writing");
  EXPECT_SB_ERROR(save_smtx(tmp.path("no/such/dir/x.smtx.gz"), ok), "cannot open for writing");
}

TEST(FormatSmtx, ListSmtx) {
  TempDir tmp;
  tmp.file("b.smtx.gz", "");
  tmp.file("a.smtx", "");
  tmp.file("c.txt", "");
  tmp.file("d.smtx.bak", "");
  fs::create_directories(tmp.dir() / "sub.smtx");  // a directory is not a matrix
  tmp.file("sub.smtx/e.smtx", "");                 // and listing is not recursive
  const auto l = list_smtx(tmp.dir().string());
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(fs::path(l[0]).filename(), "a.smtx");
  EXPECT_EQ(fs::path(l[1]).filename(), "b.smtx.gz");
  EXPECT_EQ(list_smtx(tmp.path("c.txt")), std::vector<std::string>{tmp.path("c.txt")});
  EXPECT_SB_ERROR(list_smtx(tmp.path("missing")), "smtx path '" + tmp.path("missing") + "': no such file or directory");
}
