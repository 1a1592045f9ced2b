// The model zoo builders.
#include "sparsebench/models/zoo.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <functional>

#include "sparsebench/core/error.h"

namespace sb {

namespace {

using Init = Builder::Init;

int conv_bn(Builder& b, const std::string& conv, const std::string& bn, int x, std::int64_t out, std::int64_t k,
            std::int64_t stride, std::int64_t pad, std::int64_t groups = 1) {
  return b.batch_norm(bn, b.conv2d(conv, x, out, k, stride, pad, groups));
}

// ---- ResNet (torchvision names) ------------------------------------------------------------------

int basic_block(Builder& b, const std::string& p, int x, std::int64_t planes, std::int64_t stride) {
  const std::int64_t in_ch = b.graph().value(x).shape[1];
  int o = conv_bn(b, p + ".conv1", p + ".bn1", x, planes, 3, stride, 1);
  o = b.unary(p + ".relu1", OpKind::relu, o);
  o = conv_bn(b, p + ".conv2", p + ".bn2", o, planes, 3, 1, 1);
  int sc = x;
  if (stride != 1 || in_ch != planes) sc = conv_bn(b, p + ".downsample.0", p + ".downsample.1", x, planes, 1, stride, 0);
  return b.unary(p + ".relu2", OpKind::relu, b.add(p + ".add", o, sc));
}

int bottleneck(Builder& b, const std::string& p, int x, std::int64_t width, std::int64_t stride) {
  const std::int64_t in_ch = b.graph().value(x).shape[1], out = width * 4;
  int o = b.unary(p + ".relu1", OpKind::relu, conv_bn(b, p + ".conv1", p + ".bn1", x, width, 1, 1, 0));
  o = b.unary(p + ".relu2", OpKind::relu, conv_bn(b, p + ".conv2", p + ".bn2", o, width, 3, stride, 1));
  o = conv_bn(b, p + ".conv3", p + ".bn3", o, out, 1, 1, 0);
  int sc = x;
  if (stride != 1 || in_ch != out) sc = conv_bn(b, p + ".downsample.0", p + ".downsample.1", x, out, 1, stride, 0);
  return b.unary(p + ".relu3", OpKind::relu, b.add(p + ".add", o, sc));
}

int classifier_head(Builder& b, int x, std::int64_t classes, const std::string& fc = "fc") {
  x = b.global_avg_pool("avgpool", x);
  x = b.flatten("flatten", x, 1);
  return b.linear(fc, x, classes, true, Init::xavier);
}

Graph resnet(const ModelOptions& o, bool bottlenecks, const std::vector<int>& blocks) {
  Builder b(o.seed);
  int x = b.input("input", {o.batch, 3, 224, 224});
  x = b.unary("relu", OpKind::relu, conv_bn(b, "conv1", "bn1", x, 64, 7, 2, 3));
  x = b.max_pool("maxpool", x, 3, 2, 1);
  const std::int64_t widths[] = {64, 128, 256, 512};
  for (int l = 0; l < 4; ++l)
    for (int i = 0; i < blocks[l]; ++i) {
      const std::string p = fmt::format("layer{}.{}", l + 1, i);
      const std::int64_t stride = (l > 0 && i == 0) ? 2 : 1;
      x = bottlenecks ? bottleneck(b, p, x, widths[l], stride) : basic_block(b, p, x, widths[l], stride);
    }
  b.output(classifier_head(b, x, 1000));
  return b.finish();
}

// ---- MobileNetV2 (torchvision names) -----------------------------------------------------------

int inverted_residual(Builder& b, const std::string& p, int x, std::int64_t out, std::int64_t stride, std::int64_t t) {
  const std::int64_t in_ch = b.graph().value(x).shape[1], hidden = in_ch * t;
  int o = x;
  int j = 0;
  if (t != 1) {
    o = conv_bn(b, fmt::format("{}.conv.{}.0", p, j), fmt::format("{}.conv.{}.1", p, j), o, hidden, 1, 1, 0);
    o = b.unary(fmt::format("{}.conv.{}.2", p, j), OpKind::relu6, o);
    ++j;
  }
  o = conv_bn(b, fmt::format("{}.conv.{}.0", p, j), fmt::format("{}.conv.{}.1", p, j), o, hidden, 3, stride, 1, hidden);
  o = b.unary(fmt::format("{}.conv.{}.2", p, j), OpKind::relu6, o);
  ++j;
  o = conv_bn(b, fmt::format("{}.conv.{}", p, j), fmt::format("{}.conv.{}", p, j + 1), o, out, 1, 1, 0);
  if (stride == 1 && in_ch == out) o = b.add(p + ".add", o, x);
  return o;
}

struct IrSetting {
  std::int64_t t, c, n, s;
};

int mobilenet_body(Builder& b, int x, std::int64_t stem, std::int64_t stem_stride, const std::vector<IrSetting>& settings,
                   std::int64_t last) {
  x = b.unary("features.0.2", OpKind::relu6, conv_bn(b, "features.0.0", "features.0.1", x, stem, 3, stem_stride, 1));
  int idx = 1;
  for (const auto& st : settings)
    for (std::int64_t i = 0; i < st.n; ++i)
      x = inverted_residual(b, fmt::format("features.{}", idx++), x, st.c, i == 0 ? st.s : 1, st.t);
  const std::string p = fmt::format("features.{}", idx);
  return b.unary(p + ".2", OpKind::relu6, conv_bn(b, p + ".0", p + ".1", x, last, 1, 1, 0));
}

Graph mobilenet_v2(const ModelOptions& o) {
  Builder b(o.seed);
  int x = b.input("input", {o.batch, 3, 224, 224});
  x = mobilenet_body(b, x, 32, 2,
                     {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}},
                     1280);
  b.output(classifier_head(b, x, 1000, "classifier.1"));
  return b.finish();
}

// ---- Transformers ------------------------------------------------------------------------------

struct BlockNames {
  std::string ln1, q, k, v, attn, proj, add1, ln2, fc1, act, fc2, add2;
};

// Multi-head self-attention + MLP. pre_ln (ViT): x + attn(ln1(x)), then x + mlp(ln2(x)).
// Post-LN (BERT): ln1(x + attn(x)), then ln2(x + mlp(x)).
int encoder_block(Builder& b, const BlockNames& nm, int x, std::int64_t hidden, std::int64_t heads, std::int64_t mlp,
                  bool pre_ln, double eps) {
  int h = pre_ln ? b.layer_norm(nm.ln1, x, eps) : x;
  const int q = b.linear(nm.q, h, hidden), k = b.linear(nm.k, h, hidden), v = b.linear(nm.v, h, hidden);
  int a = b.linear(nm.proj, b.attention(nm.attn, q, k, v, heads), hidden);
  x = b.add(nm.add1, x, a);
  if (!pre_ln) x = b.layer_norm(nm.ln1, x, eps);
  h = pre_ln ? b.layer_norm(nm.ln2, x, eps) : x;
  int m = b.linear(nm.fc2, b.unary(nm.act, OpKind::gelu, b.linear(nm.fc1, h, mlp)), hidden);
  x = b.add(nm.add2, x, m);
  if (!pre_ln) x = b.layer_norm(nm.ln2, x, eps);
  return x;
}

BlockNames vit_names(int i) {
  const std::string p = fmt::format("encoder.layers.encoder_layer_{}", i);
  return {p + ".ln_1", p + ".self_attention.q_proj", p + ".self_attention.k_proj", p + ".self_attention.v_proj",
          p + ".self_attention.core", p + ".self_attention.out_proj", p + ".add_1", p + ".ln_2", p + ".mlp.0",
          p + ".mlp.1", p + ".mlp.3", p + ".add_2"};
}

Graph vit(const ModelOptions& o, std::int64_t channels, std::int64_t image, std::int64_t patch, std::int64_t hidden,
          std::int64_t depth, std::int64_t heads, std::int64_t mlp, std::int64_t classes, std::int64_t stem = 0) {
  // stem > 0: a 3x3 convolution to `stem` channels with BatchNorm and ReLU before the patch embedding.
  Builder b(o.seed);
  int x = b.input("input", {o.batch, channels, image, image});
  if (stem > 0) x = b.unary("stem.relu", OpKind::relu, conv_bn(b, "stem.conv", "stem.bn", x, stem, 3, 1, 1));
  x = b.conv2d("conv_proj", x, hidden, patch, patch, 0, 1, true, 1, Init::xavier);
  x = b.transpose("patches", b.flatten("conv_proj.flatten", x, 2), 1, 2);
  x = b.cls_token("class_token", x);
  const std::int64_t tokens = (image / patch) * (image / patch) + 1;
  x = b.add("encoder.add_pos", x, b.constant("encoder.pos_embedding", {1, tokens, hidden}, 0.02f));
  for (int i = 0; i < depth; ++i) x = encoder_block(b, vit_names(i), x, hidden, heads, mlp, true, 1e-6);
  x = b.layer_norm("encoder.ln", x, 1e-6);
  x = b.select("encoder.cls", x, 1, 0);
  b.output(b.linear("heads.head", x, classes, true, Init::xavier));
  return b.finish();
}

Graph bert_base(const ModelOptions& o) {
  const std::int64_t seq = o.seq_len > 0 ? o.seq_len : 128, hidden = 768;
  SB_CHECK(seq <= 512, "bert_base: seq_len {} exceeds the 512 positions BERT has", seq);
  Builder b(o.seed);
  int x = b.input("input_ids", {o.batch, seq}, DType::i32);
  x = b.embedding("embeddings.word_embeddings", x, 30522, hidden);
  // Position (and token type 0) embeddings of the first `seq` positions, as one learned constant.
  x = b.add("embeddings.add", x, b.constant("embeddings.position_embeddings", {1, seq, hidden}, 0.02f));
  x = b.layer_norm("embeddings.LayerNorm", x, 1e-12);
  for (int i = 0; i < 12; ++i) {
    const std::string p = fmt::format("encoder.layer.{}", i);
    BlockNames nm{p + ".attention.output.LayerNorm", p + ".attention.self.query", p + ".attention.self.key",
                  p + ".attention.self.value", p + ".attention.self.core", p + ".attention.output.dense",
                  p + ".attention.add", p + ".output.LayerNorm", p + ".intermediate.dense",
                  p + ".intermediate.gelu", p + ".output.dense", p + ".output.add"};
    x = encoder_block(b, nm, x, hidden, 12, 3072, false, 1e-12);
  }
  b.output(x);
  return b.finish();
}

// ---- Small models (28x28 grayscale, 10 classes) ------------------------------------------------

Graph mlp(const ModelOptions& o) {
  Builder b(o.seed);
  int x = b.flatten("flatten", b.input("input", {o.batch, 1, 28, 28}), 1);
  x = b.unary("relu1", OpKind::relu, b.linear("fc1", x, 256, true, Init::he));
  x = b.unary("relu2", OpKind::relu, b.linear("fc2", x, 128, true, Init::he));
  b.output(b.linear("fc3", x, 10));
  return b.finish();
}

Graph lenet5(const ModelOptions& o) {
  Builder b(o.seed);
  int x = b.input("input", {o.batch, 1, 28, 28});
  x = b.max_pool("pool1", b.unary("relu1", OpKind::relu, b.conv2d("conv1", x, 6, 5, 1, 2, 1, true)), 2, 2);
  x = b.max_pool("pool2", b.unary("relu2", OpKind::relu, b.conv2d("conv2", x, 16, 5, 1, 0, 1, true)), 2, 2);
  x = b.flatten("flatten", x, 1);
  x = b.unary("relu3", OpKind::relu, b.linear("fc1", x, 120, true, Init::he));
  x = b.unary("relu4", OpKind::relu, b.linear("fc2", x, 84, true, Init::he));
  b.output(b.linear("fc3", x, 10));
  return b.finish();
}

Graph resnet_mini(const ModelOptions& o) {
  Builder b(o.seed);
  int x = b.input("input", {o.batch, 1, 28, 28});
  x = b.unary("relu", OpKind::relu, conv_bn(b, "conv1", "bn1", x, 16, 3, 1, 1));
  x = basic_block(b, "layer1.0", x, 16, 1);
  x = basic_block(b, "layer2.0", x, 32, 2);
  x = basic_block(b, "layer3.0", x, 64, 2);
  b.output(classifier_head(b, x, 10));
  return b.finish();
}

Graph mobilenet_mini(const ModelOptions& o) {
  Builder b(o.seed);
  int x = b.input("input", {o.batch, 1, 28, 28});
  x = mobilenet_body(b, x, 16, 1, {{1, 16, 1, 1}, {4, 24, 2, 2}, {4, 32, 2, 2}}, 128);
  b.output(classifier_head(b, x, 10, "classifier.1"));
  return b.finish();
}

struct Entry {
  const char* name;
  const char* description;
  bool small;
  std::function<Graph(const ModelOptions&)> build;
};

const std::vector<Entry>& entries() {
  static const std::vector<Entry> list = {
      {"mlp", "784-256-128-10 perceptron", true, mlp},
      {"lenet5", "LeNet-5 (2 conv 5x5 + 3 linear)", true, lenet5},
      {"resnet_mini", "ResNet, 3 basic blocks (16-32-64)", true, resnet_mini},
      {"mobilenet_mini", "MobileNetV2-style, 5 inverted residuals", true, mobilenet_mini},
      // A 3x3 conv stem (8 channels, BatchNorm, ReLU) before the patch-7 embedding (Xiao et al. 2021,
      // "Early convolutions help transformers see better"): 90.32 % in 12 epochs where the plain
      // patch embedding gave 88.71 % (session 7, same recipe, one thread), for 12 % more time per
      // epoch; hidden 96 (MLP 192) since session 4 (hidden 64: 88.6-88.7 %). docs/PERFORMANCE.md, M4.
      {"vit_mini", "ViT, 3x3 conv stem (8 ch), patch 7, hidden 96, 4 layers, 4 heads", true,
       [](const ModelOptions& o) { return vit(o, 1, 28, 7, 96, 4, 4, 192, 10, 8); }},
      {"resnet18", "ResNet-18, ImageNet 224", false, [](const ModelOptions& o) { return resnet(o, false, {2, 2, 2, 2}); }},
      {"resnet50", "ResNet-50 v1.5, ImageNet 224", false, [](const ModelOptions& o) { return resnet(o, true, {3, 4, 6, 3}); }},
      {"mobilenet_v2", "MobileNetV2 1.0, ImageNet 224", false, mobilenet_v2},
      {"bert_base", "BERT-base encoder, 12 layers, hidden 768 (seq len 128 by default)", false, bert_base},
      {"vit_b16", "ViT-B/16, ImageNet 224", false,
       [](const ModelOptions& o) { return vit(o, 3, 224, 16, 768, 12, 12, 3072, 1000); }},
  };
  return list;
}

const Entry& find_entry(const std::string& name) {
  for (const auto& e : entries())
    if (name == e.name) return e;
  fail(fmt::format("unknown model '{}': expected one of {}", name, fmt::join(model_names(), ", ")));
}

}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> out;
  for (const auto& e : entries()) out.emplace_back(e.name);
  return out;
}

