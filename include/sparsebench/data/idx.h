#pragma once
// IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed, and the Fashion-MNIST
// data set as Debian ships it (package dataset-fashion-mnist).
//
// IDX: a big-endian u32 magic 0x000008DD (0x08 = unsigned bytes, DD = number of dimensions), DD
// big-endian u32 sizes, then the bytes row-major. Images are 0x00000803 [count, rows, cols],
// labels 0x00000801 [count].
#include <cstdint>
#include <string>

#include "sparsebench/core/tensor.h"

namespace sb {

inline constexpr std::uint32_t kIdxImagesMagic = 0x00000803;
inline constexpr std::uint32_t kIdxLabelsMagic = 0x00000801;
// Where the Debian package puts the files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Reads one IDX file of unsigned bytes into a u8 tensor of the file's dimensions. gzip is detected
// by its magic bytes, so `path` may be compressed or raw whatever its name. Throws sb::Error naming
// the file for: a missing or unreadable file, a magic other than `expected_magic`, a zero
// dimension, a size over 2^31 bytes, truncated data (header or body, compressed stream cut short)
// and data left after the last element.
Tensor read_idx(const std::string& path, std::uint32_t expected_magic);

struct ImageSet {
  Tensor images;  // u8 [count, rows, cols], pixel values 0..255
  Tensor labels;  // u8 [count], class ids 0..classes-1
};

struct FashionMnist {
  ImageSet train;  // 60000 images
  ImageSet test;   // 10000 images
  static constexpr int kClasses = 10;
};

// Loads {train,t10k}-{images-idx3,labels-idx1}-ubyte from `dir` (empty: kFashionMnistDir), each
// as "<name>.gz" or "<name>" (the first that exists). Checks that images are 28x28, that images
// and labels agree in count and that every label is below 10. A missing file throws an sb::Error
// naming it and saying how to get the data: `apt-get install dataset-fashion-mnist`, or
// `--data DIR` for a directory of files in the same format.
FashionMnist load_fashion_mnist(const std::string& dir = "");

}  // namespace sb
