// The executor: layouts, kernel choice per layer, memory plan, and the op loops.
#include "sparsebench/runtime/executor.h"

#include <dnnl.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <mutex>


#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "runtime/depthwise.h"
#include "runtime/elementwise.h"
#include "runtime/onednn_conv.h"
#include "sparsebench/bench/parallel_probe.h"
#include "sparsebench/bench/stats.h"
#include "sparsebench/core/files.h"
#include "sparsebench/core/cpu_info.h"
#include "sparsebench/core/error.h"
#include "sparsebench/core/rng.h"
#include "sparsebench/core/threads.h"
#include "sparsebench/kernels/spmm.h"
#include "sparsebench/prune/mask.h"
#include "sparsebench/runtime/passes.h"

namespace sb {

namespace {

using Strides = std::vector<std::int64_t>;

// Highest tensor rank the executor runs (index arrays on the stack, so run() never allocates).
constexpr std::size_t kMaxRank = 8;

// Feature-major layout (see executor.h): the order in which logical dims are stored.
std::vector<int> layout_perm(std::size_t rank) {
  std::vector<int> p;
  if (rank >= 4) {
    p.push_back(1);
    p.push_back(0);
    for (std::size_t d = 2; d < rank; ++d) p.push_back(static_cast<int>(d));
  } else if (rank >= 2) {
    p.push_back(static_cast<int>(rank) - 1);
    for (std::size_t d = 0; d + 1 < rank; ++d) p.push_back(static_cast<int>(d));
  } else {
    for (std::size_t d = 0; d < rank; ++d) p.push_back(static_cast<int>(d));
  }
  return p;
}

// Element strides per logical dim in the internal layout.
Strides internal_strides(const Shape& shape) {
  const auto perm = layout_perm(shape.size());
  Strides st(shape.size(), 1);
  std::int64_t s = 1;
  for (std::size_t i = perm.size(); i-- > 0;) {
    st[perm[i]] = s;
    s *= shape[perm[i]];
  }
  return st;
}

// dst[logical i] = src[logical i] for every index of `shape`, both strided (4-byte elements).
template <class T>
void copy_nd(const T* src, const Strides& sst, T* dst, const Strides& dst_st, const Shape& shape) {
  const int rank = static_cast<int>(shape.size());
  const std::int64_t n = shape_numel(shape);
  if (n == 0) return;
  if (rank == 0) {
    dst[0] = src[0];
    return;
  }
  std::array<std::int64_t, kMaxRank> idx{};  // no allocation: this runs inside run()
  std::int64_t so = 0, d_o = 0;
  const std::int64_t inner = shape[rank - 1], si = sst[rank - 1], di = dst_st[rank - 1];
  for (std::int64_t e = 0; e < n; e += inner) {
    for (std::int64_t j = 0; j < inner; ++j) dst[d_o + j * di] = src[so + j * si];
    for (int d = rank - 2; d >= 0; --d) {
      ++idx[d];
      so += sst[d];
      d_o += dst_st[d];
      if (idx[d] < shape[d]) break;
      so -= sst[d] * shape[d];
      d_o -= dst_st[d] * shape[d];
      idx[d] = 0;
    }
  }
}

// Row-major odometer over `shape` with strides `st`: advances the offset to the next element.
struct Odometer {
  const Shape* shape;
  const Strides* st;
  std::array<std::int64_t, kMaxRank> idx{};
  int rank;
  std::int64_t off = 0;
  Odometer(const Shape& s, const Strides& t) : shape(&s), st(&t), rank(static_cast<int>(s.size())) {}
  void next() {
    for (int d = rank - 1; d >= 0; --d) {
      ++idx[d];
      off += (*st)[d];
      if (idx[d] < (*shape)[d]) return;
      off -= (*st)[d] * (*shape)[d];
      idx[d] = 0;
    }
  }
};

// Offsets of every element whose index along `axis` is 0.
std::vector<std::int64_t> slice_bases(const Shape& shape, const Strides& st, int axis) {
  Shape s = shape;
  s[axis] = 1;
  std::vector<std::int64_t> bases;
  bases.reserve(shape_numel(s));
  Odometer od(s, st);
  for (std::int64_t e = 0; e < shape_numel(s); ++e, od.next()) bases.push_back(od.off);
  return bases;
}

enum class Act { none, relu, relu6 };

// Elementwise loops smaller than this run on one thread: waking the team costs more than the work.
constexpr std::int64_t kParallelMin = 1 << 15;

// expf without libm calls, so the loops that use it vectorize (Cephes expf: Cody-Waite reduction
// and a degree-6 polynomial, relative error ~1e-7 on [-80, 88]). Below -80 it returns 0 (absolute
// error < 2e-35): exp(-87) is close to FLT_MIN, and results near it turn the softmax / GELU that
// use them into denormal arithmetic, which cost BERT's GELU steps ~10x their time (microcode
// assists on every denormal operand) with random weights, whose pre-activations are wide.
inline float fast_exp(float x0) {
  const float x = std::min(std::max(x0, -80.f), 88.f);
  // floor() by truncation and a correction: without SSE4.1 std::floor is a libm call that
  // stops the vectorizer.
  const float t = x * 1.44269504088896341f + 0.5f;
  std::int32_t ti = static_cast<std::int32_t>(t);
  ti -= t < static_cast<float>(ti) ? 1 : 0;
  const float n = static_cast<float>(ti);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.f;
  const std::int32_t bits = (ti + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return x0 < -80.f ? 0.f : e * scale;
}

// Exact-form GELU, x * (1 + erf(x / sqrt 2)) / 2, with erf from Abramowitz & Stegun 7.1.26
// (absolute error <= 1.5e-7) so that it vectorizes; torch's erf GELU agrees within ~1e-7 * |x|.
inline float gelu_erf(float x) {
  const float z = std::abs(x) * 0.70710678118654752f;
  const float t = 1.f / (1.f + 0.3275911f * z);
  const float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  const float erf_abs = 1.f - poly * fast_exp(-z * z);
  const float erf = std::copysign(erf_abs, x);
  return 0.5f * x * (1.f + erf);
}

Format natural_format(const Pattern& p) {
  switch (p.kind) {
    case Pattern::Kind::block: return Format::bsr;
    case Pattern::Kind::balanced:
    case Pattern::Kind::nm: return Format::balanced;
    default: return Format::csr;
  }
}

std::mutex g_cache_mutex;
std::map<std::string, std::string>& choice_cache() {
  static std::map<std::string, std::string> cache;
  return cache;
}

// Persistent decisions (CompileOptions::plan_cache_path), guarded by g_cache_mutex. A file is read
// once per process; every new decision rewrites it whole (write to a temporary, then rename, so a
// reader never sees half a file; a concurrent writer may drop the other's newest entry, which only
// costs a re-measurement).
constexpr int kPlanCacheVersion = 2;  // 2: candidates measured in interleaved rounds
std::map<std::string, std::map<std::string, std::string>>& plan_files() {
  static std::map<std::string, std::map<std::string, std::string>> files;
  return files;
}

std::map<std::string, std::string>& plan_file(const std::string& path) {
  auto& files = plan_files();
  auto it = files.find(path);
  if (it != files.end()) return it->second;
  std::map<std::string, std::string> entries;
  std::ifstream in(path);
  if (in) {
    try {
      const nlohmann::json j = nlohmann::json::parse(in);
      if (j.at("version").get<int>() == kPlanCacheVersion)
        for (const auto& [k, v] : j.at("decisions").items()) entries[k] = v.get<std::string>();
    } catch (const std::exception&) {
      entries.clear();  // corrupt or foreign: start afresh, the next decision rewrites it
    }
  }
  return files.emplace(path, std::move(entries)).first->second;
}

void save_plan_file(const std::string& path, const std::map<std::string, std::string>& entries) {
  const nlohmann::json j = {{"version", kPlanCacheVersion}, {"decisions", entries}};
  write_file_atomically(path, j.dump(1) + "\n");  // a cache: a failed write costs a re-measurement
}

// The machine part of a persistent key: a decision measured on one CPU says nothing about another.
const std::string& machine_key() {
  static const std::string key = fmt::format("{} | {}", cpu_info().model, isa_name(max_isa()));
  return key;
}

struct ValueSlot {
  Shape shape;
  Strides st;
  DType dtype = DType::f32;
  std::size_t bytes = 0;
  std::size_t offset = 0;
  Tensor persistent;  // constants: laid out once at compile time
};

// Strides of `in` over the dims of `out` (numpy broadcasting: aligned at the last dim; a missing
// or size-1 dim reads the same element, stride 0).
Strides broadcast_strides(const ValueSlot& in, const Shape& out) {
  Strides st(out.size(), 0);
  const std::size_t off = out.size() - in.shape.size();
  for (std::size_t k = 0; k < in.shape.size(); ++k) st[k + off] = in.shape[k] == 1 ? 0 : in.st[k];
  return st;
}

struct Gemm {
  std::unique_ptr<SpmmOp> op;
  const SpmmImpl* impl = nullptr;
  Footprint fp;
};

struct Step {
  int node = -1;
  OpKind op = OpKind::relu;
  std::vector<int> in;
  int out = -1;
  Act act = Act::none;
  // conv / linear
  std::vector<Gemm> gemms;  // one per group; empty when `native` runs the convolution
  std::unique_ptr<rt::OnednnConv> native;  // oneDNN's convolution primitive (groups = 1), where chosen
  std::unique_ptr<struct ImplicitConv> implicit;  // implicit im2col (executor.h), where chosen
  std::int64_t m = 0, k = 0, ncols = 0, groups = 1;
  bool im2col = false;
  Tensor weight, bias;      // depthwise: weight [C, kh*kw]; bias [Cout] (also for GEMM layers)
  // workspace (im2col, attention scratch, layer_norm statistics)
  std::size_t ws_bytes = 0, ws_offset = 0;
  int ws_threads = 1;
  std::vector<std::int64_t> bases;  // generic reductions
  // Strides / shapes derived at compile time for the data-movement ops (run() never allocates):
  // transpose / select: the input's strides over the output's dims; add / mul / sub / div / pow:
  // a's (aux) and b's (aux2) broadcast strides over the output's dims; reduce_mean: see compile();
  // matmul: the batch shape and the batch strides of a, b and the output.
  Shape aux_shape;
  Strides aux, aux2, aux3;
  std::int64_t aux_offset = 0;
  LayerPlan plan;
  double total_ms = 0;
  std::int64_t calls = 0;
};

// im2col of a [C][N][H][W] input into col [C*kh*kw][N*Ho*Wo] (row (c, ky, kx)), zeros in the padding.
void im2col_cnhw(const float* x, float* col, const Shape& xs, const Shape& ys, const Attrs& a, int nt) {
  const std::int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], Ho = ys[2], Wo = ys[3];
  const std::int64_t kh = a.kernel[0], kw = a.kernel[1], sh = a.stride[0], sw = a.stride[1], ph = a.padding[0],
                     pw = a.padding[1], dh = a.dilation[0], dw = a.dilation[1];
  const std::int64_t rows = C * kh * kw, ncols = N * Ho * Wo;
#pragma omp parallel for schedule(static) num_threads(nt)
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t c = r / (kh * kw), ky = (r / kw) % kh, kx = r % kw;
    float* dst = col + r * ncols;
    for (std::int64_t b = 0; b < N; ++b) {
      const float* src = x + (c * N + b) * H * W;
      for (std::int64_t oy = 0; oy < Ho; ++oy) {
        float* d = dst + (b * Ho + oy) * Wo;
        const std::int64_t iy = oy * sh - ph + ky * dh;
        if (iy < 0 || iy >= H) {
          std::fill(d, d + Wo, 0.f);
          continue;
        }
        const float* row = src + iy * W;
        const std::int64_t off = kx * dw - pw;
        if (sw == 1) {
          const std::int64_t lo = std::clamp<std::int64_t>(-off, 0, Wo), hi = std::clamp<std::int64_t>(W - off, lo, Wo);
          std::fill(d, d + lo, 0.f);
          std::memcpy(d + lo, row + lo + off, static_cast<std::size_t>(hi - lo) * sizeof(float));
          std::fill(d + hi, d + Wo, 0.f);
        } else {
          for (std::int64_t ox = 0; ox < Wo; ++ox) {
            const std::int64_t ix = ox * sw + off;
            d[ox] = (ix >= 0 && ix < W) ? row[ix] : 0.f;
          }
        }
      }
    }
  }
}

// The im2col + GEMM path of a convolution step (col: its workspace, unused for 1x1 stride 1).
void run_gemm_conv(Step& s, const float* x, float* y, float* col, const Shape& xs, const Shape& ys, const Attrs& a) {
  const float* X = x;
  if (s.im2col) {
    im2col_cnhw(x, col, xs, ys, a, num_threads());
    X = col;
  }
  const float* bias = s.bias.defined() ? s.bias.data<float>() : nullptr;
  for (std::int64_t gi = 0; gi < s.groups; ++gi)
    s.gemms[gi].op->run(X + gi * s.k * s.ncols, y + gi * s.m * s.ncols, bias ? bias + gi * s.m : nullptr);
  if (s.act == Act::relu6) {
    const std::int64_t total = s.m * s.groups * s.ncols;
#pragma omp parallel for schedule(static) num_threads(num_threads()) if(total >= kParallelMin)
    for (std::int64_t i = 0; i < total; ++i) y[i] = std::min(y[i], 6.f);
  }
}

// Implicit im2col for a stride-1, dilation-1 convolution (executor.h). The padded input is
// [C][N][Hp][Wp] (Hp = H + 2 ph, Wp = W + 2 pw); the GEMM's column of output (b, oy, ox) is
// b Hp Wp + oy Wp + ox, so weight column (c, ky, kx) reads the padded input from
// c N Hp Wp + ky Wp + kx on. The last column read is C N Hp Wp - 1: no read past the buffer.
struct ImplicitConv {
  SpmmDesc desc;                  // the im2col path's (m, k, bias, relu), n = cols, x_rows
  std::int64_t padded_floats = 0; // the padded input, in whole 64-byte lines; the GEMM's output follows it
  std::unique_ptr<SpmmOp> op;     // initialized with `desc`

