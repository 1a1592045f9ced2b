#pragma once
// Errors are values the caller can print as they are: one line naming the input at fault
// (file, key, layer, value) and what was expected. The library never exits and never prints.
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace sb {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(std::string message);

}  // namespace sb

// SB_CHECK(condition, "format {}", args...): throws sb::Error with the formatted message.
#define SB_CHECK(cond, ...)                                 \
  do {                                                      \
    if (!(cond)) [[unlikely]] ::sb::fail(::fmt::format(__VA_ARGS__)); \
  } while (0)
