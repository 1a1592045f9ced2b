#include "sparsebench/formats/smtx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string_view>

#include "sparsebench/core/error.h"

namespace sb {

namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kMaxU32Dimension = std::int64_t{1} << 32;
constexpr std::int64_t kMaxNnz = std::numeric_limits<std::int32_t>::max();

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// zlib prefixes its messages with the path, which our messages already name.
std::string gz_message(gzFile f, const std::string& path, int* err) {
  std::string msg = gzerror(f, err);
  if (msg.rfind(path + ": ", 0) == 0) msg.erase(0, path.size() + 2);
  return msg;
}

// gzread passes plain files through unchanged, so one reader serves .smtx and .smtx.gz.
std::string read_all(const std::string& path) {
  std::error_code ec;
  SB_CHECK(!fs::is_directory(path, ec), "smtx file '{}': is a directory, expected a file", path);
  errno = 0;
  gzFile f = gzopen(path.c_str(), "rb");
  SB_CHECK(f != nullptr, "smtx file '{}': cannot open ({})", path, errno ? std::strerror(errno) : "out of memory");
  gzbuffer(f, 1 << 18);
  std::string text;
  constexpr unsigned kChunk = 1 << 20;
  for (;;) {
    const std::size_t old = text.size();
    text.resize(old + kChunk);
    const int n = gzread(f, text.data() + old, kChunk);
    if (n < 0) {
      int err = 0;
      std::string msg = gz_message(f, path, &err);
      gzclose(f);
      fail(fmt::format("smtx file '{}': read failed ({}); truncated or corrupt?", path, msg));
    }
    text.resize(old + static_cast<std::size_t>(n));
    if (n == 0) break;
  }
  int err = Z_OK;
  std::string msg = gz_message(f, path, &err);
  gzclose(f);
  SB_CHECK(err == Z_OK || err == Z_STREAM_END, "smtx file '{}': read failed ({}); truncated or corrupt?", path, msg);
  return text;
}

// The integers of one line, separated by blanks and/or commas.
std::vector<std::int64_t> parse_line(const std::string& path, std::string_view line, int line_no, const char* what) {
  std::vector<std::int64_t> out;
  const char* p = line.data();
  const char* end = p + line.size();
  for (;;) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == ',' || *p == '\r')) ++p;
    if (p == end) break;
    std::int64_t v = 0;
    auto [q, ec] = std::from_chars(p, end, v);
    if (ec != std::errc() || v < 0 || (q < end && !(*q == ' ' || *q == '\t' || *q == ',' || *q == '\r'))) {
      const char* tok_end = p;
      while (tok_end < end && !(*tok_end == ' ' || *tok_end == '\t' || *tok_end == ',')) ++tok_end;
      fail(fmt::format("smtx file '{}': line {} ({}), item {}: '{}' is not a non-negative integer", path, line_no, what,
                       out.size() + 1, std::string_view(p, static_cast<std::size_t>(tok_end - p))));
    }
    out.push_back(v);
    p = q;
  }
  return out;
}

bool blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

}  // namespace