  static bool fits(const Attrs& a) {
    return a.groups == 1 && a.stride[0] == 1 && a.stride[1] == 1 && a.dilation[0] == 1 && a.dilation[1] == 1;
  }
  // For input xs, output ys and the im2col path's desc.
  ImplicitConv(const SpmmDesc& gemm, const Shape& xs, const Shape& ys, const Attrs& a) : desc(gemm) {
    const std::int64_t N = xs[0], C = xs[1], Hp = xs[2] + 2 * a.padding[0], Wp = xs[3] + 2 * a.padding[1];
    desc.n = (N - 1) * Hp * Wp + (ys[2] - 1) * Wp + ys[3];
    desc.x_rows.clear();
    for (std::int64_t c = 0; c < C; ++c)
      for (std::int64_t ky = 0; ky < a.kernel[0]; ++ky)
        for (std::int64_t kx = 0; kx < a.kernel[1]; ++kx) desc.x_rows.push_back(c * N * Hp * Wp + ky * Wp + kx);
    padded_floats = (C * N * Hp * Wp + 15) / 16 * 16;
  }
  std::size_t workspace_bytes() const {
    return static_cast<std::size_t>(padded_floats + desc.m * desc.n) * sizeof(float);
  }

  // x: [C][N][H][W]; y: [m][N][Ho][Wo]; ws: workspace_bytes(), 64-byte aligned.
  void run(const float* x, float* y, float* ws, const float* bias, Act act, const Shape& xs, const Shape& ys,
           const Attrs& a) {
    const std::int64_t m = desc.m, cols = desc.n;
    const std::int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], ph = a.padding[0], pw = a.padding[1];
    const std::int64_t Hp = H + 2 * ph, Wp = W + 2 * pw, Ho = ys[2], Wo = ys[3];
    float* xp = ws;
    float* yp = ws + padded_floats;
    const int nt = num_threads();
    // The padding is written on every run: other steps use the same workspace bytes in between.
#pragma omp parallel for schedule(static) num_threads(nt) if(padded_floats >= kParallelMin)
    for (std::int64_t cb = 0; cb < C * N; ++cb) {
      const float* src = x + cb * H * W;
      float* dst = xp + cb * Hp * Wp;
      std::fill(dst, dst + ph * Wp, 0.f);
      for (std::int64_t iy = 0; iy < H; ++iy) {
        float* d = dst + (ph + iy) * Wp;
        std::fill(d, d + pw, 0.f);
        std::memcpy(d + pw, src + iy * W, static_cast<std::size_t>(W) * sizeof(float));
        std::fill(d + pw + W, d + Wp, 0.f);
      }
      std::fill(dst + (ph + H) * Wp, dst + Hp * Wp, 0.f);
    }
    op->run(xp, yp, bias);
#pragma omp parallel for schedule(static) num_threads(nt) if(m * cols >= kParallelMin)
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t b = 0; b < N; ++b)
        for (std::int64_t oy = 0; oy < Ho; ++oy) {
          const float* src = yp + i * cols + b * Hp * Wp + oy * Wp;
          float* dst = y + ((i * N + b) * Ho + oy) * Wo;
          if (act == Act::relu6)
            for (std::int64_t ox = 0; ox < Wo; ++ox) dst[ox] = std::min(src[ox], 6.f);
          else
            std::memcpy(dst, src, static_cast<std::size_t>(Wo) * sizeof(float));
        }
  }
};

}  // namespace

void clear_kernel_choice_cache() {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  choice_cache().clear();
  plan_files().clear();  // re-read on next use, so a deleted or edited file takes effect
}

std::string default_plan_cache_path() {
  if (const char* p = std::getenv("SB_PLAN_CACHE"); p && *p) return p;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fmt::format("{}/sparsebench/plans.json", x);
  if (const char* h = std::getenv("HOME"); h && *h) return fmt::format("{}/.cache/sparsebench/plans.json", h);
  return {};
}

struct Executor::Impl {
  Graph g;
  CompileOptions opt;
  std::vector<ValueSlot> slots;
  std::vector<Step> steps;
  std::vector<LayerPlan> plans;
  Tensor arena;
  std::size_t arena_bytes = 0;
  bool profiling = false;

  float* fptr(int v) {
    ValueSlot& s = slots[v];
    if (s.persistent.defined()) return s.persistent.data<float>();
    return reinterpret_cast<float*>(arena.data<std::uint8_t>() + s.offset);
  }
  std::uint32_t* uptr(int v) { return reinterpret_cast<std::uint32_t*>(fptr(v)); }
  float* ws(const Step& s) { return reinterpret_cast<float*>(arena.data<std::uint8_t>() + s.ws_offset); }

