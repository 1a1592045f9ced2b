#include <gtest/gtest.h>

#include <string>

#include "sparsebench/core/error.h"
#include "sparsebench/prune/pattern.h"

using namespace sb;

namespace {

std::string parse_error(const std::string& text) {
  try {
    Pattern::parse(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(MaskPattern, EveryFormRoundTrips) {
  struct Case {
    const char* text;
    const char* canonical;
  };
  const Case cases[] = {
      {"dense", "dense"},
      {"unstructured", "unstructured"},
      {"filter", "filter:l1"},
      {"filter:l1", "filter:l1"},
      {"filter:l2", "filter:l2"},
      {"channel", "channel:l1"},
      {"channel:l1", "channel:l1"},
      {"channel:l2", "channel:l2"},
      {"block:4x4", "block:4x4"},
      {"block:1x32", "block:1x32"},
      {"block:16x1", "block:16x1"},
      {"balanced:bank=32", "balanced:bank=32"},
      {"balanced:bank=65536", "balanced:bank=65536"},
      {"nm:2:4", "nm:2:4"},
      {"nm:1:8", "nm:1:8"},
      {"nm:4:4", "nm:4:4"},
  };
  for (const auto& c : cases) {
    const Pattern p = Pattern::parse(c.text);
    EXPECT_EQ(p.to_string(), c.canonical) << c.text;
    EXPECT_EQ(Pattern::parse(p.to_string()), p) << c.text;
  }
}

TEST(MaskPattern, Fields) {
  const Pattern b = Pattern::parse("block:4x8");
  EXPECT_EQ(b.kind, Pattern::Kind::block);
  EXPECT_EQ(b.block_rows, 4);
  EXPECT_EQ(b.block_cols, 8);
  const Pattern n = Pattern::parse("nm:2:4");
  EXPECT_EQ(n.kind, Pattern::Kind::nm);
  EXPECT_EQ(n.n, 2);
  EXPECT_EQ(n.m, 4);
  const Pattern bal = Pattern::parse("balanced:bank=32");
  EXPECT_EQ(bal.kind, Pattern::Kind::balanced);
  EXPECT_EQ(bal.bank, 32);
  EXPECT_EQ(Pattern::parse("filter:l2").norm, Norm::l2);
  EXPECT_EQ(Pattern::parse("channel").norm, Norm::l1);
  EXPECT_TRUE(Pattern::parse("filter").structured());
  EXPECT_TRUE(Pattern::parse("channel:l2").structured());
  EXPECT_FALSE(Pattern::parse("block:2x2").structured());
}

TEST(MaskPattern, UnknownTextQuotesItAndTheGrammar) {
  EXPECT_EQ(parse_error("blok:4x4"),
            "unknown pattern 'blok:4x4': expected dense | unstructured | filter[:l1|:l2] | channel[:l1|:l2] | "
            "block:RxC | balanced:bank=B | nm:N:M");
  for (const char* text : {"", "Dense", " dense", "dense ", "filter:", "filter:l3", "channel:L2", "filterl2",
                           "unstructured:0.5", "nm", "balanced"}) {
    const std::string msg = parse_error(text);
    EXPECT_NE(msg.find(std::string("'") + text + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(kPatternGrammar), std::string::npos) << msg;
  }
}

TEST(MaskPattern, BadNumbersAreNamed) {
  struct Case {
    const char* text;
    const char* expect;
  };
  const Case cases[] = {
      {"block:0x4", "block rows '0' is not an integer in [1, 65536]"},
      {"block:4x0", "block cols '0' is not an integer in [1, 65536]"},
      {"block:4x", "block cols '' is not an integer"},
      {"block:4x4abc", "block cols '4abc' is not an integer"},
      {"block:-1x4", "block rows '-1' is not an integer"},
      {"block:+4x4", "block rows '+4' is not an integer"},
      {"block:4", "block needs its size as RxC"},
      {"block:4x4x4", "block cols '4x4' is not an integer"},
      {"block:99999999999999999999x4", "block rows '99999999999999999999' is not an integer"},
      {"balanced:bank=0", "bank '0' is not an integer in [1, 65536]"},
      {"balanced:bank=65537", "bank '65537' is not an integer in [1, 65536]"},
      {"balanced:bank=3.5", "bank '3.5' is not an integer"},
      {"balanced:32", "balanced needs its bank width as bank=B"},
      {"nm:4:2", "N = 4 is greater than M = 2"},
      {"nm:0:4", "N '0' is not an integer in [1, 65536]"},
      {"nm:2:0", "M '0' is not an integer in [1, 65536]"},
      {"nm:2", "nm needs N and M as nm:N:M"},
      {"nm:2:4:8", "M '4:8' is not an integer"},
      {"nm: 2:4", "N ' 2' is not an integer"},
  };
  for (const auto& c : cases) {
    const std::string msg = parse_error(c.text);
    EXPECT_NE(msg.find(std::string("bad pattern '") + c.text + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.text << " -> " << msg;
    EXPECT_NE(msg.find(kPatternGrammar), std::string::npos) << msg;
  }
}
