#pragma once
// A multilayer perceptron for vector data, conditioned on time (and optionally a class label
// and a condition vector c with presence p):
//   [x, embed(t) (, embed(label)) (, c * p, p)] -> Linear -> act -> ... (depth times) -> Linear -> out_dim
// With the defaults below but activation "tanh" and in_dim d it is the paper's reference net
// [x, t] -> 64 -> tanh -> 64 -> tanh -> d.
#include <nlohmann/json_fwd.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sdegen/net/network.h"
#include "sdegen/net/time_embedding.h"

namespace sdegen {

struct MlpOptions {
  /* implicit */ MlpOptions(int64_t in_dim) : in_dim_(in_dim) {}
  TORCH_ARG(int64_t, in_dim);                      // data dimension d, >= 1
  TORCH_ARG(int64_t, out_dim) = 0;                 // >= 0; 0 means in_dim
  TORCH_ARG(int64_t, width) = 64;                  // units per hidden layer, >= 1
  TORCH_ARG(int64_t, depth) = 2;                   // hidden layers, >= 0 (0: a single Linear)
  TORCH_ARG(std::string, activation) = "silu";     // tanh, relu, gelu, silu, softplus
  TORCH_ARG(std::string, time_embedding) = "raw";  // raw, sinusoidal, fourier
  TORCH_ARG(int64_t, embedding_dim) = 16;          // sinusoidal/fourier features, even; raw has 1
  TORCH_ARG(double, max_frequency) = 1000.0;       // sinusoidal: highest frequency, >= 1
  TORCH_ARG(double, fourier_scale) = 16.0;         // fourier: std of the random frequencies, > 0
  TORCH_ARG(int64_t, num_classes) = 0;             // >= 0; 0 means unconditional
  TORCH_ARG(int64_t, class_dim) = 16;              // learned class embedding size, >= 1
  // Width of a condition vector (Condition::vector), >= 0; 0: none. The first layer then also
  // reads [c * p, p], the vector times its presence p (0 for the null condition) and p itself.
  TORCH_ARG(int64_t, condition_dim) = 0;
  // Start the final Linear at zero so the net outputs exactly 0 before training (a common
  // choice for residual and diffusion nets).
  TORCH_ARG(bool, zero_init_output) = false;
  // Multiplies the initial weights that the first layer applies to x (not to the time or class
  // features), > 0. The default initialisation makes the net a slowly varying function of x on
  // the scale of standardised data (|x| ~ 1), and gradient descent adds fine structure in x very
  // slowly (spectral bias): a density with features much narrower than its spread (laplace5's
  // peaks are 0.17 wide in standardised units) stays smoothed out at any width, learning rate or
  // step count. A scale s starts the first layer with features that vary on ~1/s of the default
  // scale. It changes only the initial weights, so the forward pass (and a fused kernel that
  // reads the weights) is the same function of the weights. Not stored in checkpoints' weights;
  // a config without it reads as 1.
  TORCH_ARG(double, x_init_scale) = 1.0;

 public:
  int64_t resolved_out_dim() const { return out_dim_ > 0 ? out_dim_ : in_dim_; }
};

std::vector<std::string> activation_names();  // "tanh", "relu", "gelu", "silu", "softplus"

// Throws InvalidArgument naming the first option out of range (unknown names list the valid ones).
void check_mlp_options(const MlpOptions& options);

class MlpImpl : public NetworkImpl {
 public:
  explicit MlpImpl(const MlpOptions& options);

  // x: [batch, in_dim]; t: [batch] or 0-dim (one time for every row), floating point;
  // labels (num_classes > 0): [batch] integers in [0, num_classes) or kNullLabel; none means
  // kNullLabel for every row. Returns [batch, out_dim] in x's dtype.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& condition = {}) override;
  std::vector<int64_t> shape() const override { return {options.in_dim()}; }
  int64_t num_classes() const override { return options.num_classes(); }
  int64_t condition_dim() const override { return options.condition_dim(); }
  nlohmann::json config() const override;
  MlpImpl* as_mlp() override { return this; }

  // The output with its derivatives in closed form (forward-mode tangents through each layer:
  // one extra matrix product per layer and direction, differentiable by autograd, so a loss
  // that uses them trains without double backward). Unconditional nets only (no classes, no
  // condition vector).
  //   d_dt      [batch, out_dim]          d out / dt            (when time_derivative)
  //   jacobian  [batch, out_dim, in_dim]  d out / dx            (when jacobian)
  struct Tangents {
    torch::Tensor out, d_dt, jacobian;
  };
  Tangents forward_with_tangents(const torch::Tensor& x, const torch::Tensor& t, bool time_derivative,
                                 bool jacobian);

  // A deep copy: a module built from the same options holding copies of every parameter and
  // buffer (the Fourier frequencies included) and the same training mode, e.g. for an
  // exponential moving average of the weights. Building it draws from the global generator.
  std::shared_ptr<torch::nn::Module> clone(
      const c10::optional<torch::Device>& device = c10::nullopt) const override;

  void pretty_print(std::ostream& stream) const override;

  // The hidden Linear layers in order (the output layer is `output`).
  const std::vector<torch::nn::Linear>& hidden_layers() const { return layers_; }

  MlpOptions options;
  TimeEmbedding time_embedding{nullptr};
  torch::nn::Embedding class_embedding{nullptr};  // num_classes + 1 rows (the last: no label)
  torch::nn::ModuleList hidden{nullptr};           // the `depth` hidden Linear layers
  torch::nn::Linear output{nullptr};

 protected:
  FORWARD_HAS_DEFAULT_ARGS({2, torch::nn::AnyValue(Condition())})

 private:
  enum class Activation { Tanh, Relu, Gelu, Silu, Softplus };
  torch::Tensor activate(const torch::Tensor& h) const;
  // The activation's derivative at the pre-activation `pre`, given h = activate(pre).
  torch::Tensor activation_slope(const torch::Tensor& pre, const torch::Tensor& h) const;
  torch::Tensor check_inputs(const torch::Tensor& x, const torch::Tensor& t, const Condition& condition = {}) const;

  Activation activation_;
  // The hidden layers again, typed, so forward iterates without casts or AnyModule dispatch.
  std::vector<torch::nn::Linear> layers_;
};
TORCH_MODULE(Mlp);

// Every option under its own name plus "type": "mlp", so a checkpoint can rebuild the net.
nlohmann::json to_json(const MlpOptions& options);
// Refuses a missing, ill-typed or unknown key, or an out-of-range value, naming it.
MlpOptions mlp_options_from_json(const nlohmann::json& json);

}  // namespace sdegen