  void compile(const Graph& graph);
  void poison_arena();
  void fuse(std::vector<Act>& acts);
  void plan_weight_layer(Step& s, const Node& n);
  void consider_native_conv(Step& s, const Node& n, const Tensor& wflat, const Tensor& mflat, bool pruned);
  void consider_implicit_conv(Step& s, const Node& n, const SpmmDesc& desc, const SpmmWeight& w);
  Gemm choose(const SpmmDesc& desc, const SpmmWeight& w, bool pruned, const std::string& layer);
  // Every timed planner decision: interleaved rounds, each candidate's minimum over all of them.
  // Measured one after the other, a burst of interference (other processes, a descheduled OpenMP
  // thread) during one candidate's turn decided the layer, e.g. 17 of resnet50's pruned convs
  // planned dense in one 2-thread run on the loaded dev VM, and the plan cache would keep such a
  // choice. The minimum, not the median: on a shared machine interference only ever adds time.
  std::vector<double> time_candidates(const std::vector<std::function<void()>>& runs) const;
  // A measured decision under `key`: the in-memory cache, then the plan file (opt.plan_cache_path,
  // keyed with the machine); "" when neither has it. remember() stores one in both.
  std::string recall(const std::string& key) const;
  // persist = false: this process only (a choice timed while the CPUs were apart, say).
  void remember(const std::string& key, const std::string& choice, bool persist = true) const;
  // Before and after timing a choice that goes to the plan file: false when there is no file or
  // the host has the CPUs apart right now (bench/parallel_probe.h); such a choice stays in memory,
  // so that it cannot outlive the bad window.
  bool cpus_close_for_the_file() const;
  void exec(Step& s);
  void exec_conv(Step& s, const Node& n);
  void exec_linear(Step& s);
  void exec_depthwise(Step& s, const Node& n);
};

Executor::Executor(const Graph& graph, const CompileOptions& options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = options;
  impl_->compile(graph);
}
Executor::~Executor() = default;

const Graph& Executor::graph() const { return impl_->g; }
const std::vector<LayerPlan>& Executor::plan() const { return impl_->plans; }
std::size_t Executor::arena_bytes() const { return impl_->arena_bytes; }
std::size_t Executor::weight_bytes_dense() const {
  std::size_t b = 0;
  for (const auto& p : impl_->plans) b += p.dense_bytes;
  return b;
}
std::size_t Executor::weight_bytes_stored() const {
  std::size_t b = 0;
  for (const auto& p : impl_->plans) b += p.stored_bytes;
  return b;
}
void Executor::set_profiling(bool on) { impl_->profiling = on; }
void Executor::reset_profile() {
  for (auto& s : impl_->steps) {
    s.total_ms = 0;
    s.calls = 0;
  }
}
std::vector<LayerTiming> Executor::profile() const {
  std::vector<LayerTiming> out;
  for (const auto& s : impl_->steps) out.push_back(LayerTiming{s.plan, s.total_ms, s.calls});
  return out;
}

// ---- compile ------------------------------------------------------------------------------------

void Executor::Impl::fuse(std::vector<Act>& acts) {
  const auto& nodes = g.nodes();
  std::vector<bool> dead(nodes.size(), false);
  std::vector<int> repl(nodes.size(), -1);
  acts.assign(nodes.size(), Act::none);
  auto is_output = [&](int v) { return std::find(g.outputs().begin(), g.outputs().end(), v) != g.outputs().end(); };
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    // Conv / linear run the activation inside their GEMM step; add (the residual) applies it in
    // the same loop: one pass over the activations instead of two.
    if (!(n.has_weight() || n.op == OpKind::add) || is_output(n.output)) continue;
    const auto cons = g.consumers(n.output);
    if (cons.size() != 1) continue;
    const Node& c = nodes[cons[0]];
    if (c.op != OpKind::relu && c.op != OpKind::relu6) continue;
    acts[i] = c.op == OpKind::relu ? Act::relu : Act::relu6;
    dead[cons[0]] = true;
    repl[cons[0]] = n.output;
  }
  // Keep the fused activation's output name reachable: graph outputs are resolved by remove_nodes.
  std::vector<Act> kept;
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (!dead[i]) kept.push_back(acts[i]);
  g.remove_nodes(dead, repl);
  acts = std::move(kept);
}

std::string Executor::Impl::recall(const std::string& key) const {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  auto it = choice_cache().find(key);
  if (it != choice_cache().end()) return it->second;
  if (opt.plan_cache_path.empty()) return {};
  const auto& file = plan_file(opt.plan_cache_path);
  auto fit = file.find(fmt::format("{} | {}", machine_key(), key));
  if (fit == file.end()) return {};
  choice_cache()[key] = fit->second;  // the rest of this process decides the same without the file
  return fit->second;
}

bool Executor::Impl::cpus_close_for_the_file() const {
  if (opt.plan_cache_path.empty()) return false;
  set_core_to_core_file(core_to_core_file_for(opt.plan_cache_path));
  return !cpus_apart_now(num_threads());
}

void Executor::Impl::remember(const std::string& key, const std::string& choice, bool persist) const {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  choice_cache()[key] = choice;
  if (opt.plan_cache_path.empty() || !persist) return;
  auto& file = plan_file(opt.plan_cache_path);
  file[fmt::format("{} | {}", machine_key(), key)] = choice;
  save_plan_file(opt.plan_cache_path, file);
}

std::vector<double> Executor::Impl::time_candidates(const std::vector<std::function<void()>>& runs) const {
  constexpr int kRounds = 3;
  std::vector<double> best(runs.size(), std::numeric_limits<double>::infinity());
  for (int r = 0; r < kRounds; ++r)
    for (std::size_t i = 0; i < runs.size(); ++i)
      best[i] = std::min(best[i], measure(runs[i], std::max(1, (opt.auto_min_reps + kRounds - 1) / kRounds),
                                          opt.auto_min_seconds / kRounds, 1, 1000).min_ms);
  return best;
}

Gemm Executor::Impl::choose(const SpmmDesc& desc, const SpmmWeight& w, bool pruned, const std::string& layer) {
  const SpmmRegistry& reg = SpmmRegistry::instance();
  std::vector<const SpmmImpl*> cands;
  auto add_baselines = [&] {
    for (const char* name : {"onednn_sgemm", "onednn_matmul"}) {
      const SpmmImpl* impl = reg.find(name);
      if (impl && impl->can_implement(desc, w, nullptr)) cands.push_back(impl);
    }
  };
  // "onednn_conv" names the convolution primitive, which plan_weight_layer runs; the GEMMs it
  // cannot take (linear layers, grouped convolutions) run the dense baselines.
  const std::string k = opt.kernel == kOnednnConvName ? std::string("dense") : opt.kernel;
  if (!pruned || k == "dense") {
    add_baselines();
  } else if (k == "sparse") {
    try {
      cands.push_back(&reg.select(desc, w, natural_format(w.pattern)));
    } catch (const Error& e) {
      fail(fmt::format("layer '{}' ({} x {} x {}, {}): {}", layer, desc.m, desc.k, desc.n, w.pattern.to_string(), e.what()));
    }
  } else if (k == "auto") {
    add_baselines();
    for (Format f : {natural_format(w.pattern), Format::csr}) {
      try {
        const SpmmImpl& impl = reg.select(desc, w, f);
        if (impl.role() == Role::kernel && std::find(cands.begin(), cands.end(), &impl) == cands.end())
          cands.push_back(&impl);
      } catch (const Error&) {
        // No kernel of ours runs this case in that format: the baselines remain.
      }
    }
  } else {
    const SpmmImpl* impl = reg.find(k);
    SB_CHECK(impl, "layer '{}': kernel '{}' does not exist", layer, k);
    std::string why;
    SB_CHECK(impl->can_implement(desc, w, &why), "layer '{}' ({} x {} x {}, {}): kernel '{}' cannot run it: {}", layer,
             desc.m, desc.k, desc.n, w.pattern.to_string(), k, why);
    cands.push_back(impl);
  }
  if (cands.empty()) {
    // No oneDNN (should not happen in a normal build): the reference still runs it.
    cands.push_back(&reg.select(desc, w, Format::dense));
  }
  Gemm best;
  if (cands.size() == 1 || !opt.measure) {
    best.impl = cands[0];
  } else {
    const std::string key = fmt::format("{}x{}x{} b{} r{} {} {:.4f} t{} {}", desc.m, desc.k, desc.n, desc.has_bias,
                                         desc.relu, pruned ? w.pattern.to_string() : "dense",
                                         pruned && w.mask.defined() ? mask_sparsity(w.mask) : 0.0, num_threads(), k);
    const std::string cached = recall(key);
    for (const SpmmImpl* c : cands)
      if (!cached.empty() && c->name() == cached) best.impl = c;
    if (!best.impl) {
      Tensor x = Tensor::empty({desc.k, desc.n}), y = Tensor::empty({desc.m, desc.n}), b = Tensor::zeros({desc.m});
      Rng rng(0x7157);
      rng.fill_uniform(x, -1.f, 1.f);
      const bool close_before = cpus_close_for_the_file();
      std::vector<std::unique_ptr<SpmmOp>> ops;
      std::vector<std::function<void()>> runs;
      for (const SpmmImpl* c : cands) {
        ops.push_back(c->initialize(desc, w));
        runs.push_back([&, op = ops.back().get()] { op->run(x.data<float>(), y.data<float>(), b.data<float>()); });
      }
      const std::vector<double> best_of = time_candidates(runs);
      const auto win = static_cast<std::size_t>(std::min_element(best_of.begin(), best_of.end()) - best_of.begin());
      best.impl = cands[win];
      best.op = std::move(ops[win]);
      remember(key, best.impl->name(), close_before && cpus_close_for_the_file());
    }
  }
  if (!best.op) best.op = best.impl->initialize(desc, w);
  best.fp = best.op->footprint();
  return best;
}


