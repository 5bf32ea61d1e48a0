#pragma once
// An Mlp's forward pass with forward-mode tangents, and its reverse pass, on raw float64
// buffers: the same function as MlpImpl::forward_with_tangents, computed with one matrix
// product per layer for the value and every tangent together and one vector-math call per
// activation, with no tensors, dispatch or autograd graph. The reverse pass is derived by hand
// (including the second derivative of the activation that the tangents bring in), so a loss
// built on the value, the time derivative or the Jacobian trains without double backward.
// This is the fused training path of the models (GenerativeModel::loss_and_gradient) and the
// fast evaluation path of sampling; tests check it against autograd through Mlp.
//
// Stacks: a pass carries `blocks` = 1 + directions copies of every activation, stored block
// after block ([blocks, batch, features], row-major): block 0 is the value, then d/dt (when
// Directions::time), then d/dx_1 ... d/dx_in_dim (when Directions::jacobian).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sdegen/net/mlp.h"

namespace sdegen {

class Workspace;

struct Directions {
  bool time = false;
  bool jacobian = false;
};

// One pass's activations, kept for the reverse pass; buffers grow as needed and are reused.
class MlpTape {
 public:
  int64_t batch() const { return batch_; }
  int64_t blocks() const { return blocks_; }
  // The output stack [blocks, batch, out_dim].
  const double* output() const { return layers_.empty() ? nullptr : layers_.back().pre.data(); }
  double* output() { return layers_.empty() ? nullptr : layers_.back().pre.data(); }

 private:
  friend class MlpKernel;
  struct Layer {
    std::vector<double> pre;    // pre-activation stack [blocks, batch, out]
    std::vector<double> act;    // activation stack (hidden layers), the next layer's input
    std::vector<double> slope;  // sigma'(pre value) [batch, out]
    std::vector<double> curve;  // sigma''(pre value) [batch, out], when blocks > 1
  };
  int64_t batch_ = 0, blocks_ = 0;
  std::vector<double> input;  // the first layer's input stack [blocks, batch, in_dim + embedding]
  std::vector<Layer> layers_;
  std::vector<double> grad_a, grad_b;  // reverse-pass scratch
};

class MlpKernel {
 public:
  // Whether `net` can run here: float64 parameters on the CPU, contiguous, no classes, and no
  // condition vector unless the caller passes its inputs (condition_inputs: forward's
  // `condition`). When not, and why is given, says why.
  static bool supports(const MlpImpl& net, std::string* why = nullptr, bool condition_inputs = false);
  // Reads the parameters' current storage; build one per step (it is cheap), since loading or
  // moving a model may replace them. Throws InvalidArgument when !supports(net, condition_inputs).
  explicit MlpKernel(MlpImpl& net, bool condition_inputs = false);

  int64_t in_dim() const { return in_dim_; }
  int64_t out_dim() const { return out_dim_; }
  // Inputs per row of a condition vector: condition_dim + 1 ([c * p, p], net/network.h's
  // condition_features), or 0 for a net without one.
  int64_t condition_width() const { return condition_width_; }
  int64_t blocks(Directions d) const { return 1 + (d.time ? 1 : 0) + (d.jacobian ? in_dim_ : 0); }

  // x [batch, in_dim], t [batch]; condition [batch, condition_width()] for a net with a condition
  // vector (nullptr: the null condition). The output stack is tape.output(): block 0 the net's
  // output, the d/dt block its time derivative, the d/dx_j blocks the Jacobian's columns.
  void forward(const double* x, const double* t, int64_t batch, Directions directions, MlpTape& tape,
               const double* condition = nullptr) const;

  // The output [batch, out_dim] and the trace of the Jacobian in x [batch] of a net that maps
  // R^d to R^d (out_dim == in_dim): forward's d Jacobian blocks, whose diagonal entries sum to
  // the divergence. It runs over chunks of rows, so that the tangent stacks stay in cache, on
  // LibTorch's intra-op threads (one tape of `workspace` per thread, single-threaded GEMMs).
  // t [batch]. No reverse pass can follow it. A net with a condition vector: at the null condition.
  void forward_trace(const double* x, const double* t, int64_t batch, double* out, double* trace,
                     Workspace& workspace) const;

  // The reverse pass of the last forward on `tape`. grad_output [blocks, batch, out_dim] is a
  // loss's gradient with respect to the output stack. Adds the loss's gradient with respect to
  // every weight and bias to their .grad() (which must be defined, contiguous float64: see
  // prepare_gradients), and writes the gradient with respect to x [batch, in_dim] into grad_x
  // when it is not null. grad_output may be overwritten.
  void backward(MlpTape& tape, double* grad_output, double* grad_x) const;

 private:
  enum class Act { Tanh, Relu, Gelu, Silu, Softplus };
  enum class Embedding { Raw, Sinusoidal, Fourier };
  struct Linear {
    torch::Tensor weight_tensor, bias_tensor;  // their .grad() is read at the reverse pass
    const double* weight;                      // [out, in]
    const double* bias;                        // [out]
    int64_t in, out;
  };
  // forward; `reverse` keeps the activation's second derivative that the reverse pass needs.
  void run(const double* x, const double* t, int64_t batch, Directions directions, bool reverse, MlpTape& tape,
           const double* condition = nullptr) const;
  void embed(const double* x, const double* t, int64_t batch, Directions directions, const double* condition,
             MlpTape& tape) const;
  void activate(MlpTape::Layer& layer, int64_t batch, int64_t width, int64_t blocks, bool curve) const;

  int64_t in_dim_ = 0, out_dim_ = 0, embedding_dim_ = 0, condition_width_ = 0;
  Act act_ = Act::Tanh;
  Embedding embedding_ = Embedding::Raw;
  std::vector<double> angular_;  // sinusoidal/fourier angular frequencies
  std::vector<Linear> layers_;   // the hidden layers, then the output layer
};

// Work buffers that persist between a model's steps, so that a fused step allocates nothing.
class Workspace {
 public:
  // Buffer `slot`, at least `size` doubles long; its contents are whatever was left there.
  double* get(size_t slot, int64_t size);
  MlpTape& tape(size_t slot);

 private:
  std::vector<std::vector<double>> buffers_;
  std::vector<std::unique_ptr<MlpTape>> tapes_;
};

}  // namespace sdegen
