#pragma once
// The pattern grammar used by every command:
//   dense | unstructured | filter[:l1|:l2] | channel[:l1|:l2] | block:RxC | balanced:bank=B | nm:N:M
#include <string>
#include <string_view>

namespace sb {

// The grammar above, as error messages and command-line help quote it.
inline constexpr const char* kPatternGrammar =
    "dense | unstructured | filter[:l1|:l2] | channel[:l1|:l2] | block:RxC | balanced:bank=B | nm:N:M";

enum class Norm { l1, l2 };

struct Pattern {
  enum class Kind { dense, unstructured, filter, channel, block, balanced, nm };
  Kind kind = Kind::dense;
  int block_rows = 0, block_cols = 0;  // block
  int bank = 0;                        // balanced
  int n = 0, m = 0;                    // nm
  Norm norm = Norm::l1;                // filter / channel ranking (blocks are ranked by L1)

  // Throws sb::Error quoting the text and the grammar on anything else (bad numbers, 0 sizes, N > M).
  // Numbers are plain decimal digits in [1, 65536]; `filter` and `channel` default to l1.
  static Pattern parse(std::string_view text);
  // Canonical text; parse(to_string()) == *this for every pattern parse() returns (fields the kind
  // does not use at their defaults). The norm is always written: "filter:l1", not "filter".
  std::string to_string() const;
  bool structured() const { return kind == Kind::filter || kind == Kind::channel; }
  bool operator==(const Pattern&) const = default;
};

}  // namespace sb