void Executor::Impl::plan_weight_layer(Step& s, const Node& n) {
  const Tensor w = n.param("weight").contiguous();
  const bool conv = n.op == OpKind::conv2d;
  const Shape& xs = slots[n.inputs[0]].shape;
  const Shape& ys = slots[n.output].shape;
  const std::int64_t out_ch = w.size(0);
  std::int64_t kg = 0;
  if (conv) {
    s.groups = n.attrs.groups;
    kg = w.size(1) * w.size(2) * w.size(3);
    s.ncols = ys[0] * ys[2] * ys[3];
    const auto& a = n.attrs;
    s.im2col = !(a.kernel[0] == 1 && a.kernel[1] == 1 && a.stride[0] == 1 && a.stride[1] == 1 && a.padding[0] == 0 &&
                 a.padding[1] == 0);
    if (s.im2col) s.ws_bytes = static_cast<std::size_t>(kg * s.groups * s.ncols) * sizeof(float);
  } else {
    SB_CHECK(xs.size() == 2 || xs.size() == 3, "layer '{}' (linear): the executor runs inputs of rank 2 or 3, got {}",
             n.name, shape_to_string(xs));
    kg = w.size(1);
    s.ncols = shape_numel(ys) / out_ch;
  }
  s.m = out_ch / s.groups;
  s.k = kg;
  if (n.params.count("bias")) s.bias = n.param("bias").contiguous();
  const bool pruned = n.mask.defined() && mask_sparsity(n.mask) > 0;
  const Tensor wflat = w.reshape({out_ch, kg});
  const Tensor mflat = pruned ? n.mask.contiguous().reshape({out_ch, kg}) : Tensor();
  SpmmDesc desc;
  desc.m = s.m;
  desc.k = s.k;
  desc.n = s.ncols;
  desc.has_bias = s.bias.defined();
  desc.relu = s.act != Act::none;
  std::vector<std::string> names;
  s.plan.format.clear();
  for (std::int64_t gi = 0; gi < s.groups; ++gi) {
    SpmmWeight sw;
    sw.dense = Tensor::from_data({s.m, kg}, wflat.data<float>() + gi * s.m * kg);
    if (pruned) sw.mask = Tensor::from_data({s.m, kg}, mflat.data<std::uint8_t>() + gi * s.m * kg);
    sw.pattern = pruned ? n.pattern : Pattern{};
    Gemm gm = choose(desc, sw, pruned, n.name);
    if (std::find(names.begin(), names.end(), gm.impl->name()) == names.end()) names.push_back(gm.impl->name());
    s.plan.stored_bytes += gm.fp.total();
    s.plan.stored.values += gm.fp.values;
    s.plan.stored.indices += gm.fp.indices;
    s.plan.stored.pointers += gm.fp.pointers;
    s.plan.stored.metadata += gm.fp.metadata;
    s.plan.stored.padding_values += gm.fp.padding_values;
    if (s.plan.format.empty() || s.plan.format == "dense") s.plan.format = format_name(gm.impl->format());
    s.gemms.push_back(std::move(gm));
  }
  s.plan.kernel = fmt::format("{}", fmt::join(names, ","));
  if (conv && pruned && s.im2col && ImplicitConv::fits(n.attrs)) {
    SpmmWeight sw;
    sw.dense = wflat;
    sw.mask = mflat;
    sw.pattern = n.pattern;
    consider_implicit_conv(s, n, desc, sw);
  }
  if (conv && s.groups == 1) consider_native_conv(s, n, wflat, mflat, pruned);
  s.plan.m = s.m;
  s.plan.k = s.k;
  s.plan.n = s.ncols;
  s.plan.groups = s.groups;
  s.plan.dense_bytes = static_cast<std::size_t>(w.numel()) * sizeof(float);
  s.plan.sparsity = pruned ? mask_sparsity(n.mask) : 0.0;
}

// A pruned stride-1 convolution whose kernel reads shifted rows: implicit im2col against im2col
// (executor.h), timed and cached the way consider_native_conv does it.
void Executor::Impl::consider_implicit_conv(Step& s, const Node& n, const SpmmDesc& desc, const SpmmWeight& w) {
  const SpmmImpl* impl = s.gemms[0].impl;
  const bool forced = opt.conv_input == ConvInput::implicit;
  if (opt.conv_input == ConvInput::im2col || !impl->reads_x_rows() || !(forced || opt.measure)) return;
  const Shape& xs = slots[n.inputs[0]].shape;
  const Shape& ys = slots[n.output].shape;
  auto ic = std::make_unique<ImplicitConv>(desc, xs, ys, n.attrs);
  if (!impl->can_implement(ic->desc, w, nullptr)) return;
  const float* bias = s.bias.defined() ? s.bias.data<float>() : nullptr;
  const std::string key = fmt::format("implicit conv {} -> {} {}x{} p{}x{} b{} a{} {} {:.4f} t{} {}", shape_to_string(xs),
                                      shape_to_string(ys), n.attrs.kernel[0], n.attrs.kernel[1], n.attrs.padding[0],
                                      n.attrs.padding[1], s.bias.defined(), static_cast<int>(s.act),
                                      n.pattern.to_string(), mask_sparsity(n.mask), num_threads(), impl->name());
  const std::string cached = forced ? std::string("implicit") : recall(key);
  if (cached == "im2col") return;
  ic->op = impl->initialize(ic->desc, w);
  if (cached != "implicit") {
    Tensor x = Tensor::empty({shape_numel(xs)}), y = Tensor::empty({shape_numel(ys)});
    Tensor col = Tensor::empty({static_cast<std::int64_t>(s.ws_bytes / sizeof(float))});
    Tensor ws = Tensor::empty({static_cast<std::int64_t>(ic->workspace_bytes() / sizeof(float))});
    Rng rng(0x1A9C);
    rng.fill_uniform(x, -1.f, 1.f);
    const bool close_before = cpus_close_for_the_file();
    const std::vector<double> t = time_candidates(
        {[&] { run_gemm_conv(s, x.data<float>(), y.data<float>(), col.data<float>(), xs, ys, n.attrs); },
         [&] { ic->run(x.data<float>(), y.data<float>(), ws.data<float>(), bias, s.act, xs, ys, n.attrs); }});
    const bool win = t[1] < t[0];
    remember(key, win ? "implicit" : "im2col", close_before && cpus_close_for_the_file());
    if (!win) return;
  }
  s.ws_bytes = ic->workspace_bytes();
  s.implicit = std::move(ic);
  s.gemms[0].op.reset();  // the same weight packed again: only the implicit op's copy stays in memory
  s.plan.implicit_im2col = true;
}

