#pragma once
// Internal (sees torch): training-mode batch normalisation fused with the ReLU / ReLU6 that
// follows it, as one autograd function over channels-last rows.
//
// Why: libtorch 1.13 on a CPU runs BatchNorm on channels-last tensors 3.5x slower than on NCHW,
// while its oneDNN convolutions on NCHW tensors spend more time reordering to and from oneDNN's
// blocked layout than computing (mobilenet_mini: 1.05 of 1.95 s of oneDNN time were reorders).
// Channels-last activations plus this function remove both costs. Each call reads the input twice
// and writes once forward (statistics, normalise+activate); backward reads input and gradient
// twice and writes once.
#include <ATen/ATen.h>

namespace sb::train_detail {

enum class BnAct { none, relu, relu6 };

// y = act((x - mean) / sqrt(var + eps) * weight + bias) with the batch's mean and biased variance
// per channel (dim 1; x is [N, C] or [N, C, H, W], f32, CPU, any memory format; the result is
// channels-last for 4-D input). running_mean / running_var are updated in place as torch does
// (momentum, unbiased variance). Gradients flow to x, weight and bias; ReLU/ReLU6 pass gradient
// where 0 < pre-activation (< 6), as at::relu / at::hardtanh do. Sums use a fixed partition of the
// rows, so results do not depend on the thread count.
at::Tensor batch_norm_act_train(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                const at::Tensor& running_mean, const at::Tensor& running_var, double momentum,
                                double eps, BnAct act);

// Inference form, no autograd (callers hold a NoGradGuard): act(x * weight / sqrt(running_var + eps)
// + bias - running_mean * ...), one pass over channels-last rows.
at::Tensor batch_norm_act_eval(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                               const at::Tensor& running_mean, const at::Tensor& running_var, double eps, BnAct act);

// relu(a + b) as one autograd function (the residual add of a ResNet block and the ReLU after it):
// one pass forward, one backward, where ATen makes two of each. a and b: f32 CPU tensors of the
// same shape and strides (add_relu_fusable says whether they are); the result has their layout.
bool add_relu_fusable(const at::Tensor& a, const at::Tensor& b);
at::Tensor add_relu(const at::Tensor& a, const at::Tensor& b);

// The same with ATen ops (at::batch_norm then at::relu / at::hardtanh), any floating type: the
// tests' reference.
at::Tensor batch_norm_act_reference(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                    const at::Tensor& running_mean, const at::Tensor& running_var, double momentum,
                                    double eps, BnAct act);

}  // namespace sb::train_detail
