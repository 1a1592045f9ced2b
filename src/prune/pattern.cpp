#include "sparsebench/prune/pattern.h"

#include <charconv>
#include <string>

#include "sparsebench/core/error.h"

namespace sb {

namespace {

constexpr int kMaxPatternNumber = 65536;

[[noreturn]] void bad_pattern(std::string_view text, std::string_view why) {
  fail(fmt::format("bad pattern '{}': {}; expected {}", text, why, kPatternGrammar));
}

[[noreturn]] void unknown_pattern(std::string_view text) {
  fail(fmt::format("unknown pattern '{}': expected {}", text, kPatternGrammar));
}

// Strict: digits only (no sign, space or trailing junk), within [1, kMaxPatternNumber], so that
// "block:4x4abc" or "nm:-2:4" cannot slip through as something the user did not mean.
int parse_size(std::string_view text, std::string_view field, std::string_view value) {
  bool digits = !value.empty();
  for (char ch : value) digits = digits && ch >= '0' && ch <= '9';
  long long v = 0;
  if (digits) {
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    digits = ec == std::errc() && end == value.data() + value.size();
  }
  if (!digits || v < 1 || v > kMaxPatternNumber)
    bad_pattern(text, fmt::format("{} '{}' is not an integer in [1, {}]", field, value, kMaxPatternNumber));
  return static_cast<int>(v);
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

Pattern parse_ranked(std::string_view text, std::string_view rest, Pattern::Kind kind) {
  Pattern p;
  p.kind = kind;
  if (rest.empty() || rest == ":l1") {
    p.norm = Norm::l1;
  } else if (rest == ":l2") {
    p.norm = Norm::l2;
  } else {
    unknown_pattern(text);
  }
  return p;
}

}  // namespace

Pattern Pattern::parse(std::string_view text) {
  Pattern p;
  if (text == "dense") {
    p.kind = Kind::dense;
    return p;
  }
  if (text == "unstructured") {
    p.kind = Kind::unstructured;
    return p;
  }
  if (text == "filter" || starts_with(text, "filter:")) return parse_ranked(text, text.substr(6), Kind::filter);
  if (text == "channel" || starts_with(text, "channel:")) return parse_ranked(text, text.substr(7), Kind::channel);
  if (starts_with(text, "block:")) {
    std::string_view dims = text.substr(6);
    const auto x = dims.find('x');
    if (x == std::string_view::npos) bad_pattern(text, "block needs its size as RxC, e.g. block:4x4");
    p.kind = Kind::block;
    p.block_rows = parse_size(text, "block rows", dims.substr(0, x));
    p.block_cols = parse_size(text, "block cols", dims.substr(x + 1));
    return p;
  }
  if (starts_with(text, "balanced:")) {
    std::string_view rest = text.substr(9);
    if (!starts_with(rest, "bank="))
      bad_pattern(text, "balanced needs its bank width as bank=B, e.g. balanced:bank=32");
    p.kind = Kind::balanced;
    p.bank = parse_size(text, "bank", rest.substr(5));
    return p;
  }
  if (starts_with(text, "nm:")) {
    std::string_view rest = text.substr(3);
    const auto colon = rest.find(':');
    if (colon == std::string_view::npos) bad_pattern(text, "nm needs N and M as nm:N:M, e.g. nm:2:4");
    p.kind = Kind::nm;
    p.n = parse_size(text, "N", rest.substr(0, colon));
    p.m = parse_size(text, "M", rest.substr(colon + 1));
    if (p.n > p.m) bad_pattern(text, fmt::format("N = {} is greater than M = {} (N:M keeps N of every M)", p.n, p.m));
    return p;
  }
  unknown_pattern(text);
}

std::string Pattern::to_string() const {
  const char* norm_name = norm == Norm::l2 ? "l2" : "l1";
  switch (kind) {
    case Kind::dense: return "dense";
    case Kind::unstructured: return "unstructured";
    // The norm is always written out: reports then say how filters were ranked.
    case Kind::filter: return fmt::format("filter:{}", norm_name);
    case Kind::channel: return fmt::format("channel:{}", norm_name);
    case Kind::block: return fmt::format("block:{}x{}", block_rows, block_cols);
    case Kind::balanced: return fmt::format("balanced:bank={}", bank);
    case Kind::nm: return fmt::format("nm:{}:{}", n, m);
  }
  return "?";
}

}  // namespace sb