// A convolution that may run dense: its im2col + GEMM path against oneDNN's convolution primitive
// (see executor.h), timed the way choose() times GEMM candidates (interleaved rounds, the minimum
// of each), the decision cached under the same in-memory and on-disk cache.
void Executor::Impl::consider_native_conv(Step& s, const Node& n, const Tensor& wflat, const Tensor& mflat,
                                          bool pruned) {
  const std::string& k = opt.kernel;
  const bool forced = k == kOnednnConvName;
  // A pruned layer under "auto" keeps choosing among the GEMM baselines and our kernels: timed
  // alone, a dense convolution's weight stays in cache from call to call, and at 2 threads the
  // primitive won some of resnet50's 90 % layers that then ran slower in the model (17 -> 24 ms).
  if (!forced && (!opt.measure || (pruned && k != "dense"))) return;
  // SB_ONEDNN_CONV=0: the GEMM path only, as before session 16 (to compare with older results).
  if (const char* e = std::getenv("SB_ONEDNN_CONV"); !forced && e && std::string(e) == "0") return;
  const Shape& xs = slots[n.inputs[0]].shape;
  const Shape& ys = slots[n.output].shape;
  rt::ConvGeom geo;
  geo.n = xs[0], geo.c = xs[1], geo.h = xs[2], geo.w = xs[3];
  geo.k = ys[1], geo.oh = ys[2], geo.ow = ys[3];
  geo.kernel = n.attrs.kernel, geo.stride = n.attrs.stride, geo.padding = n.attrs.padding;
  geo.dilation = n.attrs.dilation;
  // The weight as a dense library must see it: pruned entries zero.
  Tensor wd = wflat.clone();
  if (pruned) {
    float* p = wd.data<float>();
    const std::uint8_t* mk = mflat.data<std::uint8_t>();
    for (std::int64_t i = 0; i < wd.numel(); ++i)
      if (!mk[i]) p[i] = 0.f;
  }
  const int act = s.act == Act::relu ? 1 : s.act == Act::relu6 ? 2 : 0;
  auto make = [&] {
    return std::make_unique<rt::OnednnConv>(geo, wd.data<float>(), s.bias.defined() ? s.bias.data<float>() : nullptr,
                                            act);
  };
  std::unique_ptr<rt::OnednnConv> native;
  if (forced) {
    native = make();
  } else {
    const std::string key =
        fmt::format("conv {}x{}x{}x{} -> {} {}x{} s{}x{} p{}x{} d{}x{} b{} a{} {} {:.4f} t{} {} gemm={}", geo.n, geo.c,
                    geo.h, geo.w, geo.k, geo.kernel[0], geo.kernel[1], geo.stride[0], geo.stride[1], geo.padding[0],
                    geo.padding[1], geo.dilation[0], geo.dilation[1], s.bias.defined(), act,
                    pruned ? n.pattern.to_string() : "dense", pruned ? mask_sparsity(n.mask) : 0.0, num_threads(), k,
                    s.plan.kernel);
    const std::string cached = recall(key);
    if (cached == "gemm") return;
    if (cached == kOnednnConvName) {
      native = make();
    } else {
      try {
        native = make();
      } catch (const Error&) {
        return;  // oneDNN has no convolution for this case: the GEMM path stays
      }
      Tensor x = Tensor::empty({geo.c * geo.n * geo.h * geo.w}), y = Tensor::empty({geo.k * geo.n * geo.oh * geo.ow});
      Tensor col = s.im2col ? Tensor::empty({static_cast<std::int64_t>(s.ws_bytes / sizeof(float))}) : Tensor();
      Rng rng(0xC0471);
      rng.fill_uniform(x, -1.f, 1.f);
      const bool close_before = cpus_close_for_the_file();
      const std::vector<double> t = time_candidates(
          {[&] {
             run_gemm_conv(s, x.data<float>(), y.data<float>(), col.defined() ? col.data<float>() : nullptr, xs, ys,
                           n.attrs);
           },
           [&] { native->run(x.data<float>(), y.data<float>()); }});
      const bool win = t[1] < t[0];
      remember(key, win ? kOnednnConvName : "gemm", close_before && cpus_close_for_the_file());
      if (!win) return;
    }
  }
  s.native = std::move(native);
  s.implicit.reset();
  s.plan.implicit_im2col = false;
  s.gemms.clear();
  s.ws_bytes = 0;
  s.plan.kernel = kOnednnConvName;
  s.plan.format = "dense";
  s.plan.stored = Footprint{};
  s.plan.stored.values = static_cast<std::size_t>(s.m * s.k) * sizeof(float);
  s.plan.stored_bytes = s.plan.stored.total();
}

void Executor::Impl::compile(const Graph& graph) {
  g = graph.clone();
  if (opt.fold_batch_norm) fold_batch_norm(g);
  std::vector<Act> acts;
  if (opt.fuse_activations)
    fuse(acts);
  else
    acts.assign(g.nodes().size(), Act::none);
  const int max_threads = std::max(num_threads(), available_cpus());

  slots.assign(g.values().size(), ValueSlot{});
  for (std::size_t v = 0; v < g.values().size(); ++v) {
    const Value& val = g.values()[v];
    SB_CHECK(val.shape.size() <= kMaxRank, "value '{}': rank {} exceeds the {} the executor runs", val.name,
             val.shape.size(), kMaxRank);
    slots[v].shape = val.shape;
    slots[v].st = internal_strides(val.shape);
    slots[v].dtype = val.dtype;
    slots[v].bytes = static_cast<std::size_t>(shape_numel(val.shape)) * 4;
  }

  const auto& nodes = g.nodes();
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    if (n.op == OpKind::constant) {
      const Tensor p = n.param("value").contiguous();
      ValueSlot& sl = slots[n.output];
      sl.persistent = Tensor::empty(sl.shape);
      copy_nd(p.data<float>(), p.strides(), sl.persistent.data<float>(), sl.st, sl.shape);
      continue;
    }
    Step s;
    s.node = static_cast<int>(i);
    s.op = n.op;
    s.in = n.inputs;
    s.out = n.output;
    s.act = acts[i];
    s.plan.name = n.name;
    s.plan.op = fmt::format("{}{}", op_name(n.op), s.act == Act::relu ? "+relu" : s.act == Act::relu6 ? "+relu6" : "");
    s.plan.kernel = "loop";
    s.plan.format.assign(1, '-');  // not = "-": GCC 12 -Wrestrict false positive (PR 105329)
    s.plan.flops = g.cost(static_cast<int>(i)).flops;
    const Shape& xs = slots[n.inputs.empty() ? n.output : n.inputs[0]].shape;
    switch (n.op) {
      case OpKind::conv2d:
        if (n.is_depthwise()) {
          const Tensor w = n.param("weight").contiguous();
          s.weight = w.reshape({w.size(0), w.size(2) * w.size(3)});
          if (n.params.count("bias")) s.bias = n.param("bias").contiguous();
          s.plan.kernel = "direct_depthwise";
          s.plan.format = "dense";
          s.plan.dense_bytes = s.plan.stored_bytes = static_cast<std::size_t>(w.numel()) * sizeof(float);
          s.plan.stored.values = s.plan.stored_bytes;
          s.plan.sparsity = n.mask.defined() ? mask_sparsity(n.mask) : 0.0;
        } else {
          plan_weight_layer(s, n);
        }
        break;
      case OpKind::linear: plan_weight_layer(s, n); break;
      case OpKind::attention: {
        const std::int64_t t = xs[1];
        s.ws_threads = max_threads;
        s.ws_bytes = static_cast<std::size_t>(2 * t * t * max_threads) * sizeof(float);
        break;
      }
      case OpKind::layer_norm: {
        const int last = static_cast<int>(xs.size()) - 1;
        if (xs.size() == 2 || xs.size() == 3)
          s.ws_bytes = static_cast<std::size_t>(2 * shape_numel(xs) / xs.back()) * sizeof(float);
        else
          s.bases = slice_bases(xs, slots[n.inputs[0]].st, last);
        break;
      }
      case OpKind::softmax: {
        const int axis = static_cast<int>(n.attrs.axis < 0 ? n.attrs.axis + static_cast<std::int64_t>(xs.size()) : n.attrs.axis);
        s.bases = slice_bases(xs, slots[n.inputs[0]].st, axis);
        break;
      }
      case OpKind::batch_norm: s.bases = slice_bases(xs, slots[n.inputs[0]].st, 1); break;
      case OpKind::add:
      case OpKind::mul:
      case OpKind::sub:
      case OpKind::div:
      case OpKind::pow:
        s.aux = broadcast_strides(slots[n.inputs[0]], slots[n.output].shape);
        s.aux2 = broadcast_strides(slots[n.inputs[1]], slots[n.output].shape);
        break;
      case OpKind::reduce_mean: {
        // bases: the input offset of each output element's first summand; aux: that element's
        // offset in the output; aux2: the summands' offsets relative to the first.
        const ValueSlot &X = slots[n.inputs[0]], &Y = slots[n.output];
        const auto r = static_cast<std::int64_t>(X.shape.size());
        std::vector<bool> red(X.shape.size(), n.attrs.axes.empty());
        for (auto a : n.attrs.axes) red[a < 0 ? a + r : a] = true;
        Shape outer, inner;
        Strides outer_in, outer_out, inner_in;
        std::size_t od = 0;
        for (std::size_t d = 0; d < X.shape.size(); ++d) {
          if (red[d]) {
            inner.push_back(X.shape[d]);
            inner_in.push_back(X.st[d]);
            if (n.attrs.keepdims) ++od;
          } else {
            outer.push_back(X.shape[d]);
            outer_in.push_back(X.st[d]);
            outer_out.push_back(Y.st[od++]);
          }
        }
        Odometer oi(outer, outer_in), oo(outer, outer_out), ii(inner, inner_in);
        for (std::int64_t e = 0; e < shape_numel(outer); ++e, oi.next(), oo.next()) {
          s.bases.push_back(oi.off);
          s.aux.push_back(oo.off);
        }
        for (std::int64_t e = 0; e < shape_numel(inner); ++e, ii.next()) s.aux2.push_back(ii.off);
        break;
      }
      case OpKind::transpose: {
        const auto r = static_cast<std::int64_t>(xs.size());
        s.aux = slots[n.inputs[0]].st;
        std::swap(s.aux[n.attrs.axis < 0 ? n.attrs.axis + r : n.attrs.axis],
                  s.aux[n.attrs.axis2 < 0 ? n.attrs.axis2 + r : n.attrs.axis2]);
        break;
      }
      case OpKind::select: {
        const auto r = static_cast<std::int64_t>(xs.size());
        const std::int64_t axis = n.attrs.axis < 0 ? n.attrs.axis + r : n.attrs.axis;
        s.aux = slots[n.inputs[0]].st;
        s.aux_offset = n.attrs.axis2 * s.aux[axis];
        s.aux.erase(s.aux.begin() + axis);
        break;
      }
      case OpKind::matmul: {
        const auto &A = slots[n.inputs[0]], &B = slots[n.inputs[1]], &O = slots[n.output];
        s.aux_shape.assign(A.shape.begin(), A.shape.end() - 2);
        s.aux.assign(A.st.begin(), A.st.end() - 2);
        s.aux2.assign(B.st.begin(), B.st.end() - 2);
        s.aux3.assign(O.st.begin(), O.st.end() - 2);
        break;
      }
      default: break;
    }
    steps.push_back(std::move(s));
    plans.push_back(steps.back().plan);
  }

  // Liveness: a value lives from the step that writes it (inputs: from the start) to the last
  // step that reads it (graph outputs: to the end, they are copied out after the last step).
  const int nsteps = static_cast<int>(steps.size());
  std::vector<int> first(slots.size(), -1), last(slots.size(), -1);
  for (int v : g.inputs()) first[v] = last[v] = 0;
  for (int i = 0; i < nsteps; ++i) {
    first[steps[i].out] = last[steps[i].out] = i;
    for (int v : steps[i].in) last[v] = std::max(last[v], i);
  }
  for (int v : g.outputs()) last[v] = std::max(nsteps - 1, 0);
  std::vector<BufferRequest> reqs;
  std::vector<std::pair<int, int>> owner;  // (value id, -1) or (-1, step index)
  for (std::size_t v = 0; v < slots.size(); ++v) {
    if (first[v] < 0 || slots[v].persistent.defined()) continue;
    reqs.push_back({slots[v].bytes, first[v], std::max(first[v], last[v])});
    owner.emplace_back(static_cast<int>(v), -1);
  }
  for (int i = 0; i < nsteps; ++i)
    if (steps[i].ws_bytes) {
      reqs.push_back({steps[i].ws_bytes, i, i});
      owner.emplace_back(-1, i);
    }
  const MemoryPlan mp = plan_memory(reqs);
  for (std::size_t r = 0; r < reqs.size(); ++r) {
    if (owner[r].first >= 0)
      slots[owner[r].first].offset = mp.offsets[r];
    else
      steps[owner[r].second].ws_offset = mp.offsets[r];
  }
  arena_bytes = mp.total;
  arena = Tensor::empty({static_cast<std::int64_t>(std::max<std::size_t>(mp.total, 64))}, DType::u8);
  if (opt.poison) poison_arena();
}

