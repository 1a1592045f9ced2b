#include "sparsebench/bench/shapes.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "sparsebench/core/error.h"

namespace sb {

std::string GemmShape::to_string() const { return fmt::format("{}x{}x{}", m, k, n); }

static std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// Empty optional-like: returns false with *why set when `text` is not MxKxN.
static bool try_parse_shape(std::string_view text, GemmShape* out, std::string* why) {
  std::int64_t dims[3] = {0, 0, 0};
  std::string_view rest = trim(text);
  for (int i = 0; i < 3; ++i) {
    if (i > 0) {
      if (rest.empty() || (rest.front() != 'x' && rest.front() != 'X')) {
        *why = "expected three dimensions M x K x N";
        return false;
      }
      rest = trim(rest.substr(1));
    }
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
    if (ec == std::errc::result_out_of_range) {
      *why = "dimension too large";
      return false;
    }
    if (ec != std::errc() || ptr == rest.data()) {
      *why = rest.empty() ? "a dimension is missing" : fmt::format("'{}' is not a number", rest);
      return false;
    }
    if (v < 1 || v > (std::int64_t{1} << 31)) {
      *why = fmt::format("dimension {} must be between 1 and 2^31", v);
      return false;
    }
    dims[i] = v;
    rest = trim(rest.substr(static_cast<std::size_t>(ptr - rest.data())));
  }
  if (!rest.empty()) {
    *why = fmt::format("unexpected '{}' after the third dimension", rest);
    return false;
  }
  out->m = dims[0];
  out->k = dims[1];
  out->n = dims[2];
  return true;
}

GemmShape parse_shape(std::string_view text) {
  GemmShape s;
  std::string why;
  if (!try_parse_shape(text, &s, &why))
    fail(fmt::format("bad shape '{}': {} (expected MxKxN with positive integers, e.g. 768x768x128)", text, why));
  return s;
}

std::vector<GemmShape> parse_shape_list(std::string_view text) {
  std::vector<GemmShape> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    out.push_back(parse_shape(text.substr(pos, comma - pos)));
    pos = comma + 1;
  }
  return out;
}

std::vector<GemmShape> load_shape_file(const std::string& path) {
  std::ifstream in(path);
  SB_CHECK(in.good(), "shape file {}: cannot be read", path);
  const std::string base = std::filesystem::path(path).filename().string();
  std::vector<GemmShape> out;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    std::string_view body = line, comment;
    if (const auto hash = body.find('#'); hash != std::string_view::npos) {
      comment = trim(body.substr(hash + 1));
      body = body.substr(0, hash);
    }
    body = trim(body);
    if (body.empty()) continue;
    GemmShape s;
    std::string why;
    if (!try_parse_shape(body, &s, &why))
      fail(fmt::format("{}:{}: bad shape '{}': {} (expected 'MxKxN  # comment')", path, lineno, body, why));
    s.comment = std::string(comment);
    s.source = fmt::format("{}:{}", base, lineno);
    out.push_back(std::move(s));
  }
  SB_CHECK(!out.empty(), "shape file {}: holds no shape (expected lines 'MxKxN  # comment')", path);
  return out;
}

std::vector<std::string> list_shape_files(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  SB_CHECK(fs::is_directory(dir, ec), "shape directory {}: not a directory", dir);
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".txt") out.push_back(e.path().string());
  SB_CHECK(!ec, "shape directory {}: {}", dir, ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace sb
