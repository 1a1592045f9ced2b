// ONNX -> graph IR.
//
// One pass over the nodes (ONNX stores them topologically). A tensor name is bound either to a
// constant (initializers, and every node whose inputs are all constant: evaluated here, which
// folds torch's Shape / Gather / Unsqueeze / Slice / Concat chains since every shape is static) or
// to a lazy expression over other bindings, whose static shape is inferred on creation. Nothing
// is emitted into the IR until a graph output asks for it: materialising an expression first tries
// the patterns rooted at it (attention, LayerNorm, GELU, bias and scale fusion into the producing
// layer) and only then maps the node alone (Sigmoid, Tanh, Erf, Sqrt, Sub, Mul, Div, Pow and
// ReduceMean onto the IR's elementwise / reduction ops). Ops without an IR equivalent (Neg, Exp,
// Reciprocal) are fine inside a recognised pattern or on constants, and give a clear error naming
// the node only when they would have to run on their own; dead nodes are never emitted.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sparsebench/core/error.h"
#include "sparsebench/models/zoo.h"
#include "sparsebench/onnx/onnx.h"
#include "sparsebench/runtime/passes.h"
#include "tensor_proto.h"

namespace sb {
namespace {

using onnx_detail::Const;
using CP = std::shared_ptr<const Const>;
using NodeProto = onnx::NodeProto;

struct Expr;
using EP = std::shared_ptr<Expr>;

// What an ONNX tensor name is bound to: a constant or an expression.
struct Sym {
  CP c;
  EP e;
  bool defined() const { return c || e; }
  bool operator==(const Sym& o) const { return c == o.c && e == o.e; }
};

struct Expr {
  std::string op;              // ONNX op_type, or "input"
  std::vector<Sym> in;
  const NodeProto* node = nullptr;
  Shape shape;
  DType dtype = DType::f32;
  int value = -1;              // IR value once materialised
  int uses = 0;                // ONNX readers of this tensor (graph outputs count)
};

// ---- attributes ------------------------------------------------------------------------------

const onnx::AttributeProto* find_attr(const NodeProto& n, const char* name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}
std::int64_t attr_i(const NodeProto& n, const char* name, std::int64_t def) {
  const auto* a = find_attr(n, name);
  return a ? a->i() : def;
}
float attr_f(const NodeProto& n, const char* name, float def) {
  const auto* a = find_attr(n, name);
  return a ? a->f() : def;
}
std::string attr_s(const NodeProto& n, const char* name, const std::string& def) {
  const auto* a = find_attr(n, name);
  return a ? a->s() : def;
}
std::optional<std::vector<std::int64_t>> attr_ints(const NodeProto& n, const char* name) {
  const auto* a = find_attr(n, name);
  if (!a) return std::nullopt;
  return std::vector<std::int64_t>(a->ints().begin(), a->ints().end());
}

// ---- constant arithmetic ---------------------------------------------------------------------

std::optional<Shape> broadcast(const Shape& a, const Shape& b) {
  const std::size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (std::size_t k = 0; k < r; ++k) {
    const std::int64_t x = k < r - a.size() ? 1 : a[k - (r - a.size())];
    const std::int64_t y = k < r - b.size() ? 1 : b[k - (r - b.size())];
    if (x != y && x != 1 && y != 1) return std::nullopt;
    out[k] = x == 1 ? y : x;
  }
  return out;
}

// For each element of `out` (row-major), the flat index of the element of `in` it broadcasts from.
std::vector<std::int64_t> broadcast_index(const Shape& out, const Shape& in) {
  const std::size_t r = out.size(), off = r - in.size();
  Shape in_strides(r, 0);
  std::int64_t s = 1;
  for (std::size_t k = in.size(); k-- > 0;) {
    in_strides[k + off] = in[k] == 1 ? 0 : s;
    s *= in[k];
  }
  const std::int64_t n = shape_numel(out);
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  Shape ctr(r, 0);
  std::int64_t at = 0;
  for (std::int64_t e = 0; e < n; ++e) {
    idx[e] = at;
    for (std::size_t k = r; k-- > 0;) {
      ++ctr[k];
      at += in_strides[k];
      if (ctr[k] < out[k]) break;
      at -= in_strides[k] * ctr[k];
      ctr[k] = 0;
    }
  }
  return idx;
}

Const make_ints(const Shape& dims, std::vector<std::int64_t> v) {
  Const c;
  c.dims = dims;
  c.is_int = true;
  c.i = std::move(v);
  return c;
}
Const make_floats(const Shape& dims, std::vector<float> v) {
  Const c;
  c.dims = dims;
  c.f = std::move(v);
  return c;
}

bool all_equal(const Const& c, double v) {
  for (std::int64_t k = 0; k < c.numel(); ++k)
    if (c.get(k) != v) return false;
  return true;
}

std::int64_t norm_axis(std::int64_t a, std::int64_t rank) { return a < 0 ? a + rank : a; }

// Gathers elements of `c` in the order `src` gives, shaped `dims`.
Const take(const Const& c, const Shape& dims, const std::vector<std::int64_t>& src) {
  Const o;
  o.dims = dims;
  o.is_int = c.is_int;
  if (c.is_int) { o.i.resize(src.size()); for (std::size_t k = 0; k < src.size(); ++k) o.i[k] = c.i[src[k]]; }
  else { o.f.resize(src.size()); for (std::size_t k = 0; k < src.size(); ++k) o.f[k] = c.f[src[k]]; }
  return o;
}

std::vector<std::int64_t> strides_of(const Shape& s) {
  std::vector<std::int64_t> st(s.size(), 1);
  for (std::size_t k = s.size(); k-- > 1;) st[k - 1] = st[k] * s[k];
  return st;
}

// Source indices of a transpose by `perm`.
std::vector<std::int64_t> transpose_index(const Shape& in, const std::vector<std::int64_t>& perm, Shape& out) {
  out.resize(in.size());
  for (std::size_t k = 0; k < in.size(); ++k) out[k] = in[perm[k]];
  const auto st = strides_of(in);
  std::vector<std::int64_t> src;
  src.reserve(static_cast<std::size_t>(shape_numel(out)));
  Shape ctr(out.size(), 0);
  for (std::int64_t e = 0; e < shape_numel(out); ++e) {
    std::int64_t at = 0;
    for (std::size_t k = 0; k < out.size(); ++k) at += ctr[k] * st[perm[k]];
    src.push_back(at);
    for (std::size_t k = out.size(); k-- > 0;) {
      if (++ctr[k] < out[k]) break;
      ctr[k] = 0;
    }
  }
  return src;
}

bool close(double a, double b, double rel = 1e-4) { return std::fabs(a - b) <= rel * std::max(std::fabs(a), std::fabs(b)); }

// ---- the importer -------------------------------------------------------------------------------

class Importer {
 public:
  Importer(std::string label, const OnnxImportOptions& o) : label_(std::move(label)), opt_(o) {}
  Graph run(const onnx::ModelProto& m);

 private:
  std::string where(const NodeProto& n) const {
    return fmt::format("{}: node '{}' (op_type {}, opset {})", label_, n.name().empty() ? n.output(0) : n.name(),
                       n.op_type(), opset_);
  }
  [[noreturn]] void node_fail(const NodeProto& n, const std::string& msg) const { fail(where(n) + ": " + msg); }
  std::string unique(std::string base) {
    if (base.empty()) base = "node";
    std::string s = base;
    for (int k = 1; names_.count(s); ++k) s = fmt::format("{}_{}", base, k);
    names_.insert(s);
    return s;
  }
  std::string name_of(const Expr& e) const {
    if (!e.node) return "value";
    return e.node->name().empty() ? e.node->output(0) : e.node->name();
  }
  Shape shape_of(const Sym& s) const { return s.c ? s.c->dims : s.e->shape; }
  // `a` normalised against `rank` (a negative axis counts from the back); throws when out of range.
  void check_perm(const NodeProto& n, const std::vector<std::int64_t>& perm, std::int64_t rank) const {
    std::vector<std::int64_t> p = perm;
    std::sort(p.begin(), p.end());
    for (std::int64_t k = 0; k < static_cast<std::int64_t>(p.size()); ++k)
      if (p[k] != k || static_cast<std::int64_t>(p.size()) != rank)
        node_fail(n, fmt::format("perm [{}] is not a permutation of {} dims", fmt::join(perm, ", "), rank));
  }
  std::int64_t axis(const NodeProto& n, std::int64_t a, std::int64_t rank) const {
    const std::int64_t v = a < 0 ? a + rank : a;
    if (v < 0 || v >= std::max<std::int64_t>(rank, 1)) node_fail(n, fmt::format("axis {} is out of range for rank {}", a, rank));
    return v;
  }
  const Const& need_const(const NodeProto& n, const Sym& s, const char* what) const {
    if (!s.c) node_fail(n, fmt::format("{} must be a constant (an initializer or computable at import), it is computed at run time", what));
    return *s.c;
  }
  Expr* expr_of(const Sym& s, const char* op) const { return s.e && s.e->op == op ? s.e.get() : nullptr; }

  void bind_inputs(const onnx::GraphProto& gp, std::set<std::string>& inits);
  void visit(const NodeProto& n);
  bool fold(const NodeProto& n, const std::vector<Sym>& in);
  Const eval(const NodeProto& n, const std::vector<Sym>& in);
  EP make_expr(const NodeProto& n, const std::vector<Sym>& in);