void Executor::Impl::poison_arena() {
  auto* p = reinterpret_cast<float*>(arena.data<std::uint8_t>());
  std::fill(p, p + arena.numel() / 4, std::numeric_limits<float>::quiet_NaN());
}

// ---- run ---------------------------------------------------------------------------------------

void Executor::run(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) {
  Impl& im = *impl_;
  const Graph& g = im.g;
  SB_CHECK(inputs.size() == g.inputs().size(), "run: the graph has {} input(s), got {}", g.inputs().size(), inputs.size());
  if (im.opt.poison) im.poison_arena();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const int v = g.inputs()[i];
    const Value& val = g.value(v);
    const Tensor& t = inputs[i];
    SB_CHECK(t.defined() && t.shape() == val.shape && t.dtype() == val.dtype, "run: input '{}' must be {} {}, got {} {}",
             val.name, dtype_name(val.dtype), shape_to_string(val.shape), t.defined() ? dtype_name(t.dtype()) : "undefined",
             t.defined() ? shape_to_string(t.shape()) : "");
    copy_nd(static_cast<const std::uint32_t*>(t.raw_data()), t.strides(), im.uptr(v), im.slots[v].st, val.shape);
  }
  for (auto& s : im.steps) {
    if (im.profiling) {
      const auto t0 = std::chrono::steady_clock::now();
      im.exec(s);
      s.total_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      ++s.calls;
    } else {
      im.exec(s);
    }
  }
  outputs.resize(g.outputs().size());
  for (std::size_t i = 0; i < g.outputs().size(); ++i) {
    const int v = g.outputs()[i];
    const ValueSlot& sl = im.slots[v];
    if (!outputs[i].defined() || outputs[i].shape() != sl.shape || outputs[i].dtype() != DType::f32 ||
        !outputs[i].is_contiguous())
      outputs[i] = Tensor::empty(sl.shape);
    copy_nd(im.uptr(v), sl.st, static_cast<std::uint32_t*>(outputs[i].raw_data()), outputs[i].strides(), sl.shape);
  }
}

std::vector<Tensor> Executor::run(const std::vector<Tensor>& inputs) {
  std::vector<Tensor> out;
  run(inputs, out);
  return out;
}

namespace {
inline float apply_act(float v, Act a) {
  if (a == Act::relu) return v > 0.f ? v : 0.f;
  if (a == Act::relu6) return std::min(std::max(v, 0.f), 6.f);
  return v;
}

// y = f(a, b) over `shape` with numpy broadcasting. Flat loops when both operands have the output's
// shape (then the same internal layout) or one is a single element; a strided walk otherwise.
struct Operand {
  const float* p;
  const Shape* shape;
  const Strides* st;  // broadcast strides over the output's dims
};
template <class F>
void binary_loop(F f, Operand a, Operand b, float* y, const Shape& shape, const Strides& yst, int nt) {
  const std::int64_t total = shape_numel(shape);
  const bool a_full = *a.shape == shape, b_full = *b.shape == shape;
  const float* A = a.p;
  const float* B = b.p;
  if (a_full && b_full) {
#pragma omp parallel for simd schedule(static) num_threads(nt) if(total >= kParallelMin)
    for (std::int64_t i = 0; i < total; ++i) y[i] = f(A[i], B[i]);
  } else if (a_full && shape_numel(*b.shape) == 1) {
    const float bv = B[0];
#pragma omp parallel for simd schedule(static) num_threads(nt) if(total >= kParallelMin)
    for (std::int64_t i = 0; i < total; ++i) y[i] = f(A[i], bv);
  } else if (b_full && shape_numel(*a.shape) == 1) {
    const float av = A[0];
#pragma omp parallel for simd schedule(static) num_threads(nt) if(total >= kParallelMin)
    for (std::int64_t i = 0; i < total; ++i) y[i] = f(av, B[i]);
  } else {
    Odometer oy(shape, yst), oa(shape, *a.st), ob(shape, *b.st);
    for (std::int64_t e = 0; e < total; ++e, oy.next(), oa.next(), ob.next()) y[oy.off] = f(A[oa.off], B[ob.off]);
  }
}
}  // namespace

void Executor::Impl::exec_conv(Step& s, const Node& n) {
  const float* x = fptr(s.in[0]);
  float* y = fptr(s.out);
  if (s.native) {
    s.native->run(x, y);
    return;
  }
  if (s.implicit) {
    s.implicit->run(x, y, ws(s), s.bias.defined() ? s.bias.data<float>() : nullptr, s.act, slots[s.in[0]].shape,
                    slots[s.out].shape, n.attrs);
    return;
  }
  run_gemm_conv(s, x, y, s.im2col ? ws(s) : nullptr, slots[s.in[0]].shape, slots[s.out].shape, n.attrs);
}

void Executor::Impl::exec_linear(Step& s) {
  float* y = fptr(s.out);
  s.gemms[0].op->run(fptr(s.in[0]), y, s.bias.defined() ? s.bias.data<float>() : nullptr);
  if (s.act == Act::relu6) {
    const std::int64_t total = s.m * s.ncols;
#pragma omp parallel for schedule(static) num_threads(num_threads()) if(total >= kParallelMin)
    for (std::int64_t i = 0; i < total; ++i) y[i] = std::min(y[i], 6.f);
  }
}

void Executor::Impl::exec_depthwise(Step& s, const Node& n) {
  const float* x = fptr(s.in[0]);
  float* y = fptr(s.out);
  const Shape& xs = slots[s.in[0]].shape;
  const Shape& ys = slots[s.out].shape;
  const auto& a = n.attrs;
  const rt::DwGeom geom{xs[2],       xs[3],       ys[2],       ys[3],       a.kernel[0], a.kernel[1],
                        a.stride[0], a.stride[1],            a.padding[0], a.padding[1], a.dilation[0], a.dilation[1],
                        s.act == Act::relu ? 1 : s.act == Act::relu6 ? 2 : 0};
  static const rt::DwPlaneFn plane = [] {
    switch (max_isa()) {
      case Isa::avx512: return &rt::dw_plane_avx512;
      case Isa::avx2: return &rt::dw_plane_avx2;
      default: return &rt::dw_plane_scalar;
    }
  }();
  const std::int64_t N = xs[0], C = xs[1], HW = xs[2] * xs[3], HoWo = ys[2] * ys[3], khw = a.kernel[0] * a.kernel[1];
  const float* wt = s.weight.data<float>();
  const float* bias = s.bias.defined() ? s.bias.data<float>() : nullptr;
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (std::int64_t p = 0; p < C * N; ++p) {
    const std::int64_t c = p / N;
    plane(x + p * HW, wt + c * khw, bias ? bias[c] : 0.f, y + p * HoWo, geom);
  }
}

