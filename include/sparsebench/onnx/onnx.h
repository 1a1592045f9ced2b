#pragma once
// ONNX import and (sparse) export of the graph IR, through Debian's libonnx (protobuf).
//
// Import maps the operators that torch.onnx emits for CNNs and Transformer encoders (opsets 11 to
// 17) onto the IR (see docs/onnx.md for the table): constant subgraphs (Shape / Gather / Unsqueeze
// / Slice / Concat chains, arithmetic on initializers) are evaluated at import time, the LayerNorm,
// exact-GELU (Erf form) and multi-head attention subgraphs are recognised and mapped onto the
// runtime's layer_norm / gelu / attention ops, MatMul / Gemm with an initializer become linear
// layers (a following Add of a bias is fused), and BatchNorm is folded into the preceding conv.
// Every failure is an sb::Error of one line naming the file, the node (name, op_type, opset) or
// tensor at fault and what was expected.
//
// Export writes opset 17 with standard operators only (onnxruntime runs the files). Weights of
// pruned layers are written as sparse_initializer (SparseTensorProto, linear int64 COO indices)
// whenever that is smaller than dense, so the file shrinks with sparsity; masks and patterns
// travel in metadata_props ("sparsebench.mask.<node>" = pattern) so a re-import restores them.
#include <cstddef>
#include <cstdint>
#include <string>

#include "sparsebench/runtime/graph.h"

namespace sb {

struct OnnxImportOptions {
  // Values for symbolic input dimensions (dim_param): dim 0 is the batch, any other symbolic dim
  // takes seq_len. batch > 0 also overrides a static batch in the file (Graph::with_batch).
  std::int64_t batch = 0;    // 0 = the file's (a symbolic batch then becomes 1)
  std::int64_t seq_len = 0;  // 0 = symbolic non-batch dims are an error
  bool fold_batch_norm = true;
};

// Reads `path` (a .onnx ModelProto). Throws sb::Error naming the file and what was wrong.
Graph import_onnx(const std::string& path, const OnnxImportOptions& options = {});
// The same from the serialized bytes; `label` names the source in error messages.
Graph import_onnx_bytes(const std::string& bytes, const std::string& label, const OnnxImportOptions& options = {});

struct OnnxExportOptions {
  bool sparse_initializers = true;  // pruned weights as SparseTensorProto where smaller
  std::string producer = "sparsebench";
};

struct OnnxExportReport {
  std::size_t file_bytes = 0;
  int dense_initializers = 0;
  int sparse_initializers = 0;
  std::size_t weight_bytes_dense = 0;   // all initializers as if stored dense (f32)
  std::size_t weight_bytes_stored = 0;  // as stored (sparse: values f32 + indices i64)
};

// Serializes `graph` as an ONNX model (opset 17). Throws sb::Error for an op it cannot express.
std::string export_onnx_bytes(const Graph& graph, const OnnxExportOptions& options = {},
                              OnnxExportReport* report = nullptr);
// Writes the file; throws naming `path` when it cannot be written.
OnnxExportReport export_onnx(const Graph& graph, const std::string& path, const OnnxExportOptions& options = {});

// Makes sb::build_model() accept paths ending in ".onnx" (models/zoo.h model loader hook).
// Idempotent; the CLI calls it once at start-up.
void register_onnx_model_loader();

}  // namespace sb
