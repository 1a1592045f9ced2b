#pragma once
// A convolution (groups = 1) through oneDNN's own convolution primitive: the dense path a network
// would run on a CPU (brgconv / jit kernels on blocked or channels-last activations, no im2col),
// which the executor's im2col + GEMM path is timed against, per layer, wherever a layer may run
// dense. The executor keeps activations as [C][N][H][W] (its GEMMs' "N contiguous" layout), and
// oneDNN's fast convolutions want channels inside (nhwc, nChw16c), so the input is reordered in and
// the output back out in every call: that cost is in the time the choice is made on.
#include <array>
#include <cstdint>
#include <memory>

namespace sb::rt {

struct ConvGeom {
  std::int64_t n = 1, c = 0, h = 0, w = 0;     // input
  std::int64_t k = 0, oh = 0, ow = 0;          // output channels and size
  std::array<std::int64_t, 2> kernel{1, 1}, stride{1, 1}, padding{0, 0}, dilation{1, 1};
};

class OnednnConv {
 public:
  // weight: OIHW f32 [k x c x kh x kw]; bias: [k] or nullptr; act: 0 none, 1 relu, 2 relu6 (fused
  // as a post-op). Throws sb::Error when oneDNN cannot create the primitive.
  OnednnConv(const ConvGeom& g, const float* weight_oihw, const float* bias, int act);
  ~OnednnConv();
  OnednnConv(const OnednnConv&) = delete;
  OnednnConv& operator=(const OnednnConv&) = delete;
  // x: [C][N][H][W], y: [K][N][OH][OW] (the executor's layout), f32. Uses oneDNN's threads
  // (omp_get_max_threads, which sb::set_num_threads sets).
  void run(const float* x, float* y);

 private:
  struct State;
  std::unique_ptr<State> st_;
};

}  // namespace sb::rt
