// Graph IR -> ONNX (opset 17, standard operators), pruned weights as sparse_initializer.
#include <cmath>
#include <cstring>
#include <fstream>

#include <fmt/format.h>
#include <onnx/onnx_pb.h>

#include "sparsebench/core/error.h"
#include "sparsebench/onnx/onnx.h"

namespace sb {
namespace {

constexpr std::int64_t kOpset = 17;

class Exporter {
 public:
  Exporter(const Graph& g, const OnnxExportOptions& o, OnnxExportReport& r) : g_(g), opt_(o), rep_(r) {}

  onnx::ModelProto run() {
    onnx::ModelProto m;
    m.set_ir_version(8);
    m.set_producer_name(opt_.producer);
    auto* os = m.add_opset_import();
    os->set_domain("");
    os->set_version(kOpset);
    gp_ = m.mutable_graph();
    gp_->set_name("sparsebench");
    names_.resize(g_.values().size());
    for (std::size_t v = 0; v < g_.values().size(); ++v) names_[v] = g_.values()[v].name;
    for (int v : g_.inputs()) value_info(gp_->add_input(), v);
    for (const Node& n : g_.nodes()) {
      node(n);
      if (n.mask.defined() && n.has_weight()) {
        auto* p = m.add_metadata_props();
        p->set_key("sparsebench.mask." + n.name);
        p->set_value(n.pattern.to_string());
      }
    }
    for (int v : g_.outputs()) value_info(gp_->add_output(), v);
    return m;
  }

 private:
  void value_info(onnx::ValueInfoProto* vi, int v) {
    const Value& val = g_.value(v);
    vi->set_name(names_[v]);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(val.dtype == DType::i32 ? onnx::TensorProto::INT32 : onnx::TensorProto::FLOAT);
    auto* sh = tt->mutable_shape();
    for (std::size_t d = 0; d < val.shape.size(); ++d) {
      auto* dim = sh->add_dim();
      if (d == 0) dim->set_dim_param("batch");
      else dim->set_dim_value(val.shape[d]);
    }
  }

