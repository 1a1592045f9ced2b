#pragma once
// The model zoo: graph builders with seeded random weights (He / Xavier, see runtime/graph.h).
//
// Full size (ImageNet 224x224x3, 1000 classes, torchvision layer names): resnet18, resnet50,
// mobilenet_v2, vit_b16; bert_base (encoder only, 12 layers, hidden 768, 12 heads, input i32
// token ids [batch, seq_len], output the last hidden state [batch, seq_len, 768]).
// Small (28x28 grayscale, 10 classes, trained by M4): mlp, lenet5, resnet_mini, mobilenet_mini,
// vit_mini. Every image model takes f32 [batch, C, H, W] and returns logits [batch, classes].
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sparsebench/runtime/graph.h"

namespace sb {

struct ModelOptions {
  std::int64_t batch = 1;      // dim 0 of the input
  std::int64_t seq_len = 0;    // bert_base: tokens per sequence; 0 = the default, 128
  std::uint64_t seed = 0x5eed; // weight initialisation
};

struct ModelInfo {
  std::string name;
  std::string description;
  bool small = false;          // the 28x28 family
  Shape input_shape;           // at batch 1
  DType input_dtype = DType::f32;
  std::int64_t params = 0;     // Graph::param_count
  std::int64_t flops = 0;      // Graph::flops at batch 1 (dense-equivalent, 2 per multiply-add)
};

// Every model name, small ones first.
std::vector<std::string> model_names();
// Throws sb::Error naming the model and listing the known ones.
Graph build_model(const std::string& name, const ModelOptions& options = {});
// Model files (e.g. "path/model.onnx"): build_model() hands a name ending in `suffix` to the
// loader registered for it (src/onnx registers ".onnx"; models must not depend on onnx, so the
// dependency goes through this hook). Re-registering a suffix replaces its loader.
using ModelLoader = std::function<Graph(const std::string& path, const ModelOptions& options)>;
void register_model_loader(const std::string& suffix, ModelLoader loader);
// Builds the model at batch 1 to count it (full-size models take ~0.1-1 s each).
ModelInfo model_info(const std::string& name, const ModelOptions& options = {});

}  // namespace sb