namespace {
std::vector<std::pair<std::string, ModelLoader>>& model_loaders() {
  static std::vector<std::pair<std::string, ModelLoader>> loaders;
  return loaders;
}
}  // namespace

void register_model_loader(const std::string& suffix, ModelLoader loader) {
  for (auto& [s, l] : model_loaders())
    if (s == suffix) {
      l = std::move(loader);
      return;
    }
  model_loaders().emplace_back(suffix, std::move(loader));
}

Graph build_model(const std::string& name, const ModelOptions& options) {
  for (const auto& [suffix, loader] : model_loaders())
    if (name.ends_with(suffix)) return loader(name, options);
  SB_CHECK(!name.ends_with(".onnx"), "model '{}': ONNX support is not built in (install libonnx-dev and rebuild)", name);
  const Entry& e = find_entry(name);
  SB_CHECK(options.batch >= 1, "model '{}': batch must be >= 1, got {}", name, options.batch);
  return e.build(options);
}

ModelInfo model_info(const std::string& name, const ModelOptions& options) {
  const Entry& e = find_entry(name);
  ModelOptions o = options;
  o.batch = 1;
  const Graph g = e.build(o);
  ModelInfo info;
  info.name = e.name;
  info.description = e.description;
  info.small = e.small;
  info.input_shape = g.value(g.inputs()[0]).shape;
  info.input_dtype = g.value(g.inputs()[0]).dtype;
  info.params = g.param_count();
  info.flops = g.flops();
  return info;
}

}  // namespace sb