  int emit(Node node);
  int mat(const Sym& s, const std::string& hint = "const");
  int lower(Expr& e);
  int add_const(Expr& e, const Sym& x, const Const& c);
  std::optional<int> fuse_into_layer(Expr& e, const Sym& x, const Const& c, bool bias);
  std::optional<int> try_attention(Expr& e);
  bool ln_core(const Sym& s, Sym& x, double& eps) const;
  std::optional<int> try_layer_norm(Expr& e);
  std::optional<int> try_gelu(Expr& e);
  Sym peel(Sym s) const;

  std::string label_;
  OnnxImportOptions opt_;
  std::int64_t opset_ = 0;
  Graph g_;
  std::map<std::string, Sym> syms_;
  std::map<std::string, int> uses_;
  std::set<std::string> names_;
};

void Importer::bind_inputs(const onnx::GraphProto& gp, std::set<std::string>& inits) {
  for (const auto& t : gp.initializer()) {
    SB_CHECK(!t.name().empty(), "{}: an initializer has no name", label_);
    syms_[t.name()].c = std::make_shared<Const>(onnx_detail::from_tensor_proto(t, fmt::format("{}: initializer '{}'", label_, t.name())));
    inits.insert(t.name());
  }
  for (const auto& s : gp.sparse_initializer()) {
    const std::string nm = s.values().name();
    SB_CHECK(!nm.empty(), "{}: a sparse_initializer has no name (values.name)", label_);
    syms_[nm].c = std::make_shared<Const>(onnx_detail::from_sparse_tensor_proto(s, fmt::format("{}: sparse_initializer '{}'", label_, nm)));
    inits.insert(nm);
  }
  for (const auto& vi : gp.input()) {
    if (inits.count(vi.name())) continue;
    const std::string what = fmt::format("{}: graph input '{}'", label_, vi.name());
    SB_CHECK(vi.type().has_tensor_type(), "{}: not a tensor", what);
    const auto& tt = vi.type().tensor_type();
    using TP = onnx::TensorProto;
    DType dt;
    if (tt.elem_type() == TP::FLOAT) dt = DType::f32;
    else if (tt.elem_type() == TP::INT64 || tt.elem_type() == TP::INT32) dt = DType::i32;   // token ids
    else fail(fmt::format("{}: element type {} is not supported (expected FLOAT, or INT64 / INT32 token ids)", what, tt.elem_type()));
    SB_CHECK(tt.has_shape() && tt.shape().dim_size() >= 1, "{}: needs a shape with a batch dimension", what);
    Shape shape;
    for (int d = 0; d < tt.shape().dim_size(); ++d) {
      const auto& dim = tt.shape().dim(d);
      if (dim.has_dim_value() && dim.dim_value() > 0) {
        shape.push_back(dim.dim_value());
        if (d == 0 && opt_.batch > 0) shape[0] = opt_.batch;
      } else if (d == 0) {
        shape.push_back(opt_.batch > 0 ? opt_.batch : 1);
      } else {
        SB_CHECK(opt_.seq_len > 0, "{}: dim {} is symbolic ('{}'); give its size (--seq-len)", what, d, dim.dim_param());
        shape.push_back(opt_.seq_len);
      }
    }
    auto e = std::make_shared<Expr>();
    e->op = "input";
    e->shape = shape;
    e->dtype = dt;
    names_.insert(vi.name());
    e->value = g_.add_input(vi.name(), shape, dt);
    syms_[vi.name()].e = e;
  }
}

Graph Importer::run(const onnx::ModelProto& m) {
  for (const auto& o : m.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") opset_ = o.version();
  if (opset_ == 0 && m.opset_import_size() == 0) fail(fmt::format("{}: no opset_import (not an ONNX model, or a truncated file)", label_));
  SB_CHECK(opset_ >= 9 && opset_ <= 18, "{}: default-domain opset {} is not supported (expected 9 to 18; torch.onnx exports 11 to 17)",
           label_, opset_);
  SB_CHECK(m.has_graph(), "{}: the model has no graph (truncated file?)", label_);
  const auto& gp = m.graph();
  SB_CHECK(gp.output_size() > 0, "{}: the graph has no outputs (truncated file?)", label_);

  for (const auto& n : gp.node())
    for (const auto& i : n.input()) ++uses_[i];
  for (const auto& o : gp.output()) ++uses_[o.name()];

  std::set<std::string> inits;
  bind_inputs(gp, inits);
  SB_CHECK(!g_.inputs().empty(), "{}: the graph has no inputs besides initializers", label_);
  for (const auto& n : gp.node()) visit(n);

  for (const auto& o : gp.output()) {
    auto it = syms_.find(o.name());
    SB_CHECK(it != syms_.end(), "{}: graph output '{}' is produced by no node (truncated file?)", label_, o.name());
    SB_CHECK(it->second.e, "{}: graph output '{}' is a constant; expected a value computed from the inputs", label_, o.name());
    SB_CHECK(it->second.e->op != "input", "{}: graph output '{}' is a graph input", label_, o.name());
    g_.mark_output(mat(it->second));
  }

  // Masks and patterns written by export_onnx: restore them so the runtime picks sparse kernels.
  for (const auto& p : m.metadata_props()) {
    const std::string key = p.key();
    if (!key.starts_with("sparsebench.mask.")) continue;
    const int idx = g_.find_node(key.substr(17));
    if (idx < 0) continue;
    Node& nd = g_.nodes()[idx];
    if (!nd.has_weight()) continue;
    const Tensor& w = nd.param("weight");
    Tensor mask = Tensor::empty(w.shape(), DType::u8);
    std::int64_t zeros = 0;
    for (std::int64_t k = 0; k < w.numel(); ++k) {
      const bool keep = w.data<float>()[k] != 0.0f;
      mask.data<std::uint8_t>()[k] = keep;
      zeros += !keep;
    }
    nd.mask = mask;
    nd.pattern = Pattern::parse(p.value());
    nd.sparsity = w.numel() ? static_cast<double>(zeros) / static_cast<double>(w.numel()) : 0.0;
  }
  if (opt_.fold_batch_norm) fold_batch_norm(g_);
  return std::move(g_);
}

void Importer::visit(const NodeProto& n) {
  SB_CHECK(n.output_size() >= 1, "{}: has no outputs", where(n));
  const std::string& dom = n.domain();
  const bool ms = dom == "com.microsoft";
  if (!(dom.empty() || dom == "ai.onnx" || (ms && n.op_type() == "Gelu")))
    node_fail(n, fmt::format("operator domain '{}' is not supported", dom));
  std::vector<Sym> in;
  for (const auto& name : n.input()) {
    if (name.empty()) {
      in.push_back({});
      continue;
    }
    auto it = syms_.find(name);
    if (it == syms_.end())
      node_fail(n, fmt::format("input '{}' is produced by no earlier node nor initializer (nodes out of order, or a truncated file?)", name));
    in.push_back(it->second);
  }
  const std::string& op = n.op_type();
  // Pure renames.
  if (op == "Identity" || op == "Dropout") {
    SB_CHECK(!in.empty() && in[0].defined(), "{}: needs an input", where(n));
    syms_[n.output(0)] = in[0];
    return;
  }
  if (fold(n, in)) return;
  EP e = make_expr(n, in);
  e->node = &n;
  e->uses = uses_[n.output(0)];
  syms_[n.output(0)].e = e;
}

bool Importer::fold(const NodeProto& n, const std::vector<Sym>& in) {
  static const std::set<std::string> kFoldable = {
      "Constant", "Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Reshape",
      "Transpose", "Flatten", "Expand", "ConstantOfShape", "Range", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt",
      "Erf", "Neg", "Relu", "Sigmoid", "Tanh", "Exp", "Reciprocal", "Floor", "Ceil", "Abs", "Equal", "Less",
      "Greater", "Where", "Max", "Min", "Not", "Clip"};
  const std::string& op = n.op_type();
  if (!kFoldable.count(op)) return false;
  bool all_const = true;
  for (std::size_t k = 0; k < in.size(); ++k)
    if (in[k].e && !((op == "Shape" || op == "Size") && k == 0)) all_const = false;
  if (!all_const) return false;
  syms_[n.output(0)].c = std::make_shared<Const>(eval(n, in));
  return true;
}

Const Importer::eval(const NodeProto& n, const std::vector<Sym>& in) {
  const std::string& op = n.op_type();
  auto C = [&](std::size_t k) -> const Const& {
    if (k >= in.size() || !in[k].c) node_fail(n, fmt::format("missing input {}", k));
    return *in[k].c;
  };
  auto has = [&](std::size_t k) { return k < in.size() && in[k].defined(); };
  if (op == "Constant") {
    if (const auto* a = find_attr(n, "value")) return onnx_detail::from_tensor_proto(a->t(), where(n) + ": value");
    if (const auto* a = find_attr(n, "sparse_value")) return onnx_detail::from_sparse_tensor_proto(a->sparse_tensor(), where(n) + ": sparse_value");
    if (const auto* a = find_attr(n, "value_float")) return make_floats({}, {a->f()});
    if (const auto* a = find_attr(n, "value_int")) return make_ints({}, {a->i()});
    if (const auto* a = find_attr(n, "value_floats")) return make_floats({a->floats_size()}, {a->floats().begin(), a->floats().end()});
    if (const auto* a = find_attr(n, "value_ints")) return make_ints({a->ints_size()}, {a->ints().begin(), a->ints().end()});
    node_fail(n, "no value attribute (expected value, value_float(s) or value_int(s))");
  }
  if (op == "Shape" || op == "Size") {
    const Shape s = shape_of(in.at(0));
    if (op == "Size") return make_ints({}, {shape_numel(s)});
    const auto r = static_cast<std::int64_t>(s.size());
    std::int64_t b = std::clamp(norm_axis(attr_i(n, "start", 0), r), std::int64_t{0}, r);
    std::int64_t e = std::clamp(norm_axis(attr_i(n, "end", r), r), std::int64_t{0}, r);
    std::vector<std::int64_t> v(s.begin() + b, s.begin() + std::max(b, e));
    return make_ints({static_cast<std::int64_t>(v.size())}, v);
  }
  if (op == "ConstantOfShape") {
    const auto dims = C(0).ints();
    Const c = make_floats(dims, {});
    if (const auto* a = find_attr(n, "value")) {
      Const v = onnx_detail::from_tensor_proto(a->t(), where(n) + ": value");
      SB_CHECK(v.numel() == 1, "{}: value must have one element", where(n));
      c.is_int = v.is_int;
      if (v.is_int) c.i.assign(shape_numel(dims), v.i[0]);
      else c.f.assign(shape_numel(dims), v.f[0]);
    } else {
      c.f.assign(shape_numel(dims), 0.0f);
    }
    return c;
  }
  if (op == "Cast") {
    using TP = onnx::TensorProto;
    const int to = static_cast<int>(attr_i(n, "to", TP::FLOAT));
    const Const& x = C(0);
    const bool to_float = to == TP::FLOAT || to == TP::DOUBLE || to == TP::FLOAT16;
    Const c;
    c.dims = x.dims;
    c.is_int = !to_float;
    for (std::int64_t k = 0; k < x.numel(); ++k) {
      if (to_float) c.f.push_back(static_cast<float>(x.get(k)));
      else if (to == TP::BOOL) c.i.push_back(x.get(k) != 0);
      else c.i.push_back(static_cast<std::int64_t>(x.get(k)));
    }
    return c;
  }
  if (op == "Gather") {
    const Const& d = C(0);
    const Const& idx = C(1);
    const auto r = static_cast<std::int64_t>(d.dims.size());
    SB_CHECK(r >= 1, "{}: data must have rank >= 1", where(n));
    const std::int64_t axis = norm_axis(attr_i(n, "axis", 0), r);
    SB_CHECK(axis >= 0 && axis < r, "{}: axis out of range", where(n));
    Shape out(d.dims.begin(), d.dims.begin() + axis);
    out.insert(out.end(), idx.dims.begin(), idx.dims.end());
    out.insert(out.end(), d.dims.begin() + axis + 1, d.dims.end());
    std::int64_t outer = 1, inner = 1;
    for (std::int64_t k = 0; k < axis; ++k) outer *= d.dims[k];
    for (std::int64_t k = axis + 1; k < r; ++k) inner *= d.dims[k];
    const auto ids = idx.ints();
    std::vector<std::int64_t> src;
    for (std::int64_t o = 0; o < outer; ++o)
      for (auto id : ids) {
        if (id < 0) id += d.dims[axis];
        SB_CHECK(id >= 0 && id < d.dims[axis], "{}: index {} out of range for dim {}", where(n), id, d.dims[axis]);
        for (std::int64_t i = 0; i < inner; ++i) src.push_back((o * d.dims[axis] + id) * inner + i);
      }
    return take(d, out, src);
  }
  if (op == "Unsqueeze" || op == "Squeeze") {
    const Const& x = C(0);
    std::vector<std::int64_t> axes;
    if (auto a = attr_ints(n, "axes")) axes = *a;
    else if (has(1)) axes = C(1).ints();
    Shape s = x.dims;
    if (op == "Unsqueeze") {
      const auto r = static_cast<std::int64_t>(s.size() + axes.size());
      for (auto& a : axes) a = axis(n, a, r);
      std::sort(axes.begin(), axes.end());
      for (auto a : axes) {
        SB_CHECK(a >= 0 && a <= static_cast<std::int64_t>(s.size()), "{}: axis out of range", where(n));
        s.insert(s.begin() + a, 1);
      }
    } else {
      Shape o;
      const auto r = static_cast<std::int64_t>(s.size());
      for (auto& a : axes) a = norm_axis(a, r);
      for (std::int64_t k = 0; k < r; ++k) {
        const bool drop = axes.empty() ? s[k] == 1 : std::find(axes.begin(), axes.end(), k) != axes.end();
        if (!drop) o.push_back(s[k]);
      }
      s = o;
    }
    Const c = x;
    c.dims = s;
    return c;
  }
  if (op == "Concat") {
    std::vector<const Const*> xs;
    for (std::size_t k = 0; k < in.size(); ++k)
      if (has(k)) xs.push_back(&C(k));
    SB_CHECK(!xs.empty(), "{}: no inputs", where(n));
    const auto r = static_cast<std::int64_t>(xs[0]->dims.size());
    const std::int64_t axis = this->axis(n, attr_i(n, "axis", 0), r);
    Shape out = xs[0]->dims;
    out[axis] = 0;
    bool is_int = true;
    for (const auto* x : xs) {
      SB_CHECK(static_cast<std::int64_t>(x->dims.size()) == r, "{}: ranks differ", where(n));
      out[axis] += x->dims[axis];
      is_int = is_int && x->is_int;
    }
    std::int64_t outer = 1;
    for (std::int64_t k = 0; k < axis; ++k) outer *= out[k];
    Const c;
    c.dims = out;
    c.is_int = is_int;
    for (std::int64_t o = 0; o < outer; ++o)
      for (const auto* x : xs) {
        const std::int64_t chunk = x->numel() / std::max<std::int64_t>(outer, 1);
        for (std::int64_t k = 0; k < chunk; ++k) {
          const double v = x->get(o * chunk + k);
          if (is_int) c.i.push_back(static_cast<std::int64_t>(v));
          else c.f.push_back(static_cast<float>(v));
        }
      }
    return c;
  }
  if (op == "Slice") {
    const Const& x = C(0);
    const auto r = static_cast<std::int64_t>(x.dims.size());
    std::vector<std::int64_t> starts, ends, axes, steps;
    if (opset_ < 10) {
      starts = attr_ints(n, "starts").value_or(starts);
      ends = attr_ints(n, "ends").value_or(ends);
      axes = attr_ints(n, "axes").value_or(axes);
    } else {
      starts = C(1).ints();
      ends = C(2).ints();
      if (has(3)) axes = C(3).ints();
      if (has(4)) steps = C(4).ints();
    }
    if (axes.empty())
      for (std::size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<std::int64_t>(k));
    if (steps.empty()) steps.assign(starts.size(), 1);
    SB_CHECK(ends.size() == starts.size() && axes.size() == starts.size() && steps.size() == starts.size(),
             "{}: starts, ends, axes and steps differ in length", where(n));
    std::vector<std::int64_t> b(r, 0), st(r, 1);
    Shape out = x.dims;
    for (std::size_t k = 0; k < axes.size(); ++k) {
      const std::int64_t a = axis(n, axes[k], r), dim = x.dims[a];
      SB_CHECK(steps[k] != 0, "{}: step 0", where(n));
      std::int64_t s0 = starts[k] < 0 ? starts[k] + dim : starts[k];
      std::int64_t e0 = ends[k] < 0 ? ends[k] + dim : ends[k];
      if (steps[k] > 0) {
        s0 = std::clamp<std::int64_t>(s0, 0, dim);
        e0 = std::clamp<std::int64_t>(e0, 0, dim);
        out[a] = e0 > s0 ? (e0 - s0 + steps[k] - 1) / steps[k] : 0;
      } else {
        s0 = std::clamp<std::int64_t>(s0, 0, dim - 1);
        e0 = std::clamp<std::int64_t>(e0, -1, dim - 1);
        out[a] = s0 > e0 ? (s0 - e0 - steps[k] - 1) / -steps[k] : 0;
      }
      b[a] = s0;
      st[a] = steps[k];
    }
    const auto in_st = strides_of(x.dims);
    std::vector<std::int64_t> src;
    Shape ctr(r, 0);
    for (std::int64_t e = 0; e < shape_numel(out); ++e) {
      std::int64_t at = 0;
      for (std::int64_t k = 0; k < r; ++k) at += (b[k] + ctr[k] * st[k]) * in_st[k];
      src.push_back(at);
      for (std::int64_t k = r; k-- > 0;) {
        if (++ctr[k] < out[k]) break;
        ctr[k] = 0;
      }
    }
    return take(x, out, src);
  }
  if (op == "Reshape" || op == "Flatten") {
    const Const& x = C(0);
    Shape target;
    if (op == "Flatten") {
      const auto r = static_cast<std::int64_t>(x.dims.size());
      const std::int64_t axis = std::clamp<std::int64_t>(norm_axis(attr_i(n, "axis", 1), r), 0, r);
      std::int64_t a = 1;
      for (std::int64_t k = 0; k < axis; ++k) a *= x.dims[k];
      target = {a, x.numel() / std::max<std::int64_t>(a, 1)};
    } else {
      target = C(1).ints();
      std::int64_t known = 1, neg = -1;
      for (std::size_t k = 0; k < target.size(); ++k) {
        if (target[k] == 0 && !attr_i(n, "allowzero", 0)) target[k] = x.dims.at(k);
        if (target[k] == -1) neg = static_cast<std::int64_t>(k);
        else known *= target[k];
      }
      if (neg >= 0) target[neg] = known ? x.numel() / known : 0;
    }
    SB_CHECK(shape_numel(target) == x.numel(), "{}: cannot reshape {} to {}", where(n), shape_to_string(x.dims),
             shape_to_string(target));
    Const c = x;
    c.dims = target;
    return c;
  }
  if (op == "Transpose") {
    const Const& x = C(0);
    std::vector<std::int64_t> perm = attr_ints(n, "perm").value_or(std::vector<std::int64_t>{});
    if (perm.empty())
      for (std::size_t k = x.dims.size(); k-- > 0;) perm.push_back(static_cast<std::int64_t>(k));
    check_perm(n, perm, static_cast<std::int64_t>(x.dims.size()));
    Shape out;
    const auto src = transpose_index(x.dims, perm, out);
    return take(x, out, src);
  }
  if (op == "Expand") {
    const Const& x = C(0);
    const auto s = broadcast(x.dims, C(1).ints());
    SB_CHECK(s.has_value(), "{}: cannot expand {}", where(n), shape_to_string(x.dims));
    return take(x, *s, broadcast_index(*s, x.dims));
  }
  if (op == "Range") {
    const double s = C(0).get(0), l = C(1).get(0), d = C(2).get(0);
    SB_CHECK(d != 0, "{}: delta 0", where(n));
    const auto cnt = static_cast<std::int64_t>(std::max(0.0, std::ceil((l - s) / d)));
    Const c;
    c.dims = {cnt};
    c.is_int = C(0).is_int;
    for (std::int64_t k = 0; k < cnt; ++k) {
      if (c.is_int) c.i.push_back(static_cast<std::int64_t>(s + k * d));
      else c.f.push_back(static_cast<float>(s + k * d));
    }
    return c;
  }
  if (op == "Clip") {
    const Const& x = C(0);
    double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
    if (opset_ < 11) {
      lo = attr_f(n, "min", -std::numeric_limits<float>::infinity());
      hi = attr_f(n, "max", std::numeric_limits<float>::infinity());
    } else {
      if (has(1)) lo = C(1).get(0);
      if (has(2)) hi = C(2).get(0);
    }
    Const c = x;
    for (std::int64_t k = 0; k < c.numel(); ++k) {
      if (c.is_int) c.i[k] = static_cast<std::int64_t>(std::clamp(static_cast<double>(c.i[k]), lo, hi));
      else c.f[k] = static_cast<float>(std::clamp(static_cast<double>(c.f[k]), lo, hi));
    }
    return c;
  }
  // Elementwise, numpy broadcasting.
  static const std::map<std::string, std::function<double(double)>> kUnary = {
      {"Sqrt", [](double a) { return std::sqrt(a); }}, {"Erf", [](double a) { return std::erf(a); }},
      {"Neg", [](double a) { return -a; }}, {"Relu", [](double a) { return a > 0 ? a : 0; }},
      {"Sigmoid", [](double a) { return 1 / (1 + std::exp(-a)); }}, {"Tanh", [](double a) { return std::tanh(a); }},
      {"Exp", [](double a) { return std::exp(a); }}, {"Reciprocal", [](double a) { return 1 / a; }},
      {"Floor", [](double a) { return std::floor(a); }}, {"Ceil", [](double a) { return std::ceil(a); }},
      {"Abs", [](double a) { return std::fabs(a); }}, {"Not", [](double a) { return a == 0 ? 1.0 : 0.0; }}};
  if (auto it = kUnary.find(op); it != kUnary.end()) {
    const Const& x = C(0);
    Const c;
    c.dims = x.dims;
    c.is_int = x.is_int && op != "Sqrt" && op != "Erf" && op != "Sigmoid" && op != "Tanh" && op != "Exp" && op != "Reciprocal";
    for (std::int64_t k = 0; k < x.numel(); ++k) {
      const double v = it->second(x.get(k));
      if (c.is_int) c.i.push_back(static_cast<std::int64_t>(v));
      else c.f.push_back(static_cast<float>(v));
    }
    return c;
  }
  std::vector<const Const*> xs;
  for (std::size_t k = 0; k < in.size(); ++k) xs.push_back(&C(k));
  Shape out = xs[0]->dims;
  for (const auto* x : xs) {
    auto s = broadcast(out, x->dims);
    SB_CHECK(s.has_value(), "{}: shapes do not broadcast", where(n));
    out = *s;
  }
  std::vector<std::vector<std::int64_t>> idx;
  for (const auto* x : xs) idx.push_back(broadcast_index(out, x->dims));
  const bool cmp = op == "Equal" || op == "Less" || op == "Greater";
  bool is_int = cmp;
  if (!cmp) {
    is_int = true;
    for (std::size_t k = (op == "Where" ? 1 : 0); k < xs.size(); ++k) is_int = is_int && xs[k]->is_int;
  }
  Const c;
  c.dims = out;
  c.is_int = is_int;
  for (std::int64_t e = 0; e < shape_numel(out); ++e) {
    const double a = xs[0]->get(idx[0][e]), b = xs.size() > 1 ? xs[1]->get(idx[1][e]) : 0;
    double v = 0;
    if (op == "Add") v = a + b;
    else if (op == "Sub") v = a - b;
    else if (op == "Mul") v = a * b;
    else if (op == "Div") v = is_int ? static_cast<double>(static_cast<std::int64_t>(a) / static_cast<std::int64_t>(b)) : a / b;
    else if (op == "Pow") v = std::pow(a, b);
    else if (op == "Equal") v = a == b;
    else if (op == "Less") v = a < b;
    else if (op == "Greater") v = a > b;
    else if (op == "Max") v = std::max(a, b);
    else if (op == "Min") v = std::min(a, b);
    else if (op == "Where") v = a != 0 ? b : xs.at(2)->get(idx[2][e]);
    if (is_int) c.i.push_back(static_cast<std::int64_t>(v));
    else c.f.push_back(static_cast<float>(v));
  }
  return c;
}

// A lazy expression with its static output shape.
EP Importer::make_expr(const NodeProto& n, const std::vector<Sym>& in) {
  auto e = std::make_shared<Expr>();
  e->op = n.op_type();
  e->in = in;
  const std::string& op = e->op;
  auto need = [&](std::size_t k) {
    if (k >= in.size() || !in[k].defined()) node_fail(n, fmt::format("needs input {}", k));
  };
  need(0);
  const Shape x = shape_of(in[0]);
  const auto r = static_cast<std::int64_t>(x.size());
  auto spatial = [&](bool conv, std::int64_t out_ch) {
    SB_CHECK(r == 4, "{}: expected a 4-D NCHW input, got {}", where(n), shape_to_string(x));
    std::vector<std::int64_t> k = attr_ints(n, "kernel_shape").value_or(std::vector<std::int64_t>{});
    if (conv && k.empty()) k = {shape_of(in[1])[2], shape_of(in[1])[3]};
    const auto s = attr_ints(n, "strides").value_or(std::vector<std::int64_t>{1, 1});
    const auto p = attr_ints(n, "pads").value_or(std::vector<std::int64_t>{0, 0, 0, 0});
    const auto d = attr_ints(n, "dilations").value_or(std::vector<std::int64_t>{1, 1});
    SB_CHECK(k.size() == 2 && s.size() == 2 && p.size() == 4 && d.size() == 2,
             "{}: only 2-D windows are supported (kernel_shape, strides, dilations of 2, pads of 4)", where(n));
    const std::string ap = attr_s(n, "auto_pad", "NOTSET");
    SB_CHECK(ap == "NOTSET" || ap == "VALID", "{}: auto_pad {} is not supported (expected explicit pads)", where(n), ap);
    SB_CHECK(p[0] == p[2] && p[1] == p[3], "{}: asymmetric pads [{}] are not supported", where(n), fmt::join(p, ", "));
    SB_CHECK(attr_i(n, "ceil_mode", 0) == 0, "{}: ceil_mode 1 is not supported", where(n));
    for (int a = 0; a < 2; ++a)
      SB_CHECK(k[a] > 0 && s[a] > 0 && d[a] > 0 && p[a] >= 0 && x[2 + a] + 2 * p[a] >= d[a] * (k[a] - 1) + 1,
               "{}: window {}x{} stride {}x{} pads {}x{} dilation {}x{} does not fit input {}", where(n), k[0], k[1], s[0], s[1],
               p[0], p[1], d[0], d[1], shape_to_string(x));
    Shape o = {x[0], out_ch, 0, 0};
    for (int a = 0; a < 2; ++a) o[2 + a] = (x[2 + a] + 2 * p[a] - d[a] * (k[a] - 1) - 1) / s[a] + 1;
    return o;
  };
  if (op == "Conv") {
    need(1);
    e->shape = spatial(true, shape_of(in[1]).at(0));
  } else if (op == "MaxPool" || op == "AveragePool") {
    SB_CHECK(n.output_size() == 1 || n.output(1).empty(), "{}: the Indices output is not supported", where(n));
    e->shape = spatial(false, r == 4 ? x[1] : 0);
  } else if (op == "GlobalAveragePool") {
    SB_CHECK(r == 4, "{}: expected a 4-D input", where(n));
    e->shape = {x[0], x[1], 1, 1};
  } else if (op == "Gemm") {
    need(1);
    const Shape b = shape_of(in[1]);
    SB_CHECK(r == 2 && b.size() == 2, "{}: expected 2-D A and B", where(n));
    SB_CHECK(attr_i(n, "transA", 0) == 0, "{}: transA = 1 is not supported", where(n));
    e->shape = {x[0], attr_i(n, "transB", 0) ? b[0] : b[1]};
  } else if (op == "MatMul") {
    need(1);
    const Shape b = shape_of(in[1]);
    SB_CHECK(r >= 2 && b.size() >= 1, "{}: expected rank >= 2 operands", where(n));
    if (b.size() == 1) {
      node_fail(n, "a 1-D second operand is not supported");
    }
    SB_CHECK(x.back() == b[b.size() - 2], "{}: inner dimensions differ ({} x {})", where(n), shape_to_string(x), shape_to_string(b));
    Shape ba(x.begin(), x.end() - 2), bb(b.begin(), b.end() - 2);
    auto s = broadcast(ba, bb);
    SB_CHECK(s.has_value(), "{}: batch dims do not broadcast", where(n));
    e->shape = *s;
    e->shape.push_back(x[r - 2]);
    e->shape.push_back(b.back());
  } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Pow") {
    need(1);
    auto s = broadcast(x, shape_of(in[1]));
    SB_CHECK(s.has_value(), "{}: shapes {} and {} do not broadcast", where(n), shape_to_string(x), shape_to_string(shape_of(in[1])));
    e->shape = *s;
  } else if (op == "Relu" || op == "Clip" || op == "Sigmoid" || op == "Tanh" || op == "Erf" || op == "Sqrt" ||
             op == "Gelu" || op == "BatchNormalization" || op == "LayerNormalization" || op == "Softmax" || op == "Cast" ||
             op == "Neg" || op == "Reciprocal" || op == "Exp") {
    e->shape = x;
    if (op == "Cast") e->dtype = in[0].e ? in[0].e->dtype : DType::f32;
  } else if (op == "ReduceMean") {
    std::vector<std::int64_t> axes = attr_ints(n, "axes").value_or(std::vector<std::int64_t>{});
    if (axes.empty() && in.size() > 1 && in[1].c) axes = in[1].c->ints();
    const bool keep = attr_i(n, "keepdims", 1);
    const bool noop = axes.empty() && attr_i(n, "noop_with_empty_axes", 0);
    Shape o;
    for (std::int64_t k = 0; k < r && noop; ++k) o.push_back(x[k]);
    for (std::int64_t k = 0; k < r && !noop; ++k) {
      const bool red = axes.empty() || std::any_of(axes.begin(), axes.end(), [&](auto a) { return norm_axis(a, r) == k; });
      if (!red) o.push_back(x[k]);
      else if (keep) o.push_back(1);
    }
    e->shape = o;
  } else if (op == "Flatten") {
    const std::int64_t ax = attr_i(n, "axis", 1) == r ? r : axis(n, attr_i(n, "axis", 1), r);
    std::int64_t a = 1;
    for (std::int64_t k = 0; k < ax; ++k) a *= x[k];
    e->shape = {a, shape_numel(x) / std::max<std::int64_t>(a, 1)};
  } else if (op == "Reshape") {
    need(1);
    Shape t = need_const(n, in[1], "the target shape (input 1)").ints();
    std::int64_t known = 1, neg = -1;
    for (std::size_t k = 0; k < t.size(); ++k) {
      if (t[k] == 0 && !attr_i(n, "allowzero", 0)) {
        SB_CHECK(k < x.size(), "{}: 0 at dim {} copies a dim the input lacks", where(n), k);
        t[k] = x[k];
      }
      if (t[k] == -1) neg = static_cast<std::int64_t>(k);
      else known *= t[k];
    }
    if (neg >= 0) t[neg] = known ? shape_numel(x) / known : 0;
    SB_CHECK(shape_numel(t) == shape_numel(x), "{}: cannot reshape {} to {}", where(n), shape_to_string(x), shape_to_string(t));
    e->shape = t;
  } else if (op == "Unsqueeze" || op == "Squeeze") {
    std::vector<std::int64_t> axes = attr_ints(n, "axes").value_or(std::vector<std::int64_t>{});
    if (axes.empty() && in.size() > 1 && in[1].defined()) axes = need_const(n, in[1], "axes").ints();
    Shape s = x;
    if (op == "Unsqueeze") {
      for (auto& a : axes) a = axis(n, a, r + static_cast<std::int64_t>(axes.size()));
      std::sort(axes.begin(), axes.end());
      for (auto a : axes) s.insert(s.begin() + a, 1);
    } else {
      Shape o;
      for (auto& a : axes) a = norm_axis(a, r);
      for (std::int64_t k = 0; k < r; ++k)
        if (!(axes.empty() ? s[k] == 1 : std::find(axes.begin(), axes.end(), k) != axes.end())) o.push_back(s[k]);
      s = o;
    }
    e->shape = s;
    e->op = "Reshape";   // lowered as a reshape to the static shape
    e->in.resize(1);
  } else if (op == "Transpose") {
    std::vector<std::int64_t> perm = attr_ints(n, "perm").value_or(std::vector<std::int64_t>{});
    if (perm.empty())
      for (std::int64_t k = r; k-- > 0;) perm.push_back(k);
    check_perm(n, perm, r);
    e->shape.resize(r);
    for (std::int64_t k = 0; k < r; ++k) e->shape[k] = x[perm[k]];
  } else if (op == "Concat") {
    const std::int64_t ax = axis(n, attr_i(n, "axis", 0), r);
    Shape o = x;
    o[ax] = 0;
    for (const auto& s : in) {
      SB_CHECK(s.defined(), "{}: an input is missing", where(n));
      const Shape xs = shape_of(s);
      SB_CHECK(static_cast<std::int64_t>(xs.size()) == r, "{}: ranks differ", where(n));
      o[ax] += xs[ax];
    }
    e->shape = o;
  } else if (op == "Gather") {
    need(1);
    const Shape idx = shape_of(in[1]);
    const std::int64_t ax = axis(n, attr_i(n, "axis", 0), r);
    Shape o(x.begin(), x.begin() + ax);
    o.insert(o.end(), idx.begin(), idx.end());
    o.insert(o.end(), x.begin() + ax + 1, x.end());
    e->shape = o;
  } else {
    node_fail(n, "unsupported operator (see docs/onnx.md for the supported ones)");
  }
  return e;
}

int Importer::emit(Node node) {
  node.name = unique(node.name);
  try {
    return g_.add_node(std::move(node));
  } catch (const Error& err) {
    fail(fmt::format("{}: {}", label_, err.what()));
  }
}

int Importer::mat(const Sym& s, const std::string& hint) {
  if (s.c) {
    Node n;
    n.name = hint;
    n.op = OpKind::constant;
    n.params["value"] = s.c->to_tensor();
    return emit(std::move(n));
  }
  Expr& e = *s.e;
  if (e.value < 0) e.value = lower(e);
  return e.value;
}

Sym Importer::peel(Sym s) const {
  while (s.e && s.e->op == "Add") {
    const auto& in = s.e->in;
    if (in[1].c && all_equal(*in[1].c, 0) && in[0].e && in[0].e->shape == s.e->shape) s = in[0];
    else if (in[0].c && all_equal(*in[0].c, 0) && in[1].e && in[1].e->shape == s.e->shape) s = in[1];
    else break;
  }
  return s;
}

// x [B, T, C] -> Reshape [B, T, h, d] -> Transpose(perm): returns x and h.
static bool head_split(const Sym& s, const std::vector<std::int64_t>& perm, Sym& x, std::int64_t& heads) {
  if (!s.e || s.e->op != "Transpose") return false;
  const auto p = attr_ints(*s.e->node, "perm");
  if (!p || *p != perm) return false;
  const Sym& rs = s.e->in[0];
  if (!rs.e || rs.e->op != "Reshape" || rs.e->shape.size() != 4) return false;
  const Sym& src = rs.e->in[0];
  const Shape xs = src.c ? src.c->dims : src.e->shape;
  if (xs.size() != 3 || xs[0] != rs.e->shape[0] || xs[1] != rs.e->shape[1]) return false;
  x = src;
  heads = rs.e->shape[2];
  return true;
}

std::optional<int> Importer::try_attention(Expr& r) {
  // Reshape([B, T, C]) <- Transpose(0,2,1,3) <- MatMul(P, Vh), P = Softmax(-1)(scale * Qh Kt)
  if (r.shape.size() != 3) return std::nullopt;
  Expr* t = expr_of(r.in[0], "Transpose");
  if (!t || attr_ints(*t->node, "perm") != std::vector<std::int64_t>{0, 2, 1, 3}) return std::nullopt;
  Expr* pv = expr_of(t->in[0], "MatMul");
  if (!pv) return std::nullopt;
  Expr* sm = expr_of(peel(pv->in[0]), "Softmax");
  if (!sm || sm->shape.size() != 4) return std::nullopt;
  if (norm_axis(attr_i(*sm->node, "axis", opset_ >= 13 ? -1 : 1), 4) != 3) return std::nullopt;
  Sym sc = peel(sm->in[0]);
  double scale = 1;
  if (sc.e && (sc.e->op == "Div" || sc.e->op == "Mul") && sc.e->in[1].c && sc.e->in[1].c->numel() == 1) {
    const double c = sc.e->in[1].c->get(0);
    scale = sc.e->op == "Div" ? 1 / c : c;
    sc = sc.e->in[0];
  }
  Expr* qk = expr_of(sc, "MatMul");
  if (!qk) return std::nullopt;
  Sym q, k, v;
  std::int64_t hq = 0, hk = 0, hv = 0;
  if (!head_split(qk->in[0], {0, 2, 1, 3}, q, hq)) return std::nullopt;
  if (!head_split(qk->in[1], {0, 2, 3, 1}, k, hk)) {
    Expr* kt = expr_of(qk->in[1], "Transpose");
    if (!kt || attr_ints(*kt->node, "perm") != std::vector<std::int64_t>{0, 1, 3, 2} ||
        !head_split(kt->in[0], {0, 2, 1, 3}, k, hk))
      return std::nullopt;
  }
  if (!head_split(pv->in[1], {0, 2, 1, 3}, v, hv)) return std::nullopt;
  const Shape qs = shape_of(q);
  if (hq != hk || hq != hv || shape_of(k) != qs || shape_of(v) != qs || r.shape != qs) return std::nullopt;
  const double d = static_cast<double>(qs[2] / hq);
  if (!close(scale, 1 / std::sqrt(d), 1e-3)) return std::nullopt;
  Node n;
  n.name = name_of(*sm);   // the exporter names the whole attention after its Softmax
  n.op = OpKind::attention;
  n.attrs.heads = hq;
  n.inputs = {mat(q), mat(k), mat(v)};
  return emit(std::move(n));
}

// Div(Sub(x, mean(x)), Sqrt(Add(mean(Pow(Sub(x, mean(x)), 2)), eps))), means over the last dim.
bool Importer::ln_core(const Sym& s, Sym& x, double& eps) const {
  Expr* div = expr_of(s, "Div");
  if (!div) return false;
  auto last_mean = [&](const Sym& m) -> Expr* {
    Expr* e = expr_of(m, "ReduceMean");
    if (!e || !e->in[0].defined()) return nullptr;
    const auto r = static_cast<std::int64_t>(shape_of(e->in[0]).size());
    std::vector<std::int64_t> axes = attr_ints(*e->node, "axes").value_or(std::vector<std::int64_t>{});
    if (axes.empty() && e->in.size() > 1 && e->in[1].c) axes = e->in[1].c->ints();
    if (axes.size() != 1 || norm_axis(axes[0], r) != r - 1 || attr_i(*e->node, "keepdims", 1) != 1) return nullptr;
    return e;
  };
  Expr* sub = expr_of(div->in[0], "Sub");
  if (!sub) return false;
  Expr* mean = last_mean(sub->in[1]);
  if (!mean || !(mean->in[0] == sub->in[0])) return false;
  Expr* sq = expr_of(div->in[1], "Sqrt");
  if (!sq) return false;
  Expr* add = expr_of(sq->in[0], "Add");
  if (!add || !add->in[1].c || add->in[1].c->numel() != 1) return false;
  Expr* var = last_mean(add->in[0]);
  if (!var) return false;
  Expr* pw = expr_of(var->in[0], "Pow");
  if (!pw || !pw->in[1].c || pw->in[1].c->get(0) != 2.0) return false;
  Expr* sub2 = expr_of(pw->in[0], "Sub");
  if (!sub2 || !(sub2->in[0] == sub->in[0])) return false;
  x = sub->in[0];
  eps = add->in[1].c->get(0);
  return true;
}

std::optional<int> Importer::try_layer_norm(Expr& e) {
  Sym core = {nullptr, nullptr}, x;
  const Const *gamma = nullptr, *beta = nullptr;
  double eps = 0;
  auto as_param = [&](const Sym& s, std::int64_t c) -> const Const* {
    return s.c && s.c->numel() == c ? s.c.get() : nullptr;
  };
  const std::int64_t c = e.shape.empty() ? 0 : e.shape.back();
  if (e.op == "Add" && e.in[1].c) {
    beta = as_param(e.in[1], c);
    Expr* mul = expr_of(e.in[0], "Mul");
    if (mul && mul->in[1].c) {
      gamma = as_param(mul->in[1], c);
      core = mul->in[0];
    } else {
      core = e.in[0];
    }
    if (!beta) return std::nullopt;
  } else if (e.op == "Mul" && e.in[1].c) {
    gamma = as_param(e.in[1], c);
    core = e.in[0];
    if (!gamma) return std::nullopt;
  } else if (e.op == "Div") {
    core = Sym{nullptr, nullptr};
    if (!ln_core(Sym{nullptr, std::shared_ptr<Expr>(std::shared_ptr<Expr>{}, &e)}, x, eps)) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (core.defined() && !ln_core(core, x, eps)) return std::nullopt;
  Node n;
  n.name = name_of(e);
  n.op = OpKind::layer_norm;
  n.attrs.eps = eps;
  n.params["weight"] = gamma ? gamma->to_tensor().reshape({c}) : Tensor::full({c}, 1.0f);
  n.params["bias"] = beta ? beta->to_tensor().reshape({c}) : Tensor::zeros({c});
  n.inputs = {mat(x)};
  return emit(std::move(n));
}

// x * 0.5 * (1 + erf(x / sqrt(2))) in any association of the Muls.
std::optional<int> Importer::try_gelu(Expr& e) {
  double k = 1;
  std::vector<Sym> dyn;
  std::function<bool(const Sym&, bool)> collect = [&](const Sym& s, bool root) {
    if (s.c) {
      if (s.c->numel() != 1) return false;
      k *= s.c->get(0);
      return true;
    }
    if (s.e->op == "Mul" && (root || s.e->uses == 1)) return collect(s.e->in[0], false) && collect(s.e->in[1], false);
    dyn.push_back(s);
    return true;
  };
  if (!collect(Sym{nullptr, std::shared_ptr<Expr>(std::shared_ptr<Expr>{}, &e)}, true) || dyn.size() != 2) return std::nullopt;
  for (int pick = 0; pick < 2; ++pick) {
    const Sym& x = dyn[pick];
    Expr* add = expr_of(dyn[1 - pick], "Add");
    if (!add) continue;
    Sym erf_in;
    double one = 0;
    if (add->in[1].c && add->in[1].c->numel() == 1) { one = add->in[1].c->get(0); erf_in = add->in[0]; }
    else if (add->in[0].c && add->in[0].c->numel() == 1) { one = add->in[0].c->get(0); erf_in = add->in[1]; }
    Expr* erf = expr_of(erf_in, "Erf");
    if (!erf || one != 1.0) continue;
    Expr* sc = erf->in[0].e.get();
    if (!sc || !(sc->op == "Div" || sc->op == "Mul") || !sc->in[1].c || sc->in[1].c->numel() != 1 || !(sc->in[0] == x)) continue;
    const double f = sc->op == "Div" ? 1 / sc->in[1].c->get(0) : sc->in[1].c->get(0);
    if (!close(f, 1 / std::sqrt(2.0)) || !close(k, 0.5)) continue;
    Node n;
    n.name = name_of(e);
    n.op = OpKind::gelu;
    n.inputs = {mat(x)};
    return emit(std::move(n));
  }
  return std::nullopt;
}

// Bias (Add) or scale (Mul) by a constant folded into the conv / linear producing x, when x has no
// other reader: c must be a scalar or one value per output channel.
std::optional<int> Importer::fuse_into_layer(Expr& e, const Sym& x, const Const& c, bool bias) {
  if (!x.e || x.e->uses != 1 || x.e->op == "input") return std::nullopt;
  // x is read by this node only: materialise it and look at the IR node that computes it (a bias
  // Add or an earlier scale may already have been folded into that layer).
  const int v = mat(x);
  const int p = g_.value(v).producer;
  if (p < 0 || !g_.consumers(v).empty()) return std::nullopt;
  Node& n = g_.nodes()[p];
  if (!n.has_weight()) return std::nullopt;
  const bool conv = n.op == OpKind::conv2d;
  const Shape& xs = g_.value(v).shape;
  const std::int64_t ch = conv ? xs[1] : xs.back();
  // c's non-1 dims must be exactly the channel dim (right-aligned against x).
  if (c.dims.size() > xs.size()) return std::nullopt;
  const std::size_t off = xs.size() - c.dims.size();
  for (std::size_t k = 0; k < c.dims.size(); ++k) {
    const std::size_t a = k + off;
    const bool chan = conv ? a == 1 : a == xs.size() - 1;
    if (c.dims[k] != 1 && !(chan && c.dims[k] == ch)) return std::nullopt;
  }
  if (c.numel() != ch && c.numel() != 1) return std::nullopt;
  if (bias && n.params.count("bias")) {
    Tensor& b = n.params["bias"];
    for (std::int64_t o = 0; o < ch; ++o) b.data<float>()[o] += static_cast<float>(c.numel() == 1 ? c.get(0) : c.get(o));
    return v;
  }
  auto at = [&](std::int64_t o) { return c.numel() == 1 ? c.get(0) : c.get(o); };
  if (bias) {
    Tensor b = Tensor::empty({ch});
    for (std::int64_t o = 0; o < ch; ++o) b.data<float>()[o] = static_cast<float>(at(o));
    n.params["bias"] = b;
  } else {
    Tensor& w = n.params.at("weight");
    const std::int64_t per = w.numel() / ch;
    for (std::int64_t o = 0; o < ch; ++o)
      for (std::int64_t k = 0; k < per; ++k) w.data<float>()[o * per + k] *= static_cast<float>(at(o));
    if (n.params.count("bias"))
      for (std::int64_t o = 0; o < ch; ++o) n.params["bias"].data<float>()[o] *= static_cast<float>(at(o));
  }
  return v;
}

int Importer::add_const(Expr& e, const Sym& x, const Const& c) {
  const Shape xs = shape_of(x);
  const bool keeps_shape = e.shape == xs;   // the constant does not broadcast x to a larger shape
  if (keeps_shape && all_equal(c, 0)) return mat(x);
  if (keeps_shape)
    if (auto v = fuse_into_layer(e, x, c, true)) return *v;
  // An IR add with a constant of the input's shape at batch 1 where it broadcasts to that, else
  // the constant as it is (the IR add broadcasts numpy-style).
  Shape target = xs;
  if (!target.empty()) target[0] = 1;
  const auto s = broadcast(c.dims, target);
  const Const full = keeps_shape && s && *s == target ? take(c, target, broadcast_index(target, c.dims)) : c;
  Node n;
  n.name = name_of(e);
  n.op = OpKind::add;
  const int xv = mat(x);
  n.inputs = {xv, mat(Sym{std::make_shared<Const>(full), nullptr}, name_of(e) + ".const")};
  return emit(std::move(n));
}

int Importer::lower(Expr& e) {
  const NodeProto& nd = *e.node;
  const std::string& op = e.op;
  Node n;
  n.name = name_of(e);
  auto in = [&](std::size_t k) { return mat(e.in.at(k)); };
  auto no_runtime = [&](const std::string& why) -> int {
    node_fail(nd, fmt::format("has no runtime equivalent here ({}); supported inside the LayerNorm / GELU / attention patterns "
                              "of docs/onnx.md or on constants",
                              why));
  };
  if (op == "Conv" || op == "Gemm" || (op == "MatMul" && e.in[1].c)) {
    if (op == "Conv") {
      n.op = OpKind::conv2d;
      const Const& w = need_const(nd, e.in[1], "the weight (input 1)");
      SB_CHECK(w.dims.size() == 4, "{}: weight must be 4-D", where(nd));
      n.params["weight"] = w.to_tensor();
      if (e.in.size() > 2 && e.in[2].defined()) n.params["bias"] = need_const(nd, e.in[2], "the bias (input 2)").to_tensor();
      const auto s = attr_ints(nd, "strides").value_or(std::vector<std::int64_t>{1, 1});
      const auto p = attr_ints(nd, "pads").value_or(std::vector<std::int64_t>{0, 0, 0, 0});
      const auto d = attr_ints(nd, "dilations").value_or(std::vector<std::int64_t>{1, 1});
      n.attrs.kernel = {w.dims[2], w.dims[3]};
      n.attrs.stride = {s[0], s[1]};
      n.attrs.padding = {p[0], p[1]};
      n.attrs.dilation = {d[0], d[1]};
      n.attrs.groups = attr_i(nd, "group", 1);
    } else {
      n.op = OpKind::linear;
      const Const& b = need_const(nd, e.in[1], "the weight (input 1)");
      SB_CHECK(b.dims.size() == 2, "{}: the weight must be 2-D, got {}", where(nd), shape_to_string(b.dims));
      const bool trans = op == "Gemm" && attr_i(nd, "transB", 0);
      Tensor w;
      if (trans) {
        w = b.to_tensor();
      } else {
        Shape out;
        const auto src = transpose_index(b.dims, {1, 0}, out);
        w = take(b, out, src).to_tensor();
      }
      const float alpha = op == "Gemm" ? attr_f(nd, "alpha", 1.0f) : 1.0f;
      if (alpha != 1.0f)
        for (std::int64_t k = 0; k < w.numel(); ++k) w.data<float>()[k] *= alpha;
      n.params["weight"] = w;
      if (op == "Gemm" && e.in.size() > 2 && e.in[2].defined()) {
        const Const& c = need_const(nd, e.in[2], "C (input 2)");
        const std::int64_t o = w.size(0);
        SB_CHECK(c.numel() == o || c.numel() == 1, "{}: C of shape {} is not a bias of {} outputs", where(nd), shape_to_string(c.dims), o);
        Tensor bias = Tensor::empty({o});
        const float beta = attr_f(nd, "beta", 1.0f);
        for (std::int64_t k = 0; k < o; ++k) bias.data<float>()[k] = beta * static_cast<float>(c.get(c.numel() == 1 ? 0 : k));
        n.params["bias"] = bias;
      }
    }
    n.inputs = {in(0)};
    return emit(std::move(n));
  }
  if (op == "MatMul") {
    SB_CHECK(e.in[0].e, "{}: a constant first operand is not supported", where(nd));
    n.op = OpKind::matmul;
    n.inputs = {in(0), in(1)};
    return emit(std::move(n));
  }
  if (op == "Add") {
    if (auto v = try_layer_norm(e)) return *v;
    if (e.in[0].c) std::swap(e.in[0], e.in[1]);
    if (e.in[1].c) return add_const(e, e.in[0], *e.in[1].c);
    Shape a = shape_of(e.in[0]), b = shape_of(e.in[1]);
    if (a != b && b.size() == a.size() && a[0] == 1 && b[0] != 1) std::swap(e.in[0], e.in[1]);
    n.op = OpKind::add;
    n.inputs = {in(0), in(1)};
    return emit(std::move(n));
  }
  if (op == "Sub") {
    if (e.in[1].c) {
      Const neg = *e.in[1].c;
      for (auto& v : neg.f) v = -v;
      for (auto& v : neg.i) v = -v;
      return add_const(e, e.in[0], neg);
    }
    n.op = OpKind::sub;
    n.inputs = {mat(e.in[0], name_of(e) + ".const"), in(1)};
    return emit(std::move(n));
  }
  if (op == "Mul" || op == "Div") {
    if (auto v = try_layer_norm(e)) return *v;
    if (op == "Mul") {
      if (auto v = try_gelu(e)) return *v;
      if (e.in[0].c) std::swap(e.in[0], e.in[1]);
    }
    if (e.in[1].c) {
      Const c = *e.in[1].c;
      if (op == "Div") {
        c.is_int = false;
        std::vector<float> f;
        for (std::int64_t k = 0; k < c.numel(); ++k) f.push_back(static_cast<float>(1.0 / e.in[1].c->get(k)));
        c.f = f;
        c.i.clear();
      }
      const bool keeps_shape = e.shape == shape_of(e.in[0]);
      if (keeps_shape && all_equal(c, 1)) return mat(e.in[0]);
      if (keeps_shape)
        if (auto v = fuse_into_layer(e, e.in[0], c, false)) return *v;
      // Not foldable: an IR mul / div by the constant (as written: x / c stays a division).
    }
    n.op = op == "Mul" ? OpKind::mul : OpKind::div;
    n.inputs = {mat(e.in[0], name_of(e) + ".const"), mat(e.in[1], name_of(e) + ".const")};
    return emit(std::move(n));
  }
  if (op == "Relu") {
    n.op = OpKind::relu;
  } else if (op == "Clip") {
    double lo = -INFINITY, hi = INFINITY;
    if (opset_ < 11) {
      lo = attr_f(nd, "min", -INFINITY);
      hi = attr_f(nd, "max", INFINITY);
    } else {
      if (e.in.size() > 1 && e.in[1].defined()) lo = need_const(nd, e.in[1], "min").get(0);
      if (e.in.size() > 2 && e.in[2].defined()) hi = need_const(nd, e.in[2], "max").get(0);
    }
    if (lo == 0 && hi == 6) n.op = OpKind::relu6;
    else if (lo == 0 && std::isinf(hi)) n.op = OpKind::relu;
    else node_fail(nd, fmt::format("Clip({}, {}) is not supported (expected ReLU6: min 0, max 6)", lo, hi));
  } else if (op == "Gelu") {
    SB_CHECK(attr_s(nd, "approximate", "none") == "none", "{}: approximate='tanh' is not supported (exact GELU only)", where(nd));
    n.op = OpKind::gelu;
  } else if (op == "Cast") {
    const auto to = attr_i(nd, "to", onnx::TensorProto::FLOAT);
    const bool to_int = to == onnx::TensorProto::INT64 || to == onnx::TensorProto::INT32;
    if ((e.dtype == DType::i32 && to_int) || (e.dtype == DType::f32 && to == onnx::TensorProto::FLOAT)) return in(0);
    node_fail(nd, "casting between float and integer tensors at run time is not supported");
  } else if (op == "BatchNormalization") {
    n.op = OpKind::batch_norm;
    const char* keys[] = {"weight", "bias", "running_mean", "running_var"};
    for (int k = 0; k < 4; ++k) n.params[keys[k]] = need_const(nd, e.in.at(k + 1), keys[k]).to_tensor();
    n.attrs.eps = attr_f(nd, "epsilon", 1e-5f);
    SB_CHECK(e.shape.size() == 4, "{}: only 4-D NCHW inputs are supported", where(nd));
  } else if (op == "LayerNormalization") {
    const auto r = static_cast<std::int64_t>(e.shape.size());
    SB_CHECK(norm_axis(attr_i(nd, "axis", -1), r) == r - 1, "{}: only axis -1 (the last dim) is supported", where(nd));
    n.op = OpKind::layer_norm;
    const std::int64_t c = e.shape.back();
    n.params["weight"] = need_const(nd, e.in.at(1), "the scale (input 1)").to_tensor().reshape({c});
    n.params["bias"] = e.in.size() > 2 && e.in[2].defined() ? need_const(nd, e.in[2], "the bias (input 2)").to_tensor().reshape({c})
                                                            : Tensor::zeros({c});
    n.attrs.eps = attr_f(nd, "epsilon", 1e-5f);
  } else if (op == "Softmax") {
    const auto r = static_cast<std::int64_t>(e.shape.size());
    const std::int64_t axis = this->axis(nd, attr_i(nd, "axis", opset_ >= 13 ? -1 : 1), r);
    SB_CHECK(opset_ >= 13 || axis == r - 1, "{}: before opset 13 Softmax flattens from its axis; only the last axis is supported",
             where(nd));
    n.op = OpKind::softmax;
    n.attrs.axis = axis;
  } else if (op == "MaxPool" || op == "AveragePool") {
    n.op = op == "MaxPool" ? OpKind::max_pool : OpKind::avg_pool;
    const auto k = *attr_ints(nd, "kernel_shape");
    const auto s = attr_ints(nd, "strides").value_or(std::vector<std::int64_t>{1, 1});
    const auto p = attr_ints(nd, "pads").value_or(std::vector<std::int64_t>{0, 0, 0, 0});
    SB_CHECK(attr_ints(nd, "dilations").value_or(std::vector<std::int64_t>{1, 1}) == std::vector<std::int64_t>({1, 1}),
             "{}: dilated pooling is not supported", where(nd));
    if (op == "AveragePool" && (p[0] || p[1]))
      SB_CHECK(attr_i(nd, "count_include_pad", 0) == 1, "{}: padded AveragePool needs count_include_pad = 1 (torch's default)", where(nd));
    n.attrs.kernel = {k[0], k[1]};
    n.attrs.stride = {s[0], s[1]};
    n.attrs.padding = {p[0], p[1]};
  } else if (op == "GlobalAveragePool") {
    n.op = OpKind::global_avg_pool;
  } else if (op == "Flatten") {
    if (norm_axis(attr_i(nd, "axis", 1), static_cast<std::int64_t>(shape_of(e.in[0]).size())) == 1) {
      n.op = OpKind::flatten;
      n.attrs.axis = 1;
    } else {
      n.op = OpKind::reshape;
      n.attrs.shape = e.shape;
    }
  } else if (op == "Reshape") {
    if (auto v = try_attention(e)) return *v;
    if (shape_of(e.in[0]) == e.shape) return in(0);
    n.op = OpKind::reshape;
    n.attrs.shape = e.shape;
  } else if (op == "Transpose") {
    std::vector<std::int64_t> perm = attr_ints(nd, "perm").value_or(std::vector<std::int64_t>{});
    const auto r = static_cast<std::int64_t>(e.shape.size());
    if (perm.empty())
      for (std::int64_t k = r; k-- > 0;) perm.push_back(k);
    int v = in(0);
    std::vector<std::int64_t> cur(r);
    for (std::int64_t k = 0; k < r; ++k) cur[k] = k;
    int step = 0;
    for (std::int64_t k = 0; k < r; ++k) {
      if (cur[k] == perm[k]) continue;
      const auto j = std::find(cur.begin(), cur.end(), perm[k]) - cur.begin();
      std::swap(cur[k], cur[j]);
      Node t;
      t.name = step++ ? fmt::format("{}.{}", name_of(e), step) : name_of(e);
      t.op = OpKind::transpose;
      t.attrs.axis = k;
      t.attrs.axis2 = j;
      t.inputs = {v};
      v = emit(std::move(t));
    }
    return v;
  } else if (op == "Concat") {
    const std::int64_t axis = norm_axis(attr_i(nd, "axis", 0), static_cast<std::int64_t>(e.shape.size()));
    // torch's class token: Concat(Expand(token, [B, 1, C]), x) along dim 1.
    if (e.in.size() == 2 && e.in[0].c && e.in[1].e && axis == 1 && e.shape.size() == 3 && e.in[0].c->dims.size() == 3 &&
        e.in[0].c->dims[1] == 1) {
      const Const& t = *e.in[0].c;
      const std::int64_t c = t.dims[2];
      bool same = true;
      for (std::int64_t b = 1; b < t.dims[0] && same; ++b)
        for (std::int64_t k = 0; k < c && same; ++k) same = t.get(b * c + k) == t.get(k);
      if (same) {
        n.op = OpKind::cls_token;
        Tensor tok = Tensor::empty({1, 1, c});
        for (std::int64_t k = 0; k < c; ++k) tok.data<float>()[k] = static_cast<float>(t.get(k));
        n.params["token"] = tok;
        n.inputs = {in(1)};
        return emit(std::move(n));
      }
    }
    n.op = OpKind::concat;
    n.attrs.axis = axis;
    for (std::size_t k = 0; k < e.in.size(); ++k) n.inputs.push_back(mat(e.in[k], name_of(e) + ".const"));
    return emit(std::move(n));
  } else if (op == "Gather") {
    const std::int64_t axis = norm_axis(attr_i(nd, "axis", 0), static_cast<std::int64_t>(shape_of(e.in[0]).size()));
    if (e.in[0].c) {
      const Const& w = *e.in[0].c;
      SB_CHECK(axis == 0 && w.dims.size() == 2 && e.in[1].e && e.in[1].e->dtype == DType::i32,
               "{}: only embeddings (a 2-D table gathered along axis 0 by integer ids) are supported", where(nd));
      n.op = OpKind::embedding;
      n.params["weight"] = w.to_tensor();
      n.inputs = {in(1)};
      return emit(std::move(n));
    }
    SB_CHECK(e.in[1].c && e.in[1].c->numel() == 1 && e.in[1].c->dims.empty(),
             "{}: gathering from a computed tensor needs a scalar constant index", where(nd));
    std::int64_t idx = e.in[1].c->ints()[0];
    if (idx < 0) idx += shape_of(e.in[0])[axis];
    n.op = OpKind::select;
    n.attrs.axis = axis;
    n.attrs.axis2 = idx;
  } else if (op == "Sigmoid") {
    n.op = OpKind::sigmoid;
  } else if (op == "Tanh") {
    n.op = OpKind::tanh;
  } else if (op == "Erf") {
    n.op = OpKind::erf;
  } else if (op == "Sqrt") {
    n.op = OpKind::sqrt;
  } else if (op == "Pow") {
    n.op = OpKind::pow;
    n.inputs = {mat(e.in[0], name_of(e) + ".const"), mat(e.in[1], name_of(e) + ".exponent")};
    return emit(std::move(n));
  } else if (op == "ReduceMean") {
    const auto r = static_cast<std::int64_t>(shape_of(e.in[0]).size());
    std::vector<std::int64_t> axes = attr_ints(nd, "axes").value_or(std::vector<std::int64_t>{});
    if (axes.empty() && e.in.size() > 1 && e.in[1].defined()) axes = need_const(nd, e.in[1], "axes (input 1)").ints();
    if (axes.empty() && attr_i(nd, "noop_with_empty_axes", 0)) return in(0);
    for (auto& a : axes) a = axis(nd, a, r);
    n.op = OpKind::reduce_mean;
    n.attrs.axes = axes;
    n.attrs.keepdims = attr_i(nd, "keepdims", 1) != 0;
  } else if (op == "Neg" || op == "Reciprocal" || op == "Exp") {
    return no_runtime(fmt::format("no runtime op for {} on its own", op));
  } else {
    node_fail(nd, "unsupported operator");
  }
  n.inputs = {in(0)};
  return emit(std::move(n));
}

}  // namespace

Graph import_onnx_bytes(const std::string& bytes, const std::string& label, const OnnxImportOptions& options) {
  SB_CHECK(!bytes.empty(), "{}: empty file (expected an ONNX model)", label);
  onnx::ModelProto m;
  if (!m.ParseFromString(bytes))
    fail(fmt::format("{}: not a valid ONNX model (protobuf parsing failed: truncated or corrupted file?)", label));
  Importer imp(label, options);
  Graph g;
  try {
    g = imp.run(m);
  } catch (const std::bad_alloc&) {
    fail(fmt::format("{}: out of memory while importing (a corrupted dimension?)", label));
  } catch (const std::length_error&) {
    fail(fmt::format("{}: a tensor too large to hold (a corrupted dimension?)", label));
  }
  if (options.batch > 0 && g.value(g.inputs()[0]).shape[0] != options.batch) g = g.with_batch(options.batch);
  return g;
}

Graph import_onnx(const std::string& path, const OnnxImportOptions& options) {
  std::ifstream f(path, std::ios::binary);
  SB_CHECK(f.good(), "{}: cannot open (expected an ONNX model file)", path);
  std::stringstream ss;
  ss << f.rdbuf();
  return import_onnx_bytes(ss.str(), path, options);
}

void register_onnx_model_loader() {
  register_model_loader(".onnx", [](const std::string& path, const ModelOptions& mo) {
    OnnxImportOptions o;
    o.batch = mo.batch;
    o.seq_len = mo.seq_len;
    return import_onnx(path, o);
  });
}

}  // namespace sb
