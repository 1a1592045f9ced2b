// oneDNN's convolution primitive for the executor (onednn_conv.h).
#include "runtime/onednn_conv.h"

#include <dnnl.hpp>

#include <fmt/format.h>

#include "sparsebench/core/error.h"

namespace sb::rt {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {
// One CPU engine and stream for the process (as the library's own examples keep them).
dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}
dnnl::stream& cpu_stream() {
  static dnnl::stream strm(cpu_engine());
  return strm;
}
}  // namespace

struct OnednnConv::State {
  dnnl::engine eng = cpu_engine();
  dnnl::stream strm = cpu_stream();
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward conv;
  dnnl::reorder in, out;
  memory user_x, user_y, x, y, w, b;
  bool has_bias = false;
};

namespace {
// [C][N][H][W] as oneDNN sees the logical (N, C, H, W): strides N: H*W, C: N*H*W.
memory::desc cnhw(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w) {
  return memory::desc({n, c, h, w}, dt::f32, memory::dims{h * w, n * h * w, w, 1});
}
}  // namespace

OnednnConv::OnednnConv(const ConvGeom& g, const float* weight, const float* bias, int act)
    : st_(std::make_unique<State>()) {
  State& s = *st_;
  try {
    const memory::desc src_any({g.n, g.c, g.h, g.w}, dt::f32, tag::any);
    const memory::desc dst_any({g.n, g.k, g.oh, g.ow}, dt::f32, tag::any);
    const memory::desc wei_any({g.k, g.c, g.kernel[0], g.kernel[1]}, dt::f32, tag::any);
    const memory::desc bias_md({g.k}, dt::f32, tag::a);
    // oneDNN's dilation counts the gaps: 0 is a dense window.
    const memory::dims strides{g.stride[0], g.stride[1]}, dil{g.dilation[0] - 1, g.dilation[1] - 1},
        pad{g.padding[0], g.padding[1]};
    s.has_bias = bias != nullptr;
    const auto d = s.has_bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                                 dnnl::algorithm::convolution_direct, src_any, wei_any,
                                                                 bias_md, dst_any, strides, dil, pad, pad)
                              : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                                 dnnl::algorithm::convolution_direct, src_any, wei_any,
                                                                 dst_any, strides, dil, pad, pad);
    dnnl::primitive_attr attr;
    if (act) {
      dnnl::post_ops po;
      if (act == 1) po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      else po.append_eltwise(1.f, dnnl::algorithm::eltwise_clip, 0.f, 6.f);
      attr.set_post_ops(po);
    }
    s.pd = dnnl::convolution_forward::primitive_desc(d, attr, s.eng);
    s.conv = dnnl::convolution_forward(s.pd);
    s.user_x = memory(cnhw(g.n, g.c, g.h, g.w), s.eng, DNNL_MEMORY_NONE);
    s.user_y = memory(cnhw(g.n, g.k, g.oh, g.ow), s.eng, DNNL_MEMORY_NONE);
    s.x = memory(s.pd.src_desc(), s.eng);
    s.y = memory(s.pd.dst_desc(), s.eng);
    s.in = dnnl::reorder(s.user_x, s.x);
    s.out = dnnl::reorder(s.y, s.user_y);
    // The weight, reordered once into the primitive's layout.
    memory user_w({{g.k, g.c, g.kernel[0], g.kernel[1]}, dt::f32, tag::oihw}, s.eng, const_cast<float*>(weight));
    s.w = memory(s.pd.weights_desc(), s.eng);
    dnnl::reorder(user_w, s.w).execute(s.strm, user_w, s.w);
    if (s.has_bias) {
      s.b = memory(bias_md, s.eng);
      std::copy(bias, bias + g.k, static_cast<float*>(s.b.get_data_handle()));
    }
    s.strm.wait();
  } catch (const dnnl::error& e) {
    fail(fmt::format("oneDNN convolution {}x{}x{}x{} -> {} channels, {}x{} window: {} (status {})", g.n, g.c, g.h, g.w,
                     g.k, g.kernel[0], g.kernel[1], e.what(), static_cast<int>(e.status)));
  }
}

OnednnConv::~OnednnConv() = default;

void OnednnConv::run(const float* x, float* y) {
  State& s = *st_;
  s.user_x.set_data_handle(const_cast<float*>(x));
  s.user_y.set_data_handle(y);
  s.in.execute(s.strm, s.user_x, s.x);
  if (s.has_bias)
    s.conv.execute(s.strm, {{DNNL_ARG_SRC, s.x}, {DNNL_ARG_WEIGHTS, s.w}, {DNNL_ARG_BIAS, s.b}, {DNNL_ARG_DST, s.y}});
  else
    s.conv.execute(s.strm, {{DNNL_ARG_SRC, s.x}, {DNNL_ARG_WEIGHTS, s.w}, {DNNL_ARG_DST, s.y}});
  s.out.execute(s.strm, s.y, s.user_y);
  s.strm.wait();
}

}  // namespace sb::rt