  // A dense f32 initializer, or a sparse one where that is smaller.
  std::string init(const std::string& name, const Tensor& src, bool allow_sparse) {
    const Tensor t = src.contiguous();
    SB_CHECK(t.dtype() == DType::f32, "export: parameter '{}' has dtype {}, expected f32", name, dtype_name(t.dtype()));
    const float* p = t.data<float>();
    const std::int64_t n = t.numel();
    std::int64_t nnz = 0;
    for (std::int64_t k = 0; k < n; ++k) nnz += p[k] != 0.0f;
    const std::size_t dense = static_cast<std::size_t>(n) * 4, sparse = static_cast<std::size_t>(nnz) * 12;
    rep_.weight_bytes_dense += dense;
    if (allow_sparse && opt_.sparse_initializers && t.dim() >= 1 && sparse < dense) {
      auto* s = gp_->add_sparse_initializer();
      for (auto d : t.shape()) s->add_dims(d);
      auto* val = s->mutable_values();
      val->set_name(name);
      val->set_data_type(onnx::TensorProto::FLOAT);
      val->add_dims(nnz);
      auto* idx = s->mutable_indices();
      idx->set_data_type(onnx::TensorProto::INT64);
      idx->add_dims(nnz);
      std::string vb(static_cast<std::size_t>(nnz) * 4, '\0'), ib(static_cast<std::size_t>(nnz) * 8, '\0');
      std::int64_t j = 0;
      for (std::int64_t k = 0; k < n; ++k)
        if (p[k] != 0.0f) {
          std::memcpy(vb.data() + j * 4, p + k, 4);
          std::memcpy(ib.data() + j * 8, &k, 8);
          ++j;
        }
      val->set_raw_data(std::move(vb));
      idx->set_raw_data(std::move(ib));
      rep_.weight_bytes_stored += sparse;
      ++rep_.sparse_initializers;
    } else {
      auto* tp = gp_->add_initializer();
      tp->set_name(name);
      tp->set_data_type(onnx::TensorProto::FLOAT);
      for (auto d : t.shape()) tp->add_dims(d);
      tp->set_raw_data(std::string(reinterpret_cast<const char*>(p), dense));
      rep_.weight_bytes_stored += dense;
      ++rep_.dense_initializers;
    }
    return name;
  }
  std::string ints(const std::string& name, const std::vector<std::int64_t>& v, bool scalar = false) {
    auto* tp = gp_->add_initializer();
    tp->set_name(name);
    tp->set_data_type(onnx::TensorProto::INT64);
    if (!scalar) tp->add_dims(static_cast<std::int64_t>(v.size()));
    for (auto x : v) tp->add_int64_data(x);
    return name;
  }
  std::string scalar(const std::string& name, float v) {
    auto* tp = gp_->add_initializer();
    tp->set_name(name);
    tp->set_data_type(onnx::TensorProto::FLOAT);
    tp->add_float_data(v);
    return name;
  }
  onnx::NodeProto* op(const std::string& type, const std::string& name, const std::vector<std::string>& in,
                      const std::string& out) {
    auto* n = gp_->add_node();
    n->set_op_type(type);
    n->set_name(name);
    for (const auto& i : in) n->add_input(i);
    n->add_output(out);
    return n;
  }
  static void attr(onnx::NodeProto* n, const char* name, std::int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr(onnx::NodeProto* n, const char* name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void attr(onnx::NodeProto* n, const char* name, const std::vector<std::int64_t>& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (auto x : v) a->add_ints(x);
  }
  static std::vector<std::int64_t> perm_swap(std::size_t rank, std::int64_t a, std::int64_t b) {
    std::vector<std::int64_t> p(rank);
    for (std::size_t k = 0; k < rank; ++k) p[k] = static_cast<std::int64_t>(k);
    std::swap(p[a], p[b]);
    return p;
  }

  void node(const Node& n) {
    const std::string y = names_[n.output];
    auto x = [&](std::size_t k) { return names_[n.inputs.at(k)]; };
    auto in_shape = [&](std::size_t k) { return g_.value(n.inputs.at(k)).shape; };
    const std::string& nm = n.name;
    const Attrs& a = n.attrs;
    switch (n.op) {
      case OpKind::input: return;
      case OpKind::constant: init(y, n.param("value"), false); return;
      case OpKind::conv2d: {
        std::vector<std::string> in = {x(0), init(nm + ".weight", n.param("weight"), true)};
        if (n.params.count("bias")) in.push_back(init(nm + ".bias", n.param("bias"), false));
        auto* c = op("Conv", nm, in, y);
        attr(c, "kernel_shape", std::vector<std::int64_t>{a.kernel[0], a.kernel[1]});
        attr(c, "strides", std::vector<std::int64_t>{a.stride[0], a.stride[1]});
        attr(c, "pads", std::vector<std::int64_t>{a.padding[0], a.padding[1], a.padding[0], a.padding[1]});
        attr(c, "dilations", std::vector<std::int64_t>{a.dilation[0], a.dilation[1]});
        attr(c, "group", a.groups);
        return;
      }
      case OpKind::linear: {
        const bool bias = n.params.count("bias") > 0;
        if (in_shape(0).size() == 2) {
          std::vector<std::string> in = {x(0), init(nm + ".weight", n.param("weight"), true)};
          if (bias) in.push_back(init(nm + ".bias", n.param("bias"), false));
          attr(op("Gemm", nm, in, y), "transB", std::int64_t{1});
        } else {  // torch's form for [..., in] inputs: MatMul by W^T, then Add of the bias
          const Tensor wt = n.param("weight").transpose(0, 1).contiguous();
          const std::string mm = bias ? nm + "/matmul" : y;
          op("MatMul", nm, {x(0), init(nm + ".weight_t", wt, true)}, mm);
          if (bias) op("Add", nm + "/bias", {mm, init(nm + ".bias", n.param("bias"), false)}, y);
        }
        return;
      }
      case OpKind::matmul: op("MatMul", nm, {x(0), x(1)}, y); return;
      case OpKind::batch_norm: {
        std::vector<std::string> in = {x(0)};
        for (const char* k : {"weight", "bias", "running_mean", "running_var"}) in.push_back(init(nm + "." + k, n.param(k), false));
        attr(op("BatchNormalization", nm, in, y), "epsilon", static_cast<float>(a.eps));
        return;
      }
      case OpKind::relu: op("Relu", nm, {x(0)}, y); return;
      case OpKind::relu6: op("Clip", nm, {x(0), scalar(nm + "/min", 0.0f), scalar(nm + "/max", 6.0f)}, y); return;
      case OpKind::gelu: {  // opset 17 has no Gelu: the Erf form torch exports
        op("Div", nm + "/div", {x(0), scalar(nm + "/sqrt2", static_cast<float>(std::sqrt(2.0)))}, nm + "/div");
        op("Erf", nm + "/erf", {nm + "/div"}, nm + "/erf");
        op("Add", nm + "/add", {nm + "/erf", scalar(nm + "/one", 1.0f)}, nm + "/add");
        op("Mul", nm + "/mul", {x(0), nm + "/add"}, nm + "/mul");
        op("Mul", nm, {nm + "/mul", scalar(nm + "/half", 0.5f)}, y);
        return;
      }
      case OpKind::add: op("Add", nm, {x(0), x(1)}, y); return;
      case OpKind::max_pool:
      case OpKind::avg_pool: {
        auto* p = op(n.op == OpKind::max_pool ? "MaxPool" : "AveragePool", nm, {x(0)}, y);
        attr(p, "kernel_shape", std::vector<std::int64_t>{a.kernel[0], a.kernel[1]});
        attr(p, "strides", std::vector<std::int64_t>{a.stride[0], a.stride[1]});
        attr(p, "pads", std::vector<std::int64_t>{a.padding[0], a.padding[1], a.padding[0], a.padding[1]});
        if (n.op == OpKind::avg_pool) attr(p, "count_include_pad", std::int64_t{1});
        return;
      }
      case OpKind::global_avg_pool: op("GlobalAveragePool", nm, {x(0)}, y); return;
      case OpKind::flatten:
        if (a.axis == 1) {
          attr(op("Flatten", nm, {x(0)}, y), "axis", std::int64_t{1});
        } else {
          std::vector<std::int64_t> s(static_cast<std::size_t>(a.axis), 0);
          s.push_back(-1);
          op("Reshape", nm, {x(0), ints(nm + "/shape", s)}, y);
        }
        return;
      case OpKind::reshape: {
        Shape s = a.shape;
        if (!s.empty() && s[0] != -1 && s[0] == in_shape(0)[0]) s[0] = 0;   // the batch, copied
        op("Reshape", nm, {x(0), ints(nm + "/shape", s)}, y);
        return;
      }
      case OpKind::transpose: attr(op("Transpose", nm, {x(0)}, y), "perm", perm_swap(in_shape(0).size(), a.axis, a.axis2)); return;
      case OpKind::layer_norm: {
        auto* l = op("LayerNormalization", nm, {x(0), init(nm + ".weight", n.param("weight"), false),
                                                 init(nm + ".bias", n.param("bias"), false)}, y);
        attr(l, "axis", std::int64_t{-1});
        attr(l, "epsilon", static_cast<float>(a.eps));
        return;
      }
      case OpKind::softmax: attr(op("Softmax", nm, {x(0)}, y), "axis", a.axis); return;
      case OpKind::attention: {  // the subgraph torch exports; the importer maps it back onto attention
        const std::int64_t c = in_shape(0).back(), h = a.heads, d = c / h;
        const std::string s4 = ints(nm + "/heads_shape", {0, 0, h, d}), s3 = ints(nm + "/merge_shape", {0, 0, c});
        const char* qkv[] = {"q", "k", "v"};
        std::string heads[3];
        for (int k = 0; k < 3; ++k) {
          const std::string p = fmt::format("{}/{}", nm, qkv[k]);
          op("Reshape", p + "_split", {x(k), s4}, p + "_split");
          attr(op("Transpose", p + "_heads", {p + "_split"}, p + "_heads"), "perm",
               k == 1 ? std::vector<std::int64_t>{0, 2, 3, 1} : std::vector<std::int64_t>{0, 2, 1, 3});
          heads[k] = p + "_heads";
        }
        op("MatMul", nm + "/scores", {heads[0], heads[1]}, nm + "/scores");
        op("Div", nm + "/scaled", {nm + "/scores", scalar(nm + "/sqrt_d", static_cast<float>(std::sqrt(static_cast<double>(d))))},
           nm + "/scaled");
        attr(op("Softmax", nm, {nm + "/scaled"}, nm + "/probs"), "axis", std::int64_t{-1});
        op("MatMul", nm + "/context", {nm + "/probs", heads[2]}, nm + "/context");
        attr(op("Transpose", nm + "/merge", {nm + "/context"}, nm + "/merge"), "perm", std::vector<std::int64_t>{0, 2, 1, 3});
        op("Reshape", nm + "/out", {nm + "/merge", s3}, y);
        return;
      }
      case OpKind::embedding: op("Gather", nm, {init(nm + ".weight", n.param("weight"), true), x(0)}, y); return;
      case OpKind::cls_token: {  // Concat(Expand(token, [B, 1, C]), x), B from Shape(x) (torch's form)
        const Tensor& t = n.param("token");
        const std::string tok = init(nm + ".token", t, false);
        op("Shape", nm + "/shape", {x(0)}, nm + "/shape");
        op("Slice", nm + "/batch", {nm + "/shape", ints(nm + "/b0", {0}), ints(nm + "/b1", {1})}, nm + "/batch");
        attr(op("Concat", nm + "/expand_shape", {nm + "/batch", ints(nm + "/rest", {1, t.size(2)})}, nm + "/expand_shape"),
             "axis", std::int64_t{0});
        op("Expand", nm + "/expand", {tok, nm + "/expand_shape"}, nm + "/expand");
        attr(op("Concat", nm, {nm + "/expand", x(0)}, y), "axis", std::int64_t{1});
        return;
      }
      case OpKind::concat: {
        std::vector<std::string> in;
        for (std::size_t k = 0; k < n.inputs.size(); ++k) in.push_back(x(k));
        attr(op("Concat", nm, in, y), "axis", a.axis);
        return;
      }
      case OpKind::select:
        attr(op("Gather", nm, {x(0), ints(nm + "/index", {a.axis2}, true)}, y), "axis", a.axis);
        return;
      case OpKind::sigmoid: op("Sigmoid", nm, {x(0)}, y); return;
      case OpKind::tanh: op("Tanh", nm, {x(0)}, y); return;
      case OpKind::erf: op("Erf", nm, {x(0)}, y); return;
      case OpKind::sqrt: op("Sqrt", nm, {x(0)}, y); return;
      case OpKind::mul: op("Mul", nm, {x(0), x(1)}, y); return;
      case OpKind::sub: op("Sub", nm, {x(0), x(1)}, y); return;
      case OpKind::div: op("Div", nm, {x(0), x(1)}, y); return;
      case OpKind::pow: op("Pow", nm, {x(0), x(1)}, y); return;
      case OpKind::reduce_mean: {  // opset 17: axes as an attribute (an input from opset 18)
        auto* r = op("ReduceMean", nm, {x(0)}, y);
        if (!a.axes.empty()) attr(r, "axes", a.axes);
        attr(r, "keepdims", std::int64_t{a.keepdims ? 1 : 0});
        return;
      }
    }
    fail(fmt::format("export: node '{}' has op {} that ONNX export does not know", nm, op_name(n.op)));
  }

  const Graph& g_;
  const OnnxExportOptions& opt_;
  OnnxExportReport& rep_;
  onnx::GraphProto* gp_ = nullptr;
  std::vector<std::string> names_;
};

}  // namespace

std::string export_onnx_bytes(const Graph& graph, const OnnxExportOptions& options, OnnxExportReport* report) {
  OnnxExportReport r;
  const onnx::ModelProto m = Exporter(graph, options, r).run();
  std::string out;
  SB_CHECK(m.SerializeToString(&out), "export: serializing the ONNX model failed (over 2 GiB?)");
  r.file_bytes = out.size();
  if (report) *report = r;
  return out;
}

OnnxExportReport export_onnx(const Graph& graph, const std::string& path, const OnnxExportOptions& options) {
  OnnxExportReport r;
  const std::string bytes = export_onnx_bytes(graph, options, &r);
  std::ofstream f(path, std::ios::binary);
  SB_CHECK(f.good(), "{}: cannot open for writing", path);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  SB_CHECK(f.good(), "{}: write failed", path);
  return r;
}

}  // namespace sb
