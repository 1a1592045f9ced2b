// Torch-free pieces of training: input normalisation and the runtime's test accuracy.
#include <algorithm>
#include <cstring>

#include "sparsebench/core/error.h"
#include "sparsebench/runtime/executor.h"
#include "sparsebench/train/train.h"

namespace sb {

namespace {
// Fashion-MNIST training-set pixel mean and standard deviation (of pixel / 255).
constexpr float kMean = 0.2860f, kStd = 0.3530f;
}  // namespace

Tensor normalize_images(const Tensor& images, std::int64_t first, std::int64_t count) {
  SB_CHECK(images.dtype() == DType::u8 && images.dim() == 3, "normalize_images: expected u8 [N, H, W], got {} {}",
           dtype_name(images.dtype()), shape_to_string(images.shape()));
  SB_CHECK(first >= 0 && count >= 0 && first + count <= images.size(0),
           "normalize_images: images [{}, {}) outside the {} given", first, first + count, images.size(0));
  const std::int64_t h = images.size(1), w = images.size(2), per = h * w;
  Tensor out = Tensor::empty({count, 1, h, w});
  const std::uint8_t* src = images.contiguous().data<std::uint8_t>() + first * per;
  float* dst = out.data<float>();
  for (std::int64_t i = 0; i < count * per; ++i) dst[i] = (static_cast<float>(src[i]) / 255.f - kMean) / kStd;
  return out;
}

double runtime_accuracy(const Graph& graph, const ImageSet& data, const std::string& kernel, std::int64_t batch,
                        std::int64_t limit) {
  const std::int64_t total = limit > 0 ? std::min(limit, data.images.size(0)) : data.images.size(0);
  SB_CHECK(total > 0, "runtime_accuracy: no images");
  batch = std::min(batch, total);
  const Graph g = graph.with_batch(batch);
  CompileOptions co;
  co.kernel = kernel;
  co.measure = false;  // an accuracy: any candidate computes it (each is verified against the reference)
  Executor ex(g, co);
  std::vector<Tensor> outs;
  std::int64_t correct = 0;
  const std::uint8_t* labels = data.labels.data<std::uint8_t>();
  for (std::int64_t first = 0; first < total; first += batch) {
    const std::int64_t count = std::min(batch, total - first);
    Tensor x = normalize_images(data.images, first, count);
    if (count < batch) {  // the last, partial batch: zero padding whose outputs are ignored
      Tensor padded = Tensor::zeros({batch, 1, x.size(2), x.size(3)});
      std::memcpy(padded.raw_data(), x.raw_data(), x.nbytes());
      x = padded;
    }
    ex.run({x}, outs);
    const Tensor& y = outs.at(0);
    const std::int64_t classes = y.size(1);
    const float* p = y.data<float>();
    for (std::int64_t i = 0; i < count; ++i) {
      const float* row = p + i * classes;
      const auto arg = std::max_element(row, row + classes) - row;
      correct += arg == labels[first + i];
    }
  }
  return 100.0 * static_cast<double>(correct) / static_cast<double>(total);
}

}  // namespace sb
