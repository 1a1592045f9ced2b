// TorchGraph: the public, torch-free face of train_detail::TorchModule.
#include "sparsebench/train/torch_graph.h"

#include <ATen/Parallel.h>

#include "sparsebench/core/threads.h"
#include "train/torch_module.h"

namespace sb {

void set_torch_threads(int n) {
  const int want = n > 0 ? n : num_threads();
  if (at::get_num_threads() != want) at::set_num_threads(want);
}

struct TorchGraph::Impl {
  explicit Impl(const Graph& g) : module(g) {}
  train_detail::TorchModule module;
};

TorchGraph::TorchGraph(const Graph& graph) : impl_(std::make_unique<Impl>(graph)) {}
TorchGraph::~TorchGraph() = default;
TorchGraph::TorchGraph(TorchGraph&&) noexcept = default;
TorchGraph& TorchGraph::operator=(TorchGraph&&) noexcept = default;

std::vector<Tensor> TorchGraph::run(const std::vector<Tensor>& inputs) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> xs;
  for (const Tensor& t : inputs) xs.push_back(train_detail::to_torch(t));
  std::vector<Tensor> out;
  for (const at::Tensor& y : impl_->module.forward(xs, false)) out.push_back(train_detail::from_torch(y));
  return out;
}

void TorchGraph::export_to(Graph& graph, const Pattern& pattern) const { impl_->module.export_to(graph, pattern); }

}  // namespace sb