void Executor::Impl::exec(Step& s) {
  const Node& n = g.nodes()[s.node];
  const int nt = num_threads();
  switch (s.op) {
    case OpKind::conv2d:
      if (s.weight.defined())
        exec_depthwise(s, n);
      else
        exec_conv(s, n);
      return;
    case OpKind::linear: exec_linear(s); return;
    case OpKind::relu:
    case OpKind::relu6:
    case OpKind::gelu: {
      const float* x = fptr(s.in[0]);
      float* y = fptr(s.out);
      const std::int64_t total = shape_numel(slots[s.out].shape);
      if (s.op == OpKind::relu) {
#pragma omp parallel for schedule(static) num_threads(nt) if(total >= kParallelMin)
        for (std::int64_t i = 0; i < total; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
      } else if (s.op == OpKind::relu6) {
#pragma omp parallel for schedule(static) num_threads(nt) if(total >= kParallelMin)
        for (std::int64_t i = 0; i < total; ++i) y[i] = std::min(std::max(x[i], 0.f), 6.f);
      } else if (max_isa() == Isa::avx512) {
        constexpr std::int64_t kBlock = 1 << 12;
        const std::int64_t blocks = (total + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) num_threads(nt) if(total >= kParallelMin)
        for (std::int64_t bi = 0; bi < blocks; ++bi)
          rt::gelu_avx512(x + bi * kBlock, y + bi * kBlock, std::min(kBlock, total - bi * kBlock));
      } else {
#pragma omp parallel for simd schedule(static) num_threads(nt) if(total >= kParallelMin)
        for (std::int64_t i = 0; i < total; ++i) y[i] = gelu_erf(x[i]);
      }
      return;
    }
    case OpKind::sigmoid:
    case OpKind::tanh:
    case OpKind::erf:
    case OpKind::sqrt: {
      const float* x = fptr(s.in[0]);
      float* y = fptr(s.out);
      const std::int64_t total = shape_numel(slots[s.out].shape);
      auto loop = [&](auto f) {
#pragma omp parallel for simd schedule(static) num_threads(nt) if(total >= kParallelMin)
        for (std::int64_t i = 0; i < total; ++i) y[i] = f(x[i]);
      };
      if (s.op == OpKind::sigmoid) loop([](float v) { return 1.f / (1.f + std::exp(-v)); });
      else if (s.op == OpKind::tanh) loop([](float v) { return std::tanh(v); });
      else if (s.op == OpKind::erf) loop([](float v) { return std::erf(v); });
      else loop([](float v) { return std::sqrt(v); });
      return;
    }
    case OpKind::add:
    case OpKind::mul:
    case OpKind::sub:
    case OpKind::div:
    case OpKind::pow: {
      const Operand a{fptr(s.in[0]), &slots[s.in[0]].shape, &s.aux}, b{fptr(s.in[1]), &slots[s.in[1]].shape, &s.aux2};
      float* y = fptr(s.out);
      const Shape& shape = slots[s.out].shape;
      const Strides& yst = slots[s.out].st;
      const Act act = s.act;
      switch (s.op) {
        case OpKind::add:
          if (act == Act::none) binary_loop([](float u, float v) { return u + v; }, a, b, y, shape, yst, nt);
          else binary_loop([act](float u, float v) { return apply_act(u + v, act); }, a, b, y, shape, yst, nt);
          return;
        case OpKind::mul: binary_loop([](float u, float v) { return u * v; }, a, b, y, shape, yst, nt); return;
        case OpKind::sub: binary_loop([](float u, float v) { return u - v; }, a, b, y, shape, yst, nt); return;
        case OpKind::div: binary_loop([](float u, float v) { return u / v; }, a, b, y, shape, yst, nt); return;
        default: break;
      }
      // pow: the common constant exponents as torch computes them (x * x, sqrt, ...), powf otherwise.
      if (shape_numel(*b.shape) == 1 && *a.shape == shape) {
        const float e = b.p[0];
        if (e == 2.f) binary_loop([](float u, float) { return u * u; }, a, b, y, shape, yst, nt);
        else if (e == 3.f) binary_loop([](float u, float) { return u * u * u; }, a, b, y, shape, yst, nt);
        else if (e == 1.f) binary_loop([](float u, float) { return u; }, a, b, y, shape, yst, nt);
        else if (e == 0.5f) binary_loop([](float u, float) { return std::sqrt(u); }, a, b, y, shape, yst, nt);
        else if (e == -1.f) binary_loop([](float u, float) { return 1.f / u; }, a, b, y, shape, yst, nt);
        else binary_loop([](float u, float v) { return std::pow(u, v); }, a, b, y, shape, yst, nt);
      } else {
        binary_loop([](float u, float v) { return std::pow(u, v); }, a, b, y, shape, yst, nt);
      }
      return;
    }
    case OpKind::reduce_mean: {
      const float* x = fptr(s.in[0]);
      float* y = fptr(s.out);
      const auto outer = static_cast<std::int64_t>(s.bases.size()), inner = static_cast<std::int64_t>(s.aux2.size());
      const double inv = 1.0 / static_cast<double>(inner);
      const std::int64_t* rel = s.aux2.data();
#pragma omp parallel for schedule(static) num_threads(nt) if(outer * inner >= kParallelMin)
      for (std::int64_t o = 0; o < outer; ++o) {
        const float* base = x + s.bases[o];
        double acc = 0;
        for (std::int64_t j = 0; j < inner; ++j) acc += base[rel[j]];
        y[s.aux[o]] = static_cast<float>(acc * inv);
      }
      return;
    }
    case OpKind::max_pool:
    case OpKind::avg_pool: {
      const float* x = fptr(s.in[0]);
      float* y = fptr(s.out);
      const Shape& xs = slots[s.in[0]].shape;
      const Shape& ys = slots[s.out].shape;
      const std::int64_t planes = xs[0] * xs[1], H = xs[2], W = xs[3], Ho = ys[2], Wo = ys[3];
      const auto& a = n.attrs;
      const bool is_max = s.op == OpKind::max_pool;
      const float inv = 1.f / static_cast<float>(a.kernel[0] * a.kernel[1]);
#pragma omp parallel for schedule(static) num_threads(nt)
      for (std::int64_t p = 0; p < planes; ++p) {
        const float* in = x + p * H * W;
        float* out = y + p * Ho * Wo;
        for (std::int64_t oy = 0; oy < Ho; ++oy)
          for (std::int64_t ox = 0; ox < Wo; ++ox) {
            float acc = is_max ? -std::numeric_limits<float>::infinity() : 0.f;
            for (std::int64_t ky = 0; ky < a.kernel[0]; ++ky) {
              const std::int64_t iy = oy * a.stride[0] - a.padding[0] + ky;
              if (iy < 0 || iy >= H) continue;
              for (std::int64_t kx = 0; kx < a.kernel[1]; ++kx) {
                const std::int64_t ix = ox * a.stride[1] - a.padding[1] + kx;
                if (ix < 0 || ix >= W) continue;
                const float v = in[iy * W + ix];
                acc = is_max ? std::max(acc, v) : acc + v;
              }
            }
            out[oy * Wo + ox] = is_max ? acc : acc * inv;
          }
      }
      return;
    }
    case OpKind::global_avg_pool: {
      const float* x = fptr(s.in[0]);
      float* y = fptr(s.out);
      const Shape& xs = slots[s.in[0]].shape;
      const std::int64_t planes = xs[0] * xs[1], hw = xs[2] * xs[3];
#pragma omp parallel for schedule(static) num_threads(nt)
      for (std::int64_t p = 0; p < planes; ++p) {
        double acc = 0;
        for (std::int64_t i = 0; i < hw; ++i) acc += x[p * hw + i];
        y[p] = static_cast<float>(acc / static_cast<double>(hw));
      }
      return;
    }
    case OpKind::flatten:
    case OpKind::reshape: {
      const ValueSlot &in = slots[s.in[0]], &out = slots[s.out];
      const float* x = fptr(s.in[0]);
      float* y = fptr(s.out);
      if (in.shape == out.shape) {
        std::memcpy(y, x, in.bytes);
        return;
      }
      Odometer oi(in.shape, in.st), oo(out.shape, out.st);
      const std::int64_t total = shape_numel(in.shape);
      for (std::int64_t e = 0; e < total; ++e, oi.next(), oo.next()) y[oo.off] = x[oi.off];
      return;
    }
    case OpKind::transpose:
    case OpKind::select: {
      const ValueSlot& out = slots[s.out];
      copy_nd(fptr(s.in[0]) + s.aux_offset, s.aux, fptr(s.out), out.st, out.shape);
      return;
    }
    case OpKind::concat: {
      const ValueSlot& out = slots[s.out];
      const auto r = static_cast<std::int64_t>(out.shape.size());
      const std::int64_t axis = n.attrs.axis < 0 ? n.attrs.axis + r : n.attrs.axis;
      std::int64_t start = 0;
      for (int v : s.in) {
        copy_nd(fptr(v), slots[v].st, fptr(s.out) + start * out.st[axis], out.st, slots[v].shape);
        start += slots[v].shape[axis];
      }
      return;
    }
    case OpKind::cls_token: {
      const ValueSlot &in = slots[s.in[0]], &out = slots[s.out];
      float* y = fptr(s.out);
      const float* tok = n.param("token").data<float>();
      for (std::int64_t b = 0; b < out.shape[0]; ++b)
        for (std::int64_t c = 0; c < out.shape[2]; ++c) y[b * out.st[0] + c * out.st[2]] = tok[c];
      copy_nd(fptr(s.in[0]), in.st, y + out.st[1], out.st, in.shape);
      return;
    }
    case OpKind::embedding: {
      const ValueSlot &in = slots[s.in[0]], &out = slots[s.out];
      const auto* ids = reinterpret_cast<const std::int32_t*>(fptr(s.in[0]));
      const Tensor& w = n.param("weight");
      const std::int64_t vocab = w.size(0), hidden = w.size(1);
      const float* wt = w.data<float>();
      float* y = fptr(s.out);
      for (std::int64_t b = 0; b < in.shape[0]; ++b)
        for (std::int64_t t = 0; t < in.shape[1]; ++t) {
          const std::int32_t id = ids[b * in.st[0] + t * in.st[1]];
          SB_CHECK(id >= 0 && id < vocab, "node '{}' (embedding): token id {} at [{}, {}] outside [0, {})", n.name, id,
                   b, t, vocab);
          float* o = y + b * out.st[0] + t * out.st[1];
          const float* row = wt + id * hidden;
          for (std::int64_t h = 0; h < hidden; ++h) o[h * out.st[2]] = row[h];
        }
      return;
    }
    case OpKind::batch_norm: {
      float* y = fptr(s.out);
      const float* x = fptr(s.in[0]);
      const ValueSlot& in = slots[s.in[0]];
      const std::int64_t C = in.shape[1], sc = in.st[1];
      const float *gm = n.param("weight").data<float>(), *bt = n.param("bias").data<float>(),
                  *mu = n.param("running_mean").data<float>(), *var = n.param("running_var").data<float>();
      const auto nb = static_cast<std::int64_t>(s.bases.size());
      for (std::int64_t c = 0; c < C; ++c) {
        const float scale = gm[c] / std::sqrt(var[c] + static_cast<float>(n.attrs.eps));
        const float shift = bt[c] - mu[c] * scale;
#pragma omp parallel for schedule(static) num_threads(nt)
        for (std::int64_t i = 0; i < nb; ++i) {
          const std::int64_t o = s.bases[i] + c * sc;
          y[o] = x[o] * scale + shift;
        }
      }
      return;
    }
    case OpKind::layer_norm: {
      const ValueSlot& in = slots[s.in[0]];
      const float* x = fptr(s.in[0]);
      float* y = fptr(s.out);
      const float* gm = n.param("weight").data<float>();
      const float* bt = n.param("bias").data<float>();
      const std::int64_t C = in.shape.back();
      const auto eps = static_cast<float>(n.attrs.eps);
      if (s.bases.empty()) {
        // Feature dim outermost: x is [C][R]; statistics for all R columns at once, row by row.
        const std::int64_t R = shape_numel(in.shape) / C;
        float* mean = ws(s);
        float* rstd = mean + R;
#pragma omp parallel num_threads(nt)
        {
          const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
          const std::int64_t r0 = R * tid / nth, r1 = R * (tid + 1) / nth;
          for (std::int64_t r = r0; r < r1; ++r) mean[r] = rstd[r] = 0.f;
          for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t r = r0; r < r1; ++r) mean[r] += x[c * R + r];
          for (std::int64_t r = r0; r < r1; ++r) mean[r] /= static_cast<float>(C);
          for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t r = r0; r < r1; ++r) {
              const float d = x[c * R + r] - mean[r];
              rstd[r] += d * d;
            }
          for (std::int64_t r = r0; r < r1; ++r) rstd[r] = 1.f / std::sqrt(rstd[r] / static_cast<float>(C) + eps);
          for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t r = r0; r < r1; ++r) y[c * R + r] = (x[c * R + r] - mean[r]) * rstd[r] * gm[c] + bt[c];
        }
      } else {
        const std::int64_t sc = in.st.back();
        const auto nb = static_cast<std::int64_t>(s.bases.size());
#pragma omp parallel for schedule(static) num_threads(nt)
        for (std::int64_t i = 0; i < nb; ++i) {
          const std::int64_t b = s.bases[i];
          double mu = 0, var = 0;
          for (std::int64_t c = 0; c < C; ++c) mu += x[b + c * sc];
          mu /= static_cast<double>(C);
          for (std::int64_t c = 0; c < C; ++c) var += (x[b + c * sc] - mu) * (x[b + c * sc] - mu);
          const double rs = 1.0 / std::sqrt(var / static_cast<double>(C) + eps);
          for (std::int64_t c = 0; c < C; ++c)
            y[b + c * sc] = static_cast<float>((x[b + c * sc] - mu) * rs) * gm[c] + bt[c];
        }
      }
      return;
    }
    case OpKind::softmax: {
      const ValueSlot& in = slots[s.in[0]];
      const auto r = static_cast<std::int64_t>(in.shape.size());
      const std::int64_t axis = n.attrs.axis < 0 ? n.attrs.axis + r : n.attrs.axis;
      const std::int64_t L = in.shape[axis], sa = in.st[axis];
      const float* x = fptr(s.in[0]);
      float* y = fptr(s.out);
      const auto nb = static_cast<std::int64_t>(s.bases.size());
#pragma omp parallel for schedule(static) num_threads(nt)
      for (std::int64_t i = 0; i < nb; ++i) {
        const std::int64_t b = s.bases[i];
        float mx = -std::numeric_limits<float>::infinity();
        for (std::int64_t j = 0; j < L; ++j) mx = std::max(mx, x[b + j * sa]);
        float sum = 0.f;
        for (std::int64_t j = 0; j < L; ++j) {
          const float e = fast_exp(x[b + j * sa] - mx);
          y[b + j * sa] = e;
          sum += e;
        }
        const float inv = 1.f / sum;
        for (std::int64_t j = 0; j < L; ++j) y[b + j * sa] *= inv;
      }
      return;
    }
    case OpKind::matmul: {
      const ValueSlot &A = slots[s.in[0]], &B = slots[s.in[1]], &O = slots[s.out];
      const auto r = A.shape.size();
      const std::int64_t M = A.shape[r - 2], K = A.shape[r - 1], Nn = B.shape[r - 1];
      const Shape& batch = s.aux_shape;
      const Strides &sa = s.aux, &sb = s.aux2, &so = s.aux3;
      const float* a = fptr(s.in[0]);
      const float* b = fptr(s.in[1]);
      float* y = fptr(s.out);
      const std::int64_t am = A.st[r - 2], ak = A.st[r - 1], bk = B.st[r - 2], bn = B.st[r - 1], om = O.st[r - 2],
                         on = O.st[r - 1];
      Odometer da(batch, sa), db(batch, sb), dout(batch, so);
      for (std::int64_t e = 0; e < shape_numel(batch); ++e, da.next(), db.next(), dout.next()) {
        const float* pa = a + da.off;
        const float* pb = b + db.off;
        float* py = y + dout.off;
#pragma omp parallel for schedule(static) num_threads(nt)
        for (std::int64_t i = 0; i < M; ++i) {
          for (std::int64_t j = 0; j < Nn; ++j) py[i * om + j * on] = 0.f;
          for (std::int64_t kk = 0; kk < K; ++kk) {
            const float av = pa[i * am + kk * ak];
            for (std::int64_t j = 0; j < Nn; ++j) py[i * om + j * on] += av * pb[kk * bk + j * bn];
          }
        }
      }
      return;
    }
    case OpKind::attention: {
      const ValueSlot& qs = slots[s.in[0]];
      const std::int64_t B = qs.shape[0], T = qs.shape[1], C = qs.shape[2], H = n.attrs.heads, d = C / H;
      const std::int64_t sB = qs.st[0], sT = qs.st[1], sC = qs.st[2];
      const float* q = fptr(s.in[0]);
      const float* k = fptr(s.in[1]);
      const float* v = fptr(s.in[2]);
      float* y = fptr(s.out);
      float* scratch = ws(s);
      const float scale = 1.f / std::sqrt(static_cast<float>(d));
      const int threads = std::min(nt, s.ws_threads);
      const bool avx512 = max_isa() == Isa::avx512;
      // Our layout makes every head of every sequence a strided [d x T] matrix (row stride B*T),
      // so both products are plain GEMMs: S = scale * Q^T K, then O = V P^T. oneDNN's sgemm runs
      // single-threaded inside our parallel loop over (sequence, head).
      SB_CHECK(sT == 1 && sB == T && sC == B * T, "node '{}' (attention): unexpected layout", n.name);
#pragma omp parallel for schedule(static) num_threads(threads)
      for (std::int64_t bh = 0; bh < B * H; ++bh) {
        const std::int64_t b = bh / H, h = bh % H;
        float* S = scratch + static_cast<std::int64_t>(omp_get_thread_num()) * 2 * T * T;
        const std::int64_t off = h * d * sC + b * sB;
        dnnl_sgemm('T', 'N', T, T, d, scale, q + off, sC, k + off, sC, 0.f, S, T);
        for (std::int64_t i = 0; i < T; ++i) {
          float* Si = S + i * T;
          if (avx512) {
            rt::softmax_row_avx512(Si, T);
            continue;
          }
          // omp simd: without it the float reductions stay scalar (no -ffast-math reassociation).
          float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
          for (std::int64_t j = 0; j < T; ++j) mx = std::max(mx, Si[j]);
          float sum = 0.f;
#pragma omp simd reduction(+ : sum)
          for (std::int64_t j = 0; j < T; ++j) {
            Si[j] = fast_exp(Si[j] - mx);
            sum += Si[j];
          }
          const float inv = 1.f / sum;
#pragma omp simd
          for (std::int64_t j = 0; j < T; ++j) Si[j] *= inv;
        }
        dnnl_sgemm('N', 'T', d, T, T, 1.f, v + off, sC, S, T, 0.f, y + off, sC);
      }
      return;
    }
    case OpKind::input:
    case OpKind::constant: return;
  }
}

}  // namespace sb
