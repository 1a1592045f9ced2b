// The device-independent half of the cuDNN convolution baseline (see cuda_spmm.h): the desc's
// arithmetic and checks, im2col, and the host layout conversions. Built with or without CUDA.
#include <algorithm>
#include <climits>

#include <fmt/format.h>

#include "sparsebench/kernels/cuda_spmm.h"

namespace sb::gpu {

namespace {
std::int64_t out_size(std::int64_t in, std::int64_t kernel, std::int64_t stride, std::int64_t pad,
                      std::int64_t dilation) {
  if (stride <= 0) return 0;
  const std::int64_t span = dilation * (kernel - 1) + 1;
  const std::int64_t room = in + 2 * pad - span;
  return room < 0 ? 0 : room / stride + 1;
}
}  // namespace

std::int64_t GpuConvDesc::out_h() const { return out_size(height, kernel[0], stride[0], padding[0], dilation[0]); }
std::int64_t GpuConvDesc::out_w() const { return out_size(width, kernel[1], stride[1], padding[1], dilation[1]); }

std::string check_conv_desc(const GpuConvDesc& d) {
  if (d.batch < 1 || d.in_channels < 1 || d.height < 1 || d.width < 1 || d.out_channels < 1)
    return fmt::format("convolution sizes must be positive (batch {}, channels {} -> {}, image {}x{})", d.batch,
                       d.in_channels, d.out_channels, d.height, d.width);
  for (int i = 0; i < 2; ++i) {
    if (d.kernel[i] < 1 || d.stride[i] < 1 || d.dilation[i] < 1 || d.padding[i] < 0)
      return fmt::format("convolution window {}x{}, stride {}x{}, dilation {}x{}, padding {}x{}: expected positive "
                         "window, stride and dilation and padding >= 0",
                         d.kernel[0], d.kernel[1], d.stride[0], d.stride[1], d.dilation[0], d.dilation[1],
                         d.padding[0], d.padding[1]);
  }
  if (d.out_h() < 1 || d.out_w() < 1)
    return fmt::format("convolution of a {}x{} image with a {}x{} window (dilation {}x{}, padding {}x{}) has no output",
                       d.height, d.width, d.kernel[0], d.kernel[1], d.dilation[0], d.dilation[1], d.padding[0],
                       d.padding[1]);
  // cuDNN's descriptors take int sizes and its tensors at most INT_MAX elements.
  const std::int64_t biggest = std::max({d.input_elems(), d.gemm_m() * d.gemm_n(), d.gemm_m() * d.gemm_k()});
  if (biggest > INT_MAX)
    return fmt::format("convolution tensors of {} elements: cuDNN takes at most {}", biggest, INT_MAX);
  return {};
}

std::vector<float> im2col(const GpuConvDesc& d, const float* image) {
  const std::int64_t oh = d.out_h(), ow = d.out_w(), kh = d.kernel[0], kw = d.kernel[1];
  const std::int64_t n = d.gemm_n();
  std::vector<float> x(static_cast<std::size_t>(d.gemm_k() * n), 0.f);
  for (std::int64_t c = 0; c < d.in_channels; ++c)
    for (std::int64_t r = 0; r < kh; ++r)
      for (std::int64_t s = 0; s < kw; ++s) {
        float* row = x.data() + ((c * kh + r) * kw + s) * n;
        for (std::int64_t b = 0; b < d.batch; ++b) {
          const float* img = image + (b * d.in_channels + c) * d.height * d.width;
          for (std::int64_t i = 0; i < oh; ++i) {
            const std::int64_t y = i * d.stride[0] - d.padding[0] + r * d.dilation[0];
            if (y < 0 || y >= d.height) continue;
            for (std::int64_t j = 0; j < ow; ++j) {
              const std::int64_t xx = j * d.stride[1] - d.padding[1] + s * d.dilation[1];
              if (xx >= 0 && xx < d.width) row[(b * oh + i) * ow + j] = img[y * d.width + xx];
            }
          }
        }
      }
  return x;
}

std::vector<float> nchw_to_nhwc(const float* x, std::int64_t b, std::int64_t c, std::int64_t h, std::int64_t w) {
  std::vector<float> out(static_cast<std::size_t>(b * c * h * w));
  for (std::int64_t i = 0; i < b; ++i)
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t p = 0; p < h * w; ++p) out[(i * h * w + p) * c + ch] = x[(i * c + ch) * h * w + p];
  return out;
}

std::vector<float> conv_output_to_gemm(const GpuConvDesc& d, const std::string& layout, const float* y) {
  const std::int64_t m = d.gemm_m(), hw = d.out_h() * d.out_w(), n = d.gemm_n();
  std::vector<float> out(static_cast<std::size_t>(m * n));
  const bool nhwc = layout == "nhwc";
  for (std::int64_t b = 0; b < d.batch; ++b)
    for (std::int64_t o = 0; o < m; ++o)
      for (std::int64_t p = 0; p < hw; ++p)
        out[o * n + b * hw + p] = nhwc ? y[(b * hw + p) * m + o] : y[(b * m + o) * hw + p];
  return out;
}

}  // namespace sb::gpu
