#pragma once
// GEMM shapes of real models (bench/shapes/*.txt) and the MxKxN text that names them.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sb {

// Y[m x n] = W[m x k] * X[k x n]: m = output channels / features, k = reduction (in * kh * kw),
// n = batch x output positions (or tokens).
struct GemmShape {
  std::int64_t m = 0, k = 0, n = 0;
  std::string comment;  // what the shape is ("conv4_x 3x3"), from the text after '#'
  std::string source;   // "resnet50.txt:12", or empty for a shape given on the command line

  std::string to_string() const;  // "768x768x128"
};

// Parses "MxKxN" (three positive integers, 'x' or 'X' between them, spaces around allowed).
// Throws sb::Error quoting the text and the expected form.
GemmShape parse_shape(std::string_view text);
// Comma-separated "MxKxN,MxKxN,...". Throws on an empty list or any bad element.
std::vector<GemmShape> parse_shape_list(std::string_view text);
// A shape file: one "MxKxN  # comment" per line; blank lines and lines that are only a comment are
// skipped. Throws sb::Error naming "file:line" and the offending text; also when the file cannot
// be read or holds no shape.
std::vector<GemmShape> load_shape_file(const std::string& path);
// The *.txt files of a directory, sorted by name; throws when it is not a readable directory.
std::vector<std::string> list_shape_files(const std::string& dir);

}  // namespace sb