Csr load_smtx(const std::string& path, Rng& rng, float lo, float hi) {
  SB_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi,
           "load_smtx '{}': value range [{}, {}) is not a finite interval with lo <= hi", path, lo, hi);
  const std::string text = read_all(path);
  std::vector<std::string_view> lines;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    lines.emplace_back(text.data() + pos, nl - pos);
    pos = nl + 1;
  }
  while (!lines.empty() && blank(lines.back())) lines.pop_back();
  SB_CHECK(!lines.empty(), "smtx file '{}': empty, expected line 1 'nrows, ncols, nnz'", path);

  const auto header = parse_line(path, lines[0], 1, "header");
  SB_CHECK(header.size() == 3, "smtx file '{}': line 1 has {} numbers, expected 3 (nrows, ncols, nnz)", path,
           header.size());
  const std::int64_t nrows = header[0], ncols = header[1], nnz = header[2];
  SB_CHECK(nnz <= kMaxNnz, "smtx file '{}': nnz={} is more than int32 row offsets can count", path, nnz);
  SB_CHECK(nrows < kMaxNnz, "smtx file '{}': nrows={} is too large (int32 row pointers)", path, nrows);
  SB_CHECK(ncols <= kMaxU32Dimension, "smtx file '{}': ncols={} does not fit 32-bit column indices", path, ncols);
  SB_CHECK(nnz <= nrows * ncols, "smtx file '{}': nnz={} is more than nrows x ncols = {} x {}", path, nnz, nrows,
           ncols);

  SB_CHECK(lines.size() >= 2, "smtx file '{}': line 2 missing, expected {} row offsets (nrows + 1); truncated?", path,
           nrows + 1);
  const auto offsets = parse_line(path, lines[1], 2, "row offsets");
  SB_CHECK(static_cast<std::int64_t>(offsets.size()) == nrows + 1,
           "smtx file '{}': line 2 has {} row offsets, expected {} (nrows + 1)", path, offsets.size(), nrows + 1);
  SB_CHECK(offsets[0] == 0, "smtx file '{}': line 2: the first row offset is {}, expected 0", path, offsets[0]);
  for (std::int64_t i = 0; i < nrows; ++i)
    SB_CHECK(offsets[i + 1] >= offsets[i], "smtx file '{}': line 2: row offsets decrease at row {} ({} then {})", path,
             i, offsets[i], offsets[i + 1]);
  SB_CHECK(offsets[nrows] == nnz, "smtx file '{}': line 2: the last row offset is {}, expected {} (nnz)", path,
           offsets[nrows], nnz);

  std::vector<std::int64_t> columns;
  if (lines.size() >= 3)
    columns = parse_line(path, lines[2], 3, "column indices");
  else
    SB_CHECK(nnz == 0, "smtx file '{}': line 3 missing, expected {} column indices (nnz); truncated?", path, nnz);
  SB_CHECK(static_cast<std::int64_t>(columns.size()) == nnz,
           "smtx file '{}': line 3 has {} column indices, expected {} (nnz)", path, columns.size(), nnz);
  for (std::size_t extra = 3; extra < lines.size(); ++extra)
    SB_CHECK(blank(lines[extra]), "smtx file '{}': line {} is unexpected (the format has 3 lines)", path, extra + 1);

  Csr c;
  c.rows = nrows;
  c.cols = ncols;
  c.index_width = choose_index_width(ncols);
  c.row_ptr.resize(static_cast<std::size_t>(nrows + 1));
  for (std::int64_t i = 0; i <= nrows; ++i) c.row_ptr[i] = static_cast<std::int32_t>(offsets[i]);
  for (std::int64_t i = 0; i < nrows; ++i)
    for (std::int64_t e = offsets[i]; e < offsets[i + 1]; ++e) {
      SB_CHECK(columns[e] < ncols,
               "smtx file '{}': line 3: column index {} (entry {}, row {}) is out of range, "
               "expected < {} (ncols)",
               path, columns[e], e, i, ncols);
      SB_CHECK(e == offsets[i] || columns[e] > columns[e - 1],
               "smtx file '{}': line 3: column indices of row {} are not strictly ascending ({} after {} at entry {})",
               path, i, columns[e], columns[e - 1], e);
    }
  if (c.index_width == IndexWidth::u16)
    c.col16.assign(columns.begin(), columns.end());
  else
    c.col32.assign(columns.begin(), columns.end());
  c.values.resize(static_cast<std::size_t>(nnz));
  for (auto& v : c.values) v = rng.uniform(lo, hi);
  return c;
}

void save_smtx(const std::string& path, const Csr& csr) {
  csr.validate();
  std::string text = fmt::format("{}, {}, {}\n", csr.rows, csr.cols, csr.nnz());
  for (std::int64_t i = 0; i <= csr.rows; ++i)
    fmt::format_to(std::back_inserter(text), "{}{}", i ? " " : "", csr.row_ptr[i]);
  text += '\n';
  for (std::int64_t e = 0; e < csr.nnz(); ++e)
    fmt::format_to(std::back_inserter(text), "{}{}", e ? " " : "", csr.col(e));
  text += '\n';
  if (ends_with(path, ".gz")) {
    errno = 0;
    gzFile f = gzopen(path.c_str(), "wb");
    SB_CHECK(f != nullptr, "smtx file '{}': cannot open for writing ({})", path,
             errno ? std::strerror(errno) : "out of memory");
    std::size_t done = 0;
    bool ok = true;
    while (ok && done < text.size()) {
      const unsigned n = static_cast<unsigned>(std::min<std::size_t>(text.size() - done, 1u << 20));
      ok = gzwrite(f, text.data() + done, n) == static_cast<int>(n);
      done += n;
    }
    const bool closed = gzclose(f) == Z_OK;
    SB_CHECK(ok && closed, "smtx file '{}': write failed", path);
  } else {
    std::ofstream out(path, std::ios::binary);
    SB_CHECK(out.good(), "smtx file '{}': cannot open for writing ({})", path, std::strerror(errno));
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    SB_CHECK(out.good(), "smtx file '{}': write failed", path);
  }
}

std::vector<std::string> list_smtx(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  SB_CHECK(fs::exists(st), "smtx path '{}': no such file or directory", path);
  if (!fs::is_directory(st)) return {path};
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    const std::string name = entry.path().filename().string();
    if (!(ends_with(name, ".smtx") || ends_with(name, ".smtx.gz"))) continue;
    std::error_code ec2;
    if (!entry.is_regular_file(ec2)) continue;
    out.push_back(entry.path().string());
  }
  SB_CHECK(!ec, "smtx path '{}': cannot list the directory ({})", path, ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace sb
